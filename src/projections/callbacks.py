"""Read models of the callback registry and its deliveries, derived from events only.

- ``callbacks``: every callback id a tenant registered, with its URL and status (the list).
- ``callback_refs``: which live workflow's node names which callback id (a deregistration
  is refused while any row names it).
- ``callback_deliveries``: one row per scheduling of a callback node, with its status and,
  while pending, when its next attempt is due. This is the deliverer's durable to-do list,
  as the ``timers`` read model is the timer runner's: a row appears with the
  ``execution.node_scheduled`` event that names a ``callback_id``, and its due time moves
  with each recorded attempt, so a restarted deliverer resumes from here. The deliverer
  treats a row only as a hint and asks the log before each attempt.
- ``callback_delivery_attempts``: every attempt (``delivery.attempted``), for the deliveries list.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from domain.errors import Conflict
from projections.base import Handler, Projection
from projections.paging import page

_TERMINAL = ("execution.succeeded", "execution.failed", "execution.cancelled", "execution.timed_out")


async def _registered(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO callbacks (tenant_id, callback_id, service_name, environment, url, status, registered_at,"
        " updated_at, version, last_event_id) VALUES (%s, %s, %s, %s, %s, 'ACTIVE', %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, callback_id) DO UPDATE SET service_name = excluded.service_name,"
        " environment = excluded.environment, url = excluded.url, status = 'ACTIVE',"
        " registered_at = excluded.registered_at, updated_at = excluded.updated_at, version = excluded.version,"
        " last_event_id = excluded.last_event_id",
        (
            e.tenant_id,
            p["callback_id"],
            p["service_name"],
            p["environment"],
            p["url"],
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _deregistered(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "UPDATE callbacks SET status = 'DEREGISTERED', updated_at = %s, version = %s, last_event_id = %s"
        " WHERE tenant_id = %s AND callback_id = %s",
        (e.occurred_at, e.version, e.event_id, e.tenant_id, e.payload["callback_id"]),
    )


async def _refer(cur: AsyncCursor[DictRow], e: EventEnvelope, node: dict[str, Any]) -> None:
    if node.get("callback_id"):
        await cur.execute(
            "INSERT INTO callback_refs (tenant_id, workflow_id, node_id, callback_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, workflow_id, node_id) DO UPDATE SET callback_id = excluded.callback_id",
            (e.tenant_id, e.stream_id, node["id"], node["callback_id"]),
        )


async def _unrefer(cur: AsyncCursor[DictRow], e: EventEnvelope, node_id: str | None = None) -> None:
    sql = "DELETE FROM callback_refs WHERE tenant_id = %s AND workflow_id = %s"
    params: list[Any] = [e.tenant_id, e.stream_id]
    if node_id is not None:
        sql, params = sql + " AND node_id = %s", [*params, node_id]
    await cur.execute(sql, params)


async def _definition(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A whole new definition (created or replaced): its callback references replace the old."""
    await _unrefer(cur, e)
    for node in e.payload["definition"]["nodes"]:
        await _refer(cur, e, node)


