"""Retries, timeouts, heartbeats, outside decisions, approvals, pause, checkpoints and
replay of the execution aggregate, driven without I/O: timers are fired with an
explicit ``now`` instead of waiting for the clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.aggregate import CommandContext
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent
from domain.execution import Execution, ExecutionStatus
from domain.execution_events import (
    ApprovalAnswered,
    CheckpointTaken,
    DecisionMade,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionTimedOut,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    NodeStarted,
)
from domain.hashing import state_hash
from domain.scheduling import NodeStatus
from domain.timers import MAX_BACKOFF_SECONDS, Timer, TimerKind, retry_delay
from domain.workflow_graph import Node, WorkflowDefinition
from tests.unit.builders import CLOCK, CTX, TICK, flow

RETRY, NODE_TIMEOUT, RUN_TIMEOUT = TimerKind.RETRY, TimerKind.NODE_TIMEOUT, TimerKind.EXECUTION_TIMEOUT


def _start(definition: WorkflowDefinition, timeout: float | None = None) -> Execution:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=definition,
        input={"query": "q"},
        timeout=timeout,
    )
    ex.collect_events()
    return ex


def _scheduled(events: list[DomainEvent], node_id: str) -> NodeScheduled:
    return next(e for e in events if isinstance(e, NodeScheduled) and e.node_id == node_id)


def _within(value: datetime | None, before: datetime, after: datetime, delay: timedelta) -> bool:
    return value is not None and before + delay <= value <= after + delay


def _node(ex: Execution, node_id: str) -> NodeStatus:
    """Read through a call so that mypy does not keep an earlier assertion's narrowing."""
    return ex.nodes[node_id]


def _status(ex: Execution) -> ExecutionStatus:
    return ex.status


ONE_TASK = flow(Node(id="work", max_retries=2, config={"retry_backoff": 10}), edges="start>work work>end")


@pytest.mark.parametrize(
    ("attempt", "config", "seconds"),
    [(1, {"retry_backoff": 10}, 10), (2, {"retry_backoff": 10}, 20), (3, {"retry_backoff": 10}, 40),
     (10, {"retry_backoff": 10}, MAX_BACKOFF_SECONDS), (1, {}, 1), (2, {}, 2), (2, {"retry_backoff": 0}, 0),
     (2, {"retry_backoff": -5}, 2), (2, {"retry_backoff": "10"}, 2), (2, {"retry_backoff": True}, 2)],
)  # fmt: skip
def test_retry_delay_doubles_per_attempt_up_to_the_cap(attempt: int, config: dict[str, Any], seconds: float) -> None:
    assert retry_delay(attempt, config) == timedelta(seconds=seconds)


def test_failures_retry_with_backoff_until_max_retries_then_fail_the_run() -> None:
    ex = _start(ONE_TASK)
    for attempt, delay in ((1, 10), (2, 20)):
        before = datetime.now(UTC)
        ex.fail_node(CTX, "work", f"HTTP 500 #{attempt}", attempt=attempt)
        after = datetime.now(UTC)
        (failed,) = ex.collect_events()
        assert isinstance(failed, NodeFailed) and failed.attempt == attempt and not failed.timed_out
        assert _within(failed.retry_at, before, after, timedelta(seconds=delay)) and failed.retry_at
        assert ex.nodes["work"] is NodeStatus.RETRYING and ex.status is ExecutionStatus.RUNNING
        assert ex.timers() == [Timer(RETRY, failed.retry_at, "work", attempt)]
        assert not ex.fire_timer(CLOCK, RETRY, "work", attempt, now=failed.retry_at - TICK)
        ex.take_checkpoint(CTX)  # so the failure is not merely the stream's previous event
        assert [type(e) for e in ex.collect_events()] == [CheckpointTaken]
        assert ex.fire_timer(CLOCK, RETRY, "work", attempt, now=failed.retry_at)
        (retry,) = ex.collect_events()
        assert isinstance(retry, NodeScheduled) and retry.attempt == attempt + 1
        assert failed.event_id in retry.parent_ids and retry.actor == "system:timer"
        assert _node(ex, "work") is NodeStatus.SCHEDULED and ex.attempts["work"] == attempt + 1 and ex.timers() == []
    ex.fail_node(CTX, "work", "still broken", attempt=3)
    last, failure, ended = ex.collect_events()
    assert isinstance(last, NodeFailed) and last.retry_at is None and last.attempt == 3
    assert isinstance(failure, CheckpointTaken) and (failure.type, failure.node_id) == ("failure", "work")
    assert failure.is_recoverable and ex.recovery_point == failure.event_id
    assert isinstance(ended, ExecutionFailed) and (ended.node_id, ended.error) == ("work", "still broken")
    assert (ex.status, ex.error, ex.nodes["work"], ex.timers()) == (ExecutionStatus.FAILED, "still broken",
                                                                      NodeStatus.FAILED, [])  # fmt: skip


