"""/api/v1/event-dag: forensic questions answered from the write side (docs/architecture.md, The event DAG)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import MAX_DEPTH, Limit, Offset, Page
from commands import forensics
from commands.forensics import WALK_HARD_LIMIT
from domain.envelope import EventEnvelope
from domain.events import resolve_kind

MaxDepth = Annotated[int, QueryParameter(ge=1, le=10_000, description="hops to walk")]
# A walk stops at forensics.WALK_HARD_LIMIT events, so no page starts past it.
WalkOffset = Annotated[int, QueryParameter(ge=0, le=WALK_HARD_LIMIT, description="items to skip")]
Kinds = Annotated[list[str] | None, QueryParameter(description="only return these kinds (names or codes)")]


class RelatedEvent(msgspec.Struct):
    distance: int
    event: EventEnvelope


class Walk(msgspec.Struct):
    event_id: FromPath[UUID]
    items: list[RelatedEvent]
    total: int  # the items of this page
    limit: int
    offset: int = 0


class Edge(msgspec.Struct):
    parent_id: UUID
    child_id: UUID


class CorrelationGraph(msgspec.Struct):
    correlation_id: UUID
    nodes: list[EventEnvelope]
    edges: list[Edge]
    total: int
    limit: int
    offset: int


class CausalPath(msgspec.Struct):
    source: UUID
    target: UUID
    length: int
    events: list[EventEnvelope]


class BrokenLinkOut(msgspec.Struct):
    event_id: FromPath[UUID]
    reason: str
    expected: str
    actual: str


class VerificationOut(msgspec.Struct):
    event_id: FromPath[UUID]
    ok: bool
    checked: int
    first_broken: BrokenLinkOut | None


class EventDagController(Controller):
    path = "/api/v1/event-dag"
    tags = ["event-dag"]

    @get("/", operation_id="getCorrelationDag")
    async def correlation(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        correlation_id: FromQuery[UUID],
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> CorrelationGraph:
        """One correlation's whole DAG (an execution, a workflow ...) as nodes and edges."""
        bind_correlation(correlation_id)
        async with ctx.pool.connection() as conn:
            nodes, edges, total = await forensics.correlation_graph(
                conn, principal.tenant_id, correlation_id, limit=limit, offset=offset
            )
        return CorrelationGraph(correlation_id, nodes, [Edge(p, c) for p, c in edges], total, limit, offset)

    @get("/{event_id:uuid}", operation_id="getEvent")
    async def event(
        self, event_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> EventEnvelope:
        """One event's envelope."""
        async with ctx.pool.connection() as conn:
            return await forensics.get_event(conn, principal.tenant_id, event_id)

    async def _walk(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        event_id: FromPath[UUID],
        *,
        upward: bool,
        max_depth: int,
        limit: int,
        offset: int,
        kinds: list[str] | None,
    ) -> Walk:
        resolved = [resolve_kind(k) for k in kinds or []]
        async with ctx.pool.connection() as conn:
            found = await forensics.walk(
                conn,
                principal.tenant_id,
                event_id,
                upward=upward,
                max_depth=max_depth,
                limit=limit,
                kinds=resolved,
                offset=offset,
            )
        return Walk(event_id, [RelatedEvent(r.distance, r.event) for r in found], len(found), limit, offset)

    @get("/{event_id:uuid}/ancestors", operation_id="getAncestors")
    async def ancestors(
        self,
        event_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        max_depth: MaxDepth = 100,
        limit: Limit = 100,
        offset: WalkOffset = 0,
        kinds: Kinds = None,
    ) -> Walk:
        """What caused this event: breadth-first up the parent links, nearest first. Pages by
        ``offset`` in that order (a page shorter than ``limit`` is the last)."""
        return await self._walk(
            ctx, principal, event_id, upward=True, max_depth=max_depth, limit=limit, offset=offset, kinds=kinds
        )

    @get("/{event_id:uuid}/descendants", operation_id="getDescendants")
    async def descendants(
        self,
        event_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        max_depth: MaxDepth = 100,
        limit: Limit = 100,
        offset: WalkOffset = 0,
        kinds: Kinds = None,
    ) -> Walk:
        """What this event led to: breadth-first down the child links, nearest first. Pages by
        ``offset`` in that order (a page shorter than ``limit`` is the last; events recorded
        between two pages may shift the order)."""
        return await self._walk(
            ctx, principal, event_id, upward=False, max_depth=max_depth, limit=limit, offset=offset, kinds=kinds
        )

    @get("/{event_id:uuid}/siblings", operation_id="getSiblings")
    async def siblings(
        self,
        event_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[EventEnvelope]:
        """Events that share a parent with this one."""
        async with ctx.pool.connection() as conn:
            items, total = await forensics.siblings(conn, principal.tenant_id, event_id, limit=limit, offset=offset)
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/by-kind/{kind:str}", operation_id="getEventsByKind")
    async def by_kind(
        self,
        kind: FromPath[str],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        min_depth: Annotated[int | None, QueryParameter(ge=0, le=MAX_DEPTH)] = None,
        max_depth: Annotated[int | None, QueryParameter(ge=0, le=MAX_DEPTH)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[EventEnvelope]:
        """Events of one kind (dotted name or numeric code such as 0xa001), by depth."""
        async with ctx.pool.connection() as conn:
            items, total = await forensics.by_kind(
                conn,
                principal.tenant_id,
                resolve_kind(kind),
                min_depth=min_depth,
                max_depth=max_depth,
                limit=limit,
                offset=offset,
            )
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/path", operation_id="getCausalPath")
    async def causal_path(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        source: Annotated[UUID, QueryParameter(name="from")],
        target: Annotated[UUID, QueryParameter(name="to")],
    ) -> CausalPath:
        """A shortest cause-to-effect chain from ``from`` to ``to`` (404 if ``from`` did not lead to ``to``)."""
        async with ctx.pool.connection() as conn:
            events = await forensics.causal_path(conn, principal.tenant_id, source, target)
        if events is None:
            raise NotFoundException(f"no causal path from {source} to {target}")
        return CausalPath(source, target, len(events) - 1, events)

    @get("/common-ancestors", operation_id="getCommonAncestors")
    async def common_ancestors(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        a: FromQuery[UUID],
        b: FromQuery[UUID],
    ) -> Page[EventEnvelope]:
        """Lowest common ancestors of two events (an event counts as its own ancestor)."""
        async with ctx.pool.connection() as conn:
            items = await forensics.common_ancestors(conn, principal.tenant_id, a, b)
        return Page(items=items, total=len(items), limit=len(items), offset=0)

    @get("/{event_id:uuid}/verify", operation_id="verifyEvent")
    async def verify(
        self, event_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> VerificationOut:
        """Recompute the hash chain over the event's whole ancestry; name the first broken link."""
        async with ctx.pool.connection() as conn:
            v = await forensics.verify(conn, principal.tenant_id, event_id)
        broken = v.first_broken
        return VerificationOut(
            v.event_id,
            v.ok,
            v.checked,
            BrokenLinkOut(broken.event_id, broken.reason, broken.expected, broken.actual) if broken else None,
        )
