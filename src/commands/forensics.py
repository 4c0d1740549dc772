"""Forensic queries over the event DAG. They read the write side: no lag, no projector.

Every query is scoped by tenant: another tenant's event is indistinguishable from a
missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope, envelope_from_state
from domain.errors import NotFound
from domain.hashing import depth_from, event_hash

WALK_HARD_LIMIT = 100_000
_SELECT = (
    "SELECT d.event_id, d.kind, d.depth, d.hash, d.notification_id, d.parent_ids, e.state"
    f" FROM event_dag d JOIN {EVENTS_TABLE} e"
    " ON e.originator_id = d.stream_id AND e.originator_version = d.version"
)

Conn = AsyncConnection[DictRow]


def _envelope(row: dict[str, Any]) -> EventEnvelope:
    return envelope_from_state(
        bytes(row["state"]),
        row["kind"],
        depth=row["depth"],
        hash_=row["hash"].strip(),
        notification_id=row["notification_id"],
    )


@dataclass(frozen=True)
class Related:
    """An event reached by a walk, with its shortest hop distance from the start."""

    event: EventEnvelope
    distance: int


async def get_event(conn: Conn, tenant_id: str, event_id: UUID) -> EventEnvelope:
    cur = await conn.execute(_SELECT + " WHERE d.event_id = %s AND d.tenant_id = %s", (event_id, tenant_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    return _envelope(row)


async def _require(conn: Conn, tenant_id: str, event_id: UUID) -> None:
    cur = await conn.execute("SELECT 1 FROM event_dag WHERE event_id = %s AND tenant_id = %s", (event_id, tenant_id))
    if await cur.fetchone() is None:
        raise NotFound(f"event {event_id} not found")


async def _distances(
    conn: Conn, tenant_id: str, start: UUID, *, upward: bool, max_depth: int, max_nodes: int
) -> dict[UUID, int]:
    cur = await conn.execute(
        "SELECT event_id, distance FROM quipu_walk(%s, %s, %s, %s, %s)",
        (start, tenant_id, upward, max_depth, max_nodes),
    )
    return {row["event_id"]: row["distance"] for row in await cur.fetchall()}


async def walk(
    conn: Conn,
    tenant_id: str,
    start: UUID,
    *,
    upward: bool,
    max_depth: int,
    limit: int,
    kinds: Sequence[str] = (),
    offset: int = 0,
) -> list[Related]:
    """Ancestors (upward) or descendants, breadth-first: nearest first, then log order.

    ``kinds`` filters what is returned, not what is walked through, so a filtered
    answer is the unfiltered one minus other kinds. ``offset`` pages through that order
    (each page walks again from the start: an event's ancestors never change, so their
    pages are stable; descendants recorded between two pages may shift the order).
    """
    # Without a kind filter the walk can stop once it has `offset + limit` nodes; with one
    # it must look further because some of what it finds is filtered out.
    budget = min(limit + offset, WALK_HARD_LIMIT) if not kinds else WALK_HARD_LIMIT
    # One round trip: walk (each reached DAG row read once), order and cut in SQL, and read
    # stored state only for the rows returned.
    cur = await conn.execute(
        "WITH picked AS ("
        " SELECT w.* FROM quipu_walk_rows(%(start)s, %(tenant)s, %(upward)s, %(max_depth)s, %(budget)s) w"
        " WHERE cardinality(%(kinds)s::text[]) = 0 OR w.kind = ANY(%(kinds)s::text[])"
        " ORDER BY w.distance, w.notification_id LIMIT %(limit)s OFFSET %(offset)s)"
        f" SELECT p.*, e.state FROM picked p JOIN {EVENTS_TABLE} e"
        " ON e.originator_id = p.stream_id AND e.originator_version = p.version"
        " ORDER BY p.distance, p.notification_id",
        {
            "start": start,
            "tenant": tenant_id,
            "upward": upward,
            "max_depth": max_depth,
            "budget": budget,
            "kinds": list(kinds),
            "limit": limit,
            "offset": offset,
        },
        prepare=True,
    )
    rows = await cur.fetchall()
    if not rows:
        # Only an empty answer needs telling apart from an unknown start (one round trip
        # fewer for every walk that finds something).
        await _require(conn, tenant_id, start)
    return [Related(_envelope(r), r["distance"]) for r in rows]


async def siblings(
    conn: Conn, tenant_id: str, event_id: UUID, *, limit: int, offset: int
) -> tuple[list[EventEnvelope], int]:
    """Events that share at least one parent with ``event_id`` (itself excluded)."""
    await _require(conn, tenant_id, event_id)
    cur = await conn.execute(
        "SELECT count(*) AS n FROM (SELECT DISTINCT child_id FROM event_edges e"
        " JOIN event_dag me ON me.event_id = %s WHERE e.parent_id = ANY(me.parent_ids)"
        " AND e.child_id <> me.event_id) s",
        (event_id,),
    )
    total_row = await cur.fetchone()
    assert total_row is not None
    cur = await conn.execute(
        _SELECT + " WHERE d.event_id IN (SELECT DISTINCT e2.child_id FROM event_edges e2"
        " JOIN event_dag me ON me.event_id = %s WHERE e2.parent_id = ANY(me.parent_ids)"
        " AND e2.child_id <> me.event_id) AND d.tenant_id = %s"
        " ORDER BY d.notification_id LIMIT %s OFFSET %s",
        (event_id, tenant_id, limit, offset),
    )
    return [_envelope(r) for r in await cur.fetchall()], total_row["n"]


async def by_kind(
    conn: Conn,
    tenant_id: str,
    kind: str,
    *,
    min_depth: int | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> tuple[list[EventEnvelope], int]:
    where = " WHERE d.tenant_id = %s AND d.kind = %s"
    params: list[Any] = [tenant_id, kind]
    if min_depth is not None:
        where += " AND d.depth >= %s"
        params.append(min_depth)
    if max_depth is not None:
        where += " AND d.depth <= %s"
        params.append(max_depth)
    cur = await conn.execute("SELECT count(*) AS n FROM event_dag d" + where, params)
    total = await cur.fetchone()
    assert total is not None
    cur = await conn.execute(
        _SELECT + where + " ORDER BY d.notification_id LIMIT %s OFFSET %s", [*params, limit, offset]
    )
    return [_envelope(r) for r in await cur.fetchall()], total["n"]


async def _children(conn: Conn, parent: UUID) -> list[UUID]:
    cur = await conn.execute("SELECT child_id FROM event_edges WHERE parent_id = %s ORDER BY child_id", (parent,))
    return [r["child_id"] for r in await cur.fetchall()]


async def causal_path(conn: Conn, tenant_id: str, source: UUID, target: UUID) -> list[EventEnvelope] | None:
    """A shortest chain of cause -> effect from ``source`` to ``target``; None if none."""
    await _require(conn, tenant_id, source)
    await _require(conn, tenant_id, target)
    if source == target:
        return [await get_event(conn, tenant_id, source)]
    to_target = await _distances(conn, tenant_id, target, upward=True, max_depth=1_000_000, max_nodes=WALK_HARD_LIMIT)
    if source not in to_target:
        return None
    to_target[target] = 0
    path = [source]
    current = source
    while current != target:
        wanted = to_target[current] - 1
        current = next(c for c in await _children(conn, current) if to_target.get(c) == wanted)
        path.append(current)
    cur = await conn.execute(_SELECT + " WHERE d.event_id = ANY(%s)", (path,))
    by_id = {r["event_id"]: r for r in await cur.fetchall()}
    return [_envelope(by_id[i]) for i in path]


async def common_ancestors(conn: Conn, tenant_id: str, a: UUID, b: UUID) -> list[EventEnvelope]:
    """Lowest common ancestors: shared ancestors (each event counts as its own) of which
    no other shared ancestor is a descendant."""
    await _require(conn, tenant_id, a)
    await _require(conn, tenant_id, b)
    up_a = set(await _distances(conn, tenant_id, a, upward=True, max_depth=1_000_000, max_nodes=WALK_HARD_LIMIT)) | {a}
    up_b = set(await _distances(conn, tenant_id, b, upward=True, max_depth=1_000_000, max_nodes=WALK_HARD_LIMIT)) | {b}
    common = list(up_a & up_b)
    if not common:
        return []
    # If a shared ancestor has a descendant that is shared, the path between them is
    # shared too, so it suffices to look at direct children.
    cur = await conn.execute(
        "SELECT DISTINCT parent_id FROM event_edges WHERE parent_id = ANY(%s) AND child_id = ANY(%s)",
        (common, common),
    )
    not_lowest = {r["parent_id"] for r in await cur.fetchall()}
    lowest = [c for c in common if c not in not_lowest]
    cur = await conn.execute(_SELECT + " WHERE d.event_id = ANY(%s) ORDER BY d.notification_id", (lowest,))
    return [_envelope(r) for r in await cur.fetchall()]


async def divergence(conn: Conn, tenant_id: str, common: list[UUID], tip: UUID) -> list[EventEnvelope]:
    """Where the way from the common ancestors to ``tip`` starts: the children of a common
    ancestor that are ``tip`` or among its ancestors (none of them is shared, or it would be
    a lower common ancestor)."""
    await _require(conn, tenant_id, tip)
    up = set(await _distances(conn, tenant_id, tip, upward=True, max_depth=1_000_000, max_nodes=WALK_HARD_LIMIT))
    up.add(tip)
    cur = await conn.execute("SELECT DISTINCT child_id FROM event_edges WHERE parent_id = ANY(%s)", (common,))
    first = [r["child_id"] for r in await cur.fetchall() if r["child_id"] in up]
    cur = await conn.execute(_SELECT + " WHERE d.event_id = ANY(%s) ORDER BY d.notification_id", (first,))
    return [_envelope(r) for r in await cur.fetchall()]


@dataclass(frozen=True)
class BrokenLink:
    event_id: UUID
    reason: str
    expected: str
    actual: str


@dataclass(frozen=True)
class Verification:
    event_id: UUID
    checked: int
    ok: bool
    first_broken: BrokenLink | None


async def verify(conn: Conn, tenant_id: str, event_id: UUID) -> Verification:
    """Recompute depth and hash of the event and all its ancestors, oldest first."""
    await _require(conn, tenant_id, event_id)
    ancestry = set(
        await _distances(conn, tenant_id, event_id, upward=True, max_depth=1_000_000, max_nodes=10 * WALK_HARD_LIMIT)
    ) | {event_id}
    cur = await conn.execute(_SELECT + " WHERE d.event_id = ANY(%s) ORDER BY d.notification_id", (list(ancestry),))
    rows = await cur.fetchall()
    recorded = {r["event_id"]: r for r in rows}
    for row in rows:
        parents = [recorded.get(p) for p in row["parent_ids"]]
        if any(p is None for p in parents):
            missing = next(str(p) for p, r in zip(row["parent_ids"], parents, strict=True) if r is None)
            return Verification(event_id, len(rows), False, BrokenLink(row["event_id"], "missing_parent", missing, ""))
        depth = depth_from([p["depth"] for p in parents if p is not None])
        if depth != row["depth"]:
            return Verification(
                event_id, len(rows), False, BrokenLink(row["event_id"], "depth_mismatch", str(depth), str(row["depth"]))
            )
        expected = event_hash(bytes(row["state"]), depth, [p["hash"].strip() for p in parents if p is not None])
        if expected != row["hash"].strip():
            return Verification(
                event_id, len(rows), False, BrokenLink(row["event_id"], "hash_mismatch", expected, row["hash"].strip())
            )
    return Verification(event_id, len(rows), True, None)


async def correlation_graph(
    conn: Conn, tenant_id: str, correlation_id: UUID, *, limit: int, offset: int
) -> tuple[list[EventEnvelope], list[tuple[UUID, UUID]], int]:
    """One correlation's DAG: its events (log order, paginated) and the edges among them."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM event_dag WHERE tenant_id = %s AND correlation_id = %s",
        (tenant_id, correlation_id),
    )
    total = await cur.fetchone()
    assert total is not None
    if total["n"] == 0:
        raise NotFound(f"correlation {correlation_id} not found")
    cur = await conn.execute(
        _SELECT + " WHERE d.tenant_id = %s AND d.correlation_id = %s ORDER BY d.notification_id LIMIT %s OFFSET %s",
        (tenant_id, correlation_id, limit, offset),
    )
    rows = await cur.fetchall()
    edges = [(p, r["event_id"]) for r in rows for p in r["parent_ids"]]
    return [_envelope(r) for r in rows], edges, total["n"]
