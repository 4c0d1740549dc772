"""A resume that carries a person's answer (the Analemma OS reference's HITP response):
recorded on the resume event, kept in the state under ``hitp_response``, and, for a run
waiting for one approval, the approval answered."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.errors import Conflict
from domain.execution import Execution, ExecutionStatus
from domain.execution_events import (
    HITP_RESPONSE_KEY,
    ApprovalAnswered,
    CheckpointTaken,
    ExecutionResumed,
    NodeCompleted,
    NodeScheduled,
)
from domain.workflow_graph import Node, WorkflowDefinition
from tests.unit.builders import CTX, flow, replay, view

REVIEW = flow(
    Node(id="draft"),
    Node(id="review", type="approval", config={"prompt": "Ship it?"}),
    Node(id="publish"),
    edges="start>draft draft>review review>publish publish>end",
)


def _start(definition: WorkflowDefinition) -> Execution:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=definition,
        input={"query": "q"},
    )
    return ex


def test_a_paused_run_resumed_with_an_answer_records_it_and_keeps_it_in_the_state() -> None:
    ex = _start(REVIEW)
    ex.pause(CTX)
    ex.resume(CTX, user_response="Approved", additional_data={"priority": "high"})
    resumed = ex.collect_events()[-1]
    assert isinstance(resumed, ExecutionResumed)
    assert (resumed.user_response, resumed.additional_data, resumed.approval_id) == (
        "Approved",
        {"priority": "high"},
        None,
    )
    assert ex.state[HITP_RESPONSE_KEY] == {"user_response": "Approved", "additional_data": {"priority": "high"}}
    assert ex.status is ExecutionStatus.RUNNING and ex.state["query"] == "q"


def test_a_bare_resume_leaves_the_state_alone_and_stored_resumes_still_decode() -> None:
    ex = _start(REVIEW)
    before = dict(ex.state)
    ex.pause(CTX)
    ex.resume(CTX)
    assert ex.state == before
    # A resume event written before the answer fields existed decodes with their defaults.
    stored = msgspec.to_builtins(ex.collect_events()[-1])
    old = {k: v for k, v in stored.items() if k not in ("user_response", "additional_data", "approval_id")}
    decoded = msgspec.convert(old, ExecutionResumed, strict=False)
    assert (decoded.user_response, decoded.additional_data, decoded.approval_id) == (None, {}, None)


def test_resuming_a_run_that_waits_for_one_approval_approves_it_with_the_answer() -> None:
    ex = _start(REVIEW)
    ex.complete_node(CTX, "draft", {"text": "hi"})
    approval_id = ex.pending_approvals()["review"]
    ex.collect_events()
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL
    ex.resume(CTX, user_response="Looks good", additional_data={"reviewer": "ana"})
    events = ex.collect_events()
    assert [type(e) for e in events] == [ExecutionResumed, ApprovalAnswered, NodeCompleted, CheckpointTaken,
                                         NodeScheduled]  # fmt: skip
    resumed, answered = events[0], events[1]
    assert isinstance(resumed, ExecutionResumed) and resumed.approval_id == approval_id
    assert isinstance(answered, ApprovalAnswered) and answered.approved and answered.feedback == "Looks good"
    assert ex.state[HITP_RESPONSE_KEY]["additional_data"] == {"reviewer": "ana"}
    assert ex.status is ExecutionStatus.RUNNING and ex.nodes["publish"].value == "scheduled"


def test_two_waiting_approvals_are_not_guessed_and_replay_rebuilds_the_answer() -> None:
    both = flow(
        Node(id="a", type="approval"),
        Node(id="b", type="approval"),
        edges="start>a start>b a>end b>end",
    )
    ex = _start(both)
    with pytest.raises(Conflict, match="2 approvals are waiting"):
        ex.resume(CTX, user_response="yes")
    ex.pause(CTX)
    ex.resume(CTX, user_response="later", additional_data={"n": 1})
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL  # both still pending
    assert view(replay(ex.collect_events())) == view(ex)


def test_a_finished_run_cannot_be_resumed() -> None:
    ex = _start(flow(Node(id="w"), edges="start>w w>end"))
    ex.complete_node(CTX, "w", {})
    with pytest.raises(Conflict, match="succeeded"):
        ex.resume(CTX, user_response="Approved")
