"""The read side's own view of each projector: position and parked events."""

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


async def projector_state(
    conn: AsyncConnection[DictRow], projection: Projection, *, limit: int = 100
) -> ProjectorState:
    pos, updated_at = await position(conn, projection)
    cur = await conn.execute(
        "SELECT notification_id, event_id, kind, error, attempts, next_retry_at FROM projection_dead_letters"
        " WHERE projection = %s ORDER BY notification_id LIMIT %s",
        (projection.name, limit),
    )
    return ProjectorState(pos, updated_at, [DeadLetterRow(**row) for row in await cur.fetchall()])
