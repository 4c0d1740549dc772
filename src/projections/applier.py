"""Applying events to a read model exactly once: rows and position in one transaction.

The tracking row is locked for the batch and every event at or below the recorded
position is ignored, so a redelivered message changes nothing. An event whose handler
fails is parked in ``projection_dead_letters`` (inside a savepoint, so its partial writes
are undone) and retried later with backoff: the stream never stalls silently. An event an
admin told this projection to skip (``projections.skips``) is passed by, never applied.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from domain.backoff import exponential_backoff
from domain.envelope import EventEnvelope
from projections.base import OPS_DDL, TRACKING_DDL, Projection
from projections.metrics import PROJECTION_APPLIED, PROJECTION_ERRORS, PROJECTION_LAG
from projections.skips import SKIPS_DDL, remember, skip_for

log = structlog.get_logger(__name__)
MAX_BACKOFF_SECONDS = 3600.0


def backoff_seconds(attempts: int) -> float:
    """1 s, 2 s, 4 s ... capped at an hour."""
    return exponential_backoff(attempts, 1.0, MAX_BACKOFF_SECONDS)


async def ensure_schema(conn: AsyncConnection[DictRow], projection: Projection, schema: str | None = None) -> None:
    schema = schema or projection.schema()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('quipu-ddl'))")
        for stmt in (*OPS_DDL, *SKIPS_DDL):
            await conn.execute(stmt)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        for stmt in (*projection.ddl, *TRACKING_DDL):
            await conn.execute(stmt)


def _lock_key(projection: Projection) -> str:
    return "quipu-projection:" + projection.name


async def lock_projection(conn: AsyncConnection[DictRow], projection: Projection) -> None:
    """Serialises live batches with a rebuild's final swap (held until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_lock_key(projection),))


async def apply_batch(
    conn: AsyncConnection[DictRow],
    projection: Projection,
    envelopes: Sequence[EventEnvelope],
    *,
    schema: str | None = None,
) -> int:
    """Apply what is new in ``envelopes`` (ordered by notification id). Returns how many."""
    schema = schema or projection.schema()
    applied = 0
    async with conn.transaction():
        # One round trip for the preamble. The lock serialises with a rebuild's swap.
        # synchronous_commit off: a read-model commit lost in a Postgres crash is
        # replayed from the log when the projector reconnects (see bus.consumer), so
        # it need not wait for the WAL flush.
        await conn.execute(
            "SELECT CASE WHEN %(live)s THEN pg_advisory_xact_lock(hashtext(%(key)s)) END,"
            " set_config('search_path', %(path)s, true), set_config('synchronous_commit', 'off', true)",
            {
                "live": schema == projection.schema(),
                "key": _lock_key(projection),
                "path": f"{schema}, public",
            },
            prepare=True,
        )
        # The position and the skip decisions ahead of it in one round trip.
        cur = await conn.execute(
            "SELECT t.notification_id, ARRAY(SELECT s.notification_id FROM public.projection_skips s"
            " WHERE s.projection = %s AND s.notification_id > t.notification_id) AS skips"
            " FROM tracking t FOR UPDATE OF t",
            (projection.name,),
            prepare=True,
        )
        row = await cur.fetchone()
        assert row is not None, f"projection {projection.name} has no tracking row"
        position = int(row["notification_id"])
        skipped = set(row["skips"])
        fresh: list[EventEnvelope] = []
        for envelope in envelopes:
            if envelope.notification_id > position:  # at or below: already applied
                fresh.append(envelope)
                position = envelope.notification_id
        last = fresh[-1] if fresh else None
        decisions = [e for e in fresh if skip_for(e, projection.name)]
        if decisions:  # a skip may follow its event within one batch: honour it at once
            await remember(conn, projection.name, decisions)
            skipped.update(int(e.payload["notification_id"]) for e in decisions)
        wanted = [e for e in fresh if e.kind in projection.handlers and e.notification_id not in skipped]
        if wanted:
            applied = await _apply_all_or_isolate(conn, projection, wanted)
        if last is not None:
            await conn.execute(
                "UPDATE tracking SET notification_id = %s, applied = applied + %s, updated_at = now()",
                (position, applied),
            )
    if last is not None and schema == projection.schema():
        PROJECTION_APPLIED.labels(projection.name).inc(applied)
        PROJECTION_LAG.labels(projection.name).set(max(0.0, time.time() - last.occurred_at.timestamp()))
    return applied


