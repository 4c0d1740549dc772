"""/api/v1/agent-types: the agent types the tenant's work names (Agent Studio's agent-type list)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from projections.agent_types import list_agent_types


class AgentTypeOut(msgspec.Struct):
    agent_type: str
    configured: bool  # in the registry Quipu was started with (QUIPU_AGENT_TYPES)
    workflows: int  # live workflows with a node of this type
    agents: int  # registered agents of this type
    online_agents: int  # of those, the ones not offline
    tasks_scheduled: int  # task attempts handed to workers of this type
    last_scheduled_at: datetime | None


class AgentTypeController(Controller):
    path = "/api/v1/agent-types"
    tags = ["agent-types"]

    @get("/", operation_id="listAgentTypes")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[AgentTypeOut]:
        """Every agent type named by the configured registry, a live workflow's node, a
        registered agent or a scheduled task, sorted by name, with how often each names it.
        Agent Studio's list of type names is ``[t.agent_type for t in items]``."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_agent_types(
                conn, principal.tenant_id, configured=ctx.workflows.agent_types, limit=limit, offset=offset
            )
        items = [
            AgentTypeOut(
                r.agent_type,
                r.configured,
                r.workflows,
                r.agents,
                r.online_agents,
                r.tasks_scheduled,
                r.last_scheduled_at,
            )
            for r in rows
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)
