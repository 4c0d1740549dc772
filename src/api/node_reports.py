"""What workers and outside services report about a node: heartbeat, completion, failure,
a decision, and glass-box telemetry."""

from __future__ import annotations

from typing import Annotated, Any, Literal
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
from domain.errors import FieldProblem, ValidationFailed

Attempt = Annotated[int, msgspec.Meta(ge=1)]
WorkerName = Annotated[str, msgspec.Meta(max_length=200)]


class NodeCompletion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Quipu's body (``output``) or jsondagapi's (``status``, ``outputs``, ``error``):
    ``status: "FAILED"`` reports a failed attempt with ``error`` as its message."""

    output: dict[str, Any] = {}
    outputs: dict[str, Any] | None = None
    status: Literal["COMPLETED", "FAILED"] | None = None
    error: Annotated[str, msgspec.Meta(max_length=10_000)] | dict[str, Any] | None = None
    attempt: Attempt | None = None  # when given, a report for an attempt that is over gets 409
    caused_by: Causes = []

    def failure(self) -> str | None:
        """The failure message when the body reports a failed attempt, else None."""
        if self.outputs is not None and self.output:
            raise ValidationFailed([FieldProblem("outputs", "send output or outputs, not both", "ambiguous")])
        if self.status != "FAILED":
            if self.error is not None:
                raise ValidationFailed([FieldProblem("error", "an error goes with status FAILED", "contradiction")])
            return None
        if isinstance(self.error, dict):
            return msgspec.json.encode(self.error).decode() or "failed"
        return self.error or "failed"

    def result(self) -> dict[str, Any]:
        return self.outputs if self.outputs is not None else self.output


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
    """``targets`` (the successors to take) or jsondagapi's ``outcome`` (a name the node's
    ``config.outcomes`` maps to successors, or a successor's id)."""

    targets: Annotated[list[str], msgspec.Meta(max_length=1000)] | None = None
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None

    def checked(self) -> Decision:
        if (self.targets is None) == (self.outcome is None):
            raise ValidationFailed([FieldProblem("targets", "send targets or outcome (one of them)", "ambiguous")])
        return self


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
        """A worker or service reports a task node's output; it merges into the state and the graph
        moves on. jsondagapi's ``{"status": "FAILED", "error": ...}`` reports a failed attempt instead."""
        failure = data.failure()
        if failure is not None:
            return await act(
                ctx,
                principal,
                execution_id,
                lambda e, c: e.fail_node(c, node_id, failure, data.attempt),
                data.caused_by,
            )
        return await act(
            ctx,
            principal,
            execution_id,
            lambda e, c: e.complete_node(c, node_id, data.result(), data.attempt),
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
        """An outside service chooses the branches of an external decision node: ``targets``, or
        an ``outcome`` the node's ``config.outcomes`` maps to successors (else a successor's id)."""
        choice = data.checked()
        return await act(
            ctx,
            principal,
            execution_id,
            lambda e, c: e.decide(c, node_id, choice.targets, choice.reason, outcome=choice.outcome),
        )

    @post("/telemetry", operation_id="recordTelemetry", opt={"scope": "worker"}, status_code=201)
    async def telemetry(
        self,
        execution_id: FromPath[UUID],
        data: JSONBody[TelemetryIn],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> TelemetryOut:
        """Record an ``llm_call``, ``tool_call`` or ``thought``, linked under the node that made it;
        ``type`` decides which fields the body takes. A thought carries its ``thought_type``
        (observation, reasoning, action), ``confidence`` and ``metadata``; Agent Studio's
        AgentThought (``type`` observation, reasoning or action, ``content``, ``timestamp``) is
        taken as it is and recorded as a thought of that type."""
        kind = data.kind()
        bind_correlation(execution_id)
        record = await anyio.to_thread.run_sync(
            lambda: ctx.executions.record_telemetry(
                principal.context(data.caused_by), execution_id, kind, data.node_id, data.payload()
            )
        )
        event = record.event
        return TelemetryOut(event.event_id, kind, execution_id, event.node_id, list(event.parent_ids))
