"""The messages of a live feed (the Analemma OS reference's message types), one per event, built from the event
and the execution replica right after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec

from api.executions import execution_out
from domain.envelope import EventEnvelope
from domain.execution import TERMINAL, Execution


@dataclass(frozen=True)
class LiveMessage:
    type: str
    event_id: UUID
    body: dict[str, Any] = field(default_factory=dict)  # JSON-ready: type, event_id, execution_id, ...

    def json(self) -> str:
        return msgspec.json.encode(self.body).decode()


def _message(message_type: str, envelope: EventEnvelope, execution_id: UUID | str, **fields: Any) -> LiveMessage:
    body = {"type": message_type, "event_id": str(envelope.event_id), "execution_id": str(execution_id), **fields}
    return LiveMessage(message_type, envelope.event_id, msgspec.to_builtins(body))


def execution_message(envelope: EventEnvelope, ex: Execution) -> LiveMessage | None:
    """The message of an execution event, given the replica right after it."""
    payload = envelope.payload
    node_id = payload.get("node_id")
    if ex.status in TERMINAL:  # the event that ended it
        return _message(
            "completed",
            envelope,
            ex.id,
            status=ex.status.value.upper(),
            output=ex.state,
            error=ex.error,
            duration_seconds=round((envelope.occurred_at - ex.created_on).total_seconds(), 3),
        )
    if envelope.kind == "execution.checkpoint_taken":
        return None
    if envelope.kind == "execution.node_failed":
        return _message(
            "error",
            envelope,
            ex.id,
            node_id=node_id,
            error_code=_error_code(ex, payload),
            message=payload.get("error"),
            recoverable=payload.get("retry_at") is not None,
            attempt=payload.get("attempt"),
            retry_at=payload.get("retry_at"),
        )
    if envelope.kind == "execution.node_scheduled" and payload.get("node_type") == "approval":
        request = ex.approvals[envelope.event_id]
        return _message(
            "hitp_required",
            envelope,
            ex.id,
            approval_id=str(envelope.event_id),
            node_id=node_id,
            prompt=request.prompt or node_id,
            context=ex.state,
            timeout_seconds=request.timeout_seconds,
        )
    view = execution_out(ex)
    return _message(
        "progress",
        envelope,
        ex.id,
        node_id=node_id,
        kind=envelope.kind,
        node_status=view.nodes.get(node_id) if node_id else None,
        status=ex.status.value,
        attempt=payload.get("attempt"),
        progress_percent=view.progress,
        current_nodes=view.current_nodes,
    )


def _error_code(ex: Execution, payload: dict[str, Any]) -> str:
    approval = ex.node(str(payload.get("node_id"))).type == "approval"
    if payload.get("timed_out"):
        return "APPROVAL_TIMEOUT" if approval else "NODE_TIMEOUT"
    return "APPROVAL_REJECTED" if approval else "NODE_FAILED"


def glass_box(envelope: EventEnvelope) -> LiveMessage:
    """``log.event`` is the record's type (llm_call, tool_call, thought); the rest its fields."""
    record = envelope.kind.partition(".")[2]
    fields = {k: v for k, v in envelope.payload.items() if k != "execution_id" and v is not None}
    if record == "llm_call":  # the Analemma OS reference's summary figure
        fields["tokens_used"] = int(fields.get("input_tokens", 0)) + int(fields.get("output_tokens", 0))
    return _message(
        "glass_box",
        envelope,
        envelope.payload["execution_id"],
        node_id=envelope.payload.get("node_id"),
        log={"event": record, **fields},
    )
