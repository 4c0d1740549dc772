"""5. Time travel: the state of a 10,000-event execution as of its middle event, with and
without snapshots; replay and projection rebuild rates.

Setup: one execution of the three-node bench workflow (start -> work -> end). The worker's
first heartbeat starts ``work``; then on-demand checkpoints (``take_checkpoint``, a cheap
event on the execution's own stream) are taken 100 per command through
``ExecutionService.act`` until the stream is ~N events long; completing ``work`` ends the
run. Snapshots are written as the store writes them in production: when a save reaches a
multiple of ``QUIPU_SNAPSHOT_INTERVAL`` (100).

State as of the middle event: what ``GET /executions/{id}/state?as_of=<event id>`` does
minus HTTP: resolve the event id to a version (one query), then ``EventStore.load`` at
that version. With snapshots it starts from the latest snapshot at or below it; the
baseline replays every event from version 1 (``load(..., snapshots=False)``). p50 of
repeats, alternating the two.

Replay: the execution's envelopes through the replay endpoint's reader
(``commands.as_of.replay``) encoded as NDJSON lines; baseline the plain global log reader
(``commands.log.batches``, what the relay and rebuilds read) over the same notification
range (each reader three times, alternating; the median rate). Rebuild: ``quipu projector
rebuild timeline`` (``quipu.rebuild.rebuild_projection``) over the whole log the bench has
written by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bench.common import DEFINITION, Progress, log
from commands.as_of import resolve_as_of
from commands.executions import ExecutionService
from commands.log import batches
from commands.replay_log import replay, replay_range
from commands.store import EventStore
from commands.workflows import WorkflowInput, WorkflowService
from domain.aggregate import CommandContext
from domain.execution import Execution
from quipu.rebuild import rebuild_projection

TENANT = "benchtime"
PER_COMMAND = 100
READ_ROUNDS = 3


@dataclass
class TimeTravelResult:
    events: int
    build_s: float
    snapshots: int
    interval: int
    with_ms: list[float]
    without_ms: list[float]
    replay_eps: float
    log_read_eps: float
    rebuild_events: int
    rebuild_eps: float
    execution_id: UUID | None = None  # the execution and its middle event, for the peer phase
    middle_event: str | None = None

    @property
    def with_p50(self) -> float:
        return statistics.median(self.with_ms)

    @property
    def without_p50(self) -> float:
        return statistics.median(self.without_ms)


def build(store: EventStore, n: int) -> tuple[UUID, float]:
    """One execution of about ``n`` events."""
    workflows = WorkflowService(store)
    executions = ExecutionService(store, workflows)
    ctx = CommandContext(TENANT, "bench")
    t0 = time.perf_counter()
    workflow, _ = workflows.create(ctx, WorkflowInput("time travel", "", DEFINITION, {}))
    execution, _ = executions.start(ctx, workflow.id, version=None, input={"topic": "time travel"})
    execution = executions.act(ctx, execution.id, lambda e, c: e.heartbeat(c, "work", worker="bench"))
    progress = Progress("building the execution", n)
    ending = 5  # node_completed, its checkpoint, end scheduled and completed, succeeded
    while execution.version < n - ending:
        count = min(PER_COMMAND, n - ending - execution.version)

        def checkpoints(e: Execution, c: CommandContext, count: int = count) -> None:
            for _ in range(count):
                e.take_checkpoint(c, "bench")

        execution = executions.act(ctx, execution.id, checkpoints)
        progress.update(execution.version)
    execution = executions.act(ctx, execution.id, lambda e, c: e.complete_node(c, "work", {"done": True}))
    progress.done()
    assert execution.status.value == "succeeded"
    return execution.id, time.perf_counter() - t0


async def state_as_of(
    conn: AsyncConnection[DictRow], store: EventStore, execution_id: UUID, event: str, *, snapshots: bool
) -> tuple[float, Execution]:
    t0 = time.perf_counter()
    _, point = await resolve_as_of(conn, TENANT, execution_id, "execution", event)
    assert point is not None
    execution = store.load(Execution, execution_id, TENANT, version=point.version, snapshots=snapshots)
    return (time.perf_counter() - t0) * 1000, execution


async def _measure(store: EventStore, database_url: str, execution_id: UUID, repeats: int) -> TimeTravelResult:
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM quipu_snapshots WHERE originator_id = %s", (execution_id,))
        snapshots = int((await cur.fetchone() or {"n": 0})["n"])
        r = await replay_range(conn, TENANT, execution_id)
        cur = await conn.execute(
            "SELECT event_id, version, notification_id FROM event_dag WHERE stream_id = %s ORDER BY version",
            (execution_id,),
        )
        own = await cur.fetchall()
        middle = str(own[len(own) // 2]["event_id"])
        with_ms, without_ms = [], []
        for i in range(repeats + 1):  # the first round warms caches and is not counted
            a_ms, a = await state_as_of(conn, store, execution_id, middle, snapshots=True)
            b_ms, b = await state_as_of(conn, store, execution_id, middle, snapshots=False)
            assert a.version == b.version == own[len(own) // 2]["version"] and a.state == b.state
            if i:
                with_ms.append(a_ms)
                without_ms.append(b_ms)

        @contextlib.asynccontextmanager
        async def connect() -> AsyncIterator[AsyncConnection[DictRow]]:
            yield conn

        replay_rates, read_rates = [], []
        for _ in range(READ_ROUNDS):  # alternating, median: one noisy round does not decide
            t0 = time.perf_counter()
            replayed = sum([len(msgspec.json.encode(e)) > 0 async for e in replay(connect, r)])
            replay_rates.append(replayed / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            read = 0
            async for batch in batches(conn, own[0]["notification_id"] - 1, own[-1]["notification_id"]):
                read += sum(len(msgspec.json.encode(e)) > 0 for e in batch)
            read_rates.append(read / (time.perf_counter() - t0))
        cur = await conn.execute("SELECT count(*) AS n FROM quipu_events")
        total = int((await cur.fetchone() or {"n": 0})["n"])
    t0 = time.perf_counter()
    await rebuild_projection(database_url, "timeline")
    rebuild_s = time.perf_counter() - t0
    return TimeTravelResult(
        events=len(own),
        build_s=0.0,
        snapshots=snapshots,
        interval=store.snapshot_interval,
        with_ms=with_ms,
        without_ms=without_ms,
        replay_eps=statistics.median(replay_rates),
        log_read_eps=statistics.median(read_rates),
        rebuild_events=total,
        rebuild_eps=total / rebuild_s,
        execution_id=execution_id,
        middle_event=middle,
    )


def event_ids(database_url: str, execution_id: UUID) -> list[str]:
    """The ids of the execution's events, in stream order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = conn.execute("SELECT event_id FROM event_dag WHERE stream_id = %s ORDER BY version", (execution_id,))
        return [str(row[0]) for row in ids.fetchall()]


def measure(store: EventStore, database_url: str, n: int, repeats: int) -> TimeTravelResult:
    execution_id, build_s = build(store, n)
    log(f"  execution built: {n} events in {build_s:.1f} s")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    result = asyncio.run(_measure(store, database_url, execution_id, repeats))
    result.build_s = build_s
    return result
