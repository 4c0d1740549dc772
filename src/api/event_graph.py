"""GET /api/v1/event-dag/{id}/graph: an event's ancestors or descendants as a graph to draw
(``commands.event_graph``): every event within the depth limit, without payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.auth import Principal
from api.context import ApiContext
from commands.event_graph import GraphEvent, event_graph
from commands.forensics import WALK_HARD_LIMIT

Direction = Annotated[
    Literal["ancestors", "descendants"], QueryParameter(description="walk up the parent links or down the child links")
]
GraphDepth = Annotated[int, QueryParameter(ge=1, le=10_000, description="hops to walk")]
GraphLimit = Annotated[int, QueryParameter(ge=1, le=10_000, description="page size")]
GraphOffset = Annotated[int, QueryParameter(ge=0, le=WALK_HARD_LIMIT, description="items to skip")]


class GraphEventOut(msgspec.Struct, kw_only=True):
    event_id: UUID
    kind: str
    parent_ids: list[UUID]
    distance: int  # hops from the event asked about
    depth: int
    occurred_at: datetime


class EventGraphOut(msgspec.Struct, kw_only=True):
    event_id: UUID
    direction: Literal["ancestors", "descendants"]
    max_depth: int
    start: GraphEventOut  # the event asked about
    items: list[GraphEventOut]  # this page, nearest first, then log order
    total: int  # every event within max_depth hops
    limit: int
    offset: int
    truncated: bool  # the walk stopped at its hard limit (100,000 events)


def _out(e: GraphEvent) -> GraphEventOut:
    return GraphEventOut(
        event_id=e.event_id,
        kind=e.kind,
        parent_ids=e.parent_ids,
        distance=e.distance,
        depth=e.depth,
        occurred_at=e.occurred_at,
    )


class EventGraphController(Controller):
    path = "/api/v1/event-dag"
    tags = ["event-dag"]

    @get("/{event_id:uuid}/graph", operation_id="getEventGraph")
    async def graph(
        self,
        event_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        direction: Direction = "ancestors",
        max_depth: GraphDepth = 100,
        limit: GraphLimit = 10_000,
        offset: GraphOffset = 0,
    ) -> EventGraphOut:
        """Every ancestor (or descendant) of the event within ``max_depth`` hops, as a graph
        to draw: each event's id, kind, parent links, hops from this one, depth and time, no
        payload (``/ancestors`` and ``/descendants`` answer whole envelopes). The same events
        at the same distances as those walks, in the same order (nearest first, then log
        order), counted in ``total`` and paged by ``offset``. Reads only the DAG index, so
        thousands of events come in one answer."""
        async with ctx.pool.connection() as conn:
            found = await event_graph(
                conn, principal.tenant_id, event_id, upward=direction == "ancestors", max_depth=max_depth
            )
        return EventGraphOut(
            event_id=event_id,
            direction=direction,
            max_depth=max_depth,
            start=_out(found.start),
            items=[_out(e) for e in found.events[offset : offset + limit]],
            total=len(found.events),
            limit=limit,
            offset=offset,
            truncated=found.truncated,
        )
