"""Read model behind ``GET /agent-types``: every agent type the tenant's work names.

An agent type is only a name that workers, workflow nodes and registered agents agree on;
no event declares one. This model keeps what a query cannot cheaply get from other read
models: which live workflow's nodes name which type (``workflow_nodes``, kept in step with
the definition's full and partial edits) and how many tasks of each type were scheduled
(``tasks``). Registered agents are read from the coordination read model, and the types
configured with ``QUIPU_AGENT_TYPES`` are passed in, when the list is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.coordination import CoordinationProjection

_WORKFLOW = " WHERE tenant_id = %s AND workflow_id = %s"


async def _insert_nodes(cur: AsyncCursor[DictRow], e: EventEnvelope, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        if node.get("agent_type"):
            await cur.execute(
                "INSERT INTO workflow_nodes (tenant_id, workflow_id, node_id, agent_type) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (tenant_id, workflow_id, node_id) DO UPDATE SET agent_type = excluded.agent_type",
                (e.tenant_id, e.stream_id, node["id"], node["agent_type"]),
            )


async def _defined(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A whole definition (created or replaced): its nodes replace the workflow's rows."""
    await cur.execute("DELETE FROM workflow_nodes" + _WORKFLOW, (e.tenant_id, e.stream_id))
    await _insert_nodes(cur, e, e.payload["definition"]["nodes"])


async def _node_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A node added or updated (an update may drop its agent type)."""
    node = e.payload["node"]
    await cur.execute(
        "DELETE FROM workflow_nodes" + _WORKFLOW + " AND node_id = %s", (e.tenant_id, e.stream_id, node["id"])
    )
    await _insert_nodes(cur, e, [node])


async def _node_removed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "DELETE FROM workflow_nodes" + _WORKFLOW + " AND node_id = %s",
        (e.tenant_id, e.stream_id, e.payload["node_id"]),
    )


async def _workflow_deleted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute("DELETE FROM workflow_nodes" + _WORKFLOW, (e.tenant_id, e.stream_id))


async def _task_scheduled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """Every attempt of a task node handed to workers of its type."""
    agent_type = e.payload.get("agent_type")
    if not agent_type or e.payload.get("node_type", "task") != "task":
        return
    await cur.execute(
        "INSERT INTO tasks (tenant_id, agent_type, scheduled, last_scheduled_at) VALUES (%s, %s, 1, %s)"
        " ON CONFLICT (tenant_id, agent_type) DO UPDATE SET scheduled = tasks.scheduled + 1,"
        " last_scheduled_at = greatest(tasks.last_scheduled_at, excluded.last_scheduled_at)",
        (e.tenant_id, agent_type, e.occurred_at),
    )


class AgentTypesProjection(Projection):
    name: ClassVar[str] = "agent_types"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS workflow_nodes ("
        " tenant_id text NOT NULL, workflow_id uuid NOT NULL, node_id text NOT NULL, agent_type text NOT NULL,"
        " PRIMARY KEY (tenant_id, workflow_id, node_id))",
        "CREATE INDEX IF NOT EXISTS workflow_nodes_type ON workflow_nodes (tenant_id, agent_type)",
        "CREATE TABLE IF NOT EXISTS tasks ("
        " tenant_id text NOT NULL, agent_type text NOT NULL, scheduled bigint NOT NULL,"
        " last_scheduled_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, agent_type))",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "workflow.created": _defined,
        "workflow.updated": _defined,
        "workflow.node_added": _node_changed,
        "workflow.node_updated": _node_changed,
        "workflow.node_removed": _node_removed,
        "workflow.deleted": _workflow_deleted,
        "execution.node_scheduled": _task_scheduled,
    }


@dataclass(frozen=True)
class AgentTypeRow:
    agent_type: str
    configured: bool
    workflows: int
    agents: int
    online_agents: int
    tasks_scheduled: int
    last_scheduled_at: datetime | None


def _names(schema: str, agents: str) -> str:
    return (
        "SELECT unnest(%(configured)s::text[]) AS agent_type"
        f" UNION SELECT agent_type FROM {schema}.workflow_nodes WHERE tenant_id = %(tenant)s"
        f" UNION SELECT agent_type FROM {agents} WHERE tenant_id = %(tenant)s AND NOT deleted"
        f" UNION SELECT agent_type FROM {schema}.tasks WHERE tenant_id = %(tenant)s"
    )


async def list_agent_types(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    configured: frozenset[str] | None,
    limit: int,
    offset: int,
) -> tuple[list[AgentTypeRow], int]:
    """The agent types named anywhere (configured, in a live workflow, by a registered agent
    or by a scheduled task), by name, with what names each."""
    schema = AgentTypesProjection.schema()
    agents = f"{CoordinationProjection.schema()}.agents"
    params: dict[str, Any] = {"tenant": tenant_id, "configured": sorted(configured or ()), "limit": limit}
    names = _names(schema, agents)
    cur = await conn.execute(f"SELECT count(*) AS n FROM ({names}) AS names", params)
    total = await cur.fetchone()
    assert total is not None
    cur = await conn.execute(
        f"WITH names AS ({names}) SELECT n.agent_type,"
        " n.agent_type = ANY(%(configured)s::text[]) AS configured,"
        f" (SELECT count(DISTINCT w.workflow_id) FROM {schema}.workflow_nodes w"
        "   WHERE w.tenant_id = %(tenant)s AND w.agent_type = n.agent_type) AS workflows,"
        f" (SELECT count(*) FROM {agents} a"
        "   WHERE a.tenant_id = %(tenant)s AND a.agent_type = n.agent_type AND NOT a.deleted) AS agents,"
        f" (SELECT count(*) FROM {agents} a WHERE a.tenant_id = %(tenant)s AND a.agent_type = n.agent_type"
        "   AND NOT a.deleted AND a.status <> 'offline') AS online_agents,"
        f" coalesce(t.scheduled, 0) AS tasks_scheduled, t.last_scheduled_at"
        f" FROM names n LEFT JOIN {schema}.tasks t ON t.tenant_id = %(tenant)s AND t.agent_type = n.agent_type"
        " ORDER BY n.agent_type LIMIT %(limit)s OFFSET %(offset)s",
        {**params, "offset": offset},
    )
    rows = [
        AgentTypeRow(
            agent_type=r["agent_type"],
            configured=bool(r["configured"]),
            workflows=int(r["workflows"]),
            agents=int(r["agents"]),
            online_agents=int(r["online_agents"]),
            tasks_scheduled=int(r["tasks_scheduled"]),
            last_scheduled_at=r["last_scheduled_at"],
        )
        for r in await cur.fetchall()
    ]
    return rows, int(total["n"])
