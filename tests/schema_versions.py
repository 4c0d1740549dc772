"""A test-only kind that changes shape, for the schema-evolution tests (unit and integration).

``gadget.created`` is written at version 1 as ``{name}``; "the next release" splits the
field into ``{first_name, last_name}`` (version 2) with an upcaster from version 1. What a
deploy does - the kind's class is replaced by its new shape - is done here by swapping the
class registered for the kind, through ``monkeypatch`` so the registries are restored after
the test and no other test ever sees these kinds.
"""

from __future__ import annotations

from typing import Any, Self

import pytest

from domain import events, upcasting
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.ids import uuid7

CATEGORY = "gadget"
CREATED = "gadget.created"
TOUCHED = "gadget.touched"
# Far from every production range (docs/architecture.md, The event envelope).
CREATED_CODE = 0xFE01
TOUCHED_CODE = 0xFE02


class GadgetCreatedV1(DomainEvent, frozen=True, kw_only=True):
    """The first release's shape."""

    name: str


class GadgetCreatedV2(DomainEvent, frozen=True, kw_only=True):
    """The next release's shape: the name split in two."""

    SCHEMA_VERSION = 2
    first_name: str
    last_name: str


class GadgetTouched(DomainEvent, frozen=True, kw_only=True):
    """A kind that never changes (version 1 throughout)."""

    note: str


def split_name(payload: dict[str, Any]) -> dict[str, Any]:
    """The upcaster from version 1 to 2."""
    first, _, last = payload.pop("name").partition(" ")
    return {**payload, "first_name": first, "last_name": last}


class Gadget(Aggregate):
    """Knows both shapes, so the same class serves before and after the "deploy"; which
    fields get set tells which shape it was handed."""

    CATEGORY = CATEGORY
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    notes: list[str]

    @classmethod
    def blank(cls, first: DomainEvent) -> Self:
        self = super().blank(first)
        self.notes = []
        return self

    @classmethod
    def create(cls, ctx: CommandContext, **payload: Any) -> Gadget:
        created = events.event_class(CREATED)
        return cls._create(created, ctx, aggregate_id=uuid7(), **payload)

    def touch(self, ctx: CommandContext, note: str) -> None:
        self._trigger(GadgetTouched, ctx, note=note)

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, GadgetCreatedV1):
            self.name = event.name
        elif isinstance(event, GadgetCreatedV2):
            self.first_name, self.last_name = event.first_name, event.last_name
        elif isinstance(event, GadgetTouched):
            self.notes.append(event.note)


def _register(monkeypatch: pytest.MonkeyPatch, cls: type[DomainEvent], kind: str, code: int) -> None:
    monkeypatch.setattr(cls, "KIND", kind, raising=False)
    monkeypatch.setattr(cls, "CODE", code, raising=False)
    monkeypatch.setitem(events._BY_KIND, kind, cls)
    monkeypatch.setitem(events._BY_CODE, code, cls)


def release_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code as first released: ``gadget.created`` at version 1."""
    monkeypatch.setitem(events._BLANKS, CATEGORY, Gadget.blank)
    _register(monkeypatch, GadgetCreatedV1, CREATED, CREATED_CODE)
    _register(monkeypatch, GadgetTouched, TOUCHED, TOUCHED_CODE)


def release_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next release: ``gadget.created`` at version 2, with its upcaster from 1."""
    _register(monkeypatch, GadgetCreatedV2, CREATED, CREATED_CODE)
    monkeypatch.setitem(upcasting._UPCASTERS, (CREATED, 1), split_name)
