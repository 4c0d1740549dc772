"""Glass-box telemetry records: payload validation and the one-event stream under a node."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from domain.aggregate import CommandContext
from domain.errors import ValidationFailed
from domain.events import HEADER_FIELDS
from domain.execution import Execution, NodeScheduled
from domain.hashing import canonical_encoding
from domain.telemetry import (
    TELEMETRY_KINDS,
    LlmCallRecorded,
    TelemetryEvent,
    TelemetryRecord,
    ThoughtRecorded,
    ToolCallRecorded,
    checked_payload,
)
from domain.workflow_graph import Edge, Node, WorkflowDefinition

CTX = CommandContext("acme", "agent:writer")


def test_the_kinds_are_named_as_the_api_accepts_them() -> None:
    assert {name: cls.KIND for name, cls in TELEMETRY_KINDS.items()} == {
        "llm_call": "telemetry.llm_call",
        "tool_call": "telemetry.tool_call",
        "thought": "telemetry.thought",
    }


def test_valid_payloads_come_back_complete_and_without_the_header() -> None:
    llm = checked_payload(
        LlmCallRecorded,
        {"node_id": "draft", "model": "gpt-x", "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.002,
         "duration_ms": 850.5, "prompt_preview": "Write a haiku"},
    )  # fmt: skip
    assert llm == {
        "node_id": "draft",
        "duration_ms": 850.5,
        "model": "gpt-x",
        "input_tokens": 120,
        "output_tokens": 30,
        "cost_usd": 0.002,
        "prompt_preview": "Write a haiku",
        "output_preview": None,
    }
    tool = checked_payload(ToolCallRecorded, {"tool": "search", "arguments": {"q": "x", "k": [1, 2]}})
    assert tool["tool"] == "search" and tool["arguments"] == {"q": "x", "k": [1, 2]} and tool["cost_usd"] == 0.0
    thought = checked_payload(ThoughtRecorded, {"node_id": "plan", "text": "first the outline"})
    assert thought == {"node_id": "plan", "duration_ms": None, "text": "first the outline", "thought_type": None,
                       "confidence": None, "metadata": {}, "reported_at": None}  # fmt: skip
    assert all("execution_id" not in p for p in (llm, tool, thought))


@pytest.mark.parametrize(
    ("event_cls", "payload", "field"),
    [
        (LlmCallRecorded, {"model": "m", "input_tokens": -1}, "input_tokens"),
        (LlmCallRecorded, {"model": "m", "output_tokens": -5}, "output_tokens"),
        (LlmCallRecorded, {"model": "m", "cost_usd": -0.01}, "cost_usd"),
        (LlmCallRecorded, {"model": "m", "duration_ms": -1}, "duration_ms"),
        (LlmCallRecorded, {"model": "m", "input_tokens": "12"}, "input_tokens"),
        (LlmCallRecorded, {"model": "m", "input_tokens": 1.5}, "input_tokens"),
        (LlmCallRecorded, {"model": ""}, "model"),
        (LlmCallRecorded, {"model": "m", "prompt_preview": "x" * 2001}, "prompt_preview"),
        (ToolCallRecorded, {"tool": "t", "arguments": []}, "arguments"),
        (ToolCallRecorded, {"tool": "t", "cost_usd": -1}, "cost_usd"),
        (ThoughtRecorded, {"text": ""}, "text"),
        (ThoughtRecorded, {"text": "hm", "node_id": 7}, "node_id"),
    ],
)
def test_bad_values_are_refused_with_the_field_path(
    event_cls: type[TelemetryEvent], payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        checked_payload(event_cls, payload)
    assert [p.field for p in refused.value.problems] == [field]


@pytest.mark.parametrize(
    ("event_cls", "payload", "mentioned"),
    [
        (LlmCallRecorded, {"model": "m", "tokens": 5}, "tokens"),
        (ThoughtRecorded, {"text": "t", "model": "m"}, "model"),
        (LlmCallRecorded, {"input_tokens": 5}, "model"),
        (ToolCallRecorded, {}, "tool"),
    ],
)
def test_unknown_and_missing_fields_are_refused(
    event_cls: type[TelemetryEvent], payload: dict[str, Any], mentioned: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        checked_payload(event_cls, payload)
    (problem,) = refused.value.problems
    assert problem.field == "body" and mentioned in problem.message


@pytest.mark.parametrize("header", sorted(HEADER_FIELDS | {"execution_id"}))
def test_header_fields_cannot_be_set_by_the_caller(header: str) -> None:
    """Quipu sets them all; one silently dropped would hide what the caller meant."""
    with pytest.raises(ValidationFailed) as refused:
        checked_payload(LlmCallRecorded, {"model": "m", header: "00000000-0000-0000-0000-000000000001"})
    assert [(p.field, p.code) for p in refused.value.problems] == [("body", "invalid")]
    assert "header" in refused.value.problems[0].message


def test_a_record_hangs_under_its_node_with_the_execution_correlation() -> None:
    flow = WorkflowDefinition(
        nodes=[Node(id="start", type="start"), Node(id="draft", agent_type="llm")],
        edges=[Edge(source="start", target="draft")],
    )
    execution = Execution.start(
        CTX, execution_id=uuid.uuid4(), workflow_id=uuid.uuid4(), workflow_version=1, definition=flow, input={}
    )
    node_event = next(e for e in execution.collect_events() if isinstance(e, NodeScheduled) and e.node_id == "draft")
    fields = checked_payload(LlmCallRecorded, {"node_id": "draft", "model": "gpt-x", "input_tokens": 7})
    record_id = uuid.uuid4()
    record = TelemetryRecord.record(
        CommandContext("acme", "agent:writer", (node_event.event_id,)),
        LlmCallRecorded,
        record_id=record_id,
        correlation_id=execution.correlation_id,
        execution_id=execution.id,
        **fields,
    )
    (event,) = record.collect_events()
    assert isinstance(event, LlmCallRecorded) and event is record.event and record.collect_events() == []
    assert (event.originator_id, event.originator_version, event.tenant_id) == (record_id, 1, "acme")
    assert execution.correlation_id == execution.id and event.correlation_id == execution.id
    assert event.parent_ids == (node_event.event_id,) and event.actor == "agent:writer"
    assert (event.node_id, event.model, event.input_tokens) == ("draft", "gpt-x", 7)
    assert event.execution_id == execution.id
    rebuilt = msgspec.json.decode(canonical_encoding(event), type=LlmCallRecorded).mutate(None)
    assert isinstance(rebuilt, TelemetryRecord) and rebuilt.event == event and rebuilt.correlation_id == execution.id
