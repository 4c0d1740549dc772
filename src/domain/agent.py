"""The agent aggregate (CELLSTATE reference): a registered participant of a multi-agent system.

An agent has a type (what kind of work it takes), capabilities, the agent types it may
delegate to, memory access rules, an optional supervisor (``reports_to``), what it is
working on (``current_trajectory_id``/``current_scope_id``) and a status.

Liveness is a durable timer: every heartbeat (and the registration) writes the moment the
agent counts as gone (``offline_at``) into its event, so the timer read model can be
rebuilt from the log. When that moment passes without a newer heartbeat, the timer runner
asks the aggregate to go offline; the aggregate records ``agent.went_offline`` once and
refuses (answers False) when a heartbeat came in meanwhile or it is already offline. A
heartbeat of an offline agent brings it back (``idle``). Delete appends a tombstone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

AgentStatus = Literal["idle", "active", "blocked", "failed", "offline"]
AgentTypeName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# Items of lists are plain strings: the OpenAPI schema cannot carry bounds on list items
# (Litestar drops them), and a request the schema allows must not be refused. Empty names
# are dropped, and the body's size limit bounds the rest.
Capabilities = Annotated[list[str], msgspec.Meta(max_length=100)]
AgentTypes = Annotated[list[str], msgspec.Meta(max_length=100)]
MemoryAccess = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]

# How long an agent may stay silent before it counts as offline, unless configured.
DEFAULT_OFFLINE_AFTER = timedelta(seconds=30)


@event_kind("agent.registered", 0xC101)
class AgentRegistered(DomainEvent, frozen=True, kw_only=True):
    agent_type: str
    capabilities: list[str] = []
    can_delegate_to: list[str] = []
    memory_access: dict[str, Any] = {}
    reports_to: UUID | None = None
    owner_principal_id: UUID | None = None
    offline_at: datetime  # the liveness deadline the registration starts
    request_hash: str | None = None


@event_kind("agent.updated", 0xC102)
class AgentUpdated(DomainEvent, frozen=True, kw_only=True):
    """Every mutable field after the change, so a reader needs no merge."""

    capabilities: list[str] = []
    memory_access: dict[str, Any] = {}
    current_trajectory_id: UUID | None = None
    current_scope_id: UUID | None = None
    status: str = "idle"


@event_kind("agent.heartbeat", 0xC103)
class AgentHeartbeat(DomainEvent, frozen=True, kw_only=True):
    """The agent is alive; it counts as offline from ``offline_at`` unless it beats again.
    ``status`` is the status after the beat (an offline agent comes back ``idle``)."""

    offline_at: datetime
    status: str = "idle"


@event_kind("agent.went_offline", 0xC104)
class AgentWentOffline(DomainEvent, frozen=True, kw_only=True):
    """No heartbeat since ``last_heartbeat_at``; the deadline ``offline_at`` passed (or a
    client set the status). The agent's locks are revoked in the same transaction."""

    last_heartbeat_at: datetime
    offline_at: datetime
    reason: str = "heartbeat_timeout"


@event_kind("agent.unregistered", 0xC105)
class AgentUnregistered(DomainEvent, frozen=True, kw_only=True):
    pass


