"""/api/v1/delegations: task delegation between agents (CELLSTATE reference): create, get,
accept (optionally starting an execution caused by the acceptance), reject, complete. Any
transition the state machine does not allow answers 409."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import MAX_VERSION
from api.resource_helpers import Causes, created, with_etag
from api.workflows import IdempotencyKey
from commands.delegations import DelegationInput, DelegationService, ExecutionRequest
from domain.delegation import Context, Delegation, Reason, TaskDescription


class DelegationCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``message_id``: the message that asked for the task (its event becomes a cause)."""

    from_agent_id: UUID
    to_agent_id: UUID
    task_description: TaskDescription
    trajectory_id: UUID
    scope_id: UUID
    context: Context | None = None
    expected_completion: datetime | None = None
    message_id: UUID | None = None
    caused_by: Causes = []


class DelegatedExecution(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    workflow_id: UUID
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)] | None = None
    input: Annotated[dict[str, Any], msgspec.Meta(max_length=1000)] = {}


class DelegationAccept(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``execution``: a workflow run to start now, whose first event names the acceptance."""

    accepting_agent_id: UUID
    execution: DelegatedExecution | None = None
    caused_by: Causes = []


class DelegationReject(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rejecting_agent_id: UUID
    reason: Reason
    caused_by: Causes = []


class DelegationComplete(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    completing_agent_id: UUID
    result: Annotated[dict[str, Any], msgspec.Meta(max_length=1000)] = {}
    caused_by: Causes = []


class DelegationOut(msgspec.Struct, kw_only=True):
    delegation_id: UUID
    tenant_id: str
    delegator_id: UUID
    delegatee_id: UUID
    task_description: str
    trajectory_id: UUID
    scope_id: UUID
    context: dict[str, Any] | None
    expected_completion: datetime | None
    status: str
    result: dict[str, Any] | None
    rejection_reason: str | None
    message_id: UUID | None
    execution_id: UUID | None
    created_at: datetime
    accepted_at: datetime | None
    rejected_at: datetime | None
    completed_at: datetime | None
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {
            "self": f"/api/v1/delegations/{self.delegation_id}",
            "delegator": f"/api/v1/agents/{self.delegator_id}",
            "delegatee": f"/api/v1/agents/{self.delegatee_id}",
        }
        if self.message_id:
            self.links["message"] = f"/api/v1/messages/{self.message_id}"
        if self.execution_id:
            self.links["execution"] = f"/api/v1/executions/{self.execution_id}"


def delegation_out(d: Delegation) -> DelegationOut:
    return DelegationOut(
        delegation_id=d.id,
        tenant_id=d.tenant_id,
        delegator_id=d.delegator_id,
        delegatee_id=d.delegatee_id,
        task_description=d.task_description,
        trajectory_id=d.trajectory_id,
        scope_id=d.scope_id,
        context=d.context,
        expected_completion=d.expected_completion,
        status=d.status,
        result=d.result,
        rejection_reason=d.rejection_reason,
        message_id=d.message_id,
        execution_id=d.execution_id,
        created_at=d.created_on,
        accepted_at=d.accepted_at,
        rejected_at=d.rejected_at,
        completed_at=d.completed_at,
        version=d.version,
        last_event_id=d.last_event_id,
    )


def service(ctx: ApiContext) -> DelegationService:
    """Stateless over the event store: building one per request is free."""
    return DelegationService(ctx.store, ctx.workflows)


def answer(delegation: Delegation) -> Response[DelegationOut]:
    bind_correlation(delegation.correlation_id)
    return with_etag(delegation_out(delegation), delegation.version)


class DelegationController(Controller):
    path = "/api/v1/delegations"
    tags = ["delegations"]

    @post("/", operation_id="createDelegation", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[DelegationCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[DelegationOut]:
        """Delegate a task to another agent (pending). The delegator's ``can_delegate_to`` must
        name the delegatee's type (409). Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "caused_by"}
        delegation, is_new = await anyio.to_thread.run_sync(
            lambda: service(ctx).create(
                principal.context(data.caused_by),
                DelegationInput(**fields),
                idempotency_key=idempotency_key,
                raw_body=raw,
            )
        )
        bind_correlation(delegation.correlation_id)
        location = f"/api/v1/delegations/{delegation.id}"
        return created(delegation_out(delegation), location, delegation.version, created_now=is_new)

    @get("/{delegation_id:uuid}", operation_id="getDelegation")
    async def get_one(
        self, delegation_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[DelegationOut]:
        """A delegation from the event store (no lag): status, result, the execution it started."""
        delegation = await anyio.to_thread.run_sync(lambda: service(ctx).get(principal.tenant_id, delegation_id))
        return answer(delegation)

    @post("/{delegation_id:uuid}/accept", operation_id="acceptDelegation", opt={"scope": "write"}, status_code=200)
    async def accept(
        self,
        delegation_id: FromPath[UUID],
        data: JSONBody[DelegationAccept],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[DelegationOut]:
        """The delegatee accepts a pending delegation (409 otherwise); with ``execution``, the
        workflow run starts at once, its ``execution.started`` caused by the acceptance."""
        run = ExecutionRequest(**msgspec.structs.asdict(data.execution)) if data.execution else None
        delegation = await anyio.to_thread.run_sync(
            lambda: service(ctx).accept(
                principal.context(data.caused_by), delegation_id, data.accepting_agent_id, run=run
            )
        )
        return answer(delegation)

    @post("/{delegation_id:uuid}/reject", operation_id="rejectDelegation", opt={"scope": "write"}, status_code=200)
    async def reject(
        self,
        delegation_id: FromPath[UUID],
        data: JSONBody[DelegationReject],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[DelegationOut]:
        """The delegatee declines a pending delegation, with a reason (409 otherwise)."""
        delegation = await anyio.to_thread.run_sync(
            lambda: service(ctx).reject(
                principal.context(data.caused_by), delegation_id, data.rejecting_agent_id, data.reason
            )
        )
        return answer(delegation)

    @post("/{delegation_id:uuid}/complete", operation_id="completeDelegation", opt={"scope": "write"}, status_code=200)
    async def complete(
        self,
        delegation_id: FromPath[UUID],
        data: JSONBody[DelegationComplete],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[DelegationOut]:
        """The delegatee completes an accepted delegation with its ``result`` (409 otherwise)."""
        delegation = await anyio.to_thread.run_sync(
            lambda: service(ctx).complete(
                principal.context(data.caused_by), delegation_id, data.completing_agent_id, data.result
            )
        )
        return answer(delegation)
