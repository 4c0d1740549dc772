"""``python -m bench [--quick]``: start Postgres + NATS, measure, print one markdown table."""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import psycopg
import structlog

from bench import append, dag, lag, locks, memory_search, orchestration, time_travel
from bench.common import fmt, log, pct
from bench.infra import infra
from quipu.tuning import tune_gc
from quipu.wiring import build_store


def quiesce(database_url: str) -> None:
    """Start each phase on a settled database: flush the previous phase's dirty pages now,
    so its checkpoint does not stall the next phase's commits."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        conn.execute("VACUUM ANALYZE")


def orchestration_rows(o: orchestration.OrchestrationResult) -> list[tuple[str, str, str, str]]:
    ratio = f"{o.eps / o.direct_eps * 100:.0f}%"
    tasks = len(orchestration.TASKS)
    h50, h99, b50, b99 = (pct(v, p) for v in (o.handoff_ms, o.ping_ms) for p in (50, 99))
    setup = (
        f"{len(o.handoff_ms)} tasks of nodes b-h in {o.latency_executions} runs, {orchestration.IN_FLIGHT} in flight;"
        f" baseline JetStream publish -> pull-consume of a {o.message_bytes}-byte task message, same NATS, alongside"
    )
    return [
        (
            f"Executions/s, ten-node workflow, {tasks} no-op tasks with fan-outs and joins"
            f" ({o.executions} runs, {o.events_per_execution:.0f} events each; workers in a separate process;"
            f" baseline the same runs by direct ExecutionService calls from {o.direct_threads} threads, no NATS)",
            fmt(o.eps, "executions/s"),
            fmt(o.direct_eps, "executions/s"),
            ratio,
        ),
        (
            "Task nodes completed/s (same runs)",
            fmt(o.eps * tasks, "nodes/s"),
            fmt(o.direct_eps * tasks, "nodes/s"),
            ratio,
        ),
        (
            f"Dependency completed -> next task received by its worker, p50 ({setup};"
            f" the handler starts at p50 {fmt(pct(o.handler_ms, 50), 'ms')}, after the started heartbeat)",
            fmt(h50, "ms"),
            fmt(b50, "ms"),
            f"{h50 / b50:.0f}x",
        ),
        (
            "Dependency completed -> next task received by its worker, p99",
            fmt(h99, "ms"),
            fmt(b99, "ms"),
            f"{h99 / b99:.0f}x",
        ),
    ]


def time_travel_rows(t: time_travel.TimeTravelResult) -> list[tuple[str, str, str, str]]:
    w50, b50 = t.with_p50, t.without_p50
    return [
        (
            f"State of a {t.events:,}-event execution as of its middle event, p50 (resolve the event id, then"
            f" load from the latest snapshot, one every {t.interval} events, {t.snapshots} written;"
            f" baseline the same load replaying every event from version 1; {len(t.with_ms)} repeats)",
            fmt(w50, "ms"),
            fmt(b50, "ms"),
            f"{b50 / w50:.0f}x faster / goal <= 50 ms {'OK' if w50 <= 50 else 'MISS'}",
        ),
        (
            f"Replay rate, the same execution as NDJSON (the replay endpoint's reader;"
            f" baseline the global log reader over the same {t.events:,} events)",
            fmt(t.replay_eps, "events/s"),
            fmt(t.log_read_eps, "events/s"),
            f"{t.replay_eps / t.log_read_eps * 100:.0f}%",
        ),
        (
            f"Projection rebuild rate (`quipu projector rebuild timeline` over the whole bench log,"
            f" {t.rebuild_events:,} events)",
            fmt(t.rebuild_eps, "events/s"),
            "-",
            f"goal >= 20,000 events/s {'OK' if t.rebuild_eps >= 20_000 else 'MISS'}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument(
        "--search-notes",
        type=int,
        default=0,
        metavar="N",
        help="notes for the memory search latency phase (default 100,000; 5,000 with --quick)",
    )
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), help="the table as JSON (default bench-results.json)"
    )
    args = parser.parse_args()
    if args.quick:
        sizes = {"append_n": 400, "lag_rate": 500.0, "lag_s": 4.0, "dag_n": 10_000, "samples": 100}
        sizes |= {"runs": 40, "latency_runs": 16, "tt_events": 2000, "tt_repeats": 5, "search_queries": 100}
        sizes |= {"lock_trips": 300}
    else:
        sizes = {"append_n": 3000, "lag_rate": 500.0, "lag_s": 10.0, "dag_n": 100_000, "samples": 200}
        sizes |= {"runs": 200, "latency_runs": 60, "tt_events": 10_000, "tt_repeats": 15, "search_queries": 225}
        sizes |= {"lock_trips": 2000}
    search_notes = args.search_notes or (5_000 if args.quick else 100_000)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    started = time.perf_counter()
    tune_gc()  # the same process tuning `quipu up` / `quipu api` apply
    with infra() as env:
        store = build_store(env.database_url, pool_size=8)
        try:
            log("1/7 append throughput")
            appends = append.measure(store, env.database_url, int(sizes["append_n"]))
            quiesce(env.database_url)
            log("2/7 append -> read-model lag")
            lags = lag.measure(store, env.database_url, env.nats_url, sizes["lag_rate"], sizes["lag_s"])
            quiesce(env.database_url)
            log("3/7 DAG walks")
            walks = dag.measure(store, env.database_url, int(sizes["dag_n"]), int(sizes["samples"]))
            quiesce(env.database_url)
            log("4/7 orchestration")
            orch = orchestration.measure(env.database_url, env.nats_url, int(sizes["runs"]), int(sizes["latency_runs"]))
            quiesce(env.database_url)
            log("5/7 time travel")
            travel = time_travel.measure(store, env.database_url, int(sizes["tt_events"]), int(sizes["tt_repeats"]))
            quiesce(env.database_url)
            log(f"6/7 memory search through the API (Cranfield, then {search_notes:,} notes)")
            memory = memory_search.measure(env.database_url, env.nats_url, search_notes, int(sizes["search_queries"]))
            quiesce(env.database_url)
            log("7/7 lock round trips")
            lock_trips = locks.measure(store, env.database_url, int(sizes["lock_trips"]))
        finally:
            store.close()
    total = time.perf_counter() - started

    rows: list[tuple[str, str, str, str]] = []
    for a in appends:
        ratio = a.quipu_eps / a.raw_eps * 100
        rows.append(
            (
                f"Append throughput, {a.threads} thread{'s' if a.threads > 1 else ''} (Workflow.create via save_all; "
                f"baseline raw INSERT+COMMIT of {a.state_bytes}-byte rows)",
                fmt(a.quipu_eps, "events/s"),
                fmt(a.raw_eps, "rows/s"),
                f"{ratio:.0f}% / goal >= 50% {'OK' if ratio >= 50 else 'MISS'}",
            )
        )
    l50, l99 = pct(lags.lags_ms, 50), pct(lags.lags_ms, 99)
    lag_note = (
        f"{len(lags.lags_ms)} events at {lags.achieved_rate:.0f}/s (target {lags.target_rate:.0f}/s)"
        f"{'; ' + str(lags.missing) + ' missing from read model' if lags.missing else ''}"
    )
    rows.append(
        (
            f"Append -> rm_workflows lag p50 ({lag_note})",
            fmt(l50, "ms"),
            "-",
            f"goal <= 10 ms {'OK' if l50 <= 10 else 'MISS'}",
        )
    )
    rows.append(
        ("Append -> rm_workflows lag p99", fmt(l99, "ms"), "-", f"goal <= 50 ms {'OK' if l99 <= 50 else 'MISS'}")
    )
    s50, s99 = pct(walks.select1_ms, 50), pct(walks.select1_ms, 99)
    scale = f"{walks.events:,}-event DAG, max depth {walks.max_depth}"
    for name, values, mean in (
        ("Ancestors", walks.up_ms, walks.mean_returned_up),
        ("Descendants", walks.down_ms, walks.mean_returned_down),
    ):
        p50, p99 = pct(values, 50), pct(values, 99)
        rows.append(
            (
                f"{name} walk p50 ({scale}; max_depth=100, limit=100; avg {mean:.0f} returned; baseline SELECT 1)",
                fmt(p50, "ms"),
                fmt(s50, "ms"),
                f"{p50 / s50:.0f}x",
            )
        )
        rows.append(
            (
                f"{name} walk p99 (goal is for 1M events; measured at {walks.events:,})",
                fmt(p99, "ms"),
                fmt(s99, "ms"),
                f"{p99 / s99:.0f}x / goal p99 <= 20 ms {'OK' if p99 <= 20 else 'MISS'}",
            )
        )
    rows += orchestration_rows(orch)
    rows += time_travel_rows(travel)
    rows += memory_search.rows(memory)
    rows += locks.rows(lock_trips)

    mode = "quick" if args.quick else "full"
    print(f"\nQuipu bench ({mode}; DAG build {walks.build_s:.0f} s; total {total:.0f} s)\n")
    print("| figure | Quipu | baseline | ratio / goal |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    write_json(args.json, mode=mode, total_s=total, rows=rows)


def write_json(path: Path, *, mode: str, total_s: float, rows: list[tuple[str, str, str, str]]) -> None:
    """The same table, machine-readable: one object per row, as printed."""
    document = {
        "mode": mode,
        "total_seconds": round(total_s, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [{"figure": f, "quipu": q, "baseline": b, "ratio_or_goal": r} for f, q, b, r in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    log(f"written to {path}")


if __name__ == "__main__":
    main()
