"""Small questions the API asks the write side (the log and its DAG index) before a read
model answers: does the execution exist, where does an event sit in the log. The log is
written with the events, so a run started or an event recorded a moment ago is found
before any projector has seen it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.replay_log import log_position
from domain.errors import NotFound

Conn = AsyncConnection[DictRow]


async def require_execution(conn: Conn, tenant_id: str, execution_id: UUID) -> None:
    """404 unless the tenant started this execution (another tenant's is indistinguishable
    from none). An execution's correlation id is its own id, which the index is keyed by."""
    cur = await conn.execute(
        "SELECT 1 FROM event_dag WHERE tenant_id = %s AND correlation_id = %s AND stream_id = %s"
        " AND kind = 'execution.started' LIMIT 1",
        (tenant_id, execution_id, execution_id),
    )
    if await cur.fetchone() is None:
        raise NotFound(f"execution {execution_id} not found")


async def require_live_execution(conn: Conn, tenant_id: str, execution_id: UUID) -> None:
    """``require_execution``, and 404 too once the run was deleted (its tombstone recorded)."""
    await require_execution(conn, tenant_id, execution_id)
    cur = await conn.execute(
        "SELECT 1 FROM event_dag WHERE tenant_id = %s AND correlation_id = %s AND stream_id = %s"
        " AND kind = 'execution.deleted' LIMIT 1",
        (tenant_id, execution_id, execution_id),
    )
    if await cur.fetchone() is not None:
        raise NotFound(f"execution {execution_id} was deleted")


async def event_position(conn: Conn, tenant_id: str, event_id: UUID) -> tuple[int, datetime] | None:
    """The log position and time of one of the tenant's events (another tenant's: None)."""
    cur = await conn.execute(
        "SELECT notification_id, occurred_at FROM event_dag WHERE event_id = %s AND tenant_id = %s",
        (event_id, tenant_id),
    )
    row = await cur.fetchone()
    return None if row is None else (int(row["notification_id"]), row["occurred_at"])


class ExecutionLog:
    """What the execution read models' queries ask the log (``projections.execution_reads``)."""

    async def require_execution(self, conn: Conn, tenant_id: str, execution_id: UUID) -> None:
        await require_execution(conn, tenant_id, execution_id)

    async def require_live_execution(self, conn: Conn, tenant_id: str, execution_id: UUID) -> None:
        await require_live_execution(conn, tenant_id, execution_id)

    async def position(self, conn: Conn, tenant_id: str, execution_id: UUID, point: str) -> int:
        """The notification id up to which the execution's replay set is as of ``point``
        (an event id or version of it; 0 before its first event)."""
        return await log_position(conn, tenant_id, execution_id, point)