async def _apply_all_or_isolate(
    conn: AsyncConnection[DictRow], projection: Projection, envelopes: list[EventEnvelope]
) -> int:
    """Happy path: the whole batch under one savepoint, statements pipelined (one round
    trip instead of three per event). If any handler fails, undo the batch and replay it
    event by event, each under its own savepoint, so only the failing events are parked."""
    try:
        async with conn.cursor() as read:
            await projection.prepare(read, envelopes)
        async with conn.transaction(), conn.pipeline(), conn.cursor() as write:
            for envelope in envelopes:
                await projection.apply(write, envelope)
        return len(envelopes)
    except Exception:
        applied = 0
        async with conn.cursor() as write:
            for envelope in envelopes:
                try:
                    async with conn.transaction():
                        await projection.apply(write, envelope)
                    applied += 1
                except Exception as error:  # any handler bug is parked, never fatal to the stream
                    await _park(conn, projection, envelope, error)
        return applied


async def _park(
    conn: AsyncConnection[DictRow], projection: Projection, envelope: EventEnvelope, error: Exception
) -> None:
    PROJECTION_ERRORS.labels(projection.name).inc()
    log.error(
        "projection_event_failed",
        projection=projection.name,
        notification_id=envelope.notification_id,
        kind=envelope.kind,
        error=repr(error),
    )
    await conn.execute(
        "INSERT INTO public.projection_dead_letters (projection, notification_id, event_id, kind, error, next_retry_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (projection, notification_id) DO UPDATE SET error = excluded.error,"
        " attempts = projection_dead_letters.attempts + 1, next_retry_at = excluded.next_retry_at",
        (
            projection.name,
            envelope.notification_id,
            envelope.event_id,
            envelope.kind,
            repr(error)[:4000],
            datetime.now(UTC) + timedelta(seconds=backoff_seconds(1)),
        ),
    )


async def retry_dead_letters(
    conn: AsyncConnection[DictRow],
    projection: Projection,
    fetch: Callable[[int], Awaitable[EventEnvelope | None]],
) -> int:
    """Retry parked events that are due. Returns how many now succeeded."""
    cur = await conn.execute(
        "SELECT notification_id, attempts FROM public.projection_dead_letters"
        " WHERE projection = %s AND next_retry_at <= now() ORDER BY notification_id LIMIT 100",
        (projection.name,),
    )
    due = await cur.fetchall()
    healed = 0
    for item in due:
        envelope = await fetch(item["notification_id"])
        async with conn.transaction():
            await lock_projection(conn, projection)
            await conn.execute(f"SET LOCAL search_path TO {projection.schema()}, public")
            try:
                async with conn.transaction(), conn.cursor() as write:
                    if envelope is not None:
                        await projection.apply(write, envelope)
            except Exception as error:
                attempts = item["attempts"] + 1
                await conn.execute(
                    "UPDATE public.projection_dead_letters SET attempts = %s, error = %s, next_retry_at = %s"
                    " WHERE projection = %s AND notification_id = %s",
                    (
                        attempts,
                        repr(error)[:4000],
                        datetime.now(UTC) + timedelta(seconds=backoff_seconds(attempts)),
                        projection.name,
                        item["notification_id"],
                    ),
                )
                continue
            await conn.execute(
                "DELETE FROM public.projection_dead_letters WHERE projection = %s AND notification_id = %s",
                (projection.name, item["notification_id"]),
            )
            healed += 1
    return healed


async def position(conn: AsyncConnection[DictRow], projection: Projection) -> tuple[int, datetime | None]:
    cur = await conn.execute(f"SELECT notification_id, updated_at FROM {projection.schema()}.tracking")
    row = await cur.fetchone()
    return (int(row["notification_id"]), row["updated_at"]) if row else (0, None)
