"""What an execution's events build: the fields of the execution aggregate, apart from its
commands, so the code that applies events (``execution_apply``) needs only this."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from domain.aggregate import Aggregate
from domain.approvals import ApprovalRecord
from domain.errors import NotFound
from domain.execution_status import CheckpointRef, ExecutionStatus
from domain.forking import ForkOrigin
from domain.scheduling import NodeStatus
from domain.workflow_graph import Node, WorkflowDefinition


class ExecutionState(Aggregate):
    # ``apply`` replaces the values in its containers, never mutates them in place, so a
    # one-level copy of a rebuilt state is safe to cache (commands.state_cache).
    STATE_CACHE: ClassVar[bool] = True

    workflow_id: UUID
    workflow_version: int
    definition: WorkflowDefinition
    status: ExecutionStatus
    state: dict[str, Any]
    nodes: dict[str, NodeStatus]
    attempts: dict[str, int]
    taken: set[tuple[str, str]]
    completion_events: dict[str, UUID]
    scheduled_events: dict[str, UUID]
    failure_events: dict[str, UUID]
    started_events: dict[str, UUID]
    first_event_id: UUID
    node_deadlines: dict[str, datetime]
    retry_due: dict[str, datetime]
    deadline: datetime | None
    approvals: dict[UUID, ApprovalRecord]
    error: str | None
    request_hash: str | None
    input: dict[str, Any]  # the state it started with
    fork: ForkOrigin | None
    checkpoints: dict[UUID, CheckpointRef]
    first_scheduled: dict[str, int]  # node -> version of its first scheduling
    recovery_point: UUID | None  # the latest recoverable checkpoint: where a failed run resumes
    retry_base: dict[str, int]  # node -> its attempt when a failed run resumed (a fresh retry budget)
    deleted: bool  # a tombstone was recorded: reads of the run now answer 404

    def node(self, node_id: str) -> Node:
        for node in self.definition.nodes:
            if node.id == node_id:
                return node
        raise NotFound(f"node '{node_id}' is not in this execution's workflow")

    def settle_status(self) -> None:
        """Running or waiting, from the pending approvals (used by ``apply`` only)."""
        if self.status in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING_FOR_APPROVAL):
            waiting = any(r.status == "pending" for r in self.approvals.values())
            self.status = ExecutionStatus.WAITING_FOR_APPROVAL if waiting else ExecutionStatus.RUNNING