async def _node(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    node = e.payload["node"]
    await _unrefer(cur, e, node["id"])
    await _refer(cur, e, node)


async def _node_removed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await _unrefer(cur, e, e.payload["node_id"])


async def _workflow_deleted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await _unrefer(cur, e)


async def _scheduled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """A callback node was scheduled: a delivery is due now."""
    callback_id = e.payload.get("callback_id")
    if not callback_id:
        return
    await cur.execute(
        "INSERT INTO callback_deliveries (tenant_id, delivery_id, callback_id, execution_id, node_id,"
        " node_attempt, status, attempts, due_at, scheduled_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'pending', 0, %s, %s, %s) ON CONFLICT (delivery_id) DO NOTHING",
        (
            e.tenant_id,
            e.event_id,
            callback_id,
            e.stream_id,
            e.payload["node_id"],
            e.payload.get("attempt", 1),
            e.occurred_at,
            e.occurred_at,
            e.occurred_at,
        ),
    )


async def _node_over(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """The node's attempt is over (answered, failed, timed out): nothing left to deliver."""
    await cur.execute(
        "UPDATE callback_deliveries SET status = 'cancelled', due_at = NULL, updated_at = %s"
        " WHERE tenant_id = %s AND execution_id = %s AND node_id = %s AND status = 'pending'",
        (e.occurred_at, e.tenant_id, e.stream_id, e.payload["node_id"]),
    )


async def _run_over(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "UPDATE callback_deliveries SET status = 'cancelled', due_at = NULL, updated_at = %s"
        " WHERE tenant_id = %s AND execution_id = %s AND status = 'pending'",
        (e.occurred_at, e.tenant_id, e.stream_id),
    )


async def _attempted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    delivery_id = p["scheduling_event_id"]
    await cur.execute(
        "INSERT INTO callback_delivery_attempts (tenant_id, event_id, delivery_id, callback_id, execution_id,"
        " node_id, node_attempt, attempt, url, outcome, status_code, latency_ms, error, retry_at, attempted_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (
            e.tenant_id,
            e.event_id,
            delivery_id,
            p["callback_id"],
            p["execution_id"],
            p["node_id"],
            p["node_attempt"],
            p["attempt"],
            p["url"],
            p["outcome"],
            p.get("status_code"),
            p["latency_ms"],
            p.get("error"),
            p.get("retry_at"),
            e.occurred_at,
        ),
    )
    if p["outcome"] == "delivered":  # also after the node was answered while the call was under way
        await cur.execute(
            "UPDATE callback_deliveries SET status = 'delivered', attempts = %s, due_at = NULL, updated_at = %s"
            " WHERE delivery_id = %s AND status IN ('pending', 'cancelled')",
            (p["attempt"], e.occurred_at, delivery_id),
        )
    else:
        await cur.execute(
            "UPDATE callback_deliveries SET attempts = %s, updated_at = %s,"
            " due_at = CASE WHEN status = 'pending' THEN %s::timestamptz ELSE NULL END WHERE delivery_id = %s",
            (p["attempt"], e.occurred_at, p.get("retry_at"), delivery_id),
        )


async def _dead(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        "UPDATE callback_deliveries SET status = 'dead', due_at = NULL, updated_at = %s"
        " WHERE delivery_id = %s AND status IN ('pending', 'cancelled')",
        (e.occurred_at, e.payload["scheduling_event_id"]),
    )


class CallbacksProjection(Projection):
    name: ClassVar[str] = "callbacks"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS callbacks ("
        " tenant_id text NOT NULL, callback_id text NOT NULL, service_name text NOT NULL,"
        " environment text NOT NULL, url text NOT NULL, status text NOT NULL,"
        " registered_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL,"
        " last_event_id uuid NOT NULL, PRIMARY KEY (tenant_id, callback_id))",
        "CREATE TABLE IF NOT EXISTS callback_refs ("
        " tenant_id text NOT NULL, workflow_id uuid NOT NULL, node_id text NOT NULL, callback_id text NOT NULL,"
        " PRIMARY KEY (tenant_id, workflow_id, node_id))",
        "CREATE INDEX IF NOT EXISTS callback_refs_by_callback ON callback_refs (tenant_id, callback_id)",
        "CREATE TABLE IF NOT EXISTS callback_deliveries ("
        " tenant_id text NOT NULL, delivery_id uuid PRIMARY KEY, callback_id text NOT NULL,"
        " execution_id uuid NOT NULL, node_id text NOT NULL, node_attempt integer NOT NULL,"
        " status text NOT NULL, attempts integer NOT NULL, due_at timestamptz,"
        " scheduled_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS callback_deliveries_due ON callback_deliveries (due_at) WHERE status = 'pending'",
        "CREATE INDEX IF NOT EXISTS callback_deliveries_node ON callback_deliveries (tenant_id, execution_id, node_id)",
        "CREATE TABLE IF NOT EXISTS callback_delivery_attempts ("
        " tenant_id text NOT NULL, event_id uuid PRIMARY KEY, delivery_id uuid, callback_id text NOT NULL,"
        " execution_id uuid NOT NULL, node_id text NOT NULL, node_attempt integer NOT NULL,"
        " attempt integer NOT NULL, url text NOT NULL, outcome text NOT NULL, status_code integer,"
        " latency_ms double precision NOT NULL, error text, retry_at timestamptz, attempted_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS callback_attempts_by_callback"
        " ON callback_delivery_attempts (tenant_id, callback_id, attempted_at)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "callback.registered": _registered,
        "callback.deregistered": _deregistered,
        "workflow.created": _definition,
        "workflow.updated": _definition,
        "workflow.node_added": _node,
        "workflow.node_updated": _node,
        "workflow.node_removed": _node_removed,
        "workflow.deleted": _workflow_deleted,
        "execution.node_scheduled": _scheduled,
        "execution.node_completed": _node_over,
        "execution.decision_made": _node_over,
        "execution.node_failed": _node_over,
        **dict.fromkeys(_TERMINAL, _run_over),
        "delivery.attempted": _attempted,
        "delivery.dead": _dead,
    }


async def list_callbacks(
    conn: AsyncConnection[DictRow], tenant_id: str, *, status: str | None, limit: int, offset: int
) -> tuple[list[DictRow], int]:
    where, params = " WHERE tenant_id = %s", [tenant_id]
    if status is not None:
        where, params = where + " AND status = %s", [*params, status]
    return await page(
        conn,
        f"{CallbacksProjection.schema()}.callbacks",
        where,
        params,
        sort="callback_id",
        descending=False,
        tie_breaker="callback_id",
        limit=limit,
        offset=offset,
    )


async def referencing_workflows(
    conn: AsyncConnection[DictRow], tenant_id: str, callback_id: str, *, wait_seconds: float = 5.0
) -> list[str]:
    """Live workflows whose current definition names ``callback_id``. Read your writes: first
    waits until this read model has applied the tenant's latest workflow event in the log,
    so a workflow created a moment ago counts (409 if the read model does not catch up)."""
    cur = await conn.execute(
        "SELECT coalesce(max(notification_id), 0) AS n FROM event_dag WHERE tenant_id = %s AND kind LIKE 'workflow.%%'",
        (tenant_id,),
    )
    latest = await cur.fetchone()
    target = int(latest["n"]) if latest else 0
    deadline = time.monotonic() + wait_seconds
    while True:
        cur = await conn.execute(f"SELECT notification_id FROM {CallbacksProjection.schema()}.tracking")
        seen = await cur.fetchone()
        if seen is not None and int(seen["notification_id"]) >= target:
            break
        if time.monotonic() > deadline:
            raise Conflict("the callbacks read model is catching up with recent workflow changes; retry shortly")
        await asyncio.sleep(0.05)
    cur = await conn.execute(
        f"SELECT DISTINCT workflow_id FROM {CallbacksProjection.schema()}.callback_refs"
        " WHERE tenant_id = %s AND callback_id = %s ORDER BY workflow_id",
        (tenant_id, callback_id),
    )
    return [str(r["workflow_id"]) for r in await cur.fetchall()]


async def list_attempts(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    callback_id: str,
    *,
    execution_id: UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[DictRow], int]:
    """A callback's delivery attempts, oldest first, each with its delivery's current status."""
    schema = CallbacksProjection.schema()
    table = (
        f"(SELECT a.*, coalesce(d.status, 'pending') AS delivery_status FROM {schema}.callback_delivery_attempts a"
        f" LEFT JOIN {schema}.callback_deliveries d ON d.delivery_id = a.delivery_id) AS attempts"
    )
    where = " WHERE tenant_id = %s AND callback_id = %s"
    params: list[Any] = [tenant_id, callback_id]
    if execution_id is not None:
        where, params = where + " AND execution_id = %s", [*params, execution_id]
    return await page(
        conn,
        table,
        where,
        params,
        sort="attempted_at",
        descending=False,
        tie_breaker="event_id",
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class DueDelivery:
    tenant_id: str
    delivery_id: UUID  # the scheduling event's id
    callback_id: str
    execution_id: UUID
    node_id: str
    node_attempt: int
    due_at: datetime


async def due_deliveries(conn: AsyncConnection[DictRow], now: datetime, limit: int) -> list[DueDelivery]:
    """Pending deliveries due at ``now``, the most overdue first (all tenants: the deliverer is the system)."""
    cur = await conn.execute(
        "SELECT tenant_id, delivery_id, callback_id, execution_id, node_id, node_attempt, due_at"
        f" FROM {CallbacksProjection.schema()}.callback_deliveries"
        " WHERE status = 'pending' AND due_at <= %s ORDER BY due_at, delivery_id LIMIT %s",
        (now, limit),
    )
    return [DueDelivery(**r) for r in await cur.fetchall()]
