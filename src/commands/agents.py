"""Application service for agents: register, read, update, heartbeat, unregister, and the
liveness timer that takes a silent agent offline.

Load, decide, save, as everywhere. Registration is idempotent by ``Idempotency-Key``. An
agent that goes offline (its liveness timer fired, or a client set the status) loses its
locks in the same transaction as its ``went_offline`` event, so either both are recorded
or neither; firing the timer again records nothing (the aggregate answers False).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict, PreconditionFailed
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.store import EventStore
from domain.agent import DEFAULT_OFFLINE_AFTER, Agent
from domain.aggregate import Aggregate, CommandContext
from domain.errors import NotFound
from domain.ids import uuid7

# Enough for a busy agent (heartbeats, patches, lock revocations racing) to get through.
ATTEMPTS = 32

# (tenant, agent) -> aggregates to save with the agent's ``went_offline`` (its revoked locks).
OfflineConsequences = Callable[[str, Agent, CommandContext, datetime], list[Aggregate]]


def _now() -> datetime:
    return datetime.now(UTC)


def _no_consequences(_tenant_id: str, _agent: Agent, _ctx: CommandContext, _now: datetime) -> list[Aggregate]:
    return []


@dataclass(frozen=True)
class AgentInput:
    agent_type: str
    capabilities: list[str] = field(default_factory=list)
    can_delegate_to: list[str] = field(default_factory=list)
    memory_access: dict[str, Any] = field(default_factory=dict)
    reports_to: UUID | None = None
    owner_principal_id: UUID | None = None


@dataclass(frozen=True)
class AgentChange:
    """A partial update: None leaves a field as it is."""

    capabilities: list[str] | None = None
    memory_access: dict[str, Any] | None = None
    current_trajectory_id: UUID | None = None
    current_scope_id: UUID | None = None
    status: str | None = None


class AgentService:
    def __init__(
        self,
        store: EventStore,
        *,
        offline_after: timedelta = DEFAULT_OFFLINE_AFTER,
        offline_consequences: OfflineConsequences = _no_consequences,
    ) -> None:
        self._store = store
        self.offline_after = offline_after
        self._consequences = offline_consequences

    def register(
        self, ctx: CommandContext, data: AgentInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Agent, bool]:
        """A new agent (``idle``, its liveness deadline started). Returns (agent, created_now)."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        new_id = idempotent_id(ctx.tenant_id, Agent.CATEGORY, idempotency_key) if idempotency_key else uuid7()
        if idempotency_key and (first := replayed(self._store, Agent, new_id, ctx.tenant_id, body_hash, version=1)):
            return first, False
        checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        agent = Agent.register(
            checked,
            agent_id=new_id,
            agent_type=data.agent_type,
            now=_now(),
            offline_after=self.offline_after,
            capabilities=data.capabilities,
            can_delegate_to=data.can_delegate_to,
            memory_access=data.memory_access,
            reports_to=data.reports_to,
            owner_principal_id=data.owner_principal_id,
            request_hash=body_hash,
        )
        try:
            self._store.save_all(agent)
        except ConcurrencyConflict:
            # A concurrent request with the same key won: answer as it did.
            if idempotency_key and (first := replayed(self._store, Agent, new_id, ctx.tenant_id, body_hash, version=1)):
                return first, False
            raise
        return agent, True

    def get(self, tenant_id: str, agent_id: UUID) -> Agent:
        """The live agent from the log (no lag); unregistered or another tenant's -> 404."""
        agent = self._store.load(Agent, agent_id, tenant_id)
        if agent.deleted:
            raise NotFound(f"agent {agent_id} was unregistered")
        return agent

    def update(
        self, ctx: CommandContext, agent_id: UUID, change: AgentChange, *, expected_version: int | None = None
    ) -> Agent:
        """Apply the change; a status of ``offline`` also revokes the agent's locks."""

        def decide(agent: Agent, checked: CommandContext, now: datetime) -> list[Aggregate]:
            was_offline = agent.status == "offline"
            agent.update(
                checked,
                capabilities=change.capabilities,
                memory_access=change.memory_access,
                current_trajectory_id=change.current_trajectory_id,
                current_scope_id=change.current_scope_id,
                status=change.status,
            )
            if agent.status == "offline" and not was_offline:
                return self._offline_consequences(agent, checked, now)
            return []

        return self._edit(ctx, agent_id, decide, expected_version)

    def heartbeat(self, ctx: CommandContext, agent_id: UUID) -> Agent:
        """The agent is alive: its liveness deadline moves to now + the offline interval."""

        def decide(agent: Agent, checked: CommandContext, now: datetime) -> list[Aggregate]:
            agent.heartbeat(checked, now=now, offline_after=self.offline_after)
            return []

        return self._edit(ctx, agent_id, decide, None)

    def unregister(self, ctx: CommandContext, agent_id: UUID, *, expected_version: int | None = None) -> None:
        """Append the tombstone; the agent's locks are revoked with it. The history stays."""

        def decide(agent: Agent, checked: CommandContext, now: datetime) -> list[Aggregate]:
            agent.unregister(checked)
            return self._offline_consequences(agent, checked, now)

        self._edit(ctx, agent_id, decide, expected_version)

    def go_offline(self, tenant_id: str, agent_id: UUID) -> bool:
        """The liveness timer fired: record ``went_offline`` and revoke the agent's locks in
        one transaction. False when it no longer applies (a heartbeat came in, already
        offline, unregistered); firing twice records once."""
        ctx = CommandContext(tenant_id, "system:timer")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                agent = self._store.load(Agent, agent_id, tenant_id)
            except NotFound:
                return False
            now = _now()
            if not agent.go_offline(ctx, now=now):
                return False
            others = self._offline_consequences(agent, ctx, now)
            try:
                self._store.save_all(agent, *others)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return True
        raise AssertionError("unreachable")

    def _offline_consequences(self, agent: Agent, ctx: CommandContext, now: datetime) -> list[Aggregate]:
        """What goes with the agent leaving: its locks, released with its last event as the cause."""
        assert agent.last_event_id is not None
        cause = CommandContext(ctx.tenant_id, ctx.actor, (agent.last_event_id,))
        return self._consequences(agent.tenant_id, agent, cause, now)

    def _edit(
        self,
        ctx: CommandContext,
        agent_id: UUID,
        decide: Callable[[Agent, CommandContext, datetime], list[Aggregate] | None],
        expected_version: int | None,
    ) -> Agent:
        """Load, check ``If-Match``, decide, save (with whatever the decision touched). A
        save that lost a race is decided again, unless ``If-Match`` pinned the version."""
        checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        for attempt in range(1, ATTEMPTS + 1):
            agent = self.get(ctx.tenant_id, agent_id)
            if expected_version is not None and expected_version != agent.version:
                raise PreconditionFailed(f"If-Match expected version {expected_version}, current is {agent.version}")
            others = decide(agent, checked, _now()) or []
            try:
                self._store.save_all(agent, *others)
            except ConcurrencyConflict:
                if expected_version is not None or attempt == ATTEMPTS:
                    raise
                continue
            return agent
        raise AssertionError("unreachable")
