"""/api/v1/summarization-policies and /api/v1/summarization-requests (CELLSTATE reference).

A policy says when memory is to be condensed and how; a request is one summary to be
written, recorded when a trigger fires and done by a worker of the policy's agent type
(Quipu calls no model; ``commands.summarization``). Also
``/api/v1/trajectories/{id}/summarization-policies``: the list lives with the resource it lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset
from api.resource_helpers import Causes, from_row, session_item, with_etag
from domain.note import AbstractionLevel
from domain.summarization_policy import (
    DEFAULT_AGENT_TYPE,
    AgentType,
    MaxSources,
    PolicyDraft,
    PolicyName,
    SummarizationPolicy,
)
from domain.summarization_request import RequestStatus, SourceRef, SummarizationRequest
from domain.trajectory import Trajectory
from projections.summarization import list_policies, list_requests

# A trigger in the reference's spelling: "manual", or {"turn_count": {"count": 10}} (domain.summarization_triggers).
TriggerIn = str | dict[str, Any]


class PolicyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: PolicyName
    source_level: AbstractionLevel
    target_level: AbstractionLevel
    max_sources: MaxSources
    create_edges: bool
    triggers: Annotated[list[TriggerIn], msgspec.Meta(max_length=20)]
    trajectory_id: UUID | None = None
    metadata: Any = None
    agent_type: AgentType = DEFAULT_AGENT_TYPE  # the workers that write its summaries
    caused_by: Causes = []


class ManualRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sources of a summary asked for by hand: a scope's newest turns, and/or named notes."""

    scope_id: UUID | None = None
    source_note_ids: Annotated[list[UUID], msgspec.Meta(max_length=100)] = []
    caused_by: Causes = []


class StatusChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: RequestStatus


class PolicyOut(msgspec.Struct, kw_only=True):
    summarization_policy_id: UUID
    tenant_id: str
    trajectory_id: UUID | None
    name: str
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    triggers: list[Any]
    metadata: Any
    agent_type: str
    created_at: datetime
    version: int
    last_event_id: UUID | None


class RequestOut(msgspec.Struct, kw_only=True):
    summarization_request_id: UUID
    summarization_policy_id: UUID
    tenant_id: str
    trajectory_id: UUID | None
    scope_id: UUID | None
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    agent_type: str
    trigger: Any
    sources: list[SourceRef]
    metadata: Any
    requested_by: UUID | None
    status: str
    requested_at: datetime
    completed_at: datetime | None
    note_id: UUID | None  # the summary, once a worker wrote it
    edge_ids: list[UUID]
    error: str | None
    version: int
    last_event_id: UUID | None


class PolicyPage(msgspec.Struct, kw_only=True):
    policies: list[PolicyOut]
    total: int
    limit: int
    offset: int


class RequestPage(msgspec.Struct, kw_only=True):
    requests: list[RequestOut]
    total: int
    limit: int
    offset: int


def policy_out(p: SummarizationPolicy) -> PolicyOut:
    return PolicyOut(
        summarization_policy_id=p.id,
        tenant_id=p.tenant_id,
        trajectory_id=p.trajectory_id,
        name=p.name,
        source_level=p.source_level,
        target_level=p.target_level,
        max_sources=p.max_sources,
        create_edges=p.create_edges,
        triggers=[t.wire() for t in p.triggers],
        metadata=p.metadata,
        agent_type=p.agent_type,
        created_at=p.created_on,
        version=p.version,
        last_event_id=p.last_event_id,
    )


def request_out(r: SummarizationRequest) -> RequestOut:
    return RequestOut(
        summarization_request_id=r.id,
        summarization_policy_id=r.summarization_policy_id,
        tenant_id=r.tenant_id,
        trajectory_id=r.trajectory_id,
        scope_id=r.scope_id,
        source_level=r.source_level,
        target_level=r.target_level,
        max_sources=r.max_sources,
        create_edges=r.create_edges,
        agent_type=r.agent_type,
        trigger=r.trigger,
        sources=r.sources,
        metadata=r.metadata,
        requested_by=r.requested_by,
        status=r.status,
        requested_at=r.requested_at,
        completed_at=r.completed_at,
        note_id=r.note_id,
        edge_ids=r.edge_ids,
        error=r.error,
        version=r.version,
        last_event_id=r.last_event_id,
    )


