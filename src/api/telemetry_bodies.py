"""The body of POST /executions/{id}/telemetry: one shape per record type, chosen by ``type``.

A tagged union, so the document states which fields each type takes (a ``oneOf`` whose
branches are closed) and the decoder refuses the rest, instead of one open object whose
fields were checked later against the type. The fields mirror ``domain.telemetry``'s events
(tests/unit/test_telemetry_bodies.py keeps them in step).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from api.executions import Causes
from domain.telemetry import Amount, Count, Preview

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
HEAD = ("type", "node_id", "caused_by")  # what the request says about the record, not in its payload


class _Telemetry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    node_id: str | None = None  # the node that made it (its parent in the event DAG)
    caused_by: Causes = []
    duration_ms: Amount | None = None

    def payload(self) -> dict[str, Any]:
        """The record's own fields, as ``ExecutionService.record_telemetry`` takes them."""
        return {k: v for k, v in msgspec.structs.asdict(self).items() if k not in HEAD}


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
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


TelemetryIn = LlmCall | ToolCall | Thought
