"""/api/v1/agents: registered agents, their heartbeats and status (CELLSTATE reference).

An agent that stops sending heartbeats for the configured interval
(``QUIPU_AGENT_OFFLINE_AFTER``, seconds) is marked offline by a durable timer and loses
its locks; a heartbeat brings it back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset
from api.resource_helpers import Causes, created, from_row, with_etag
from api.workflows import IdempotencyKey, IfMatch, expected_version
from commands.agents import AgentChange, AgentInput, AgentService
from domain.agent import Agent, AgentStatus, AgentTypeName, AgentTypes, Capabilities, MemoryAccess
from projections.coordination import list_agents


class AgentRegister(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_type: AgentTypeName
    capabilities: Capabilities = []
    can_delegate_to: AgentTypes = []
    memory_access: MemoryAccess = {}
    owner_principal_id: UUID | None = None
    reports_to: UUID | None = None
    caused_by: Causes = []


class AgentUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Null or absent: unchanged (the CELLSTATE reference's "if changing"). ``offline``
    takes the agent offline at once (its locks are revoked)."""

    capabilities: Capabilities | None = None
    current_scope_id: UUID | None = None
    current_trajectory_id: UUID | None = None
    memory_access: MemoryAccess | None = None
    status: AgentStatus | None = None
    caused_by: Causes = []


class AgentOut(msgspec.Struct, kw_only=True):
    agent_id: UUID
    tenant_id: str
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
    created_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        me = f"/api/v1/agents/{self.agent_id}"
        self.links = {"self": me, "heartbeat": f"{me}/heartbeat"}
        if self.reports_to:
            self.links["reports_to"] = f"/api/v1/agents/{self.reports_to}"


class AgentPage(msgspec.Struct, kw_only=True):
    """The reference's ``{"agents": [...], "total": n}``, with the page's limit and offset."""

    agents: list[AgentOut]
    total: int
    limit: int
    offset: int


def agent_out(a: Agent) -> AgentOut:
    return AgentOut(
        agent_id=a.id,
        tenant_id=a.tenant_id,
        agent_type=a.agent_type,
        capabilities=a.capabilities,
        can_delegate_to=a.can_delegate_to,
        memory_access=a.memory_access,
        reports_to=a.reports_to,
        owner_principal_id=a.owner_principal_id,
        current_trajectory_id=a.current_trajectory_id,
        current_scope_id=a.current_scope_id,
        status=a.status,
        last_heartbeat_at=a.last_heartbeat_at,
        created_at=a.created_on,
        updated_at=a.modified_on,
        version=a.version,
        last_event_id=a.last_event_id,
    )


def agents(ctx: ApiContext) -> AgentService:
    assert ctx.agents is not None, "the composition root sets the agent service"
    return ctx.agents


class AgentController(Controller):
    path = "/api/v1/agents"
    tags = ["agents"]

    @post("", operation_id="registerAgent", opt={"scope": "write"}, status_code=201)
    async def register(
        self,
        data: JSONBody[AgentRegister],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[AgentOut]:
        """Register an agent (``idle``); registering counts as its first heartbeat. Safe to retry
        with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = AgentInput(
            agent_type=data.agent_type,
            capabilities=data.capabilities,
            can_delegate_to=data.can_delegate_to,
            memory_access=data.memory_access,
            reports_to=data.reports_to,
            owner_principal_id=data.owner_principal_id,
        )
        agent, is_new = await anyio.to_thread.run_sync(
            lambda: agents(ctx).register(
                principal.context(data.caused_by), fields, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        return created(agent_out(agent), f"/api/v1/agents/{agent.id}", agent.version, created_now=is_new)

    @get("", operation_id="listAgents")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        agent_type: FromQuery[str | None] = None,  # no bounds: an empty or unknown type matches nothing
        status: FromQuery[AgentStatus | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
        active_only: FromQuery[bool] = False,
    ) -> AgentPage:
        """Registered agents, oldest first, from the ``coordination`` read model; ``active_only``
        leaves out offline ones."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_agents(
                conn,
                principal.tenant_id,
                agent_type=agent_type,
                status=status,
                trajectory_id=trajectory_id,
                active_only=active_only,
                limit=limit,
                offset=offset,
            )
        return AgentPage(agents=[from_row(r, AgentOut) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{agent_id:uuid}", operation_id="getAgent")
    async def get_one(
        self, agent_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[AgentOut]:
        """An agent from the event store (no lag): status, last heartbeat, what it works on."""
        agent = await anyio.to_thread.run_sync(lambda: agents(ctx).get(principal.tenant_id, agent_id))
        return with_etag(agent_out(agent), agent.version)

    @patch("/{agent_id:uuid}", operation_id="updateAgent", opt={"scope": "write"})
    async def update(
        self,
        agent_id: FromPath[UUID],
        data: JSONBody[AgentUpdate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[AgentOut]:
        """Change capabilities, memory access, current trajectory or scope, or status (409 once
        unregistered)."""
        change = AgentChange(
            capabilities=data.capabilities,
            memory_access=data.memory_access,
            current_trajectory_id=data.current_trajectory_id,
            current_scope_id=data.current_scope_id,
            status=data.status,
        )
        version = expected_version(if_match)
        agent = await anyio.to_thread.run_sync(
            lambda: agents(ctx).update(principal.context(data.caused_by), agent_id, change, expected_version=version)
        )
        return with_etag(agent_out(agent), agent.version)

    @post("/{agent_id:uuid}/heartbeat", operation_id="agentHeartbeat", opt={"scope": "write"}, status_code=200)
    async def heartbeat(
        self, agent_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[AgentOut]:
        """The agent is alive: its liveness deadline moves on, and an offline agent comes back ``idle``."""
        agent = await anyio.to_thread.run_sync(lambda: agents(ctx).heartbeat(principal.context(), agent_id))
        return with_etag(agent_out(agent), agent.version)

    @delete("/{agent_id:uuid}", operation_id="unregisterAgent", opt={"scope": "write"}, status_code=204)
    async def unregister(
        self,
        agent_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Unregister: appends a tombstone and revokes the agent's locks; the history stays."""
        version = expected_version(if_match)
        await anyio.to_thread.run_sync(
            lambda: agents(ctx).unregister(principal.context(), agent_id, expected_version=version)
        )
