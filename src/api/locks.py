"""/api/v1/locks: distributed locks on memory resources, with fencing tokens (CELLSTATE
reference, plus what correctness needs).

Every grant carries a ``fencing_token`` that strictly increases per resource: whoever an
agent writes to under a lock can refuse a token lower than one it has seen, so a holder
that paused past its expiry cannot do harm. Only the holder extends or releases, and only
while it holds; anything else is 409 (a state conflict: the grant is over, or the caller
is not its holder). Acquiring a taken resource is 409 too, naming the current holders and
their expiry; ``wait_ms`` waits for the resource instead. An expired grant is recorded by
a durable timer, and the grants of an agent that goes offline are revoked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset
from api.problems import PROBLEM_JSON, TITLES
from api.resource_helpers import Causes, from_row
from commands.locks import MAX_WAIT_MS, AcquireInput, LockService
from domain.lock import Grant, LeaseMs, Lock, LockTaken, ResourceType, parse_mode
from projections.coordination import list_locks

# The reference's spelling and lower case are both accepted; answers use the reference's.
ModeIn = Literal["Exclusive", "Shared", "exclusive", "shared"]
WaitMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_WAIT_MS)]


class LockAcquire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    holder_agent_id: UUID
    mode: ModeIn
    resource_id: UUID
    resource_type: ResourceType
    timeout_ms: LeaseMs
    wait_ms: WaitMs = 0  # wait this long for a taken resource instead of answering 409
    caused_by: Causes = []


class LockExtend(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    additional_ms: LeaseMs
    holder_agent_id: UUID | None = None  # when given, must be the holder (409 otherwise)
    caused_by: Causes = []


class LockRelease(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    releasing_agent_id: UUID  # must be the holder (409 otherwise)
    caused_by: Causes = []


class LockOut(msgspec.Struct, kw_only=True):
    lock_id: UUID
    tenant_id: str
    resource_type: str
    resource_id: UUID
    holder_agent_id: UUID
    mode: str
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime
    last_event_id: UUID | None
    released_at: datetime | None = None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {"self": f"/api/v1/locks/{self.lock_id}", "holder": f"/api/v1/agents/{self.holder_agent_id}"}


class LockPage(msgspec.Struct, kw_only=True):
    """The reference's ``{"locks": [...], "total": n}``, with the page's limit and offset."""

    locks: list[LockOut]
    total: int
    limit: int
    offset: int


class LockTakenProblem(msgspec.Struct, kw_only=True):
    """A 409 problem (RFC 7807) with the grants that hold the resource as an extension member."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    trace_id: str
    holders: list[LockOut]


def lock_out(lock: Lock, grant: Grant, *, released_at: datetime | None = None) -> LockOut:
    return LockOut(
        lock_id=grant.lock_id,
        tenant_id=lock.tenant_id,
        resource_type=lock.resource_type,
        resource_id=lock.resource_id,
        holder_agent_id=grant.holder_agent_id,
        mode=grant.mode,
        fencing_token=grant.fencing_token,
        acquired_at=grant.acquired_at,
        expires_at=grant.expires_at,
        last_event_id=lock.last_event_id,
        released_at=released_at,
    )


def locks(ctx: ApiContext) -> LockService:
    assert ctx.locks is not None, "the composition root sets the lock service"
    return ctx.locks


def taken(request: Request[Any, Any, Any], error: LockTaken, tenant_id: str, data: LockAcquire) -> Response[Any]:
    holders = [
        LockOut(
            lock_id=g.lock_id,
            tenant_id=tenant_id,
            resource_type=data.resource_type,
            resource_id=data.resource_id,
            holder_agent_id=g.holder_agent_id,
            mode=g.mode,
            fencing_token=g.fencing_token,
            acquired_at=g.acquired_at,
            expires_at=g.expires_at,
            last_event_id=g.lock_id,
        )
        for g in error.holders
    ]
    trace_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
    body = LockTakenProblem(
        type="https://quipu.dev/problems/lock-taken",
        title=TITLES[409],
        status=409,
        detail=str(error),
        instance=request.url.path,
        trace_id=str(trace_id),
        holders=holders,
    )
    return Response(body, status_code=409, media_type=PROBLEM_JSON)


class LockController(Controller):
    path = "/api/v1/locks"
    tags = ["locks"]

    @get("", operation_id="listLocks")
    async def list_active(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        holder_agent_id: FromQuery[UUID | None] = None,
        resource_type: FromQuery[ResourceType | None] = None,
        resource_id: FromQuery[UUID | None] = None,
    ) -> LockPage:
        """Grants that hold now, oldest first, from the ``coordination`` read model."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_locks(
                conn,
                principal.tenant_id,
                datetime.now(UTC),
                holder_agent_id=holder_agent_id,
                resource_type=resource_type,
                resource_id=resource_id,
                limit=limit,
                offset=offset,
            )
        return LockPage(locks=[from_row(r, LockOut) for r in rows], total=total, limit=limit, offset=offset)

    @post("/acquire", operation_id="acquireLock", opt={"scope": "write"}, status_code=201)
    async def acquire(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LockAcquire],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[LockOut]:
        """Acquire a lock for a live registered agent: ``Exclusive`` excludes every other holder,
        ``Shared`` only exclusive ones. 409 names the current holders and their expiry unless
        ``wait_ms`` waits for the resource to free up."""
        fields = AcquireInput(
            holder_agent_id=data.holder_agent_id,
            resource_type=data.resource_type,
            resource_id=data.resource_id,
            mode=parse_mode(data.mode),
            timeout_ms=data.timeout_ms,
            wait_ms=data.wait_ms,
        )
        try:
            lock, grant = await anyio.to_thread.run_sync(
                lambda: locks(ctx).acquire(principal.context(data.caused_by), fields)
            )
        except LockTaken as error:
            return taken(request, error, principal.tenant_id, data)
        return Response(lock_out(lock, grant), status_code=201, headers={"Location": f"/api/v1/locks/{grant.lock_id}"})

    @get("/{lock_id:uuid}", operation_id="getLock")
    async def get_one(
        self, lock_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> LockOut:
        """A grant that still holds, from the event store (no lag); 404 once it is over."""
        lock, grant = await anyio.to_thread.run_sync(lambda: locks(ctx).get(principal.tenant_id, lock_id))
        return lock_out(lock, grant)

    @post("/{lock_id:uuid}/extend", operation_id="extendLock", opt={"scope": "write"}, status_code=200)
    async def extend(
        self,
        lock_id: FromPath[UUID],
        data: JSONBody[LockExtend],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> LockOut:
        """Push the grant's expiry by ``additional_ms`` (409 once it is over or for another agent);
        the fencing token stays."""
        lock, grant = await anyio.to_thread.run_sync(
            lambda: locks(ctx).extend(
                principal.context(data.caused_by),
                lock_id,
                additional_ms=data.additional_ms,
                agent_id=data.holder_agent_id,
            )
        )
        return lock_out(lock, grant)

    @post("/{lock_id:uuid}/release", operation_id="releaseLock", opt={"scope": "write"}, status_code=200)
    async def release(
        self,
        lock_id: FromPath[UUID],
        data: JSONBody[LockRelease],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> LockOut:
        """Release the grant: only its holder, only while it holds (409 otherwise)."""
        lock, grant = await anyio.to_thread.run_sync(
            lambda: locks(ctx).release(
                principal.context(data.caused_by), lock_id, releasing_agent_id=data.releasing_agent_id
            )
        )
        return lock_out(lock, grant, released_at=lock.clock)
