"""2. Append -> read-model lag through Relay -> NATS JetStream -> 'workflows' Projector.

Method: the appender thread records, per workflow id, the wall-clock time at which
``EventStore.save_all`` returned (the append transaction has committed by then). The
projector's ``apply_batch`` is wrapped (in this process only, src/ is untouched) to record
the wall-clock time right after it returns, i.e. after the read-model transaction has
committed and the rows are visible to every other connection. Lag = projector commit
time - append commit time, per event, on the one machine clock. At the end every id is also checked
to be present in rm_workflows.workflows from an independent connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

import bus.consumer as consumer_module
from bench.common import log, new_workflow
from bus.consumer import Projector
from bus.relay import Relay
from bus.runtime import NatsEndpoint
from bus.subjects import Subjects
from commands.store import EventStore
from domain.envelope import EventEnvelope
from projections.registry import projection

TENANT = "benchlag"


@dataclass
class LagResult:
    lags_ms: list[float]
    target_rate: float
    achieved_rate: float
    missing: int


async def _wait_caught_up(database_url: str, timeout: float) -> None:
    """Until the projector's position reaches the head of the log (old events drained)."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            try:
                cur = await conn.execute(
                    "SELECT (SELECT coalesce(max(notification_id), 0) FROM quipu_events)"
                    " - (SELECT notification_id FROM rm_workflows.tracking)"
                )
                row = await cur.fetchone()
                if row and row[0] is not None and row[0] <= 0:
                    return
            except psycopg.errors.UndefinedTable:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("projector did not catch up with the log")


async def _wait_consumer_idle(
    nats_url: NatsEndpoint | str, projector: Projector, subjects: Subjects, timeout: float
) -> None:
    """Until the projector's durable consumer has nothing left to deliver (steady state)."""
    from bus.runtime import connect_nats

    nc = await connect_nats(nats_url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                info = await js.consumer_info(subjects.events_stream, projector.durable_name)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
            await asyncio.sleep(0.05)
        raise TimeoutError("projector consumer did not drain")
    finally:
        await nc.close()


async def measure_async(
    store: EventStore, database_url: str, nats_url: NatsEndpoint | str, rate: float, seconds: float
) -> LagResult:
    visible: dict[uuid.UUID, float] = {}
    original = consumer_module.apply_batch

    async def timed_apply(conn: Any, proj: Any, envelopes: Sequence[EventEnvelope], **kw: Any) -> int:
        n = await original(conn, proj, envelopes, **kw)
        now = time.time()  # wall clock: comparable across processes on one machine
        for e in envelopes:
            visible.setdefault(e.stream_id, now)
        return n

    consumer_module.apply_batch = timed_apply  # type: ignore[assignment]
    stop = asyncio.Event()
    subjects = Subjects(prefix="bench" + uuid.uuid4().hex[:8])
    projector = Projector(projection("workflows"), database_url, nats_url, subjects)
    tasks = [
        asyncio.create_task(Relay(database_url, nats_url, subjects).run(stop)),
        asyncio.create_task(projector.run(stop)),
    ]
    try:
        log("  lag: draining earlier events through relay + projector ...")
        # One fresh event so the log is never empty, then wait for everything to be applied.
        await asyncio.to_thread(store.save_all, new_workflow(TENANT))
        await _wait_caught_up(database_url, timeout=300)
        await _wait_consumer_idle(nats_url, projector, subjects, timeout=300)

        # The load comes from another process, as clients would: an in-process appender
        # would compete with the relay and projector for the GIL and measure itself.
        total = int(rate * seconds)
        log(f"  lag: appending {total} events at {rate:.0f}/s from a separate process ...")
        t0 = time.monotonic()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            stamped = await asyncio.to_thread(pool.apply, _append_paced, (database_url, rate, total))
        elapsed = time.monotonic() - t0
        committed = {uuid.UUID(k): v for k, v in stamped}
        deadline = time.monotonic() + 30
        while any(k not in visible for k in committed) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 15)
        consumer_module.apply_batch = original  # type: ignore[assignment]

    # Independent check: the rows really are in the read model.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM rm_workflows.workflows WHERE tenant_id = %s AND workflow_id = ANY(%s)",
            (TENANT, list(committed)),
        )
        row = await cur.fetchone()
        present = int(row[0]) if row else 0
    lags = [(visible[k] - t) * 1000 for k, t in committed.items() if k in visible]
    return LagResult(lags, rate, len(committed) / elapsed, len(committed) - present)


def _append_paced(database_url: str, rate: float, total: int, writers: int = 4) -> list[tuple[str, float]]:
    """Child process: ``writers`` threads append ``total`` workflows at ``rate`` in all (as
    concurrent clients would; group commit serves them); returns (id, commit time)."""
    import threading

    from quipu.wiring import build_store

    store = build_store(database_url, writers)
    stamped: list[tuple[str, float]] = []
    t0 = time.monotonic()

    def writer(k: int) -> None:
        for i in range(k, total, writers):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            wf = new_workflow(TENANT, i=i)
            store.save_all(wf)
            stamped.append((str(wf.id), time.time()))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        store.close()
    return stamped


def measure(
    store: EventStore, database_url: str, nats_url: NatsEndpoint | str, rate: float, seconds: float
) -> LagResult:
    return asyncio.run(measure_async(store, database_url, nats_url, rate, seconds))
