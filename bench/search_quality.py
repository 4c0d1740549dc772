"""Memory search: retrieval quality on Cranfield, and latency and ingestion rate at N notes.

Quality: the Cranfield collection (1,400 aeronautics abstracts, 225 queries with graded
judgements, vendored in ``bench/data/cranfield``) goes through the search engine
(``projections.search_index`` / ``search_query``): each abstract is a note (title ``.T``, text
``.W``, embedded from ``.W``, which starts with the title), then every query runs in keyword,
vector and hybrid mode (top 100). nDCG@10 uses trec_eval-style linear gain from ``cranqrel``:
gain = 5 - grade (grade 1, the most relevant, gains 4; grade -1, "not relevant", is dropped);
recall@100 counts grades 1-4 as relevant. (``QRelsCorrectedforTRECeval`` maps the -1 lines to
grade 5, the highest, so it is not used.) Queries are numbered 1..225 in file order.

Latency and ingestion: N synthetic notes (20-80 word windows of Cranfield text, 100
trajectories, three note types, metadata) are ingested with embeddings, in batches of 256
(embedding, then one transaction per batch); then Cranfield queries run one at a time in each
mode, p50/p99 measured over the whole call, query embedding included for vector and hybrid;
the same with three-word lookups, and hybrid with a trajectory + metadata filter. The notes
share the questions' vocabulary, so a question's words match a third of them: a worst case
for keyword ranking, whose cost grows with the number of matching notes.

``python -m bench.search_quality [--quick] [--notes N] [--skip-quality] [--skip-latency]``
(``--quick``: 2,000 notes). Postgres: the embedded one, or ``QUIPU_BENCH_DATABASE_URL``; the
collection: ``QUIPU_CRANFIELD_DIR`` or the copy in ``bench/data/cranfield``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import AsyncConnection

from bench.common import Progress, fmt, log, pct
from bench.infra import infra
from projections.embedding import get_embedder
from projections.search_index import Document, VectorSearchUnavailable, create_search_schema, upsert_document
from projections.search_query import SearchFilters, SearchHit, hybrid_search, keyword_search, vector_search

# Vendored (bench/data/cranfield/SOURCE.md says where from), so the bench runs from a bare clone.
CRANFIELD = Path(os.environ.get("QUIPU_CRANFIELD_DIR") or Path(__file__).resolve().parent / "data" / "cranfield")
# The hybrid fusion the API serves (search_service.py), not the engine's RRF default.
SERVED_HYBRID = functools.partial(hybrid_search, fusion="weighted")
MODES = {"keyword": keyword_search, "vector": vector_search, "hybrid": SERVED_HYBRID}
BATCH = 256


# -- Cranfield -----------------------------------------------------------------------------


def _records(path: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    tag = ""
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"^\.([ITABW])\s*(\S*)", line)
        if m:
            tag = m.group(1)
            if tag == "I":
                records.append({"I": m.group(2)})
            else:
                records[-1].setdefault(tag, "")
            continue
        if records and tag and tag != "I":
            records[-1][tag] += " " + line
    return [{k: " ".join(v.split()) for k, v in r.items()} for r in records]


def cranfield_docs() -> list[tuple[int, str, str]]:
    """(doc id, title, text) for the 1,400 abstracts."""
    return [(int(r["I"]), r.get("T", ""), r.get("W") or r.get("T", "")) for r in _records(CRANFIELD / "cran.all.1400")]


def cranfield_windows(n: int, seed: int) -> list[tuple[str, str]]:
    """(title, text) of ``n`` short notes: 20-60 word windows of Cranfield text, titled by their
    first five words (the synthetic notes of the search latency phases)."""
    rng = random.Random(seed)
    words = " ".join(text for _, _, text in cranfield_docs()).split()
    out = []
    for _ in range(n):
        length = rng.randint(20, 60)
        at = rng.randrange(0, len(words) - length)
        out.append((" ".join(words[at : at + 5]), " ".join(words[at : at + length])))
    return out


def cranfield_queries() -> list[tuple[int, str]]:
    return [(i + 1, r.get("W", "")) for i, r in enumerate(_records(CRANFIELD / "cran.qry"))]


def cranfield_qrels() -> dict[int, dict[int, int]]:
    """{query: {doc: gain}}, gain = 5 - grade, grade -1 dropped."""
    qrels: dict[int, dict[int, int]] = defaultdict(dict)
    for line in (CRANFIELD / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and int(parts[2]) >= 1:
            qrels[int(parts[0])][int(parts[1])] = 5 - int(parts[2])
    return qrels


def evaluate(rankings: dict[int, list[int]], qrels: dict[int, dict[int, int]]) -> tuple[float, float]:
    """Mean nDCG@10 (graded, linear gain) and recall@100 over queries with judgements."""
    ndcg, recall = [], []
    for qid, rel in qrels.items():
        ranked = rankings.get(qid, [])
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
        ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
        ndcg.append(dcg / ideal)
        recall.append(len(set(ranked[:100]) & set(rel)) / len(rel))
    return sum(ndcg) / len(ndcg), sum(recall) / len(recall)


# -- ingestion -----------------------------------------------------------------------------


@dataclass
class Ingested:
    count: int
    embed_s: float
    write_s: float

    @property
    def rate(self) -> float:
        return self.count / (self.embed_s + self.write_s)


async def ingest(conn: AsyncConnection[object], docs: list[Document], vector_text: list[str], label: str) -> Ingested:
    """Embed and write ``docs`` batch by batch, timing the two parts."""
    embedder = get_embedder()
    progress = Progress(label, len(docs))
    embed_s = write_s = 0.0
    for start in range(0, len(docs), BATCH):
        t0 = time.perf_counter()
        vectors = await asyncio.to_thread(embedder.embed, vector_text[start : start + BATCH])
        t1 = time.perf_counter()
        async with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            for i, doc in enumerate(docs[start : start + BATCH]):
                await upsert_document(cur, doc, notification_id=start + i + 1, embedding=vectors[i], schema="rm_search")
        write_s += time.perf_counter() - t1
        embed_s += t1 - t0
        progress.update(start + len(vectors))
    progress.done()
    return Ingested(len(docs), embed_s, write_s)


async def _fresh_index(database_url: str) -> AsyncConnection[object]:
    conn: AsyncConnection[object] = await AsyncConnection.connect(database_url, autocommit=True)
    await conn.execute("DROP SCHEMA IF EXISTS rm_search CASCADE")
    await create_search_schema(conn)
    return conn


def _vacuum(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rm_search.documents")


# -- quality -------------------------------------------------------------------------------


@dataclass
class QualityResult:
    ingested: Ingested
    queries: int
    scores: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # None: unavailable


async def run_quality(database_url: str) -> QualityResult:
    docs = cranfield_docs()
    created = datetime(2024, 1, 1, tzinfo=UTC)
    notes = [
        Document("cranfield", "note", uuid.UUID(int=doc_id), text, created, title=title) for doc_id, title, text in docs
    ]
    conn = await _fresh_index(database_url)
    try:
        ingested = await ingest(conn, notes, [text for _, _, text in docs], "Cranfield notes")
        _vacuum(database_url)
        queries, qrels = cranfield_queries(), cranfield_qrels()
        result = QualityResult(ingested, len(qrels))
        for mode, search in MODES.items():
            rankings: dict[int, list[int]] = {}
            try:
                for qid, text in queries:
                    hits = await search(conn, "cranfield", text, limit=100)
                    rankings[qid] = [h.entity_id.int for h in hits]
            except VectorSearchUnavailable:
                result.scores[mode] = None
                continue
            ndcg, recall = result.scores[mode] = evaluate(rankings, qrels)
            log(f"  {mode}: nDCG@10 {ndcg:.4f}, recall@100 {recall:.4f}")
        return result
    finally:
        await conn.close()


# -- latency -------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    ingested: Ingested
    queries: int
    ms: dict[str, list[float] | None] = field(default_factory=dict)


def synthetic_notes(n: int, seed: int = 7) -> tuple[list[Document], list[uuid.UUID]]:
    rng = random.Random(seed)
    words = " ".join(text for _, _, text in cranfield_docs()).split()
    trajectories = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(100)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    notes = []
    for i in range(n):
        length = rng.randint(20, 80)
        at = rng.randrange(0, len(words) - length)
        notes.append(
            Document(
                "bench",
                "note",
                uuid.UUID(int=rng.getrandbits(128)),
                " ".join(words[at : at + length]),
                start + timedelta(seconds=i),
                title=" ".join(words[at : at + 5]),
                metadata={"note_type": rng.choice(["fact", "insight", "procedure"]), "batch": i // 1000},
                trajectory_id=trajectories[i % len(trajectories)],
            )
        )
    return notes, trajectories


def short_queries(n: int, seed: int = 11) -> list[str]:
    """Three-word lookups (windows of Cranfield text), the kind of query an agent sends."""
    rng = random.Random(seed)
    words = " ".join(text for _, _, text in cranfield_docs()).split()
    return [" ".join(words[i : i + 3]) for i in (rng.randrange(len(words) - 3) for _ in range(n))]


async def run_latency(database_url: str, n: int, rounds: int) -> LatencyResult:
    notes, trajectories = synthetic_notes(n)
    conn = await _fresh_index(database_url)
    try:
        ingested = await ingest(conn, notes, [d.text for d in notes], f"{n:,} notes")
        _vacuum(database_url)
        questions = [q for _, q in cranfield_queries()][:rounds]
        lookups = short_queries(len(questions))
        filtered = SearchFilters(trajectory_ids=[trajectories[3]], metadata={"note_type": "fact"})
        result = LatencyResult(ingested, len(questions))
        cases = [
            *((f"{mode}, Cranfield questions", search, questions, SearchFilters()) for mode, search in MODES.items()),
            *((f"{mode}, 3-word queries", search, lookups, SearchFilters()) for mode, search in MODES.items()),
            ("hybrid, Cranfield questions, trajectory + metadata filter", SERVED_HYBRID, questions, filtered),
        ]
        for name, search, queries, filters in cases:
            timings: list[float] = []
            try:
                for q in queries[:5]:  # warm caches and the embedder
                    await search(conn, "bench", q, filters=filters, limit=10)
                for q in queries:
                    t0 = time.perf_counter()
                    hits: list[SearchHit] = await search(conn, "bench", q, filters=filters, limit=10)
                    timings.append((time.perf_counter() - t0) * 1000)
                    assert hits or name.startswith("keyword") or filters.trajectory_ids, f"{name}: nothing for {q!r}"
            except VectorSearchUnavailable:
                result.ms[name] = None
                continue
            result.ms[name] = timings
            log(f"  {name}: p50 {pct(timings, 50):.1f} ms, p99 {pct(timings, 99):.1f} ms")
        return result
    finally:
        await conn.close()


# -- report --------------------------------------------------------------------------------


def _bm25() -> str:
    """The baseline row's value; bm25s and PyStemmer come with the ``bench`` extra."""
    from bench.bm25_baseline import cranfield

    try:
        b = cranfield()
    except ImportError as error:
        return f"unavailable ({error}; pip install -e '.[bench]')"
    return f"{b.ndcg10:.3f} / {b.recall100:.3f}"


