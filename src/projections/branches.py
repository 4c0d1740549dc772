"""Read model of branches: every execution with the run it forked from,
so a lineage's whole fork tree is one query. Status comes from the executions read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection


async def _started(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    fork = e.payload.get("fork") or {}
    parent = fork.get("execution_id")
    # A branch joins its parent's lineage: the root is the parent's root (the parent's row
    # was written before, since it is earlier in the log).
    await cur.execute(
        "INSERT INTO branches (tenant_id, execution_id, parent_execution_id, root_execution_id, from_event_id,"
        " mode, name, hypothesis, workflow_id, created_at)"
        " VALUES (%(t)s, %(e)s, %(p)s,"
        " coalesce((SELECT root_execution_id FROM branches WHERE tenant_id = %(t)s AND execution_id = %(p)s),"
        " %(p)s, %(e)s), %(f)s, %(m)s, %(n)s, %(h)s, %(w)s, %(at)s) ON CONFLICT DO NOTHING",
        {
            "t": e.tenant_id,
            "e": e.stream_id,
            "p": parent,
            "f": fork.get("from_event_id"),
            "m": fork.get("mode"),
            "n": fork.get("name"),
            "h": fork.get("hypothesis"),
            "w": e.payload["workflow_id"],
            "at": e.occurred_at,
        },
    )


class BranchesProjection(Projection):
    name: ClassVar[str] = "branches"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS branches ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, parent_execution_id uuid,"
        " root_execution_id uuid NOT NULL, from_event_id uuid, mode text, name text, hypothesis text,"
        " workflow_id uuid NOT NULL, created_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, execution_id))",
        "CREATE INDEX IF NOT EXISTS branches_root ON branches (tenant_id, root_execution_id, created_at)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {"execution.started": _started}


@dataclass(frozen=True)
class BranchRow:
    execution_id: UUID
    parent_execution_id: UUID | None
    from_event_id: UUID | None
    mode: str | None
    name: str | None
    hypothesis: str | None
    status: str | None
    created_at: datetime


async def lineage(conn: AsyncConnection[DictRow], tenant_id: str, execution_id: UUID) -> list[BranchRow] | None:
    """Every branch of the lineage ``execution_id`` belongs to, oldest first (None if unknown)."""
    cur = await conn.execute(
        "SELECT b.execution_id, b.parent_execution_id, b.from_event_id, b.mode, b.name, b.hypothesis,"
        " x.status, b.created_at FROM rm_branches.branches b"
        " LEFT JOIN rm_executions.executions x ON x.tenant_id = b.tenant_id AND x.execution_id = b.execution_id"
        " WHERE b.tenant_id = %(t)s AND b.root_execution_id = (SELECT root_execution_id FROM rm_branches.branches"
        " WHERE tenant_id = %(t)s AND execution_id = %(e)s) ORDER BY b.created_at, b.execution_id",
        {"t": tenant_id, "e": execution_id},
    )
    rows = await cur.fetchall()
    return [BranchRow(**r) for r in rows] or None
