"""How each execution event changes the aggregate: the only place its state changes.

Replaying the stream through here rebuilds exactly the execution that decided the
events, so a live aggregate and a reloaded one (or one as of a past version) agree.
"""

from __future__ import annotations

import msgspec

from domain.approvals import ApprovalRecord
from domain.events import DomainEvent
from domain.execution_events import (
    HITP_RESPONSE_KEY,
    ApprovalAnswered,
    CheckpointTaken,
    DecisionMade,
    ExecutionCancelled,
    ExecutionDeleted,
    ExecutionFailed,
    ExecutionPaused,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionTimedOut,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    NodeSkipped,
    NodeStarted,
    checkpoint_type,
)
from domain.execution_state import ExecutionState
from domain.execution_status import CheckpointRef, ExecutionStatus
from domain.hashing import state_hash
from domain.scheduling import NodeStatus, merge_output, taken_edges


def apply_event(ex: ExecutionState, event: DomainEvent) -> None:
    if isinstance(event, ExecutionStarted):
        ex.workflow_id, ex.workflow_version = event.workflow_id, event.workflow_version
        ex.definition, ex.state = event.definition, dict(event.input)
        ex.request_hash, ex.deadline = event.request_hash, event.deadline
        ex.status, ex.error = ExecutionStatus.RUNNING, None
        ex.nodes, ex.attempts, ex.taken = {}, {}, set()
        ex.completion_events, ex.scheduled_events, ex.failure_events = {}, {}, {}
        ex.started_events, ex.first_event_id = {}, event.event_id
        ex.node_deadlines, ex.retry_due, ex.approvals = {}, {}, {}
        ex.input, ex.fork, ex.checkpoints, ex.first_scheduled = dict(event.input), event.fork, {}, {}
        ex.recovery_point, ex.retry_base, ex.deleted = None, {}, False
        for c in event.carried:  # a branch starts where its parent was
            ex.nodes[c.node_id] = NodeStatus.SUCCEEDED if c.status == "succeeded" else NodeStatus.SKIPPED
            if c.completion_event_id is not None:
                ex.completion_events[c.node_id] = c.completion_event_id
            ex.taken |= {(c.node_id, target) for target in c.targets}
    elif isinstance(event, NodeScheduled):
        ex.nodes[event.node_id] = NodeStatus.SCHEDULED
        ex.attempts[event.node_id] = event.attempt
        ex.scheduled_events[event.node_id] = event.event_id
        ex.first_scheduled.setdefault(event.node_id, event.originator_version)
        ex.started_events.pop(event.node_id, None)
        ex.retry_due.pop(event.node_id, None)
        if event.deadline is not None:
            ex.node_deadlines[event.node_id] = event.deadline
        if event.node_type == "approval":
            node = ex.node(event.node_id)
            prompt = node.config.get("prompt")
            ex.approvals[event.event_id] = ApprovalRecord(
                approval_id=event.event_id,
                node_id=event.node_id,
                prompt=prompt if isinstance(prompt, str) else node.name,
                requested_at=event.timestamp,
                timeout_seconds=node.timeout,
                state_hash=state_hash(ex.state),
            )
        ex.settle_status()
    elif isinstance(event, NodeStarted):
        ex.nodes[event.node_id] = NodeStatus.RUNNING
        ex.started_events[event.node_id] = event.event_id
    elif isinstance(event, NodeCompleted):
        ex.nodes[event.node_id] = NodeStatus.SUCCEEDED
        ex.completion_events[event.node_id] = event.event_id
        ex.node_deadlines.pop(event.node_id, None)
        ex.state = merge_output(ex.state, event.node_id, event.output)
        ex.taken |= set(taken_edges(ex.definition, event.node_id, ex.state))
    elif isinstance(event, DecisionMade):
        ex.nodes[event.node_id] = NodeStatus.SUCCEEDED
        ex.completion_events[event.node_id] = event.event_id
        ex.taken |= {(event.node_id, target) for target in event.targets}
    elif isinstance(event, NodeFailed):
        ex.node_deadlines.pop(event.node_id, None)
        ex.failure_events[event.node_id] = event.event_id
        if event.retry_at is not None:
            ex.nodes[event.node_id] = NodeStatus.RETRYING
            ex.retry_due[event.node_id] = event.retry_at
        else:
            ex.nodes[event.node_id] = NodeStatus.FAILED
        _close_approval(ex, event.node_id, event.timed_out, event)
    elif isinstance(event, ApprovalAnswered):
        record = ex.approvals[event.approval_id]
        ex.approvals[event.approval_id] = msgspec.structs.replace(
            record,
            status="approved" if event.approved else "rejected",
            answered_by=event.actor,
            answered_at=event.timestamp,
            feedback=event.feedback,
            state_changes=event.state_changes,
        )
        ex.settle_status()
    elif isinstance(event, NodeSkipped):
        ex.nodes[event.node_id] = NodeStatus.SKIPPED
    elif isinstance(event, CheckpointTaken):  # records the state; does not change it
        kind = checkpoint_type(event.type, event.node_id)
        ex.checkpoints[event.event_id] = CheckpointRef(event.node_id, event.label, event.originator_version, kind)
        if event.is_recoverable:
            ex.recovery_point = event.event_id
    elif isinstance(event, ExecutionPaused):
        ex.status = ExecutionStatus.PAUSED
    elif isinstance(event, ExecutionResumed):
        if ex.status is ExecutionStatus.FAILED:  # a failed run recovers: its unfinished nodes run again
            ex.error = None
            for node_id, status in ex.nodes.items():
                if status in (NodeStatus.FAILED, NodeStatus.RETRYING) or (
                    status in (NodeStatus.SCHEDULED, NodeStatus.RUNNING) and ex.node(node_id).type == "task"
                ):
                    ex.retry_base[node_id] = ex.attempts[node_id]
        ex.status = ExecutionStatus.RUNNING
        if event.user_response is not None or event.additional_data:
            answer = {"user_response": event.user_response, "additional_data": dict(event.additional_data)}
            ex.state = {**ex.state, HITP_RESPONSE_KEY: answer}
        ex.settle_status()
    elif isinstance(event, ExecutionCancelled):
        ex.status = ExecutionStatus.CANCELLED
    elif isinstance(event, ExecutionSucceeded):
        ex.status = ExecutionStatus.SUCCEEDED
    elif isinstance(event, ExecutionFailed):
        ex.status, ex.error = ExecutionStatus.FAILED, event.error
    elif isinstance(event, ExecutionTimedOut):
        ex.status, ex.error = ExecutionStatus.TIMED_OUT, "the execution timed out"
    elif isinstance(event, ExecutionDeleted):
        ex.deleted = True
    else:  # pragma: no cover
        raise TypeError(f"Execution cannot apply {type(event).__name__}")


def _close_approval(ex: ExecutionState, node_id: str, timed_out: bool, event: NodeFailed) -> None:
    """An approval that timed out is closed as such (a rejection was already recorded)."""
    if not timed_out:
        return
    for approval_id, record in ex.approvals.items():
        if record.node_id == node_id and record.status == "pending":
            ex.approvals[approval_id] = msgspec.structs.replace(record, status="timed_out", answered_at=event.timestamp)
    ex.settle_status()
