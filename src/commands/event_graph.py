"""An event's ancestry or descent as a graph to draw: every event within ``max_depth`` hops,
with only what a drawing needs (id, kind, parent links, hops, depth, time).

The walks of ``commands.forensics`` answer full envelopes, nearest first, and stop once a
page is full; a drawing of thousands of events needs all of them but none of their payloads.
So this walk reads only the DAG index (``event_dag``, ``event_edges``; no stored event is
decoded), breadth-first with one indexed query per hop and the visited set kept here, which
costs O(events + links) where a walk in SQL that checks an array of visited ids per hop costs
O(events * links). Its levels are those of ``forensics.walk``: the same events at the same hop
distances, in the same order (nearest first, then log order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.forensics import WALK_HARD_LIMIT
from domain.errors import NotFound

Conn = AsyncConnection[DictRow]
_COLUMNS = "d.event_id, d.kind, d.parent_ids, d.depth, d.occurred_at, d.notification_id"
_BY_ID = f"SELECT {_COLUMNS} FROM event_dag d WHERE d.event_id = ANY(%s) AND d.tenant_id = %s"
_CHILDREN = (
    f"SELECT {_COLUMNS} FROM event_edges e JOIN event_dag d ON d.event_id = e.child_id"
    " WHERE e.parent_id = ANY(%s) AND d.tenant_id = %s"
)


@dataclass(frozen=True)
class GraphEvent:
    event_id: UUID
    kind: str
    parent_ids: list[UUID]
    distance: int  # hops from the start
    depth: int
    occurred_at: datetime
    notification_id: int


@dataclass(frozen=True)
class EventGraph:
    start: GraphEvent
    events: list[GraphEvent]  # nearest first, then log order; the start is not among them
    truncated: bool  # the walk stopped at WALK_HARD_LIMIT events


def _event(row: DictRow, distance: int) -> GraphEvent:
    return GraphEvent(
        event_id=row["event_id"],
        kind=row["kind"],
        parent_ids=list(row["parent_ids"]),
        distance=distance,
        depth=row["depth"],
        occurred_at=row["occurred_at"],
        notification_id=row["notification_id"],
    )


async def event_graph(conn: Conn, tenant_id: str, start: UUID, *, upward: bool, max_depth: int) -> EventGraph:
    """404 unless the tenant has the event."""
    cur = await conn.execute(_BY_ID, ([start], tenant_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {start} not found")
    first = _event(row, 0)
    seen = {start}
    frontier = [first]
    found: list[GraphEvent] = []
    distance = 0
    while frontier and distance < max_depth and len(found) < WALK_HARD_LIMIT:
        distance += 1
        if upward:
            wanted = list({p for e in frontier for p in e.parent_ids if p not in seen})
            rows = await (await conn.execute(_BY_ID, (wanted, tenant_id))).fetchall() if wanted else []
        else:
            rows = await (await conn.execute(_CHILDREN, ([e.event_id for e in frontier], tenant_id))).fetchall()
        level = {r["event_id"]: r for r in rows if r["event_id"] not in seen}
        frontier = sorted((_event(r, distance) for r in level.values()), key=lambda e: e.notification_id)
        seen.update(level)
        found.extend(frontier)
    truncated = len(found) > WALK_HARD_LIMIT or (len(found) == WALK_HARD_LIMIT and bool(frontier))
    return EventGraph(first, found[:WALK_HARD_LIMIT], truncated)