def test_the_backoff_in_events_is_capped() -> None:
    ex = _start(flow(Node(id="w", max_retries=3, config={"retry_backoff": 200}), edges="start>w w>end"))
    ex.fail_node(CTX, "w", "x")
    ex.fire_timer(CLOCK, RETRY, "w", 1, now=datetime.now(UTC) + timedelta(days=1))
    before = datetime.now(UTC)
    ex.fail_node(CTX, "w", "y")  # 200 s * 2 would be 400 s
    after = datetime.now(UTC)
    failed = [e for e in ex.collect_events() if isinstance(e, NodeFailed)][-1]
    assert _within(failed.retry_at, before, after, timedelta(seconds=MAX_BACKOFF_SECONDS))


def test_node_timeouts_fail_the_attempt_once_and_retry_when_allowed() -> None:
    definition = flow(
        Node(id="work", timeout=30, max_retries=1, config={"retry_backoff": 0}), edges="start>work work>end"
    )
    before = datetime.now(UTC)
    ex = Execution.start(
        CTX, execution_id=uuid.uuid4(), workflow_id=uuid.uuid4(), workflow_version=1, definition=definition, input={}
    )
    after = datetime.now(UTC)
    first = _scheduled(ex.collect_events(), "work")
    assert first.deadline and _within(first.deadline, before, after, timedelta(seconds=30))
    assert ex.timers() == [Timer(NODE_TIMEOUT, first.deadline, "work", 1)]
    assert not ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 1, now=first.deadline - TICK)
    ex.heartbeat(CTX, "work", 1)  # a running attempt still times out: heartbeats do not extend it
    ex.collect_events()
    assert ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 1, now=first.deadline)
    (failed,) = ex.collect_events()
    assert isinstance(failed, NodeFailed) and failed.timed_out and failed.retry_at is not None
    assert failed.error == "timed out after 30 s" and ex.nodes["work"] is NodeStatus.RETRYING
    assert ex.timers() == [Timer(RETRY, failed.retry_at, "work", 1)]  # the timeout is no longer pending
    assert not ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 1, now=first.deadline + timedelta(hours=1))
    assert ex.collect_events() == []  # firing the same timer twice records nothing
    assert ex.fire_timer(CLOCK, RETRY, "work", 1, now=failed.retry_at)
    second = _scheduled(ex.collect_events(), "work")
    assert second.attempt == 2 and second.deadline and second.deadline >= first.deadline
    late = second.deadline + timedelta(hours=1)
    assert not ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 1, now=late)  # a stale attempt
    assert not ex.fire_timer(CLOCK, RETRY, "work", 1, now=late)
    assert not ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 3, now=late)
    assert ex.collect_events() == [] and _node(ex, "work") is NodeStatus.SCHEDULED
    assert ex.fire_timer(CLOCK, NODE_TIMEOUT, "work", 2, now=second.deadline)
    assert [type(e) for e in ex.collect_events()] == [NodeFailed, CheckpointTaken, ExecutionFailed]
    assert ex.status is ExecutionStatus.FAILED and ex.error == "timed out after 30 s"


def test_an_execution_timeout_ends_the_run_for_good() -> None:
    before = datetime.now(UTC)
    ex = _start(ONE_TASK, timeout=60)
    after = datetime.now(UTC)
    assert ex.deadline and _within(ex.deadline, before, after, timedelta(seconds=60))
    assert Timer(RUN_TIMEOUT, ex.deadline) in ex.timers()
    assert not ex.fire_timer(CLOCK, RUN_TIMEOUT, None, 0, now=ex.deadline - TICK)
    assert ex.fire_timer(CLOCK, RUN_TIMEOUT, None, 0, now=ex.deadline)
    assert [type(e) for e in ex.collect_events()] == [ExecutionTimedOut]
    assert ex.status is ExecutionStatus.TIMED_OUT and ex.error and ex.timers() == []
    assert not ex.fire_timer(CLOCK, RUN_TIMEOUT, None, 0, now=ex.deadline + TICK)
    reports: list[Callable[[], None]] = [
        lambda: ex.heartbeat(CTX, "work"),
        lambda: ex.complete_node(CTX, "work", {}),
        lambda: ex.fail_node(CTX, "work", "late"),
        lambda: ex.cancel(CTX),
        lambda: ex.pause(CTX),
    ]
    for report in reports:
        with pytest.raises(Conflict):
            report()
    assert ex.collect_events() == []


