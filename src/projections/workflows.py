"""Read model of workflow definitions: serves the list endpoint with filters and sorting."""

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


async def _created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO workflows (tenant_id, workflow_id, name, description, version,"
        " definition_version, node_count, edge_count, metadata, created_at, updated_at, deleted)"
        " VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, false)",
        (
            e.tenant_id,
            e.stream_id,
            p["name"],
            p["description"],
            e.version,
            len(p["definition"]["nodes"]),
            len(p["definition"].get("edges", [])),
            Jsonb(p.get("metadata", {})),
            e.occurred_at,
            e.occurred_at,
        ),
    )


async def _updated(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "UPDATE workflows SET name = %s, description = %s, version = %s, definition_version = %s,"
        " node_count = %s, edge_count = %s, metadata = %s, updated_at = %s"
        " WHERE tenant_id = %s AND workflow_id = %s",
        (
            p["name"],
            p["description"],
            e.version,
            p["definition_version"],
            len(p["definition"]["nodes"]),
            len(p["definition"].get("edges", [])),
            Jsonb(p.get("metadata", {})),
            e.occurred_at,
            e.tenant_id,
            e.stream_id,
        ),
    )


async def _deleted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "UPDATE workflows SET deleted = true, version = %s, updated_at = %s WHERE tenant_id = %s AND workflow_id = %s",
        (e.version, e.occurred_at, e.tenant_id, e.stream_id),
    )


async def _edited(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """Partial edits: keep counts and versions in step (node/edge added or removed)."""
    nodes = {"workflow.node_added": 1, "workflow.node_removed": -1}.get(e.kind, 0)
    edges = {"workflow.edge_added": 1, "workflow.edge_removed": -1}.get(e.kind, 0)
    await cur.execute(
        "UPDATE workflows SET version = %s, definition_version = %s, node_count = node_count + %s,"
        " edge_count = edge_count + %s, updated_at = %s WHERE tenant_id = %s AND workflow_id = %s",
        (e.version, e.payload["definition_version"], nodes, edges, e.occurred_at, e.tenant_id, e.stream_id),
    )


class WorkflowsProjection(Projection):
    name: ClassVar[str] = "workflows"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS workflows ("
        " tenant_id text NOT NULL, workflow_id uuid NOT NULL, name text NOT NULL,"
        " description text NOT NULL, version bigint NOT NULL, definition_version integer NOT NULL,"
        " node_count integer NOT NULL, edge_count integer NOT NULL, metadata jsonb NOT NULL,"
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, deleted boolean NOT NULL,"
        " PRIMARY KEY (tenant_id, workflow_id))",
        "CREATE INDEX IF NOT EXISTS workflows_tenant_created ON workflows (tenant_id, created_at)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "workflow.created": _created,
        "workflow.updated": _updated,
        "workflow.deleted": _deleted,
        **dict.fromkeys(
            (
                "workflow.node_added",
                "workflow.node_updated",
                "workflow.node_removed",
                "workflow.edge_added",
                "workflow.edge_removed",
            ),
            _edited,
        ),
    }


SortField = Literal["created_at", "updated_at", "name"]


@dataclass(frozen=True)
class WorkflowRow:
    workflow_id: UUID
    name: str
    description: str
    version: int
    definition_version: int
    node_count: int
    edge_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


async def list_workflows(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    name_contains: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    sort: SortField,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[WorkflowRow], int]:
    where = " WHERE tenant_id = %s AND NOT deleted"
    params: list[Any] = [tenant_id]
    if name_contains:
        where += " AND name ILIKE %s"
        params.append("%" + name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if created_after:
        where += " AND created_at >= %s"
        params.append(created_after)
    if created_before:
        where += " AND created_at < %s"
        params.append(created_before)
    found, total = await page(
        conn,
        f"{WorkflowsProjection.schema()}.workflows",
        where,
        params,
        sort=sort,
        descending=descending,
        tie_breaker="workflow_id",
        limit=limit,
        offset=offset,
    )
    return [WorkflowRow(**{k: r[k] for k in WorkflowRow.__dataclass_fields__}) for r in found], total
