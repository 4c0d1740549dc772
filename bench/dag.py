"""3. Ancestors / descendants latency (commands.forensics.walk) on a generated DAG.

Shape: the first 1,000 events are roots; every later event i has 1-3 parents drawn
uniformly from events [i-2000, i-1000), so parents are always committed in an earlier
batch and depth grows by about one per ~1,200 events (max depth ~80-100 at 100k).
Events are appended with ``EventStore.save_all(*aggregates)`` in batches of 1,000
(one transaction each, through the DAG recorder).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from bench.common import Progress, log, new_workflow
from commands.forensics import walk
from commands.store import EventStore

TENANT = "benchdag"
BATCH = 1000
WINDOW_LO, WINDOW_HI = 2000, 1000


@dataclass
class DagResult:
    events: int
    max_depth: int
    build_s: float
    up_ms: list[float]
    down_ms: list[float]
    select1_ms: list[float]
    mean_returned_up: float
    mean_returned_down: float


def build(store: EventStore, n: int, rng: random.Random) -> tuple[list[uuid.UUID], float]:
    event_ids: list[uuid.UUID] = []
    progress = Progress("building DAG", n)
    t0 = time.perf_counter()
    while len(event_ids) < n:
        base = len(event_ids)
        batch = []
        new_ids = []
        for i in range(base, min(base + BATCH, n)):
            if i <= WINDOW_HI:
                parents: tuple[uuid.UUID, ...] = ()
            else:
                lo, hi = max(0, i - WINDOW_LO), i - WINDOW_HI
                parents = tuple({event_ids[rng.randrange(lo, hi)] for _ in range(rng.randint(1, 3))})
            wf = new_workflow(TENANT, parents, i)
            batch.append(wf)
            assert wf.last_event_id is not None
            new_ids.append(wf.last_event_id)
        store.save_all(*batch)
        event_ids.extend(new_ids)
        progress.update(len(event_ids))
    progress.done()
    return event_ids, time.perf_counter() - t0


async def _time_queries(database_url: str, ids: list[uuid.UUID], samples: int, rng: random.Random) -> DagResult:
    picks = [rng.choice(ids) for _ in range(samples)]
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT max(depth) AS d, count(*) AS n FROM event_dag WHERE tenant_id = %s", (TENANT,))
        row = await cur.fetchone()
        assert row is not None
        # Warm-up: plan caches, buffer cache.
        for e in picks[:20]:
            await walk(conn, TENANT, e, upward=True, max_depth=100, limit=100)
            await walk(conn, TENANT, e, upward=False, max_depth=100, limit=100)
        out: dict[str, list[float]] = {"up": [], "down": [], "one": []}
        returned = {"up": 0, "down": 0}
        progress = Progress("walk queries", samples)
        for k, e in enumerate(picks):
            for direction, upward in (("up", True), ("down", False)):
                t = time.perf_counter()
                result = await walk(conn, TENANT, e, upward=upward, max_depth=100, limit=100)
                out[direction].append((time.perf_counter() - t) * 1000)
                returned[direction] += len(result)
            t = time.perf_counter()
            await (await conn.execute("SELECT 1")).fetchone()
            out["one"].append((time.perf_counter() - t) * 1000)
            progress.update(k + 1)
        progress.done()
    return DagResult(
        int(row["n"]),
        int(row["d"]),
        0.0,
        out["up"],
        out["down"],
        out["one"],
        returned["up"] / samples,
        returned["down"] / samples,
    )


def measure(store: EventStore, database_url: str, n: int, samples: int) -> DagResult:
    rng = random.Random(42)
    ids, build_s = build(store, n, rng)
    log(f"  DAG built: {len(ids)} events in {build_s:.1f} s")
    # A bulk load outruns autovacuum's analyze; a live database has statistics, so
    # measure with them (without, the planner guesses and walks are 5-10x slower).
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    result = asyncio.run(_time_queries(database_url, ids, samples, rng))
    result.build_s = build_s
    return result
