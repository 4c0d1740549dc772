"""Validation and inspection of workflow graphs, checked against networkx."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.agent_studio import AgentStudioStep, duration_seconds, from_steps, iso_duration_seconds
from domain.errors import ValidationFailed
from domain.workflow_analysis import inspect, problems
from domain.workflow_graph import Edge, Node, WorkflowDefinition


def _def(
    nodes: list[Node], edges: list[tuple[str, str]], conditions: dict[tuple[str, str], str] | None = None
) -> WorkflowDefinition:
    conditions = conditions or {}
    return WorkflowDefinition(
        nodes=nodes, edges=[Edge(source=a, target=b, condition=conditions.get((a, b))) for a, b in edges]
    )


def test_every_problem_is_reported_with_path_and_code() -> None:
    d = _def(
        [
            Node(id="s", type="start"),
            Node(id="d", type="decision"),
            Node(id="x", agent_type="mystery"),
            Node(id="island"),
            Node(id="e", type="end"),
            Node(id="after"),
        ],
        [("s", "d"), ("d", "x"), ("x", "e"), ("e", "after")],
    )
    found = {(p.field, p.code) for p in problems(d, agent_types={"llm", "http"})}
    assert ("nodes[3].id", "unreachable") in found
    assert ("nodes[1]", "decision_without_conditions") in found
    assert ("nodes[2].agent_type", "unknown_agent_type") in found
    assert ("edges[3].from", "edge_from_end") in found
    assert not any(code == "unknown_agent_type" for _, code in {(p.field, p.code) for p in problems(d)})


def test_decision_with_a_condition_and_reachable_graph_is_valid() -> None:
    d = _def(
        [Node(id="s", type="start"), Node(id="d", type="decision"), Node(id="a"), Node(id="b")],
        [("s", "d"), ("d", "a"), ("d", "b")],
        {("d", "a"): "state.score > 0.5"},
    )
    assert problems(d) == []


@st.composite
def dags(draw: st.DrawFn) -> tuple[WorkflowDefinition, nx.DiGraph]:
    n = draw(st.integers(1, 25))
    edges = []
    for i in range(1, n):
        for j in draw(st.sets(st.integers(0, i - 1), max_size=3)):
            edges.append((f"n{j}", f"n{i}"))
    timeouts = draw(st.lists(st.one_of(st.none(), st.floats(1, 100)), min_size=n, max_size=n))
    d = WorkflowDefinition(
        nodes=[Node(id=f"n{i}", timeout=timeouts[i]) for i in range(n)],
        edges=[Edge(source=a, target=b) for a, b in edges],
    )
    g = nx.DiGraph(edges)
    g.add_nodes_from(f"n{i}" for i in range(n))
    return d, g


@given(dags())
def test_inspect_agrees_with_networkx(case: tuple[WorkflowDefinition, nx.DiGraph]) -> None:
    d, g = case
    facts = inspect(d)
    assert facts.node_count == g.number_of_nodes() and facts.edge_count == g.number_of_edges()
    assert facts.depth == nx.dag_longest_path_length(g) + 1
    assert set(facts.entry_nodes) == {n for n in g if g.in_degree(n) == 0}
    assert set(facts.exit_nodes) == {n for n in g if g.out_degree(n) == 0}
    path = facts.critical_path
    assert len(path) == facts.depth and all(g.has_edge(a, b) for a, b in itertools.pairwise(path))
    assert g.in_degree(path[0]) == 0 and g.out_degree(path[-1]) == 0


def test_agent_studio_steps_become_nodes_and_edges() -> None:
    steps = [
        AgentStudioStep(id="collect", name="Collect", agent_type="scraper", timeout="PT5M"),
        AgentStudioStep(id="analyse", agent_type="llm", depends_on=["collect"], configuration={"model": "x"}),
        AgentStudioStep(id="report", depends_on=["collect", "analyse"], timeout="PT1H30M"),
    ]
    d = from_steps(steps)
    assert [(n.id, n.agent_type, n.timeout) for n in d.nodes] == [
        ("collect", "scraper", 300.0),
        ("analyse", "llm", None),
        ("report", None, 5400.0),
    ]
    assert [(e.source, e.target) for e in d.edges] == [
        ("collect", "analyse"),
        ("collect", "report"),
        ("analyse", "report"),
    ]
    assert d.nodes[1].config == {"model": "x"}
    with pytest.raises(ValidationFailed) as bad:
        from_steps([AgentStudioStep(id="a", timeout="five minutes")])
    assert bad.value.problems[0].field == "steps[0].timeout"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT5M", 300),
        ("PT1H", 3600),
        ("P1D", 86400),
        ("PT0.5S", 0.5),
        ("P1DT2H", 93600),
        ("PT", None),
        ("5M", None),
        ("P", None),
    ],
)
def test_iso_durations(text: str, seconds: float | None) -> None:
    assert iso_duration_seconds(text) == seconds


def test_partial_edits_skip_only_what_a_later_edit_can_repair() -> None:
    d = _def(
        [Node(id="s", type="start"), Node(id="d", type="decision"), Node(id="new", agent_type="ghost")],
        [("s", "d"), ("d", "d")],
    )
    complete = {p.code for p in problems(d, agent_types={"llm"})}
    partial = {p.code for p in problems(d, agent_types={"llm"}, complete=False)}
    assert {"unreachable", "decision_without_conditions"} <= complete
    assert partial == {"cycle", "unknown_agent_type"}


def test_malformed_conditions_are_reported_where_they_are() -> None:
    d = _def(
        [Node(id="d", type="decision"), Node(id="a"), Node(id="b")],
        [("d", "a"), ("d", "b")],
        {("d", "a"): "state.score >", ("d", "b"): "score <= 0.5"},
    )
    found = [(p.field, p.code) for p in problems(d)]
    assert found == [("edges[0].condition", "invalid_condition")]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:05:00", 300), ("01:00:00", 3600), ("00:00:15.234", 15.234), ("PT5M", 300), ("0:60:00", None), ("5:00", None)],
)
def test_clock_durations_as_agent_studio_writes_them(text: str, seconds: float | None) -> None:
    assert duration_seconds(text) == seconds


def test_steps_retry_three_times_unless_told_and_sequential_steps_follow_each_other() -> None:
    steps = [AgentStudioStep(id="a"), AgentStudioStep(id="b", max_retries=0), AgentStudioStep(id="c")]
    assert [n.max_retries for n in from_steps(steps).nodes] == [3, 0, 3]
    assert [n.max_retries for n in from_steps(steps, max_retries=5).nodes] == [5, 0, 5]
    assert from_steps(steps, pattern="parallel").edges == []
    chained = from_steps(steps, pattern="sequential").edges
    assert [(e.source, e.target) for e in chained] == [("a", "b"), ("b", "c")]
