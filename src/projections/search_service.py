"""The memory search query service: one search, from a parsed request to a page of hits.

It picks the mode (keyword, vector or hybrid; hybrid where pgvector is there unless asked
otherwise), embeds the query for the vector modes, lets the engine (``search_query``) rank
and fuse, counts what can be paged through and resolves ``as_of`` to a log position. The
log lookup is handed in (``EventPosition``): the log belongs to the write side, which this
package does not import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from domain.errors import FieldProblem, ValidationFailed
from projections.embedding import EmbeddingModelUnavailable, embed_async
from projections.memory_search import SCHEMA, count_matches
from projections.search_index import VectorSearchUnavailable, vectors_available
from projections.search_query import (
    HYBRID_DEPTH,
    SearchFilters,
    SearchHit,
    hybrid_search,
    keyword_search,
    vector_search,
)

SearchMode = Literal["keyword", "vector", "hybrid"]
Conn = AsyncConnection[DictRow]
#: How long a search waits for a second pooled connection (for its other half, or its count)
#: before running the two one after the other.
SPARE_WAIT_SECONDS: Final = 0.001
#: The deepest result a page can reach (offset + limit); totals are counted up to it.
MAX_DEPTH: Final = 1000
#: (connection, tenant, event id) -> the event's notification id and time; None: not the tenant's.
EventPosition = Callable[[Conn, str, UUID], Awaitable[tuple[int, datetime] | None]]


@dataclass(frozen=True)
class SearchAsk:
    """One parsed search. ``filters`` None: the filters cannot all hold (no results)."""

    query: str
    filters: SearchFilters | None
    limit: int
    offset: int
    mode: SearchMode | None = None
    use_vector_search: bool | None = None
    as_of: UUID | None = None


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    #: Results this search can page through, counted up to ``MAX_DEPTH``.
    total: int
    mode: SearchMode


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message, code)])


def choose_mode(mode: SearchMode | None, use_vector_search: bool | None, vectors: bool) -> SearchMode:
    """The mode asked for (or the default), refusing contradictions."""
    if mode is not None and use_vector_search is not None and (mode != "keyword") != use_vector_search:
        said = str(use_vector_search).lower()
        raise _invalid("mode", f"mode {mode!r} contradicts use_vector_search={said}", "mode_contradiction")
    if use_vector_search is False:
        return "keyword"
    if use_vector_search:
        return mode or "vector"
    return mode or ("hybrid" if vectors else "keyword")


class MemorySearch:
    """Searches the ``memory_search`` read model over the API's read pool."""

    def __init__(self, pool: AsyncConnectionPool[Any], event_position: EventPosition) -> None:
        self._pool = pool
        self._event_position = event_position

    async def search(self, tenant_id: str, ask: SearchAsk) -> SearchPage:
        """422 for a contradictory mode or an ``as_of`` that is not the tenant's event;
        :class:`VectorSearchUnavailable` (501) for a vector mode without pgvector or model."""
        filters = ask.filters
        async with self._pool.connection() as conn:
            vectors = await vectors_available(conn, schema=SCHEMA)
            mode = choose_mode(ask.mode, ask.use_vector_search, vectors)
            if mode != "keyword" and not vectors:
                raise VectorSearchUnavailable(
                    f"{mode} search needs the pgvector extension, which this database lacks; use keyword search"
                )
            if ask.as_of is not None:
                found = await self._event_position(conn, tenant_id, ask.as_of)
                if found is None:
                    raise _invalid("as_of", f"event {ask.as_of} is not an event of this tenant", "unknown_event")
                position, at = found
                # TTLs are judged at that event's time: what expired later was still there.
                filters = filters and replace(filters, as_of=position, now=at)
            if filters is None:
                return SearchPage([], 0, mode)
            async with _spare(self._pool) as spare:
                hits, total = await _ranked(conn, spare, tenant_id, ask.query, mode, filters, ask.limit, ask.offset)
        return SearchPage(hits, total, mode)


@asynccontextmanager
async def _spare(pool: AsyncConnectionPool[Any]) -> AsyncIterator[Conn | None]:
    """A second connection for the other half of a search, if one is free right now. Never
    waited for: searches each holding one connection and waiting for another could exhaust the
    pool; without one the halves run one after the other."""
    try:
        conn = await pool.getconn(timeout=SPARE_WAIT_SECONDS)
    except PoolTimeout:
        yield None
        return
    try:
        yield conn
    finally:
        await pool.putconn(conn)


async def _ranked(
    conn: Conn,
    spare: Conn | None,
    tenant_id: str,
    query: str,
    mode: SearchMode,
    filters: SearchFilters,
    limit: int,
    offset: int,
) -> tuple[list[SearchHit], int]:
    """One page of hits and the total, in ``mode``."""
    if mode != "hybrid":
        # The page and its total, at once when there is a spare connection for the count.
        if mode == "keyword":
            page = keyword_search(conn, tenant_id, query, filters=filters, limit=limit, offset=offset, schema=SCHEMA)
        else:
            vector = await _query_vector(query, mode)
            page = vector_search(
                conn, tenant_id, query, query_vector=vector, filters=filters, limit=limit, offset=offset, schema=SCHEMA
            )
        count = count_matches(spare or conn, tenant_id, query, filters, vector=mode == "vector", cap=MAX_DEPTH)
        if spare is None:
            return await page, await count
        hits, total = await asyncio.gather(page, count)
        return hits, total
    # Hybrid fuses the top HYBRID_DEPTH of each list by weighted scores (projections.search_fusion):
    # fuse them all once, count them, then page. The keyword half runs on the spare connection
    # (if any) while the query is embedded and the vector half runs on this one.
    try:
        fused = await hybrid_search(
            conn,
            tenant_id,
            query,
            filters=filters,
            limit=2 * HYBRID_DEPTH,
            schema=SCHEMA,
            fusion="weighted",
            keyword_conn=spare,
        )
    except EmbeddingModelUnavailable as exc:
        raise VectorSearchUnavailable(f"{mode} search needs the local embedding model: {exc}") from exc
    return fused[offset : offset + limit], len(fused)


async def _query_vector(query: str, mode: SearchMode) -> Any:
    try:
        return (await embed_async([query]))[0]
    except EmbeddingModelUnavailable as exc:
        raise VectorSearchUnavailable(f"{mode} search needs the local embedding model: {exc}") from exc
