"""Checks and facts about a workflow graph beyond its structure (Agent Studio and jsondagapi references).

``problems`` reports everything at once, each with a field path and a code, so a client
can fix a definition in one round. ``inspect`` summarises a valid graph.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import msgspec

from domain.conditions import ConditionError
from domain.conditions import parse as parse_condition
from domain.errors import FieldProblem
from domain.workflow_graph import WorkflowDefinition, find_cycle, graph_of, structural_problems


def problems(
    definition: WorkflowDefinition,
    agent_types: Iterable[str] | None = None,
    *,
    complete: bool = True,
    callbacks: Collection[str] | None = None,
) -> list[FieldProblem]:
    """Structural problems, unreachable nodes, decisions without conditions and, where a
    registry of agent types is configured, unknown agent types.

    ``complete=False`` is for a definition being edited piece by piece: a node added now
    is connected by the next edit, so only what no later edit could repair (duplicates,
    dangling edges, cycles, malformed conditions, unknown agent types, edges out of an
    end node) is checked.
    Starting an execution checks the complete rules again.

    ``callbacks`` are the callback ids registered for the tenant: a node naming another is
    refused with ``UNKNOWN_CALLBACK`` (the jsondagapi reference's code). Without it, callback
    ids are not looked up (only their placement is checked).
    """
    found = structural_problems(definition)
    starts = [n.id for n in definition.nodes if n.type == "start"]
    if complete and starts and not find_cycle(definition):
        reachable = graph_of(definition).reachable(starts)
        for i, node in enumerate(definition.nodes):
            if node.id not in reachable:
                found.append(
                    FieldProblem(f"nodes[{i}].id", f"'{node.id}' cannot be reached from a start node", "unreachable")
                )
    conditioned = {e.source for e in definition.edges if e.condition}
    for i, node in enumerate(definition.nodes):
        if complete and node.type == "decision" and node.id not in conditioned:
            found.append(
                FieldProblem(
                    f"nodes[{i}]",
                    f"decision '{node.id}' has no outgoing edge with a condition",
                    "decision_without_conditions",
                )
            )
    if agent_types is not None:
        known = set(agent_types)
        for i, node in enumerate(definition.nodes):
            if node.agent_type is not None and node.agent_type not in known:
                found.append(
                    FieldProblem(
                        f"nodes[{i}].agent_type", f"unknown agent type '{node.agent_type}'", "unknown_agent_type"
                    )
                )
    found.extend(callback_problems(definition, callbacks))
    for i, edge in enumerate(definition.edges):
        if edge.condition is not None:
            try:
                parse_condition(edge.condition)
            except ConditionError as error:
                found.append(FieldProblem(f"edges[{i}].condition", str(error), "invalid_condition"))
    types = {n.id: n.type for n in definition.nodes}
    for i, edge in enumerate(definition.edges):
        if types.get(edge.source) == "end":
            found.append(
                FieldProblem(f"edges[{i}].from", f"end node '{edge.source}' cannot have successors", "edge_from_end")
            )
    return found


def callback_problems(definition: WorkflowDefinition, callbacks: Collection[str] | None) -> list[FieldProblem]:
    """A callback serves a task node or an external decision node, instead of a worker; its id
    must be registered (when ``callbacks`` is given)."""
    found: list[FieldProblem] = []
    for i, node in enumerate(definition.nodes):
        if node.callback_id is None:
            continue
        where = f"nodes[{i}].callback_id"
        if node.agent_type is not None:
            found.append(FieldProblem(where, "a node names a callback_id or an agent_type, not both", "ambiguous"))
        if node.type not in ("task", "decision") or (node.type == "decision" and not node.config.get("external")):
            found.append(
                FieldProblem(where, "only task nodes and external decision nodes are served by callbacks", "placement")
            )
        if callbacks is not None and node.callback_id not in callbacks:
            found.append(FieldProblem(where, f"callback '{node.callback_id}' is not registered", "UNKNOWN_CALLBACK"))
    return found


class Inspection(msgspec.Struct, frozen=True):
    node_count: int
    edge_count: int
    depth: int
    decision_nodes: list[str]
    approval_nodes: list[str]
    entry_nodes: list[str]
    exit_nodes: list[str]
    critical_path: list[str]
    critical_path_timeout: float | None


def inspect(definition: WorkflowDefinition) -> Inspection:
    """Facts about an acyclic definition. ``depth`` counts nodes on the longest chain; the
    critical path is that chain (ties broken by the larger sum of node timeouts), with
    its total timeout when every node on it has one."""
    graph = graph_of(definition)
    order = graph.topological_order()
    preds, succs = graph.predecessors, graph.successors
    timeout = {n.id: n.timeout for n in definition.nodes}
    best: dict[str, tuple[int, float, str | None]] = {}
    for node in order:
        length, weight, prev = 1, timeout[node] or 0.0, None
        for p in preds[node]:
            cand = (best[p][0] + 1, best[p][1] + (timeout[node] or 0.0))
            if cand > (length, weight):
                length, weight, prev = cand[0], cand[1], p
        best[node] = (length, weight, prev)
    path: list[str] = []
    if best:
        cursor: str | None = max(order, key=lambda n: (best[n][0], best[n][1]))
        while cursor is not None:
            path.append(cursor)
            cursor = best[cursor][2]
        path.reverse()
    timeouts = [timeout[n] for n in path]
    return Inspection(
        node_count=len(definition.nodes),
        edge_count=len(definition.edges),
        depth=len(path),
        decision_nodes=[n.id for n in definition.nodes if n.type == "decision"],
        approval_nodes=[n.id for n in definition.nodes if n.type == "approval"],
        entry_nodes=[n for n in order if not preds[n]],
        exit_nodes=[n for n in order if not succs[n]],
        critical_path=path,
        critical_path_timeout=sum(t for t in timeouts if t is not None)
        if all(t is not None for t in timeouts) and path
        else None,
    )
