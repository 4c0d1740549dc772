"""Memory search read model (schema ``rm_memory_search``): notes, artifacts, turns, agents and
messages as search documents.

The tables, versioning and queries are the search engine's (``projections.search_index`` and
``projections.search_query``); this module feeds it from the memory events:

* ``*.created`` / ``turn.recorded`` -> a new document, embedded when the schema has vectors;
* ``*.updated`` -> a new version: re-embedded only when the title or text changed, otherwise a
  patch that carries the stored embedding over (metadata, TTL);
* ``*.superseded`` -> a version marked superseded; ``*.deleted`` -> a tombstone version.

Every version stays, keyed by the event's notification id, so searching ``as_of`` an event sees
superseded and deleted items as they were. Re-applying an event rewrites the same version, so a
redelivery changes nothing.

What each kind contributes (title, text, trajectory, scope, metadata, expiry) is in
``projections.search_documents``.

Cost: embedding is most of it. Before a batch is applied, ``prepare`` embeds the texts of all
its new items in one call (the embedder pads length-sorted groups of 32 together, several
times faster than one text at a time) into a cache the handlers then read, all inside the
batch's transaction, so rows and position still commit together. Updates that change a text
are embedded by their handler (whether the text changed is known only there). The cache also
spares the applier's event-by-event replay of a failed batch from embedding everything twice.
Without pgvector (or without the embedding model installed, which is logged) documents are
written without vectors and keyword search still finds them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

import structlog
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import DictRow, dict_row

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.embedding import MODEL_ID, EmbeddingModelUnavailable, Vectors, embed_async
from projections.search_documents import (
    agent_document,
    agent_text,
    artifact_document,
    embedding_text,
    message_document,
    note_document,
    time_or_none,
    turn_document,
)
from projections.search_index import (
    KEEP,
    Document,
    Keep,
    patch_document,
    retire_document,
    search_ddl,
    upsert_document,
    vectors_available,
)

# The engine's filter and query builders: a count must apply exactly what the searches apply.
from projections.search_query import SearchFilters, _tsquery, _where

log = structlog.get_logger(__name__)
#: Texts whose vectors are kept for the batch's handlers and a replay of it (384 floats each:
#: ~1.5 KB); larger than the projector's batches, whose texts ``prepare`` embeds at once.
_CACHE_SIZE: Final = 2048
_vector_cache: OrderedDict[str, Vectors] = OrderedDict()
_model_missing_logged = False
#: Whether the batch being applied (in this task) writes vectors, as ``prepare`` found it: the
#: handlers then need no round trip of their own to ask.
_batch_vectors: ContextVar[bool | None] = ContextVar("memory_search_batch_vectors", default=None)


async def _embedding(cur: AsyncCursor[DictRow], doc: Document) -> Vectors | None:
    """The document's vector, or None where the schema has no vector column (the write would fail)."""
    available = _batch_vectors.get()
    if available is None:
        available = await vectors_available(cur, schema=None)  # the projection's search_path
    if not available:
        return None
    text = embedding_text(doc.title, doc.text)
    cached = _vector_cache.get(text)
    if cached is not None:
        _vector_cache.move_to_end(text)
        return cached
    vectors = await _embed([text])
    return None if vectors is None else vectors[0]


async def _embed(texts: list[str]) -> Vectors | None:
    """The texts' vectors, remembered in the cache; None without the model (logged once)."""
    global _model_missing_logged
    try:
        vectors: Vectors = await embed_async(texts)
    except EmbeddingModelUnavailable as error:
        if not _model_missing_logged:
            log.error("memory_search_not_embedding", error=str(error))
            _model_missing_logged = True
        return None
    for text, vector in zip(texts, vectors, strict=True):
        _vector_cache[text] = vector
        _vector_cache.move_to_end(text)
    while len(_vector_cache) > _CACHE_SIZE:
        _vector_cache.popitem(last=False)
    return vectors


def _created(build: Callable[[EventEnvelope], Document]) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        doc = build(e)
        await upsert_document(cur, doc, notification_id=e.notification_id, embedding=await _embedding(cur, doc))

    return handle


@dataclass(frozen=True)
class _Change:
    """What an update event says about the indexed fields."""

    title: str | None  # None: the entity has no title (turns)
    text: str
    metadata: dict[str, Any]
    expires_at: datetime | Keep | None


def _note_change(p: dict[str, Any]) -> _Change:
    return _Change(p["title"], p["content"], p.get("metadata") or {}, time_or_none(p.get("expires_at")))


def _artifact_change(p: dict[str, Any]) -> _Change:
    return _Change(p["name"], p["content"], p.get("metadata") or {}, time_or_none(p.get("expires_at")))


def _turn_change(p: dict[str, Any]) -> _Change:
    return _Change(None, p["content"], p.get("metadata") or {}, KEEP)