def test_heartbeats_record_the_start_once_per_attempt() -> None:
    ex = _start(ONE_TASK)
    ex.heartbeat(CTX, "work", 1, worker="w-1")
    (started,) = ex.collect_events()
    assert isinstance(started, NodeStarted) and (started.attempt, started.worker) == (1, "w-1")
    assert ex.nodes["work"] is NodeStatus.RUNNING
    ex.heartbeat(CTX, "work", 1, worker="w-1")
    ex.heartbeat(CTX, "work")
    assert ex.collect_events() == [] and ex.nodes["work"] is NodeStatus.RUNNING
    ex.fail_node(CTX, "work", "oom", attempt=1)
    with pytest.raises(Conflict):  # retrying: nobody should be working on it
        ex.heartbeat(CTX, "work", 1)
    ex.fire_timer(CLOCK, RETRY, "work", 1, now=datetime.now(UTC) + timedelta(days=1))
    ex.collect_events()
    with pytest.raises(Conflict, match="attempt 1"):
        ex.heartbeat(CTX, "work", 1)
    with pytest.raises(Conflict):
        ex.complete_node(CTX, "work", {"late": True}, attempt=1)
    ex.heartbeat(CTX, "work", 2, worker="w-2")
    assert [(type(e), e.attempt) for e in ex.collect_events() if isinstance(e, NodeStarted)] == [(NodeStarted, 2)]
    ex.complete_node(CTX, "work", {"done": True}, attempt=2)
    assert ex.status is ExecutionStatus.SUCCEEDED and "late" not in ex.state
    cancelled = _start(ONE_TASK)
    cancelled.cancel(CTX)
    with pytest.raises(Conflict):
        cancelled.heartbeat(CTX, "work", 1)


APPROVAL = flow(
    Node(id="draft"),
    Node(id="review", type="approval", timeout=3600, config={"prompt": "Ship it?"}),
    Node(id="publish"),
    edges="start>draft draft>review review>publish publish>end",
)


def test_workers_cannot_complete_approvals_or_decisions_nor_fail_approvals() -> None:
    """An approval is answered by a person (a worker's failure would leave it "pending" in the
    history of a failed run); a decision is made through ``decide``."""
    ex = _start(APPROVAL)
    ex.complete_node(CTX, "draft", {"text": "hi"})
    reports: list[Callable[[], None]] = [
        lambda: ex.complete_node(CTX, "review", {}),
        lambda: ex.fail_node(CTX, "review", "no"),
    ]
    for report in reports:
        with pytest.raises(Conflict):
            report()
    external = _start(flow(Node(id="pick", type="decision", config={"external": True}), edges="start>pick pick>end"))
    with pytest.raises(Conflict):
        external.complete_node(CTX, "pick", {})
    assert ex.pending_approvals() and ex.nodes["review"] is NodeStatus.SCHEDULED
    assert external.nodes["pick"] is NodeStatus.SCHEDULED


DECIDE = flow(
    Node(id="triage", type="decision", config={"external": True}),
    Node(id="a"),
    Node(id="b"),
    Node(id="c"),
    Node(id="join"),
    edges="start>triage triage>a triage>b triage>c a>join b>join c>join join>end",
)


def test_an_outside_service_picks_the_branches_of_an_external_decision() -> None:
    ex = _start(DECIDE)
    assert ex.nodes["triage"] is NodeStatus.SCHEDULED and ex.status is ExecutionStatus.RUNNING
    assert "a" not in ex.nodes  # nothing after the decision runs before it is decided
    with pytest.raises(ValidationFailed) as refused:
        ex.decide(CTX, "triage", ["a", "join", "ghost"])
    assert [p.field for p in refused.value.problems] == ["targets[1]", "targets[2]"]
    assert ex.collect_events() == []
    ex.decide(CTX, "triage", ["c", "a", "c"], reason="looks urgent")
    events = ex.collect_events()
    decided = events[0]
    assert isinstance(decided, DecisionMade) and decided.targets == ["c", "a"] and decided.reason == "looks urgent"
    assert ex.nodes["b"] is NodeStatus.SKIPPED and {ex.nodes["a"], ex.nodes["c"]} == {NodeStatus.SCHEDULED}
    assert all(decided.event_id in _scheduled(events, n).parent_ids for n in ("a", "c"))
    with pytest.raises(Conflict):
        ex.decide(CTX, "triage", ["b"])  # decided once
    ex.complete_node(CTX, "a", {})
    assert "join" not in ex.nodes  # the join waits for c, not for the skipped b
    ex.complete_node(CTX, "c", {})
    join = _scheduled(ex.collect_events(), "join")
    assert {ex.completion_events["a"], ex.completion_events["c"]} <= set(join.parent_ids)
    ex.complete_node(CTX, "join", {})
    assert _status(ex) is ExecutionStatus.SUCCEEDED


