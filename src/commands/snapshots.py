"""Snapshots of aggregates: a cache that lets a long stream rebuild from a recent state.

eventsourcing's ``Repository`` already knows how to use them: given a snapshot store it
takes the latest snapshot at or below the wanted version and replays only the events
after it (``Repository.get(version=...)``). What the library does not give is an encoding
that fits our aggregates: its ``Snapshot`` class copies ``__dict__`` through its
transcoder, while our events and state are msgspec types and nothing is ever pickled.
So a snapshot here is the aggregate's annotated fields encoded with msgspec, in a table
of its own (``quipu_snapshots``, keyed by stream id and version), under a topic that
names the aggregate's category and a fingerprint of its field types.

Snapshots are never needed for correctness. A snapshot whose fingerprint no longer
matches the class (a field was added, a type changed, ``SNAPSHOT_VERSION`` was raised
after a change to ``apply``) or that does not decode raises ``StaleSnapshot``; the store
then rebuilds from the events alone. An aggregate whose instance holds attributes its
annotations do not declare is not snapshotted at all, because it could not be restored.
"""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from domain.aggregate import Aggregate, aggregate_class_for

SNAPSHOT_FORMAT = 1
DEFAULT_INTERVAL = 100
TOPIC_PREFIX = "snapshot:"


class StaleSnapshot(MapperDeserialisationError):
    """The stored snapshot cannot be used for the current code: rebuild from events."""


class NotSnapshottable(Exception):
    """The aggregate's state is not fully described by its annotations."""


class _Stored(msgspec.Struct, frozen=True):
    """What a snapshot row's ``state`` holds: format, fingerprint, the fields."""

    format: int
    fingerprint: str
    state: msgspec.Raw


@dataclass(frozen=True)
class _Layout:
    """What a class's snapshots look like: its fields, their Struct, its fingerprint."""

    fields: tuple[tuple[str, Any], ...]
    shape: type[msgspec.Struct]
    fingerprint: str


_LAYOUTS: dict[type[Aggregate], _Layout] = {}


def _layout(cls: type[Aggregate]) -> _Layout:
    """The instance fields the class declares (base classes' included, ``_private`` and
    ClassVars not), a msgspec Struct of them that encodes and validates the state, and a
    fingerprint that changes with the fields, their types or ``SNAPSHOT_VERSION``."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = tuple(
            (name, hint)
            for name, hint in hints.items()
            if not name.startswith("_") and typing.get_origin(hint) is not ClassVar
        )
        shape = msgspec.defstruct(f"{cls.__name__}State", list(fields), kw_only=True, forbid_unknown_fields=True)
        version = getattr(cls, "SNAPSHOT_VERSION", 1)
        text = f"{SNAPSHOT_FORMAT}|{version}|" + ";".join(f"{name}:{hint!r}" for name, hint in fields)
        layout = _LAYOUTS[cls] = _Layout(fields, shape, hashlib.sha256(text.encode()).hexdigest()[:16])
    return layout


def fingerprint(cls: type[Aggregate]) -> str:
    return _layout(cls).fingerprint


def encode_state(aggregate: Aggregate) -> bytes:
    """The aggregate's state as msgspec JSON (raises ``NotSnapshottable``)."""
    cls = type(aggregate)
    layout = _layout(cls)
    names = {name for name, _ in layout.fields}
    extra = {k for k in vars(aggregate) if k != "_pending"} - names
    if extra or aggregate.__dict__.get("_pending"):
        raise NotSnapshottable(f"{cls.__name__} holds undeclared attributes or unsaved events: {sorted(extra)}")
    try:
        state = layout.shape(**{name: getattr(aggregate, name) for name in names})
    except AttributeError as error:
        raise NotSnapshottable(f"{cls.__name__} has an unset field: {error}") from None
    return msgspec.json.encode(_Stored(SNAPSHOT_FORMAT, layout.fingerprint, msgspec.Raw(msgspec.json.encode(state))))


def decode_state(cls: type[Aggregate], data: bytes) -> Aggregate:
    """Rebuild an aggregate from ``encode_state`` output (raises ``StaleSnapshot``)."""
    layout = _layout(cls)
    try:
        stored = msgspec.json.decode(data, type=_Stored)
        if stored.format != SNAPSHOT_FORMAT or stored.fingerprint != layout.fingerprint:
            raise StaleSnapshot(f"{cls.__name__} snapshot has fingerprint {stored.fingerprint}")
        state = msgspec.json.decode(stored.state, type=layout.shape)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise StaleSnapshot(f"{cls.__name__} snapshot does not decode: {error}") from error
    aggregate = cls.__new__(cls)
    for name, _ in layout.fields:
        setattr(aggregate, name, getattr(state, name))
    aggregate._pending = []
    return aggregate


class AggregateSnapshot:
    """eventsourcing's snapshot protocol: the first item a ``Repository`` projects, followed
    by the events after ``originator_version``. ``mutate`` hands over the restored state."""

    def __init__(self, aggregate: Aggregate) -> None:
        self.aggregate = aggregate
        self.originator_id: UUID = aggregate.id
        self.originator_version: int = aggregate.version

    def mutate(self, aggregate: Aggregate | None) -> Aggregate:
        return self.aggregate


class SnapshotMapper(Mapper[Any]):
    """Maps ``AggregateSnapshot`` to and from rows of the snapshots table."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        assert isinstance(domain_event, AggregateSnapshot)
        aggregate = domain_event.aggregate
        return StoredEvent(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            topic=TOPIC_PREFIX + type(aggregate).CATEGORY,
            state=encode_state(aggregate),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        category = stored_event.topic.removeprefix(TOPIC_PREFIX)
        try:
            cls = aggregate_class_for(category + ".")
        except KeyError:
            raise StaleSnapshot(f"no aggregate class for snapshot topic {stored_event.topic}") from None
        aggregate = decode_state(cls, stored_event.state)
        if aggregate.id != stored_event.originator_id or aggregate.version != stored_event.originator_version:
            raise StaleSnapshot(f"snapshot row {stored_event.originator_id}@{stored_event.originator_version} mismatch")
        return AggregateSnapshot(aggregate)


class SnapshotRecorder(PostgresAggregateRecorder):
    """The library's aggregate recorder for the snapshots table, with two changes: a
    snapshot that already exists is left alone (two writers may take the same one), and
    the DDL takes the same advisory lock as the events recorder (processes start together)."""

    def __init__(self, datastore: Any, *, events_table_name: str = "quipu_snapshots") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = self.insert_events_statement + SQL(" ON CONFLICT DO NOTHING")

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        curs.execute(SQL("SELECT pg_advisory_xact_lock(hashtext('quipu-ddl'))"))
        super()._create_table(curs)


def crosses(first_version: int, last_version: int, interval: int) -> bool:
    """Whether versions ``first..last`` (one save) reach a multiple of ``interval``."""
    if interval <= 0 or last_version < first_version:
        return False
    return last_version // interval > (first_version - 1) // interval
