"""Read model of multi-agent coordination: registered agents and the locks they hold.

Serves the list endpoints (agents by type, status and current trajectory; active locks)
and tells the agent service which lock streams an agent may hold grants on when it goes
offline (the streams themselves decide what is still held). Agents keep unregistered
rows flagged rather than removed, so a rebuild from the log ends identical; a lock row
lives from its grant until the event that ends it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor, Connection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.paging import page


async def _agent_registered(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO agents (tenant_id, agent_id, agent_type, capabilities, can_delegate_to, memory_access,"
        " reports_to, owner_principal_id, status, last_heartbeat_at, created_at, updated_at, version,"
        " last_event_id, deleted)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'idle', %s, %s, %s, %s, %s, false)",
        (
            e.tenant_id,
            e.stream_id,
            p["agent_type"],
            Jsonb(p.get("capabilities") or []),
            Jsonb(p.get("can_delegate_to") or []),
            Jsonb(p.get("memory_access") or {}),
            p.get("reports_to"),
            p.get("owner_principal_id"),
            e.occurred_at,
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _agent_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    sets = "updated_at = %s, version = %s, last_event_id = %s"
    values: list[Any] = [e.occurred_at, e.version, e.event_id]
    if e.kind == "agent.updated":
        sets += ", capabilities = %s, memory_access = %s, current_trajectory_id = %s, current_scope_id = %s"
        sets += ", status = %s"
        values += [
            Jsonb(p.get("capabilities") or []),
            Jsonb(p.get("memory_access") or {}),
            p.get("current_trajectory_id"),
            p.get("current_scope_id"),
            p["status"],
        ]
    elif e.kind == "agent.heartbeat":
        sets += ", last_heartbeat_at = %s, status = %s"
        values += [e.occurred_at, p["status"]]
    elif e.kind == "agent.went_offline":
        sets += ", status = 'offline'"
    elif e.kind == "agent.unregistered":
        sets += ", deleted = true"
    # Only forward: a redelivered older event must not undo a newer one.
    await cur.execute(
        f"UPDATE agents SET {sets} WHERE tenant_id = %s AND agent_id = %s AND version < %s",
        [*values, e.tenant_id, e.stream_id, e.version],
    )


async def _lock_acquired(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO locks (tenant_id, lock_id, lock_stream_id, resource_type, resource_id, holder_agent_id, mode,"
        " fencing_token, acquired_at, expires_at, last_event_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.event_id,
            e.stream_id,
            p["resource_type"],
            p["resource_id"],
            p["holder_agent_id"],
            p["mode"],
            p["fencing_token"],
            p["at"],
            p["expires_at"],
            e.event_id,
        ),
    )


async def _lock_extended(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "UPDATE locks SET expires_at = %s, last_event_id = %s WHERE tenant_id = %s AND lock_id = %s",
        (e.payload["expires_at"], e.event_id, e.tenant_id, e.payload["lock_id"]),
    )


async def _lock_ended(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute("DELETE FROM locks WHERE tenant_id = %s AND lock_id = %s", (e.tenant_id, e.payload["lock_id"]))


class CoordinationProjection(Projection):
    name: ClassVar[str] = "coordination"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS agents ("
        " tenant_id text NOT NULL, agent_id uuid NOT NULL, agent_type text NOT NULL,"
        " capabilities jsonb NOT NULL, can_delegate_to jsonb NOT NULL, memory_access jsonb NOT NULL,"
        " reports_to uuid, owner_principal_id uuid, current_trajectory_id uuid, current_scope_id uuid,"
        " status text NOT NULL, last_heartbeat_at timestamptz NOT NULL,"
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " version bigint NOT NULL, last_event_id uuid NOT NULL, deleted boolean NOT NULL,"
        " PRIMARY KEY (tenant_id, agent_id))",
        "CREATE INDEX IF NOT EXISTS agents_type ON agents (tenant_id, agent_type, created_at)",
        "CREATE TABLE IF NOT EXISTS locks ("
        " tenant_id text NOT NULL, lock_id uuid NOT NULL, lock_stream_id uuid NOT NULL,"
        " resource_type text NOT NULL, resource_id uuid NOT NULL, holder_agent_id uuid NOT NULL,"
        " mode text NOT NULL, fencing_token bigint NOT NULL, acquired_at timestamptz NOT NULL,"
        " expires_at timestamptz NOT NULL, last_event_id uuid NOT NULL,"
        " PRIMARY KEY (tenant_id, lock_id))",
        "CREATE INDEX IF NOT EXISTS locks_holder ON locks (tenant_id, holder_agent_id)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "agent.registered": _agent_registered,
        **dict.fromkeys(
            ("agent.updated", "agent.heartbeat", "agent.went_offline", "agent.unregistered"), _agent_changed
        ),
        "lock.acquired": _lock_acquired,
        "lock.extended": _lock_extended,
        **dict.fromkeys(("lock.released", "lock.expired", "lock.revoked"), _lock_ended),
    }


_S = CoordinationProjection.schema()
Rows = tuple[list[DictRow], int]


async def list_agents(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    agent_type: str | None = None,
    status: str | None = None,
    trajectory_id: UUID | None = None,
    active_only: bool = False,
    limit: int,
    offset: int,
) -> Rows:
    """Registered agents, oldest first. ``active_only``: not offline (the reference's
    "active agents": registered and alive)."""
    where = " WHERE tenant_id = %s AND NOT deleted"
    params: list[Any] = [tenant_id]
    for column, value in (("agent_type", agent_type), ("status", status), ("current_trajectory_id", trajectory_id)):
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    if active_only:
        where += " AND status <> 'offline'"
    return await page(
        conn,
        f"{_S}.agents",
        where,
        params,
        sort="created_at",
        descending=False,
        tie_breaker="agent_id",
        limit=limit,
        offset=offset,
    )


async def list_locks(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    now: datetime,
    *,
    holder_agent_id: UUID | None = None,
    resource_type: str | None = None,
    resource_id: UUID | None = None,
    limit: int,
    offset: int,
) -> Rows:
    """Grants that hold at ``now`` (one past its expiry is left out even before its
    ``lock.expired`` is recorded), oldest first."""
    where = " WHERE tenant_id = %s AND expires_at > %s"
    params: list[Any] = [tenant_id, now]
    for column, value in (
        ("holder_agent_id", holder_agent_id),
        ("resource_type", resource_type),
        ("resource_id", resource_id),
    ):
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    return await page(
        conn,
        f"{_S}.locks",
        where,
        params,
        sort="acquired_at",
        descending=False,
        tie_breaker="lock_id",
        limit=limit,
        offset=offset,
    )


def held_lock_streams(conn: Connection[Any], tenant_id: str, agent_id: UUID) -> list[UUID]:
    """The lock streams where the agent held a grant when the read model last looked."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT DISTINCT lock_stream_id FROM {_S}.locks WHERE tenant_id = %s AND holder_agent_id = %s",
            (tenant_id, agent_id),
        )
        return [row["lock_stream_id"] if isinstance(row, dict) else row[0] for row in cur.fetchall()]
