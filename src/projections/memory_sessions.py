"""Read model of an agent's working memory: trajectories, scopes and turns (CELLSTATE reference).

Serves the list endpoints with that reference's filters (trajectories by status, agent and
parent; scopes by trajectory and parent scope; turns by scope, in sequence order). Rows
keep deleted resources flagged rather than removed, so a rebuild from the log ends
identical; lists leave them out. Values come whole from the event (the new total, the
whole new field) rather than as increments of the row; only a scope's turn count is
counted, one per ``scope.turn_appended``, which the applier delivers exactly once.
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


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _metadata(p: dict[str, Any]) -> Jsonb:
    return Jsonb(p.get("metadata") or {})


async def _trajectory_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO trajectories (tenant_id, trajectory_id, name, description, agent_id, parent_trajectory_id,"
        " root_trajectory_id, status, metadata, created_at, updated_at, version, last_event_id, deleted)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, false)",
        (
            e.tenant_id,
            e.stream_id,
            p["name"],
            p.get("description"),
            p.get("agent_id"),
            p.get("parent_trajectory_id"),
            p["root_trajectory_id"],
            _metadata(p),
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _trajectory_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    sets, values = _touch(e)
    if e.kind == "trajectory.updated":
        sets += ", name = %s, description = %s, metadata = %s"
        values += [p["name"], p.get("description"), _metadata(p)]
    elif e.kind in ("trajectory.suspended", "trajectory.resumed"):
        sets += ", status = %s"
        values.append("suspended" if e.kind == "trajectory.suspended" else "active")
    elif e.kind in ("trajectory.completed", "trajectory.failed"):
        sets += ", status = %s, outcome = %s, error = %s, completed_at = %s"
        values += [e.kind.removeprefix("trajectory."), _json(p.get("outcome")), p.get("error"), e.occurred_at]
    elif e.kind == "trajectory.deleted":
        sets += ", deleted = true"
    await _save(cur, "trajectories", e, sets, values)


async def _scope_opened(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO scopes (tenant_id, scope_id, trajectory_id, parent_scope_id, name, purpose, token_budget,"
        " tokens_used, turn_count, is_active, metadata, created_at, updated_at, version, last_event_id, deleted)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 0, true, %s, %s, %s, %s, %s, false)",
        (
            e.tenant_id,
            e.stream_id,
            p["trajectory_id"],
            p.get("parent_scope_id"),
            p["name"],
            p.get("purpose"),
            p["token_budget"],
            _metadata(p),
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _scope_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    sets, values = _touch(e)
    if e.kind == "scope.updated":
        sets += ", name = %s, purpose = %s, token_budget = %s, metadata = %s"
        values += [p["name"], p.get("purpose"), p["token_budget"], _metadata(p)]
    elif e.kind == "scope.checkpointed":
        sets += ", checkpoint = %s"
        checkpoint = {"context_state": p["context_state"], "recoverable": p["recoverable"]}
        values.append(Jsonb({**checkpoint, "event_id": str(e.event_id), "created_at": e.occurred_at.isoformat()}))
    elif e.kind == "scope.turn_appended":
        sets += ", tokens_used = %s, turn_count = turn_count + 1"
        values.append(p["tokens_used"])
    elif e.kind == "scope.closed":
        sets += ", is_active = false, closed_at = %s"
        values.append(e.occurred_at)
    elif e.kind == "scope.deleted":
        sets += ", deleted = true"
    await _save(cur, "scopes", e, sets, values)


async def _turn_recorded(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO turns (tenant_id, turn_id, scope_id, trajectory_id, role, content, sequence, token_count,"
        " tool_calls, tool_results, metadata, execution_id, node_id, created_at, updated_at, version,"
        " last_event_id, deleted)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false)",
        (
            e.tenant_id,
            e.stream_id,
            p["scope_id"],
            p["trajectory_id"],
            p["role"],
            p["content"],
            p["sequence"],
            p.get("token_count", 0),
            _json(p.get("tool_calls")),
            _json(p.get("tool_results")),
            _metadata(p),
            p.get("execution_id"),
            p.get("node_id"),
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _turn_changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    sets, values = _touch(e)
    if e.kind == "turn.updated":
        sets += ", content = %s, tool_calls = %s, tool_results = %s, metadata = %s"
        values += [
            p["content"],
            _json(p.get("tool_calls")),
            _json(p.get("tool_results")),
            _metadata(p),
        ]
    elif e.kind == "turn.deleted":
        sets += ", deleted = true"
    await _save(cur, "turns", e, sets, values)


def _touch(e: EventEnvelope) -> tuple[str, list[Any]]:
    """What every change writes: the stream's version, its latest event, the time."""
    return "version = %s, last_event_id = %s, updated_at = %s", [e.version, e.event_id, e.occurred_at]


# Each table's key column: the id of the stream a row mirrors (also the lists' tie-breaker).
_KEYS = {"trajectories": "trajectory_id", "scopes": "scope_id", "turns": "turn_id"}


async def _save(cur: AsyncCursor[DictRow], table: str, e: EventEnvelope, sets: str, values: list[Any]) -> None:
    """Write ``sets`` (from ``_touch`` on) to the row of the event's stream."""
    await cur.execute(
        f"UPDATE {table} SET {sets} WHERE tenant_id = %s AND {_KEYS[table]} = %s", [*values, e.tenant_id, e.stream_id]
    )


_COMMON = (
    " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL,"
    " last_event_id uuid NOT NULL, deleted boolean NOT NULL,"
)


