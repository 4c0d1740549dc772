"""6. Memory search through the HTTP API: Cranfield quality, ingestion rate, search latency.

Setup: the API runs in this process (``create_app`` over ``httpx.ASGITransport``, as the
integration tests run it) with the relay and the ``memory_search`` projector as tasks, so a
note goes POST -> event store -> relay -> NATS -> projector (embedding a batch's notes in one call)
-> ``rm_memory_search`` before it can be found.

Quality: the 1,400 Cranfield abstracts are posted as notes (``CONCURRENCY`` posts in flight);
once the read model holds them all, the 225 queries run through ``POST /api/v1/notes/search``
(``limit`` 100) in keyword, vector and hybrid mode, scored with ``bench.search_quality``'s
Cranfield judgements and metrics (nDCG@10, recall@100). Ingestion rate: notes from the first
post until the last one is indexed, embedding included.

Latency: N short synthetic notes (20-60 words of Cranfield text) in a tenant of their own,
then Cranfield questions one at a time through the API (top 10) per mode. Baseline: the
engine's query (``projections.search_query``, query embedding included) called directly on a
connection to the same read model, no HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from api.app import create_app
from bench.common import Progress, fmt, log, pct
from bench.search_quality import cranfield_docs, cranfield_qrels, cranfield_queries, cranfield_windows, evaluate
from bus.runtime import NatsEndpoint
from bus.subjects import Subjects
from commands.access import issue_bootstrap_key
from projections.memory_search import SCHEMA
from projections.search_query import SearchFilters, hybrid_search, keyword_search, vector_search
from quipu.wiring import Wiring

# The hybrid fusion the API serves (search_service.py), not the engine's RRF default.
SERVED_HYBRID = functools.partial(hybrid_search, fusion="weighted")
MODES = ("keyword", "vector", "hybrid")
ENGINE = {"keyword": keyword_search, "vector": vector_search, "hybrid": SERVED_HYBRID}
CRANFIELD_TENANT, SYNTHETIC_TENANT = "cranfield", "benchnotes"
CONCURRENCY = 8
# The projector commits a batch (up to 256 notes) after embedding all of it: on a busy
# 2-core machine one batch of Cranfield abstracts can take over a minute.
STALL_S = 300
NOTE_TYPES = ("fact", "insight", "procedure")


@dataclass
class Ingestion:
    notes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.notes / self.seconds


@dataclass
class MemorySearchResult:
    cranfield: Ingestion
    queries: int
    scores: dict[str, tuple[float, float]]  # mode -> (nDCG@10, recall@100)
    synthetic: Ingestion
    latency_queries: int
    api_ms: dict[str, list[float]] = field(default_factory=dict)
    direct_ms: dict[str, list[float]] = field(default_factory=dict)


async def _indexed(conn: AsyncConnection[DictRow], tenant: str) -> int:
    cur = await conn.execute(
        f"SELECT count(*) AS n FROM {SCHEMA}.documents"
        " WHERE tenant_id = %s AND entity_type = 'note' AND valid_to IS NULL",
        (tenant,),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def _ingest(
    client: httpx.AsyncClient,
    conn: AsyncConnection[DictRow],
    headers: dict[str, str],
    tenant: str,
    bodies: list[dict[str, Any]],
    label: str,
) -> tuple[Ingestion, list[str]]:
    """Post ``bodies`` as notes, CONCURRENCY at a time; wait until all are indexed.
    Returns the rate and the note ids, in the order of ``bodies``."""
    ids: list[str] = [""] * len(bodies)
    progress = Progress(f"{label} posted", len(bodies))
    posted = [0]

    async def poster(k: int) -> None:
        for i in range(k, len(bodies), CONCURRENCY):
            r = await client.post("/api/v1/notes", json=bodies[i], headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"POST /api/v1/notes answered {r.status_code}: {r.text[:300]}")
            ids[i] = r.json()["note_id"]
            posted[0] += 1
            progress.update(posted[0])

    t0 = time.perf_counter()
    await asyncio.gather(*(poster(k) for k in range(CONCURRENCY)))
    progress.done()
    waiting = Progress(f"{label} indexed", len(bodies))
    last, stalled_since = -1, time.perf_counter()
    while (n := await _indexed(conn, tenant)) < len(bodies):
        waiting.update(n)
        if n != last:
            last, stalled_since = n, time.perf_counter()
        elif time.perf_counter() - stalled_since > STALL_S:
            raise TimeoutError(f"{label}: {n}/{len(bodies)} indexed, none for {STALL_S} s (relay or projector stuck)")
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - t0
    waiting.done()
    return Ingestion(len(bodies), seconds), ids


def _cranfield_bodies() -> tuple[list[dict[str, Any]], list[int]]:
    bodies, doc_ids = [], []
    for doc_id, title, text in cranfield_docs():
        bodies.append(
            {
                "title": (title or f"Cranfield {doc_id}")[:200],
                "content": text or title or f"Cranfield {doc_id}",
                "note_type": "fact",
                "metadata": {"cranfield_id": doc_id},
            }
        )
        doc_ids.append(doc_id)
    return bodies, doc_ids


def synthetic_bodies(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Short notes: 20-60 word windows of Cranfield text, three note types."""
    rng = random.Random(seed)
    return [
        {"title": title, "content": text, "note_type": rng.choice(NOTE_TYPES), "metadata": {"batch": i // 1000}}
        for i, (title, text) in enumerate(cranfield_windows(n, seed))
    ]


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str, mode: str, limit: int) -> list[str]:
    r = await client.post("/api/v1/notes/search", json={"query": query, "limit": limit, "mode": mode}, headers=headers)
    if r.status_code != 200:
        raise RuntimeError(f"search ({mode}) answered {r.status_code}: {r.text[:300]}")
    return [hit["entity_id"] for hit in r.json()["results"]]


async def _timed(call: Callable[[str], Awaitable[object]], queries: list[str]) -> list[float]:
    for q in queries[:5]:  # warm caches and the embedder
        await call(q)
    timings = []
    for q in queries:
        t0 = time.perf_counter()
        await call(q)
        timings.append((time.perf_counter() - t0) * 1000)
    return timings


async def _run(wiring: Wiring, notes: int, rounds: int) -> MemorySearchResult:
    stop = asyncio.Event()
    async with wiring.api_context() as ctx:
        keys = {
            t: await asyncio.to_thread(issue_bootstrap_key, ctx.store, t, ["read", "write"], "bench")
            for t in (CRANFIELD_TENANT, SYNTHETIC_TENANT)
        }
        async with await AsyncConnection.connect(wiring.database_url, autocommit=True) as raw:
            # This fresh prefix's relay starts at the log's head, not at the earlier phases' events.
            await raw.execute(
                "CREATE TABLE IF NOT EXISTS relay_position (name text PRIMARY KEY, notification_id bigint NOT NULL)"
            )
            await raw.execute(
                "INSERT INTO relay_position SELECT %s, coalesce(max(notification_id), 0) FROM quipu_events",
                (wiring.subjects.prefix,),
            )
        tasks = [asyncio.create_task(wiring.relay().run(stop))]
        tasks += [asyncio.create_task(p.run(stop)) for p in wiring.projectors(["memory_search"])]
        conn = await AsyncConnection.connect(wiring.database_url, autocommit=True, row_factory=dict_row)
        app: Any = create_app(ctx)  # Litestar is an ASGI app; httpx types the callable narrowly
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://quipu", timeout=120) as client:
                auth = {t: {"Authorization": f"Bearer {k}"} for t, k in keys.items()}
                return await _measure(client, conn, auth, notes, rounds)
        finally:
            stop.set()
            for t in tasks:
                try:
                    await asyncio.wait_for(t, 15)
                except Exception as error:  # a part that failed is reported, not hidden
                    log(f"  memory search: background part ended with {error!r}")
            await conn.close()


async def _measure(
    client: httpx.AsyncClient,
    conn: AsyncConnection[DictRow],
    auth: dict[str, dict[str, str]],
    notes: int,
    rounds: int,
) -> MemorySearchResult:
    bodies, doc_ids = _cranfield_bodies()
    cran = auth[CRANFIELD_TENANT]
    cranfield, ids = await _ingest(client, conn, cran, CRANFIELD_TENANT, bodies, "Cranfield notes")
    to_doc = dict(zip(ids, doc_ids, strict=True))
    await conn.execute(f"VACUUM ANALYZE {SCHEMA}.documents")
    queries, qrels = cranfield_queries(), cranfield_qrels()
    scores: dict[str, tuple[float, float]] = {}
    for mode in MODES:
        rankings = {qid: [to_doc[i] for i in await _search(client, cran, text, mode, 100)] for qid, text in queries}
        scores[mode] = evaluate(rankings, qrels)
        log(f"  {mode}: nDCG@10 {scores[mode][0]:.4f}, recall@100 {scores[mode][1]:.4f} (through the API)")

    synth = auth[SYNTHETIC_TENANT]
    synthetic, _ = await _ingest(client, conn, synth, SYNTHETIC_TENANT, synthetic_bodies(notes), f"{notes:,} notes")
    await conn.execute(f"VACUUM ANALYZE {SCHEMA}.documents")
    questions = [q for _, q in queries][:rounds]
    result = MemorySearchResult(cranfield, len(qrels), scores, synthetic, len(questions))
    only_notes = SearchFilters(entity_types=["note"])
    for mode in MODES:

        async def api(q: str, mode: str = mode) -> object:
            return await _search(client, synth, q, mode, 10)

        async def direct(q: str, mode: str = mode) -> object:
            search = ENGINE[mode]
            return await search(conn, SYNTHETIC_TENANT, q, filters=only_notes, limit=10, schema=SCHEMA)

        result.api_ms[mode] = await _timed(api, questions)
        result.direct_ms[mode] = await _timed(direct, questions)
        log(f"  {mode} latency measured ({len(questions)} queries, API and direct)")
    return result


def measure(database_url: str, nats_url: NatsEndpoint | str, notes: int, rounds: int = 225) -> MemorySearchResult:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    # A high rate limit: the bench's posts are one client's, far above the default per-key budget.
    wiring = Wiring(
        database_url, nats_url, Subjects("bench" + uuid.uuid4().hex[:8]), pool_size=8, rate_limit_per_minute=10**7
    )
    return asyncio.run(_run(wiring, notes, rounds))


def rows(r: MemorySearchResult) -> list[tuple[str, str, str, str]]:
    """The bench table's rows: quality against keyword, latency against the engine called directly."""
    out: list[tuple[str, str, str, str]] = []
    kn, kr = r.scores["keyword"]
    for mode in MODES:
        n, rec = r.scores[mode]
        baseline = "-" if mode == "keyword" else f"{kn:.3f} / {kr:.3f}"
        ratio = "-" if mode == "keyword" else f"{(n / kn - 1) * 100:+.0f}% / {(rec / kr - 1) * 100:+.0f}%"
        out.append(
            (
                f"Cranfield nDCG@10 / recall@100 through the API, {mode} ({r.queries} queries,"
                f" {r.cranfield.notes:,} notes; baseline keyword)",
                f"{n:.3f} / {rec:.3f}",
                baseline,
                ratio,
            )
        )
    out.append(
        (
            f"Note ingestion through the API, Cranfield ({r.cranfield.notes:,} notes of ~200 tokens, {CONCURRENCY}"
            " posts in flight; first post -> all in rm_memory_search, embedding included)",
            fmt(r.cranfield.rate, "notes/s"),
            "-",
            "-",
        )
    )
    out.append(
        (
            f"Note ingestion through the API, {r.synthetic.notes:,} notes of 20-60 words (same path)",
            fmt(r.synthetic.rate, "notes/s"),
            "-",
            "-",
        )
    )
    for mode in MODES:
        api, direct = r.api_ms[mode], r.direct_ms[mode]
        for p in (50, 99):
            a, d = pct(api, p), pct(direct, p)
            out.append(
                (
                    f"Search latency p{p} through the API, {mode}, {r.synthetic.notes:,} notes, top 10"
                    f" ({r.latency_queries} Cranfield questions; baseline the engine's query called directly,"
                    " query embedding included)",
                    fmt(a, "ms"),
                    fmt(d, "ms"),
                    f"{a / d:.1f}x",
                )
            )
    return out
