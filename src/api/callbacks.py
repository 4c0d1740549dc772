"""/api/v1/callbacks: the registry of outside services' HTTP endpoints (jsondagapi reference).

A workflow node names a ``callback_id`` instead of an ``agent_type``; when the node is
scheduled, Quipu POSTs the task to the registered URL, signed per Standard Webhooks with the
secret issued at registration (shown once, in the 201). The service answers through
``POST /executions/{id}/nodes/{node_id}/complete`` (or ``/fail``, or ``/decisions/{node_id}``)
with an API key of its tenant. See docs/decisions/0007-signed-callback-deliveries.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import rows_page
from commands.callbacks import CallbackService
from domain.callback import Callback, CallbackId, CallbackStatus, Environment, ServiceName
from projections.callbacks import list_attempts, list_callbacks, referencing_workflows

BaseUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=2000)]
CallbackPath = Annotated[str, msgspec.Meta(pattern=r"^/[^\s?#]*$", max_length=1000)]


class CallbackEndpoint(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: CallbackPath


class CallbackRegistrationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The seed's body: the service, its base URL and its callbacks by id, each a path under it."""

    service_name: ServiceName
    environment: Environment
    base_url: BaseUrl
    callbacks: Annotated[dict[CallbackId, CallbackEndpoint], msgspec.Meta(min_length=1, max_length=100)]


class CallbackRegistrationOut(msgspec.Struct, kw_only=True):
    service_name: str
    environment: str
    registered_callbacks: list[str]
    secret: str  # whsec_...: shown this once; deliveries are signed with it
    last_event_id: UUID | None


class CallbackOut(msgspec.Struct, kw_only=True):
    callback_id: str
    service_name: str
    environment: str
    url: str
    status: str
    registered_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None


class DeliveryAttemptOut(msgspec.Struct, kw_only=True):
    event_id: UUID  # the delivery.attempted event
    delivery_id: UUID  # the execution.node_scheduled event the delivery is for
    callback_id: str
    execution_id: UUID
    node_id: str
    node_attempt: int
    attempt: int
    url: str
    outcome: str  # delivered | failed
    status_code: int | None
    latency_ms: float
    error: str | None
    retry_at: datetime | None
    attempted_at: datetime
    delivery_status: str  # pending | delivered | dead | cancelled (the node was answered otherwise)


def _callbacks(ctx: ApiContext) -> CallbackService:
    assert ctx.callbacks is not None, "the composition root wires the callback registry"
    return ctx.callbacks


def callback_out(c: Callback) -> CallbackOut:
    return CallbackOut(
        callback_id=c.callback_id,
        service_name=c.service_name,
        environment=c.environment,
        url=c.url,
        status=c.status,
        registered_at=c.created_on,
        updated_at=c.modified_on,
        version=c.version,
        last_event_id=c.last_event_id,
    )


class CallbackController(Controller):
    path = "/api/v1/callbacks"
    tags = ["callbacks"]

    @post("/register", operation_id="registerCallbacks", opt={"scope": "write"}, status_code=201)
    async def register(
        self,
        data: JSONBody[CallbackRegistrationIn],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> CallbackRegistrationOut:
        """Register a service's callbacks (all or none). The answer carries the signing secret
        (``whsec_...``) this once: Quipu keeps only what derives it. Registering again from the
        same service and environment replaces the URLs and issues a new secret; 409 when an id
        is registered by another service or environment."""
        paths = {cid: endpoint.path for cid, endpoint in data.callbacks.items()}
        registration = await anyio.to_thread.run_sync(
            lambda: _callbacks(ctx).register(
                principal.context(),
                service_name=data.service_name,
                environment=data.environment,
                base_url=data.base_url,
                paths=paths,
            )
        )
        return CallbackRegistrationOut(
            service_name=data.service_name,
            environment=data.environment,
            registered_callbacks=[c.callback_id for c in registration.callbacks],
            secret=registration.secret,
            last_event_id=registration.callbacks[-1].last_event_id,
        )

    @get("", operation_id="listCallbacks")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[CallbackStatus | None] = None,
    ) -> Page[CallbackOut]:
        """The tenant's callbacks by id, with their URLs and status (ACTIVE, DEREGISTERED)."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_callbacks(conn, principal.tenant_id, status=status, limit=limit, offset=offset)
        return rows_page(rows, total, CallbackOut, limit, offset)

    @delete("/{callback_id:str}", operation_id="deregisterCallback", opt={"scope": "write"}, status_code=200)
    async def deregister(
        self, callback_id: FromPath[CallbackId], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[CallbackOut]:
        """Deregister a callback; 409 while a live (not deleted) workflow names it, or when it is
        not registered any more; 404 for an id never registered."""
        async with ctx.pool.connection() as conn:
            users = await referencing_workflows(conn, principal.tenant_id, callback_id)
        callback = await anyio.to_thread.run_sync(
            lambda: _callbacks(ctx).deregister(principal.context(), callback_id, users)
        )
        return Response(callback_out(callback))

    @get("/{callback_id:str}/deliveries", operation_id="listCallbackDeliveries")
    async def deliveries(
        self,
        callback_id: FromPath[CallbackId],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        execution_id: FromQuery[UUID | None] = None,
    ) -> Page[DeliveryAttemptOut]:
        """Every delivery attempt to this callback, oldest first: outcome, HTTP status, latency,
        error and the next retry; ``delivery_status`` is where its delivery stands now. 404 for
        an id never registered."""
        await anyio.to_thread.run_sync(lambda: _callbacks(ctx).get(principal.tenant_id, callback_id))
        async with ctx.read_models.connection() as conn:
            rows, total = await list_attempts(
                conn, principal.tenant_id, callback_id, execution_id=execution_id, limit=limit, offset=offset
            )
        return rows_page(rows, total, DeliveryAttemptOut, limit, offset)
