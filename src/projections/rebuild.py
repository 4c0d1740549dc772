"""Rebuild a read model from the log into fresh tables and swap them in atomically.

The bulk of the work runs beside the live projector, into ``rm_<name>__rebuild``. The
final step takes the projection's lock (live batches wait), applies what arrived
meanwhile, and renames the schemas in one transaction: readers see either the old model
or the new one, never a half-built one. Events an admin told the projection to skip stay
skipped: the skip decisions are handed over before the bulk starts (a decision follows
its event in the log, so meeting it on the way would be too late).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import structlog
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from projections.applier import apply_batch, ensure_schema, lock_projection
from projections.base import Projection
from projections.skips import remember

log = structlog.get_logger(__name__)

LogSource = Callable[[int, int], AsyncIterator[list[EventEnvelope]]]
"""(after, upto) -> batches of the log in notification order."""
Progress = Callable[[int, int], None]
"""(done, total) for a progress bar."""
SkipDecisions = Callable[[], Awaitable[Sequence[EventEnvelope]]]
"""Every ``system.event_skipped`` event in the log."""


async def rebuild(
    conn: AsyncConnection[DictRow],
    projection: Projection,
    source: LogSource,
    head: Callable[[], Awaitable[int]],
    *,
    progress: Progress | None = None,
    skips: SkipDecisions | None = None,
) -> int:
    """Rebuild ``projection``; returns the notification id the new model is at."""
    live = projection.schema()
    fresh = f"{live}__rebuild"
    await conn.execute(f"DROP SCHEMA IF EXISTS {fresh} CASCADE")
    await ensure_schema(conn, projection, fresh)
    # Parked events are retried by the rebuild itself; what still fails is parked again.
    await conn.execute("DELETE FROM public.projection_dead_letters WHERE projection = %s", (projection.name,))
    if skips is not None:
        await remember(conn, projection.name, await skips())
    target = await head()
    done = 0
    position = 0
    async for batch in source(0, target):
        await apply_batch(conn, projection, batch, schema=fresh)
        position = batch[-1].notification_id
        done += len(batch)
        if progress:
            progress(position, target)
    async with conn.transaction():
        await lock_projection(conn, projection)
        # Events appended during the bulk phase; live batches are blocked from here on.
        final = await head()
        async for batch in source(position, final):
            await apply_batch(conn, projection, batch, schema=fresh)
            position = batch[-1].notification_id
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {live}")
        await conn.execute(f"DROP SCHEMA IF EXISTS {live}__old CASCADE")
        await conn.execute(f"ALTER SCHEMA {live} RENAME TO {live}__old")
        await conn.execute(f"ALTER SCHEMA {fresh} RENAME TO {live}")
        await conn.execute(f"DROP SCHEMA {live}__old CASCADE")
    if progress:
        progress(max(position, target), max(position, target))
    log.info("projection_rebuilt", projection=projection.name, position=position, events=done)
    return position
