"""/api/v1/admin/projections, /health, /ready and /metrics."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Principal
from api.context import ApiContext
from commands.log import backlog, head
from projections.registry import PROJECTIONS
from projections.status import projector_state


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
                state = await projector_state(conn, cls())
                lag_events, lag_seconds = await backlog(conn, state.position)
                errors = [DeadLetter(**vars(d)) for d in state.dead_letters]
                out.append(
                    ProjectionStatus(cls.name, state.position, top, lag_events, lag_seconds, state.updated_at, errors)
                )
        return out


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
