"""Queries over the memory search index: keyword, vector and hybrid.

All three apply the same filters (tenant, validity or as-of point, entity types, trajectory,
scope, time range, metadata containment, TTL, superseded) *before* ranking, so a filter never
empties a page that matching items could fill. Keyword search matches with Postgres full text
(see ``_tsquery`` for how a query reads) and ranks by BM25 (``projections.search_bm25``),
vector search walks the HNSW index by cosine distance, and hybrid search fuses the top 100 of
each, by reciprocal rank fusion (k=60) or by weighted scores (``projections.search_fusion``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.embedding import MODEL_ID, embed_async, to_pgvector
from projections.rrf import DEFAULT_K, fuse
from projections.search_bm25 import score_of_version, scored_current
from projections.search_fusion import weighted_fuse
from projections.search_index import SCHEMA, VectorSearchUnavailable

#: How hybrid search combines its two lists (see ``hybrid_search``).
Fusion = Literal["rrf", "weighted"]
#: How deep each list goes before hybrid search fuses them (RRF over the top 100 of each).
HYBRID_DEPTH: Final = 100
#: Keyword search first looks up the rows of this many times a page's depth of best scores.
CANDIDATES_PER_RESULT: Final = 2
#: A query token: an optionally negated quoted phrase (closing quote optional), or a word.
_TOKEN: Final = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
#: Quoted phrases and exclusions honoured per query (more are ignored), bounding the SQL's size.
MAX_QUERY_PARTS: Final = 16


@dataclass(frozen=True)
class SearchFilters:
    """Filters every search mode applies before ranking (an empty sequence means "any")."""

    entity_types: Sequence[str] = ()
    trajectory_ids: Sequence[UUID] = ()
    scope_ids: Sequence[UUID] = ()
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    metadata: Mapping[str, Any] | None = None  # JSON containment (``metadata @> ...``)
    include_expired: bool = False
    include_superseded: bool = False
    #: See memory as it was right after this notification id (None: as it is now).
    as_of: int | None = None
    #: The instant TTLs are judged against (None: the database's now()); as-of callers pass the
    #: time of that event so items that expired later are still shown.
    now: datetime | None = None


@dataclass(frozen=True)
class SearchHit:
    entity_type: str
    entity_id: UUID
    version: int  # valid_from: the notification id that wrote this version
    title: str
    text: str
    metadata: dict[str, Any]
    trajectory_id: UUID | None
    scope_id: UUID | None
    created_at: datetime
    expires_at: datetime | None
    superseded: bool
    #: BM25 for keyword search, cosine similarity for vector search, the fused score for hybrid.
    score: float
    keyword_rank: int | None = None
    vector_rank: int | None = None


@dataclass(frozen=True)
class VectorSupport:
    ext_schema: str
    iterative_scan: bool  # pgvector >= 0.8: filtered HNSW scans keep going until `limit` rows match


_HIT_COLUMNS = sql.SQL(
    "d.entity_type, d.entity_id, d.valid_from AS version, d.title, d.text, d.metadata, d.trajectory_id,"
    " d.scope_id, d.created_at, d.expires_at, d.superseded"
)
_KEY_COLUMNS = sql.SQL("d.entity_type, d.entity_id, d.valid_from AS version, d.created_at")
# Equal scores are ordered newest first, then by identity, so results never flicker.
_TIE_BREAK = sql.SQL("created_at DESC, entity_type, entity_id")


def _where(tenant_id: str, f: SearchFilters) -> tuple[sql.Composable, dict[str, Any]]:
    parts = ["d.tenant_id = %(f_tenant)s", "NOT d.deleted"]
    params: dict[str, Any] = {"f_tenant": tenant_id}
    if f.as_of is None:
        parts.append("d.valid_to IS NULL")
    else:
        parts.append("d.valid_from <= %(f_as_of)s AND (d.valid_to IS NULL OR d.valid_to > %(f_as_of)s)")
        params["f_as_of"] = f.as_of
    optional: list[tuple[str, str, Any]] = [
        ("d.entity_type = ANY(%(f_types)s)", "f_types", list(f.entity_types) or None),
        ("d.trajectory_id = ANY(%(f_trajectories)s)", "f_trajectories", list(f.trajectory_ids) or None),
        ("d.scope_id = ANY(%(f_scopes)s)", "f_scopes", list(f.scope_ids) or None),
        ("d.created_at >= %(f_after)s", "f_after", f.created_after),
        ("d.created_at < %(f_before)s", "f_before", f.created_before),
        ("d.metadata @> %(f_metadata)s", "f_metadata", Jsonb(dict(f.metadata)) if f.metadata else None),
    ]
    for clause, name, value in optional:
        if value is not None:
            parts.append(clause)
            params[name] = value
    if not f.include_superseded:
        parts.append("NOT d.superseded")
    if not f.include_expired:
        parts.append("(d.expires_at IS NULL OR d.expires_at > coalesce(%(f_now)s, now()))")
        params["f_now"] = f.now
    return sql.SQL(" AND ".join(parts)), params  # joined from the literals above only


def _tsquery(query: str) -> tuple[sql.Composable, dict[str, Any]]:
    """The tsquery for ``query``, in ``websearch_to_tsquery`` syntax read as "any of":

    plain words and quoted phrases are OR-ed (a document needs one of them; more matches rank
    higher), ``-word`` and ``-"a phrase"`` exclude. Requiring every word, websearch's own
    reading, finds almost nothing for a natural-language question: on Cranfield, keyword
    recall@100 drops to a fraction. Stemming and stop words are Postgres' ``english`` config.
    """
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    for m in _TOKEN.finditer(query):
        if m.group(2) is not None:
            (excluded if m.group(1) else phrases).append(f'"{m.group(2)}"')
        elif m.group(3):
            excluded.append(m.group(4))
        else:
            words.append(m.group(4))
    params: dict[str, Any] = {}
    positive: list[sql.Composable] = []
    if words:
        # Without operators websearch_to_tsquery yields a conjunction (and phrases for
        # hyphenated words): its top-level ANDs become ORs.
        positive.append(sql.SQL("replace(websearch_to_tsquery('english', %(q_words)s)::text, ' & ', ' | ')::tsquery"))
        params["q_words"] = " ".join(words)
    for i, phrase in enumerate(phrases[:MAX_QUERY_PARTS]):
        positive.append(sql.SQL("websearch_to_tsquery('english', {})").format(sql.Placeholder(f"q_p{i}")))
        params[f"q_p{i}"] = phrase
    anything = sql.SQL(" || ").join(positive) if positive else sql.SQL("''::tsquery")
    if not excluded:
        return anything, params
    exclusions: list[sql.Composable] = []
    for i, term in enumerate(excluded[:MAX_QUERY_PARTS]):
        exclusions.append(sql.SQL("!!websearch_to_tsquery('english', {})").format(sql.Placeholder(f"q_n{i}")))
        params[f"q_n{i}"] = term
    # Exclusions alone would match everything else: with no positive lexeme, match nothing.
    return sql.SQL("(SELECT CASE WHEN numnode(a.a) = 0 THEN a.a ELSE a.a && {} END FROM (SELECT {} AS a) a)").format(
        sql.SQL(" && ").join(exclusions), anything
    ), params


def _check_page(limit: int, offset: int) -> None:
    if limit < 1:
        raise ValueError("limit must be >= 1")
    if offset < 0:
        raise ValueError("offset must be >= 0")


def positive_text(query: str) -> str:
    """The query's words and quoted phrases (not its exclusions): what BM25 ranks by."""
    kept: list[str] = []
    for m in _TOKEN.finditer(query):
        if m.group(2) is not None and not m.group(1):
            kept.append(m.group(2))
        elif m.group(4) and not m.group(3):
            kept.append(m.group(4))
    return " ".join(kept)