def test_only_an_external_decision_can_be_decided_from_outside() -> None:
    inner = flow(Node(id="route", type="decision"), Node(id="x"), edges="start>route route>x x>end")
    ex = _start(inner)
    for node in ("route", "x"):
        with pytest.raises(Conflict):
            ex.decide(CTX, node, ["x"])
    assert ex.collect_events() == []


def test_an_approval_records_request_answer_and_state_changes() -> None:
    ex = _start(APPROVAL)
    ex.complete_node(CTX, "draft", {"text": "hi"})
    request = _scheduled(ex.collect_events(), "review")
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    assert ex.pending_approvals() == {"review": request.event_id}
    record = ex.approvals[request.event_id]
    assert (record.status, record.node_id, record.prompt, record.timeout_seconds) == ("pending", "review", "Ship it?",
                                                                                      3600)  # fmt: skip
    assert record.state_hash == state_hash(ex.state) and record.requested_at == request.timestamp
    with pytest.raises(Conflict, match="state changed"):
        ex.respond_to_approval(CTX, "review", approved=True, shown_state_hash="0" * 64)
    assert ex.collect_events() == [] and ex.approvals[request.event_id].status == "pending"
    alice = CommandContext("acme", "user:alice")
    ex.respond_to_approval(
        alice,
        "review",
        approved=True,
        feedback="ok",
        state_changes={"tone": "formal"},
        shown_state_hash=record.state_hash,
    )
    answered, *rest = ex.collect_events()
    assert isinstance(answered, ApprovalAnswered) and answered.actor == "user:alice"
    assert (answered.approval_id, answered.state_hash, answered.state_changes) == (request.event_id, record.state_hash,
                                                                                   {"tone": "formal"})  # fmt: skip
    assert [type(e) for e in rest] == [NodeCompleted, CheckpointTaken, NodeScheduled]
    assert ex.state["tone"] == "formal" and ex.state["text"] == "hi" and _status(ex) is ExecutionStatus.RUNNING
    done = ex.approvals[request.event_id]
    assert (done.status, done.answered_by, done.feedback, done.state_changes) == ("approved", "user:alice", "ok",
                                                                                  {"tone": "formal"})  # fmt: skip
    assert done.answered_at == answered.timestamp and ex.pending_approvals() == {}
    assert ex.timers() == []  # the approval's timeout no longer applies


def test_a_rejection_fails_the_run_and_stays_in_the_history() -> None:
    ex = _start(APPROVAL)
    ex.complete_node(CTX, "draft", {})
    ex.respond_to_approval(CTX, "review", approved=False, feedback="too long")
    assert ex.status is ExecutionStatus.FAILED and ex.error == "rejected: too long"
    assert [r.status for r in ex.approvals.values()] == ["rejected"] and ex.pending_approvals() == {}
    assert ex.nodes["review"] is NodeStatus.FAILED and "publish" not in ex.nodes


def test_an_unanswered_approval_times_out_and_fails_the_run() -> None:
    ex = _start(APPROVAL)
    ex.complete_node(CTX, "draft", {})
    request = _scheduled(ex.collect_events(), "review")
    assert request.deadline and Timer(NODE_TIMEOUT, request.deadline, "review", 1) in ex.timers()
    assert not ex.fire_timer(CLOCK, NODE_TIMEOUT, "review", 1, now=request.deadline - TICK)
    assert ex.fire_timer(CLOCK, NODE_TIMEOUT, "review", 1, now=request.deadline)
    failed, _, ended = ex.collect_events()  # the failure checkpoint between them
    assert isinstance(failed, NodeFailed) and failed.timed_out and failed.retry_at is None
    assert isinstance(ended, ExecutionFailed) and ex.status is ExecutionStatus.FAILED
    record = ex.approvals[request.event_id]
    assert record.status == "timed_out" and record.answered_at == failed.timestamp and record.answered_by is None
    with pytest.raises(Conflict):
        ex.respond_to_approval(CTX, "review", approved=True)


