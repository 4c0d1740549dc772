"""Trajectories, scopes and turns without I/O: guards, DAG parents and replay."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from domain.aggregate import Aggregate, CommandContext
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.events import DomainEvent, resolve_kind
from domain.hashing import canonical_encoding
from domain.scope import Scope, TurnAppended
from domain.trajectory import Trajectory, TrajectoryCreated
from domain.turn import Turn, TurnRecorded

CTX = CommandContext("acme", "tester")


def _trajectory(parent: Trajectory | None = None, ctx: CommandContext = CTX) -> Trajectory:
    return Trajectory.create(ctx, trajectory_id=uuid.uuid4(), name="task", parent=parent)


def _saved(aggregate: Aggregate) -> list[DomainEvent]:
    """The aggregate's new events, as a save would take them (leaves it clean)."""
    return aggregate.collect_events()


def _scope(trajectory: Trajectory, *, budget: int = 100, parent: Scope | None = None) -> Scope:
    return Scope.open(CTX, scope_id=uuid.uuid4(), trajectory=trajectory, name="s", token_budget=budget, parent=parent)


def _replay(events: list[DomainEvent]) -> Any:
    rebuilt = None
    for e in events:
        rebuilt = msgspec.json.decode(canonical_encoding(e), type=type(e)).mutate(rebuilt)
    return rebuilt


def test_kinds_resolve_by_name_and_code_in_their_own_ranges() -> None:
    assert resolve_kind("trajectory.created") == "trajectory.created"
    assert resolve_kind(hex(TrajectoryCreated.CODE)) == "trajectory.created"
    assert 0xD001 <= TrajectoryCreated.CODE <= 0xD0FF
    assert 0xD101 <= TurnAppended.CODE <= 0xD1FF and 0xD201 <= TurnRecorded.CODE <= 0xD2FF


def test_a_sub_task_shares_the_root_and_names_its_parent_as_cause() -> None:
    root = _trajectory()
    root_created = _saved(root)[0]
    child = _trajectory(root)
    grandchild = _trajectory(child)
    child_created = _saved(child)[0]
    assert child.root_trajectory_id == root.id == grandchild.root_trajectory_id
    assert child.correlation_id == root.id and child.parent_trajectory_id == root.id
    assert child_created.parent_ids == (root_created.event_id,)
    assert _saved(grandchild)[0].parent_ids == (child_created.event_id,)


def test_status_transitions_and_their_guards() -> None:
    t = _trajectory()
    t.update(CTX, status="suspended")
    assert t.status == "suspended"
    t.update(CTX, status="active")
    t.update(CTX, status="active")  # already there: nothing recorded
    assert [e.KIND for e in _saved(t)] == ["trajectory.created", "trajectory.suspended", "trajectory.resumed"]
    t.complete(CTX, outcome={"summary": "done"})
    assert t.status == "completed" and t.outcome == {"summary": "done"} and t.completed_at is not None
    with pytest.raises(Conflict):
        t.complete(CTX)
    with pytest.raises(Conflict):
        t.fail(CTX, error="late")
    with pytest.raises(Conflict):
        t.update(CTX, status="active")
    with pytest.raises(Conflict):
        _trajectory(t)  # a finished task takes no sub-tasks
    t.update(CTX, metadata={"note": "after the fact"})  # edits stay possible
    assert t.metadata == {"note": "after the fact"} and t.status == "completed"


def test_a_status_change_that_is_refused_records_nothing_else() -> None:
    t = _trajectory()
    t.fail(CTX, error="boom")
    _saved(t)
    with pytest.raises(Conflict):
        t.update(CTX, name="renamed", status="active")
    assert _saved(t) == [] and t.name == "task"


def test_deleted_trajectories_refuse_everything() -> None:
    t = _trajectory()
    t.delete(CTX)
    for act in (
        lambda: t.delete(CTX),
        lambda: t.complete(CTX),
        lambda: t.update(CTX, name="x"),
        lambda: _trajectory(t),
    ):
        with pytest.raises(Conflict):
            act()
    with pytest.raises(ValidationFailed):
        _trajectory().update(CTX, status="paused")


def test_another_tenants_parent_is_not_found() -> None:
    with pytest.raises(NotFound):
        _trajectory(_trajectory(), CommandContext("beta", "tester"))


