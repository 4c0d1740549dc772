"""The execution aggregate: one run of a workflow definition.

Quipu never runs user code: task nodes are handed to workers, which report back through
``heartbeat`` / ``complete_node`` / ``fail_node``. Start, end and decision nodes are
settled here, at once, unless a decision node is marked ``config.external``: then an
outside service decides. An approval node waits for ``respond_to_approval``. A node's
scheduling event names as parents the completion events of the nodes it waited for, so
the event DAG shows why each node ran. Timers (timeouts, retries) are recorded as times in
the events and fired through ``fire_timer``; firing twice records nothing the second time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.aggregate import CommandContext, aggregate_root
from domain.decision_outcomes import outcome_targets
from domain.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from domain.events import DomainEvent
from domain.execution_apply import apply_event
from domain.execution_events import (
    ApprovalAnswered,
    CheckpointTaken,
    CheckpointType,
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
)
from domain.execution_state import ExecutionState
from domain.execution_status import TERMINAL, WORKING, ExecutionStatus
from domain.forking import CarriedNode, ForkOrigin
from domain.hashing import state_hash
from domain.scheduling import FINISHED, NodeStatus, advance
from domain.timers import Timer, TimerKind, retry_delay
from domain.workflow_graph import WorkflowDefinition, graph_of

__all__ = ["TERMINAL", "Execution", "ExecutionStatus", "NodeScheduled"]


@aggregate_root("execution")
class Execution(ExecutionState):
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
        timeout: float | None = None,
    ) -> Execution:
        timeout = timeout or definition.timeout  # the start's limit, else the definition's
        deadline = datetime.now(UTC) + timedelta(seconds=timeout) if timeout else None
        execution = cls._create(
            ExecutionStarted,
            ctx,
            aggregate_id=execution_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            definition=definition,
            input=input,
            request_hash=request_hash,
            deadline=deadline,
        )
        execution._progress(ctx)
        return execution

    @classmethod
    def fork_from(
        cls,
        ctx: CommandContext,
        source: Execution,
        *,
        execution_id: UUID,
        origin: ForkOrigin,
        carried: list[CarriedNode],
        state: dict[str, Any],
    ) -> Execution:
        """A new branch of ``source``: same workflow version, starting from ``state`` with
        ``carried`` nodes already finished; its first event's parent is the fork point."""
        branch = cls._create(
            ExecutionStarted,
            CommandContext(ctx.tenant_id, ctx.actor, (origin.from_event_id, *ctx.caused_by)),
            aggregate_id=execution_id,
            workflow_id=source.workflow_id,
            workflow_version=source.workflow_version,
            definition=source.definition,
            input=state,
            fork=origin,
            carried=carried,
        )
        branch._progress(ctx)
        return branch

    # -- worker reports ------------------------------------------------------------------
    def heartbeat(
        self, ctx: CommandContext, node_id: str, attempt: int | None = None, worker: str | None = None
    ) -> None:
        """A worker is alive on the node. The first heartbeat of an attempt records that it
        started; later ones record nothing (they only prove the attempt is still current)."""
        self._require_working_on(node_id, attempt)
        if self.nodes[node_id] is NodeStatus.SCHEDULED:
            self._trigger(NodeStarted, ctx, node_id=node_id, attempt=self.attempts[node_id], worker=worker)

    def complete_node(
        self, ctx: CommandContext, node_id: str, output: dict[str, Any], attempt: int | None = None
    ) -> None:
        self._require_working_on(node_id, attempt)
        if self.node(node_id).type != "task":
            raise Conflict(f"node '{node_id}' is a {self.node(node_id).type} node; workers complete task nodes")
        self._trigger(NodeCompleted, ctx, node_id=node_id, output=output, attempt=self.attempts[node_id])
        self._checkpoint(ctx, node_id=node_id)
        self._progress(ctx)

    def fail_node(self, ctx: CommandContext, node_id: str, error: str, attempt: int | None = None) -> None:
        self._require_working_on(node_id, attempt)
        if self.node(node_id).type == "approval":  # else it would fail unanswered, still "pending"
            raise Conflict(f"node '{node_id}' is an approval node; it is answered, not failed by a worker")
        self._fail_attempt(ctx, node_id, error, timed_out=False)

    # -- outside decisions and people ------------------------------------------------------
    def decide(
        self,
        ctx: CommandContext,
        node_id: str,
        targets: list[str] | None,
        reason: str | None = None,
        *,
        outcome: str | None = None,
    ) -> None:
        """An outside service chooses which outgoing edges of a waiting decision node are taken:
        by ``targets``, or by an ``outcome`` that ``outcome_targets`` resolves."""
        node = self.node(node_id)
        if node.type != "decision" or not node.config.get("external"):
            raise Conflict(f"node '{node_id}' is not an external decision node")
        self._require_working_on(node_id, None)
        outgoing = graph_of(self.definition).successors[node_id]
        if targets is None:
            targets = outcome_targets(node, outgoing, outcome or "")
        wrong = [
            FieldProblem(f"targets[{i}]", f"'{t}' is not a successor of '{node_id}'", "unknown_target")
            for i, t in enumerate(targets)
            if t not in outgoing
        ]
        if wrong:
            raise ValidationFailed(wrong)
        self._trigger(
            DecisionMade, ctx, node_id=node_id, targets=list(dict.fromkeys(targets)), reason=reason, outcome=outcome
        )
        self._progress(ctx)

    def respond_to_approval(
        self,
        ctx: CommandContext,
        node_id: str,
        *,
        approved: bool,
        feedback: str = "",
        state_changes: dict[str, Any] | None = None,
        shown_state_hash: str | None = None,
    ) -> None:
        if self.node(node_id).type != "approval" or self.nodes.get(node_id) not in WORKING:
            raise Conflict(f"node '{node_id}' is not waiting for an approval")
        self._require_working_on(node_id, None)
        current = state_hash(self.state)
        if shown_state_hash is not None and shown_state_hash != current:
            raise Conflict("the state changed since it was shown; fetch the approval again and re-check")
        changes = dict(state_changes or {})
        self._trigger(
            ApprovalAnswered,
            ctx,
            node_id=node_id,
            approval_id=self.scheduled_events[node_id],
            approved=approved,
            feedback=feedback,
            state_changes=changes,
            state_hash=current,
        )
        if approved:
            output = {**changes, "approved": True, "feedback": feedback}
            self._trigger(NodeCompleted, ctx, node_id=node_id, output=output, attempt=self.attempts[node_id])
            self._checkpoint(ctx, node_id=node_id)
            self._progress(ctx)
        else:
            self._fail_attempt(ctx, node_id, f"rejected: {feedback}" if feedback else "rejected", timed_out=False)

    # -- steering ----------------------------------------------------------------------------
    def pause(self, ctx: CommandContext, reason: str | None = None) -> None:
        if self.status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING_FOR_APPROVAL):
            raise Conflict(f"only a running execution can be paused; this one is {self.status.value}")
        self._trigger(ExecutionPaused, ctx, reason=reason)
        self._checkpoint(ctx, type="paused")

    def resume(
        self,
        ctx: CommandContext,
        *,
        user_response: str | None = None,
        additional_data: dict[str, Any] | None = None,
    ) -> None:
        """Continue a paused run. A person's answer sent along (``user_response``,
        ``additional_data``) is recorded on the resume event and kept in the state under
        ``hitp_response``. A run that is not paused but waits for exactly one approval (the
        Analemma OS reference's PAUSED_FOR_HITP) is resumed by approving that approval, with
        ``user_response`` as its feedback. A failed run resumes from its latest recoverable
        checkpoint (``_recover``)."""
        answer = {"user_response": user_response, "additional_data": dict(additional_data or {})}
        if self.status is ExecutionStatus.FAILED:
            self._recover(ctx, answer)
            return
        waiting = self.pending_approvals()
        if self.status is ExecutionStatus.WAITING_FOR_APPROVAL:
            if len(waiting) != 1:
                raise Conflict(f"{len(waiting)} approvals are waiting; answer each through its approval id")
            node_id, approval_id = next(iter(waiting.items()))
            self._trigger(ExecutionResumed, ctx, **answer, approval_id=approval_id)
            self.respond_to_approval(ctx, node_id, approved=True, feedback=user_response or "")
            return
        if self.status is not ExecutionStatus.PAUSED:
            raise Conflict(f"only a paused execution can be resumed; this one is {self.status.value}")
        self._trigger(ExecutionResumed, ctx, **answer)
        now = datetime.now(UTC)
        for node_id, due in list(self.retry_due.items()):  # retries that fell due while paused
            if due <= now:
                self._schedule(ctx, node_id, self.attempts[node_id] + 1, (self.failure_events[node_id],))
        self._progress(ctx)

    def cancel(self, ctx: CommandContext, reason: str | None = None) -> None:
        if self.status in TERMINAL:
            raise Conflict(f"the execution already ended ({self.status.value})")
        self._trigger(ExecutionCancelled, ctx, reason=reason)

    def take_checkpoint(self, ctx: CommandContext, label: str | None = None) -> None:
        """A checkpoint on demand (also allowed after the end: it is a read of the state)."""
        self._checkpoint(ctx, label=label, type="manual")

    def delete(self, ctx: CommandContext, reason: str | None = None) -> None:
        """Record a tombstone for a finished run (409 while it can still change: cancel it first)."""
        if self.deleted:
            raise NotFound(f"execution {self.id} was deleted")
        if self.status not in TERMINAL:
            raise Conflict(f"only a finished run can be deleted; this one is {self.status.value}: cancel it first")
        self._trigger(ExecutionDeleted, ctx, reason=reason)

    # -- timers ----------------------------------------------------------------------------------
    def timers(self) -> list[Timer]:
        """What is waiting on the clock now (the timers read model holds the same facts)."""
        if self.status in TERMINAL:
            return []
        found = [Timer(TimerKind.EXECUTION_TIMEOUT, self.deadline)] if self.deadline else []
        for node_id, due in self.node_deadlines.items():
            found.append(Timer(TimerKind.NODE_TIMEOUT, due, node_id, self.attempts[node_id]))
        for node_id, due in self.retry_due.items():
            found.append(Timer(TimerKind.RETRY, due, node_id, self.attempts[node_id]))
        return found

    def fire_timer(
        self, ctx: CommandContext, kind: TimerKind, node_id: str | None, attempt: int, now: datetime | None = None
    ) -> bool:
        """Act on a due timer if it still applies; True when something was recorded."""
        now = now or datetime.now(UTC)
        if self.status in TERMINAL:
            return False
        if kind is TimerKind.EXECUTION_TIMEOUT:
            if self.deadline is None or self.deadline > now:
                return False
            self._trigger(ExecutionTimedOut, ctx)
            return True
        if node_id is None or self.attempts.get(node_id) != attempt:
            return False
        if kind is TimerKind.NODE_TIMEOUT:
            due = self.node_deadlines.get(node_id)
            if due is None or due > now or self.nodes.get(node_id) not in WORKING:
                return False
            timeout = self.node(node_id).timeout
            self._fail_attempt(ctx, node_id, f"timed out after {timeout:g} s", timed_out=True)
            return True
        due = self.retry_due.get(node_id)
        if due is None or due > now or self.status is ExecutionStatus.PAUSED:
            return False  # a paused execution retries when it resumes
        self._schedule(ctx, node_id, attempt + 1, (self.failure_events[node_id],))
        return True

    # -- queries -----------------------------------------------------------------------------------
    def pending_approvals(self) -> dict[str, UUID]:
        """Approval nodes waiting for an answer, with the id of their request event. None
        once the run ended: a request left open by a cancel or timeout can no longer be answered."""
        if self.status in TERMINAL:
            return {}
        return {r.node_id: r.approval_id for r in self.approvals.values() if r.status == "pending"}

    # -- deciding what comes next --------------------------------------------------------------------
    def _progress(self, ctx: CommandContext) -> None:
        """Settle everything the graph allows now: skips, pass-through and decision nodes,
        then schedule tasks and approvals. Stops while paused or after the end."""
        while self.status in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING_FOR_APPROVAL):
            step = advance(self.definition, self.nodes, self.taken)
            for node_id in step.skipped:
                self._trigger(NodeSkipped, ctx, node_id=node_id)
            settled = False
            for node_id in step.ready:
                waited_for = tuple(
                    self.completion_events[source]
                    for source in graph_of(self.definition).predecessors[node_id]
                    if source in self.completion_events
                )
                self._schedule(ctx, node_id, 1, waited_for)
                node = self.node(node_id)
                if node.type in ("start", "end") or (node.type == "decision" and not node.config.get("external")):
                    self._trigger(NodeCompleted, ctx, node_id=node_id, output={})
                    settled = True
            if all(s in FINISHED for s in self.nodes.values()) and len(self.nodes) == len(self.definition.nodes):
                self._trigger(ExecutionSucceeded, ctx)
            if not settled and not step.skipped:
                return

    def _schedule(self, ctx: CommandContext, node_id: str, attempt: int, causes: tuple[UUID, ...]) -> None:
        node = self.node(node_id)
        deadline = None
        if node.timeout and node.type in ("task", "approval"):
            deadline = datetime.now(UTC) + timedelta(seconds=node.timeout)
        self._trigger(
            NodeScheduled,
            CommandContext(ctx.tenant_id, ctx.actor, ctx.caused_by + causes),
            node_id=node_id,
            attempt=attempt,
            node_type=node.type,
            agent_type=node.agent_type,
            deadline=deadline,
            callback_id=node.callback_id,
        )

    def _fail_attempt(self, ctx: CommandContext, node_id: str, error: str, *, timed_out: bool) -> None:
        """Retry a failed task attempt while ``max_retries`` allows, else fail the run."""
        node, attempt = self.node(node_id), self.attempts[node_id]
        if node.type == "task" and attempt - self.retry_base.get(node_id, 0) <= node.max_retries:
            retry_at = datetime.now(UTC) + retry_delay(attempt, node.config)
            self._trigger(
                NodeFailed, ctx, node_id=node_id, error=error, attempt=attempt, timed_out=timed_out, retry_at=retry_at
            )
            return
        self._trigger(NodeFailed, ctx, node_id=node_id, error=error, attempt=attempt, timed_out=timed_out)
        self._checkpoint(ctx, node_id=node_id, type="failure")  # where a resume of the failed run starts
        self._trigger(ExecutionFailed, ctx, node_id=node_id, error=error)

    def _recover(self, ctx: CommandContext, answer: dict[str, Any]) -> None:
        """Resume a failed run from its latest recoverable checkpoint: the failure checkpoint of
        the node that failed it, whose state is the run's state now (failing changes no state),
        or a later one taken on demand. The resume event names it as a cause; every node the
        failure left unfinished (failed, waiting for a retry, or a task whose worker's reports
        were refused once the run had failed) is scheduled again with a fresh retry budget."""
        point = self.recovery_point
        failed = {
            n: self.failure_events[n] for n, s in self.nodes.items() if s in (NodeStatus.FAILED, NodeStatus.RETRYING)
        }
        lost = {n.id for n in self.definition.nodes if n.type == "task" and self.nodes.get(n.id) in WORKING}
        again = [n.id for n in self.definition.nodes if n.id in failed or n.id in lost]
        self._trigger(
            ExecutionResumed,
            CommandContext(ctx.tenant_id, ctx.actor, ctx.caused_by + ((point,) if point else ())),
            **answer,
            from_checkpoint_id=point,
            deadline=self.deadline,
        )
        for node_id in again:
            cause = (failed[node_id],) if node_id in failed else ()
            self._schedule(ctx, node_id, self.attempts[node_id] + 1, cause)
        self._progress(ctx)

    def _checkpoint(
        self,
        ctx: CommandContext,
        node_id: str | None = None,
        label: str | None = None,
        type: CheckpointType = "automatic",
    ) -> None:
        self._trigger(
            CheckpointTaken,
            ctx,
            state=self.state,
            state_hash=state_hash(self.state),
            node_id=node_id,
            label=label,
            type=type,
            is_recoverable=self.status is not ExecutionStatus.SUCCEEDED,
        )

    def _require_working_on(self, node_id: str, attempt: int | None) -> None:
        """Workers may still report while paused or waiting for an approval: their work was
        already under way. A report for an attempt that is over is refused."""
        self.node(node_id)
        if self.status in TERMINAL:
            raise Conflict(f"the execution is {self.status.value}")
        if self.nodes.get(node_id) not in WORKING:
            state = self.nodes.get(node_id, NodeStatus.PENDING).value
            raise Conflict(f"node '{node_id}' is {state}, not scheduled or running")
        if attempt is not None and attempt != self.attempts[node_id]:
            raise Conflict(
                f"attempt {attempt} of node '{node_id}' is over; attempt {self.attempts[node_id]} is current"
            )

    # -- state changes -------------------------------------------------------------------------------
    def apply(self, event: DomainEvent) -> None:
        apply_event(self, event)