class MemorySessionsProjection(Projection):
    name: ClassVar[str] = "memory_sessions"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS trajectories ("
        " tenant_id text NOT NULL, trajectory_id uuid NOT NULL, name text NOT NULL, description text,"
        " agent_id uuid, parent_trajectory_id uuid, root_trajectory_id uuid NOT NULL, status text NOT NULL,"
        " outcome jsonb, error text, metadata jsonb NOT NULL, completed_at timestamptz,"
        + _COMMON
        + " PRIMARY KEY (tenant_id, trajectory_id))",
        "CREATE INDEX IF NOT EXISTS trajectories_created ON trajectories (tenant_id, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS trajectories_status ON trajectories (tenant_id, status, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS trajectories_agent ON trajectories (tenant_id, agent_id, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS trajectories_parent"
        " ON trajectories (tenant_id, parent_trajectory_id, created_at DESC)",
        "CREATE TABLE IF NOT EXISTS scopes ("
        " tenant_id text NOT NULL, scope_id uuid NOT NULL, trajectory_id uuid NOT NULL, parent_scope_id uuid,"
        " name text NOT NULL, purpose text, token_budget integer NOT NULL, tokens_used integer NOT NULL,"
        " turn_count integer NOT NULL, is_active boolean NOT NULL, closed_at timestamptz, checkpoint jsonb,"
        " metadata jsonb NOT NULL," + _COMMON + " PRIMARY KEY (tenant_id, scope_id))",
        "CREATE INDEX IF NOT EXISTS scopes_trajectory ON scopes (tenant_id, trajectory_id, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS scopes_parent ON scopes (tenant_id, parent_scope_id, created_at DESC)",
        "CREATE TABLE IF NOT EXISTS turns ("
        " tenant_id text NOT NULL, turn_id uuid NOT NULL, scope_id uuid NOT NULL, trajectory_id uuid NOT NULL,"
        " role text NOT NULL, content text NOT NULL, sequence integer NOT NULL, token_count integer NOT NULL,"
        " tool_calls jsonb, tool_results jsonb, metadata jsonb NOT NULL, execution_id uuid, node_id text,"
        + _COMMON
        + " PRIMARY KEY (tenant_id, turn_id))",
        # The write side guarantees unique sequences per scope; the index states it and
        # serves the scope's turns in order.
        "CREATE UNIQUE INDEX IF NOT EXISTS turns_scope_sequence ON turns (tenant_id, scope_id, sequence)",
        "CREATE INDEX IF NOT EXISTS turns_trajectory ON turns (tenant_id, trajectory_id, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS turns_execution ON turns (tenant_id, execution_id) WHERE execution_id IS NOT NULL",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "trajectory.created": _trajectory_created,
        **dict.fromkeys(
            (
                "trajectory.updated",
                "trajectory.suspended",
                "trajectory.resumed",
                "trajectory.completed",
                "trajectory.failed",
                "trajectory.deleted",
            ),
            _trajectory_changed,
        ),
        "scope.opened": _scope_opened,
        **dict.fromkeys(
            ("scope.updated", "scope.checkpointed", "scope.turn_appended", "scope.closed", "scope.deleted"),
            _scope_changed,
        ),
        "turn.recorded": _turn_recorded,
        **dict.fromkeys(("turn.updated", "turn.deleted"), _turn_changed),
    }


_S = MemorySessionsProjection.schema()
Rows = tuple[list[DictRow], int]


async def _list(
    conn: AsyncConnection[DictRow],
    table: str,
    tenant_id: str,
    equal: dict[str, Any],
    *,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Rows:
    """The tenant's live rows where each given column equals its value (column names come
    from code, never from input), sorted, with the stream id as the stable tie-breaker."""
    where = " WHERE tenant_id = %s AND NOT deleted"
    params: list[Any] = [tenant_id]
    for column, value in equal.items():
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    tie = _KEYS[table]
    return await page(
        conn,
        f"{_S}.{table}",
        where,
        params,
        sort=sort,
        descending=descending,
        tie_breaker=tie,
        limit=limit,
        offset=offset,
    )


async def list_trajectories(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    status: str | None = None,
    agent_id: UUID | None = None,
    parent_trajectory_id: UUID | None = None,
    root_trajectory_id: UUID | None = None,
    limit: int,
    offset: int,
) -> Rows:
    """Newest first."""
    equal = {
        "status": status,
        "agent_id": agent_id,
        "parent_trajectory_id": parent_trajectory_id,
        "root_trajectory_id": root_trajectory_id,
    }
    return await _list(
        conn, "trajectories", tenant_id, equal, sort="created_at", descending=True, limit=limit, offset=offset
    )


async def list_scopes(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    trajectory_id: UUID | None = None,
    parent_scope_id: UUID | None = None,
    is_active: bool | None = None,
    limit: int,
    offset: int,
) -> Rows:
    """Oldest first: the order a trajectory opened its scopes in."""
    equal = {"trajectory_id": trajectory_id, "parent_scope_id": parent_scope_id, "is_active": is_active}
    return await _list(
        conn, "scopes", tenant_id, equal, sort="created_at", descending=False, limit=limit, offset=offset
    )


async def list_turns(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    scope_id: UUID | None = None,
    trajectory_id: UUID | None = None,
    role: str | None = None,
    execution_id: UUID | None = None,
    limit: int,
    offset: int,
) -> Rows:
    """In a scope: by sequence. Across scopes: oldest first."""
    equal = {"scope_id": scope_id, "trajectory_id": trajectory_id, "role": role, "execution_id": execution_id}
    sort = "sequence" if scope_id is not None else "created_at"
    return await _list(conn, "turns", tenant_id, equal, sort=sort, descending=False, limit=limit, offset=offset)
