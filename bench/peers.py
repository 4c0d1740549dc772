"""The peer phase: Quipu driven directly against LangGraph, on the same embedded Postgres
(fsync on; LangGraph's ``durability="sync"``), every ratio measured with the two sides
alternating in rounds (the first round Quipu first, the next LangGraph first, ...).

Runs/s: the ten-node no-op workflow of the orchestration phase, N runs per side, from 1 and
then from 6 threads. Quipu: ``bench.orchestration.drive_directly`` (start, then heartbeat +
complete per ready node, through ``ExecutionService`` as the report responder calls it, no
NATS). LangGraph: ``bench.langgraph_peer.LangGraphPeer`` (one saver and connection per thread).

Bytes per run: over those same rounds, the growth of every table's main fork plus its TOAST
table and all their indexes (``pg_relation_size``; free-space and visibility maps left out),
divided by the runs. Quipu's side counts every table but LangGraph's four, during Quipu's
rounds; LangGraph's side counts its ``checkpoints``, ``checkpoint_blobs``, ``checkpoint_writes``
and ``checkpoint_migrations``, during its rounds. Both are page-granular, so both include
the same kind of slack (fill factor, the last partly filled page of each relation).

State as of an event of a long history: Quipu's is the time-travel phase's execution
(``bench.time_travel``; state as of an event: resolve the event id, then ``EventStore.load``
at its version, as the API does; built here if that phase did not run); LangGraph's a
one-node loop graph of as many steps (one checkpoint per step), ``get_state`` at the
checkpoint at the same position. The middle first (not counted: it warms the connections),
then R distinct points drawn at random across the history, the two sides alternating;
the p50 of each side.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from bench import orchestration, time_travel
from bench.common import fmt, log
from bench.phase import Context, Outcome, Row
from bus.subjects import Subjects
from quipu.wiring import Wiring

THREADS = (1, 6)
SIZES_SQL = """
SELECT c.relname = ANY(%s) AS peer,
       sum(pg_relation_size(c.oid) + coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0)
           + (SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i
              WHERE i.indrelid = c.oid OR i.indrelid = nullif(c.reltoastrelid, 0)))::bigint AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
GROUP BY 1
"""


@dataclass
class Side:
    runs: int = 0
    seconds: float = 0.0
    bytes: int = 0

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds if self.seconds else float("nan")


@dataclass
class PeerResult:
    quipu: dict[int, Side]  # by threads
    langgraph: dict[int, Side]
    rounds: int
    steps: int  # events in Quipu's history, checkpoints in LangGraph's
    quipu_as_of_ms: list[float]
    langgraph_get_state_ms: list[float]
    langgraph_build_s: float

    def bytes_per_run(self, sides: dict[int, Side]) -> float:
        return sum(s.bytes for s in sides.values()) / sum(s.runs for s in sides.values())


def sizes(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(bytes of every table but LangGraph's, bytes of LangGraph's), with indexes and TOAST."""
    from bench.langgraph_peer import TABLES

    rows = conn.execute(SIZES_SQL, (list(TABLES),)).fetchall()
    by = {bool(r[0]): int(r[1]) for r in rows}
    return by.get(False, 0), by.get(True, 0)


