"""Read model of messages between agents (schema ``rm_messages``; CELLSTATE reference).

Serves the list with the reference's filters (type, sender, recipient agent or type,
trajectory, priority, undelivered, unacknowledged) and the inbox feeds (what an agent has
not been handed yet, most urgent first). A row keeps its recipients, and who it was
delivered to and acknowledged by, as arrays set whole from each event's agent (appending
an agent already there changes nothing), so a redelivered event changes nothing and a
rebuild from the log ends identical.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.paging import page

#: Delivery order, most urgent first (as ``domain.message.PRIORITY_RANK``; projections
#: read payloads, not the domain's tables).
_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}


async def _sent(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO messages (tenant_id, message_id, from_agent_id, to_agent_id, to_agent_type, recipient_ids,"
        " message_type, priority, priority_rank, payload, trajectory_id, scope_id, artifact_ids, expires_at,"
        " in_reply_to, delivered_to, acknowledged_by, created_at, updated_at, version, last_event_id)"
        " VALUES (%s, %s, %s, %s, %s, %s::uuid[], %s, %s, %s, %s, %s, %s, %s::uuid[], %s, %s, '{}', '{}',"
        " %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            p["from_agent_id"],
            p.get("to_agent_id"),
            p.get("to_agent_type"),
            p.get("recipient_ids") or [],
            p["message_type"],
            p["priority"],
            _RANK.get(p["priority"], len(_RANK)),
            p.get("content") or "",
            p.get("trajectory_id"),
            p.get("scope_id"),
            p.get("artifact_ids") or [],
            p.get("expires_at"),
            p.get("in_reply_to"),
            e.occurred_at,
            e.occurred_at,
            e.version,
            e.event_id,
        ),
    )


async def _handled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    """Delivered to, or acknowledged by, one agent; an acknowledgement also delivers."""
    agent = e.payload["agent_id"]
    acknowledged = e.kind == "message.acknowledged"
    await cur.execute(
        "UPDATE messages SET"
        " delivered_to = CASE WHEN %(a)s::uuid = ANY(delivered_to) THEN delivered_to"
        "  ELSE delivered_to || %(a)s::uuid END,"
        " delivered_at = coalesce(delivered_at, %(t)s),"
        " acknowledged_by = CASE WHEN NOT %(ack)s OR %(a)s::uuid = ANY(acknowledged_by) THEN acknowledged_by"
        "  ELSE acknowledged_by || %(a)s::uuid END,"
        " acknowledged_at = CASE WHEN %(ack)s THEN coalesce(acknowledged_at, %(t)s) ELSE acknowledged_at END,"
        " version = %(v)s, last_event_id = %(e)s, updated_at = %(t)s"
        " WHERE tenant_id = %(tenant)s AND message_id = %(id)s",
        {
            "a": agent,
            "ack": acknowledged,
            "t": e.occurred_at,
            "v": e.version,
            "e": e.event_id,
            "tenant": e.tenant_id,
            "id": e.stream_id,
        },
    )


class MessagesProjection(Projection):
    name: ClassVar[str] = "messages"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS messages ("
        " tenant_id text NOT NULL, message_id uuid NOT NULL, from_agent_id uuid NOT NULL, to_agent_id uuid,"
        " to_agent_type text, recipient_ids uuid[] NOT NULL, message_type text NOT NULL, priority text NOT NULL,"
        " priority_rank smallint NOT NULL, payload text NOT NULL, trajectory_id uuid, scope_id uuid,"
        " artifact_ids uuid[] NOT NULL, expires_at timestamptz, in_reply_to uuid,"
        " delivered_to uuid[] NOT NULL, acknowledged_by uuid[] NOT NULL,"
        " delivered_at timestamptz, acknowledged_at timestamptz,"
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL,"
        " last_event_id uuid NOT NULL, PRIMARY KEY (tenant_id, message_id))",
        "CREATE INDEX IF NOT EXISTS messages_created ON messages (tenant_id, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS messages_recipients ON messages USING gin (recipient_ids)",
        "CREATE INDEX IF NOT EXISTS messages_sender ON messages (tenant_id, from_agent_id, created_at DESC)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "message.sent": _sent,
        "message.delivered": _handled,
        "message.acknowledged": _handled,
    }


_S = MessagesProjection.schema()


async def list_messages(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    *,
    message_type: str | None = None,
    from_agent_id: UUID | None = None,
    to_agent_id: UUID | None = None,
    to_agent_type: str | None = None,
    trajectory_id: UUID | None = None,
    priority: str | None = None,
    undelivered_only: bool = False,
    unacknowledged_only: bool = False,
    limit: int,
    offset: int,
) -> tuple[list[DictRow], int]:
    """Newest first. With ``to_agent_id``, "undelivered" and "unacknowledged" mean "to
    that agent"; otherwise "to anyone"."""
    where = " WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    for column, value in (
        ("message_type", message_type),
        ("from_agent_id", from_agent_id),
        ("to_agent_type", to_agent_type),
        ("trajectory_id", trajectory_id),
        ("priority", priority),
    ):
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    if to_agent_id is not None:
        where += " AND recipient_ids @> ARRAY[%s::uuid]"
        params.append(to_agent_id)
    if undelivered_only:
        where += " AND NOT (%s::uuid = ANY(delivered_to))" if to_agent_id else " AND delivered_at IS NULL"
        params += [to_agent_id] if to_agent_id else []
    if unacknowledged_only:
        where += " AND NOT (%s::uuid = ANY(acknowledged_by))" if to_agent_id else " AND acknowledged_at IS NULL"
        params += [to_agent_id] if to_agent_id else []
    return await page(
        conn,
        f"{_S}.messages",
        where,
        params,
        sort="created_at",
        descending=True,
        tie_breaker="message_id",
        limit=limit,
        offset=offset,
    )


async def undelivered(conn: AsyncConnection[DictRow], tenant_id: str, agent_id: UUID, most: int) -> list[DictRow]:
    """What ``agent_id`` has not been handed yet and has not expired: by priority, then
    oldest first."""
    cur = await conn.execute(
        f"SELECT * FROM {_S}.messages WHERE tenant_id = %s AND recipient_ids @> ARRAY[%s::uuid]"
        " AND NOT (%s::uuid = ANY(delivered_to)) AND (expires_at IS NULL OR expires_at > now())"
        " ORDER BY priority_rank, created_at, message_id LIMIT %s",
        (tenant_id, agent_id, agent_id, most),
    )
    return await cur.fetchall()
