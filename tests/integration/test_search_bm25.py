"""BM25 keyword ranking against a brute-force BM25 computed in Python from the same documents.

Random histories (writes, rewrites, deletions, patches, replays, two tenants, several writes
per transaction, whose statistics catch up at commit) go through the index writers;
afterwards every keyword hit's score must equal BM25 over the tenant's current documents,
computed here from scratch, and the hits must be exactly the documents holding a query word.
The vocabulary's words are their own Postgres ``english`` lexemes (checked), so the reference
needs no stemmer.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection, AsyncCursor

from projections.search_bm25 import K1, TITLE_WEIGHT, B
from projections.search_index import Document, create_search_schema, patch_document, retire_document, upsert_document
from projections.search_query import SearchFilters, keyword_search

VOCABULARY = ("alpha", "beta", "gamma", "delta", "kappa", "sigma", "omega", "zeta")
TENANTS = ("t1", "t2")
T0 = datetime(2025, 1, 1, tzinfo=UTC)

words = st.lists(st.sampled_from(VOCABULARY), max_size=12)
#: (operation, tenant, entity slot, title words, text words)
operations = st.lists(
    st.tuples(
        st.sampled_from(["write", "write", "write", "delete", "patch"]),
        st.sampled_from(TENANTS),
        st.integers(0, 5),
        words,
        words,
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class Item:
    title: list[str]
    text: list[str]


def reference(items: dict[uuid.UUID, Item], query: set[str]) -> dict[uuid.UUID, float]:
    """Lucene BM25 over the current items, title words counting TITLE_WEIGHT times."""
    tf = {
        key: Counter({w: TITLE_WEIGHT * n for w, n in Counter(i.title).items()}) + Counter(i.text)
        for key, i in items.items()
    }
    tf = {key: counts for key, counts in tf.items() if counts}  # no terms: not a document for BM25
    n = len(tf)
    if n == 0:
        return {}
    dl = {key: sum(counts.values()) for key, counts in tf.items()}
    avgdl = sum(dl.values()) / n
    df = Counter(w for counts in tf.values() for w in counts)
    scores: dict[uuid.UUID, float] = {}
    for key, counts in tf.items():
        hit = [w for w in query if counts[w] > 0]
        if hit:
            scores[key] = sum(
                math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                * counts[w]
                / (counts[w] + K1 * (1 - B + B * dl[key] / avgdl))
                for w in hit
            )
    return scores


Op = tuple[str, str, int, list[str], list[str]]


def _numbered(history: list[Op], start: int, count: int) -> list[tuple[int, str, str, int, list[str], list[str]]]:
    return [(nid, *op) for nid, op in enumerate(history[start : start + count], start=start + 1)]


async def _write(
    cur: AsyncCursor[Any], op: str, owner: str, entity: uuid.UUID, nid: int, title: list[str], text: list[str]
) -> None:
    for _ in range(2):  # every write replayed: nothing may count twice
        if op == "write":
            doc = Document(owner, "note", entity, " ".join(text), T0, title=" ".join(title))
            await upsert_document(cur, doc, notification_id=nid, schema="rm_search")
        elif op == "delete":
            await retire_document(cur, owner, "note", entity, notification_id=nid, schema="rm_search")
        else:
            await patch_document(
                cur, owner, "note", entity, notification_id=nid, metadata={"n": nid}, schema="rm_search"
            )


async def _check(url: str, history: list[Op], query: list[str], per_commit: int) -> None:
    run = uuid.uuid4().hex[:8]  # fresh tenants per example: statistics start empty
    entities = [uuid.uuid4() for _ in range(6)]
    current: dict[str, dict[uuid.UUID, Item]] = {t: {} for t in TENANTS}
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await create_search_schema(conn, vectors=False)
        for start in range(0, len(history), per_commit):  # statistics catch up at each commit
            async with conn.transaction(), conn.cursor() as cur:
                for nid, op, tenant, slot, title, text in _numbered(history, start, per_commit):
                    await _write(cur, op, f"{tenant}-{run}", entities[slot], nid, title, text)
        for op, tenant, slot, title, text in history:
            if op == "write":
                current[tenant][entities[slot]] = Item(title, text)
            elif op == "delete":
                current[tenant].pop(entities[slot], None)
        last = len(history)
        for tenant in TENANTS:
            expected = reference(current[tenant], set(query))
            for as_of in (None, last):  # postings for current versions; each version's own tsv for as-of
                filters = SearchFilters(as_of=as_of)
                hits = await keyword_search(
                    conn, f"{tenant}-{run}", " ".join(query), filters=filters, limit=100, schema="rm_search"
                )
                got = {h.entity_id: h.score for h in hits}
                assert got.keys() == expected.keys(), (tenant, as_of)
                for key, score in expected.items():
                    assert got[key] == pytest.approx(score, rel=1e-6, abs=1e-8), (tenant, as_of)
                assert [h.score for h in hits] == sorted(got.values(), reverse=True)


def test_vocabulary_words_are_their_own_lexemes(database_url: str) -> None:
    async def lexemes() -> list[Any]:
        async with await AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT to_tsvector('english', %s)::text", (" ".join(VOCABULARY),))
            return list(await cur.fetchone() or [])

    text = asyncio.run(lexemes())[0]
    assert sorted(w.split(":")[0].strip("'") for w in text.split()) == sorted(VOCABULARY)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=operations,
    query=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4),
    per_commit=st.integers(1, 6),
)
def test_keyword_scores_equal_brute_force_bm25(
    database_url: str, history: list[Op], query: list[str], per_commit: int
) -> None:
    asyncio.run(_check(database_url, history, query, per_commit))


async def _scans(conn: AsyncConnection[Any], schema: str) -> dict[str, tuple[int, int]]:
    """This backend's seq and index scans of postings, documents and stale not yet flushed to the
    cumulative statistics (so: differences within one transaction are exact)."""
    cur = await conn.execute(
        "SELECT relname, seq_scan, idx_scan FROM pg_stat_xact_user_tables"
        " WHERE schemaname = %s AND relname IN ('postings', 'documents', 'stale')",
        (schema,),
    )
    return {str(r[0]): (int(r[1]), int(r[2])) for r in await cur.fetchall()}


async def _refresh_scans(url: str) -> dict[str, tuple[int, int]]:
    """Seq and index scans of postings, documents and stale while a 50-note batch's statistics
    are refreshed over a 3,000-note collection (fired inside the transaction to count them)."""
    schema = f"rm_search_scans_{uuid.uuid4().hex[:8]}"
    rows = (
        "INSERT INTO {s}.documents (tenant_id, entity_type, entity_id, valid_from, title, text, created_at)"
        " SELECT 't', 'note', gen_random_uuid(), 1, 'boundary layer', 'flow over a wing at mach ' || i, now()"
        " FROM generate_series(1, %s) i RETURNING entity_id"
    )
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await create_search_schema(conn, schema=schema, vectors=False)
        try:
            for n in (3000, 50):
                async with conn.transaction():
                    ids = [r[0] for r in await (await conn.execute(rows.format(s=schema), (n,))).fetchall()]
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            f"INSERT INTO {schema}.stale VALUES ('t', 'note', %s)", [(i,) for i in ids]
                        )
                    if n == 50:
                        before = await _scans(conn, schema)
                        await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the refresh runs now
                        after = await _scans(conn, schema)
                        scans = {t: (after[t][0] - before[t][0], after[t][1] - before[t][1]) for t in after}
            corpus = await (await conn.execute(f"SELECT docs FROM {schema}.corpus WHERE tenant_id = 't'")).fetchone()
            assert corpus == (3050,)
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return scans


def test_a_batch_refresh_reads_only_its_own_notes_whatever_the_collection_size(database_url: str) -> None:
    """The refresh must not scan every posting and document (it did: `stale`, emptied at each
    commit, looks large to the planner, so each batch cost time in proportion to the collection),
    nor read `stale` once per row of the batch."""
    scans = asyncio.run(_refresh_scans(database_url))
    assert scans["postings"][0] == 0 and scans["documents"][0] == 0, scans
    assert scans["postings"][1] > 0 and scans["documents"][1] > 0, scans
    # The refresh fires once per stale row; only the first may read stale (the others each
    # scanned it, dead rows included: quadratic in the batch).
    assert scans["stale"][0] + scans["stale"][1] <= 5, scans
