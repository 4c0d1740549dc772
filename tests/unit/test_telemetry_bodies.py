"""The telemetry request bodies take exactly the fields of the events they record."""

from __future__ import annotations

import msgspec
import pytest

from api.telemetry_bodies import HEAD, LlmCall, Thought, ToolCall
from domain.events import HEADER_FIELDS
from domain.telemetry import TELEMETRY_KINDS


@pytest.mark.parametrize("body", [LlmCall, ToolCall, Thought])
def test_a_body_names_the_fields_of_its_event(body: type[msgspec.Struct]) -> None:
    event = TELEMETRY_KINDS[str(body.__struct_config__.tag)]
    event_fields = {f.encode_name for f in msgspec.inspect.type_info(event).fields}  # type: ignore[attr-defined]
    own = event_fields - set(HEADER_FIELDS) - {"execution_id", "originator_id", "originator_version", "timestamp"}
    own -= {"event_id", "tenant_id", "correlation_id"}
    assert set(body.__struct_fields__) - set(HEAD) == own - {"node_id"}
