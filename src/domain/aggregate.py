"""Aggregate base: decide in command methods, change state only in ``apply``.

Command methods check their guards first and then call ``_trigger``; the new event is
applied through the same ``apply`` that replays history, so a live aggregate and a
reconstructed one cannot drift apart. The library's reconstruction protocol
(``event.mutate(aggregate)``) and ``collect_events`` are implemented here so that
eventsourcing's ``Application`` and ``Repository`` work with these classes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

from domain.errors import Conflict
from domain.events import DomainEvent, category_of, register_category
from domain.ids import uuid7


@dataclass(frozen=True)
class CommandContext:
    """Who asks, for which tenant, and which existing events caused the command."""

    tenant_id: str
    actor: str
    caused_by: tuple[UUID, ...] = ()


class Aggregate:
    """An event-sourced aggregate root. Subclasses set ``CATEGORY`` and implement ``apply``."""

    CATEGORY: ClassVar[str] = ""

    id: UUID
    version: int
    tenant_id: str
    correlation_id: UUID
    created_on: datetime
    modified_on: datetime
    last_event_id: UUID | None
    _pending: list[DomainEvent]

    @classmethod
    def blank(cls, first: DomainEvent) -> Self:
        """An empty instance ready to have its first event replayed."""
        self = cls.__new__(cls)
        self.id = first.originator_id
        self.version = 0
        self.tenant_id = first.tenant_id
        self.correlation_id = first.correlation_id
        self.created_on = first.timestamp
        self.modified_on = first.timestamp
        self.last_event_id = None
        self._pending = []
        return self

    # -- the eventsourcing protocol -------------------------------------------------
    def collect_events(self) -> list[DomainEvent]:
        """Hand the new events to the application for saving, and forget them."""
        events, self._pending = self._pending, []
        return events

    def replay(self, event: DomainEvent) -> None:
        """Apply a recorded event (reconstruction) after checking its position."""
        if event.originator_version != self.version + 1:
            raise Conflict(
                f"event {event.event_id} has version {event.originator_version}, "
                f"expected {self.version + 1} for {self.id}"
            )
        self.apply(event)
        self.version = event.originator_version
        self.modified_on = event.timestamp
        self.last_event_id = event.event_id

    # -- for subclasses ---------------------------------------------------------------
    def apply(self, event: DomainEvent) -> None:
        """Change state for one event. The only place where state may change."""
        raise NotImplementedError

    @classmethod
    def _create(
        cls,
        event_cls: type[DomainEvent],
        ctx: CommandContext,
        *,
        aggregate_id: UUID,
        correlation_id: UUID | None = None,
        **payload: Any,
    ) -> Self:
        """Start a new stream with its first event."""
        event = event_cls(
            originator_id=aggregate_id,
            originator_version=1,
            timestamp=datetime.now(UTC),
            event_id=uuid7(),
            tenant_id=ctx.tenant_id,
            correlation_id=correlation_id or aggregate_id,
            parent_ids=tuple(dict.fromkeys(ctx.caused_by)),
            actor=ctx.actor,
            **payload,
        )
        self = cls.blank(event)
        self.replay(event)
        self._pending.append(event)
        return self

    def _trigger(self, event_cls: type[DomainEvent], ctx: CommandContext, **payload: Any) -> None:
        """Record a new event on this stream; its first parent is the stream's previous event."""
        if ctx.tenant_id != self.tenant_id:
            # Defence in depth: loading already filters by tenant.
            raise Conflict("aggregate belongs to another tenant")
        previous = (self.last_event_id,) if self.last_event_id else ()
        event = event_cls(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=datetime.now(UTC),
            event_id=uuid7(),
            tenant_id=self.tenant_id,
            correlation_id=self.correlation_id,
            parent_ids=tuple(dict.fromkeys(previous + ctx.caused_by)),
            actor=ctx.actor,
            **payload,
        )
        self.replay(event)
        self._pending.append(event)


_A = TypeVar("_A", bound=type[Aggregate])
_AGGREGATES: dict[str, type[Aggregate]] = {}


def aggregate_root(category: str) -> Callable[[_A], _A]:
    """Class decorator: events whose kind starts with ``category.`` rebuild this class."""

    def register(cls: _A) -> _A:
        cls.CATEGORY = category
        _AGGREGATES[category] = cls
        register_category(category, cls.blank)
        return cls

    return register


def aggregate_class_for(kind: str) -> type[Aggregate]:
    """The aggregate class that owns events of ``kind``."""
    return _AGGREGATES[category_of(kind)]
