"""The execution aggregate: one run of a workflow definition (issue 3, domain core).

Quipu never runs user code: task nodes are handed to workers, which report back through
``complete_node`` / ``fail_node``. Start, end and decision nodes are settled here, at once;
an approval node waits for ``respond_to_approval``. Progress follows domain.scheduling.
A node's scheduling event names as parents the completion events of the nodes it waited
for, so the event DAG shows why each node ran.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, NotFound
from domain.events import DomainEvent, event_kind
from domain.scheduling import FINISHED, NodeStatus, advance, merge_output, taken_edges
from domain.workflow_graph import WorkflowDefinition


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


@event_kind("execution.started", 0xB001)
class ExecutionStarted(DomainEvent, frozen=True, kw_only=True):
    workflow_id: UUID
    workflow_version: int
    definition: WorkflowDefinition
    input: dict[str, Any]
    request_hash: str | None = None


@event_kind("execution.node_scheduled", 0xB002)
class NodeScheduled(DomainEvent, frozen=True, kw_only=True):
    node_id: str
    attempt: int = 1


@event_kind("execution.node_completed", 0xB003)
class NodeCompleted(DomainEvent, frozen=True, kw_only=True):
    node_id: str
    output: dict[str, Any]


@event_kind("execution.node_failed", 0xB004)
class NodeFailed(DomainEvent, frozen=True, kw_only=True):
    node_id: str
    error: str


@event_kind("execution.node_skipped", 0xB005)
class NodeSkipped(DomainEvent, frozen=True, kw_only=True):
    node_id: str


@event_kind("execution.paused", 0xB006)
class ExecutionPaused(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@event_kind("execution.resumed", 0xB007)
class ExecutionResumed(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("execution.cancelled", 0xB008)
class ExecutionCancelled(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@event_kind("execution.succeeded", 0xB009)
class ExecutionSucceeded(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("execution.failed", 0xB00A)
class ExecutionFailed(DomainEvent, frozen=True, kw_only=True):
    node_id: str | None
    error: str


@aggregate_root("execution")
class Execution(Aggregate):
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
    request_hash: str | None

    @classmethod
    def start(
        cls,
        ctx: CommandContext,
        *,
        execution_id: UUID,
        workflow_id: UUID,
        workflow_version: int,
        definition: WorkflowDefinition,
        input: dict[str, Any],
        request_hash: str | None = None,
    ) -> Execution:
        execution = cls._create(
            ExecutionStarted,
            ctx,
            aggregate_id=execution_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            definition=definition,
            input=input,
            request_hash=request_hash,
        )
        execution._progress(ctx)
        return execution

    # -- commands ------------------------------------------------------------------
    def complete_node(self, ctx: CommandContext, node_id: str, output: dict[str, Any]) -> None:
        self._require_working_on(node_id)
        self._trigger(NodeCompleted, ctx, node_id=node_id, output=output)
        self._progress(ctx)

    def fail_node(self, ctx: CommandContext, node_id: str, error: str) -> None:
        self._require_working_on(node_id)
        self._trigger(NodeFailed, ctx, node_id=node_id, error=error)
        self._trigger(ExecutionFailed, ctx, node_id=node_id, error=error)

    def respond_to_approval(self, ctx: CommandContext, node_id: str, *, approved: bool, feedback: str = "") -> None:
        if self.status is not ExecutionStatus.WAITING_FOR_APPROVAL or self._type(node_id) != "approval":
            raise Conflict(f"node '{node_id}' is not waiting for an approval")
        self._require_working_on(node_id)
        if approved:
            self._trigger(NodeCompleted, ctx, node_id=node_id, output={"approved": True, "feedback": feedback})
            self._progress(ctx)
        else:
            self.fail_node(ctx, node_id, f"rejected: {feedback}" if feedback else "rejected")

    def pause(self, ctx: CommandContext, reason: str | None = None) -> None:
        if self.status is not ExecutionStatus.RUNNING:
            raise Conflict(f"only a running execution can be paused; this one is {self.status.value}")
        self._trigger(ExecutionPaused, ctx, reason=reason)

    def resume(self, ctx: CommandContext) -> None:
        if self.status is not ExecutionStatus.PAUSED:
            raise Conflict(f"only a paused execution can be resumed; this one is {self.status.value}")
        self._trigger(ExecutionResumed, ctx)
        self._progress(ctx)

    def cancel(self, ctx: CommandContext, reason: str | None = None) -> None:
        if self.status in TERMINAL:
            raise Conflict(f"the execution already ended ({self.status.value})")
        self._trigger(ExecutionCancelled, ctx, reason=reason)

    def pending_approvals(self) -> dict[str, UUID]:
        """Approval nodes waiting for an answer, with the id of their request event."""
        return {
            node_id: self.scheduled_events[node_id]
            for node_id, status in self.nodes.items()
            if status is NodeStatus.SCHEDULED and self._type(node_id) == "approval"
        }

    # -- deciding what comes next ------------------------------------------------------
    def _progress(self, ctx: CommandContext) -> None:
        """Settle everything the graph allows now: skips, pass-through and decision nodes,
        then schedule tasks and approvals. Stops while paused or waiting."""
        while self.status is ExecutionStatus.RUNNING:
            step = advance(self.definition, self.nodes, self.taken)
            for node_id in step.skipped:
                self._trigger(NodeSkipped, ctx, node_id=node_id)
            settled = False
            for node_id in step.ready:
                waited_for = tuple(
                    self.completion_events[e.source]
                    for e in self.definition.edges
                    if e.target == node_id and e.source in self.completion_events
                )
                self._trigger(NodeScheduled, CommandContext(ctx.tenant_id, ctx.actor, waited_for), node_id=node_id)
                if self._type(node_id) in ("start", "end", "decision"):
                    self._trigger(NodeCompleted, ctx, node_id=node_id, output={})
                    settled = True
            if all(s in FINISHED for s in self.nodes.values()) and len(self.nodes) == len(self.definition.nodes):
                self._trigger(ExecutionSucceeded, ctx)
            if not settled and not step.skipped:
                return

    def _type(self, node_id: str) -> str:
        for node in self.definition.nodes:
            if node.id == node_id:
                return node.type
        raise NotFound(f"node '{node_id}' is not in this execution's workflow")

    def _require_working_on(self, node_id: str) -> None:
        """Workers may still report while paused or waiting for an approval: their work was
        already under way. Progress resumes when the execution runs again."""
        self._type(node_id)
        if self.status in TERMINAL:
            raise Conflict(f"the execution is {self.status.value}")
        if self.nodes.get(node_id) is not NodeStatus.SCHEDULED:
            state = self.nodes.get(node_id, NodeStatus.PENDING).value
            raise Conflict(f"node '{node_id}' is {state}, not scheduled")

    # -- state changes -------------------------------------------------------------------
    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, ExecutionStarted):
            self.workflow_id, self.workflow_version = event.workflow_id, event.workflow_version
            self.definition, self.state = event.definition, dict(event.input)
            self.request_hash = event.request_hash
            self.status = ExecutionStatus.RUNNING
            self.nodes, self.attempts, self.taken = {}, {}, set()
            self.completion_events, self.scheduled_events = {}, {}
        elif isinstance(event, NodeScheduled):
            self.nodes[event.node_id] = NodeStatus.SCHEDULED
            self.attempts[event.node_id] = event.attempt
            self.scheduled_events[event.node_id] = event.event_id
            if self._type(event.node_id) == "approval":
                self.status = ExecutionStatus.WAITING_FOR_APPROVAL
        elif isinstance(event, NodeCompleted):
            self.nodes[event.node_id] = NodeStatus.SUCCEEDED
            self.completion_events[event.node_id] = event.event_id
            self.state = merge_output(self.state, event.node_id, event.output)
            self.taken |= set(taken_edges(self.definition, event.node_id, self.state))
            if self.status is ExecutionStatus.WAITING_FOR_APPROVAL and self._type(event.node_id) == "approval":
                self.status = ExecutionStatus.RUNNING
        elif isinstance(event, NodeFailed):
            self.nodes[event.node_id] = NodeStatus.FAILED
        elif isinstance(event, NodeSkipped):
            self.nodes[event.node_id] = NodeStatus.SKIPPED
        elif isinstance(event, ExecutionPaused):
            self.status = ExecutionStatus.PAUSED
        elif isinstance(event, ExecutionResumed):
            self.status = ExecutionStatus.RUNNING
        elif isinstance(event, ExecutionCancelled):
            self.status = ExecutionStatus.CANCELLED
        elif isinstance(event, ExecutionSucceeded):
            self.status = ExecutionStatus.SUCCEEDED
        elif isinstance(event, ExecutionFailed):
            self.status = ExecutionStatus.FAILED
        else:  # pragma: no cover
            raise TypeError(f"Execution cannot apply {type(event).__name__}")
