"""A workflow definition as clients send it: canonical (nodes, edges) or Agent Studio (steps)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from domain.agent_studio import AgentStudioStep, from_steps
from domain.errors import FieldProblem, ValidationFailed
from domain.workflow_graph import Edge, Node, WorkflowDefinition


class DefinitionInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Either ``nodes`` (and ``edges``), or ``steps`` with ``dependsOn`` (the Agent Studio form)."""

    nodes: Annotated[list[Node], msgspec.Meta(max_length=2000)] | None = None
    edges: Annotated[list[Edge], msgspec.Meta(max_length=10000)] = []
    steps: Annotated[list[AgentStudioStep], msgspec.Meta(max_length=2000)] | None = None

    def canonical(self) -> WorkflowDefinition:
        if self.steps is not None and self.nodes is None and not self.edges:
            try:
                return from_steps(self.steps)
            except ValidationFailed as error:
                raise ValidationFailed([_under(p) for p in error.problems]) from error
        if self.nodes is not None and self.steps is None:
            return WorkflowDefinition(nodes=self.nodes, edges=self.edges)
        raise ValidationFailed(
            [FieldProblem("definition", "send either nodes (and edges) or steps, not both or neither", "invalid_form")]
        )


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
