"""Queries over the ``knowledge`` read model: lists with the CELLSTATE reference's filters
(docs/architecture.md, Reference APIs), edges by participant, and breadth-first traversal of the entity graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from projections.knowledge import KnowledgeProjection
from projections.paging import page

S = KnowledgeProjection.schema()
MAX_TRAVERSAL_EDGES = 10_000
# Every list starts from the tenant's rows without a tombstone.
_LIVE = " WHERE tenant_id = %s AND NOT deleted"


@dataclass(frozen=True)
class Window:
    """What every memory list shares: creation time, visibility and the page."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    include_expired: bool = False
    include_superseded: bool = False
    descending: bool = True
    limit: int = 50
    offset: int = 0


def _window(where: str, params: list[Any], w: Window, *, lifecycle: bool = True) -> str:
    if w.created_after:
        where += " AND created_at >= %s"
        params.append(w.created_after)
    if w.created_before:
        where += " AND created_at < %s"
        params.append(w.created_before)
    if lifecycle and not w.include_expired:
        where += " AND (expires_at IS NULL OR expires_at > now())"
    if lifecycle and not w.include_superseded:
        where += " AND superseded_by IS NULL"
    return where


async def _windowed(
    conn: AsyncConnection[DictRow],
    table: str,
    key: str,
    where: str,
    params: list[Any],
    w: Window,
    *,
    lifecycle: bool = True,
) -> tuple[list[DictRow], int]:
    """One page of ``table`` within the window, by creation time (``key`` breaks ties)."""
    return await page(
        conn,
        f"{S}.{table}",
        _window(where, params, w, lifecycle=lifecycle),
        params,
        sort="created_at",
        descending=w.descending,
        tie_breaker=key,
        limit=w.limit,
        offset=w.offset,
    )


def _equal(where: str, params: list[Any], **filters: Any) -> str:
    """``column = value`` for every filter given (names are the caller's, never the client's)."""
    for column, value in filters.items():
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    return where


async def list_artifacts(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    w: Window,
    *,
    artifact_type: str | None = None,
    trajectory_id: UUID | None = None,
    scope_id: UUID | None = None,
    extraction_method: str | None = None,
    execution_id: UUID | None = None,
) -> tuple[list[DictRow], int]:
    params: list[Any] = [tenant_id]
    where = _equal(
        _LIVE,
        params,
        artifact_type=artifact_type,
        trajectory_id=trajectory_id,
        scope_id=scope_id,
        extraction_method=extraction_method,
        execution_id=execution_id,
    )
    return await _windowed(conn, "artifacts", "artifact_id", where, params, w)


async def list_notes(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    w: Window,
    *,
    note_type: str | None = None,
    abstraction_level: str | None = None,
    source_trajectory_id: UUID | None = None,
    source_artifact_id: UUID | None = None,
    source_note_id: UUID | None = None,
    execution_id: UUID | None = None,
) -> tuple[list[DictRow], int]:
    params: list[Any] = [tenant_id]
    where = _equal(
        _LIVE,
        params,
        note_type=note_type,
        abstraction_level=abstraction_level,
        execution_id=execution_id,
    )
    # Array containment uses the GIN indexes.
    for column, value in (
        ("source_trajectory_ids", source_trajectory_id),
        ("source_artifact_ids", source_artifact_id),
        ("source_note_ids", source_note_id),
    ):
        if value is not None:
            where += f" AND {column} @> ARRAY[%s]::uuid[]"
            params.append(value)
    return await _windowed(conn, "notes", "note_id", where, params, w)


async def list_edges(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    w: Window,
    *,
    edge_type: str | None = None,
    participant: UUID | None = None,
    role: str | None = None,
    entity_type: str | None = None,
    trajectory_id: UUID | None = None,
) -> tuple[list[DictRow], int]:
    """Live edges; ``participant`` (with ``role`` / ``entity_type``) keeps those naming it."""
    params: list[Any] = [tenant_id]
    where = _equal(_LIVE, params, edge_type=edge_type, trajectory_id=trajectory_id)
    if participant is not None or role is not None or entity_type is not None:
        where += (
            f" AND EXISTS (SELECT 1 FROM {S}.edge_participants p"
            " WHERE p.tenant_id = edges.tenant_id AND p.edge_id = edges.edge_id"
        )
        for column, value in (("entity_id", participant), ("role", role), ("entity_type", entity_type)):
            if value is not None:
                where += f" AND p.{column} = %s"
                params.append(value)
        where += ")"
    return await _windowed(conn, "edges", "edge_id", where, params, w, lifecycle=False)


