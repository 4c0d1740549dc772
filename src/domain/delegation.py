"""The delegation aggregate (CELLSTATE reference): one agent hands a task to another.

``pending -> accepted -> completed``, or ``pending -> rejected``; anything else is refused
(409): a completed delegation cannot be accepted again, a rejected one cannot complete.
Only the delegatee accepts, rejects or completes. The delegator may delegate only to the
agent types its ``can_delegate_to`` names (checked by ``create``).

Every step's event names the previous step's as a parent (the stream's previous event),
and the first names the message that asked for the task (``message_id``) and any other
``caused_by``, so the whole exchange is one path in the event DAG. An acceptance may start
an execution: the delegation records its id, and the execution's first event names the
acceptance as its cause (``commands.delegations``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

DelegationStatus = Literal["pending", "accepted", "rejected", "completed"]
TaskDescription = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Reason = Annotated[str, msgspec.Meta(max_length=5000)]
Context = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]


@event_kind("delegation.created", 0xC401)
class DelegationCreated(DomainEvent, frozen=True, kw_only=True):
    delegator_id: UUID
    delegatee_id: UUID
    task_description: str
    trajectory_id: UUID
    scope_id: UUID
    context: dict[str, Any] | None = None
    expected_completion: datetime | None = None
    message_id: UUID | None = None
    request_hash: str | None = None


@event_kind("delegation.accepted", 0xC402)
class DelegationAccepted(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID
    execution_id: UUID | None = None


@event_kind("delegation.rejected", 0xC403)
class DelegationRejected(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID
    reason: str


@event_kind("delegation.completed", 0xC404)
class DelegationCompleted(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID
    result: dict[str, Any] = {}


def require_may_delegate(delegator: Agent, delegatee: Agent) -> None:
    """409 unless both are registered and the delegator's ``can_delegate_to`` names the
    delegatee's type."""
    delegator.require_live()
    delegatee.require_live()
    if delegator.id == delegatee.id:
        raise Conflict("an agent cannot delegate to itself")
    if delegatee.agent_type not in delegator.can_delegate_to:
        allowed = ", ".join(delegator.can_delegate_to) or "no agent type"
        raise Conflict(
            f"agent {delegator.id} may delegate to {allowed}; agent {delegatee.id} is a {delegatee.agent_type}"
        )


@aggregate_root("delegation")
class Delegation(Aggregate):
    delegator_id: UUID
    delegatee_id: UUID
    task_description: str
    trajectory_id: UUID
    scope_id: UUID
    context: dict[str, Any] | None
    expected_completion: datetime | None
    message_id: UUID | None
    status: str
    accepted_at: datetime | None
    completed_at: datetime | None
    rejected_at: datetime | None
    rejection_reason: str | None
    result: dict[str, Any] | None
    execution_id: UUID | None
    accepted_event_id: UUID | None
    request_hash: str | None
    deleted = False  # delegations are never deleted; services treat every aggregate alike

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        delegation_id: UUID,
        delegator: Agent,
        delegatee: Agent,
        task_description: str,
        trajectory_id: UUID,
        scope_id: UUID,
        context: dict[str, Any] | None = None,
        expected_completion: datetime | None = None,
        asked_by: tuple[UUID, UUID] | None = None,
        request_hash: str | None = None,
    ) -> Delegation:
        """A pending delegation. ``asked_by`` is (message id, its latest event): that event
        becomes a cause, so the delegation answers the message in the DAG."""
        require_may_delegate(delegator, delegatee)
        causes = ctx.caused_by if asked_by is None else (asked_by[1], *ctx.caused_by)
        return cls._create(
            DelegationCreated,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=delegation_id,
            delegator_id=delegator.id,
            delegatee_id=delegatee.id,
            task_description=task_description,
            trajectory_id=trajectory_id,
            scope_id=scope_id,
            context=context,
            expected_completion=expected_completion,
            message_id=asked_by[0] if asked_by else None,
            request_hash=request_hash,
        )

    def accept(self, ctx: CommandContext, agent_id: UUID, *, execution_id: UUID | None = None) -> UUID:
        """The delegatee takes the task on; returns the acceptance's event id (the cause of
        the execution it starts, if any)."""
        self._require_delegatee(agent_id, "accept")
        self._require_status("pending", "accepted")
        self._trigger(DelegationAccepted, ctx, agent_id=agent_id, execution_id=execution_id)
        assert self.last_event_id is not None
        return self.last_event_id

    def reject(self, ctx: CommandContext, agent_id: UUID, reason: str) -> None:
        self._require_delegatee(agent_id, "reject")
        self._require_status("pending", "rejected")
        self._trigger(DelegationRejected, ctx, agent_id=agent_id, reason=reason)

    def complete(self, ctx: CommandContext, agent_id: UUID, result: dict[str, Any]) -> None:
        self._require_delegatee(agent_id, "complete")
        self._require_status("accepted", "completed")
        self._trigger(DelegationCompleted, ctx, agent_id=agent_id, result=result)

    def _require_delegatee(self, agent_id: UUID, what: str) -> None:
        if agent_id != self.delegatee_id:
            raise Conflict(f"only the delegatee {self.delegatee_id} may {what} delegation {self.id}")

    def _require_status(self, needed: str, becoming: str) -> None:
        if self.status != needed:
            raise Conflict(f"delegation {self.id} is {self.status}; only a {needed} delegation can be {becoming}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, DelegationCreated):
            self.delegator_id = event.delegator_id
            self.delegatee_id = event.delegatee_id
            self.task_description = event.task_description
            self.trajectory_id = event.trajectory_id
            self.scope_id = event.scope_id
            self.context = event.context
            self.expected_completion = event.expected_completion
            self.message_id = event.message_id
            self.status = "pending"
            self.accepted_at = self.completed_at = self.rejected_at = None
            self.rejection_reason = None
            self.result = None
            self.execution_id = None
            self.accepted_event_id = None
            self.request_hash = event.request_hash
        elif isinstance(event, DelegationAccepted):
            self.status = "accepted"
            self.accepted_at = event.timestamp
            self.execution_id = event.execution_id
            self.accepted_event_id = event.event_id
        elif isinstance(event, DelegationRejected):
            self.status = "rejected"
            self.rejected_at = event.timestamp
            self.rejection_reason = event.reason
        elif isinstance(event, DelegationCompleted):
            self.status = "completed"
            self.completed_at = event.timestamp
            self.result = dict(event.result)
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Delegation cannot apply {type(event).__name__}")
