"""Waiting until read models have applied a log position (read-your-writes).

A command's response carries the notification id of its last event (``Quipu-Log-Position``).
A query that passes it as ``min_position`` waits here until every read model the query reads
has applied at least that position, then reads. Each projection stores its rows and its
position (``rm_<name>.tracking``) in one transaction, so once the position is reached, the
write is in the rows - on the primary and, as physical replication replays whole
transactions in commit order, on any hot standby that shows that position.

Why polling and not LISTEN/NOTIFY: a standby neither delivers nor sends notifications, and a
query may read from one (``QUIPU_READ_DATABASE_URL``). Each poll is one short query on a
connection borrowed for that query only, so a waiting request never holds a pool slot while
it sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from projections.registry import PROJECTIONS

ReadPool = AsyncConnectionPool[AsyncConnection[DictRow]]

DEFAULT_WAIT_MS = 5_000
MAX_WAIT_MS = 30_000  # a request must not park a connection-bound client for longer
_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.2


class NotYetApplied(Exception):
    """The read models had not applied the position when the wait ran out."""

    def __init__(self, wanted: int, applied: int, projections: Sequence[str]) -> None:
        super().__init__(f"read models {', '.join(projections)} are at log position {applied}, not yet {wanted}")
        self.wanted = wanted
        self.applied = applied
        self.projections = tuple(projections)


def _position_query(projections: Sequence[str]) -> sql.Composed:
    parts = [
        sql.SQL("SELECT notification_id FROM {}.tracking").format(sql.Identifier(PROJECTIONS[name].schema()))
        for name in projections
    ]
    return sql.SQL("SELECT coalesce(min(notification_id), 0) AS applied FROM ({}) AS t").format(
        sql.SQL(" UNION ALL ").join(parts)
    )


async def applied_position(pool: ReadPool, projections: Sequence[str]) -> int:
    """The lowest position the named read models have all applied (0: none yet)."""
    async with pool.connection() as conn:
        cur = await conn.execute(_position_query(projections))
        row = await cur.fetchone()
    return int(row["applied"]) if row else 0


def bounded_wait_ms(configured: int) -> int:
    """The configured wait, kept within 0 and ``MAX_WAIT_MS``."""
    return max(0, min(configured, MAX_WAIT_MS))


async def wait_until_applied(pool: ReadPool, projections: Sequence[str], position: int, wait_ms: int) -> int:
    """Returns the applied position once it is at least ``position``; raises ``NotYetApplied``
    when ``wait_ms`` (bounded by ``MAX_WAIT_MS``) passes first."""
    deadline = time.monotonic() + bounded_wait_ms(wait_ms) / 1000
    pause = _FIRST_PAUSE
    while True:
        applied = await applied_position(pool, projections)
        if applied >= position:
            return applied
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotYetApplied(position, applied, projections)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)
