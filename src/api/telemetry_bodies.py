"""The body of POST /executions/{id}/telemetry: one shape per record type, chosen by ``type``.

A tagged union, so the document states which fields each type takes (a ``oneOf`` whose
branches are closed) and the decoder refuses the rest, instead of one open object whose
fields were checked later against the type. The fields mirror ``domain.telemetry``'s events
(tests/unit/test_telemetry_bodies.py keeps them in step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from api.executions import Causes
from domain.telemetry import Amount, Confidence, Count, Preview, ThoughtText, ThoughtType

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# msgspec's JSON Schema of a datetime says only "string"; the format tells clients (and the
# fuzz test) that an RFC 3339 date-time is wanted, as the decoder requires.
Timestamp = Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]
HEAD = ("type", "node_id", "caused_by")  # what the request says about the record, not in its payload


class _Telemetry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    node_id: str | None = None  # the node that made it (its parent in the event DAG)
    caused_by: Causes = []
    duration_ms: Amount | None = None

    def payload(self) -> dict[str, Any]:
        """The record's own fields, as ``ExecutionService.record_telemetry`` takes them."""
        return {k: v for k, v in msgspec.structs.asdict(self).items() if k not in HEAD}

    def kind(self) -> str:
        """The record type (a key of ``domain.telemetry.TELEMETRY_KINDS``)."""
        return str(self.__struct_config__.tag)


class LlmCall(_Telemetry, tag="llm_call", kw_only=True, forbid_unknown_fields=True):
    model: Name
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost_usd: Amount = 0.0
    prompt_preview: Preview | None = None
    output_preview: Preview | None = None


class ToolCall(_Telemetry, tag="tool_call", kw_only=True, forbid_unknown_fields=True):
    tool: Name
    arguments: dict[str, Any] = {}
    result_preview: Preview | None = None
    error: Preview | None = None
    cost_usd: Amount = 0.0


class Thought(_Telemetry, tag="thought", kw_only=True, forbid_unknown_fields=True):
    text: ThoughtText
    thought_type: ThoughtType | None = None  # observation, reasoning or action
    confidence: Confidence | None = None  # 0 to 1
    metadata: dict[str, Any] = {}
    reported_at: Timestamp | None = None  # when the agent had it, by its own clock


class _AgentStudioThought(_Telemetry, kw_only=True, forbid_unknown_fields=True):
    """Agent Studio's AgentThought as it is sent there (``timestamp``, ``type``, ``content``,
    ``metadata``): its ``type`` (observation, reasoning, action) is the tag, and it is recorded
    as a ``thought`` with that ``thought_type``."""

    content: ThoughtText
    timestamp: Timestamp | None = None
    confidence: Confidence | None = None
    metadata: dict[str, Any] = {}

    def payload(self) -> dict[str, Any]:
        return {
            "text": self.content,
            "thought_type": str(self.__struct_config__.tag),
            "confidence": self.confidence,
            "metadata": self.metadata,
            "reported_at": self.timestamp,
            "duration_ms": self.duration_ms,
        }

    def kind(self) -> str:
        return "thought"


class Observation(_AgentStudioThought, tag="observation", kw_only=True, forbid_unknown_fields=True):
    pass


class Reasoning(_AgentStudioThought, tag="reasoning", kw_only=True, forbid_unknown_fields=True):
    pass


class Action(_AgentStudioThought, tag="action", kw_only=True, forbid_unknown_fields=True):
    pass


TelemetryIn = LlmCall | ToolCall | Thought | Observation | Reasoning | Action
