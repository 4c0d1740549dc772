"""Read model of durable timers: what is waiting on the clock, derived from events only.

The deadlines and retry times are recorded in the events (see ``domain.timers``), so this
table can always be rebuilt from the log and survives any restart. Besides executions'
timers it holds agents' liveness deadlines and lock grants' expiries (the
``execution_id`` column then holds the agent's or the lock's stream id). It mirrors what the
aggregate tracks (``node_deadlines``, ``retry_due``, ``deadline``): a row appears when an
event sets a time and goes away when a later event makes the timer moot. The timer runner
only reads the due rows and asks the aggregate to fire them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from domain.timers import TimerKind
from projections.base import Handler, Projection

_EXECUTION = " WHERE tenant_id = %s AND execution_id = %s"
_UPSERT = (
    "INSERT INTO timers (tenant_id, execution_id, kind, node_id, attempt, due_at) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (tenant_id, execution_id, kind, node_id)"
    " DO UPDATE SET attempt = excluded.attempt, due_at = excluded.due_at"
)


def _moment(value: object) -> datetime:
    """Payloads arrive as JSON: times are ISO strings."""
    return value if isinstance(value, datetime) else msgspec.convert(value, datetime)


async def _drop(cur: AsyncCursor[DictRow], e: EventEnvelope, kind: TimerKind, node_id: str) -> None:
    await cur.execute(
        "DELETE FROM timers" + _EXECUTION + " AND kind = %s AND node_id = %s",
        (e.tenant_id, e.stream_id, kind.value, node_id),
    )


async def _started(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A run's deadline, set when it starts and armed again when a failed run resumes."""
    deadline = e.payload.get("deadline")
    if deadline is not None:
        due = _moment(deadline)
        await cur.execute(_UPSERT, (e.tenant_id, e.stream_id, TimerKind.EXECUTION_TIMEOUT.value, "", 0, due))


async def _scheduled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A (re)scheduled attempt ends the wait for its retry and may start a timeout."""
    node, deadline = e.payload["node_id"], e.payload.get("deadline")
    await _drop(cur, e, TimerKind.RETRY, node)
    if deadline is not None:
        attempt = e.payload.get("attempt", 1)
        due = _moment(deadline)
        await cur.execute(_UPSERT, (e.tenant_id, e.stream_id, TimerKind.NODE_TIMEOUT.value, node, attempt, due))


async def _node_done(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """The attempt is over (completed, decided or failed): its timeout no longer applies."""
    await _drop(cur, e, TimerKind.NODE_TIMEOUT, e.payload["node_id"])


async def _node_failed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await _node_done(cur, e)
    retry_at = e.payload.get("retry_at")
    if retry_at is not None:
        node, attempt = e.payload["node_id"], e.payload.get("attempt", 1)
        due = _moment(retry_at)
        await cur.execute(_UPSERT, (e.tenant_id, e.stream_id, TimerKind.RETRY.value, node, attempt, due))


async def _ended(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute("DELETE FROM timers" + _EXECUTION, (e.tenant_id, e.stream_id))


async def _agent_alive(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A registration or heartbeat sets the agent's liveness deadline (one per agent)."""
    due = _moment(e.payload["offline_at"])
    await cur.execute(_UPSERT, (e.tenant_id, e.stream_id, TimerKind.AGENT_OFFLINE.value, "", 0, due))


async def _agent_gone(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await _drop(cur, e, TimerKind.AGENT_OFFLINE, "")


async def _lock_granted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A grant (its lock id is the event's id) or its extension sets the grant's expiry."""
    lock_id = str(e.event_id if e.kind == "lock.acquired" else e.payload["lock_id"])
    due = _moment(e.payload["expires_at"])
    await cur.execute(_UPSERT, (e.tenant_id, e.stream_id, TimerKind.LOCK_EXPIRY.value, lock_id, 0, due))


async def _lock_ended(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await _drop(cur, e, TimerKind.LOCK_EXPIRY, str(e.payload["lock_id"]))


class TimersProjection(Projection):
    name: ClassVar[str] = "timers"
    ddl: ClassVar[list[str]] = [
        # node_id is '' for the execution's own timer, so the key has no NULLs.
        "CREATE TABLE IF NOT EXISTS timers ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, kind text NOT NULL,"
        " node_id text NOT NULL, attempt integer NOT NULL, due_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, execution_id, kind, node_id))",
        "CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "execution.started": _started,
        "execution.resumed": _started,
        "execution.node_scheduled": _scheduled,
        "execution.node_completed": _node_done,
        "execution.decision_made": _node_done,
        "execution.node_failed": _node_failed,
        **dict.fromkeys(
            ("execution.succeeded", "execution.failed", "execution.cancelled", "execution.timed_out"), _ended
        ),
        **dict.fromkeys(("agent.registered", "agent.heartbeat"), _agent_alive),
        **dict.fromkeys(("agent.went_offline", "agent.unregistered"), _agent_gone),
        **dict.fromkeys(("lock.acquired", "lock.extended"), _lock_granted),
        **dict.fromkeys(("lock.released", "lock.expired", "lock.revoked"), _lock_ended),
    }


@dataclass(frozen=True)
class DueTimer:
    tenant_id: str
    execution_id: UUID
    kind: TimerKind
    node_id: str | None  # None for the execution's own timer
    attempt: int
    due_at: datetime


async def due_timers(conn: AsyncConnection[DictRow], now: datetime, limit: int) -> list[DueTimer]:
    """Timers due at ``now``, the most overdue first (all tenants: the runner is the system)."""
    cur = await conn.execute(
        f"SELECT tenant_id, execution_id, kind, node_id, attempt, due_at FROM {TimersProjection.schema()}.timers"
        " WHERE due_at <= %s ORDER BY due_at, execution_id, kind, node_id LIMIT %s",
        (now, limit),
    )
    return [
        DueTimer(
            r["tenant_id"], r["execution_id"], TimerKind(r["kind"]), r["node_id"] or None, r["attempt"], r["due_at"]
        )
        for r in await cur.fetchall()
    ]