def _updated(entity_type: str, read: Callable[[dict[str, Any]], _Change]) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        # The version the event changes: the latest one written before it (so re-applying the
        # event compares against the same version, not against its own result).
        await cur.execute(
            "SELECT title, text, trajectory_id, scope_id, created_at, expires_at, superseded, deleted"
            " FROM documents WHERE tenant_id = %s AND entity_type = %s AND entity_id = %s AND valid_from < %s"
            " ORDER BY valid_from DESC LIMIT 1",
            (e.tenant_id, entity_type, e.stream_id, e.notification_id),
        )
        before = await cur.fetchone()
        if before is None or before["deleted"]:
            return
        change = read(e.payload)
        title = before["title"] if change.title is None else change.title
        expires = before["expires_at"] if isinstance(change.expires_at, Keep) else change.expires_at
        if title == before["title"] and change.text == before["text"]:
            await patch_document(
                cur,
                e.tenant_id,
                entity_type,
                e.stream_id,
                notification_id=e.notification_id,
                metadata=change.metadata,
                expires_at=expires,
            )
            return
        doc = Document(
            e.tenant_id,
            entity_type,
            e.stream_id,
            change.text,
            before["created_at"],
            title=title,
            metadata=change.metadata,
            trajectory_id=before["trajectory_id"],
            scope_id=before["scope_id"],
            expires_at=expires,
            superseded=before["superseded"],
        )
        await upsert_document(cur, doc, notification_id=e.notification_id, embedding=await _embedding(cur, doc))

    return handle


async def _agent_updated(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """New capabilities: a new version with the type (the title) it had."""
    await cur.execute(
        "SELECT title, created_at, deleted FROM documents WHERE tenant_id = %s AND entity_type = 'agent'"
        " AND entity_id = %s AND valid_from < %s ORDER BY valid_from DESC LIMIT 1",
        (e.tenant_id, e.stream_id, e.notification_id),
    )
    before = await cur.fetchone()
    if before is None or before["deleted"]:
        return
    text = agent_text({"agent_type": before["title"], "capabilities": e.payload.get("capabilities")})
    doc = Document(e.tenant_id, "agent", e.stream_id, text, before["created_at"], title=before["title"])
    await upsert_document(cur, doc, notification_id=e.notification_id, embedding=await _embedding(cur, doc))


def _superseded(entity_type: str) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await patch_document(
            cur, e.tenant_id, entity_type, e.stream_id, notification_id=e.notification_id, superseded=True
        )

    return handle


def _deleted(entity_type: str) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await retire_document(cur, e.tenant_id, entity_type, e.stream_id, notification_id=e.notification_id)

    return handle


#: The events that create an item, and how each reads as a document (what ``prepare`` embeds).
_NEW_ITEMS: Final[dict[str, Callable[[EventEnvelope], Document]]] = {
    "note.created": note_document,
    "artifact.created": artifact_document,
    "turn.recorded": turn_document,
    "agent.registered": agent_document,
    "message.sent": message_document,
}


class MemorySearchProjection(Projection):
    name: ClassVar[str] = "memory_search"

    async def prepare(self, cur: AsyncCursor[DictRow], envelopes: Sequence[EventEnvelope]) -> None:
        """Embed the new items of the batch in one call (see the module's docstring)."""
        available = await vectors_available(cur, schema=None)
        _batch_vectors.set(available)
        if not available:
            return
        texts: dict[str, None] = {}  # distinct, in order
        for e in envelopes:
            build = _NEW_ITEMS.get(e.kind)
            if build is None:
                continue
            try:
                doc = build(e)
            except (KeyError, TypeError, ValueError):  # its handler fails too, and parks it
                continue
            texts[embedding_text(doc.title, doc.text)] = None
        missing = [t for t in texts if t not in _vector_cache][:_CACHE_SIZE]
        if missing:
            await _embed(missing)

    ddl: ClassVar[list[str]] = search_ddl(vectors=True)
    handlers: ClassVar[dict[str, Handler]] = {
        "note.created": _created(note_document),
        "note.updated": _updated("note", _note_change),
        "note.superseded": _superseded("note"),
        "note.deleted": _deleted("note"),
        "artifact.created": _created(artifact_document),
        "artifact.updated": _updated("artifact", _artifact_change),
        "artifact.superseded": _superseded("artifact"),
        "artifact.deleted": _deleted("artifact"),
        "turn.recorded": _created(turn_document),
        "turn.updated": _updated("turn", _turn_change),
        "turn.deleted": _deleted("turn"),
        "agent.registered": _created(agent_document),
        "agent.updated": _agent_updated,
        "agent.unregistered": _deleted("agent"),
        "message.sent": _created(message_document),
    }


#: Where the documents live; every query of this read model passes it as ``schema``.
SCHEMA: Final = MemorySearchProjection.schema()


async def count_matches(
    conn: AsyncConnection[Any], tenant_id: str, query: str, filters: SearchFilters, *, vector: bool, cap: int
) -> int:
    """How many documents a keyword search (``vector=False``: those matching the query) or a
    vector search (every filtered document with a vector of the current model) ranks, counted
    up to ``cap``: beyond what paging can reach, an exact count would only cost time."""
    where, params = _where(tenant_id, filters)
    table = sql.Identifier(SCHEMA, "documents")
    if vector:
        inner = sql.SQL(
            "SELECT 1 FROM {t} d WHERE {w} AND d.embedding IS NOT NULL AND d.embedding_model = %(model)s"
        ).format(t=table, w=where)
        params["model"] = MODEL_ID
    else:
        tsquery, query_params = _tsquery(query)
        inner = sql.SQL("SELECT 1 FROM {t} d, (SELECT {q} AS q) q WHERE {w} AND d.tsv @@ q.q").format(
            t=table, q=tsquery, w=where
        )
        params.update(query_params)
    stmt = sql.SQL("SELECT count(*) AS n FROM ({inner} LIMIT %(cap)s) m").format(inner=inner)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(stmt, {**params, "cap": cap}, prepare=False)
        row = await cur.fetchone()
    return int(row["n"]) if row else 0
