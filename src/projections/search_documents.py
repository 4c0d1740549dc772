"""How memory events read as search documents: the fields each kind contributes.

A note's title and content, with its first source trajectory as ``trajectory_id`` (the index
holds one trajectory per document); an artifact's name and content with its trajectory and
scope; a turn's content (no title) with its scope and trajectory; an agent's type (the title)
and capabilities; a message's type (the title) and payload with its trajectory, scope and
expiry. Only the client's metadata is indexed, so ``metadata`` filters see exactly what the
client wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.envelope import EventEnvelope
from projections.search_index import Document


def uuid_or_none(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def time_or_none(value: Any) -> datetime | None:
    return None if value is None else msgspec.convert(value, datetime)


def note_document(e: EventEnvelope) -> Document:
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
        trajectory_id=uuid_or_none(sources[0]) if sources else None,
        expires_at=time_or_none(p.get("expires_at")),
    )


def artifact_document(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "artifact",
        e.stream_id,
        p["content"],
        e.occurred_at,
        title=p["name"],
        metadata=p.get("metadata") or {},
        trajectory_id=uuid_or_none(p.get("trajectory_id")),
        scope_id=uuid_or_none(p.get("scope_id")),
        expires_at=time_or_none(p.get("expires_at")),
    )


def turn_document(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "turn",
        e.stream_id,
        p["content"],
        e.occurred_at,
        metadata=p.get("metadata") or {},
        trajectory_id=uuid_or_none(p.get("trajectory_id")),
        scope_id=uuid_or_none(p.get("scope_id")),
    )


def agent_text(p: dict[str, Any]) -> str:
    """An agent is found by its type and what it can do."""
    capabilities = " ".join(p.get("capabilities") or [])
    return f"{p.get('agent_type', '')} {capabilities}".strip() or "agent"


def agent_document(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(e.tenant_id, "agent", e.stream_id, agent_text(p), e.occurred_at, title=p["agent_type"])


def message_document(e: EventEnvelope) -> Document:
    p = e.payload
    return Document(
        e.tenant_id,
        "message",
        e.stream_id,
        p.get("content") or p["message_type"],
        e.occurred_at,
        title=p["message_type"],
        trajectory_id=uuid_or_none(p.get("trajectory_id")),
        scope_id=uuid_or_none(p.get("scope_id")),
        expires_at=time_or_none(p.get("expires_at")),
    )


def embedding_text(title: str, text: str) -> str:
    """What is embedded: the title, if any, then the text."""
    return f"{title}\n\n{text}" if title else text
