"""/api/v1/api-keys: credentials of the caller's tenant (its tenant itself: ``api.tenants``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from domain.access import ApiKey


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=5)] = msgspec.field(
        default_factory=lambda: ["read"]
    )


class ApiKeyOut(msgspec.Struct):
    id: UUID
    name: str
    scopes: list[str]
    prefix: str
    revoked: bool
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str  # shown once; only its hash is stored


def _out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(k.id, k.name, k.scopes, k.key_prefix, k.revoked, k.created_on)


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api-keys"]

    @post("/", operation_id="createApiKey", opt={"scope": "admin"}, status_code=201)
    async def create(
        self, data: JSONBody[ApiKeyCreate], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> ApiKeyCreated:
        """Issue a key for the caller's tenant. The secret is in this response only. Only an
        operator key issues ``operator`` keys (403), so no tenant admin can make itself one."""
        if "operator" in data.scopes and not principal.operator:
            raise PermissionDeniedException("only an operator key may issue an operator key")
        key, secret = await anyio.to_thread.run_sync(
            lambda: ctx.access.issue(principal.context(), name=data.name, scopes=data.scopes)
        )
        o = _out(key)
        return ApiKeyCreated(o.id, o.name, o.scopes, o.prefix, o.revoked, o.created_at, key=secret)

    @get("/", operation_id="listApiKeys", opt={"scope": "admin"})
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ApiKeyOut]:
        """Keys of the caller's tenant (never their secrets)."""
        keys = await anyio.to_thread.run_sync(ctx.access.list, principal.tenant_id)
        return Page(items=[_out(k) for k in keys[offset : offset + limit]], total=len(keys), limit=limit, offset=offset)

    @post("/{key_id:uuid}/revoke", operation_id="revokeApiKey", opt={"scope": "admin"}, status_code=200)
    async def revoke(
        self, key_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> ApiKeyOut:
        """Revoke a key; it stops working on every API process within a few seconds."""
        key = await anyio.to_thread.run_sync(lambda: ctx.access.revoke(principal.context(), key_id))
        return _out(key)
