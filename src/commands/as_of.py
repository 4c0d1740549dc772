"""Points in a stream's past: ``as_of`` (and replay's ``from``/``to``) resolved to a version.

A point is written as a version number (``42``), an event id (a UUID) or an ISO 8601
timestamp (the state after the last event at or before it; no zone means UTC). It is
resolved against the write side (events table and DAG index), never a read model, so
there is no lag (invariant 5, docs/architecture.md), and always for one tenant: another tenant's stream
answers 404 and another stream's event 422, exactly like a missing one.

An execution's *replay set* is its own events plus the glass-box telemetry recorded in
it (``telemetry.*`` events share the execution's correlation id). A telemetry event is
also a valid point of the execution: the state is the one its node saw when it was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.schema import EVENTS_TABLE
from domain.errors import FieldProblem, NotFound, ValidationFailed

Conn = AsyncConnection[DictRow]
_ROW = "d.event_id, d.version, d.occurred_at, d.notification_id"
_STREAM = f"FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id WHERE e.originator_id = %s"


@dataclass(frozen=True)
class Point:
    """A parsed point: exactly one of the three is set."""

    version: int | None = None
    event_id: UUID | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class StreamPoint:
    """A point resolved to one event of the stream: the state right after it."""

    version: int
    event_id: UUID
    occurred_at: datetime
    notification_id: int


@dataclass(frozen=True)
class Stream:
    """A stream the tenant owns, with what its first event says."""

    stream_id: UUID
    tenant_id: str
    correlation_id: UUID
    category: str


def invalid_point(field: str, message: str, code: str = "invalid_point") -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message, code)])


def parse_point(text: str, field: str = "as_of") -> Point:
    """``42`` -> version, a UUID -> event id, ISO 8601 -> timestamp (naive = UTC)."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        version = int(value)
        if version < 1:
            raise invalid_point(field, "versions start at 1")
        return Point(version=version)
    try:
        return Point(event_id=UUID(value))
    except ValueError:
        pass
    # A '+' in an unencoded query string arrives as a space: "…T10:00:00 02:00".
    for candidate in (value, "+".join(value.rsplit(" ", 1))):
        try:
            at = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return Point(at=at if at.tzinfo else at.replace(tzinfo=UTC))
    raise invalid_point(field, f"'{text}' is not a version number, an event id or an ISO 8601 timestamp")


async def find_stream(conn: Conn, tenant_id: str | None, stream_id: UUID, category: str) -> Stream:
    """The stream if ``tenant_id`` owns it (any tenant when None) and it is a ``category``."""
    cur = await conn.execute(
        f"SELECT d.tenant_id, d.correlation_id, d.kind {_STREAM} AND e.originator_version = 1", (stream_id,)
    )
    row = await cur.fetchone()
    if (
        row is None
        or (tenant_id is not None and row["tenant_id"] != tenant_id)
        or not row["kind"].startswith(category + ".")
    ):
        raise NotFound(f"{category} {stream_id} not found")
    return Stream(stream_id, row["tenant_id"], row["correlation_id"], category)


def _point(row: dict[str, Any]) -> StreamPoint:
    return StreamPoint(row["version"], row["event_id"], row["occurred_at"], row["notification_id"])


