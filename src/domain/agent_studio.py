"""The Agent Studio form of a definition (``steps[]`` with ``dependsOn``; docs/architecture.md),
converted to the canonical nodes-and-edges form on the way in."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from domain.errors import FieldProblem, ValidationFailed
from domain.workflow_graph import WorkflowDefinition

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class AgentStudioStep(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    id: str
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    agent_type: str | None = None
    depends_on: list[str] = []
    configuration: dict[str, Any] = {}
    timeout: str | None = None  # ISO 8601 duration, e.g. "PT5M"


def iso_duration_seconds(text: str) -> float | None:
    """``PT5M`` -> 300.0; None when the text is not a day-time ISO 8601 duration."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def from_steps(steps: list[AgentStudioStep]) -> WorkflowDefinition:
    """One node per step, one edge per dependency (dependency -> step)."""
    problems: list[FieldProblem] = []
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        seconds = None
        if step.timeout is not None:
            seconds = iso_duration_seconds(step.timeout)
            if seconds is None or seconds <= 0:
                problems.append(
                    FieldProblem(
                        f"steps[{i}].timeout", "not a positive ISO 8601 duration such as PT5M", "invalid_duration"
                    )
                )
        nodes.append(
            {
                "id": step.id,
                "type": "task",
                "name": step.name,
                "agent_type": step.agent_type,
                "config": step.configuration,
                "timeout": seconds,
            }
        )
        edges.extend({"from": dep, "to": step.id} for dep in step.depends_on)
    if problems:
        raise ValidationFailed(problems)
    try:
        return msgspec.convert({"nodes": nodes, "edges": edges}, WorkflowDefinition)
    except msgspec.ValidationError as error:
        raise ValidationFailed([FieldProblem("steps", str(error), "step_not_a_node")]) from error
