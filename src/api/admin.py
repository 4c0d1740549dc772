"""/api/v1/admin/projections, /health, /ready and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Principal
from api.context import ApiContext
from commands.log import head, read_after
from projections.applier import position
from projections.registry import PROJECTIONS


class DeadLetter(msgspec.Struct):
    notification_id: int
    event_id: UUID
    kind: str
    error: str
    attempts: int
    next_retry_at: datetime


class ProjectionStatus(msgspec.Struct):
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None
    errors: list[DeadLetter]


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = {}


class AdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]

    @get("/projections", operation_id="listProjections", opt={"scope": "admin"})
    async def projections(
        self, ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> list[ProjectionStatus]:
        """Each projector's position, lag (events and seconds) and parked errors."""
        out: list[ProjectionStatus] = []
        async with ctx.pool.connection() as conn:
            top = await head(conn)
            for cls in PROJECTIONS.values():
                proj = cls()
                try:
                    pos, updated = await position(conn, proj)
                except Exception:
                    await conn.rollback()
                    pos, updated = 0, None
                behind = await read_after(conn, pos, 1)
                lag_s = (datetime.now(UTC) - behind[0].occurred_at).total_seconds() if behind else 0.0
                cur = (
                    await conn.execute(
                        "SELECT notification_id, event_id, kind, error, attempts, next_retry_at"
                        " FROM projection_dead_letters WHERE projection = %s ORDER BY notification_id LIMIT 100",
                        (proj.name,),
                    )
                    if await _has_dead_letters_table(conn)
                    else None
                )
                errors = [DeadLetter(**r) for r in await cur.fetchall()] if cur else []
                lag_events = await _count_after(conn, pos) if behind else 0
                out.append(ProjectionStatus(proj.name, pos, top, lag_events, max(lag_s, 0.0), updated, errors))
        return out


async def _has_dead_letters_table(conn: Any) -> bool:
    cur = await conn.execute("SELECT to_regclass('public.projection_dead_letters') IS NOT NULL AS ok")
    row = await cur.fetchone()
    return bool(row and row["ok"])


async def _count_after(conn: Any, pos: int) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM event_dag WHERE notification_id > %s", (pos,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


class HealthController(Controller):
    path = "/"
    tags = ["health"]

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """Liveness: the process serves requests."""
        return Health("ok")

    @get("/ready", operation_id="ready")
    async def ready(self, ctx: NamedDependency[ApiContext]) -> Response[Health]:
        """Readiness: Postgres answers and NATS is connected."""
        checks: dict[str, str] = {}
        try:
            async with ctx.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as error:
            checks["postgres"] = f"error: {type(error).__name__}"
        checks["nats"] = "ok" if await ctx.nats_ready() else "error: not connected"
        ok = all(v == "ok" for v in checks.values())
        return Response(Health("ok" if ok else "unavailable", checks), status_code=200 if ok else 503)

    @get("/metrics", operation_id="metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self) -> Response[bytes]:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
