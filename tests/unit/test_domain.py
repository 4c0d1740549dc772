"""The pure domain, without I/O."""

from __future__ import annotations

import itertools
import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.aggregate import CommandContext
from domain.envelope import envelope_from_state
from domain.errors import Conflict, ValidationFailed
from domain.events import UnknownKind, all_kinds, resolve_kind
from domain.hashing import canonical_encoding, depth_from, event_hash
from domain.ids import uuid7, uuid7_time_ms
from domain.workflow import Workflow, WorkflowCreated
from domain.workflow_graph import Edge, Node, WorkflowDefinition, find_cycle, structural_problems

CTX = CommandContext("acme", "tester")
DEF = WorkflowDefinition(nodes=[Node(id="a"), Node(id="b")], edges=[Edge(source="a", target="b")])


def _workflow() -> Workflow:
    return Workflow.create(CTX, workflow_id=uuid.uuid4(), name="w", description="", definition=DEF, metadata={})


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert abs(uuid7_time_ms(ids[0]) - uuid7_time_ms(ids[-1])) < 5000


def test_events_chain_to_the_previous_event_of_their_stream_plus_causes() -> None:
    wf = _workflow()
    cause = uuid.uuid4()
    wf.update(CommandContext("acme", "tester", (cause,)), name="w2", description="", definition=DEF, metadata={})
    created, updated = wf.collect_events()
    assert created.parent_ids == () and created.originator_version == 1
    assert updated.parent_ids == (created.event_id, cause)
    assert wf.definition_version == 2 and wf.version == 2


def test_replaying_recorded_events_gives_the_same_state() -> None:
    wf = _workflow()
    wf.update(CTX, name="w2", description="d", definition=DEF, metadata={"k": 1})
    wf.delete(CTX)
    events = wf.collect_events()
    rebuilt = None
    for e in events:
        decoded = msgspec.json.decode(canonical_encoding(e), type=type(e))
        rebuilt = decoded.mutate(rebuilt)
    assert isinstance(rebuilt, Workflow)
    assert (rebuilt.name, rebuilt.deleted, rebuilt.version, rebuilt.metadata) == ("w2", True, 3, {"k": 1})


def test_deleted_workflow_refuses_changes() -> None:
    wf = _workflow()
    wf.delete(CTX)
    with pytest.raises(Conflict):
        wf.update(CTX, name="x", description="", definition=DEF, metadata={})


def test_replay_refuses_out_of_order_versions() -> None:
    wf = _workflow()
    wf.update(CTX, name="w2", description="", definition=DEF, metadata={})
    first, second = wf.collect_events()
    blank = Workflow.blank(first)
    with pytest.raises(Conflict):
        blank.replay(second)


def test_structural_problems_are_all_reported() -> None:
    bad = WorkflowDefinition(
        nodes=[Node(id="a"), Node(id="a"), Node(id="b"), Node(id="c")],
        edges=[
            Edge(source="a", target="x"),
            Edge(source="b", target="c"),
            Edge(source="c", target="b"),
            Edge(source="c", target="c"),
        ],
    )
    codes = sorted(p.code for p in structural_problems(bad))
    assert codes == ["cycle", "cycle", "dangling_edge", "duplicate_id"]
    with pytest.raises(ValidationFailed) as raised:
        Workflow.create(CTX, workflow_id=uuid.uuid4(), name="w", description="", definition=bad, metadata={})
    assert all(p.field.startswith("definition.") for p in raised.value.problems)


@given(st.integers(2, 30), st.data())
def test_find_cycle_agrees_with_networkx(n: int, data: st.DataObject) -> None:
    import networkx as nx

    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    edges = [(f"n{a}", f"n{b}") for a, b in pairs if a != b]
    d = WorkflowDefinition(
        nodes=[Node(id=f"n{i}") for i in range(n)], edges=[Edge(source=a, target=b) for a, b in dict.fromkeys(edges)]
    )
    g = nx.DiGraph(edges)
    g.add_nodes_from(f"n{i}" for i in range(n))
    cycle = find_cycle(d)
    assert bool(cycle) == (not nx.is_directed_acyclic_graph(g))
    for a, b in itertools.pairwise(cycle):
        assert g.has_edge(a, b)


def test_hash_covers_state_depth_and_parent_hashes_in_order() -> None:
    base = event_hash(b"{}", 1, ["a" * 64, "b" * 64])
    assert base != event_hash(b"{ }", 1, ["a" * 64, "b" * 64])
    assert base != event_hash(b"{}", 2, ["a" * 64, "b" * 64])
    assert base != event_hash(b"{}", 1, ["b" * 64, "a" * 64])
    assert depth_from([]) == 0 and depth_from([0, 3, 1]) == 4


def test_envelope_round_trip_and_kind_codes() -> None:
    wf = _workflow()
    (event,) = wf.collect_events()
    env = envelope_from_state(canonical_encoding(event), event.KIND, depth=0, hash_="h", notification_id=7)
    assert env.event_id == event.event_id and env.code == WorkflowCreated.CODE == 0xA001
    assert env.payload["name"] == "w" and "tenant_id" not in env.payload
    assert resolve_kind("workflow.created") == resolve_kind("40961") == resolve_kind("0xa001") == "workflow.created"
    with pytest.raises(UnknownKind):
        resolve_kind("nope.never")
    codes = list(all_kinds().values())
    assert len(codes) == len(set(codes))


def test_canonical_encoding_is_key_order_independent() -> None:
    wf = _workflow()
    (event,) = wf.collect_events()
    raw = canonical_encoding(event)
    decoded = msgspec.json.decode(raw)
    assert list(decoded) == sorted(decoded)
