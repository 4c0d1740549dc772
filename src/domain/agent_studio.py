"""The Agent Studio form of a definition (``steps[]`` with ``dependsOn``; docs/architecture.md),
converted to the canonical nodes-and-edges form on the way in."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from domain.errors import FieldProblem, ValidationFailed
from domain.workflow_graph import WorkflowDefinition

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


_CLOCK = re.compile(r"^(?P<h>\d{1,4}):(?P<m>[0-5]\d):(?P<s>[0-5]\d(?:\.\d{1,6})?)$")

Pattern = Literal["sequential", "parallel", "iterative", "dynamic"]
MaxRetries = Annotated[int, msgspec.Meta(ge=0, le=10)]
DEFAULT_MAX_RETRIES = 3  # the Agent Studio reference's default for a definition's maxRetries


class AgentStudioStep(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    id: str
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    agent_type: str | None = None
    depends_on: list[str] = []
    configuration: dict[str, Any] = {}
    timeout: str | None = None  # ISO 8601 duration ("PT5M") or hh:mm:ss ("00:05:00")
    max_retries: MaxRetries | None = None  # else the definition's maxRetries


def iso_duration_seconds(text: str) -> float | None:
    """``PT5M`` -> 300.0; None when the text is not a day-time ISO 8601 duration."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def duration_seconds(text: str) -> float | None:
    """``PT5M`` or ``00:05:00`` -> 300.0; None when the text is neither form."""
    match = _CLOCK.match(text)
    if match is None:
        return iso_duration_seconds(text)
    return int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


def positive_duration(text: str, field: str) -> float:
    seconds = duration_seconds(text)
    if seconds is None or seconds <= 0:
        message = "not a positive duration: ISO 8601 such as PT5M, or hh:mm:ss such as 00:05:00"
        raise ValidationFailed([FieldProblem(field, message, "invalid_duration")])
    return seconds


def from_steps(
    steps: list[AgentStudioStep], *, max_retries: int = DEFAULT_MAX_RETRIES, pattern: Pattern | None = None
) -> WorkflowDefinition:
    """One node per step, one edge per dependency (dependency -> step). Each node retries
    ``max_retries`` times unless its step says otherwise. In the ``sequential`` pattern a step
    that names no dependency (other than the first) follows the step before it."""
    problems: list[FieldProblem] = []
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        seconds = None
        if step.timeout is not None:
            try:
                seconds = positive_duration(step.timeout, f"steps[{i}].timeout")
            except ValidationFailed as error:
                problems.extend(error.problems)
        nodes.append(
            {
                "id": step.id,
                "type": "task",
                "name": step.name,
                "agent_type": step.agent_type,
                "config": step.configuration,
                "timeout": seconds,
                "max_retries": max_retries if step.max_retries is None else step.max_retries,
            }
        )
        edges.extend({"from": dep, "to": step.id} for dep in step.depends_on)
        if pattern == "sequential" and i > 0 and not step.depends_on:
            edges.append({"from": steps[i - 1].id, "to": step.id})
    if problems:
        raise ValidationFailed(problems)
    try:
        return msgspec.convert({"nodes": nodes, "edges": edges}, WorkflowDefinition)
    except msgspec.ValidationError as error:
        raise ValidationFailed([FieldProblem("steps", str(error), "step_not_a_node")]) from error
