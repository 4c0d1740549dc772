"""The query service behind an execution's checkpoints, timeline and metrics.

Each answer comes from a read model, so it trails the log by the projectors' lag; whether
the execution exists, and where an ``as_of`` point sits in the log, is asked of the log
itself (``ExecutionLog``, handed in by the composition root: this package does not import
the write side), so a run started a moment ago is never answered with 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from projections.checkpoints import CheckpointRow, get_checkpoint, list_checkpoints
from projections.execution_metrics import ExecutionMetrics, read_metrics
from projections.timeline import Timeline, TimelineFilter, read_timeline

Conn = AsyncConnection[DictRow]


class ExecutionLog(Protocol):
    """What these queries ask the log."""

    async def require_execution(self, conn: Conn, tenant_id: str, execution_id: UUID) -> None:
        """Raise NotFound unless the tenant started this execution."""

    async def require_live_execution(self, conn: Conn, tenant_id: str, execution_id: UUID) -> None:
        """``require_execution``, and NotFound too once the execution was deleted."""

    async def position(self, conn: Conn, tenant_id: str, execution_id: UUID, point: str) -> int:
        """The notification id the execution's replay set reaches as of ``point``."""


class ExecutionReads:
    def __init__(self, pool: AsyncConnectionPool[Any], log: ExecutionLog) -> None:
        self._pool = pool
        self._log = log

    async def checkpoints(
        self, tenant_id: str, execution_id: UUID, *, descending: bool, limit: int, offset: int
    ) -> tuple[list[CheckpointRow], int]:
        """One page of the execution's checkpoints (without states) and their total; 404 for
        an unknown or deleted execution, so an empty list always means "none yet"."""
        async with self._pool.connection() as conn:
            await self._log.require_live_execution(conn, tenant_id, execution_id)
            return await list_checkpoints(
                conn, tenant_id, execution_id, descending=descending, limit=limit, offset=offset
            )

    async def checkpoint(self, tenant_id: str, execution_id: UUID, checkpoint_id: UUID) -> CheckpointRow | None:
        """One checkpoint with its state; None when unknown (or another tenant's)."""
        async with self._pool.connection() as conn:
            return await get_checkpoint(conn, tenant_id, execution_id, checkpoint_id)

    async def timeline(
        self,
        tenant_id: str,
        execution_id: UUID,
        wanted: TimelineFilter,
        *,
        as_of: str | None,
        at: datetime | None,
        include_state: bool,
        limit: int,
        offset: int,
    ) -> Timeline:
        """One page of the timeline; as of ``at`` (a time) or ``as_of`` (an event id or
        version of the execution: its place in the log) when given."""
        async with self._pool.connection() as conn:
            await self._log.require_execution(conn, tenant_id, execution_id)
            upto = None
            if as_of is not None and at is None:
                upto = await self._log.position(conn, tenant_id, execution_id, as_of)
            return await read_timeline(
                conn,
                tenant_id,
                execution_id,
                wanted,
                upto=upto,
                at=at,
                include_state=include_state,
                limit=limit,
                offset=offset,
            )

    async def metrics(self, tenant_id: str, execution_id: UUID) -> ExecutionMetrics:
        async with self._pool.connection() as conn:
            await self._log.require_execution(conn, tenant_id, execution_id)
            return await read_metrics(conn, tenant_id, execution_id)
