"""Forks of an execution (Analemma OS, Agent Studio and CMBAgent references): what a new branch takes over.

A fork is a new execution of the same workflow version whose first event has the event it
forked from as its parent (a checkpoint, or the moment before a node ran), so the event DAG
shows the lineage. It *carries* the nodes that had finished there: their status, their
output (already in the starting state) and the edges they took, and the completion events
in the parent run, so a node the fork schedules next names those completions as its
parents. Everything else runs again. Nothing of the original changes.

Three ways to choose what is carried:
- resume from a checkpoint: every node finished at the checkpoint (optionally the failed
  node counted as done with an empty output, ``skip_failed_node``);
- play from a node: every node finished just before that node was first scheduled;
- counterfactual: every finished node except those downstream of the nodes whose recorded
  output is replaced; the replaced nodes are carried with their new output.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain.scheduling import NodeStatus, merge_output, taken_edges
from domain.workflow_graph import WorkflowDefinition, graph_of

ForkMode = Literal["resume", "play_from_node", "counterfactual"]


class CarriedNode(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    status: Literal["succeeded", "skipped"]
    output: dict[str, Any] = {}
    targets: list[str] = []  # successors whose edge this node took
    completion_event_id: UUID | None = None  # in the execution forked from


class ForkOrigin(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: UUID  # the parent branch
    from_event_id: UUID  # the fork's first event's parent
    mode: ForkMode
    name: str | None = None
    hypothesis: str | None = None
    replaced: list[str] = []  # counterfactual: nodes whose output was replaced
    skipped_failed: str | None = None  # resume: the failed node counted as done


def downstream(definition: WorkflowDefinition, roots: Iterable[str]) -> set[str]:
    """The nodes reachable from ``roots``, roots included."""
    return graph_of(definition).reachable(roots)


def carried_nodes(
    nodes: Mapping[str, NodeStatus],
    completion_order: Iterable[str],
    outputs: Mapping[str, Any],
    taken: set[tuple[str, str]],
    completion_events: Mapping[str, UUID],
    *,
    exclude: Collection[str] = (),
) -> list[CarriedNode]:
    """The finished nodes, in the order they finished, minus ``exclude``."""
    carried: list[CarriedNode] = []
    order = [n for n in completion_order if n in nodes] + [n for n in nodes if n not in completion_events]
    for node_id in dict.fromkeys(order):
        status = nodes[node_id]
        if node_id in exclude or status not in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED):
            continue
        output = outputs.get(node_id)
        carried.append(
            CarriedNode(
                node_id=node_id,
                status="succeeded" if status is NodeStatus.SUCCEEDED else "skipped",
                output=dict(output) if isinstance(output, dict) else {},
                targets=sorted(t for s, t in taken if s == node_id),
                completion_event_id=completion_events.get(node_id),
            )
        )
    return carried


def replace_outputs(
    definition: WorkflowDefinition, base_state: Mapping[str, Any], carried: list[CarriedNode], new: Mapping[str, Any]
) -> tuple[list[CarriedNode], dict[str, Any]]:
    """Counterfactual: put ``new`` outputs in place, re-derive the state in completion
    order and the edges the replaced nodes now take."""
    state = dict(base_state)
    result: list[CarriedNode] = []
    for c in carried:
        if c.status == "skipped":
            result.append(c)
            continue
        output = dict(new[c.node_id]) if c.node_id in new else c.output
        state = merge_output(state, c.node_id, output)
        if c.node_id in new:
            targets = sorted(t for _, t in taken_edges(definition, c.node_id, state))
            c = msgspec.structs.replace(c, output=output, targets=targets, completion_event_id=c.completion_event_id)
        result.append(c)
    return result, state
