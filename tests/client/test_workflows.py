"""The client against a real Quipu: workflows, paging, concurrency control, analysis."""

from __future__ import annotations

import uuid

import pytest

from quipu_client import PreconditionFailed
from quipu_client.models import DefinitionInput, Node, WorkflowEdge, WorkflowWrite
from tests.client.conftest import Served
from tests.client.support import Recorder, eventually

TWO_NODES = DefinitionInput(
    nodes=[Node(id="fetch", agent_type="http"), Node(id="summarise", agent_type="llm")],
    edges=[WorkflowEdge(from_="fetch", to="summarise")],
)


async def test_workflows_create_read_update_edit_and_delete(served: Served) -> None:
    async with served.client() as quipu:
        created = await quipu.workflows.create(WorkflowWrite(name="digest", definition=TWO_NODES))
        assert (created.version, created.definition.nodes[1].id) == (1, "summarise")
        assert created.definition.edges[0].from_ == "fetch"

        updated = await quipu.workflows.update(
            created.id, {"name": "digest v2", "definition": {"nodes": [{"id": "fetch"}]}}, if_match=1
        )
        assert (updated.version, updated.name) == (2, "digest v2")
        with pytest.raises(PreconditionFailed):  # a lost update: version 1 is no longer current
            await quipu.workflows.update(created.id, {"name": "stale", "definition": {"nodes": []}}, if_match=1)
        assert (await quipu.workflows.get(created.id, version=1)).name == "digest"

        edited = await quipu.workflows.add_node(created.id, Node(id="publish", type="approval"), if_match=2)
        edited = await quipu.workflows.add_edge(created.id, WorkflowEdge(from_="fetch", to="publish"))
        assert [e.to for e in edited.definition.edges] == ["publish"]
        edited = await quipu.workflows.remove_edge(created.id, from_="fetch", to="publish")
        edited = await quipu.workflows.remove_node(created.id, "publish")
        assert [n.id for n in edited.definition.nodes] == ["fetch"]

        await quipu.workflows.delete(created.id, if_match=edited.version)
        state = await quipu.time_travel.workflow_state(created.id, as_of="1")
        assert state.name == "digest" and state.as_of.version == 1


async def test_validate_and_inspect_answer_every_problem(served: Served) -> None:
    async with served.client() as quipu:
        validation = await quipu.workflows.validate(
            {"nodes": [{"id": "a"}, {"id": "a"}], "edges": [{"from": "a", "to": "missing"}]}
        )
        assert not validation.valid
        assert {e.code for e in validation.errors} >= {"duplicate_id", "dangling_edge"}
        inspection = await quipu.workflows.inspect({"definition": TWO_NODES})
        assert (inspection.node_count, inspection.critical_path) == (2, ["fetch", "summarise"])


async def test_iterators_page_through_a_whole_list(served: Served) -> None:
    recorder = Recorder()
    tag = uuid.uuid4().hex[:8]
    async with served.client(http=recorder.client()) as quipu:
        made = [await quipu.workflows.create({"name": f"{tag}-{i}", "definition": TWO_NODES}) for i in range(5)]
        await eventually(lambda: quipu.workflows.list(name=tag), lambda page: page.total == 5)
        recorder.requests.clear()

        seen = [w.id async for w in quipu.workflows.iter_list(name=tag, sort="name", order="asc", page_size=2)]
        assert seen == [w.id for w in made]
        pages = [dict(r.url.params) for r in recorder.requests]
        assert [p["offset"] for p in pages] == ["0", "2", "4"] and {p["limit"] for p in pages} == {"2"}
