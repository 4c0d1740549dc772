"""The client against a real Quipu: memory resources, their provenance, edges and search."""

from __future__ import annotations

import base64

from quipu_client.models import ArtifactWrite, NoteWrite, ScopeCreate, TrajectoryCreate, TurnCreate
from tests.client.conftest import Served
from tests.client.support import eventually


async def test_memory_resources_edges_and_search(served: Served) -> None:
    async with served.client() as quipu:
        root = await quipu.trajectories.create(TrajectoryCreate(name="debug the flaky build"))
        child = await quipu.trajectories.create({"name": "read the CI log", "parent_trajectory_id": root.trajectory_id})
        assert child.root_trajectory_id == root.trajectory_id
        renamed = await quipu.trajectories.update(root.trajectory_id, {"description": "CI times out"}, if_match=1)
        assert renamed.description == "CI times out"
        children = await eventually(lambda: quipu.trajectories.children(root.trajectory_id), lambda p: p.total == 1)
        assert children.items[0].trajectory_id == child.trajectory_id

        scope = await quipu.scopes.create(
            ScopeCreate(trajectory_id=root.trajectory_id, name="triage", token_budget=8000)
        )
        turn = await quipu.turns.create(
            TurnCreate(scope_id=scope.scope_id, role="user", content="Why does CI time out?", token_count=12)
        )
        answer = {"scope_id": scope.scope_id, "role": "assistant", "content": "The pool.", "token_count": 3}
        await quipu.turns.create(answer)
        turns = await eventually(lambda: quipu.scopes.turns(scope.scope_id), lambda p: p.total == 2)
        assert [t.sequence for t in turns.items] == [1, 2] and turns.items[0].turn_id == turn.turn_id
        assert (await quipu.turns.get(turn.turn_id)).token_count == 12
        assert (await quipu.scopes.get(scope.scope_id)).tokens_used == 15
        context = base64.b64encode(b"summary so far").decode()  # the context window's bytes, base64
        saved = await quipu.scopes.checkpoint(scope.scope_id, {"context_state": context, "recoverable": True})
        assert saved.recoverable
        scopes = await eventually(lambda: quipu.trajectories.scopes(root.trajectory_id), lambda p: p.total == 1)
        assert scopes.items[0].scope_id == scope.scope_id

        artifact = await quipu.artifacts.create(
            ArtifactWrite(
                name="CI log",
                artifact_type="error_log",
                content="TimeoutError: database pool exhausted after 30 s",
                extraction_method="tool_extraction",
                trajectory_id=root.trajectory_id,
                metadata={"repo": "api"},
            )
        )
        note = await quipu.notes.create(
            NoteWrite(
                title="Pool size on CI",
                note_type="gotcha",
                content="CI runs tests in parallel: raise the connection pool to 20 or tests time out.",
                source_artifact_ids=[artifact.artifact_id],
                metadata={"repo": "api"},
            )
        )
        newer = await quipu.notes.supersede(
            note.note_id, {"title": "Pool size on CI", "note_type": "gotcha", "content": "Four per worker."}
        )
        assert newer.metadata == {"repo": "api"}
        edge = await quipu.edges.create(
            {
                "edge_type": "derived_from",
                "provenance": {"extraction_method": "inferred"},
                "participants": [
                    {"entity_type": "note", "entity_id": note.note_id, "role": "derived"},
                    {"entity_type": "artifact", "entity_id": artifact.artifact_id, "role": "source"},
                ],
            }
        )
        reached = await eventually(
            lambda: quipu.edges.traverse(start=note.note_id, max_depth=2), lambda t: len(t.edges) == 1
        )
        assert reached.edges[0].edge_id == edge.edge_id
        by_note = await quipu.edges.by_participant(artifact.artifact_id)
        assert [e.edge_id for e in by_note.items] == [edge.edge_id]
        provenance = await quipu.notes.provenance(note.note_id)
        assert (provenance.item.entity_type, provenance.item.id) == ("note", note.note_id)

        found = await eventually(
            lambda: quipu.search.query({"query": "pool exhausted", "mode": "keyword"}),
            lambda r: artifact.artifact_id in [x.entity_id for x in r.results],
        )
        assert found.mode == "keyword"
        notes = await eventually(
            lambda: quipu.notes.search({"query": "pool", "mode": "keyword", "include_superseded": True}),
            lambda r: {note.note_id, newer.note_id} <= {x.entity_id for x in r.results},
        )
        assert notes.total >= 2
        only_artifacts = await quipu.artifacts.search({"query": "pool", "mode": "keyword"})
        assert {x.entity_type for x in only_artifacts.results} == {"artifact"}

        await quipu.turns.delete(turn.turn_id)
        await quipu.scopes.close(scope.scope_id)
        done = await quipu.trajectories.complete(root.trajectory_id, {"outcome": {"fixed": True}})
        assert done.status == "completed"
        await quipu.trajectories.fail(child.trajectory_id, {"error": "gave up"})
        listed = await eventually(
            lambda: quipu.trajectories.list(root_trajectory_id=root.trajectory_id),
            lambda p: {t.status for t in p.items} == {"completed", "failed"},
        )
        assert listed.total == 2
