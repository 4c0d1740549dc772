"""/api/v1/handoffs: an agent hands its trajectory, with a context snapshot, to another
(CELLSTATE reference): create, get, accept, complete. Any transition the state machine does
not allow answers 409."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.resource_helpers import Causes, created, with_etag
from api.workflows import IdempotencyKey
from commands.handoffs import HandoffInput, HandoffService
from domain.handoff import ContextSnapshot, Handoff, Reason


class HandoffCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    from_agent_id: UUID
    to_agent_id: UUID
    trajectory_id: UUID
    scope_id: UUID
    reason: Reason
    context_snapshot: ContextSnapshot  # base64 in JSON (the CELLSTATE reference's ``string <byte>``)
    caused_by: Causes = []


class HandoffAccept(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    accepting_agent_id: UUID
    caused_by: Causes = []


class HandoffOut(msgspec.Struct, kw_only=True):
    handoff_id: UUID
    tenant_id: str
    from_agent_id: UUID
    to_agent_id: UUID
    trajectory_id: UUID
    scope_id: UUID
    reason: str
    context_snapshot: bytes
    status: str
    created_at: datetime
    accepted_at: datetime | None
    completed_at: datetime | None
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {
            "self": f"/api/v1/handoffs/{self.handoff_id}",
            "from_agent": f"/api/v1/agents/{self.from_agent_id}",
            "to_agent": f"/api/v1/agents/{self.to_agent_id}",
            "trajectory": f"/api/v1/trajectories/{self.trajectory_id}",
        }


def handoff_out(h: Handoff) -> HandoffOut:
    return HandoffOut(
        handoff_id=h.id,
        tenant_id=h.tenant_id,
        from_agent_id=h.from_agent_id,
        to_agent_id=h.to_agent_id,
        trajectory_id=h.trajectory_id,
        scope_id=h.scope_id,
        reason=h.reason,
        context_snapshot=h.context_snapshot,
        status=h.status,
        created_at=h.created_on,
        accepted_at=h.accepted_at,
        completed_at=h.completed_at,
        version=h.version,
        last_event_id=h.last_event_id,
    )


def service(ctx: ApiContext) -> HandoffService:
    """Stateless over the event store: building one per request is free."""
    return HandoffService(ctx.store)


def answer(handoff: Handoff) -> Response[HandoffOut]:
    bind_correlation(handoff.correlation_id)
    return with_etag(handoff_out(handoff), handoff.version)


class HandoffController(Controller):
    path = "/api/v1/handoffs"
    tags = ["handoffs"]

    @post("/", operation_id="createHandoff", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[HandoffCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[HandoffOut]:
        """Hand a trajectory and a snapshot of its context to another agent (initiated). The
        sender's ``can_delegate_to`` must name the receiver's type (409). Safe to retry with
        ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "caused_by"}
        handoff, is_new = await anyio.to_thread.run_sync(
            lambda: service(ctx).create(
                principal.context(data.caused_by), HandoffInput(**fields), idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(handoff.correlation_id)
        return created(handoff_out(handoff), f"/api/v1/handoffs/{handoff.id}", handoff.version, created_now=is_new)

    @get("/{handoff_id:uuid}", operation_id="getHandoff")
    async def get_one(
        self, handoff_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[HandoffOut]:
        """A handoff from the event store (no lag), with its status and context snapshot."""
        handoff = await anyio.to_thread.run_sync(lambda: service(ctx).get(principal.tenant_id, handoff_id))
        return answer(handoff)

    @post("/{handoff_id:uuid}/accept", operation_id="acceptHandoff", opt={"scope": "write"}, status_code=200)
    async def accept(
        self,
        handoff_id: FromPath[UUID],
        data: JSONBody[HandoffAccept],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[HandoffOut]:
        """The receiving agent accepts an initiated handoff (409 otherwise)."""
        handoff = await anyio.to_thread.run_sync(
            lambda: service(ctx).accept(principal.context(data.caused_by), handoff_id, data.accepting_agent_id)
        )
        return answer(handoff)

    @post("/{handoff_id:uuid}/complete", operation_id="completeHandoff", opt={"scope": "write"}, status_code=200)
    async def complete(
        self, handoff_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[HandoffOut]:
        """Complete an accepted handoff (409 otherwise)."""
        handoff = await anyio.to_thread.run_sync(lambda: service(ctx).complete(principal.context(), handoff_id))
        return answer(handoff)
