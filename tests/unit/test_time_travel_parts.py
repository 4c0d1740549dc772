"""The pure parts of time travel: reading a point, pacing a replay, when to snapshot, and the
snapshot encoding (any history, snapshotted at any version and replayed on from there,
rebuilds the same execution as replaying every event)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.as_of import Point, parse_point
from commands.replay_log import MAX_PACE_DELAY, pace_delay
from commands.snapshots import (
    AggregateSnapshot,
    NotSnapshottable,
    SnapshotMapper,
    StaleSnapshot,
    crosses,
    decode_state,
    encode_state,
)
from domain.aggregate import Aggregate
from domain.errors import DomainError, ValidationFailed
from domain.events import DomainEvent
from domain.execution import Execution
from domain.hashing import canonical_encoding
from domain.workflow import Workflow
from domain.workflow_graph import Node
from tests.unit.builders import CTX, flow, view
from tests.unit.test_execution_replay import MIXED, OPS, Op, _act


def test_points_are_versions_event_ids_or_timestamps() -> None:
    event = uuid.uuid4()
    assert parse_point("42") == Point(version=42)
    assert parse_point(" 7 ") == Point(version=7)
    assert parse_point(str(event)) == Point(event_id=event)
    assert parse_point(event.hex) == Point(event_id=event)
    at = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert parse_point("2025-03-01T10:00:00Z") == Point(at=at)
    assert parse_point("2025-03-01T10:00:00") == Point(at=at)  # no zone: UTC
    assert parse_point("2025-03-01T12:00:00+02:00").at == at
    assert parse_point("2025-03-01T12:00:00 02:00").at == at  # '+' decoded to a space
    assert parse_point("2025-03-01 10:00:00").at == at


@pytest.mark.parametrize("text", ["", "0", "-3", "x", "1.5", "٣", "2025-13-01", "tomorrow"])
def test_anything_else_is_refused_with_the_field_named(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_point(text, "from")
    assert refused.value.problems[0].field == "from" and refused.value.problems[0].code == "invalid_point"


def test_pace_scales_the_recorded_gaps_and_caps_them() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    assert pace_delay(None, t0, 1.0) == 0.0  # the first event is sent at once
    assert pace_delay(t0, t0 + timedelta(seconds=2), 0.0) == 0.0  # unpaced
    assert pace_delay(t0, t0 + timedelta(seconds=2), 1.0) == 2.0
    assert pace_delay(t0, t0 + timedelta(seconds=2), 10.0) == pytest.approx(0.2)
    assert pace_delay(t0, t0 + timedelta(seconds=2), 0.5) == 4.0
    assert pace_delay(t0, t0 + timedelta(hours=3), 1.0) == MAX_PACE_DELAY
    assert pace_delay(t0, t0 - timedelta(seconds=1), 1.0) == 0.0  # clocks of two writers disagree
    assert pace_delay(t0, t0 + timedelta(seconds=9), 1.0, cap=1.0) == 1.0


def test_a_snapshot_is_due_when_a_save_reaches_a_multiple_of_the_interval() -> None:
    assert crosses(1, 100, 100) and crosses(100, 100, 100) and crosses(98, 103, 100)
    assert not crosses(1, 99, 100) and not crosses(101, 199, 100)
    assert crosses(199, 250, 100) and crosses(1, 1, 1)
    assert not crosses(1, 500, 0) and not crosses(5, 4, 10)


def _encoded(events: list[DomainEvent]) -> list[DomainEvent]:
    return [msgspec.json.decode(canonical_encoding(e), type=type(e)) for e in events]


def _replayed(events: list[DomainEvent], start: Aggregate | None = None) -> Any:
    aggregate = start
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _fields(a: Aggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(a).items() if k != "_pending"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=5, max_size=30), st.data())
def test_snapshot_then_the_rest_equals_replaying_everything(ops: list[Op], data: st.DataObject) -> None:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=MIXED,
        input={"query": "q", "nested": {"a": [1, 2.5, None]}},
        timeout=3600,
    )
    log = ex.collect_events()
    for op in ops:
        with contextlib.suppress(DomainError):
            _act(ex, op)
        log += ex.collect_events()
    log = _encoded(log)
    full = _replayed(log)
    at = data.draw(st.integers(1, len(log)), label="snapshot version")
    # Through the mapper, as the snapshot store writes and reads it.
    mapper = SnapshotMapper(transcoder=None)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(AggregateSnapshot(_replayed(log[:at])))
    assert stored.originator_version == at and stored.topic == "snapshot:execution"
    snapshot = mapper.to_domain_event(stored)
    restored = _replayed(log[at:], snapshot.mutate(None))
    assert _fields(restored) == _fields(full)
    assert view(restored) == view(full) and restored.pending_approvals() == full.pending_approvals()


def test_workflows_round_trip_too() -> None:
    wf = Workflow.create(
        CTX,
        workflow_id=uuid.uuid4(),
        name="w",
        description="d",
        definition=flow(Node(id="t", config={"k": [1, {"x": None}]}, timeout=5.5), edges="start>t t>end"),
        metadata={"team": "a"},
    )
    wf.collect_events()
    back = decode_state(Workflow, encode_state(wf))
    assert _fields(back) == _fields(wf) and back.collect_events() == []


def test_what_cannot_be_restored_is_not_snapshotted_and_stale_ones_are_refused() -> None:
    ex = Execution.start(
        CTX, execution_id=uuid.uuid4(), workflow_id=uuid.uuid4(), workflow_version=1, definition=MIXED, input={}
    )
    with pytest.raises(NotSnapshottable):  # unsaved events
        encode_state(ex)
    ex.collect_events()
    data = encode_state(ex)
    ex.scratch = 1  # type: ignore[attr-defined]  # state the annotations do not declare
    with pytest.raises(NotSnapshottable):
        encode_state(ex)
    stored = msgspec.json.decode(data)
    for broken in (
        msgspec.json.encode({**stored, "fingerprint": "0" * 16}),  # the class changed since
        msgspec.json.encode({**stored, "format": 99}),
        msgspec.json.encode({**stored, "state": {**stored["state"], "status": "levitating"}}),
        b"not json",
    ):
        with pytest.raises(StaleSnapshot):
            decode_state(Execution, broken)
    with pytest.raises(StaleSnapshot):  # the right shape, but of another class
        decode_state(Workflow, data)


def test_datetimes_keep_their_instant() -> None:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=MIXED,
        input={},
        timeout=60,
    )
    ex.collect_events()
    ex.deadline = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    assert decode_state(Execution, encode_state(ex)).deadline == ex.deadline