class SummarizationPolicyController(Controller):
    path = "/api/v1"
    tags = ["summarization"]

    @post("/summarization-policies", operation_id="createSummarizationPolicy", opt={"scope": "write"}, status_code=201)
    async def create(
        self, data: JSONBody[PolicyCreate], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[PolicyOut]:
        """Create a policy for one trajectory (or, without ``trajectory_id``, every trajectory of
        the tenant). Triggers are spelled as the reference spells them: ``"manual"``,
        ``"scope_close"``, ``{"dosage_threshold": {"percent": 80}}``, ``{"token_threshold":
        {"tokens": 4000}}``, ``{"turn_count": {"count": 10}}``, ``{"note_count": {"count": 5}}``;
        422 `invalid_trigger` for any other, `range` for a parameter out of its bounds."""
        draft = PolicyDraft(
            name=data.name,
            source_level=data.source_level,
            target_level=data.target_level,
            max_sources=data.max_sources,
            create_edges=data.create_edges,
            triggers=data.triggers,
            trajectory_id=data.trajectory_id,
            metadata=data.metadata,
            agent_type=data.agent_type,
        )
        policy = await anyio.to_thread.run_sync(
            lambda: ctx.summarization.create_policy(principal.context(data.caused_by), draft)
        )
        location = f"/api/v1/summarization-policies/{policy.id}"
        return Response(policy_out(policy), status_code=201, headers={"Location": location})

    @get("/summarization-policies/{policy_id:uuid}", operation_id="getSummarizationPolicy")
    async def get_one(
        self, policy_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[PolicyOut]:
        """A policy from the event store (no lag); deleted or another tenant's -> 404."""
        policy = await anyio.to_thread.run_sync(lambda: ctx.summarization.get_policy(principal.tenant_id, policy_id))
        return with_etag(policy_out(policy), policy.version)

    @delete(
        "/summarization-policies/{policy_id:uuid}",
        operation_id="deleteSummarizationPolicy",
        opt={"scope": "write"},
        status_code=204,
    )
    async def remove(
        self, policy_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> None:
        """Delete a policy: it fires no more; its requests and the history stay."""
        await anyio.to_thread.run_sync(lambda: ctx.summarization.delete_policy(principal.context(), policy_id))

    @get(
        "/trajectories/{trajectory_id:uuid}/summarization-policies", operation_id="listTrajectorySummarizationPolicies"
    )
    async def of_trajectory(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PolicyPage:
        """The live policies of a trajectory, oldest first (404 for an unknown or deleted one)."""
        await session_item(ctx, principal, Trajectory, trajectory_id)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_policies(
                conn, principal.tenant_id, trajectory_id=trajectory_id, limit=limit, offset=offset
            )
        return PolicyPage(policies=[from_row(r, PolicyOut) for r in rows], total=total, limit=limit, offset=offset)

    @post(
        "/summarization-policies/{policy_id:uuid}/requests",
        operation_id="requestSummarization",
        opt={"scope": "write"},
        status_code=201,
    )
    async def request_now(
        self,
        policy_id: FromPath[UUID],
        data: JSONBody[ManualRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[RequestOut]:
        """Ask for a summary now, under a policy with a ``manual`` trigger (409 otherwise): of a
        scope's newest turns and/or the named notes. A worker takes it like any other request.
        422 `scope` for a scope the policy does not apply to, `not_found` for a missing note."""
        request = await anyio.to_thread.run_sync(
            lambda: ctx.summarization.request_now(
                principal.context(data.caused_by),
                policy_id,
                scope_id=data.scope_id,
                source_note_ids=data.source_note_ids,
                requested_by=principal.key_id,
            )
        )
        location = f"/api/v1/summarization-requests/{request.id}"
        return Response(request_out(request), status_code=201, headers={"Location": location})


class SummarizationRequestController(Controller):
    path = "/api/v1/summarization-requests"
    tags = ["summarization"]

    @get("/", operation_id="listSummarizationRequests")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[RequestStatus | None] = None,
        scope_id: FromQuery[UUID | None] = None,
        summarization_policy_id: FromQuery[UUID | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
    ) -> RequestPage:
        """Requests, newest first, filtered by status, scope, policy or trajectory, from the
        ``summarization`` read model."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_requests(
                conn,
                principal.tenant_id,
                status=status,
                scope_id=scope_id,
                summarization_policy_id=summarization_policy_id,
                trajectory_id=trajectory_id,
                limit=limit,
                offset=offset,
            )
        return RequestPage(requests=[from_row(r, RequestOut) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{request_id:uuid}", operation_id="getSummarizationRequest")
    async def get_one(
        self, request_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[RequestOut]:
        """A request from the event store (no lag): its status, sources and, once written, its note."""
        request = await anyio.to_thread.run_sync(lambda: ctx.summarization.get_request(principal.tenant_id, request_id))
        return with_etag(request_out(request), request.version)

    @patch("/{request_id:uuid}/status", operation_id="updateSummarizationRequestStatus", opt={"scope": "write"})
    async def set_status(
        self,
        request_id: FromPath[UUID],
        data: JSONBody[StatusChange],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[RequestOut]:
        """Move a request along pending -> in_progress -> completed or failed (a pending one
        may fail directly); 409 for any other change, the same status again included."""
        request = await anyio.to_thread.run_sync(
            lambda: ctx.summarization.change_status(principal.context(), request_id, data.status)
        )
        return with_etag(request_out(request), request.version)
