"""Lock acquire/release round trips through LockService vs a bare Postgres advisory lock.

Quipu's round trip is what an agent pays for a fenced, recorded lock: acquire (load the
resource's lock stream, check the holder is a live agent, append ``lock.acquired``) then
release (resolve the grant, append ``lock.released``), one agent on one resource, as an
agent taking the same lock again and again would. The baseline is the cheapest lock the
same database offers: ``pg_advisory_lock`` then ``pg_advisory_unlock`` on one connection,
which records nothing and fences nothing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from bench.common import Progress, fmt, pct
from commands.agents import AgentInput, AgentService
from commands.locks import AcquireInput, LockService
from commands.store import EventStore
from domain.aggregate import CommandContext

CTX = CommandContext("bench", "bench")


@dataclass
class LockResult:
    round_trips: int
    quipu_rps: float
    advisory_rps: float
    quipu_ms: list[float]
    advisory_ms: list[float]


def measure(store: EventStore, database_url: str, n: int) -> LockResult:
    agent, _ = AgentService(store, offline_after=timedelta(hours=1)).register(CTX, AgentInput("bench"))
    locks = LockService(store)
    resource = uuid.uuid4()
    data = AcquireInput(agent.id, "trajectory", resource, "Exclusive", 60_000)
    quipu_ms: list[float] = []
    progress = Progress("lock acquire/release via LockService", n)
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        _, grant = locks.acquire(CTX, data)
        locks.release(CTX, grant.lock_id, releasing_agent_id=agent.id)
        quipu_ms.append((time.perf_counter() - t0) * 1000)
        progress.update(i + 1)
    quipu_rps = n / (time.perf_counter() - started)
    progress.done()

    advisory_ms: list[float] = []
    key = resource.int & 0x7FFF_FFFF_FFFF_FFFF
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            advisory_ms.append((time.perf_counter() - t0) * 1000)
        advisory_rps = n / (time.perf_counter() - started)
    return LockResult(n, quipu_rps, advisory_rps, quipu_ms, advisory_ms)


def rows(r: LockResult) -> list[tuple[str, str, str, str]]:
    return [
        (
            f"Lock acquire + release round trips/s, one agent, one resource, {r.round_trips} in a row (LockService:"
            f" fenced grant and release recorded as events, p50 {fmt(pct(r.quipu_ms, 50), 'ms')}; baseline"
            f" pg_advisory_lock + pg_advisory_unlock on the same database, p50 {fmt(pct(r.advisory_ms, 50), 'ms')})",
            fmt(r.quipu_rps, "round trips/s"),
            fmt(r.advisory_rps, "round trips/s"),
            f"{r.quipu_rps / r.advisory_rps * 100:.0f}%",
        )
    ]


if __name__ == "__main__":  # just this row: python -m bench.locks [N]
    import sys

    from bench.infra import infra
    from quipu.wiring import build_store

    with infra() as env:
        bench_store = build_store(env.database_url, pool_size=4)
        try:
            result = measure(bench_store, env.database_url, int(sys.argv[1]) if len(sys.argv) > 1 else 500)
        finally:
            bench_store.close()
    for row in rows(result):
        print("| " + " | ".join(row) + " |")
