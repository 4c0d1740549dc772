"""The published shape of an event: what the API, NATS and outside subscribers see."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from domain import catalog  # noqa: F401 - registers every kind
from domain.events import HEADER_FIELDS, DomainEvent, event_class
from domain.upcasting import needs_upcasting, upcast_state

ENVELOPE_VERSION = 1


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """docs/architecture.md, The event envelope. ``notification_id`` is the position in the global log."""

    event_id: UUID
    kind: str
    code: int
    tenant_id: str
    stream_id: UUID
    version: int
    correlation_id: UUID
    parent_ids: list[UUID]
    depth: int
    actor: str
    occurred_at: datetime
    payload: dict[str, Any]
    hash: str
    notification_id: int
    envelope_version: int = ENVELOPE_VERSION


def envelope_from_state(state: bytes, kind: str, *, depth: int, hash_: str, notification_id: int) -> EventEnvelope:
    """Build the envelope from the stored (canonical) event bytes and its DAG row.

    The payload is in the kind's current shape (upcast when it was stored in an older
    one); ``hash`` is the DAG row's, computed over the bytes as stored.
    """
    raw: dict[str, Any] = msgspec.json.decode(state)
    if needs_upcasting(kind, state):
        raw = upcast_state(kind, raw)
    return EventEnvelope(
        event_id=UUID(raw["event_id"]),
        kind=kind,
        code=event_class(kind).CODE,
        tenant_id=raw["tenant_id"],
        stream_id=UUID(raw["originator_id"]),
        version=raw["originator_version"],
        correlation_id=UUID(raw["correlation_id"]),
        parent_ids=[UUID(p) for p in raw["parent_ids"]],
        depth=depth,
        actor=raw["actor"],
        occurred_at=msgspec.convert(raw["timestamp"], datetime),
        payload={k: v for k, v in raw.items() if k not in HEADER_FIELDS},
        hash=hash_,
        notification_id=notification_id,
    )


def event_from_envelope(envelope: EventEnvelope) -> DomainEvent:
    """The recorded event back from its published envelope (the inverse of ``envelope_from_state``)."""
    header = {
        "originator_id": envelope.stream_id,
        "originator_version": envelope.version,
        "timestamp": envelope.occurred_at,
        "event_id": envelope.event_id,
        "tenant_id": envelope.tenant_id,
        "correlation_id": envelope.correlation_id,
        "parent_ids": envelope.parent_ids,
        "actor": envelope.actor,
    }
    return msgspec.convert({**envelope.payload, **header}, event_class(envelope.kind))
