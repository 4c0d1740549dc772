"""The event base class and the registry of event kinds.

Every event is an immutable msgspec Struct. Its header fields are the part of the envelope
(docs/architecture.md, The event envelope) that the aggregate can know (id, stream, version, tenant, correlation, causal
parents, actor, time); ``depth`` and ``hash`` depend on other streams' events and are
computed by the recorder inside the append transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar
from uuid import UUID

import msgspec

from domain.cellstate_codes import CELLSTATE_CODES
from domain.errors import DomainError

HEADER_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "event_id",
        "tenant_id",
        "correlation_id",
        "parent_ids",
        "actor",
    }
)


class Replayable(Protocol):
    """What an event is applied to: an aggregate root (``domain.aggregate``)."""

    def replay(self, event: DomainEvent) -> None: ...


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event. Subclasses add the payload fields of their kind."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    event_id: UUID
    tenant_id: str
    correlation_id: UUID
    parent_ids: tuple[UUID, ...] = ()
    actor: str = "system"

    KIND: ClassVar[str] = ""
    CODE: ClassVar[int] = 0
    # The shape of the payload: raised when a field is renamed, split or retyped, with an
    # upcaster from the previous version (domain.upcasting). Adding a field with a default
    # needs no new version.
    SCHEMA_VERSION: ClassVar[int] = 1

    def mutate(self, aggregate: Replayable | None) -> Replayable:
        """Apply this event to ``aggregate`` (eventsourcing's reconstruction protocol); a
        first event starts a blank one of the class registered for its category."""
        if aggregate is None:
            aggregate = _BLANKS[category_of(self.KIND)](self)
        aggregate.replay(self)
        return aggregate

    def payload(self) -> dict[str, Any]:
        """The kind's own fields, without the header."""
        return {
            name: msgspec.to_builtins(getattr(self, name))
            for name in self.__struct_fields__
            if name not in HEADER_FIELDS
        }


class UnknownKind(DomainError):
    """A kind name or numeric code that no event class declares."""


_E = TypeVar("_E", bound=type[DomainEvent])
#: category -> how to start an empty aggregate of it from its first event (``aggregate_root``).
_BLANKS: dict[str, Callable[[DomainEvent], Replayable]] = {}
_BY_KIND: dict[str, type[DomainEvent]] = {}
_BY_CODE: dict[int, type[DomainEvent]] = {}


def event_kind(kind: str, code: int) -> Callable[[_E], _E]:
    """Class decorator: give an event class its dotted kind and stable numeric code.

    Codes are u16 grouped by category (the high nibble), so ``by-kind`` can take either
    and a code never changes once published.
    """
    if not 0 < code <= 0xFFFF:
        raise ValueError(f"event code out of u16 range: {code:#x}")

    def register(cls: _E) -> _E:
        if kind in _BY_KIND or code in _BY_CODE or code in CELLSTATE_CODES:
            raise ValueError(f"duplicate event kind or code: {kind} {code:#06x}")
        cls.KIND = kind
        cls.CODE = code
        _BY_KIND[kind] = cls
        _BY_CODE[code] = cls
        return cls

    return register


def event_class(kind: str) -> type[DomainEvent]:
    """The class registered for a dotted kind."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise UnknownKind(kind) from None


def resolve_kind(name_or_code: str) -> str:
    """Accept ``workflow.created``, ``40961`` or ``0xa001`` and return the dotted kind; a
    CELLSTATE code (``0x1001``, see ``domain.cellstate_codes``) names the kind it stands for."""
    if name_or_code in _BY_KIND:
        return name_or_code
    try:
        code = int(name_or_code, 0)
    except ValueError:
        raise UnknownKind(name_or_code) from None
    if code in CELLSTATE_CODES:
        return CELLSTATE_CODES[code]
    try:
        return _BY_CODE[code].KIND
    except KeyError:
        raise UnknownKind(name_or_code) from None


def all_kinds() -> dict[str, int]:
    """Every registered kind with its code (for docs and the subject scheme)."""
    return {kind: cls.CODE for kind, cls in sorted(_BY_KIND.items())}


def category_of(kind: str) -> str:
    """``workflow.created`` -> ``workflow``."""
    return kind.split(".", 1)[0]


def register_category(category: str, blank: Callable[[DomainEvent], Replayable]) -> None:
    """Events of ``category`` rebuild what ``blank`` starts (an aggregate root's class)."""
    _BLANKS[category] = blank
