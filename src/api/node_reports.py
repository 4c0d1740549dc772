"""What workers and outside services report about a node: heartbeat, completion, failure,
a decision, and glass-box telemetry."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.executions import Causes, ExecutionOut, act
from api.telemetry_bodies import TelemetryIn

Attempt = Annotated[int, msgspec.Meta(ge=1)]
WorkerName = Annotated[str, msgspec.Meta(max_length=200)]


class NodeCompletion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    output: dict[str, Any] = {}
    attempt: Attempt | None = None  # when given, a report for an attempt that is over gets 409
    caused_by: Causes = []


class NodeFailure(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    error: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    attempt: Attempt | None = None
    caused_by: Causes = []


class Heartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    attempt: Attempt | None = None
    worker: WorkerName | None = None


class HeartbeatOut(msgspec.Struct):
    execution_id: UUID
    node_id: str
    node_status: str
    attempt: int
    execution_status: str


class Decision(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    targets: Annotated[list[str], msgspec.Meta(max_length=1000)]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class TelemetryOut(msgspec.Struct):
    event_id: UUID
    type: str
    execution_id: UUID
    node_id: str | None
    parent_ids: list[UUID]


class NodeReportController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}"
    tags = ["executions"]

    @post("/nodes/{node_id:str}/complete", operation_id="completeNode", opt={"scope": "worker"}, status_code=200)
    async def complete(
        self,
        execution_id: FromPath[UUID],
        node_id: FromPath[str],
        data: JSONBody[NodeCompletion],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> ExecutionOut:
        """A worker reports a task node's output; it merges into the state and the graph moves on."""
        return await act(
            ctx,
            principal,
            execution_id,
            lambda e, c: e.complete_node(c, node_id, data.output, data.attempt),
            data.caused_by,
        )

    @post("/nodes/{node_id:str}/fail", operation_id="failNode", opt={"scope": "worker"}, status_code=200)
    async def fail(
        self,
        execution_id: FromPath[UUID],
        node_id: FromPath[str],
        data: JSONBody[NodeFailure],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> ExecutionOut:
        """A worker reports a failed attempt: retried with backoff while ``max_retries`` allows, else the run fails."""
        return await act(
            ctx, principal, execution_id, lambda e, c: e.fail_node(c, node_id, data.error, data.attempt), data.caused_by
        )

    @post("/nodes/{node_id:str}/heartbeat", operation_id="heartbeatNode", opt={"scope": "worker"}, status_code=200)
    async def heartbeat(
        self,
        execution_id: FromPath[UUID],
        node_id: FromPath[str],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[Heartbeat | None] = None,
    ) -> HeartbeatOut:
        """A worker is alive on the node. The first heartbeat records that the attempt started;
        409 tells the worker to stop (the attempt is over, or the execution ended)."""
        beat = data or Heartbeat()
        out = await act(ctx, principal, execution_id, lambda e, c: e.heartbeat(c, node_id, beat.attempt, beat.worker))
        return HeartbeatOut(execution_id, node_id, out.nodes[node_id], out.attempts[node_id], out.status)

    @post("/decisions/{node_id:str}", operation_id="decideNode", opt={"scope": "write"}, status_code=200)
    async def decide(
        self,
        execution_id: FromPath[UUID],
        node_id: FromPath[str],
        data: JSONBody[Decision],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> ExecutionOut:
        """An outside service chooses the branches (``targets``) of an external decision node."""
        return await act(ctx, principal, execution_id, lambda e, c: e.decide(c, node_id, data.targets, data.reason))

    @post("/telemetry", operation_id="recordTelemetry", opt={"scope": "worker"}, status_code=201)
    async def telemetry(
        self,
        execution_id: FromPath[UUID],
        data: JSONBody[TelemetryIn],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> TelemetryOut:
        """Record an ``llm_call``, ``tool_call`` or ``thought``, linked under the node that made it;
        ``type`` decides which fields the body takes."""
        kind = str(data.__struct_config__.tag)
        bind_correlation(execution_id)
        record = await anyio.to_thread.run_sync(
            lambda: ctx.executions.record_telemetry(
                principal.context(data.caused_by), execution_id, kind, data.node_id, data.payload()
            )
        )
        event = record.event
        return TelemetryOut(event.event_id, kind, execution_id, event.node_id, list(event.parent_ids))
