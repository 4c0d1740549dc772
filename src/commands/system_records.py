"""Recording the pipeline's own facts: unpublishable events (relay) and projection skips (admin)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from commands.errors import ConcurrencyConflict
from commands.schema import EVENTS_TABLE
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.errors import Conflict, NotFound
from domain.system import SystemRecord, skip_record_id


@dataclass(frozen=True)
class LoggedEvent:
    """Where an event sits in the log."""

    event_id: UUID
    tenant_id: str
    notification_id: int
    kind: str


class SystemRecords:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def close(self) -> None:
        self._store.close()

    def record_unpublishable(self, event: LoggedEvent, *, size: int, reason: str) -> bool:
        """Append the record (parent: the event). False when it was recorded already - a
        relay that crashed after recording retries the event and lands here again."""
        record = SystemRecord.unpublishable(
            event.tenant_id,
            event_id=event.event_id,
            notification_id=event.notification_id,
            kind=event.kind,
            size=size,
            reason=reason,
        )
        try:
            self._store.save_all(record)
        except ConcurrencyConflict:
            return False
        return True

    def skip(
        self, ctx: CommandContext, *, projection: str, event_id: UUID, reason: str
    ) -> tuple[SystemRecord, LoggedEvent]:
        """Record that ``projection`` passes ``event_id`` by. 404 for an event that is not
        the tenant's; 409 when that projection already skips it."""
        event = self.find(ctx.tenant_id, event_id)
        if self._skipped(projection, event_id):
            raise Conflict(f"projection {projection} already skips event {event_id}")
        record = SystemRecord.skip(
            ctx,
            projection=projection,
            event_id=event_id,
            notification_id=event.notification_id,
            kind=event.kind,
            reason=reason,
        )
        try:
            self._store.save_all(record)
        except ConcurrencyConflict:  # a concurrent skip of the same event won
            raise Conflict(f"projection {projection} already skips event {event_id}") from None
        return record, event

    def find(self, tenant_id: str, event_id: UUID) -> LoggedEvent:
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT notification_id, kind FROM event_dag WHERE event_id = %s AND tenant_id = %s",
                (event_id, tenant_id),
            )
            row = curs.fetchone()
        if row is None:
            raise NotFound(f"event {event_id} not found")
        return LoggedEvent(event_id, tenant_id, int(row["notification_id"]), row["kind"])

    def _skipped(self, projection: str, event_id: UUID) -> bool:
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                f"SELECT 1 FROM {EVENTS_TABLE} WHERE originator_id = %s", (skip_record_id(projection, event_id),)
            )
            return curs.fetchone() is not None