def report(quality: QualityResult | None, latency: LatencyResult | None) -> str:
    lines = ["| Memory search | value |", "|---|---|"]
    if quality:
        q = quality.ingested
        for mode, scores in quality.scores.items():
            value = "unavailable (no pgvector)" if scores is None else f"{scores[0]:.3f} / {scores[1]:.3f}"
            lines.append(
                f"| Cranfield nDCG@10 / recall@100, {mode} ({quality.queries} queries, 1,400 notes) | {value} |"
            )
        lines.append(f"| Cranfield nDCG@10 / recall@100, stemmed BM25 baseline (bm25s, PyStemmer) | {_bm25()} |")
        lines.append(
            f"| Cranfield ingestion, 1,400 notes of ~200 tokens (embedding {q.count / q.embed_s:,.1f} notes/s,"
            f" writing {q.count / q.write_s:,.0f} notes/s) | {fmt(q.rate, 'notes/s')} |"
        )
    if latency:
        i = latency.ingested
        lines.append(
            f"| Ingestion, {i.count:,} notes of 20-80 words, embedding included (embedding"
            f" {i.count / i.embed_s:,.1f} notes/s, writing {i.count / i.write_s:,.0f} notes/s)"
            f" | {fmt(i.rate, 'notes/s')} |"
        )
        for name, ms in latency.ms.items():
            value = "unavailable (no pgvector)" if ms is None else f"{pct(ms, 50):.1f} / {pct(ms, 99):.1f} ms"
            lines.append(
                f"| Search latency p50 / p99, {name}, {i.count:,} notes, top 10 ({latency.queries} queries) | {value} |"
            )
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> None:
    notes = args.notes or (2_000 if args.quick else 100_000)
    with infra() as env:
        quality = None if args.skip_quality else await run_quality(env.database_url)
        latency = None if args.skip_latency else await run_latency(env.database_url, notes, args.queries)
    print(report(quality, latency))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 notes for the latency part instead of 100,000")
    parser.add_argument("--notes", type=int, default=0, help="notes for the latency part")
    parser.add_argument("--queries", type=int, default=225, help="timed queries per mode (Cranfield's, in order)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
