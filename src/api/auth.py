"""Bearer API keys. The key's tenant scopes every query; its scopes gate each route.

A route declares the scope it needs with ``opt={"scope": "write"}`` (``read`` if absent), and
that it needs a key at all by taking a ``principal``. The key is checked by a guard, which
Litestar runs before it reads any parameter or the body: a call without a valid key is a 401
whatever else is wrong with it (a missing query parameter, a malformed body), so a client
learns first that it is not authenticated, and nothing of the request is parsed for a stranger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio.to_thread
import structlog
from litestar import Request, WebSocket
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from api.context import ApiContext
from domain.access import Scope
from domain.aggregate import CommandContext


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: UUID
    scopes: tuple[str, ...]

    @property
    def operator(self) -> bool:
        """An operator key sees and changes every tenant, not only its own."""
        return "operator" in self.scopes

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"

    def context(self, caused_by: list[UUID] | None = None) -> CommandContext:
        return CommandContext(self.tenant_id, self.actor, tuple(caused_by or ()))


_PRINCIPAL = "principal"  # where the guard leaves it in the request's scope state


def authentication_guard(ctx: ApiContext) -> Guard:
    """The app-wide guard: on every HTTP route that takes a ``principal``, the bearer key is
    checked (401, 403) and its principal kept for ``provide_principal``."""

    async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if connection.scope["type"] != ScopeType.HTTP or _PRINCIPAL not in handler.parsed_fn_signature.parameters:
            return  # the probes and the docs need no key; the WebSocket checks its own (socket_principal)
        scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthorizedException("send 'Authorization: Bearer <api key>'")
        principal = await principal_for(ctx, secret.strip(), handler.opt.get("scope", "read"))
        connection.scope.setdefault("state", {})[_PRINCIPAL] = principal

    return authenticate


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal ``authentication_guard`` found for this request."""
    principal = request.scope.get("state", {}).get(_PRINCIPAL)
    if not isinstance(principal, Principal):  # a route the guard did not cover: refuse, never run unauthenticated
        raise NotAuthorizedException("send 'Authorization: Bearer <api key>'")
    return principal


async def socket_principal(socket: WebSocket[Any, Any, Any], ctx: ApiContext, needed: Scope | None = None) -> Principal:
    """The header as for HTTP, or ``?token=`` because browsers cannot set headers on a
    WebSocket. (A query token can end up in proxy logs: prefer the header where possible.)
    ``needed``: a scope a message needs beyond the route's own (checked again per message)."""
    scheme, _, secret = socket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        secret = socket.query_params.get("token", "")
    if not secret.strip():
        raise NotAuthorizedException("send 'Authorization: Bearer <api key>' or '?token=<api key>'")
    return await principal_for(ctx, secret.strip(), needed or socket.route_handler.opt.get("scope", "read"))


async def principal_for(ctx: ApiContext, secret: str, needed: Scope) -> Principal:
    """The principal of an API key, or 401 (unknown, revoked) / 403 (lacks ``needed``, or
    the key's tenant is suspended or archived)."""
    found, key = ctx.access.cached(secret)
    if not found:  # the event store is synchronous: only a cache miss goes to a thread
        key = await anyio.to_thread.run_sync(ctx.access.authenticate, secret)
    if key is None:
        raise NotAuthorizedException("the API key is unknown or revoked")
    if not key.allows(needed):
        raise PermissionDeniedException(f"this API key lacks the '{needed}' scope")
    status = ctx.access.tenants.cached_status(key.tenant_id)
    if status is None:
        status = await anyio.to_thread.run_sync(ctx.access.tenants.status, key.tenant_id)
    if status != "active":  # suspended or archived: the keys stay, and are refused
        raise PermissionDeniedException(f"tenant {key.tenant_id} is {status}; its API keys are refused")
    structlog.contextvars.bind_contextvars(tenant_id=key.tenant_id)
    return Principal(key.tenant_id, key.id, tuple(key.scopes))


def bind_correlation(correlation_id: UUID) -> None:
    """Every later log line of this request carries the correlation id."""
    structlog.contextvars.bind_contextvars(correlation_id=str(correlation_id))