def test_scopes_nest_within_one_trajectory_and_link_to_it() -> None:
    t = _trajectory()
    t_created = _saved(t)[0]
    outer = _scope(t)
    outer_opened = _saved(outer)[0]
    inner = _scope(t, parent=outer)
    assert inner.parent_scope_id == outer.id and inner.correlation_id == t.root_trajectory_id
    assert _saved(inner)[0].parent_ids == (t_created.event_id, outer_opened.event_id)
    with pytest.raises(ValidationFailed):
        _scope(_trajectory(), parent=outer)  # parent in another trajectory
    outer.close(CTX)
    with pytest.raises(Conflict):
        _scope(t, parent=outer)
    t.complete(CTX)
    with pytest.raises(Conflict):
        _scope(t)


def test_turns_take_the_next_sequence_and_refuse_duplicates() -> None:
    scope = _scope(_trajectory())
    numbers = [Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="hi").sequence for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="x", sequence=10).sequence == 10
    assert Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="x").sequence == 11
    assert Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="x", sequence=5).sequence == 5
    with pytest.raises(Conflict):
        Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="x", sequence=2)
    assert scope.turn_count == 6 and scope.sequences == {1, 2, 3, 5, 10, 11}


def test_the_token_budget_is_a_hard_limit() -> None:
    scope = _scope(_trajectory(), budget=100)
    Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="assistant", content="a", token_count=60)
    before = scope.version
    with pytest.raises(Conflict):
        Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="assistant", content="b", token_count=41)
    assert scope.version == before and scope.tokens_used == 60  # a refused turn leaves no trace
    Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="assistant", content="c", token_count=40)
    assert scope.tokens_used == 100
    with pytest.raises(Conflict):
        scope.update(CTX, token_budget=99)
    scope.update(CTX, token_budget=150)
    assert scope.token_budget == 150 and scope.tokens_used == 100


def test_closed_scopes_refuse_turns_and_checkpoints() -> None:
    scope = _scope(_trajectory())
    checkpoint = scope.take_checkpoint(CTX, context_state=b"\x00state", recoverable=True)
    assert scope.checkpoint == checkpoint and checkpoint.context_state == b"\x00state"
    scope.close(CTX)
    assert not scope.is_active and scope.closed_at is not None
    for act in (
        lambda: Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="late"),
        lambda: scope.take_checkpoint(CTX, context_state=b"", recoverable=False),
        lambda: scope.close(CTX),
    ):
        with pytest.raises(Conflict):
            act()


def test_a_turns_event_names_the_scopes_event_and_its_causes() -> None:
    scope = _scope(_trajectory())
    (opened,) = _saved(scope)
    node_event = uuid.uuid4()
    turn = Turn.record(
        CommandContext("acme", "agent", (node_event,)),
        scope,
        turn_id=uuid.uuid4(),
        role="tool",
        content="result",
        tool_calls=[{"name": "search"}],
        execution_id=uuid.uuid4(),
        node_id="fetch",
    )
    (appended,) = _saved(scope)
    (recorded,) = _saved(turn)
    assert isinstance(appended, TurnAppended) and appended.turn_id == turn.id
    assert appended.parent_ids == (opened.event_id,)  # the node's event belongs to the turn
    assert recorded.parent_ids == (appended.event_id, node_event)
    assert recorded.correlation_id == scope.correlation_id
    with pytest.raises(ValidationFailed):
        Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="x", node_id="fetch")


def test_turn_edits_keep_the_recording_facts() -> None:
    scope = _scope(_trajectory())
    turn = Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="user", content="v1", token_count=3)
    turn.update(CTX, content="v2", tool_results={"ok": True})
    turn.update(CTX)  # nothing given: nothing recorded
    assert (turn.content, turn.tool_results, turn.role, turn.sequence, turn.token_count) == (
        "v2",
        {"ok": True},
        "user",
        1,
        3,
    )
    assert turn.version == 2
    turn.delete(CTX)
    with pytest.raises(Conflict):
        turn.update(CTX, content="v3")
    assert scope.tokens_used == 3  # spent tokens stay counted


def test_replay_rebuilds_each_aggregate_exactly() -> None:
    t = _trajectory()
    t.update(CTX, name="renamed", description="d", metadata={"k": 1}, status="suspended")
    scope = _scope(t, budget=50)
    t.fail(CTX, outcome={"why": "x"}, error="boom")
    scope.take_checkpoint(CTX, context_state=b"ctx", recoverable=False)
    turn = Turn.record(CTX, scope, turn_id=uuid.uuid4(), role="assistant", content="a", token_count=7)
    turn.update(CTX, metadata={"m": 2})
    scope.close(CTX)
    for live in (t, scope, turn):
        rebuilt = _replay(_saved(live))
        assert type(rebuilt) is type(live) and rebuilt.version == live.version
        fields = [n for n in type(live).__annotations__ if not n.startswith("_")]
        assert {n: getattr(rebuilt, n) for n in fields} == {n: getattr(live, n) for n in fields}
