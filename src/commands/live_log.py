"""What a live feed of one execution reads from the log: who it is for, where it starts,
and the events after a position (its own events and the telemetry recorded in it)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.log import envelope_from_row
from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope
from domain.errors import FieldProblem, NotFound, ValidationFailed

Conn = AsyncConnection[DictRow]
_READ = (
    "SELECT d.kind, d.depth, d.hash, d.notification_id, e.state"
    f" FROM event_dag d JOIN {EVENTS_TABLE} e ON e.notification_id = d.notification_id"
    " WHERE d.tenant_id = %(tenant)s AND d.correlation_id = %(correlation)s AND d.notification_id > %(after)s"
    " AND (d.stream_id = %(execution)s OR (d.kind LIKE 'telemetry.%%' AND d.notification_id > %(quiet)s))"
    " ORDER BY d.notification_id LIMIT %(limit)s"
)


@dataclass(frozen=True)
class LiveTarget:
    """A checked subscription: the tenant's execution, and where a reconnect resumes."""

    tenant_id: str
    execution_id: UUID
    correlation_id: UUID
    resume_after: int | None = None  # notification id of the last event the subscriber has


@dataclass(frozen=True)
class StartPoint:
    """Where a feed starts: the replica's version, the log position, and the telemetry
    (at or before ``quiet_until``) that is not sent again."""

    version: int
    position: int
    quiet_until: int = 0


async def find_target(conn: Conn, tenant_id: str, execution_id: UUID, last_event_id: UUID | None) -> LiveTarget:
    """404 for a missing or another tenant's execution; 422 for a ``last_event_id`` that is
    not one of its events (checked before a stream starts, so the answer is a problem)."""
    cur = await conn.execute(
        f"SELECT d.correlation_id FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id"
        " WHERE e.originator_id = %s AND e.originator_version = 1 AND d.tenant_id = %s"
        " AND d.kind = 'execution.started'",
        (execution_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    target = LiveTarget(tenant_id, execution_id, row["correlation_id"])
    if last_event_id is None:
        return target
    cur = await conn.execute(
        "SELECT notification_id FROM event_dag WHERE event_id = %s AND tenant_id = %s AND correlation_id = %s"
        " AND (stream_id = %s OR kind LIKE 'telemetry.%%')",
        (last_event_id, tenant_id, target.correlation_id, execution_id),
    )
    row = await cur.fetchone()
    if row is None:
        problem = f"event {last_event_id} is not an event of execution {execution_id}"
        raise ValidationFailed([FieldProblem("last_event_id", problem, "unknown_event")])
    return LiveTarget(tenant_id, execution_id, target.correlation_id, row["notification_id"])


async def start_point(conn: Conn, target: LiveTarget, *, from_start: bool) -> StartPoint:
    """The resume point; else (without ``from_start``) just before the latest execution
    event that gives a message, so a new subscriber at once sees where the execution stands
    (or how it ended), without the telemetry recorded until now."""
    if target.resume_after is not None:
        cur = await conn.execute(
            f"SELECT coalesce(max(originator_version), 0) AS v FROM {EVENTS_TABLE}"
            " WHERE originator_id = %s AND notification_id <= %s",
            (target.execution_id, target.resume_after),
        )
        row = await cur.fetchone()
        return StartPoint(row["v"] if row else 0, target.resume_after)
    if from_start:
        return StartPoint(0, 0)
    cur = await conn.execute(  # one statement: one snapshot for both answers
        f"SELECT originator_version AS v, notification_id AS n, (SELECT max(notification_id)"
        " FROM event_dag WHERE tenant_id = %s AND correlation_id = %s) AS head"
        f" FROM {EVENTS_TABLE} WHERE originator_id = %s AND topic <> 'execution.checkpoint_taken'"
        " ORDER BY originator_version DESC LIMIT 1",
        (target.tenant_id, target.correlation_id, target.execution_id),
    )
    row = await cur.fetchone()
    assert row is not None  # find_target saw its first event
    return StartPoint(row["v"] - 1, row["n"] - 1, row["head"])


async def read_feed(conn: Conn, target: LiveTarget, after: int, quiet_until: int, limit: int) -> list[EventEnvelope]:
    """Up to ``limit`` envelopes after notification id ``after``: the execution's events and
    the telemetry of its correlation recorded after ``quiet_until``, in log order. Another
    execution's telemetry of the same correlation is among them (the caller drops it)."""
    cur = await conn.execute(
        _READ,
        {
            "tenant": target.tenant_id,
            "correlation": target.correlation_id,
            "after": after,
            "execution": target.execution_id,
            "quiet": quiet_until,
            "limit": limit,
        },
        prepare=True,
    )
    return [envelope_from_row(r) for r in await cur.fetchall()]
