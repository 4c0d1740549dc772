"""Bearer API keys. The key's tenant scopes every query; its scopes gate each route.

A route declares the scope it needs with ``opt={"scope": "write"}`` (``read`` if absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio.to_thread
import structlog
from litestar import Request, WebSocket
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.context import ApiContext
from domain.access import Scope
from domain.aggregate import CommandContext


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: UUID
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"

    def context(self, caused_by: list[UUID] | None = None) -> CommandContext:
        return CommandContext(self.tenant_id, self.actor, tuple(caused_by or ()))


async def provide_principal(request: Request[Any, Any, Any], ctx: NamedDependency[ApiContext]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException("send 'Authorization: Bearer <api key>'")
    return await principal_for(ctx, secret.strip(), request.route_handler.opt.get("scope", "read"))


async def socket_principal(socket: WebSocket[Any, Any, Any], ctx: ApiContext) -> Principal:
    """The header as for HTTP, or ``?token=`` because browsers cannot set headers on a
    WebSocket. (A query token can end up in proxy logs: prefer the header where possible.)"""
    scheme, _, secret = socket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        secret = socket.query_params.get("token", "")
    if not secret.strip():
        raise NotAuthorizedException("send 'Authorization: Bearer <api key>' or '?token=<api key>'")
    return await principal_for(ctx, secret.strip(), socket.route_handler.opt.get("scope", "read"))


async def principal_for(ctx: ApiContext, secret: str, needed: Scope) -> Principal:
    """The principal of an API key, or 401 (unknown, revoked) / 403 (lacks ``needed``)."""
    found, key = ctx.access.cached(secret)
    if not found:  # the event store is synchronous: only a cache miss goes to a thread
        key = await anyio.to_thread.run_sync(ctx.access.authenticate, secret)
    if key is None:
        raise NotAuthorizedException("the API key is unknown or revoked")
    if not key.allows(needed):
        raise PermissionDeniedException(f"this API key lacks the '{needed}' scope")
    structlog.contextvars.bind_contextvars(tenant_id=key.tenant_id)
    return Principal(key.tenant_id, key.id, tuple(key.scopes))


def bind_correlation(correlation_id: UUID) -> None:
    """Every later log line of this request carries the correlation id."""
    structlog.contextvars.bind_contextvars(correlation_id=str(correlation_id))
