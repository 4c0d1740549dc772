"""Glass-box telemetry: what an agent did inside a node.

Each record is a one-event stream of its own, so a chatty agent never contends with the
execution's stream for versions. Its parents are the event of the node that made it
(the node's start or scheduling event), and it shares the execution's correlation id, so
it sits under that node in the event DAG and in the execution's correlation graph.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import FieldProblem, ValidationFailed
from domain.events import HEADER_FIELDS, DomainEvent, event_kind

Preview = Annotated[str, msgspec.Meta(max_length=2000)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Amount = Annotated[float, msgspec.Meta(ge=0)]
ThoughtText = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
ThoughtType = Literal["observation", "reasoning", "action"]
Confidence = Annotated[float, msgspec.Meta(ge=0, le=1)]


class TelemetryEvent(DomainEvent, frozen=True, kw_only=True, forbid_unknown_fields=True):
    execution_id: UUID
    node_id: str | None = None
    duration_ms: Amount | None = None


@event_kind("telemetry.llm_call", 0xC001)
class LlmCallRecorded(TelemetryEvent, frozen=True, kw_only=True):
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost_usd: Amount = 0.0
    prompt_preview: Preview | None = None
    output_preview: Preview | None = None


@event_kind("telemetry.tool_call", 0xC002)
class ToolCallRecorded(TelemetryEvent, frozen=True, kw_only=True):
    tool: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    arguments: dict[str, Any] = {}
    result_preview: Preview | None = None
    error: Preview | None = None
    cost_usd: Amount = 0.0


@event_kind("telemetry.thought", 0xC003)
class ThoughtRecorded(TelemetryEvent, frozen=True, kw_only=True):
    """What an agent noticed, concluded or chose to do (Agent Studio's AgentThought:
    ``thought_type`` is its ``type``), how sure it was, and when it says it thought it."""

    text: ThoughtText
    thought_type: ThoughtType | None = None
    confidence: Confidence | None = None
    metadata: dict[str, Any] = {}
    reported_at: datetime | None = None  # the agent's own timestamp; the event's is when Quipu recorded it


TELEMETRY_KINDS: dict[str, type[TelemetryEvent]] = {
    "llm_call": LlmCallRecorded,
    "tool_call": ToolCallRecorded,
    "thought": ThoughtRecorded,
}


def checked_payload(event_cls: type[TelemetryEvent], payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, validated against the kind's field types and limits (422 otherwise)."""
    probe = {
        "originator_id": _NIL,
        "originator_version": 1,
        "timestamp": "2000-01-01T00:00:00Z",
        "event_id": _NIL,
        "tenant_id": "probe",
        "correlation_id": _NIL,
        "execution_id": _NIL,
    }
    if any(key in probe or key in HEADER_FIELDS for key in payload):  # parent_ids, actor too
        raise ValidationFailed([FieldProblem("body", "header fields are set by Quipu", "invalid")])
    try:
        event = msgspec.convert({**payload, **probe}, event_cls)
    except msgspec.ValidationError as error:
        message, _, path = str(error).partition(" - at `$")
        raise ValidationFailed([FieldProblem(path.rstrip("`").lstrip(".") or "body", message, "invalid")]) from None
    return {k: v for k, v in event.payload().items() if k != "execution_id"}


_NIL = "00000000-0000-0000-0000-000000000000"


@aggregate_root("telemetry")
class TelemetryRecord(Aggregate):
    event: TelemetryEvent

    @classmethod
    def record(
        cls,
        ctx: CommandContext,
        event_cls: type[TelemetryEvent],
        *,
        record_id: UUID,
        correlation_id: UUID,
        **payload: Any,
    ) -> TelemetryRecord:
        """``ctx.caused_by`` names the node's event; the command layer checks it exists."""
        return cls._create(event_cls, ctx, aggregate_id=record_id, correlation_id=correlation_id, **payload)

    def apply(self, event: DomainEvent) -> None:
        if not isinstance(event, TelemetryEvent):  # pragma: no cover
            raise TypeError(f"TelemetryRecord cannot apply {type(event).__name__}")
        self.event = event