def test_other_branches_progress_while_an_approval_waits() -> None:
    definition = flow(
        Node(id="gate", type="approval"),
        Node(id="work"),
        Node(id="after"),
        Node(id="join"),
        edges="start>gate start>work work>after gate>join after>join join>end",
    )
    ex = _start(definition)
    shown = ex.approvals[ex.pending_approvals()["gate"]].state_hash
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    ex.heartbeat(CTX, "work")
    assert ex.nodes["work"] is NodeStatus.RUNNING and ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    ex.complete_node(CTX, "work", {"found": 3})
    assert ex.nodes["after"] is NodeStatus.SCHEDULED and ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    ex.complete_node(CTX, "after", {})
    assert "join" not in ex.nodes  # the join waits for the approval
    with pytest.raises(Conflict):  # the state moved on since the approver looked
        ex.respond_to_approval(CTX, "gate", approved=True, shown_state_hash=shown)
    ex.respond_to_approval(CTX, "gate", approved=True, shown_state_hash=state_hash(ex.state))
    assert _node(ex, "join") is NodeStatus.SCHEDULED and _status(ex) is ExecutionStatus.RUNNING


def test_an_ended_run_has_no_pending_approvals() -> None:
    ex = _start(APPROVAL)
    ex.complete_node(CTX, "draft", {})
    ex.cancel(CTX, "not needed")
    assert ex.pending_approvals() == {} and ex.timers() == []


def test_retries_due_while_paused_are_scheduled_on_resume() -> None:
    definition = flow(
        Node(id="soon", max_retries=1, config={"retry_backoff": 0}),
        Node(id="later", max_retries=1, config={"retry_backoff": 3600}),
        edges="start>soon start>later soon>end later>end",
    )
    ex = _start(definition)
    ex.fail_node(CTX, "soon", "flaky")
    ex.fail_node(CTX, "later", "flaky")
    failure = ex.failure_events["soon"]
    ex.pause(CTX, "maintenance")
    ex.collect_events()
    due = {t.node_id: t.due_at for t in ex.timers()}
    assert not ex.fire_timer(CLOCK, RETRY, "soon", 1, now=due["soon"] + timedelta(hours=1))
    assert ex.collect_events() == [] and ex.nodes["soon"] is NodeStatus.RETRYING
    ex.resume(CTX)
    resumed, retry = ex.collect_events()
    assert isinstance(resumed, ExecutionResumed) and isinstance(retry, NodeScheduled)
    assert (retry.node_id, retry.attempt) == ("soon", 2) and failure in retry.parent_ids
    assert ex.nodes["later"] is NodeStatus.RETRYING and ex.timers() == [Timer(RETRY, due["later"], "later", 1)]


def test_checkpoints_after_tasks_and_approvals_and_on_demand() -> None:
    definition = flow(Node(id="a"), Node(id="b"), Node(id="ok", type="approval"), edges="start>a a>b b>ok ok>end")
    ex = _start(definition)
    ex.complete_node(CTX, "a", {"x": 1})
    ex.complete_node(CTX, "b", {"x": 2, "y": 3})
    ex.respond_to_approval(CTX, "ok", approved=True, state_changes={"z": 4})
    ex.take_checkpoint(CTX, label="after the end")
    checkpoints = [e for e in ex.collect_events() if isinstance(e, CheckpointTaken)]
    assert [(c.node_id, c.label) for c in checkpoints] == [
        ("a", None),
        ("b", None),
        ("ok", None),
        (None, "after the end"),
    ]
    first = checkpoints[0]
    assert first.state == {"query": "q", "x": 1, "outputs": {"start": {}, "a": {"x": 1}}}  # not changed by later nodes
    assert checkpoints[1].state["x"] == 2 and "z" not in checkpoints[1].state
    assert checkpoints[2].state["z"] == 4 and set(checkpoints[2].state["outputs"]) == {"start", "a", "b", "ok"}
    assert checkpoints[3].state == ex.state and "end" in ex.state["outputs"]
    assert all(c.state_hash == state_hash(c.state) for c in checkpoints)


def test_a_failed_attempt_takes_no_checkpoint() -> None:
    ex = _start(ONE_TASK)
    ex.fail_node(CTX, "work", "x")
    assert not any(isinstance(e, CheckpointTaken) for e in ex.collect_events())
