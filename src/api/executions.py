"""/api/v1/executions and /api/v1/approvals: runs of workflows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.jsondag_compat import StatusStyle, WorkflowVersion, definition_version, status_name, styled
from api.pagination import MAX_VERSION, Limit, Offset, Page, created_headers
from api.workflows import IdempotencyKey
from domain.aggregate import CommandContext
from domain.errors import FieldProblem, ValidationFailed
from domain.execution import Execution, ExecutionStatus
from domain.forking import ForkOrigin
from domain.scheduling import NodeStatus
from projections.executions import list_executions

Causes = Annotated[list[UUID], msgspec.Meta(max_length=100)]


class ExecutionStart(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Quipu's ``version`` and ``input``, or jsondagapi's ``workflow_version`` and ``inputs``
    (see ``api.jsondag_compat`` for how a version such as "1.0.0" is read)."""

    workflow_id: UUID
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)] | None = None
    workflow_version: WorkflowVersion | None = None
    input: dict[str, Any] = {}
    inputs: dict[str, Any] | None = None
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=30 * 24 * 3600)] | None = None
    caused_by: Causes = []

    def chosen_version(self) -> int | None:
        if self.workflow_version is None:
            return self.version
        if self.version is not None:
            raise ValidationFailed([FieldProblem("workflow_version", "send version or workflow_version", "ambiguous")])
        return definition_version(self.workflow_version)

    def chosen_input(self) -> dict[str, Any]:
        if self.inputs is None:
            return self.input
        if self.input:
            raise ValidationFailed([FieldProblem("inputs", "send input or inputs, not both", "ambiguous")])
        return self.inputs


class Steer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ResumeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A person's answer sent with the resume (the Analemma OS reference's HITP response)."""

    user_response: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    additional_data: dict[str, Any] = {}


class PendingApproval(msgspec.Struct):
    approval_id: UUID
    node_id: str


class ExecutionOut(msgspec.Struct):
    id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    error: str | None
    progress: float
    current_nodes: list[str]
    node_counts: dict[str, int]
    attempts: dict[str, int]
    nodes: dict[str, str]
    pending_approvals: list[PendingApproval]
    state: dict[str, Any]
    version: int
    last_event_id: UUID | None
    deadline: datetime | None
    fork: ForkOrigin | None  # set on a branch: the run and event it forked from
    created_at: datetime
    updated_at: datetime


class ExecutionDeletedOut(msgspec.Struct):
    """The tombstone just recorded; the run's events stay in the log."""

    execution_id: UUID
    status: str  # the status the run had ended with
    message: str
    last_event_id: UUID | None  # the ``execution.deleted`` event
    deleted_at: datetime


class ExecutionSummary(msgspec.Struct):
    id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    progress: float
    current_nodes: list[str]
    created_at: datetime
    updated_at: datetime


def execution_out(e: Execution) -> ExecutionOut:
    total = len(e.definition.nodes)
    statuses = {n.id: e.nodes.get(n.id, NodeStatus.PENDING).value for n in e.definition.nodes}
    finished = sum(1 for s in statuses.values() if s in ("succeeded", "skipped"))
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return ExecutionOut(
        id=e.id,
        workflow_id=e.workflow_id,
        workflow_version=e.workflow_version,
        status=e.status.value,
        error=e.error,
        progress=round(100.0 * finished / total, 1) if total else 100.0,
        current_nodes=[n for n, s in statuses.items() if s in ("scheduled", "running")],
        node_counts=counts,
        attempts=dict(e.attempts),
        nodes=statuses,
        pending_approvals=[PendingApproval(a, n) for n, a in e.pending_approvals().items()],
        state=e.state,
        version=e.version,
        last_event_id=e.last_event_id,
        deadline=e.deadline,
        fork=e.fork,
        created_at=e.created_on,
        updated_at=e.modified_on,
    )


async def act(
    ctx: ApiContext,
    principal: Principal,
    execution_id: UUID,
    command: Callable[[Execution, CommandContext], None],
    caused_by: list[UUID] | None = None,
) -> ExecutionOut:
    """Load, let the aggregate decide, save: in a thread, since the event store is synchronous."""
    bind_correlation(execution_id)
    execution = await anyio.to_thread.run_sync(
        lambda: ctx.executions.act(principal.context(caused_by), execution_id, command)
    )
    return execution_out(execution)


