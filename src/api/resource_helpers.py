"""What the memory resources' controllers share (trajectories, scopes, turns, artifacts,
notes, edges): versions as ETags, 201 answers for retry-safe creates, ``If-Match``
guarded writes and read-model pages.

The event store is synchronous, so every load or write that touches it runs in a worker
thread; these helpers keep that in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Response

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Page, created_headers
from api.workflows import expected_version
from commands.knowledge import KnowledgeService
from commands.memory_sessions import MemorySessionService
from domain.aggregate import CommandContext
from domain.artifact import Artifact
from domain.entity_edge import EntityEdge
from domain.note import Note
from domain.scope import Scope
from domain.trajectory import Trajectory
from domain.turn import Turn

T = TypeVar("T")
# The aggregates MemorySessionService loads and edits.
S = TypeVar("S", Trajectory, Scope, Turn)
# The aggregates KnowledgeService loads.
K = TypeVar("K", Artifact, Note, EntityEdge)

Causes = Annotated[list[UUID], msgspec.Meta(max_length=100)]


def sessions(ctx: ApiContext) -> MemorySessionService:
    """The service is stateless over the event store: building one per request is free."""
    return MemorySessionService(ctx.store)


def knowledge(ctx: ApiContext) -> KnowledgeService:
    """The service is stateless over the event store: building one per request is free."""
    return KnowledgeService(ctx.store)


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def with_etag(body: T, version: int) -> Response[T]:
    """A 200 whose ETag is the resource's version, for a later ``If-Match``."""
    return Response(body, headers=etag(version))


def created(body: T, location: str, version: int, *, created_now: bool) -> Response[T]:
    """The 201 of a create that is safe to retry: Location, ETag, and whether it replays."""
    return Response(body, status_code=201, headers=created_headers(location, created_now=created_now, **etag(version)))


def from_row(row: dict[str, Any], out: type[msgspec.Struct]) -> Any:
    """A read-model row as the resource's response shape (the columns carry its names)."""
    return msgspec.convert({k: v for k, v in row.items() if k != "deleted"}, out, from_attributes=True)


def rows_page(rows: list[Any], total: int, out: type[msgspec.Struct], limit: int, offset: int) -> Page[Any]:
    """A page of read-model rows in the resource's response shape."""
    return Page([from_row(r, out) for r in rows], total, limit, offset)


async def guarded(if_match: str | None, write: Callable[[int | None], T]) -> T:
    """Run a write with the version ``If-Match`` expects (None: any), in a thread."""
    version = expected_version(if_match)
    return await anyio.to_thread.run_sync(lambda: write(version))


async def knowledge_item(ctx: ApiContext, principal: Principal, cls: type[K], item_id: UUID) -> K:
    """The live artifact, note or edge from the event store (no lag); a deleted one -> 404."""
    return await anyio.to_thread.run_sync(lambda: knowledge(ctx).get(cls, principal.tenant_id, item_id))


async def session_item(ctx: ApiContext, principal: Principal, cls: type[S], item_id: UUID) -> S:
    """The live trajectory, scope or turn from the event store; deleted or another tenant's -> 404."""
    return await anyio.to_thread.run_sync(lambda: sessions(ctx).get(cls, principal.tenant_id, item_id))


async def edit_session_item(
    ctx: ApiContext,
    principal: Principal,
    cls: type[S],
    item_id: UUID,
    change: Callable[[S, CommandContext], object],
    caused_by: list[UUID],
    version: int | None = None,
) -> S:
    """Load, let the aggregate decide, save (retried against concurrent writers unless
    ``version`` pins one), in a thread."""
    item = await anyio.to_thread.run_sync(
        lambda: sessions(ctx).edit(principal.context(caused_by), cls, item_id, change, expected_version=version)
    )
    bind_correlation(item.correlation_id)
    return item
