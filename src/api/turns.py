"""/api/v1/turns: entries of a scope's conversation buffer (CELLSTATE reference). Also
``/api/v1/scopes/{id}/turns``: a scope's turns in sequence order."""

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
from commands.memory_sessions import TurnInput
from domain.scope import Scope
from domain.trajectory import Metadata
from domain.turn import Content, NodeId, Sequence, TokenCount, ToolData, Turn, TurnRole
from projections.memory_sessions import list_turns


class TurnCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``execution_id`` + ``node_id``: the running node that produced the turn (its event
    becomes the turn's parent in the DAG)."""

    scope_id: UUID
    role: TurnRole
    content: Content
    sequence: Sequence | None = None
    token_count: TokenCount = 0
    tool_calls: ToolData | None = None
    tool_results: ToolData | None = None
    metadata: Metadata | None = None
    execution_id: UUID | None = None
    node_id: NodeId | None = None
    caused_by: Causes = []


class TurnPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Null or absent: unchanged. Role, sequence and token count are facts of the recording."""

    content: Content | None = None
    tool_calls: ToolData | None = None
    tool_results: ToolData | None = None
    metadata: Metadata | None = None
    caused_by: Causes = []


class TurnOut(msgspec.Struct, kw_only=True):
    turn_id: UUID
    tenant_id: str
    scope_id: UUID
    trajectory_id: UUID
    role: str
    content: str
    sequence: int
    token_count: int
    tool_calls: dict[str, Any] | list[Any] | None
    tool_results: dict[str, Any] | list[Any] | None
    metadata: dict[str, Any]
    execution_id: UUID | None
    node_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {"self": f"/api/v1/turns/{self.turn_id}", "scope": f"/api/v1/scopes/{self.scope_id}"}
        if self.execution_id:
            self.links["execution"] = f"/api/v1/executions/{self.execution_id}"


def turn_out(t: Turn) -> TurnOut:
    return TurnOut(
        turn_id=t.id,
        tenant_id=t.tenant_id,
        scope_id=t.scope_id,
        trajectory_id=t.trajectory_id,
        role=t.role,
        content=t.content,
        sequence=t.sequence,
        token_count=t.token_count,
        tool_calls=t.tool_calls,
        tool_results=t.tool_results,
        metadata=t.metadata,
        execution_id=t.execution_id,
        node_id=t.node_id,
        created_at=t.created_on,
        updated_at=t.modified_on,
        version=t.version,
        last_event_id=t.last_event_id,
    )


class TurnController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @post("/turns", operation_id="createTurn", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[TurnCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[TurnOut]:
        """Record a turn in an open scope: next sequence when omitted (409 for a taken one), tokens
        counted against the scope's budget (409 over it). Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = TurnInput(
            scope_id=data.scope_id,
            role=data.role,
            content=data.content,
            sequence=data.sequence,
            token_count=data.token_count,
            tool_calls=data.tool_calls,
            tool_results=data.tool_results,
            metadata=data.metadata,
            execution_id=data.execution_id,
            node_id=data.node_id,
        )
        turn, is_new = await anyio.to_thread.run_sync(
            lambda: sessions(ctx).record_turn(
                principal.context(data.caused_by), fields, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(turn.correlation_id)
        return created(turn_out(turn), f"/api/v1/turns/{turn.id}", turn.version, created_now=is_new)

    @get("/turns", operation_id="listTurns")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        scope_id: FromQuery[UUID | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
        role: FromQuery[TurnRole | None] = None,
        execution_id: FromQuery[UUID | None] = None,
    ) -> Page[TurnOut]:
        """Live turns from the ``memory_sessions`` read model: by sequence within a scope, else oldest first."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_turns(
                conn,
                principal.tenant_id,
                scope_id=scope_id,
                trajectory_id=trajectory_id,
                role=role,
                execution_id=execution_id,
                limit=limit,
                offset=offset,
            )
        return rows_page(rows, total, TurnOut, limit, offset)

    @get("/scopes/{scope_id:uuid}/turns", operation_id="listScopeTurns")
    async def of_scope(
        self,
        scope_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        role: FromQuery[TurnRole | None] = None,
    ) -> Page[TurnOut]:
        """A scope's turns in sequence order (404 for an unknown or deleted scope)."""
        await session_item(ctx, principal, Scope, scope_id)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_turns(
                conn, principal.tenant_id, scope_id=scope_id, role=role, limit=limit, offset=offset
            )
        return rows_page(rows, total, TurnOut, limit, offset)

    @get("/turns/{turn_id:uuid}", operation_id="getTurn")
    async def get_one(
        self, turn_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[TurnOut]:
        """A turn from the event store (no lag); deleted or another tenant's -> 404."""
        turn = await session_item(ctx, principal, Turn, turn_id)
        bind_correlation(turn.correlation_id)
        return with_etag(turn_out(turn), turn.version)

    @patch("/turns/{turn_id:uuid}", operation_id="updateTurn", opt={"scope": "write"})
    async def update(
        self,
        turn_id: FromPath[UUID],
        data: JSONBody[TurnPatch],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[TurnOut]:
        """Change content, tool calls, tool results or metadata."""
        turn = await edit_session_item(
            ctx,
            principal,
            Turn,
            turn_id,
            lambda t, c: t.update(
                c,
                content=data.content,
                tool_calls=data.tool_calls,
                tool_results=data.tool_results,
                metadata=data.metadata,
            ),
            data.caused_by,
            expected_version(if_match),
        )
        return with_etag(turn_out(turn), turn.version)

    @delete("/turns/{turn_id:uuid}", operation_id="deleteTurn", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        turn_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone; the history stays, and the scope keeps the tokens counted."""
        await edit_session_item(ctx, principal, Turn, turn_id, lambda t, c: t.delete(c), [], expected_version(if_match))