class ExecutionController(Controller):
    path = "/api/v1/executions"
    tags = ["executions"]

    @post("/", operation_id="startExecution", opt={"scope": "write"}, status_code=201)
    async def start(
        self,
        data: JSONBody[ExecutionStart],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
        style: StatusStyle = "quipu",
    ) -> Response[ExecutionOut]:
        """Start a run of a workflow (latest or ``version``). Safe to retry with ``Idempotency-Key``.
        ``?style=jsondag`` names the status as jsondagapi does (``RUNNING``...)."""
        raw = msgspec.to_builtins(data)
        version, run_input = data.chosen_version(), data.chosen_input()
        execution, created = await anyio.to_thread.run_sync(
            lambda: ctx.executions.start(
                principal.context(data.caused_by),
                data.workflow_id,
                version=version,
                input=run_input,
                idempotency_key=idempotency_key,
                raw_body=raw,
                timeout=data.timeout_seconds,
            )
        )
        bind_correlation(execution.id)
        headers = created_headers(f"/api/v1/executions/{execution.id}", created_now=created)
        return Response(styled(execution_out(execution), style), status_code=201, headers=headers)

    @get("/", operation_id="listExecutions")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[ExecutionStatus | None] = None,
        workflow_id: FromQuery[UUID | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        sort: FromQuery[Literal["created_at", "updated_at", "status"]] = "created_at",
        order: FromQuery[Literal["asc", "desc"]] = "desc",
        style: StatusStyle = "quipu",
    ) -> Page[ExecutionSummary]:
        """The task-manager view, from the ``executions`` read model: filter, sort, page.
        ``?style=jsondag`` names the statuses as jsondagapi does."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_executions(
                conn,
                principal.tenant_id,
                status=status.value if status else None,
                workflow_id=workflow_id,
                created_after=created_after,
                created_before=created_before,
                sort=sort,
                descending=order == "desc",
                limit=limit,
                offset=offset,
            )
        items = [
            ExecutionSummary(
                r.execution_id,
                r.workflow_id,
                r.workflow_version,
                status_name(r.status, style),
                r.progress,
                r.current_nodes,
                r.created_at,
                r.updated_at,
            )
            for r in rows
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/{execution_id:uuid}", operation_id="getExecution")
    async def get_one(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        style: StatusStyle = "quipu",
    ) -> ExecutionOut:
        """Status, progress, current nodes, counts per node state and the state, from the log (no lag).
        ``?style=jsondag`` names the status as jsondagapi does (``RUNNING``, ``COMPLETED``...)."""
        bind_correlation(execution_id)
        execution = await anyio.to_thread.run_sync(lambda: ctx.executions.get(principal.tenant_id, execution_id))
        return styled(execution_out(execution), style)

    @post("/{execution_id:uuid}/pause", operation_id="pauseExecution", opt={"scope": "write"}, status_code=200)
    async def pause(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[Steer | None] = None,
    ) -> ExecutionOut:
        """Stop starting new nodes; work under way may still report (409 unless running)."""
        reason = data.reason if data else None
        return await act(ctx, principal, execution_id, lambda e, c: e.pause(c, reason))

    @post("/{execution_id:uuid}/resume", operation_id="resumeExecution", opt={"scope": "write"}, status_code=200)
    async def resume(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[ResumeBody | None] = None,
    ) -> ExecutionOut:
        """Continue a paused execution. ``user_response`` and ``additional_data`` are recorded
        on the ``execution.resumed`` event and kept in the state under ``hitp_response``. An
        execution waiting for exactly one approval is resumed by approving it
        (``user_response`` is the feedback). A failed execution resumes from its latest
        recoverable checkpoint: what the failure left unfinished runs again. 409 otherwise."""
        body = data or ResumeBody()
        return await act(
            ctx,
            principal,
            execution_id,
            lambda e, c: e.resume(c, user_response=body.user_response, additional_data=body.additional_data),
        )

    @post("/{execution_id:uuid}/cancel", operation_id="cancelExecution", opt={"scope": "write"}, status_code=200)
    async def cancel(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[Steer | None] = None,
    ) -> ExecutionOut:
        """End the execution (409 if it already ended)."""
        reason = data.reason if data else None
        return await act(ctx, principal, execution_id, lambda e, c: e.cancel(c, reason))

    @delete("/{execution_id:uuid}", operation_id="deleteExecution", opt={"scope": "write"}, status_code=200)
    async def remove(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        reason: Annotated[str | None, QueryParameter(max_length=2000, description="why, kept on the tombstone")] = None,
    ) -> ExecutionDeletedOut:
        """Delete a finished run: appends an ``execution.deleted`` tombstone (409 while the run
        can still change: cancel it first). From then on the run and its checkpoints answer 404
        and leave the lists; its events stay in the log, so the event DAG, replay and the state
        as of a past point still show it."""
        bind_correlation(execution_id)
        execution = await anyio.to_thread.run_sync(
            lambda: ctx.executions.act(principal.context(), execution_id, lambda e, c: e.delete(c, reason))
        )
        return ExecutionDeletedOut(
            execution_id=execution.id,
            status=execution.status.value,
            message=f"Execution '{execution.id}' deleted successfully",
            last_event_id=execution.last_event_id,
            deleted_at=execution.modified_on,
        )
