"""Graph progression of an execution, checked against networkx reachability."""

from __future__ import annotations

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from domain.scheduling import NodeStatus, advance, merge_output, taken_edges
from domain.workflow_graph import Edge, Node, WorkflowDefinition


def _run(definition: WorkflowDefinition, state: dict[str, object]) -> tuple[list[str], set[str]]:
    """Drive the graph to the end, completing every ready node; returns run order and skips."""
    status: dict[str, NodeStatus] = {}
    taken: set[tuple[str, str]] = set()
    order: list[str] = []
    skipped: set[str] = set()
    while True:
        step = advance(definition, status, taken)
        for node in step.skipped:
            status[node] = NodeStatus.SKIPPED
            skipped.add(node)
        for node in step.ready:
            status[node] = NodeStatus.SCHEDULED
        runnable = [n for n, s in status.items() if s == NodeStatus.SCHEDULED]
        if not runnable:
            return order, skipped
        node = runnable[0]
        status[node] = NodeStatus.SUCCEEDED
        order.append(node)
        taken |= set(taken_edges(definition, node, state))


def test_fan_out_join_and_a_decision_that_skips_a_branch() -> None:
    d = WorkflowDefinition(
        nodes=[
            Node(id="start", type="start"),
            Node(id="a"),
            Node(id="b"),
            Node(id="join"),
            Node(id="route", type="decision"),
            Node(id="hi"),
            Node(id="lo"),
            Node(id="end", type="end"),
        ],
        edges=[
            Edge(source="start", target="a"),
            Edge(source="start", target="b"),
            Edge(source="a", target="join"),
            Edge(source="b", target="join"),
            Edge(source="join", target="route"),
            Edge(source="route", target="hi", condition="score > 0.5"),
            Edge(source="route", target="lo"),
            Edge(source="hi", target="end"),
            Edge(source="lo", target="end"),
        ],
    )
    order, skipped = _run(d, {"score": 0.9})
    assert order.index("join") > max(order.index("a"), order.index("b"))
    assert "hi" in order and skipped == {"lo"} and order[-1] == "end"
    order, skipped = _run(d, {"score": 0.1})
    assert "lo" in order and skipped == {"hi"} and order[-1] == "end"


def test_a_join_whose_every_input_was_skipped_is_skipped_too() -> None:
    d = WorkflowDefinition(
        nodes=[Node(id="d", type="decision"), Node(id="x"), Node(id="y"), Node(id="after_x"), Node(id="other")],
        edges=[
            Edge(source="d", target="x", condition="go == true"),
            Edge(source="d", target="other"),
            Edge(source="x", target="y"),
            Edge(source="y", target="after_x"),
        ],
    )
    order, skipped = _run(d, {"go": False})
    assert skipped == {"x", "y", "after_x"} and order == ["d", "other"]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[WorkflowDefinition, nx.DiGraph]:
    n = draw(st.integers(1, 20))
    edges = []
    for i in range(1, n):
        for j in draw(st.sets(st.integers(0, i - 1), max_size=3)):
            edges.append(
                Edge(source=f"n{j}", target=f"n{i}", condition=draw(st.sampled_from([None, "v > 0", "v < 0"])))
            )
    d = WorkflowDefinition(nodes=[Node(id=f"n{i}") for i in range(n)], edges=edges)
    g = nx.DiGraph()
    g.add_nodes_from(f"n{i}" for i in range(n))
    g.add_edges_from((e.source, e.target, {"condition": e.condition}) for e in edges)
    return d, g


@given(graphs(), st.sampled_from([-1, 1]))
def test_a_node_runs_exactly_when_taken_edges_lead_to_it(case: tuple[WorkflowDefinition, nx.DiGraph], v: int) -> None:
    d, g = case
    order, skipped = _run(d, {"v": v})
    holds = {None: True, "v > 0": v > 0, "v < 0": v < 0}
    taken = nx.DiGraph([(a, b) for a, b, c in g.edges(data="condition") if holds[c]])
    taken.add_nodes_from(g)
    entries = [n for n in g if g.in_degree(n) == 0]
    expected = set(entries).union(*(nx.descendants(taken, e) for e in entries))
    assert set(order) == expected and len(order) == len(set(order))
    assert skipped == set(g) - expected
    for node in order:  # every predecessor had finished before the node ran
        assert all(p in skipped or order.index(p) < order.index(node) for p in g.predecessors(node))


def test_state_merge_rule() -> None:
    state = merge_output({"query": "q"}, "fetch", {"pages": 3, "outputs": "ignored"})
    state = merge_output(state, "summarise", {"summary": "s", "pages": 4})
    assert state["pages"] == 4 and state["query"] == "q" and state["summary"] == "s"
    assert state["outputs"] == {"fetch": {"pages": 3, "outputs": "ignored"}, "summarise": {"summary": "s", "pages": 4}}
