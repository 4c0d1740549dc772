"""/api/v1/scopes: partitions of a trajectory's context window, with token budgets and
checkpoints (CELLSTATE reference). Also ``/api/v1/trajectories/{id}/scopes``: the list lives with
the resource it lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import Causes, created, edit_session_item, rows_page, session_item, sessions, with_etag
from api.workflows import IdempotencyKey, IfMatch, expected_version
from commands.memory_sessions import ScopeInput
from domain.scope import ContextState, Scope, TokenBudget
from domain.trajectory import Description, Metadata, Name, Trajectory
from projections.memory_sessions import list_scopes


class ScopeCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    trajectory_id: UUID
    name: Name
    token_budget: TokenBudget
    parent_scope_id: UUID | None = None
    purpose: Description | None = None
    metadata: Metadata | None = None
    caused_by: Causes = []


class ScopePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Null or absent: unchanged (the CELLSTATE reference's "if changing")."""

    name: Name | None = None
    purpose: Description | None = None
    token_budget: TokenBudget | None = None
    metadata: Metadata | None = None
    caused_by: Causes = []


class CheckpointCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    context_state: ContextState  # base64 in JSON (the CELLSTATE reference's ``string <byte>``)
    recoverable: bool
    caused_by: Causes = []


class CheckpointOut(msgspec.Struct, kw_only=True):
    context_state: bytes
    recoverable: bool
    event_id: UUID
    created_at: datetime


class ScopeOut(msgspec.Struct, kw_only=True):
    scope_id: UUID
    tenant_id: str
    trajectory_id: UUID
    parent_scope_id: UUID | None
    name: str
    purpose: str | None
    token_budget: int
    tokens_used: int
    turn_count: int
    is_active: bool
    checkpoint: CheckpointOut | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        me = f"/api/v1/scopes/{self.scope_id}"
        self.links = {"self": me, "turns": f"{me}/turns", "trajectory": f"/api/v1/trajectories/{self.trajectory_id}"}
        if self.parent_scope_id:
            self.links["parent"] = f"/api/v1/scopes/{self.parent_scope_id}"


def scope_out(s: Scope) -> ScopeOut:
    cp = s.checkpoint
    return ScopeOut(
        scope_id=s.id,
        tenant_id=s.tenant_id,
        trajectory_id=s.trajectory_id,
        parent_scope_id=s.parent_scope_id,
        name=s.name,
        purpose=s.purpose,
        token_budget=s.token_budget,
        tokens_used=s.tokens_used,
        turn_count=s.turn_count,
        is_active=s.is_active,
        checkpoint=CheckpointOut(**msgspec.structs.asdict(cp)) if cp else None,
        metadata=s.metadata,
        created_at=s.created_on,
        updated_at=s.modified_on,
        closed_at=s.closed_at,
        version=s.version,
        last_event_id=s.last_event_id,
    )


class ScopeController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @post("/scopes", operation_id="createScope", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[ScopeCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[ScopeOut]:
        """Open a scope in a trajectory, optionally nested in ``parent_scope_id`` (same trajectory, open).
        Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = ScopeInput(
            data.trajectory_id, data.name, data.token_budget, data.parent_scope_id, data.purpose, data.metadata
        )
        scope, is_new = await anyio.to_thread.run_sync(
            lambda: sessions(ctx).open_scope(
                principal.context(data.caused_by), fields, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(scope.correlation_id)
        return created(scope_out(scope), f"/api/v1/scopes/{scope.id}", scope.version, created_now=is_new)

    @get("/scopes", operation_id="listScopes")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        trajectory_id: FromQuery[UUID | None] = None,
        parent_scope_id: FromQuery[UUID | None] = None,
        is_active: FromQuery[bool | None] = None,
    ) -> Page[ScopeOut]:
        """Live scopes, oldest first, from the ``memory_sessions`` read model."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_scopes(
                conn,
                principal.tenant_id,
                trajectory_id=trajectory_id,
                parent_scope_id=parent_scope_id,
                is_active=is_active,
                limit=limit,
                offset=offset,
            )
        return rows_page(rows, total, ScopeOut, limit, offset)

    @get("/trajectories/{trajectory_id:uuid}/scopes", operation_id="listTrajectoryScopes")
    async def of_trajectory(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ScopeOut]:
        """The scopes opened in a trajectory, oldest first (404 for an unknown or deleted one)."""
        await session_item(ctx, principal, Trajectory, trajectory_id)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_scopes(
                conn, principal.tenant_id, trajectory_id=trajectory_id, limit=limit, offset=offset
            )
        return rows_page(rows, total, ScopeOut, limit, offset)

    @get("/scopes/{scope_id:uuid}", operation_id="getScope")
    async def get_one(
        self, scope_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[ScopeOut]:
        """A scope from the event store (no lag): budget, tokens used, latest checkpoint."""
        scope = await session_item(ctx, principal, Scope, scope_id)
        bind_correlation(scope.correlation_id)
        return with_etag(scope_out(scope), scope.version)

    @patch("/scopes/{scope_id:uuid}", operation_id="updateScope", opt={"scope": "write"})
    async def update(
        self,
        scope_id: FromPath[UUID],
        data: JSONBody[ScopePatch],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ScopeOut]:
        """Change name, purpose, budget or metadata (409 for a budget below the tokens used)."""
        scope = await edit_session_item(
            ctx,
            principal,
            Scope,
            scope_id,
            lambda s, c: s.update(
                c, name=data.name, purpose=data.purpose, token_budget=data.token_budget, metadata=data.metadata
            ),
            data.caused_by,
            expected_version(if_match),
        )
        return with_etag(scope_out(scope), scope.version)

    @post("/scopes/{scope_id:uuid}/checkpoint", operation_id="checkpointScope", opt={"scope": "write"}, status_code=201)
    async def checkpoint(
        self,
        scope_id: FromPath[UUID],
        data: JSONBody[CheckpointCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[CheckpointOut]:
        """Record the scope's serialised context state (409 once closed); the scope shows the latest."""
        scope = await edit_session_item(
            ctx,
            principal,
            Scope,
            scope_id,
            lambda s, c: s.take_checkpoint(c, context_state=data.context_state, recoverable=data.recoverable),
            data.caused_by,
        )
        assert scope.checkpoint is not None
        body = CheckpointOut(**msgspec.structs.asdict(scope.checkpoint))
        return Response(body, status_code=201, headers={"Location": f"/api/v1/scopes/{scope.id}"})

    @post("/scopes/{scope_id:uuid}/close", operation_id="closeScope", opt={"scope": "write"}, status_code=200)
    async def close(
        self, scope_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[ScopeOut]:
        """Close the scope: it takes no more turns or checkpoints (409 if already closed)."""
        scope = await edit_session_item(ctx, principal, Scope, scope_id, lambda s, c: s.close(c), [])
        return with_etag(scope_out(scope), scope.version)

    @delete("/scopes/{scope_id:uuid}", operation_id="deleteScope", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        scope_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone; the history stays in the event DAG."""
        await edit_session_item(
            ctx, principal, Scope, scope_id, lambda s, c: s.delete(c), [], expected_version(if_match)
        )