async def resolve_point(conn: Conn, stream: Stream, point: Point, field: str = "as_of") -> StreamPoint:
    """The stream's event that ``point`` names (for a timestamp: the last one at or before
    it; for a telemetry event of an execution: the last execution event before it)."""
    name = f"{stream.category} {stream.stream_id}"
    if point.version is not None:
        cur = await conn.execute(
            f"SELECT {_ROW} {_STREAM} AND e.originator_version = %s", (stream.stream_id, point.version)
        )
        row = await cur.fetchone()
        if row is None:
            head = await head_version(conn, stream)
            raise invalid_point(
                field, f"{name} has no version {point.version}; its versions are 1 to {head}", "no_version"
            )
        return _point(row)
    if point.event_id is not None:
        cur = await conn.execute(
            "SELECT stream_id, version, kind, correlation_id, notification_id FROM event_dag"
            " WHERE event_id = %s AND tenant_id = %s",
            (point.event_id, stream.tenant_id),
        )
        found = await cur.fetchone()
        if found is not None and found["stream_id"] == stream.stream_id:
            return await resolve_point(conn, stream, Point(version=found["version"]), field)
        if (
            found is not None
            and found["correlation_id"] == stream.correlation_id
            and found["kind"].startswith("telemetry.")
        ):
            cur = await conn.execute(
                f"SELECT {_ROW} {_STREAM} AND e.notification_id < %s ORDER BY e.originator_version DESC LIMIT 1",
                (stream.stream_id, found["notification_id"]),
            )
            row = await cur.fetchone()
            if row is not None:
                return _point(row)
        raise invalid_point(field, f"event {point.event_id} is not an event of {name}", "unknown_event")
    assert point.at is not None
    cur = await conn.execute(
        f"SELECT {_ROW} {_STREAM} AND d.occurred_at <= %s ORDER BY e.originator_version DESC LIMIT 1",
        (stream.stream_id, point.at),
    )
    row = await cur.fetchone()
    if row is None:
        first = await resolve_point(conn, stream, Point(version=1), field)
        raise invalid_point(
            field,
            f"{point.at.isoformat()} is before {name} began (its first event is at {first.occurred_at.isoformat()})",
            "before_first_event",
        )
    return _point(row)


async def head_version(conn: Conn, stream: Stream) -> int:
    """The stream's last version (0 before its first event)."""
    cur = await conn.execute(
        f"SELECT coalesce(max(originator_version), 0) AS v FROM {EVENTS_TABLE} WHERE originator_id = %s",
        (stream.stream_id,),
    )
    row = await cur.fetchone()
    return int(row["v"]) if row else 0


# The stream's first event and the point's own row in one round trip: time travel is read
# often, and an event id or a version of the stream itself is by far the common case.
_AT_EVENT = "p.event_id = %(event)s AND p.tenant_id = f.tenant_id AND p.stream_id = %(stream)s"
_AT_VERSION = (
    f"p.notification_id = (SELECT notification_id FROM {EVENTS_TABLE}"
    " WHERE originator_id = %(stream)s AND originator_version = %(version)s)"
)
_STREAM_AND_POINT = (
    "SELECT f.tenant_id, f.correlation_id, f.kind, p.event_id, p.version, p.occurred_at, p.notification_id"
    f" FROM {EVENTS_TABLE} e JOIN event_dag f ON f.notification_id = e.notification_id"
    " LEFT JOIN event_dag p ON {on}"
    " WHERE e.originator_id = %(stream)s AND e.originator_version = 1"
)


async def resolve_as_of(
    conn: Conn, tenant_id: str, stream_id: UUID, category: str, as_of: str | None
) -> tuple[Stream, StreamPoint | None]:
    """404 unless the tenant owns the stream; the point ``as_of`` names (None: now)."""
    point = parse_point(as_of) if as_of is not None else None
    if point is None or point.at is not None:
        stream = await find_stream(conn, tenant_id, stream_id, category)
        return stream, await resolve_point(conn, stream, point) if point else None
    on = _AT_EVENT if point.event_id is not None else _AT_VERSION
    params = {"stream": stream_id, "event": point.event_id, "version": point.version}
    cur = await conn.execute(_STREAM_AND_POINT.format(on=on), params, prepare=True)
    row = await cur.fetchone()
    if row is None or row["tenant_id"] != tenant_id or not row["kind"].startswith(category + "."):
        raise NotFound(f"{category} {stream_id} not found")
    stream = Stream(stream_id, row["tenant_id"], row["correlation_id"], category)
    if row["event_id"] is None:  # not an event of the stream: telemetry, or the errors' wording
        return stream, await resolve_point(conn, stream, point)
    return stream, _point(row)


# -- replay: the execution's replay set between two points ------------------------------------
REPLAY_SET = (
    " WHERE d.tenant_id = %(tenant)s AND d.correlation_id = %(correlation)s"
    " AND (d.stream_id = %(stream)s OR d.kind LIKE 'telemetry.%%')"
)
