"""Idempotent creates without a side table: the key decides the new aggregate's id.

A create with ``Idempotency-Key: K`` gets the id uuid5(tenant, resource, K). A retry
finds that stream already written (or collides with the concurrent first try on the
(id, version) key) and answers from it, so "created once" is guaranteed by the same
unique constraint that guards every append - nothing can be half-written.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from psycopg import sql

from commands import log_position
from commands.errors import IdempotencyMismatch
from commands.store import EventStore
from domain.aggregate import Aggregate
from domain.errors import NotFound

_A = TypeVar("_A", bound=Aggregate)

_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/idempotency")
_encoder = msgspec.json.Encoder(order="sorted")


def idempotent_id(tenant_id: str, resource: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{tenant_id}\x00{resource}\x00{key}")


def request_hash(body: Any) -> str:
    """Hash of the request body in canonical form (key order and spacing do not matter)."""
    return hashlib.sha256(_encoder.encode(body)).hexdigest()


def replayed(
    store: EventStore,
    cls: type[_A],
    aggregate_id: UUID,
    tenant_id: str,
    body_hash: str | None,
    *,
    version: int | None = None,
) -> _A | None:
    """The resource an earlier request with this key created (None if there was none).
    The same key with another body is refused: it would silently answer a different
    question."""
    try:
        first = store.load(cls, aggregate_id, tenant_id, version=version)
    except NotFound:
        return None
    if getattr(first, "request_hash", None) != body_hash:
        raise IdempotencyMismatch("this Idempotency-Key was already used with a different request body")
    # The retry appends nothing, but its answer reflects the stream up to this version: a
    # client reading elsewhere (Quipu-Log-Position) must wait for it as after the first try.
    log_position.reached(_positions(store, aggregate_id, first.version))
    return first


def _positions(store: EventStore, stream_id: UUID, version: int) -> list[int]:
    recorder: Any = store.recorder
    stmt = sql.SQL("SELECT notification_id FROM {}.{} WHERE originator_id = %s AND originator_version = %s").format(
        sql.Identifier(store.datastore.schema), sql.Identifier(recorder.events_table_name)
    )
    with store.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(stmt, (stream_id, version))
        row = curs.fetchone()
    return [int(row["notification_id"])] if row else []
