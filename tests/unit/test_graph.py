"""domain.graph against networkx on random graphs: reachability, cycles, topological order."""

from __future__ import annotations

from itertools import pairwise

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from domain.graph import Graph

NODES = [f"n{i}" for i in range(8)]
edges_st = st.lists(st.tuples(st.sampled_from([*NODES, "ghost"]), st.sampled_from(NODES)), max_size=20)


def reference(edges: list[tuple[str, str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(NODES)
    g.add_edges_from((s, t) for s, t in edges if s in NODES and s != t)
    return g


@given(edges_st, st.lists(st.sampled_from(NODES), max_size=3))
def test_reachable_is_the_roots_and_their_descendants(edges: list[tuple[str, str]], roots: list[str]) -> None:
    g = reference(edges)
    expected = set(roots).union(*(nx.descendants(g, r) for r in roots))
    assert Graph.of(NODES, edges).reachable(roots) == expected


@given(edges_st)
def test_a_cycle_is_found_exactly_when_there_is_one(edges: list[tuple[str, str]]) -> None:
    graph = Graph.of(NODES, edges)
    cycle = graph.find_cycle()
    assert bool(cycle) != nx.is_directed_acyclic_graph(reference(edges))
    if cycle:
        assert cycle[0] == cycle[-1]
        assert all(b in graph.successors[a] for a, b in pairwise(cycle))


@given(edges_st)
def test_the_topological_order_respects_every_edge_of_an_acyclic_graph(edges: list[tuple[str, str]]) -> None:
    graph = Graph.of(NODES, edges)
    if graph.find_cycle():
        assert len(graph.topological_order()) < len(NODES)
        return
    order = graph.topological_order()
    assert sorted(order) == sorted(NODES)
    place = {n: i for i, n in enumerate(order)}
    assert all(place[s] < place[t] for s, ts in graph.successors.items() for t in ts)


def test_unknown_ends_and_self_loops_are_left_out_and_order_is_kept() -> None:
    graph = Graph.of(["a", "b", "c"], [("a", "c"), ("a", "b"), ("b", "b"), ("x", "a"), ("c", "y")])
    assert graph.successors == {"a": ["c", "b"], "b": [], "c": []}
    assert graph.predecessors == {"a": [], "b": ["a"], "c": ["a"]}