def _alternate(
    database_url: str, executions: Any, flow: uuid.UUID, runs: int, rounds: int
) -> tuple[dict[int, Side], dict[int, Side]]:
    from bench.langgraph_peer import LangGraphPeer, run_threads

    quipu = {t: Side() for t in THREADS}
    peer = {t: Side() for t in THREADS}
    orchestration.drive_directly(executions, flow)  # warm-up, untimed
    with psycopg.connect(database_url, autocommit=True) as conn:
        for threads in THREADS:
            lg = LangGraphPeer(database_url, threads)
            try:
                per_round = [runs // rounds + (1 if k < runs % rounds else 0) for k in range(rounds)]
                for k, m in enumerate(per_round):
                    for side in ("quipu", "peer") if k % 2 == 0 else ("peer", "quipu"):
                        before = sizes(conn)
                        if side == "quipu":
                            quipu[threads].seconds += run_threads(
                                lambda _: orchestration.drive_directly(executions, flow), m, threads
                            )
                            quipu[threads].runs += m
                            quipu[threads].bytes += sizes(conn)[0] - before[0]
                        else:
                            peer[threads].seconds += lg.run(m)
                            peer[threads].runs += m
                            peer[threads].bytes += sizes(conn)[1] - before[1]
                log(
                    f"  {threads} thread(s): Quipu {quipu[threads].runs_per_s:.1f} runs/s,"
                    f" LangGraph {peer[threads].runs_per_s:.1f} runs/s"
                )
            finally:
                lg.close()
    return quipu, peer


async def _history(ctx: Context, repeats: int) -> tuple[int, list[float], list[float], float]:
    from bench.langgraph_peer import LangGraphHistory

    t = ctx.shared.get("time_travel")
    if t is not None and t.execution_id is not None:
        execution_id = t.execution_id
    else:
        log("  (the time-travel phase left no execution: building one here)")
        execution_id, _ = await asyncio.to_thread(time_travel.build, ctx.store, int(ctx.sizes["tt_events"]))
    events = await asyncio.to_thread(time_travel.event_ids, ctx.database_url, execution_id)
    log(f"  LangGraph: a {len(events):,}-step history ...")
    history = await asyncio.to_thread(LangGraphHistory, ctx.database_url, len(events))
    # The middle first (warm-up, not counted), then distinct points drawn across the history:
    # a point asked twice would measure a cache of that point, not the state as of an event.
    rng = random.Random(14)
    points = [len(events) // 2, *rng.sample(range(len(events)), min(repeats, len(events)))]
    quipu_ms, peer_ms = [], []
    try:
        async with await AsyncConnection.connect(ctx.database_url, autocommit=True, row_factory=dict_row) as conn:

            async def quipu(event: str) -> float:
                ms, _ = await time_travel.state_as_of(conn, ctx.store, execution_id, event, snapshots=True)
                return ms

            for i, point in enumerate(points):
                fraction = point / len(events)
                if i % 2 == 0:
                    q, p = await quipu(events[point]), history.get_state_ms(fraction)
                else:
                    p = history.get_state_ms(fraction)
                    q = await quipu(events[point])
                if i:
                    quipu_ms.append(q)
                    peer_ms.append(p)
    finally:
        history.close()
    return len(events), quipu_ms, peer_ms, history.build_s


async def _measure(ctx: Context) -> PeerResult:
    runs, rounds = int(ctx.sizes["peer_runs"]), int(ctx.sizes["peer_rounds"])
    wiring = Wiring(ctx.database_url, ctx.nats_url, Subjects("bench" + uuid.uuid4().hex[:8]))
    async with wiring.api_context() as api:
        flow = await asyncio.to_thread(orchestration.create_workflow, api.workflows, orchestration.DIRECT_TENANT)
        log(f"  runs/s: {runs} runs per side and thread count, {rounds} alternating rounds ...")
        quipu, peer = await asyncio.to_thread(_alternate, ctx.database_url, api.executions, flow, runs, rounds)
    steps, q_ms, p_ms, build_s = await _history(ctx, int(ctx.sizes["peer_repeats"]))
    return PeerResult(quipu, peer, rounds, steps, q_ms, p_ms, build_s)


def peer_phase(ctx: Context) -> Outcome:
    r = asyncio.run(_measure(ctx))
    return Outcome(rows=rows(r), figures=figures(r))


def figures(r: PeerResult) -> dict[str, float | None]:
    return {
        "runs_per_s_direct": r.quipu[1].runs_per_s,
        "runs_per_s_langgraph_1t": r.langgraph[1].runs_per_s,
        "runs_per_s_direct_6t": r.quipu[6].runs_per_s,
        "runs_per_s_langgraph_6t": r.langgraph[6].runs_per_s,
        "bytes_per_run": r.bytes_per_run(r.quipu),
        "langgraph_bytes_per_run": r.bytes_per_run(r.langgraph),
        "state_as_of_p50_ms_10k": statistics.median(r.quipu_as_of_ms),
        "langgraph_get_state_p50_ms_10k": statistics.median(r.langgraph_get_state_ms),
        "history_steps": float(r.steps),
    }


def rows(r: PeerResult) -> list[Row]:
    out: list[Row] = []
    for threads in THREADS:
        q, p = r.quipu[threads], r.langgraph[threads]
        ratio = q.runs_per_s / p.runs_per_s
        out.append(
            (
                f"Runs/s driven directly (ExecutionService calls, no NATS), {threads} thread{'s' * (threads > 1)},"
                f" ten-node no-op workflow; peer LangGraph, PostgresSaver, durability=sync, same Postgres"
                f" ({q.runs} runs each, {r.rounds} alternating rounds)",
                fmt(q.runs_per_s, "runs/s"),
                fmt(p.runs_per_s, "runs/s"),
                f"{ratio:.2f}x / goal >= 1.5x {'OK' if ratio >= 1.5 else 'MISS'}",
            )
        )
    qb, pb = r.bytes_per_run(r.quipu), r.bytes_per_run(r.langgraph)
    out.append(
        (
            "Bytes stored per ten-node run (growth of tables + TOAST + indexes, main forks, over the runs above;"
            " Quipu every table but LangGraph's, LangGraph its checkpoint tables)",
            fmt(qb / 1000, "KB"),
            fmt(pb / 1000, "KB"),
            f"{qb / pb:.2f}x / goal <= 1.2x {'OK' if qb <= 1.2 * pb else 'MISS'}",
        )
    )
    q50, p50 = statistics.median(r.quipu_as_of_ms), statistics.median(r.langgraph_get_state_ms)
    out.append(
        (
            f"State as of an event of a {r.steps:,}-step history, p50 (Quipu: the time-travel execution as of"
            f" {len(r.quipu_as_of_ms)} distinct events drawn across it; peer LangGraph get_state at the checkpoints"
            f" at the same positions of {r.steps:,} checkpoints of a one-node loop, built in"
            f" {r.langgraph_build_s:.0f} s; alternating)",
            fmt(q50, "ms"),
            fmt(p50, "ms"),
            f"{q50 / p50:.2f}x / goal <= 1.0x {'OK' if q50 <= p50 else 'MISS'}",
        )
    )
    return out
