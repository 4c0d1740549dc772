"""Event schema versions and upcasters, without a database (domain.upcasting)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from commands.mapper import MsgspecMapper
from domain import upcasting
from domain.aggregate import CommandContext
from domain.envelope import envelope_from_state
from domain.events import all_kinds
from domain.hashing import canonical_encoding, event_hash
from domain.ids import uuid7
from domain.upcasting import UpcastError, decode_state, missing_upcasters
from tests.schema_versions import (
    CREATED,
    CREATED_CODE,
    Gadget,
    GadgetCreatedV1,
    GadgetCreatedV2,
    release_1,
    release_2,
)

CTX = CommandContext("acme", "tester")


def _v1_event() -> GadgetCreatedV1:
    return GadgetCreatedV1(
        originator_id=uuid7(),
        originator_version=1,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        event_id=uuid7(),
        tenant_id="acme",
        correlation_id=uuid7(),
        name="Ada Lovelace",
    )


def test_every_production_kind_is_complete() -> None:
    """Each kind past version 1 has an upcaster from every older version, and none is stray."""
    assert all_kinds()
    assert missing_upcasters() == []


def test_version_1_bytes_are_unchanged_and_carry_no_version() -> None:
    event = _v1_event()
    assert canonical_encoding(event) == msgspec.json.Encoder(order="sorted").encode(event)
    assert b"schema_version" not in canonical_encoding(event)


def test_a_v1_event_reads_in_the_v2_shape_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    release_1(monkeypatch)
    event = _v1_event()
    stored = canonical_encoding(event)
    digest = event_hash(stored, 0, [])
    release_2(monkeypatch)

    assert decode_state(CREATED, stored)["first_name"] == "Ada"
    envelope = envelope_from_state(stored, CREATED, depth=0, hash_=digest, notification_id=1)
    assert envelope.payload == {"first_name": "Ada", "last_name": "Lovelace"}
    assert (envelope.event_id, envelope.code, envelope.actor) == (event.event_id, CREATED_CODE, "system")
    mapper = MsgspecMapper(transcoder=None)
    decoded = mapper.to_domain_event(StoredEvent(event.originator_id, 1, CREATED, stored))
    assert isinstance(decoded, GadgetCreatedV2)
    assert (decoded.first_name, decoded.last_name, decoded.timestamp) == ("Ada", "Lovelace", event.timestamp)
    # The bytes the hash covers are the stored ones: reading never needs to re-encode.
    assert event_hash(stored, 0, []) == digest


def test_a_v2_event_records_its_version_and_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    release_1(monkeypatch)
    release_2(monkeypatch)
    gadget = Gadget.create(CTX, first_name="Grace", last_name="Hopper")
    (event,) = gadget.collect_events()
    stored = canonical_encoding(event)
    raw: dict[str, Any] = msgspec.json.decode(stored)
    assert raw["schema_version"] == 2
    assert list(raw) == sorted(raw)  # still canonical: sorted keys
    decoded = MsgspecMapper(transcoder=None).to_domain_event(StoredEvent(event.originator_id, 1, CREATED, stored))
    assert decoded == event
    envelope = envelope_from_state(stored, CREATED, depth=0, hash_="h", notification_id=1)
    assert envelope.payload == {"first_name": "Grace", "last_name": "Hopper"}


def test_an_event_from_newer_code_is_refused_not_misread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rolling deploy: a process still at version 1 meets an event written at version 2."""
    release_1(monkeypatch)
    release_2(monkeypatch)
    (event,) = Gadget.create(CTX, first_name="Grace", last_name="Hopper").collect_events()
    stored = canonical_encoding(event)
    release_1(monkeypatch)  # the old code again
    with pytest.raises(UpcastError, match="upgrade"):
        decode_state(CREATED, stored)
    with pytest.raises(MapperDeserialisationError, match="upgrade"):
        MsgspecMapper(transcoder=None).to_domain_event(StoredEvent(event.originator_id, 1, CREATED, stored))


def test_a_missing_upcaster_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    release_1(monkeypatch)
    stored = canonical_encoding(_v1_event())
    release_2(monkeypatch)
    monkeypatch.delitem(upcasting._UPCASTERS, (CREATED, 1))
    assert missing_upcasters() == [f"{CREATED}: no upcaster from version 1"]
    with pytest.raises(UpcastError, match="no upcaster"):
        decode_state(CREATED, stored)


def test_an_upcaster_may_not_touch_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    release_1(monkeypatch)
    stored = canonical_encoding(_v1_event())
    release_2(monkeypatch)
    monkeypatch.setitem(upcasting._UPCASTERS, (CREATED, 1), lambda p: {**p, "actor": "someone else"})
    with pytest.raises(UpcastError, match="header"):
        decode_state(CREATED, stored)


def test_a_payload_that_mentions_the_key_is_read_normally(monkeypatch: pytest.MonkeyPatch) -> None:
    release_1(monkeypatch)
    event = GadgetCreatedV1(**{**msgspec.structs.asdict(_v1_event()), "name": '"schema_version": 9'})
    assert decode_state(CREATED, canonical_encoding(event))["name"] == '"schema_version": 9'


def test_upcasters_are_registered_once_per_step() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        upcasting.upcaster("gadget.created", 0)
