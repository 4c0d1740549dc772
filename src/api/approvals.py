"""Human-in-the-loop approvals: answer one, list an execution's history."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.executions import ExecutionOut, act
from domain.aggregate import CommandContext
from domain.approvals import ApprovalRecord
from domain.errors import Conflict
from domain.execution import Execution
from domain.hashing import state_hash


class ApprovalResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    action: Literal["approve", "reject"]
    feedback: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    state_changes: dict[str, Any] = {}  # merged into the state when approved
    state_hash: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")] | None = None  # what the approver saw


class ApprovalList(msgspec.Struct):
    execution_id: UUID
    items: list[ApprovalRecord]
    total: int
    current_state_hash: str  # send it back as ``state_hash`` to approve exactly what you saw now


class ApprovalController(Controller):
    path = "/api/v1/approvals"
    tags = ["approvals"]

    @post("/{approval_id:uuid}/respond", operation_id="respondToApproval", opt={"scope": "write"}, status_code=200)
    async def respond(
        self,
        approval_id: FromPath[UUID],
        data: JSONBody[ApprovalResponse],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> ExecutionOut:
        """Approve or reject a waiting approval (its id is the request event's id). With
        ``state_hash``, 409 if the state changed since the approver was shown it."""
        execution_id = await anyio.to_thread.run_sync(
            lambda: ctx.executions.execution_of_event(principal.tenant_id, approval_id)
        )

        def answer(e: Execution, c: CommandContext) -> None:
            node = next((n for n, a in e.pending_approvals().items() if a == approval_id), None)
            if node is None:
                raise Conflict(f"approval {approval_id} is not waiting for an answer")
            e.respond_to_approval(
                c,
                node,
                approved=data.action == "approve",
                feedback=data.feedback,
                state_changes=data.state_changes,
                shown_state_hash=data.state_hash,
            )

        return await act(ctx, principal, execution_id, answer, [approval_id])


class ExecutionApprovalsController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}/approvals"
    tags = ["approvals"]

    @get("/", operation_id="listExecutionApprovals")
    async def history(
        self, execution_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> ApprovalList:
        """Every approval of the execution in request order: who answered, when, and the
        hash of the state the approver was shown (the execution holds at most one per node run)."""
        bind_correlation(execution_id)
        execution = await anyio.to_thread.run_sync(lambda: ctx.executions.get(principal.tenant_id, execution_id))
        items = list(execution.approvals.values())
        return ApprovalList(execution_id, items, len(items), state_hash(execution.state))
