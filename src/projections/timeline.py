"""Read model of execution timelines: every event of a run, in log order, with a stable type.

A timeline holds the execution's own events (``execution.*``) and the glass-box telemetry
recorded inside its nodes (``telemetry.*``, whose payload names the execution). Each row
gets a short ``event_type`` that clients filter on; the names follow the Analemma OS reference's
timeline event types (docs/architecture.md, Reference APIs) where it has one, and the mapping is decided here, once:

    execution.started                             execution_start
    execution.node_scheduled  (approval node)     hitp_triggered   (a person is asked)
    execution.node_scheduled  (any other node)    node_scheduled
    execution.node_started                        node_started     (a worker picked it up)
    execution.node_completed                      node_completed
    execution.node_skipped                        node_skipped
    execution.node_failed     (retry_at set)      node_retry       (another attempt follows)
    execution.node_failed     (no retry)          error            (the failure ends the node)
    execution.decision_made                       decision
    execution.approval_answered (approved)        hitp_resumed
    execution.approval_answered (rejected)        hitp_rejected
    execution.checkpoint_taken                    checkpoint_created
    execution.paused / resumed                    execution_paused / execution_resumed
    execution.succeeded / failed / cancelled /    execution_end    (``data.status`` says which)
      timed_out
    telemetry.llm_call / tool_call / thought      llm_call / tool_call / thought

The ``event_types`` filter also takes the reference's names for three of them, as aliases
(``TYPE_ALIASES``; rows keep Quipu's type): ``segment_start`` is ``node_started``,
``segment_end`` is ``node_completed`` and ``self_healing`` (automatic error recovery) is
``node_retry``.

Whether a failure is retried is recorded on the event itself (``retry_at``), so the type is
known when the row is written and never changes afterwards.

``data`` is the payload without what the row already says (node id, execution id) and
without bulk: the workflow definition of ``execution.started`` is dropped (the workflow
resource has it). A checkpoint's ``state`` is stored but only returned when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection

_ENDINGS = {
    "execution.succeeded": "succeeded",
    "execution.failed": "failed",
    "execution.cancelled": "cancelled",
    "execution.timed_out": "timed_out",
}
_SIMPLE = {
    "execution.started": "execution_start",
    "execution.node_started": "node_started",
    "execution.node_completed": "node_completed",
    "execution.node_skipped": "node_skipped",
    "execution.decision_made": "decision",
    "execution.checkpoint_taken": "checkpoint_created",
    "execution.paused": "execution_paused",
    "execution.resumed": "execution_resumed",
    "telemetry.llm_call": "llm_call",
    "telemetry.tool_call": "tool_call",
    "telemetry.thought": "thought",
}
EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(
        {
            *_SIMPLE.values(),
            "node_scheduled",
            "hitp_triggered",
            "node_retry",
            "error",
            "hitp_resumed",
            "hitp_rejected",
            "execution_end",
        }
    )
)
"""Every ``event_type`` a timeline row can have (what the ``event_types`` filter accepts)."""

TYPE_ALIASES: dict[str, str] = {
    "segment_start": "node_started",
    "segment_end": "node_completed",
    "self_healing": "node_retry",
}
"""The Analemma OS reference's names the ``event_types`` filter accepts for Quipu's types."""

_DROPPED = frozenset({"node_id", "execution_id", "definition", "request_hash"})


def event_type(kind: str, payload: dict[str, Any]) -> str:
    """The timeline type of an event (see the module docstring)."""
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in _ENDINGS:
        return "execution_end"
    if kind == "execution.node_scheduled":
        return "hitp_triggered" if payload.get("node_type") == "approval" else "node_scheduled"
    if kind == "execution.node_failed":
        return "node_retry" if payload.get("retry_at") else "error"
    if kind == "execution.approval_answered":
        return "hitp_resumed" if payload.get("approved") else "hitp_rejected"
    raise KeyError(f"'{kind}' has no timeline type")


async def _record(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    telemetry = e.kind.startswith("telemetry.")
    execution_id = UUID(str(e.payload["execution_id"])) if telemetry else e.stream_id
    data = {k: v for k, v in e.payload.items() if k not in _DROPPED}
    if e.kind in _ENDINGS:
        data["status"] = _ENDINGS[e.kind]
    # The applier already skips redelivered events; the conflict clause keeps a replay of
    # the same event (e.g. a dead letter retried after a partial write) harmless too.
    await cur.execute(
        "INSERT INTO entries (tenant_id, execution_id, event_id, notification_id, kind, event_type,"
        " node_id, occurred_at, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, event_id) DO NOTHING",
        (
            e.tenant_id,
            execution_id,
            e.event_id,
            e.notification_id,
            e.kind,
            event_type(e.kind, e.payload),
            e.payload.get("node_id"),
            e.occurred_at,
            Jsonb(data),
        ),
    )


_KINDS = (
    *_SIMPLE,
    *_ENDINGS,
    "execution.node_scheduled",
    "execution.node_failed",
    "execution.approval_answered",
)


class TimelineProjection(Projection):
    name: ClassVar[str] = "timeline"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS entries ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, event_id uuid NOT NULL,"
        " notification_id bigint NOT NULL, kind text NOT NULL, event_type text NOT NULL,"
        " node_id text, occurred_at timestamptz NOT NULL, data jsonb NOT NULL,"
        " PRIMARY KEY (tenant_id, event_id))",
        "CREATE INDEX IF NOT EXISTS entries_execution ON entries (tenant_id, execution_id, notification_id)",
    ]
    handlers: ClassVar[dict[str, Handler]] = dict.fromkeys(_KINDS, _record)


@dataclass(frozen=True)
class TimelineFilter:
    """What the caller asked for; times are inclusive bounds on ``occurred_at``."""

    event_types: tuple[str, ...] = ()
    node_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.event_types) or any(v is not None for v in (self.node_id, self.start_time, self.end_time))


@dataclass(frozen=True)
class TimelineEntry:
    event_id: UUID
    notification_id: int
    occurred_at: datetime
    event_type: str
    kind: str
    node_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class TimelineSummary:
    total_events: int  # matching the filter, before paging
    counts_by_type: dict[str, int]
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None  # start to end, or to now while the run goes on


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    summary: TimelineSummary


_TABLE = f"{TimelineProjection.schema()}.entries"


async def read_timeline(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    execution_id: UUID,
    wanted: TimelineFilter,
    *,
    include_state: bool,
    limit: int,
    offset: int,
    upto: int | None = None,
    at: datetime | None = None,
) -> Timeline:
    """One page of the timeline in log order, with counts over everything the filter matches.

    As of a point: only rows up to notification id ``upto`` (an event's place in the log) or
    that occurred at or before ``at``; the summary's end and duration are as of then too
    (a run that had not ended is measured to that point, not to now)."""
    if at is not None:
        wanted = replace(wanted, end_time=min(wanted.end_time, at) if wanted.end_time else at)
    bound = upto if upto is not None else 1 << 62
    where = " WHERE tenant_id = %s AND execution_id = %s AND notification_id <= %s"
    params: list[Any] = [tenant_id, execution_id, bound]
    for clause, value in (
        (" AND event_type = ANY(%s)", list(wanted.event_types) or None),
        (" AND node_id = %s", wanted.node_id),
        (" AND occurred_at >= %s", wanted.start_time),
        (" AND occurred_at <= %s", wanted.end_time),
    ):
        if value is not None:
            where += clause
            params.append(value)
    cur = await conn.execute(f"SELECT event_type, count(*) AS n FROM {_TABLE}{where} GROUP BY event_type", params)
    counts = {r["event_type"]: int(r["n"]) for r in await cur.fetchall()}
    # The state of a checkpoint can be large: it leaves the database only when asked for.
    data = (
        "data" if include_state else "CASE WHEN kind = 'execution.checkpoint_taken' THEN data - 'state' ELSE data END"
    )
    cur = await conn.execute(
        f"SELECT event_id, notification_id, occurred_at, event_type, kind, node_id, {data} AS data"
        f" FROM {_TABLE}{where} ORDER BY notification_id LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    entries = [TimelineEntry(**r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT min(occurred_at) FILTER (WHERE event_type = 'execution_start') AS started_at,"
        " max(occurred_at) FILTER (WHERE event_type = 'execution_end') AS ended_at,"
        " max(occurred_at) AS last_at"
        f" FROM {_TABLE} WHERE tenant_id = %s AND execution_id = %s AND notification_id <= %s"
        " AND (%s::timestamptz IS NULL OR occurred_at <= %s::timestamptz)",
        (tenant_id, execution_id, bound, at, at),
    )
    span = await cur.fetchone()
    started, ended, last = (span["started_at"], span["ended_at"], span["last_at"]) if span else (None, None, None)
    as_of = upto is not None or at is not None
    until = ended or ((at or last) if as_of else None)
    summary = TimelineSummary(
        sum(counts.values()), dict(sorted(counts.items())), started, ended, span_ms(started, until)
    )
    return Timeline(entries, summary)


def span_ms(started: datetime | None, ended: datetime | None) -> float | None:
    """Milliseconds from ``started`` to ``ended``, or to now when it has not ended."""
    if started is None:
        return None
    return round(((ended or datetime.now(UTC)) - started).total_seconds() * 1000, 3)


@dataclass(frozen=True)
class NodeTimes:
    """When a node was first scheduled, first picked up by a worker, and last completed."""

    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None


async def node_times(conn: AsyncConnection[DictRow], tenant_id: str, execution_id: UUID) -> dict[str, NodeTimes]:
    """Each node's times in the run, from its timeline rows (the steps view)."""
    cur = await conn.execute(
        "SELECT node_id,"
        " min(occurred_at) FILTER (WHERE kind = 'execution.node_scheduled') AS scheduled_at,"
        " min(occurred_at) FILTER (WHERE kind = 'execution.node_started') AS started_at,"
        " max(occurred_at) FILTER (WHERE kind IN ('execution.node_completed', 'execution.decision_made'))"
        " AS completed_at"
        f" FROM {_TABLE} WHERE tenant_id = %s AND execution_id = %s AND node_id IS NOT NULL GROUP BY node_id",
        (tenant_id, execution_id),
    )
    return {
        r["node_id"]: NodeTimes(r["scheduled_at"], r["started_at"], r["completed_at"]) for r in await cur.fetchall()
    }
