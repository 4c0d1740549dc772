"""Comparing two points of an execution: what changed in its state between them.

Both sides are resolved to a version of the execution's stream and the state is rebuilt
from the log as of that version. A checkpoint's recorded state is exactly the state the
aggregate has right after the checkpoint event (taking one does not change it), so this
answers the same as the checkpoints read model would, without waiting for its projector:
a checkpoint taken a moment ago can be compared at once. A side is named by a checkpoint,
an event of the execution or a version number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from commands.executions import ExecutionService
from commands.schema import EVENTS_TABLE
from domain.errors import NotFound
from domain.state_diff import StateDiff, diff

CHECKPOINT_KIND = "execution.checkpoint_taken"
Conn = AsyncConnection[DictRow]

_COLUMNS = "d.event_id, d.version, d.kind, d.occurred_at"
# A checkpoint is its event: it must be this execution's, this tenant's, and a checkpoint.
_BY_CHECKPOINT = (
    f"SELECT {_COLUMNS} FROM event_dag d"
    " WHERE d.event_id = %(id)s AND d.tenant_id = %(tenant)s AND d.stream_id = %(execution)s"
    f" AND d.kind = '{CHECKPOINT_KIND}'"
)
# The stream's event at a version (the events table's key finds it; the DAG index says
# whose it is).
_BY_VERSION = (
    f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id"
    " WHERE e.originator_id = %(execution)s AND e.originator_version = %(version)s AND d.tenant_id = %(tenant)s"
)
# An event of the execution: one of its own (the state right after it), or glass-box
# telemetry recorded in it (same correlation as the execution's events; the state as it
# stood when the telemetry was recorded: the stream's latest event before it). Versions
# grow with notification ids within a stream.
_BY_EVENT = (
    f"SELECT {_COLUMNS} FROM event_dag t"
    " CROSS JOIN LATERAL ("
    f"  SELECT e.notification_id FROM {EVENTS_TABLE} e"
    "   WHERE e.originator_id = %(execution)s AND e.notification_id <= t.notification_id"
    "   ORDER BY e.originator_version DESC LIMIT 1) s"
    " JOIN event_dag d ON d.notification_id = s.notification_id"
    " WHERE t.event_id = %(id)s AND t.tenant_id = %(tenant)s AND d.tenant_id = %(tenant)s"
    " AND (t.stream_id = %(execution)s OR (t.kind LIKE 'telemetry.%%' AND t.correlation_id = d.correlation_id))"
)


@dataclass(frozen=True)
class Side:
    """How a side is named: a checkpoint id, or ``as_of`` (an event id or a version)."""

    checkpoint: UUID | None = None
    as_of: int | UUID | None = None


@dataclass(frozen=True)
class ResolvedSide:
    """The stream event whose state a side names: the state right after it."""

    version: int
    event_id: UUID
    kind: str
    timestamp: datetime
    checkpoint_id: UUID | None  # set when that event is a checkpoint


@dataclass(frozen=True)
class Comparison:
    a: ResolvedSide
    b: ResolvedSide
    diff: StateDiff


async def resolve_side(conn: Conn, tenant_id: str, execution_id: UUID, side: Side) -> ResolvedSide:
    """404 if the side is not this tenant's execution's (indistinguishable from not
    existing, as everywhere)."""
    params: dict[str, Any] = {"tenant": tenant_id, "execution": execution_id}
    if side.checkpoint is not None:
        query, what = _BY_CHECKPOINT, f"checkpoint {side.checkpoint}"
        params["id"] = side.checkpoint
    elif isinstance(side.as_of, int):
        query, what = _BY_VERSION, f"version {side.as_of}"
        params["version"] = side.as_of
    else:
        query, what = _BY_EVENT, f"event {side.as_of}"
        params["id"] = side.as_of
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{what} of execution {execution_id} not found")
    event_id = UUID(str(row["event_id"]))
    return ResolvedSide(
        version=int(row["version"]),
        event_id=event_id,
        kind=row["kind"],
        timestamp=row["occurred_at"],
        checkpoint_id=event_id if row["kind"] == CHECKPOINT_KIND else None,
    )


class CheckpointComparer:
    def __init__(self, pool: AsyncConnectionPool[Any], executions: ExecutionService) -> None:
        self._pool = pool
        self._executions = executions

    async def compare(self, tenant_id: str, execution_id: UUID, a: Side, b: Side) -> Comparison:
        """Resolve ``a`` then ``b`` (404 for the first that is not found), rebuild both
        states from the log and diff them (``b`` may be the earlier one)."""
        async with self._pool.connection() as conn:
            first = await resolve_side(conn, tenant_id, execution_id, a)
            second = await resolve_side(conn, tenant_id, execution_id, b)

        def rebuild_and_diff() -> StateDiff:
            # Rebuilding and diffing are CPU and synchronous I/O: off the event loop.
            before = self._executions.get(tenant_id, execution_id, version=first.version).state
            after = (
                before
                if second.version == first.version
                else self._executions.get(tenant_id, execution_id, version=second.version).state
            )
            return diff(before, after)

        return Comparison(first, second, await anyio.to_thread.run_sync(rebuild_and_diff))
