"""Application service for handoffs: initiate with a context snapshot, accept, complete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from commands.exchange_writes import create_once, edit
from commands.store import EventStore
from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext
from domain.errors import NotFound
from domain.handoff import Handoff


@dataclass(frozen=True)
class HandoffInput:
    from_agent_id: UUID
    to_agent_id: UUID
    trajectory_id: UUID
    scope_id: UUID
    reason: str
    context_snapshot: bytes


class HandoffService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def create(
        self, ctx: CommandContext, data: HandoffInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Handoff, bool]:
        """An initiated handoff between registered agents (404), allowed by the sender's
        ``can_delegate_to`` (409)."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Handoff, tuple[()]]:
            handoff = Handoff.initiate(
                checked,
                handoff_id=new_id,
                sender=self._agent(ctx.tenant_id, data.from_agent_id),
                receiver=self._agent(ctx.tenant_id, data.to_agent_id),
                trajectory_id=data.trajectory_id,
                scope_id=data.scope_id,
                reason=data.reason,
                context_snapshot=data.context_snapshot,
                request_hash=body_hash,
            )
            return handoff, ()

        return create_once(self._store, ctx, Handoff, decide, idempotency_key=idempotency_key, raw_body=raw_body)

    def get(self, tenant_id: str, handoff_id: UUID) -> Handoff:
        return self._store.load(Handoff, handoff_id, tenant_id)

    def accept(self, ctx: CommandContext, handoff_id: UUID, agent_id: UUID) -> Handoff:
        def change(handoff: Handoff, checked: CommandContext) -> tuple[Aggregate, ...]:
            handoff.accept(checked, agent_id)
            return ()

        return edit(self._store, ctx, Handoff, handoff_id, change)

    def complete(self, ctx: CommandContext, handoff_id: UUID) -> Handoff:
        def change(handoff: Handoff, checked: CommandContext) -> tuple[Aggregate, ...]:
            handoff.complete(checked)
            return ()

        return edit(self._store, ctx, Handoff, handoff_id, change)

    def _agent(self, tenant_id: str, agent_id: UUID) -> Agent:
        agent = self._store.load(Agent, agent_id, tenant_id)
        if agent.deleted:
            raise NotFound(f"agent {agent_id} was unregistered")
        return agent
