"""jsondagapi's decision callback names an ``outcome`` ("approve") rather than the branches
to take; this is how an outcome becomes the successors of an external decision node."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import FieldProblem, ValidationFailed
from domain.workflow_graph import Node


def outcome_targets(node: Node, successors: Sequence[str], outcome: str) -> list[str]:
    """The node's ``config.outcomes`` maps an outcome to a successor id or a list of them;
    without an entry there, an outcome that is a successor's id takes that successor."""
    mapping = node.config.get("outcomes")
    chosen = mapping.get(outcome) if isinstance(mapping, dict) else None
    if chosen is None and outcome in successors:
        chosen = outcome
    if chosen is None:
        raise ValidationFailed(
            [FieldProblem("outcome", f"'{outcome}' names no branch of '{node.id}'", "unknown_outcome")]
        )
    return [chosen] if isinstance(chosen, str) else [str(t) for t in chosen]
