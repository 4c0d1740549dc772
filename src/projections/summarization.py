"""Read model of summarization: policies by trajectory, requests by status, scope and policy.

Serves the CELLSTATE reference's lists (a trajectory's policies; requests filtered by
status, scope and policy). Deleted policies keep their row, flagged, so a rebuild from the
log ends identical; lists leave them out.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.paging import page


async def _policy_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO policies (tenant_id, summarization_policy_id, trajectory_id, name, source_level, target_level,"
        " max_sources, create_edges, triggers, metadata, agent_type, created_at, version, last_event_id, deleted)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false) ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            p.get("trajectory_id"),
            p["name"],
            p["source_level"],
            p["target_level"],
            p["max_sources"],
            p["create_edges"],
            Jsonb(p["triggers"]),
            Jsonb(p.get("metadata")),
            p["agent_type"],
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _policy_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    deleted = " , deleted = true" if e.kind == "summarization_policy.deleted" else ""
    await cur.execute(
        f"UPDATE policies SET version = %s, last_event_id = %s{deleted}"
        " WHERE tenant_id = %s AND summarization_policy_id = %s",
        (e.version, e.event_id, e.tenant_id, e.stream_id),
    )


async def _request_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO requests (tenant_id, summarization_request_id, summarization_policy_id, trajectory_id,"
        " scope_id, source_level, target_level, max_sources, create_edges, agent_type, trigger, sources,"
        " metadata, requested_by, status, requested_at, updated_at, version, last_event_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            p["summarization_policy_id"],
            p.get("trajectory_id"),
            p.get("scope_id"),
            p["source_level"],
            p["target_level"],
            p["max_sources"],
            p["create_edges"],
            p["agent_type"],
            Jsonb(p["trigger"]),
            Jsonb(p.get("sources") or []),
            Jsonb(p.get("metadata")),
            p.get("requested_by"),
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _request_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    values: list[Any]
    sets, values = "status = %s", ["in_progress"]
    if e.kind == "summarization_request.completed":
        sets = "status = %s, completed_at = %s, note_id = %s, edge_ids = %s"
        values = ["completed", e.occurred_at, p.get("note_id"), Jsonb(p.get("edge_ids") or [])]
    elif e.kind == "summarization_request.failed":
        sets, values = "status = %s, completed_at = %s, error = %s", ["failed", e.occurred_at, p.get("error")]
    await cur.execute(
        f"UPDATE requests SET {sets}, updated_at = %s, version = %s, last_event_id = %s"
        " WHERE tenant_id = %s AND summarization_request_id = %s",
        [*values, e.occurred_at, e.version, e.event_id, e.tenant_id, e.stream_id],
    )


class SummarizationProjection(Projection):
    name: ClassVar[str] = "summarization"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS policies ("
        " tenant_id text NOT NULL, summarization_policy_id uuid NOT NULL, trajectory_id uuid, name text NOT NULL,"
        " source_level text NOT NULL, target_level text NOT NULL, max_sources integer NOT NULL,"
        " create_edges boolean NOT NULL, triggers jsonb NOT NULL, metadata jsonb, agent_type text NOT NULL,"
        " created_at timestamptz NOT NULL, version bigint NOT NULL, last_event_id uuid NOT NULL,"
        " deleted boolean NOT NULL, PRIMARY KEY (tenant_id, summarization_policy_id))",
        "CREATE INDEX IF NOT EXISTS policies_trajectory ON policies (tenant_id, trajectory_id, created_at)",
        "CREATE TABLE IF NOT EXISTS requests ("
        " tenant_id text NOT NULL, summarization_request_id uuid NOT NULL, summarization_policy_id uuid NOT NULL,"
        " trajectory_id uuid, scope_id uuid, source_level text NOT NULL, target_level text NOT NULL,"
        " max_sources integer NOT NULL, create_edges boolean NOT NULL, agent_type text NOT NULL,"
        " trigger jsonb NOT NULL, sources jsonb NOT NULL, metadata jsonb, requested_by uuid,"
        " status text NOT NULL, requested_at timestamptz NOT NULL, completed_at timestamptz, note_id uuid,"
        " edge_ids jsonb NOT NULL DEFAULT '[]', error text, updated_at timestamptz NOT NULL,"
        " version bigint NOT NULL, last_event_id uuid NOT NULL,"
        " PRIMARY KEY (tenant_id, summarization_request_id))",
        "CREATE INDEX IF NOT EXISTS requests_requested ON requests (tenant_id, requested_at DESC)",
        "CREATE INDEX IF NOT EXISTS requests_policy ON requests (tenant_id, summarization_policy_id)",
        "CREATE INDEX IF NOT EXISTS requests_scope ON requests (tenant_id, scope_id)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "summarization_policy.created": _policy_created,
        "summarization_policy.deleted": _policy_changed,
        "summarization_policy.note_counted": _policy_changed,
        "summarization_request.created": _request_created,
        **dict.fromkeys(
            ("summarization_request.started", "summarization_request.completed", "summarization_request.failed"),
            _request_changed,
        ),
    }


_S = SummarizationProjection.schema()
Rows = tuple[list[DictRow], int]


async def list_policies(
    conn: AsyncConnection[DictRow], tenant_id: str, *, trajectory_id: UUID, limit: int, offset: int
) -> Rows:
    """A trajectory's live policies, oldest first."""
    return await page(
        conn,
        f"{_S}.policies",
        " WHERE tenant_id = %s AND trajectory_id = %s AND NOT deleted",
        [tenant_id, trajectory_id],
        sort="created_at",
        descending=False,
        tie_breaker="summarization_policy_id",
        limit=limit,
        offset=offset,
    )


async def list_requests(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    status: str | None = None,
    scope_id: UUID | None = None,
    summarization_policy_id: UUID | None = None,
    trajectory_id: UUID | None = None,
    limit: int,
    offset: int,
) -> Rows:
    """Requests, newest first, where each given filter matches (column names from code)."""
    where, params = " WHERE tenant_id = %s", [tenant_id]
    equal: dict[str, Any] = {
        "status": status,
        "scope_id": scope_id,
        "summarization_policy_id": summarization_policy_id,
        "trajectory_id": trajectory_id,
    }
    for column, value in equal.items():
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    return await page(
        conn,
        f"{_S}.requests",
        where,
        params,
        sort="requested_at",
        descending=True,
        tie_breaker="summarization_request_id",
        limit=limit,
        offset=offset,
    )
