"""The handoff aggregate (CELLSTATE reference): an agent passes a trajectory, with a snapshot
of its context, to another agent.

``initiated -> accepted -> completed``; anything else is refused (409). Only the receiving
agent accepts; completing needs an accepted handoff. The initiating agent's
``can_delegate_to`` must name the receiver's type, as for delegations. Each step's event
names the previous one as a parent, so a handoff is one path in the event DAG.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.delegation import require_may_delegate
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

HandoffStatus = Literal["initiated", "accepted", "completed"]
ContextSnapshot = Annotated[bytes, msgspec.Meta(max_length=262_144)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


@event_kind("handoff.initiated", 0xC501)
class HandoffInitiated(DomainEvent, frozen=True, kw_only=True):
    from_agent_id: UUID
    to_agent_id: UUID
    trajectory_id: UUID
    scope_id: UUID
    reason: str
    context_snapshot: bytes
    request_hash: str | None = None


@event_kind("handoff.accepted", 0xC502)
class HandoffAccepted(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID


@event_kind("handoff.completed", 0xC503)
class HandoffCompleted(DomainEvent, frozen=True, kw_only=True):
    pass


@aggregate_root("handoff")
class Handoff(Aggregate):
    from_agent_id: UUID
    to_agent_id: UUID
    trajectory_id: UUID
    scope_id: UUID
    reason: str
    context_snapshot: bytes
    status: str
    accepted_at: datetime | None
    completed_at: datetime | None
    request_hash: str | None
    deleted = False  # handoffs are never deleted; services treat every aggregate alike

    @classmethod
    def initiate(
        cls,
        ctx: CommandContext,
        *,
        handoff_id: UUID,
        sender: Agent,
        receiver: Agent,
        trajectory_id: UUID,
        scope_id: UUID,
        reason: str,
        context_snapshot: bytes,
        request_hash: str | None = None,
    ) -> Handoff:
        require_may_delegate(sender, receiver)
        return cls._create(
            HandoffInitiated,
            ctx,
            aggregate_id=handoff_id,
            from_agent_id=sender.id,
            to_agent_id=receiver.id,
            trajectory_id=trajectory_id,
            scope_id=scope_id,
            reason=reason,
            context_snapshot=context_snapshot,
            request_hash=request_hash,
        )

    def accept(self, ctx: CommandContext, agent_id: UUID) -> None:
        if agent_id != self.to_agent_id:
            raise Conflict(f"only the receiving agent {self.to_agent_id} may accept handoff {self.id}")
        self._require_status("initiated", "accepted")
        self._trigger(HandoffAccepted, ctx, agent_id=agent_id)

    def complete(self, ctx: CommandContext) -> None:
        self._require_status("accepted", "completed")
        self._trigger(HandoffCompleted, ctx)

    def _require_status(self, needed: str, becoming: str) -> None:
        if self.status != needed:
            raise Conflict(f"handoff {self.id} is {self.status}; only an {needed} handoff can be {becoming}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, HandoffInitiated):
            self.from_agent_id = event.from_agent_id
            self.to_agent_id = event.to_agent_id
            self.trajectory_id = event.trajectory_id
            self.scope_id = event.scope_id
            self.reason = event.reason
            self.context_snapshot = event.context_snapshot
            self.status = "initiated"
            self.accepted_at = self.completed_at = None
            self.request_hash = event.request_hash
        elif isinstance(event, HandoffAccepted):
            self.status = "accepted"
            self.accepted_at = event.timestamp
        elif isinstance(event, HandoffCompleted):
            self.status = "completed"
            self.completed_at = event.timestamp
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Handoff cannot apply {type(event).__name__}")
