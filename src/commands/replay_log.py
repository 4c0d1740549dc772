"""Replaying an execution's past: its events and telemetry between two points, in log
order, optionally paced as they were recorded (``GET /replay``, ``quipu replay``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.as_of import (
    REPLAY_SET,
    Conn,
    Point,
    Stream,
    find_stream,
    head_version,
    invalid_point,
    parse_point,
    resolve_point,
)
from commands.log import envelope_from_row
from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope

MAX_PACE_DELAY = 5.0  # seconds: a long pause in the recording is not waited out in full


@dataclass(frozen=True)
class ReplayRange:
    """Notification ids ``after`` (exclusive) to ``upto`` (inclusive; None: the end)."""

    stream: Stream
    after: int = 0
    upto: int | None = None

    @property
    def empty(self) -> bool:
        return self.upto is not None and self.upto <= self.after

    def params(self, **extra: Any) -> dict[str, Any]:
        s = self.stream
        return {"tenant": s.tenant_id, "correlation": s.correlation_id, "stream": s.stream_id, **extra}


async def _bound(conn: Conn, stream: Stream, text: str, field: str, *, lower: bool, clamp: bool = False) -> int | None:
    """The notification id a ``from`` (lower) or ``to`` bound names; None: no event fits.
    With ``clamp``, a version past the stream's last one means the last one: ``to=40`` reads
    "up to version 40", which a shorter run satisfies with all it has."""
    point = parse_point(text, field)
    if clamp and point.version is not None:
        point = Point(version=min(point.version, await head_version(conn, stream)))
    if point.at is not None:
        aggregate = "min" if lower else "max"
        compare = ">=" if lower else "<="
        cur = await conn.execute(
            f"SELECT {aggregate}(d.notification_id) AS n FROM event_dag d{REPLAY_SET}"
            f" AND d.occurred_at {compare} %(at)s",
            ReplayRange(stream).params(at=point.at),
        )
        row = await cur.fetchone()
        return None if row is None or row["n"] is None else int(row["n"])
    if point.event_id is not None:
        cur = await conn.execute(
            f"SELECT d.notification_id FROM event_dag d{REPLAY_SET} AND d.event_id = %(event)s",
            ReplayRange(stream).params(event=point.event_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise invalid_point(
                field, f"event {point.event_id} is not an event of execution {stream.stream_id}", "unknown_event"
            )
        return int(row["notification_id"])
    return (await resolve_point(conn, stream, point, field)).notification_id


async def replay_range(
    conn: Conn,
    tenant_id: str | None,
    execution_id: UUID,
    *,
    start: str | None = None,
    end: str | None = None,
    resume_after: UUID | None = None,
) -> ReplayRange:
    """Check the execution (404) and resolve inclusive ``start``/``end`` points (422).
    ``resume_after`` (an SSE ``Last-Event-ID``) starts just after that event instead."""
    stream = await find_stream(conn, tenant_id, execution_id, "execution")
    after, upto = 0, None
    first = last = None
    if start is not None:
        first = await _bound(conn, stream, start, "from", lower=True)
        after = first - 1 if first is not None else 1 << 62
    if end is not None:
        last = await _bound(conn, stream, end, "to", lower=False, clamp=True)
        upto = last if last is not None else 0
        if first is not None and last is not None and last < first:
            raise invalid_point("to", "'to' is before 'from'", "invalid_range")
    if resume_after is not None:
        after = max(after, await _bound(conn, stream, str(resume_after), "Last-Event-ID", lower=True) or 0)
    return ReplayRange(stream, after, upto)


async def log_position(conn: Conn, tenant_id: str, execution_id: UUID, text: str, field: str = "as_of") -> int:
    """The notification id up to which the execution's replay set is as of ``text``
    (0 when that is before its first event)."""
    stream = await find_stream(conn, tenant_id, execution_id, "execution")
    return await _bound(conn, stream, text, field, lower=False) or 0


async def count_replay(conn: Conn, r: ReplayRange) -> int:
    """How many events the range holds (for a progress bar)."""
    if r.empty:
        return 0
    cur = await conn.execute(
        f"SELECT count(*) AS n FROM event_dag d{REPLAY_SET} AND d.notification_id > %(after)s"
        " AND (%(upto)s::bigint IS NULL OR d.notification_id <= %(upto)s::bigint)",
        r.params(after=r.after, upto=r.upto),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def read_replay(conn: Conn, r: ReplayRange, after: int, limit: int) -> list[EventEnvelope]:
    """Up to ``limit`` envelopes of the range after notification id ``after``, in log order."""
    if r.upto is not None and after >= r.upto:
        return []
    cur = await conn.execute(
        f"SELECT d.kind, d.depth, d.hash, d.notification_id, e.state FROM event_dag d"
        f" JOIN {EVENTS_TABLE} e ON e.notification_id = d.notification_id{REPLAY_SET}"
        " AND d.notification_id > %(after)s AND (%(upto)s::bigint IS NULL OR d.notification_id <= %(upto)s::bigint)"
        " ORDER BY d.notification_id LIMIT %(limit)s",
        r.params(after=after, upto=r.upto, limit=limit),
        prepare=True,
    )
    return [envelope_from_row(row) for row in await cur.fetchall()]


def pace_delay(previous: datetime | None, current: datetime, pace: float, cap: float = MAX_PACE_DELAY) -> float:
    """Seconds to wait before sending ``current``: the recorded gap divided by ``pace``
    (2 = twice as fast), at most ``cap``; 0 when unpaced, first, or out of order."""
    if pace <= 0 or previous is None:
        return 0.0
    return min(max((current - previous).total_seconds() / pace, 0.0), cap)


async def replay(
    connect: Callable[[], AbstractAsyncContextManager[Conn]], r: ReplayRange, *, pace: float = 0.0, batch: int = 500
) -> AsyncIterator[EventEnvelope]:
    """The range's envelopes in log order, paced. A connection is held per batch only,
    so a slow, paced replay does not keep one from the pool for its whole length."""
    position, previous = r.after, None
    while True:
        async with connect() as conn:
            envelopes = await read_replay(conn, r, position, batch)
        for envelope in envelopes:
            delay = pace_delay(previous, envelope.occurred_at, pace)
            if delay:
                await asyncio.sleep(delay)
            previous = envelope.occurred_at
            yield envelope
        if len(envelopes) < batch:
            return
        position = envelopes[-1].notification_id
