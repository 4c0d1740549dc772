"""Reading the global event log in notification order (relay, rebuilds, replays)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope, envelope_from_state

# Every envelope read: the stored event joined with its DAG row (kind, depth, hash).
_ENVELOPES = (
    "SELECT d.kind, d.depth, d.hash, e.notification_id, e.state"
    f" FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id"
)
_READ = _ENVELOPES + " WHERE e.notification_id > %s"


async def read_after(
    conn: AsyncConnection[DictRow], after: int, limit: int, *, upto: int | None = None
) -> list[EventEnvelope]:
    """Up to ``limit`` events with notification id > ``after`` (and <= ``upto``), in order.

    Gaps in notification ids are normal (a rolled-back append consumes ids); the
    recorder's table lock guarantees no lower id commits after a higher one is visible.
    """
    query = _READ
    params: list[int] = [after]
    if upto is not None:
        query += " AND e.notification_id <= %s"
        params.append(upto)
    query += " ORDER BY e.notification_id LIMIT %s"
    params.append(limit)
    cur = await conn.execute(query, params, prepare=True)
    return [envelope_from_row(row) for row in await cur.fetchall()]


def envelope_from_row(row: DictRow) -> EventEnvelope:
    """A row joining ``quipu_events`` (state, notification id) with ``event_dag`` (kind,
    depth, hash) as the envelope."""
    return envelope_from_state(
        bytes(row["state"]),
        row["kind"],
        depth=row["depth"],
        hash_=row["hash"].strip(),
        notification_id=row["notification_id"],
    )


async def head(conn: AsyncConnection[DictRow]) -> int:
    """The highest notification id recorded so far (0 when empty)."""
    cur = await conn.execute(f"SELECT coalesce(max(notification_id), 0) AS n FROM {EVENTS_TABLE}")
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def batches(
    conn: AsyncConnection[DictRow], after: int, upto: int, *, size: int = 2000
) -> AsyncIterator[list[EventEnvelope]]:
    """The log from ``after`` (exclusive) to ``upto`` (inclusive) in batches."""
    position = after
    while position < upto:
        batch = await read_after(conn, position, size, upto=upto)
        if not batch:
            return
        yield batch
        position = batch[-1].notification_id


async def backlog(conn: AsyncConnection[DictRow], after: int) -> tuple[int, float]:
    """Events recorded after ``after``: how many, and the age in seconds of the oldest."""
    cur = await conn.execute(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(occurred_at)), 0) AS age"
        " FROM event_dag WHERE notification_id > %s",
        (after,),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"]), max(0.0, float(row["age"]))


_AT = _ENVELOPES + " WHERE e.notification_id = ANY(%s)"


async def read_at(conn: AsyncConnection[DictRow], positions: Sequence[int]) -> dict[int, EventEnvelope]:
    """The events recorded at exactly these notification ids (absent ones are missing):
    what a bus consumer applies instead of the message it was handed (docs/decisions/0006-log-trust.md)."""
    if not positions:
        return {}
    cur = await conn.execute(_AT, (list(positions),), prepare=True)
    return {row["notification_id"]: envelope_from_row(row) for row in await cur.fetchall()}


async def identities_at(conn: AsyncConnection[DictRow], positions: Sequence[int]) -> dict[int, tuple[UUID, str]]:
    """(event id, hash) of the events at these notification ids, without their bodies."""
    if not positions:
        return {}
    cur = await conn.execute(
        "SELECT notification_id, event_id, hash FROM event_dag WHERE notification_id = ANY(%s)",
        (list(positions),),
        prepare=True,
    )
    return {row["notification_id"]: (row["event_id"], row["hash"].strip()) for row in await cur.fetchall()}


async def read_kind(
    conn: AsyncConnection[DictRow], kind: str, *, tenant_id: str | None = None, limit: int | None = None
) -> list[EventEnvelope]:
    """The events of one kind (all tenants', or one tenant's), oldest first (all when
    ``limit`` is None)."""
    query = (
        _ENVELOPES + " WHERE d.kind = %(kind)s AND (%(tenant)s::text IS NULL OR d.tenant_id = %(tenant)s)"
        " ORDER BY d.notification_id LIMIT %(limit)s"
    )
    cur = await conn.execute(query, {"kind": kind, "tenant": tenant_id, "limit": limit})
    return [envelope_from_row(row) for row in await cur.fetchall()]
