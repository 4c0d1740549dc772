"""Records the system keeps about its own pipeline, as events in the DAG.

Both are one-event streams whose id is derived from what they are about, so recording
the same fact twice collides on the stream's first version instead of doubling it (a
relay retrying after a crash; two admins skipping the same event at once).

- ``system.event_unpublishable``: the relay could not publish an event to the bus for a
  reason retrying cannot fix (it is larger than the bus accepts, ...). Parent: that event.
  Consumers still apply it: they read the log, not the bus.
- ``system.event_skipped``: an admin decided that one projection passes an event by (its
  handler keeps failing on it). Parent: the skipped event. Nothing is rewritten: the
  projection honours the record, also when rebuilt.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind

_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/system-record")
MAX_REASON_CHARS = 2000
RELAY_ACTOR = "system:relay"


@event_kind("system.event_unpublishable", 0xE001)
class EventUnpublishable(DomainEvent, frozen=True, kw_only=True):
    unpublished_event_id: UUID
    notification_id: int
    event_kind: str
    size: int
    reason: str


@event_kind("system.event_skipped", 0xE002)
class EventSkipped(DomainEvent, frozen=True, kw_only=True):
    projection: str
    skipped_event_id: UUID
    notification_id: int
    event_kind: str
    reason: str


def unpublishable_record_id(event_id: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"unpublishable\x00{event_id}")


def skip_record_id(projection: str, event_id: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"skip\x00{projection}\x00{event_id}")


@aggregate_root("system")
class SystemRecord(Aggregate):
    """One recorded decision or observation about one event; never changes afterwards."""

    about: UUID
    reason: str

    @classmethod
    def unpublishable(
        cls, tenant_id: str, *, event_id: UUID, notification_id: int, kind: str, size: int, reason: str
    ) -> SystemRecord:
        ctx = CommandContext(tenant_id, RELAY_ACTOR, (event_id,))
        record_id = unpublishable_record_id(event_id)
        return cls._create(
            EventUnpublishable,
            ctx,
            aggregate_id=record_id,
            unpublished_event_id=event_id,
            notification_id=notification_id,
            event_kind=kind,
            size=size,
            reason=reason[:MAX_REASON_CHARS],
        )

    @classmethod
    def skip(
        cls, ctx: CommandContext, *, projection: str, event_id: UUID, notification_id: int, kind: str, reason: str
    ) -> SystemRecord:
        if not reason.strip():
            raise ValidationFailed([FieldProblem("reason", "say why the event is skipped", "required")])
        if len(reason) > MAX_REASON_CHARS:
            raise ValidationFailed([FieldProblem("reason", f"at most {MAX_REASON_CHARS} characters", "too_long")])
        return cls._create(
            EventSkipped,
            CommandContext(ctx.tenant_id, ctx.actor, (event_id,)),
            aggregate_id=skip_record_id(projection, event_id),
            projection=projection,
            skipped_event_id=event_id,
            notification_id=notification_id,
            event_kind=kind,
            reason=reason,
        )

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, EventUnpublishable):
            self.about, self.reason = event.unpublished_event_id, event.reason
        elif isinstance(event, EventSkipped):
            self.about, self.reason = event.skipped_event_id, event.reason
        else:  # pragma: no cover
            raise TypeError(f"SystemRecord cannot apply {type(event).__name__}")
