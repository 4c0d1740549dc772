"""How an execution moves through its workflow graph (pure; the execution aggregate uses it).

Rules:
- A node with no incoming edge is ready at the start.
- When a node succeeds, each outgoing edge is *taken* or not. Plain edges are taken
  unless their condition is false. A decision node takes the edges whose condition
  holds; when none does, its unconditioned edges are the "else" branch.
- A waiting node is decided once every incoming edge's source has finished (succeeded
  or skipped). It becomes ready if at least one incoming edge was taken, and is skipped
  otherwise. A join therefore waits for all of its branches, and a branch not taken
  does not block it. Skips cascade to nodes whose every input was skipped.

So a node runs exactly when a path of taken edges leads to it from an entry node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.conditions import parse
from domain.workflow_graph import WorkflowDefinition, graph_of


class NodeStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"  # an attempt failed; the next one waits for its backoff
    FAILED = "failed"
    SKIPPED = "skipped"


FINISHED = frozenset({NodeStatus.SUCCEEDED, NodeStatus.SKIPPED})
Edge = tuple[str, str]


@dataclass(frozen=True)
class Step:
    """What the graph allows next: nodes to start, and nodes to mark skipped."""

    ready: list[str]
    skipped: list[str]


def taken_edges(definition: WorkflowDefinition, node_id: str, state: Mapping[str, Any]) -> list[Edge]:
    """The outgoing edges of a node that just succeeded, given the state after it."""
    node_type = next(n.type for n in definition.nodes if n.id == node_id)
    outgoing = [e for e in definition.edges if e.source == node_id]
    holds = [e for e in outgoing if e.condition is not None and parse(e.condition).evaluate(dict(state))]
    if node_type == "decision":
        chosen = holds or [e for e in outgoing if e.condition is None]
    else:
        chosen = [e for e in outgoing if e.condition is None] + holds
    return [(e.source, e.target) for e in chosen]


def advance(definition: WorkflowDefinition, status: Mapping[str, NodeStatus], taken: set[Edge]) -> Step:
    """Nodes that become ready or skipped now. Skips cascade within one call."""
    current = dict(status)
    incoming = graph_of(definition).predecessors
    ready: list[str] = []
    skipped: list[str] = []
    changed = True
    while changed:
        changed = False
        for node in definition.nodes:
            if current.get(node.id, NodeStatus.PENDING) != NodeStatus.PENDING:
                continue
            sources = incoming[node.id]
            if not sources:
                verdict: NodeStatus | None = NodeStatus.SCHEDULED
            elif all(current.get(s, NodeStatus.PENDING) in FINISHED for s in sources):
                runs = any((s, node.id) in taken for s in sources)
                verdict = NodeStatus.SCHEDULED if runs else NodeStatus.SKIPPED
            else:
                verdict = None
            if verdict is NodeStatus.SCHEDULED:
                ready.append(node.id)
                current[node.id] = verdict
            elif verdict is NodeStatus.SKIPPED:
                skipped.append(node.id)
                current[node.id] = verdict
                changed = True  # a skip may settle nodes after it
    return Step(ready, skipped)


def merge_output(state: Mapping[str, Any], node_id: str, output: Mapping[str, Any]) -> dict[str, Any]:
    """The documented state rule: a node's output keys are merged into the top level of
    the state (later completions win), and the whole output is also kept under
    ``state["outputs"][node_id]`` so nothing a node reported is ever lost."""
    merged = dict(state)
    merged.update({k: v for k, v in output.items() if k != "outputs"})
    outputs = dict(merged.get("outputs") or {})
    outputs[node_id] = dict(output)
    merged["outputs"] = outputs
    return merged
