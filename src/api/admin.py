"""/api/v1/admin/projections (status and skips), /health, /ready and /metrics."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Principal
from api.context import ApiContext
from commands.log import backlog, head, read_kind
from commands.system_records import SystemRecords
from domain.envelope import EventEnvelope
from domain.errors import NotFound
from domain.system import MAX_REASON_CHARS
from projections.registry import PROJECTIONS
from projections.status import projector_state


class DeadLetter(msgspec.Struct):
    notification_id: int
    event_id: UUID
    kind: str
    error: str
    attempts: int
    next_retry_at: datetime


class SkippedEvent(msgspec.Struct):
    """An event the projection passes by on an admin's decision (``system.event_skipped``)."""

    event_id: UUID
    notification_id: int
    kind: str
    reason: str
    actor: str
    skip_event_id: UUID  # the decision itself, in the DAG (parent: the skipped event)
    recorded_at: datetime
    honoured: bool = False  # the projector has reached the decision


class UnpublishableEvent(msgspec.Struct):
    """An event the bus refused for good (``system.event_unpublishable``). Read models
    still have it (projectors read the log); bus subscribers never saw it."""

    event_id: UUID
    notification_id: int
    kind: str
    size: int
    reason: str
    record_event_id: UUID
    recorded_at: datetime


class ProjectionStatus(msgspec.Struct):
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None
    errors: list[DeadLetter]
    dead_letters: int = 0
    skipped: list[SkippedEvent] = []
    unpublishable: list[UnpublishableEvent] = []


class SkipRequest(msgspec.Struct, forbid_unknown_fields=True):
    event_id: UUID
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON_CHARS)]


class SkipRecorded(msgspec.Struct):
    projection: str
    event_id: UUID
    notification_id: int
    kind: str
    reason: str
    actor: str
    skip_event_id: UUID
    last_event_id: UUID  # the newest event this command appended (the skip record)


def _skipped(e: EventEnvelope, honoured: frozenset[int]) -> SkippedEvent:
    p = e.payload
    n = int(p["notification_id"])
    return SkippedEvent(
        UUID(p["skipped_event_id"]), n, p["event_kind"], p["reason"], e.actor, e.event_id, e.occurred_at, n in honoured
    )


def _unpublishable(e: EventEnvelope) -> UnpublishableEvent:
    p = e.payload
    return UnpublishableEvent(
        UUID(p["unpublished_event_id"]),
        int(p["notification_id"]),
        p["event_kind"],
        int(p["size"]),
        p["reason"],
        e.event_id,
        e.occurred_at,
    )


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
        """Each projector's position, lag behind the log head (events and seconds), parked
        errors (``errors``, the first 100, and ``dead_letters``, how many), the caller's
        tenant's events it skips on an admin's decision (``skipped``) and the tenant's
        events the relay could not publish to the bus (``unpublishable``)."""
        out: list[ProjectionStatus] = []
        async with ctx.pool.connection() as conn:
            top = await head(conn)
            skips = await read_kind(conn, "system.event_skipped", tenant_id=principal.tenant_id, limit=1000)
            refused = await read_kind(conn, "system.event_unpublishable", tenant_id=principal.tenant_id, limit=100)
            unpublishable = [_unpublishable(e) for e in refused]
            for cls in PROJECTIONS.values():
                state = await projector_state(conn, cls())
                lag_events, lag_seconds = await backlog(conn, state.position)
                errors = [DeadLetter(**vars(d)) for d in state.dead_letters]
                skipped = [_skipped(e, state.skipped_applied) for e in skips if e.payload["projection"] == cls.name]
                out.append(
                    ProjectionStatus(
                        cls.name,
                        state.position,
                        top,
                        lag_events,
                        lag_seconds,
                        state.updated_at,
                        errors,
                        state.dead_letter_count,
                        skipped,
                        unpublishable,
                    )
                )
        return out

    @post("/projections/{name:str}/skips", operation_id="skipProjectionEvent", opt={"scope": "admin"}, status_code=201)
    async def skip(
        self,
        name: FromPath[str],
        data: JSONBody[SkipRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> SkipRecorded:
        """Let projection ``name`` pass one event by - the way out when its handler keeps
        failing on that event (a dead letter in ``GET /admin/projections``).

        Nothing is rewritten: the decision is recorded as an event of its own,
        ``system.event_skipped``, with the reason and the actor, whose parent is the
        skipped event, so it stays in the DAG. The projection then never applies that
        event - its dead letter is cleared, and a rebuild passes it by too. Other
        projections are not affected. The event must be one of the caller's tenant.

        404: unknown projection or event. 409: the projection already skips it.
        """
        if name not in PROJECTIONS:
            raise NotFound(f"projection {name} not found")
        record, skipped = await anyio.to_thread.run_sync(
            lambda: SystemRecords(ctx.store).skip(
                principal.context(), projection=name, event_id=data.event_id, reason=data.reason
            )
        )
        assert record.last_event_id is not None
        return SkipRecorded(
            name,
            data.event_id,
            skipped.notification_id,
            skipped.kind,
            record.reason,
            principal.actor,
            record.last_event_id,
            record.last_event_id,
        )


class HealthController(Controller):
    path = "/"
    tags = ["health"]

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """Liveness: the process serves requests."""
        return Health("ok")

    @get(
        "/ready",
        operation_id="ready",
        responses={503: ResponseSpec(Health, description="Postgres does not answer: out of service")},
    )
    async def ready(self, ctx: NamedDependency[ApiContext]) -> Response[Health]:
        """Readiness: Postgres answers. NATS is reported but does not decide: without it the
        API still takes every command (the relay publishes them once NATS is back)."""
        checks: dict[str, str] = {}
        try:
            async with ctx.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as error:
            checks["postgres"] = f"error: {type(error).__name__}"
        ok = checks["postgres"] == "ok"
        try:
            # Shielded: a (re)connect attempt may take seconds and finishes in the background
            # instead of holding a probe that has a deadline of its own.
            nats_ok = await asyncio.wait_for(asyncio.shield(ctx.nats_ready()), 0.5)
        except TimeoutError:
            nats_ok = False
        checks["nats"] = "ok" if nats_ok else "degraded: not connected (informational; commands still accepted)"
        return Response(Health("ok" if ok else "unavailable", checks), status_code=200 if ok else 503)

    @get("/metrics", operation_id="metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self) -> Response[bytes]:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
