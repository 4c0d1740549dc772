"""Read model of executions: the list endpoint with filters, sort and paging (task-manager view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.paging import page

_WHERE = " WHERE tenant_id = %s AND execution_id = %s"


async def _started(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    nodes = e.payload["definition"]["nodes"]
    await cur.execute(
        "INSERT INTO executions (tenant_id, execution_id, workflow_id, workflow_version, status, node_count,"
        " finished, current_nodes, node_types, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, 'running', %s, 0, '{}', %s, %s, %s)",
        (
            e.tenant_id,
            e.stream_id,
            e.payload["workflow_id"],
            e.payload["workflow_version"],
            len(nodes),
            Jsonb({n["id"]: n.get("type", "task") for n in nodes}),
            e.occurred_at,
            e.occurred_at,
        ),
    )


def _settled(current: str) -> str:
    """SQL for the status once ``current`` (an expression over the row) are the nodes at
    work: waiting while an approval node is among them, else running. Paused and ended
    runs keep their status (the aggregate settles only running or waiting ones)."""
    return (
        "CASE WHEN status IN ('running', 'waiting_for_approval') THEN"
        f" CASE WHEN EXISTS (SELECT 1 FROM unnest({current}) AS c(n) WHERE node_types ->> c.n = 'approval')"
        " THEN 'waiting_for_approval' ELSE 'running' END ELSE status END"
    )


async def _scheduled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    node = e.payload["node_id"]
    current = "array_append(array_remove(current_nodes, %(node)s), %(node)s)"
    await cur.execute(
        f"UPDATE executions SET current_nodes = {current}, status = {_settled(current)}, updated_at = %(at)s"
        " WHERE tenant_id = %(tenant)s AND execution_id = %(id)s",
        {"node": node, "at": e.occurred_at, "tenant": e.tenant_id, "id": e.stream_id},
    )


async def _left(cur: AsyncCursor[DictRow], e: EventEnvelope, *, finished: bool) -> None:
    """A node is no longer at work; an answered (or failed) approval stops the waiting
    unless another approval is still pending."""
    current = "array_remove(current_nodes, %(node)s)"
    await cur.execute(
        f"UPDATE executions SET finished = finished + %(done)s, current_nodes = {current},"
        f" status = {_settled(current)}, updated_at = %(at)s"
        " WHERE tenant_id = %(tenant)s AND execution_id = %(id)s",
        {
            "node": e.payload["node_id"],
            "done": 1 if finished else 0,
            "at": e.occurred_at,
            "tenant": e.tenant_id,
            "id": e.stream_id,
        },
    )


async def _finished(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A node succeeded (completed or decided) or was skipped: progress moves."""
    await _left(cur, e, finished=True)


async def _node_failed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A failed attempt leaves the current nodes until its retry is scheduled (when
    ``retry_at`` is set); otherwise ``execution.failed`` follows and sets the status."""
    await _left(cur, e, finished=False)


async def _touched(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """Activity that changes neither progress nor status (a worker picked a node up, an
    approval was answered: its node's completion or failure follows in the same command)."""
    await cur.execute("UPDATE executions SET updated_at = %s" + _WHERE, (e.occurred_at, e.tenant_id, e.stream_id))


async def _resumed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """Back to running, or to waiting when an approval was pending when it paused."""
    await cur.execute(
        "UPDATE executions SET status = CASE WHEN EXISTS (SELECT 1 FROM unnest(current_nodes) AS c(n)"
        " WHERE node_types ->> c.n = 'approval') THEN 'waiting_for_approval' ELSE 'running' END,"
        " updated_at = %s" + _WHERE,
        (e.occurred_at, e.tenant_id, e.stream_id),
    )


def _status(value: str) -> Handler:
    async def handler(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await cur.execute(
            "UPDATE executions SET status = %s, updated_at = %s" + _WHERE,
            (value, e.occurred_at, e.tenant_id, e.stream_id),
        )

    return handler


async def _deleted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A deleted run leaves the lists (its events stay in the log)."""
    await cur.execute("DELETE FROM executions" + _WHERE, (e.tenant_id, e.stream_id))


class ExecutionsProjection(Projection):
    name: ClassVar[str] = "executions"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS executions ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, workflow_id uuid NOT NULL,"
        " workflow_version integer NOT NULL, status text NOT NULL, node_count integer NOT NULL,"
        " finished integer NOT NULL, current_nodes text[] NOT NULL,"
        " node_types jsonb NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, execution_id))",
        "CREATE INDEX IF NOT EXISTS executions_tenant_status ON executions (tenant_id, status, created_at)",
        "CREATE INDEX IF NOT EXISTS executions_tenant_workflow ON executions (tenant_id, workflow_id, created_at)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "execution.started": _started,
        "execution.node_scheduled": _scheduled,
        "execution.node_started": _touched,
        "execution.node_completed": _finished,
        "execution.decision_made": _finished,
        "execution.node_skipped": _finished,
        "execution.node_failed": _node_failed,
        "execution.approval_answered": _touched,
        "execution.paused": _status("paused"),
        "execution.resumed": _resumed,
        "execution.cancelled": _status("cancelled"),
        "execution.succeeded": _status("succeeded"),
        "execution.failed": _status("failed"),
        "execution.timed_out": _status("timed_out"),
        "execution.deleted": _deleted,
    }


@dataclass(frozen=True)
class ExecutionRow:
    execution_id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    progress: float
    current_nodes: list[str]
    created_at: datetime
    updated_at: datetime


async def list_executions(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    status: str | None,
    workflow_id: UUID | None,
    created_after: datetime | None,
    created_before: datetime | None,
    sort: Literal["created_at", "updated_at", "status"],
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[ExecutionRow], int]:
    where = " WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    for clause, value in (
        (" AND status = %s", status),
        (" AND workflow_id = %s", workflow_id),
        (" AND created_at >= %s", created_after),
        (" AND created_at < %s", created_before),
    ):
        if value is not None:
            where += clause
            params.append(value)
    found, total = await page(
        conn,
        f"{ExecutionsProjection.schema()}.executions",
        where,
        params,
        sort=sort,
        descending=descending,
        tie_breaker="execution_id",
        limit=limit,
        offset=offset,
    )
    rows = [
        ExecutionRow(
            r["execution_id"],
            r["workflow_id"],
            r["workflow_version"],
            r["status"],
            round(100.0 * r["finished"] / r["node_count"], 1) if r["node_count"] else 100.0,
            list(r["current_nodes"]),
            r["created_at"],
            r["updated_at"],
        )
        for r in found
    ]
    return rows, total