@aggregate_root("agent")
class Agent(Aggregate):
    agent_type: str
    capabilities: list[str]
    can_delegate_to: list[str]
    memory_access: dict[str, Any]
    reports_to: UUID | None
    owner_principal_id: UUID | None
    current_trajectory_id: UUID | None
    current_scope_id: UUID | None
    status: str
    last_heartbeat_at: datetime
    offline_at: datetime
    deleted: bool
    request_hash: str | None

    @classmethod
    def register(
        cls,
        ctx: CommandContext,
        *,
        agent_id: UUID,
        agent_type: str,
        now: datetime,
        offline_after: timedelta = DEFAULT_OFFLINE_AFTER,
        capabilities: list[str] | None = None,
        can_delegate_to: list[str] | None = None,
        memory_access: dict[str, Any] | None = None,
        reports_to: UUID | None = None,
        owner_principal_id: UUID | None = None,
        request_hash: str | None = None,
    ) -> Agent:
        """A new agent, ``idle``; registering counts as its first heartbeat."""
        return cls._create(
            AgentRegistered,
            ctx,
            aggregate_id=agent_id,
            agent_type=agent_type,
            capabilities=_names(capabilities),
            can_delegate_to=_names(can_delegate_to),
            memory_access=memory_access or {},
            reports_to=reports_to,
            owner_principal_id=owner_principal_id,
            offline_at=now + offline_after,
            request_hash=request_hash,
        )

    def update(
        self,
        ctx: CommandContext,
        *,
        capabilities: list[str] | None = None,
        memory_access: dict[str, Any] | None = None,
        current_trajectory_id: UUID | None = None,
        current_scope_id: UUID | None = None,
        status: str | None = None,
    ) -> None:
        """Change what is given (None: unchanged). Setting ``offline`` takes the agent
        offline as the timer would (``went_offline``, reason ``set_by_client``)."""
        self.require_live()
        if status == "offline":
            if self.status != "offline":
                self._trigger(
                    AgentWentOffline,
                    ctx,
                    last_heartbeat_at=self.last_heartbeat_at,
                    offline_at=self.offline_at,
                    reason="set_by_client",
                )
            status = None
        after = {
            "capabilities": self.capabilities if capabilities is None else _names(capabilities),
            "memory_access": self.memory_access if memory_access is None else memory_access,
            "current_trajectory_id": current_trajectory_id or self.current_trajectory_id,
            "current_scope_id": current_scope_id or self.current_scope_id,
            "status": self.status if status is None else status,
        }
        if all(getattr(self, k) == v for k, v in after.items()):
            return
        self._trigger(AgentUpdated, ctx, **after)

    def heartbeat(
        self, ctx: CommandContext, *, now: datetime, offline_after: timedelta = DEFAULT_OFFLINE_AFTER
    ) -> None:
        """Push the liveness deadline to ``now + offline_after``; an offline agent comes back."""
        self.require_live()
        status = "idle" if self.status == "offline" else self.status
        self._trigger(AgentHeartbeat, ctx, offline_at=now + offline_after, status=status)

    def go_offline(self, ctx: CommandContext, *, now: datetime) -> bool:
        """The liveness timer fired. Records ``went_offline`` once; False when it no longer
        applies (a later heartbeat moved the deadline, already offline, deleted)."""
        if self.deleted or self.status == "offline" or now < self.offline_at:
            return False
        self._trigger(AgentWentOffline, ctx, last_heartbeat_at=self.last_heartbeat_at, offline_at=self.offline_at)
        return True

    def is_alive(self, now: datetime) -> bool:
        """Registered, not offline and its deadline not yet passed."""
        return not self.deleted and self.status != "offline" and now < self.offline_at

    def unregister(self, ctx: CommandContext) -> None:
        self.require_live()
        self._trigger(AgentUnregistered, ctx)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"agent {self.id} was unregistered")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, AgentRegistered):
            self.agent_type = event.agent_type
            self.capabilities = list(event.capabilities)
            self.can_delegate_to = list(event.can_delegate_to)
            self.memory_access = dict(event.memory_access)
            self.reports_to = event.reports_to
            self.owner_principal_id = event.owner_principal_id
            self.current_trajectory_id = None
            self.current_scope_id = None
            self.status = "idle"
            self.last_heartbeat_at = event.timestamp
            self.offline_at = event.offline_at
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, AgentUpdated):
            self.capabilities = list(event.capabilities)
            self.memory_access = dict(event.memory_access)
            self.current_trajectory_id = event.current_trajectory_id
            self.current_scope_id = event.current_scope_id
            self.status = event.status
        elif isinstance(event, AgentHeartbeat):
            self.last_heartbeat_at = event.timestamp
            self.offline_at = event.offline_at
            self.status = event.status
        elif isinstance(event, AgentWentOffline):
            self.status = "offline"
        elif isinstance(event, AgentUnregistered):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Agent cannot apply {type(event).__name__}")


def _names(values: list[str] | None) -> list[str]:
    """Distinct, non-empty, in the order given."""
    return list(dict.fromkeys(v for v in values or [] if v.strip()))