async def _keyword(
    conn: AsyncConnection[Any],
    tenant_id: str,
    query: str,
    f: SearchFilters,
    columns: sql.SQL,
    limit: int,
    offset: int,
    schema: str,
) -> list[dict[str, Any]]:
    where, params = _where(tenant_id, f)
    tsquery, query_params = _tsquery(query)
    values = {**params, **query_params, "q_text": positive_text(query), "limit": limit, "offset": offset}
    table = sql.Identifier(schema, "documents")
    if f.as_of is None:
        # Current versions: the postings hold their statistics. Each scored item's row is then
        # looked up (filters, and the match: phrases and exclusions ask for more than holding a
        # query word) among the best CANDIDATES_PER_RESULT x (limit + offset) scores first, all
        # of them only when those do not fill the page.
        cut = (limit + offset) * CANDIDATES_PER_RESULT
        for candidates in (cut, None):
            stmt = sql.SQL(
                "WITH s AS MATERIALIZED {scored}, cut AS (SELECT {floor} AS score)"
                " SELECT {cols}, s.score FROM s, cut, (SELECT {tsq} AS q) q"
                " CROSS JOIN LATERAL (SELECT * FROM {t} d WHERE d.tenant_id = %(f_tenant)s"
                " AND d.entity_type = s.entity_type AND d.entity_id = s.entity_id AND {w} AND d.tsv @@ q.q) d"
                " WHERE s.score >= cut.score ORDER BY s.score DESC, {tie} LIMIT %(limit)s OFFSET %(offset)s"
            ).format(
                scored=scored_current(schema),
                floor=sql.SQL(
                    "coalesce((SELECT score FROM s ORDER BY score DESC OFFSET %(cut)s - 1 LIMIT 1), 0)"
                    if candidates
                    else "0"
                ),
                cols=columns,
                tsq=tsquery,
                t=table,
                w=where,
                tie=_TIE_BREAK,
            )
            rows = await _fetch(conn, stmt, {**values, "cut": candidates})
            if candidates is None or len(rows) == limit:
                return rows
    stmt = sql.SQL(
        "SELECT * FROM (SELECT {cols}, round(({score}) * 1e9) / 1e9 AS score"
        " FROM {t} d, (SELECT {tsq} AS q) q WHERE {w} AND d.tsv @@ q.q) ranked"
        " ORDER BY score DESC, {tie} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(cols=columns, score=score_of_version(schema), t=table, tsq=tsquery, w=where, tie=_TIE_BREAK)
    return await _fetch(conn, stmt, values)


async def _fetch(conn: AsyncConnection[Any], stmt: sql.Composed, values: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        # Never prepared: a generic plan cannot see the query's terms and is far slower at 100k notes.
        await cur.execute(stmt, values, prepare=False)
        return await cur.fetchall()


async def vector_support(conn: AsyncConnection[Any], schema: str) -> VectorSupport | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT n.nspname AS ext_schema, e.extversion,"
            " EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'embedding'"
            "  AND NOT attisdropped) AS has_column"
            " FROM (SELECT 1) one LEFT JOIN pg_extension e ON e.extname = 'vector'"
            " LEFT JOIN pg_namespace n ON n.oid = e.extnamespace",
            (sql.Identifier(schema, "documents").as_string(conn),),
        )
        row = await cur.fetchone()
    if row is None or row["ext_schema"] is None or not row["has_column"]:
        return None
    version = tuple(int(p) for p in re.findall(r"\d+", row["extversion"])[:2])
    return VectorSupport(row["ext_schema"], version >= (0, 8))


async def _vector(
    conn: AsyncConnection[Any],
    tenant_id: str,
    query: str,
    query_vector: Any,
    f: SearchFilters,
    columns: sql.SQL,
    limit: int,
    offset: int,
    schema: str,
) -> list[dict[str, Any]]:
    support = await vector_support(conn, schema)
    if support is None:
        raise VectorSearchUnavailable(
            "vector search needs the pgvector extension, which this database lacks; use keyword search"
        )
    if query_vector is None:
        query_vector = (await embed_async([query]))[0]
    where, params = _where(tenant_id, f)
    ext = sql.Identifier(support.ext_schema)
    stmt = sql.SQL(
        "SELECT * FROM (SELECT {cols}, d.embedding OPERATOR({ext}.<=>) %(v)s::{ext}.vector AS distance"
        " FROM {t} d WHERE {w} AND d.embedding IS NOT NULL AND d.embedding_model = %(model)s"
        " ORDER BY distance LIMIT %(depth)s) nearest"
        " ORDER BY distance, {tie} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(cols=columns, ext=ext, t=sql.Identifier(schema, "documents"), w=where, tie=_TIE_BREAK)
    depth = limit + offset
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # Filters are applied inside the HNSW scan: with iterative scans it keeps walking the
        # graph until enough rows pass them, instead of filtering a fixed top ef_search.
        settings = "SELECT set_config('hnsw.ef_search', %s, true)"
        if support.iterative_scan:
            settings += ", set_config('hnsw.iterative_scan', 'strict_order', true)"
        await cur.execute(settings.encode(), (str(min(max(depth, 100), 1000)),))
        values = {**params, "v": to_pgvector(query_vector), "model": MODEL_ID}
        values.update(depth=depth, limit=limit, offset=offset)
        await cur.execute(stmt, values, prepare=False)  # a custom plan sees the filters' real selectivity
        rows = await cur.fetchall()
    for row in rows:
        row["score"] = 1.0 - float(row.pop("distance"))
    return rows


def _hit(row: Mapping[str, Any], **extra: Any) -> SearchHit:
    values = {k: v for k, v in row.items() if k in _HIT_FIELDS}
    values.update(extra)
    if "score" not in values:
        values["score"] = float(row["score"])
    return SearchHit(**values)


_HIT_FIELDS: Final = frozenset(SearchHit.__dataclass_fields__)


async def keyword_search(
    conn: AsyncConnection[Any],
    tenant_id: str,
    query: str,
    *,
    filters: SearchFilters = SearchFilters(),
    limit: int = 10,
    offset: int = 0,
    schema: str = SCHEMA,
) -> list[SearchHit]:
    """Full-text search (``websearch_to_tsquery`` syntax), title terms weighing more than text
    terms; plain words match any of them, best matches first (see ``_tsquery``)."""
    _check_page(limit, offset)
    rows = await _keyword(conn, tenant_id, query, filters, _HIT_COLUMNS, limit, offset, schema)
    return [_hit(r, keyword_rank=offset + i + 1) for i, r in enumerate(rows)]


async def vector_search(
    conn: AsyncConnection[Any],
    tenant_id: str,
    query: str,
    *,
    query_vector: Any = None,
    filters: SearchFilters = SearchFilters(),
    limit: int = 10,
    offset: int = 0,
    schema: str = SCHEMA,
) -> list[SearchHit]:
    """Nearest neighbours by cosine similarity (HNSW). ``query_vector`` defaults to the
    embedding of ``query``. Raises :class:`VectorSearchUnavailable` without pgvector."""
    _check_page(limit, offset)
    rows = await _vector(conn, tenant_id, query, query_vector, filters, _HIT_COLUMNS, limit, offset, schema)
    return [_hit(r, vector_rank=offset + i + 1) for i, r in enumerate(rows)]


async def hybrid_search(
    conn: AsyncConnection[Any],
    tenant_id: str,
    query: str,
    *,
    query_vector: Any = None,
    filters: SearchFilters = SearchFilters(),
    limit: int = 10,
    offset: int = 0,
    schema: str = SCHEMA,
    k: int = DEFAULT_K,
    depth: int = HYBRID_DEPTH,
    fusion: Fusion = "rrf",
    keyword_conn: AsyncConnection[Any] | None = None,
) -> list[SearchHit]:
    """The top ``depth`` keyword and vector results (both filtered), fused: ``fusion="rrf"``,
    reciprocal rank fusion with ``k``; ``"weighted"``, the weighted score fusion of
    ``projections.search_fusion`` (what the search service uses). With ``keyword_conn`` the
    keyword half runs on it while the vector half runs on ``conn``. Raises
    :class:`VectorSearchUnavailable` without pgvector."""
    _check_page(limit, offset)
    vector_half = _vector(conn, tenant_id, query, query_vector, filters, _KEY_COLUMNS, depth, 0, schema)
    if keyword_conn is None:
        vectors = await vector_half
        words = await _keyword(conn, tenant_id, query, filters, _KEY_COLUMNS, depth, 0, schema)
    else:
        keyword_half = _keyword(keyword_conn, tenant_id, query, filters, _KEY_COLUMNS, depth, 0, schema)
        vectors, words = await asyncio.gather(vector_half, keyword_half)

    def key(row: Mapping[str, Any]) -> tuple[str, UUID, int]:
        return (row["entity_type"], row["entity_id"], row["version"])

    if fusion == "weighted":
        both = weighted_fuse([(key(r), float(r["score"])) for r in words], [(key(r), r["score"]) for r in vectors])
    else:
        both = fuse([[key(r) for r in words], [key(r) for r in vectors]], k=k)
    fused = both[offset : offset + limit]
    if not fused:
        return []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT {cols} FROM {t} d JOIN unnest(%s::text[], %s::uuid[], %s::bigint[]) AS k(t, i, v)"
                " ON d.entity_type = k.t AND d.entity_id = k.i AND d.valid_from = k.v WHERE d.tenant_id = %s"
            ).format(cols=_HIT_COLUMNS, t=sql.Identifier(schema, "documents")),
            ([f.key[0] for f in fused], [f.key[1] for f in fused], [f.key[2] for f in fused], tenant_id),
        )
        rows = {key(r): r for r in await cur.fetchall()}
    return [
        _hit(rows[f.key], score=f.score, keyword_rank=f.ranks[0], vector_rank=f.ranks[1])
        for f in fused
        if f.key in rows
    ]
