"""/api/v1/tenants: the tenants a key may see (CELLSTATE reference), and the caller's own.

A key sees its own tenant only: the list holds that one tenant and any other id is 404, as
an unknown one is (the reference's rule). A key with the ``operator`` scope sees every tenant
the log knows - those known only from their API keys included - and may change any of
them, which is how a suspended tenant is reactivated (its own keys are refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset
from api.resource_helpers import with_etag
from domain.tenant import Settings, Tenant, TenantDomain, TenantName, TenantStatus
from projections.tenants import list_tenants

TenantId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Null or absent: unchanged."""

    name: TenantName | None = None
    settings: Settings | None = None
    domain: TenantDomain | None = None
    status: TenantStatus | None = None


class TenantOut(msgspec.Struct, kw_only=True):
    tenant_id: str
    name: str
    settings: dict[str, Any]
    domain: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    version: int  # 0: known from its keys only, no event of its own yet
    last_event_id: UUID | None


class TenantPage(msgspec.Struct, kw_only=True):
    tenants: list[TenantOut]
    total: int
    limit: int
    offset: int


class CurrentTenantOut(msgspec.Struct):
    id: str
    scopes: list[str]


def tenant_out(t: Tenant) -> TenantOut:
    return TenantOut(
        tenant_id=t.tenant_id,
        name=t.name,
        settings=t.settings,
        domain=t.domain,
        status=t.status,
        created_at=t.created_on,
        updated_at=t.modified_on,
        version=t.version,
        last_event_id=t.last_event_id,
    )


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]

    @get("/current", operation_id="getCurrentTenant")
    async def current(self, principal: NamedDependency[Principal]) -> CurrentTenantOut:
        """The tenant the presented key belongs to, and the key's scopes."""
        return CurrentTenantOut(principal.tenant_id, list(principal.scopes))

    @get("/", operation_id="listTenants")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[TenantStatus | None] = None,
    ) -> TenantPage:
        """The tenants this key may see: its own, or (``operator`` scope) every tenant the log
        knows, by id, from the ``tenants`` read model."""
        if principal.operator:
            async with ctx.read_models.connection() as conn:
                rows, total = await list_tenants(conn, status=status, limit=limit, offset=offset)
            items = [msgspec.convert(dict(r), TenantOut) for r in rows]
            return TenantPage(tenants=items, total=total, limit=limit, offset=offset)
        own = await anyio.to_thread.run_sync(lambda: ctx.tenants.get(principal.tenant_id, principal.tenant_id))
        mine = [tenant_out(own)] if status is None or own.status == status else []
        return TenantPage(tenants=mine[offset : offset + limit], total=len(mine), limit=limit, offset=offset)

    @get("/{tenant_id:str}", operation_id="getTenant")
    async def get_one(
        self, tenant_id: FromPath[TenantId], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[TenantOut]:
        """A tenant from the event store (no lag): its own tenant for any key, any tenant for
        an operator key; 404 otherwise, as for an unknown id."""
        tenant = await anyio.to_thread.run_sync(
            lambda: ctx.tenants.get(principal.tenant_id, tenant_id, operator=principal.operator)
        )
        return with_etag(tenant_out(tenant), tenant.version)

    @patch("/{tenant_id:str}", operation_id="updateTenant", opt={"scope": "admin"})
    async def update(
        self,
        tenant_id: FromPath[TenantId],
        data: JSONBody[TenantPatch],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[TenantOut]:
        """Change name, settings, domain or status (active, suspended, archived). A suspended
        tenant's keys are refused (403) until an operator key sets it active again; archived
        is final (409 for any change after it, and for a status it already has)."""
        tenant = await anyio.to_thread.run_sync(
            lambda: ctx.tenants.update(
                principal.context(),
                tenant_id,
                operator=principal.operator,
                name=data.name,
                settings=data.settings,
                domain=data.domain,
                status=data.status,
            )
        )
        return with_etag(tenant_out(tenant), tenant.version)
