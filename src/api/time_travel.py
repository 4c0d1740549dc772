"""Time travel (docs/architecture.md, API map): state as of any point, and replay of a run.

Both read the write side (events, DAG index, snapshots), never a read model, so what they
show cannot lag behind or be falsified by a projector. Nothing is re-run: a past state is
the aggregate rebuilt from its events up to that version (from the nearest snapshot).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage, Stream

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.executions import ExecutionOut, execution_out
from api.workflows import WorkflowOut, workflow_out
from commands.as_of import resolve_as_of
from commands.replay_log import ReplayRange, replay, replay_range
from domain.aggregate import Aggregate
from domain.envelope import EventEnvelope
from domain.workflow import Workflow

NDJSON = "application/x-ndjson"
AsOf = Annotated[
    str | None,
    QueryParameter(
        max_length=100,
        description="an event id, a version number or an ISO 8601 timestamp (UTC if no zone); absent: now",
    ),
]
Bound = Annotated[str | None, QueryParameter(max_length=100, description="an event id, a version or a timestamp")]
Pace = Annotated[
    float,
    QueryParameter(ge=0, le=10_000, description="speed factor: 1 real time, 10 ten times faster, 0 no delays"),
]
LastEventId = Annotated[UUID | None, HeaderParameter(name="Last-Event-ID")]


class AsOfOut(msgspec.Struct):
    """The event the state is right after: its stream version, id and time."""

    version: int
    event_id: UUID | None
    occurred_at: datetime


class ExecutionStateOut(ExecutionOut, kw_only=True):
    deleted: bool  # a deleted run's history stays readable here
    as_of: AsOfOut


class WorkflowStateOut(WorkflowOut, kw_only=True):
    deleted: bool
    as_of: AsOfOut


def _as_of(aggregate: Aggregate) -> AsOfOut:
    return AsOfOut(aggregate.version, aggregate.last_event_id, aggregate.modified_on)


class TimeTravelController(Controller):
    path = "/api/v1"
    tags = ["time travel"]

    @get("/executions/{execution_id:uuid}/state", operation_id="getExecutionStateAsOf")
    async def execution_state(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        as_of: AsOf = None,
    ) -> ExecutionStateOut:
        """The execution exactly as it was right after an event: by event id (one of its own
        events or of its telemetry), version, or timestamp (the last event at or before it).
        A deleted run's history stays readable: ``deleted`` says whether it was by then.
        404 for an unknown execution; 422 for a point that is not of this execution."""
        bind_correlation(execution_id)
        tenant = principal.tenant_id
        async with ctx.pool.connection() as conn:
            _, point = await resolve_as_of(conn, tenant, execution_id, "execution", as_of)
        version = point.version if point else None
        execution = await anyio.to_thread.run_sync(
            lambda: ctx.executions.get(tenant, execution_id, version, deleted_ok=True)
        )
        out = msgspec.structs.asdict(execution_out(execution))
        return ExecutionStateOut(**out, deleted=execution.deleted, as_of=_as_of(execution))

    @get("/workflows/{workflow_id:uuid}/state", operation_id="getWorkflowStateAsOf")
    async def workflow_state(
        self,
        workflow_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        as_of: AsOf = None,
    ) -> WorkflowStateOut:
        """The workflow definition as it was right after an event (id, version or timestamp).
        A deleted workflow's history stays readable: ``deleted`` says whether it was by then."""
        tenant = principal.tenant_id
        async with ctx.pool.connection() as conn:
            _, point = await resolve_as_of(conn, tenant, workflow_id, "workflow", as_of)
        version = point.version if point else None
        workflow = await anyio.to_thread.run_sync(
            lambda: ctx.store.load(Workflow, workflow_id, tenant, version=version)
        )
        out = msgspec.structs.asdict(workflow_out(workflow))
        return WorkflowStateOut(**out, deleted=workflow.deleted, as_of=_as_of(workflow))

    # No media_type on the route: it would override the SSE response's own content type.
    @get("/executions/{execution_id:uuid}/replay", operation_id="replayExecution")
    async def replay_execution(
        self,
        request: Request[Any, Any, Any],
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        start: Annotated[str | None, QueryParameter(name="from", max_length=100, description="first point")] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=100, description="last point")] = None,
        pace: Pace = 0.0,
        last_event_id: LastEventId = None,
    ) -> Stream:
        """The execution's envelopes (its events and its telemetry) in log order, from
        ``from`` to ``to`` inclusive (event ids, versions or timestamps; a ``to`` version past
        the last one means the last one). NDJSON, one envelope
        per line; Server-Sent Events with ``Accept: text/event-stream`` (``id`` is the event
        id, a reconnect with ``Last-Event-ID`` resumes after it, and a final ``end`` event
        gives the count). ``pace`` replays the recorded gaps (each at most 5 s) at that speed."""
        bind_correlation(execution_id)
        async with ctx.pool.connection() as conn:
            r = await replay_range(
                conn, principal.tenant_id, execution_id, start=start, end=end, resume_after=last_event_id
            )
        envelopes = replay(ctx.pool.connection, r, pace=pace)
        if "text/event-stream" in request.headers.get("accept", ""):
            return ServerSentEvent(_sse(envelopes, r))
        return Stream(_ndjson(envelopes), media_type=NDJSON)


async def _ndjson(envelopes: AsyncIterator[EventEnvelope]) -> AsyncIterator[bytes]:
    async for envelope in envelopes:
        yield msgspec.json.encode(envelope) + b"\n"


async def _sse(envelopes: AsyncIterator[EventEnvelope], r: ReplayRange) -> AsyncIterator[ServerSentEventMessage]:
    count, last = 0, None
    yield ServerSentEventMessage(data=None, comment=f"replay of execution {r.stream.stream_id}")
    async for envelope in envelopes:
        count, last = count + 1, envelope.event_id
        yield ServerSentEventMessage(data=msgspec.json.encode(envelope).decode(), id=str(envelope.event_id))
    # An EventSource reconnects when a stream ends; ``end`` tells it to close instead.
    end = {"count": count, "last_event_id": str(last) if last else None}
    yield ServerSentEventMessage(data=msgspec.json.encode(end).decode(), event="end")
