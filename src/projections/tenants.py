"""Read model of tenants: every tenant the log knows, with or without a stream of its own.

A tenant appears with its first API key (``api_key.issued``), named after its id and
active, so tenants from before tenants had streams are listed too; its own events
(``tenant.*``) then fill in name, settings, domain and status. Keys are counted, so an
operator sees which tenants are in use. Serves the operator's tenant list.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.paging import page

_INSERT = (
    "INSERT INTO tenants (tenant_id, name, settings, domain, status, api_keys, created_at, updated_at,"
    " version, last_event_id) VALUES (%s, %s, %s, %s, 'active', %s, %s, %s, %s, %s)"
)


def _settings(p: dict[str, Any]) -> Jsonb:
    return Jsonb(p.get("settings") or {})


async def _key_issued(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute(
        _INSERT + " ON CONFLICT (tenant_id) DO UPDATE SET api_keys = tenants.api_keys + 1",
        (e.tenant_id, e.tenant_id, Jsonb({}), None, 1, e.occurred_at, e.occurred_at, 0, None),
    )


async def _registered(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        _INSERT + " ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name, settings = excluded.settings,"
        " domain = excluded.domain, version = excluded.version, last_event_id = excluded.last_event_id,"
        " updated_at = excluded.updated_at",
        (e.tenant_id, p["name"], _settings(p), p.get("domain"), 0, e.occurred_at, e.occurred_at, e.version, e.event_id),
    )


async def _changed(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    values: list[Any]
    if e.kind == "tenant.updated":
        sets, values = "name = %s, settings = %s, domain = %s", [p["name"], _settings(p), p.get("domain")]
    else:
        sets, values = "status = %s", [p["status"]]
    await cur.execute(
        f"UPDATE tenants SET {sets}, version = %s, last_event_id = %s, updated_at = %s WHERE tenant_id = %s",
        [*values, e.version, e.event_id, e.occurred_at, e.tenant_id],
    )


class TenantsProjection(Projection):
    name: ClassVar[str] = "tenants"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS tenants ("
        " tenant_id text PRIMARY KEY, name text NOT NULL, settings jsonb NOT NULL, domain text,"
        " status text NOT NULL, api_keys integer NOT NULL, created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL, version bigint NOT NULL, last_event_id uuid)",
        "CREATE INDEX IF NOT EXISTS tenants_status ON tenants (status, tenant_id)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "api_key.issued": _key_issued,
        "tenant.registered": _registered,
        "tenant.updated": _changed,
        "tenant.status_changed": _changed,
    }


async def list_tenants(
    conn: AsyncConnection[DictRow], *, status: str | None = None, limit: int, offset: int
) -> tuple[list[DictRow], int]:
    """Every tenant (an operator's view), by id."""
    where, params = " WHERE true", []
    if status is not None:
        where, params = " WHERE status = %s", [status]
    return await page(
        conn,
        f"{TenantsProjection.schema()}.tenants",
        where,
        params,
        sort="tenant_id",
        descending=False,
        tie_breaker="tenant_id",
        limit=limit,
        offset=offset,
    )
