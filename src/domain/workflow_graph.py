"""The canonical workflow definition (Analemma OS, Agent Studio and jsondagapi references) and its
structural checks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from domain.errors import FieldProblem
from domain.graph import Graph

NodeId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
NodeType = Literal["task", "decision", "approval", "start", "end"]


class Node(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step of a workflow. ``timeout`` is in seconds; ``config`` is opaque to Quipu."""

    id: NodeId
    type: NodeType = "task"
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    agent_type: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    # A registered callback (POST /callbacks/register) that serves this node over HTTP,
    # instead of a worker of ``agent_type``.
    callback_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")] | None = None
    config: dict[str, Any] = {}
    timeout: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 3600)] | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0


class Edge(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename={"source": "from", "target": "to"}
):
    """A dependency: ``to`` may start once ``from`` has completed (and ``condition`` holds)."""

    source: NodeId
    target: NodeId
    condition: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


RunTimeout = Annotated[float, msgspec.Meta(gt=0, le=30 * 24 * 3600)]


class WorkflowDefinition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Nodes and edges: a directed acyclic graph. ``timeout`` (seconds) limits a run when its
    start names no ``timeout_seconds`` (Agent Studio's overall workflow timeout)."""

    nodes: Annotated[list[Node], msgspec.Meta(max_length=2000)]
    edges: Annotated[list[Edge], msgspec.Meta(max_length=10000)] = []
    timeout: RunTimeout | None = None


def structural_problems(definition: WorkflowDefinition) -> list[FieldProblem]:
    """Every structural problem at once: duplicates, dangling edges, self-loops, cycles."""
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for i, node in enumerate(definition.nodes):
        if node.id in seen:
            problems.append(FieldProblem(f"nodes[{i}].id", f"duplicate node id '{node.id}'", "duplicate_id"))
        seen.add(node.id)
    if not definition.nodes:
        problems.append(FieldProblem("nodes", "a workflow needs at least one node", "empty"))
    edge_keys: set[tuple[str, str]] = set()
    for i, edge in enumerate(definition.edges):
        for end, name in ((edge.source, "from"), (edge.target, "to")):
            if end not in seen:
                problems.append(FieldProblem(f"edges[{i}].{name}", f"unknown node '{end}'", "dangling_edge"))
        if edge.source == edge.target:
            problems.append(FieldProblem(f"edges[{i}]", "an edge may not loop on itself", "cycle"))
        key = (edge.source, edge.target)
        if key in edge_keys:
            problems.append(FieldProblem(f"edges[{i}]", f"duplicate edge {key[0]} -> {key[1]}", "duplicate_edge"))
        edge_keys.add(key)
    cycle = find_cycle(definition)
    if cycle:
        problems.append(FieldProblem("edges", "the graph has a cycle: " + " -> ".join(cycle), "cycle"))
    return problems


def graph_of(definition: WorkflowDefinition) -> Graph:
    """The definition's nodes and edges as a graph (adjacency in definition order)."""
    return Graph.of((n.id for n in definition.nodes), ((e.source, e.target) for e in definition.edges))


def find_cycle(definition: WorkflowDefinition) -> list[str]:
    """One cycle as a list of node ids (first repeated at the end), or [] if acyclic."""
    return graph_of(definition).find_cycle()
