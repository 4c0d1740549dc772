"""The orchestration phase: runs/s through NATS to workers in another process, alternating
with LangGraph in-process (1 thread) on the same Postgres; task handoff against raw JetStream."""

from __future__ import annotations

from bench import orchestration
from bench.common import fmt, log, pct
from bench.phase import Context, Outcome, Row


def orchestration_phase(ctx: Context) -> Outcome:
    peer, peer_error = None, None
    try:
        from bench.langgraph_peer import LangGraphPeer

        peer = LangGraphPeer(ctx.database_url, threads=1)
    except Exception as error:  # no bench extra, or the peer cannot start: Quipu's figures still count
        peer_error = f"{type(error).__name__}: {error}"
        log(f"  LangGraph peer unavailable: {peer_error}")
    try:
        o = orchestration.measure(
            ctx.database_url,
            ctx.nats_url,
            int(ctx.sizes["runs"]),
            int(ctx.sizes["latency_runs"]),
            peer.run if peer else None,
        )
    finally:
        if peer:
            peer.close()
    return Outcome(rows=rows(o, peer_error or o.peer_error), figures=figures(o))


def figures(o: orchestration.OrchestrationResult) -> dict[str, float | None]:
    return {
        "runs_per_s_nats": o.eps,
        "runs_per_s_langgraph": o.peer_eps,
        "handoff_p50_ms": pct(o.handoff_ms, 50),
        "handoff_p99_ms": pct(o.handoff_ms, 99),
        "jetstream_p50_ms": pct(o.ping_ms, 50),
        "jetstream_p99_ms": pct(o.ping_ms, 99),
        "events_per_run": o.events_per_execution,
    }


def rows(o: orchestration.OrchestrationResult, peer_error: str | None) -> list[Row]:
    tasks = len(orchestration.TASKS)
    peer = o.peer_eps
    if peer is None:
        peer_cell, ratio = f"error: {peer_error or 'no peer'}", "-"
    else:
        peer_cell = fmt(peer, "runs/s")
        ratio = f"{o.eps / peer:.2f}x / goal >= 1.0x {'OK' if o.eps >= peer else 'MISS'}"
    h50, h99, b50, b99 = (pct(v, p) for v in (o.handoff_ms, o.ping_ms) for p in (50, 99))
    setup = (
        f"{len(o.handoff_ms)} tasks of nodes b-h in {o.latency_executions} runs, {orchestration.IN_FLIGHT} in flight;"
        f" baseline JetStream publish -> pull-consume of a {o.message_bytes}-byte task message, same NATS, alongside"
    )
    return [
        (
            f"Runs/s, ten-node workflow, {tasks} no-op tasks with fan-outs and joins ({o.executions} runs,"
            f" {o.events_per_execution:.0f} events each; workers in a separate process, through NATS;"
            f" peer LangGraph in-process, 1 thread, PostgresSaver on the same Postgres, durability=sync,"
            f" {o.executions} runs alternating with Quipu's in {orchestration.ROUNDS} rounds)",
            fmt(o.eps, "runs/s"),
            peer_cell,
            ratio,
        ),
        ("Task nodes completed/s (same runs)", fmt(o.eps * tasks, "nodes/s"), "-", "-"),
        (
            f"Dependency completed -> next task received by its worker, p50 ({setup};"
            f" the handler starts at p50 {fmt(pct(o.handler_ms, 50), 'ms')}, after the started heartbeat)",
            fmt(h50, "ms"),
            fmt(b50, "ms"),
            f"{h50 / b50:.0f}x / goal <= 5 ms {'OK' if h50 <= 5 else 'MISS'}",
        ),
        (
            "Dependency completed -> next task received by its worker, p99",
            fmt(h99, "ms"),
            fmt(b99, "ms"),
            f"{h99 / b99:.0f}x / goal <= 20 ms {'OK' if h99 <= 20 else 'MISS'}",
        ),
    ]
