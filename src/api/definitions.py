"""A workflow definition as clients send it: canonical (nodes, edges) or Agent Studio (steps)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from domain.agent_studio import (
    DEFAULT_MAX_RETRIES,
    AgentStudioStep,
    MaxRetries,
    Pattern,
    from_steps,
    positive_duration,
)
from domain.errors import FieldProblem, ValidationFailed
from domain.workflow_graph import Edge, Node, NodeId, RunTimeout, WorkflowDefinition

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]


class DefinitionInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Either ``nodes`` (and ``edges``), or ``steps`` with ``dependsOn`` (the Agent Studio form).
    Agent Studio's definition-level fields come with either: ``id``, ``name``, ``description``
    and ``pattern`` describe the workflow (see ``header``); ``timeout`` (seconds, ISO 8601 or
    hh:mm:ss) is the run's default time limit; ``maxRetries`` (steps only, default 3) is each
    step's retry budget unless the step names its own."""

    nodes: Annotated[list[Node], msgspec.Meta(max_length=2000)] | None = None
    edges: Annotated[list[Edge], msgspec.Meta(max_length=10000)] = []
    steps: Annotated[list[AgentStudioStep], msgspec.Meta(max_length=2000)] | None = None
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    name: Name | None = None
    description: Description | None = None
    pattern: Pattern | None = None
    timeout: RunTimeout | Annotated[str, msgspec.Meta(max_length=40)] | None = None
    max_retries: MaxRetries | None = msgspec.field(default=None, name="maxRetries")

    def canonical(self) -> WorkflowDefinition:
        timeout = self._timeout()
        if self.steps is not None and self.nodes is None and not self.edges:
            retries = DEFAULT_MAX_RETRIES if self.max_retries is None else self.max_retries
            try:
                steps = from_steps(self.steps, max_retries=retries, pattern=self.pattern)
            except ValidationFailed as error:
                raise ValidationFailed([_under(p) for p in error.problems]) from error
            return msgspec.structs.replace(steps, timeout=timeout)
        if self.nodes is not None and self.steps is None:
            if self.max_retries is not None:
                raise ValidationFailed(
                    [FieldProblem("maxRetries", "goes with steps; a node has its own max_retries", "invalid_form")]
                )
            return WorkflowDefinition(nodes=self.nodes, edges=self.edges, timeout=timeout)
        raise ValidationFailed(
            [FieldProblem("definition", "send either nodes (and edges) or steps, not both or neither", "invalid_form")]
        )

    def header(self) -> dict[str, Any]:
        """What the definition says about the workflow rather than its graph, kept in the
        workflow's metadata: ``definition_id`` (Agent Studio's ``id``) and ``pattern``."""
        named = {"definition_id": self.id, "pattern": self.pattern}
        return {k: v for k, v in named.items() if v is not None}

    def _timeout(self) -> float | None:
        if isinstance(self.timeout, str):
            try:
                return positive_duration(self.timeout, "timeout")
            except ValidationFailed as error:
                raise ValidationFailed([_under(p) for p in error.problems]) from error
        return self.timeout


class AnalysisInput(DefinitionInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A definition to analyse: bare (``nodes``/``edges`` or ``steps``), or under
    ``definition`` as in a create body, so the body of a create can be checked as it is
    written; problems are then named as create names them (``definition.nodes[0].id``)."""

    definition: DefinitionInput | None = None

    def canonical(self) -> WorkflowDefinition:
        if self.definition is None:
            return super().canonical()
        if self.nodes is not None or self.steps is not None or self.edges:
            raise ValidationFailed(
                [FieldProblem("definition", "send the definition bare or under 'definition', not both", "invalid_form")]
            )
        return self.definition.canonical()

    def named(self, problems: list[FieldProblem]) -> list[FieldProblem]:
        """``problems`` of the canonical definition, named from the body's root."""
        return problems if self.definition is None else [_under(p) for p in problems]


def _under(problem: FieldProblem) -> FieldProblem:
    return FieldProblem(f"definition.{problem.field}", problem.message, problem.code)


class TopLevelEdge(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename={"from_": "from"}):
    """An edge of a body with its graph at the top (the Analemma OS form): ``source`` and
    ``target``, or Quipu's ``from`` and ``to``; an ``id`` is taken and not kept."""

    from_: NodeId | None = None
    to: NodeId | None = None
    source: NodeId | None = None
    target: NodeId | None = None
    id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    condition: Annotated[str, msgspec.Meta(max_length=2000)] | None = None

    def canonical(self, field: str) -> Edge:
        ends = (self.from_ or self.source, self.to or self.target)
        if (self.from_ and self.source) or (self.to and self.target) or None in ends:
            message = "name the ends once: from and to, or source and target"
            raise ValidationFailed([FieldProblem(field, message, "edge_ends")])
        return Edge(source=str(ends[0]), target=str(ends[1]), condition=self.condition)


def top_level(nodes: list[Node], edges: list[TopLevelEdge]) -> DefinitionInput:
    """The definition of a body whose ``nodes`` and ``edges`` are at the top."""
    problems: list[FieldProblem] = []
    canonical: list[Edge] = []
    for i, edge in enumerate(edges):
        try:
            canonical.append(edge.canonical(f"edges[{i}]"))
        except ValidationFailed as error:
            problems.extend(error.problems)
    if problems:
        raise ValidationFailed(problems)
    return DefinitionInput(nodes=nodes, edges=canonical)

