"""Application service for messages between agents: send, deliver, acknowledge.

Recipients are resolved from the write side when a message is sent (no read-model lag): the
named agent, or every registered agent of the named type (of the tenant, with no target),
the sender excepted. A reply (``in_reply_to``) names the answered message's latest event
as its cause.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from commands.exchange_writes import create_once, edit
from commands.store import EventStore
from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext
from domain.errors import NotFound
from domain.message import MAX_RECIPIENTS, Message, MessageDraft

# Registered agents of a tenant (optionally of one type) that were not unregistered: the
# registration event carries the type; the events table holds it as canonical JSON.
_AGENTS_SQL = """
SELECT d.stream_id FROM event_dag d
JOIN quipu_events e ON e.originator_id = d.stream_id AND e.originator_version = 1
WHERE d.tenant_id = %(tenant)s AND d.kind = 'agent.registered'
  AND (%(type)s::text IS NULL OR convert_from(e.state, 'UTF8')::jsonb ->> 'agent_type' = %(type)s::text)
  AND NOT EXISTS (
    SELECT 1 FROM event_dag u
    WHERE u.tenant_id = d.tenant_id AND u.kind = 'agent.unregistered' AND u.stream_id = d.stream_id)
ORDER BY d.notification_id
LIMIT %(most)s
"""


def _now() -> datetime:
    return datetime.now(UTC)


class MessageService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def send(
        self, ctx: CommandContext, draft: MessageDraft, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Message, bool]:
        """Send from a registered agent (404 otherwise) to its target's agents (409 when
        none is registered)."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Message, tuple[()]]:
            sender = self._live_agent(ctx.tenant_id, draft.from_agent_id)
            reply_to = self.get(ctx.tenant_id, draft.in_reply_to) if draft.in_reply_to else None
            message = Message.send(
                checked,
                message_id=new_id,
                draft=draft,
                recipients=self._recipients(ctx.tenant_id, draft, sender),
                now=_now(),
                reply_to=reply_to,
                request_hash=body_hash,
            )
            return message, ()

        return create_once(self._store, ctx, Message, decide, idempotency_key=idempotency_key, raw_body=raw_body)

    def get(self, tenant_id: str, message_id: UUID) -> Message:
        return self._store.load(Message, message_id, tenant_id)

    def acknowledge(self, ctx: CommandContext, message_id: UUID, agent_id: UUID) -> Message:
        """409 unless ``agent_id`` is a recipient that has not acknowledged it yet."""

        def change(message: Message, checked: CommandContext) -> tuple[Aggregate, ...]:
            message.acknowledge(checked, agent_id, now=_now())
            return ()

        return edit(self._store, ctx, Message, message_id, change)

    def deliver(self, ctx: CommandContext, message_id: UUID, agent_id: UUID) -> bool:
        """Record that an inbox feed hands the message to ``agent_id``; False when it was
        handed to that agent before (by this feed or another), so it is not sent again."""
        recorded: list[bool] = []

        def change(message: Message, checked: CommandContext) -> tuple[Aggregate, ...]:
            recorded[:] = [message.deliver(checked, agent_id)]
            return ()

        edit(self._store, ctx, Message, message_id, change)
        return recorded[0]

    def agents(self, tenant_id: str, agent_type: str | None = None) -> list[UUID]:
        """Registered agents of the tenant (of ``agent_type`` if given), oldest first."""
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(_AGENTS_SQL, {"tenant": tenant_id, "type": agent_type, "most": MAX_RECIPIENTS})
            return [UUID(str(row["stream_id"])) for row in curs.fetchall()]

    def _recipients(self, tenant_id: str, draft: MessageDraft, sender: Agent) -> list[UUID]:
        target = draft.to
        if target is not None and target.agent_id is not None:
            return [self._live_agent(tenant_id, target.agent_id).id]
        agent_type = target.agent_type if target is not None else None
        return [a for a in self.agents(tenant_id, agent_type) if a != sender.id]

    def _live_agent(self, tenant_id: str, agent_id: UUID) -> Agent:
        agent = self._store.load(Agent, agent_id, tenant_id)
        if agent.deleted:
            raise NotFound(f"agent {agent_id} was unregistered")
        return agent
