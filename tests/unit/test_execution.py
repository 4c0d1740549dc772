"""The execution aggregate, without I/O."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.aggregate import CommandContext
from domain.errors import Conflict
from domain.execution import Execution, ExecutionStatus, NodeScheduled
from domain.hashing import canonical_encoding
from domain.scheduling import NodeStatus
from domain.workflow_graph import Edge, Node, WorkflowDefinition

CTX = CommandContext("acme", "worker")
FLOW = WorkflowDefinition(
    nodes=[
        Node(id="start", type="start"),
        Node(id="fetch", agent_type="http"),
        Node(id="search", agent_type="http"),
        Node(id="route", type="decision"),
        Node(id="summarise", agent_type="llm"),
        Node(id="apologise"),
        Node(id="ok", type="approval"),
        Node(id="end", type="end"),
    ],
    edges=[
        Edge(source="start", target="fetch"),
        Edge(source="start", target="search"),
        Edge(source="fetch", target="route"),
        Edge(source="search", target="route"),
        Edge(source="route", target="summarise", condition="pages > 0"),
        Edge(source="route", target="apologise"),
        Edge(source="summarise", target="ok"),
        Edge(source="apologise", target="ok"),
        Edge(source="ok", target="end"),
    ],
)


def _start(definition: WorkflowDefinition = FLOW) -> Execution:
    return Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=definition,
        input={"query": "q"},
    )


def _scheduled(execution: Execution) -> set[str]:
    return {n for n, s in execution.nodes.items() if s is NodeStatus.SCHEDULED}


def test_a_run_through_fan_out_join_decision_and_approval() -> None:
    ex = _start()
    assert _scheduled(ex) == {"fetch", "search"} and ex.nodes["start"] is NodeStatus.SUCCEEDED
    ex.complete_node(CTX, "fetch", {"pages": 2})
    assert _scheduled(ex) == {"search"}  # the join waits for both branches
    ex.complete_node(CTX, "search", {"hits": 5})
    assert ex.nodes["route"] is NodeStatus.SUCCEEDED and ex.nodes["apologise"] is NodeStatus.SKIPPED
    assert _scheduled(ex) == {"summarise"}
    ex.complete_node(CTX, "summarise", {"summary": "s"})
    assert ex.status is ExecutionStatus.WAITING_FOR_APPROVAL and _scheduled(ex) == {"ok"}
    ex.respond_to_approval(CTX, "ok", approved=True, feedback="fine")
    assert ex.status.value == "succeeded"
    assert ex.state["pages"] == 2 and ex.state["summary"] == "s" and ex.state["query"] == "q"
    events = ex.collect_events()
    completed = {e.node_id: e.event_id for e in events if type(e).__name__ == "NodeCompleted"}
    route_start = next(e for e in events if isinstance(e, NodeScheduled) and e.node_id == "route")
    # why 'route' ran: the previous event of the stream, plus both completions it waited for
    assert set(route_start.parent_ids) >= {completed["fetch"], completed["search"]}


def test_replaying_the_events_rebuilds_the_same_execution() -> None:
    ex = _start()
    ex.complete_node(CTX, "fetch", {"pages": 0})
    ex.complete_node(CTX, "search", {})
    events = ex.collect_events()
    rebuilt = None
    for e in events:
        rebuilt = msgspec.json.decode(canonical_encoding(e), type=type(e)).mutate(rebuilt)
    assert isinstance(rebuilt, Execution)
    assert (rebuilt.status, rebuilt.nodes, rebuilt.state, rebuilt.taken) == (ex.status, ex.nodes, ex.state, ex.taken)
    assert rebuilt.nodes["summarise"] is NodeStatus.SKIPPED and _scheduled(rebuilt) == {"apologise"}


def test_rejected_approval_and_failed_node_fail_the_execution() -> None:
    ex = _start()
    for node, out in (("fetch", {"pages": 1}), ("search", {}), ("summarise", {})):
        ex.complete_node(CTX, node, out)
    ex.respond_to_approval(CTX, "ok", approved=False, feedback="wrong tone")
    assert ex.status is ExecutionStatus.FAILED and ex.nodes["ok"] is NodeStatus.FAILED
    other = _start()
    other.fail_node(CTX, "fetch", "HTTP 500")
    assert other.status is ExecutionStatus.FAILED
    with pytest.raises(Conflict):
        other.complete_node(CTX, "search", {})


def test_pause_resume_cancel_guards() -> None:
    ex = _start()
    ex.pause(CTX, "maintenance")
    with pytest.raises(Conflict):
        ex.pause(CTX)
    ex.complete_node(CTX, "fetch", {"pages": 1})  # a worker may finish work already under way
    ex.complete_node(CTX, "search", {})
    assert ex.nodes.get("route") is None  # nothing new is started while paused
    ex.resume(CTX)
    assert _scheduled(ex) == {"summarise"}
    with pytest.raises(Conflict):
        ex.resume(CTX)
    ex.cancel(CTX, "no longer needed")
    assert ex.status is ExecutionStatus.CANCELLED
    with pytest.raises(Conflict):
        ex.cancel(CTX)


def test_only_scheduled_nodes_can_be_reported() -> None:
    ex = _start()
    with pytest.raises(Conflict):
        ex.complete_node(CTX, "summarise", {})
    with pytest.raises(Conflict):
        ex.respond_to_approval(CTX, "ok", approved=True)
    with pytest.raises(Exception, match="not in this execution"):
        ex.complete_node(CTX, "ghost", {})
