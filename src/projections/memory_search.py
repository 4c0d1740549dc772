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

What is indexed: a note's title and content, with its first source trajectory as
``trajectory_id`` (the index holds one trajectory per document); an artifact's name and content
with its trajectory and scope; a turn's content (no title) with its scope and trajectory; an
agent's type (the title) and capabilities; a message's type (the title) and payload with its
trajectory, scope and expiry. Only
the client's metadata is indexed, so ``metadata`` filters see exactly what the client wrote.

Cost: embedding runs inside the projection's transaction, one event at a time, because the
Projection API hands handlers single events (``projections.applier``): about 3 ms for a short
text and 30 ms for a 200-token one on 2 cores, which bounds ingestion at roughly 30-200 items
per second. The last texts' vectors are cached, so the applier's event-by-event replay of a
failed batch does not embed everything twice. Without pgvector (or without the embedding model
installed, which is logged) documents are written without vectors and keyword search still
finds them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final
from uuid import UUID

import msgspec
import structlog
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import DictRow, dict_row

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.embedding import MODEL_ID, EmbeddingModelUnavailable, Vectors, embed_async
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
#: Texts whose vectors are kept for a replay of the same batch (384 floats each: ~1.5 KB).
_CACHE_SIZE: Final = 512
_vector_cache: OrderedDict[str, Vectors] = OrderedDict()
_model_missing_logged = False


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _time(value: Any) -> datetime | None:
    return None if value is None else msgspec.convert(value, datetime)


def _note(e: EventEnvelope) -> Document:
    p = e.payload
    sources = p.get("source_trajectory_ids") or []
    return Document(
        e.tenant_id,
        "note",
        e.stream_id,
        p["content"],
        e.occurred_at,
        title=p["title"],
        metadata=p.get("metadata") or {},
        trajectory_id=_uuid(sources[0]) if sources else None,
        expires_at=_time(p.get("expires_at")),
    )


def _artifact(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "artifact",
        e.stream_id,
        p["content"],
        e.occurred_at,
        title=p["name"],
        metadata=p.get("metadata") or {},
        trajectory_id=_uuid(p.get("trajectory_id")),
        scope_id=_uuid(p.get("scope_id")),
        expires_at=_time(p.get("expires_at")),
    )


def _turn(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "turn",
        e.stream_id,
        p["content"],
        e.occurred_at,
        metadata=p.get("metadata") or {},
        trajectory_id=_uuid(p.get("trajectory_id")),
        scope_id=_uuid(p.get("scope_id")),
    )


def _agent_text(p: dict[str, Any]) -> str:
    """An agent is found by its type and what it can do."""
    capabilities = " ".join(p.get("capabilities") or [])
    return f"{p.get('agent_type', '')} {capabilities}".strip() or "agent"


def _agent(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(e.tenant_id, "agent", e.stream_id, _agent_text(p), e.occurred_at, title=p["agent_type"])


def _message(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "message",
        e.stream_id,
        p.get("content") or p["message_type"],
        e.occurred_at,
        title=p["message_type"],
        trajectory_id=_uuid(p.get("trajectory_id")),
        scope_id=_uuid(p.get("scope_id")),
        expires_at=_time(p.get("expires_at")),
    )


def embedding_text(title: str, text: str) -> str:
    """What is embedded: the title, if any, then the text."""
    return f"{title}\n\n{text}" if title else text


async def _embedding(cur: AsyncCursor[DictRow], doc: Document) -> Vectors | None:
    """The document's vector, or None where the schema has no vector column (the write would fail)."""
    global _model_missing_logged
    if not await vectors_available(cur, schema=None):  # the projection's search_path
        return None
    text = embedding_text(doc.title, doc.text)
    cached = _vector_cache.get(text)
    if cached is not None:
        _vector_cache.move_to_end(text)
        return cached
    try:
        vector: Vectors = (await embed_async([text]))[0]
    except EmbeddingModelUnavailable as error:
        if not _model_missing_logged:
            log.error("memory_search_not_embedding", error=str(error))
            _model_missing_logged = True
        return None
    _vector_cache[text] = vector
    if len(_vector_cache) > _CACHE_SIZE:
        _vector_cache.popitem(last=False)
    return vector


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
    return _Change(p["title"], p["content"], p.get("metadata") or {}, _time(p.get("expires_at")))


def _artifact_change(p: dict[str, Any]) -> _Change:
    return _Change(p["name"], p["content"], p.get("metadata") or {}, _time(p.get("expires_at")))


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
    text = _agent_text({"agent_type": before["title"], "capabilities": e.payload.get("capabilities")})
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


class MemorySearchProjection(Projection):
    name: ClassVar[str] = "memory_search"
    ddl: ClassVar[list[str]] = search_ddl(vectors=True)
    handlers: ClassVar[dict[str, Handler]] = {
        "note.created": _created(_note),
        "note.updated": _updated("note", _note_change),
        "note.superseded": _superseded("note"),
        "note.deleted": _deleted("note"),
        "artifact.created": _created(_artifact),
        "artifact.updated": _updated("artifact", _artifact_change),
        "artifact.superseded": _superseded("artifact"),
        "artifact.deleted": _deleted("artifact"),
        "turn.recorded": _created(_turn),
        "turn.updated": _updated("turn", _turn_change),
        "turn.deleted": _deleted("turn"),
        "agent.registered": _created(_agent),
        "agent.updated": _agent_updated,
        "agent.unregistered": _deleted("agent"),
        "message.sent": _created(_message),
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
