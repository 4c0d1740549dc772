"""Answers to a person's gate sent over the WebSocket (the Analemma OS reference's HITP response).

``{"action": "resume", "execution_id", "response" | "user_response", "additional_data"}`` does
what ``POST /executions/{id}/resume`` does with that body; ``{"action": "approve" | "reject",
"execution_id", "approval_id"?, "feedback" | "response", "state_changes"?}`` does what
``POST /approvals/{id}/respond`` does (without ``approval_id``: the one waiting approval).
Each needs a key with the ``write`` scope, checked again per answer so a key revoked after the
handshake cannot answer. The socket gets ``{"type": "resumed" | "approved" | "rejected",
"execution_id", "status", "last_event_id"}`` or an ``error`` message.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec

from api.auth import Principal
from api.context import ApiContext
from domain.aggregate import CommandContext
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.execution import Execution

Text = Annotated[str, msgspec.Meta(max_length=10_000)]


class HitpResume(msgspec.Struct, tag="resume", tag_field="action", forbid_unknown_fields=True, kw_only=True):
    execution_id: UUID
    response: Text | None = None  # the reference's name for it
    user_response: Text | None = None  # the name the HTTP resume body uses
    additional_data: dict[str, Any] = {}


class _Answer(msgspec.Struct, tag_field="action", forbid_unknown_fields=True, kw_only=True):
    execution_id: UUID
    approval_id: UUID | None = None
    feedback: Text | None = None
    response: Text | None = None  # the reference's name for the feedback
    state_changes: dict[str, Any] = {}


class HitpApprove(_Answer, tag="approve"):
    pass


class HitpReject(_Answer, tag="reject"):
    pass


HitpCommand = HitpResume | HitpApprove | HitpReject


def _one(field: str, a: str | None, b: str | None) -> str | None:
    """Two spellings of one field: either one, not both."""
    if a is not None and b is not None:
        raise ValidationFailed([FieldProblem(field, "send one spelling of this field, not both", "ambiguous")])
    return a if a is not None else b


def _decide(command: HitpCommand) -> Any:
    if isinstance(command, HitpResume):
        answer = _one("user_response", command.user_response, command.response)

        def resume(e: Execution, c: CommandContext) -> None:
            e.resume(c, user_response=answer, additional_data=command.additional_data)

        return resume
    feedback = _one("feedback", command.feedback, command.response) or ""
    approved = isinstance(command, HitpApprove)

    def respond(e: Execution, c: CommandContext) -> None:
        waiting = e.pending_approvals()
        if command.approval_id is None:
            if len(waiting) != 1:
                raise Conflict(f"{len(waiting)} approvals are waiting; name one with approval_id")
            node_id = next(iter(waiting))
        else:
            found = next((n for n, a in waiting.items() if a == command.approval_id), None)
            if found is None:
                raise Conflict(f"approval {command.approval_id} is not waiting for an answer")
            node_id = found
        e.respond_to_approval(c, node_id, approved=approved, feedback=feedback, state_changes=command.state_changes)

    return respond


async def answer(ctx: ApiContext, principal: Principal, command: HitpCommand) -> dict[str, Any]:
    """Record the answer (load, decide, save, as the HTTP routes do); the reply message."""
    decide = _decide(command)
    named = getattr(command, "approval_id", None)  # the approval request is the answer's cause, as over HTTP
    caused_by = principal.context([named] if named else None)
    execution = await anyio.to_thread.run_sync(lambda: ctx.executions.act(caused_by, command.execution_id, decide))
    done = {HitpResume: "resumed", HitpApprove: "approved", HitpReject: "rejected"}[type(command)]
    return {
        "type": done,
        "execution_id": str(execution.id),
        "status": execution.status.value,
        "last_event_id": str(execution.last_event_id),
    }