async def participants_of(
    conn: AsyncConnection[DictRow], tenant_id: str, edge_ids: Sequence[UUID]
) -> dict[UUID, list[DictRow]]:
    """The participants of each edge, in the order the edge named them."""
    found: dict[UUID, list[DictRow]] = {edge_id: [] for edge_id in edge_ids}
    if not edge_ids:
        return found
    cur = await conn.execute(
        f"SELECT edge_id, entity_type, entity_id, role FROM {S}.edge_participants"
        " WHERE tenant_id = %s AND edge_id = ANY(%s) ORDER BY edge_id, position",
        (tenant_id, list(edge_ids)),
    )
    for row in await cur.fetchall():
        found[row["edge_id"]].append(row)
    return found


@dataclass(frozen=True)
class Reached:
    entity_id: UUID
    entity_type: str | None
    depth: int


@dataclass(frozen=True)
class Traversal:
    nodes: list[Reached]
    edges: list[DictRow]
    truncated: bool


async def traverse(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    start: UUID,
    *,
    max_depth: int,
    relations: Sequence[str] | None,
    limit: int,
) -> Traversal:
    """Breadth-first from ``start`` through shared edges, as one recursive query.

    The walk keeps one row per (entity, hops) pair - UNION drops repeats - so cycles end
    and every level is bounded by the entity count; an entity's depth is the fewest hops
    that reach it, as a BFS gives it. Nodes come nearest first (ties by id), at most
    ``limit`` of them. The edges used are those joining at least two returned entities,
    one of which lies inside ``max_depth`` (so the walk crossed it).
    """
    rel = " AND p.edge_type = ANY(%(rel)s)" if relations else ""
    args: dict[str, Any] = {
        "tenant": tenant_id,
        "start": start,
        "max": max_depth,
        "rel": list(relations or ()),
        "limit": limit + 1,
    }
    cur = await conn.execute(
        "WITH RECURSIVE walk(entity_id, depth) AS ("
        " SELECT %(start)s::uuid, 0"
        " UNION"
        " SELECT o.entity_id, w.depth + 1 FROM walk w"
        f" JOIN {S}.edge_participants p ON p.tenant_id = %(tenant)s AND p.entity_id = w.entity_id{rel}"
        f" JOIN {S}.edge_participants o ON o.tenant_id = %(tenant)s AND o.edge_id = p.edge_id"
        " AND o.entity_id <> w.entity_id"
        " WHERE w.depth < %(max)s)"
        " SELECT r.entity_id, r.depth, (SELECT t.entity_type FROM"
        f" {S}.edge_participants t WHERE t.tenant_id = %(tenant)s AND t.entity_id = r.entity_id LIMIT 1)"
        " AS entity_type FROM (SELECT entity_id, min(depth) AS depth FROM walk GROUP BY entity_id) r"
        " ORDER BY r.depth, r.entity_id LIMIT %(limit)s",
        args,
    )
    rows = await cur.fetchall()
    truncated = len(rows) > limit
    nodes = [Reached(r["entity_id"], r["entity_type"], r["depth"]) for r in rows[:limit]]
    cur = await conn.execute(
        f"SELECT e.* FROM {S}.edges e WHERE e.tenant_id = %(tenant)s AND e.edge_id IN ("
        f" SELECT p.edge_id FROM {S}.edge_participants p"
        " JOIN unnest(%(ids)s::uuid[], %(depths)s::int[]) AS n(entity_id, depth) ON n.entity_id = p.entity_id"
        f" WHERE p.tenant_id = %(tenant)s{rel}"
        " GROUP BY p.edge_id HAVING count(*) >= 2 AND min(n.depth) < %(max)s)"
        " ORDER BY e.created_at, e.edge_id LIMIT %(cap)s",
        {
            **args,
            "ids": [n.entity_id for n in nodes],
            "depths": [n.depth for n in nodes],
            "cap": MAX_TRAVERSAL_EDGES + 1,
        },
    )
    edges = await cur.fetchall()
    return Traversal(nodes, edges[:MAX_TRAVERSAL_EDGES], truncated or len(edges) > MAX_TRAVERSAL_EDGES)
