"""The message aggregate (CELLSTATE reference): one agent tells others something.

A message goes to one agent, to every agent of a type, or (no target) to every agent of
the tenant; the recipients are resolved when it is sent and recorded in its first event,
so who a message was for never changes afterwards and live delivery (the relay's
per-agent subjects, the inbox feeds) reads it from the log. A reply names the message it
answers: its first event has that message's latest event as a parent, so a conversation
is a path in the event DAG.

``delivered`` is recorded when an inbox feed hands the message to a recipient (the first
time for each recipient), ``acknowledged`` when a recipient says it has dealt with it. Only
recipients do either; an acknowledgement implies delivery; nothing is acknowledged twice by
the same agent, and an expired message takes no acknowledgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind

MessageType = Literal[
    "task_delegation", "task_result", "context_request", "context_share", "coordination_signal", "handoff",
    "interrupt", "heartbeat",
]  # fmt: skip
MessagePriority = Literal["low", "normal", "high", "critical"]
#: Delivery order: the most urgent first.
PRIORITY_RANK: dict[str, int] = {"critical": 0, "high": 1, "normal": 2, "low": 3}
Payload = Annotated[str, msgspec.Meta(max_length=200_000)]
AgentTypeName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
ArtifactIds = Annotated[list[UUID], msgspec.Meta(max_length=100)]
MAX_RECIPIENTS = 10_000


class AgentTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One agent (``agent_id``), every agent of a type (``agent_type``), or, with neither,
    every agent of the tenant."""

    agent_id: UUID | None = None
    agent_type: AgentTypeName | None = None

    def check(self) -> None:
        if self.agent_id is not None and self.agent_type is not None:
            problem = FieldProblem("to", "name an agent_id or an agent_type, not both", "ambiguous")
            raise ValidationFailed([problem])


class MessageDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a sender states (the CELLSTATE reference's send body, plus ``in_reply_to``)."""

    from_agent_id: UUID
    message_type: MessageType
    priority: MessagePriority = "normal"
    payload: Payload = ""
    to: AgentTarget | None = None
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    artifact_ids: ArtifactIds = []
    expires_at: datetime | None = None
    in_reply_to: UUID | None = None


@event_kind("message.sent", 0xC301)
class MessageSent(DomainEvent, frozen=True, kw_only=True):
    from_agent_id: UUID
    to_agent_id: UUID | None = None
    to_agent_type: str | None = None
    recipient_ids: list[UUID] = []
    message_type: str
    priority: str
    content: str  # the reference's ``payload`` (``DomainEvent.payload`` names an event's fields)
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    artifact_ids: list[UUID] = []
    expires_at: datetime | None = None
    in_reply_to: UUID | None = None
    request_hash: str | None = None


@event_kind("message.delivered", 0xC302)
class MessageDelivered(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID


@event_kind("message.acknowledged", 0xC303)
class MessageAcknowledged(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID


@aggregate_root("message")
class Message(Aggregate):
    from_agent_id: UUID
    to_agent_id: UUID | None
    to_agent_type: str | None
    recipient_ids: list[UUID]
    message_type: str
    priority: str
    payload: str
    trajectory_id: UUID | None
    scope_id: UUID | None
    artifact_ids: list[UUID]
    expires_at: datetime | None
    in_reply_to: UUID | None
    delivered_to: dict[UUID, datetime]
    acknowledged_by: dict[UUID, datetime]
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    request_hash: str | None
    deleted = False  # messages are never deleted; services treat every aggregate alike

    @classmethod
    def send(
        cls,
        ctx: CommandContext,
        *,
        message_id: UUID,
        draft: MessageDraft,
        recipients: list[UUID],
        now: datetime,
        reply_to: Message | None = None,
        request_hash: str | None = None,
    ) -> Message:
        """Record the message for ``recipients`` (resolved by the caller from ``draft.to``).
        A reply's first event names the answered message's latest event as a cause."""
        if draft.to is not None:
            draft.to.check()
        if draft.expires_at is not None and draft.expires_at <= now:
            raise ValidationFailed([FieldProblem("expires_at", "the message would expire before it is sent", "past")])
        if not recipients:
            raise Conflict("no agent receives this message: its target names no registered agent")
        causes = ctx.caused_by
        if reply_to is not None:
            if reply_to.tenant_id != ctx.tenant_id:
                raise Conflict("the answered message belongs to another tenant")
            assert reply_to.last_event_id is not None
            causes = (reply_to.last_event_id, *causes)
        return cls._create(
            MessageSent,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=message_id,
            # A conversation is one correlation: a reply shares the first message's.
            correlation_id=reply_to.correlation_id if reply_to is not None else None,
            from_agent_id=draft.from_agent_id,
            to_agent_id=draft.to.agent_id if draft.to else None,
            to_agent_type=draft.to.agent_type if draft.to else None,
            recipient_ids=list(dict.fromkeys(recipients))[:MAX_RECIPIENTS],
            message_type=draft.message_type,
            priority=draft.priority,
            content=draft.payload,
            trajectory_id=draft.trajectory_id,
            scope_id=draft.scope_id,
            artifact_ids=list(dict.fromkeys(draft.artifact_ids)),
            expires_at=draft.expires_at,
            in_reply_to=reply_to.id if reply_to is not None else None,
            request_hash=request_hash,
        )

    def is_for(self, agent_id: UUID) -> bool:
        return agent_id in self.recipient_ids

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def deliver(self, ctx: CommandContext, agent_id: UUID) -> bool:
        """Record that ``agent_id`` was handed the message; False (nothing recorded) when it
        already was."""
        self._require_recipient(agent_id)
        if agent_id in self.delivered_to:
            return False
        self._trigger(MessageDelivered, ctx, agent_id=agent_id)
        return True

    def acknowledge(self, ctx: CommandContext, agent_id: UUID, *, now: datetime) -> None:
        """A recipient has dealt with the message (409: not a recipient, already
        acknowledged by it, or expired)."""
        self._require_recipient(agent_id)
        if agent_id in self.acknowledged_by:
            raise Conflict(f"agent {agent_id} already acknowledged message {self.id}")
        if self.expired(now):
            raise Conflict(f"message {self.id} expired at {self.expires_at}; it takes no acknowledgement")
        self._trigger(MessageAcknowledged, ctx, agent_id=agent_id)

    def _require_recipient(self, agent_id: UUID) -> None:
        if not self.is_for(agent_id):
            raise Conflict(f"agent {agent_id} is not a recipient of message {self.id}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, MessageSent):
            self.from_agent_id = event.from_agent_id
            self.to_agent_id = event.to_agent_id
            self.to_agent_type = event.to_agent_type
            self.recipient_ids = list(event.recipient_ids)
            self.message_type = event.message_type
            self.priority = event.priority
            self.payload = event.content
            self.trajectory_id = event.trajectory_id
            self.scope_id = event.scope_id
            self.artifact_ids = list(event.artifact_ids)
            self.expires_at = event.expires_at
            self.in_reply_to = event.in_reply_to
            self.delivered_to = {}
            self.acknowledged_by = {}
            self.delivered_at = None
            self.acknowledged_at = None
            self.request_hash = event.request_hash
        elif isinstance(event, MessageDelivered):
            self.delivered_to[event.agent_id] = event.timestamp
            self.delivered_at = self.delivered_at or event.timestamp
        elif isinstance(event, MessageAcknowledged):
            self.acknowledged_by[event.agent_id] = event.timestamp
            self.delivered_to.setdefault(event.agent_id, event.timestamp)  # acknowledged implies delivered
            self.delivered_at = self.delivered_at or event.timestamp
            self.acknowledged_at = self.acknowledged_at or event.timestamp
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Message cannot apply {type(event).__name__}")
