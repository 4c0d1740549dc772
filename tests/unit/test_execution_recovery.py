"""Checkpoint types, resuming a failed run from its latest recoverable checkpoint, and the
tombstone of a finished run, on the execution aggregate without I/O."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import Conflict, NotFound
from domain.events import DomainEvent
from domain.execution import Execution, ExecutionStatus
from domain.execution_events import (
    CheckpointTaken,
    ExecutionDeleted,
    ExecutionFailed,
    ExecutionPaused,
    ExecutionResumed,
    NodeFailed,
    NodeScheduled,
    checkpoint_type,
)
from domain.scheduling import NodeStatus
from domain.workflow_graph import Node, WorkflowDefinition
from tests.unit.builders import CTX, flow, replay, view

PARALLEL = flow(
    Node(id="a", max_retries=1),
    Node(id="b", max_retries=0),
    Node(id="review", type="approval"),
    edges="start>a start>b start>review a>end b>end review>end",
)


def _start(definition: WorkflowDefinition, timeout: float | None = None) -> tuple[Execution, list[DomainEvent]]:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=definition,
        input={"query": "q"},
        timeout=timeout,
    )
    return ex, ex.collect_events()


def test_checkpoints_say_their_type_and_whether_a_run_can_continue_from_them() -> None:
    ex, log = _start(flow(Node(id="work"), edges="start>work work>end"))
    ex.pause(CTX, "lunch")
    paused = ex.collect_events()
    assert [type(e) for e in paused] == [ExecutionPaused, CheckpointTaken]
    assert isinstance(cp := paused[1], CheckpointTaken) and (cp.type, cp.is_recoverable, cp.node_id) == (
        "paused",
        True,
        None,
    )
    ex.resume(CTX)
    ex.complete_node(CTX, "work", {"answer": 42})
    done = ex.collect_events()
    (after,) = [e for e in done if isinstance(e, CheckpointTaken)]
    assert (after.type, after.node_id, after.is_recoverable) == ("automatic", "work", True)
    assert ex.status is ExecutionStatus.SUCCEEDED
    ex.take_checkpoint(CTX, "final")
    (manual,) = ex.collect_events()
    assert isinstance(manual, CheckpointTaken) and (manual.type, manual.is_recoverable) == ("manual", False)
    assert ex.recovery_point == after.event_id  # the last one a run could continue from
    rebuilt = replay([*log, *paused, *done, manual])
    assert view(rebuilt) == view(ex) and rebuilt.recovery_point == after.event_id


def test_checkpoints_recorded_before_types_existed_read_as_automatic_or_manual() -> None:
    assert checkpoint_type(None, "work") == "automatic" and checkpoint_type(None, None) == "manual"
    assert checkpoint_type("failure", "work") == "failure"


def test_a_failed_run_resumes_from_its_failure_checkpoint_with_what_was_left_unfinished() -> None:
    ex, log = _start(PARALLEL, timeout=3600)
    ex.heartbeat(CTX, "a")
    ex.fail_node(CTX, "b", "disk full")
    failed = ex.collect_events()
    assert [type(e) for e in failed[-3:]] == [NodeFailed, CheckpointTaken, ExecutionFailed]
    failure = failed[-2]
    assert isinstance(failure, CheckpointTaken) and (failure.type, failure.node_id) == ("failure", "b")
    assert failure.is_recoverable and failure.state == ex.state
    with pytest.raises(Conflict):  # the failed run refuses reports: its worker's work on "a" is lost
        ex.complete_node(CTX, "a", {})

    ex.resume(CTX)
    resumed = ex.collect_events()
    event = resumed[0]
    assert isinstance(event, ExecutionResumed) and event.from_checkpoint_id == failure.event_id
    assert failure.event_id in event.parent_ids and event.deadline == ex.deadline is not None
    again = {e.node_id: e for e in resumed if isinstance(e, NodeScheduled)}
    assert {n: e.attempt for n, e in again.items()} == {"a": 2, "b": 2}  # the approval still waits
    assert failed[-3].event_id in again["b"].parent_ids
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL and ex.error is None
    assert len(ex.pending_approvals()) == 1

    assert ex.retry_base == {"a": 1, "b": 1}
    ex.fail_node(CTX, "b", "again")  # b has max_retries 0: after the resume, again no retry
    assert ex.status is ExecutionStatus.FAILED
    ex.resume(CTX)
    assert ex.retry_base == {"a": 2, "b": 2} and ex.attempts["a"] == 3  # a's attempt 2 was lost too
    ex.complete_node(CTX, "b", {"b": 1})
    ex.fail_node(CTX, "a", "flaky")  # a has one retry after the resume, as at the start
    assert ex.nodes["a"] is NodeStatus.RETRYING and ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    rebuilt = replay([*log, *failed, *resumed, *ex.collect_events()])
    assert view(rebuilt) == view(ex) and rebuilt.retry_base == ex.retry_base


def test_only_a_paused_or_failed_run_resumes() -> None:
    ex, _ = _start(flow(Node(id="work"), edges="start>work work>end"))
    ex.cancel(CTX)
    with pytest.raises(Conflict):
        ex.resume(CTX)


def test_a_finished_run_is_deleted_by_a_tombstone_once() -> None:
    ex, log = _start(flow(Node(id="work"), edges="start>work work>end"))
    with pytest.raises(Conflict, match="cancel it first"):
        ex.delete(CTX)
    ex.complete_node(CTX, "work", {})
    ex.delete(CTX, "done with it")
    done = ex.collect_events()
    assert isinstance(tomb := done[-1], ExecutionDeleted) and tomb.reason == "done with it" and ex.deleted
    with pytest.raises(NotFound):
        ex.delete(CTX)
    rebuilt = replay([*log, *done])
    assert rebuilt.deleted and rebuilt.status is ExecutionStatus.SUCCEEDED
