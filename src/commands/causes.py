"""Validation of ``caused_by``: named causes must exist and belong to the caller's tenant."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from commands.errors import CausesRejected
from commands.store import EventStore


def check_causes(store: EventStore, tenant_id: str, caused_by: Sequence[UUID]) -> tuple[UUID, ...]:
    """Return the causes, de-duplicated in order, or raise naming every unknown one.

    Another tenant's event is reported exactly like a missing one, so the answer never
    reveals that it exists.
    """
    causes = tuple(dict.fromkeys(caused_by))
    if not causes:
        return causes
    with store.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            "SELECT event_id FROM event_dag WHERE event_id = ANY(%s) AND tenant_id = %s",
            (list(causes), tenant_id),
        )
        found = {row["event_id"] for row in curs.fetchall()}
    missing = [str(c) for c in causes if c not in found]
    if missing:
        raise CausesRejected("unknown caused_by event(s): " + ", ".join(missing))
    return causes
