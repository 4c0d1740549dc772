"""Events a projection passes by on an admin's decision (``system.event_skipped``).

The decision is an event in the log; this table is only the projector's memory of it,
kept beside the dead letters (operational state, outside the read model's schema) so a
rebuild into a fresh schema honours it too. The log stays the truth: a rebuild is handed
every skip event before it starts (``remember``), so even a lost table changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope

SKIP_KIND = "system.event_skipped"

SKIPS_DDL = [
    "CREATE TABLE IF NOT EXISTS public.projection_skips ("
    " projection text NOT NULL,"
    " notification_id bigint NOT NULL,"
    " event_id uuid NOT NULL,"
    " skip_event_id uuid NOT NULL,"
    " PRIMARY KEY (projection, notification_id))",
]


def skip_for(envelope: EventEnvelope, projection: str) -> bool:
    return envelope.kind == SKIP_KIND and envelope.payload.get("projection") == projection


async def remember(conn: AsyncConnection[DictRow], projection: str, skips: Iterable[EventEnvelope]) -> int:
    """Record the skip decisions for ``projection`` among ``skips`` and clear their dead
    letters. Idempotent. Returns how many decisions concern this projection."""
    rows = [
        (projection, int(e.payload["notification_id"]), e.payload["skipped_event_id"], e.event_id)
        for e in skips
        if skip_for(e, projection)
    ]
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO public.projection_skips (projection, notification_id, event_id, skip_event_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            rows,
        )
        await cur.executemany(
            "DELETE FROM public.projection_dead_letters WHERE projection = %s AND notification_id = %s",
            [(projection, n) for _, n, _, _ in rows],
        )
    return len(rows)
