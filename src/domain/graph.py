"""Directed graphs of node ids: adjacency, reachability, cycles and a topological order.

The one place these are computed for a workflow's nodes and edges (validation, analysis,
scheduling and forking all ask). Pure; knows nothing of what a node or an edge means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Graph:
    """Successors and predecessors of every node, in the order the edges were given.
    An edge with an unknown end, or from a node to itself, is left out: the structural
    checks report those, and nothing can run along them."""

    nodes: tuple[str, ...]
    successors: dict[str, list[str]]
    predecessors: dict[str, list[str]]

    @classmethod
    def of(cls, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Graph:
        ids = tuple(dict.fromkeys(nodes))
        successors: dict[str, list[str]] = {n: [] for n in ids}
        predecessors: dict[str, list[str]] = {n: [] for n in ids}
        for source, target in edges:
            if source in successors and target in successors and source != target:
                successors[source].append(target)
                predecessors[target].append(source)
        return cls(ids, successors, predecessors)

    def reachable(self, roots: Iterable[str]) -> set[str]:
        """The nodes reachable from ``roots``, roots included."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.successors.get(node, ()))
        return seen

    def find_cycle(self) -> list[str]:
        """One cycle as a list of node ids (first repeated at the end), or [] if acyclic."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.nodes, white)
        for root in self.nodes:
            if colour[root] != white:
                continue
            # Iterative DFS so a long chain cannot hit the recursion limit.
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = []
            while stack:
                node, index = stack.pop()
                if index == 0:
                    colour[node] = grey
                    path.append(node)
                if index < len(self.successors[node]):
                    stack.append((node, index + 1))
                    nxt = self.successors[node][index]
                    if colour[nxt] == grey:
                        return [*path[path.index(nxt) :], nxt]
                    if colour[nxt] == white:
                        stack.append((nxt, 0))
                else:
                    colour[node] = black
                    path.pop()
        return []

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, keeping the given node order among ready nodes (nodes on a
        cycle are left out)."""
        indegree = {n: len(self.predecessors[n]) for n in self.nodes}
        ready = [n for n in self.nodes if indegree[n] == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for nxt in self.successors[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return order
