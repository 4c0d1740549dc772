"""Forks without I/O: what a branch carries, and that it runs only the rest."""

from __future__ import annotations

import uuid

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.execution import Execution, ExecutionStatus
from domain.execution_events import ExecutionStarted, NodeScheduled
from domain.forking import ForkOrigin, carried_nodes, downstream, replace_outputs
from domain.scheduling import NodeStatus
from domain.workflow_graph import Edge, Node, WorkflowDefinition
from tests.unit.builders import CTX, flow, replay

FLOW = flow(
    Node(id="a"),
    Node(id="b"),
    Node(id="route", type="decision"),
    Node(id="yes"),
    Node(id="no"),
    Node(id="c"),
    edges="start>a a>b b>route route>yes route>no yes>c no>c c>end",
)
FLOW = WorkflowDefinition(
    nodes=FLOW.nodes,
    edges=[
        Edge(
            source=e.source,
            target=e.target,
            condition="score > 5" if (e.source, e.target) == ("route", "yes") else None,
        )
        for e in FLOW.edges
    ],
)


def _run(score: int) -> Execution:
    ex = Execution.start(
        CTX, execution_id=uuid.uuid4(), workflow_id=uuid.uuid4(), workflow_version=1, definition=FLOW, input={"q": 1}
    )
    ex.complete_node(CTX, "a", {"x": 1})
    ex.complete_node(CTX, "b", {"score": score})
    return ex


def _fork(source: Execution, exclude: set[str], state: dict[str, object]) -> Execution:
    outputs = source.state["outputs"]
    carried = carried_nodes(
        source.nodes, source.completion_events, outputs, source.taken, source.completion_events, exclude=exclude
    )
    assert source.last_event_id is not None
    origin = ForkOrigin(execution_id=source.id, from_event_id=source.last_event_id, mode="resume")
    return Execution.fork_from(CTX, source, execution_id=uuid.uuid4(), origin=origin, carried=carried, state=state)


def test_a_branch_carries_what_finished_and_schedules_only_the_rest() -> None:
    source = _run(score=9)
    assert source.nodes["yes"] is NodeStatus.SCHEDULED and source.nodes["no"] is NodeStatus.SKIPPED
    branch = _fork(source, set(), dict(source.state))
    events = branch.collect_events()
    first = events[0]
    assert isinstance(first, ExecutionStarted) and first.parent_ids == (source.last_event_id,)
    assert {c.node_id for c in first.carried} == {"start", "a", "b", "route", "no"}
    scheduled = [e for e in events if isinstance(e, NodeScheduled)]
    assert [e.node_id for e in scheduled] == ["yes"]  # nothing carried runs again
    # why 'yes' runs: the decision's completion in the original run
    assert source.completion_events["route"] in scheduled[0].parent_ids
    assert branch.status is ExecutionStatus.RUNNING and branch.state == source.state
    rebuilt = replay(events)
    assert rebuilt.nodes == branch.nodes and rebuilt.taken == branch.taken and rebuilt.fork == branch.fork


def test_a_counterfactual_output_changes_the_branch_a_decision_takes() -> None:
    source = _run(score=9)
    source.complete_node(CTX, "yes", {"said": "yes"})
    source.complete_node(CTX, "c", {})
    assert source.status is ExecutionStatus.SUCCEEDED
    rerun = downstream(FLOW, ["b"]) - {"b"}
    kept = carried_nodes(
        source.nodes, source.completion_events, source.state["outputs"], source.taken, source.completion_events,
        exclude=rerun,
    )  # fmt: skip
    carried, state = replace_outputs(FLOW, source.input, kept, {"b": {"score": 1}})
    assert state["score"] == 1 and "said" not in state
    assert {c.node_id for c in carried} == {"start", "a", "b"}
    assert source.last_event_id is not None
    origin = ForkOrigin(execution_id=source.id, from_event_id=source.last_event_id, mode="counterfactual")
    branch = Execution.fork_from(CTX, source, execution_id=uuid.uuid4(), origin=origin, carried=carried, state=state)
    # the decision runs again on the new state and now takes the other branch
    assert branch.nodes["route"] is NodeStatus.SUCCEEDED and branch.nodes["yes"] is NodeStatus.SKIPPED
    assert branch.nodes["no"] is NodeStatus.SCHEDULED
    assert source.status is ExecutionStatus.SUCCEEDED and source.state["score"] == 9  # untouched


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 12), st.data())
def test_downstream_matches_networkx(n: int, data: st.DataObject) -> None:
    pairs = data.draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1])))
    definition = WorkflowDefinition(
        nodes=[Node(id=f"n{i}") for i in range(n)], edges=[Edge(source=f"n{a}", target=f"n{b}") for a, b in pairs]
    )
    graph = nx.DiGraph()
    graph.add_nodes_from(f"n{i}" for i in range(n))
    graph.add_edges_from((f"n{a}", f"n{b}") for a, b in pairs)
    roots = data.draw(st.sets(st.sampled_from([f"n{i}" for i in range(n)]), max_size=3))
    expected = set(roots).union(*(nx.descendants(graph, r) for r in roots)) if roots else set()
    assert downstream(definition, roots) == expected
