"""The read side's own view of each projector: position, parked events and skip decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from projections.applier import position
from projections.base import Projection


@dataclass(frozen=True)
class DeadLetterRow:
    notification_id: int
    event_id: UUID
    kind: str
    error: str
    attempts: int
    next_retry_at: datetime


@dataclass(frozen=True)
class ProjectorState:
    position: int
    updated_at: datetime | None
    dead_letters: list[DeadLetterRow]
    dead_letter_count: int = 0
    skipped_applied: frozenset[int] = frozenset()  # notification ids this projector passes by


async def projector_state(
    conn: AsyncConnection[DictRow], projection: Projection, *, limit: int = 100
) -> ProjectorState:
    pos, updated_at = await position(conn, projection)
    cur = await conn.execute(
        "SELECT notification_id, event_id, kind, error, attempts, next_retry_at FROM projection_dead_letters"
        " WHERE projection = %s ORDER BY notification_id LIMIT %s",
        (projection.name, limit),
    )
    dead = [DeadLetterRow(**row) for row in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM public.projection_dead_letters WHERE projection = %(p)s) AS dead,"
        " ARRAY(SELECT notification_id FROM public.projection_skips WHERE projection = %(p)s) AS skips",
        {"p": projection.name},
    )
    row = await cur.fetchone()
    assert row is not None
    return ProjectorState(pos, updated_at, dead, int(row["dead"]), frozenset(row["skips"]))
