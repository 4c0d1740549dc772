"""Provenance of artifacts and notes over HTTP: a real chain (workflow -> run -> approval ->
node -> turn, LLM and tool calls -> artifact -> note) walked back from each item."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "gate", "type": "approval"},
        {"id": "work", "agent_type": "llm"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "gate"}, {"from": "gate", "to": "work"}, {"from": "work", "to": "end"}],
}


async def _post(q: Running, path: str, body: dict[str, Any], status: int = 201) -> Any:
    r = await q.client.post(path, json=body, headers=q.auth())
    assert r.status_code == status, r.text
    return r.json()


async def _get(q: Running, path: str, tenant: str = "acme", status: int = 200) -> Any:
    r = await q.client.get(path, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    return r.json()


async def _chain(q: Running) -> dict[str, Any]:
    """Everything the provenance walks should find, built through the API."""
    wf = await _post(q, "/api/v1/workflows", {"name": "researcher", "definition": FLOW})
    ex = await _post(q, "/api/v1/executions", {"workflow_id": wf["id"], "input": {"q": "why"}})
    assert ex["status"] == "waiting_for_approval", ex
    approval = ex["pending_approvals"][0]["approval_id"]
    ex = await _post(q, f"/api/v1/approvals/{approval}/respond", {"action": "approve", "feedback": "go"}, 200)
    assert ex["nodes"]["work"] == "scheduled", ex
    trajectory = await _post(q, "/api/v1/trajectories", {"name": "research"})
    scope = await _post(
        q, "/api/v1/scopes", {"trajectory_id": trajectory["trajectory_id"], "name": "s", "token_budget": 1000}
    )
    turn = await _post(
        q,
        "/api/v1/turns",
        {"scope_id": scope["scope_id"], "role": "assistant", "content": "look it up", "execution_id": ex["id"]}
        | {"node_id": "work"},
    )
    telemetry = f"/api/v1/executions/{ex['id']}/telemetry"
    llm = await _post(q, telemetry, {"type": "llm_call", "node_id": "work", "model": "m-1", "input_tokens": 7})
    tool = await _post(
        q, telemetry, {"type": "tool_call", "node_id": "work", "tool": "web_search", "caused_by": [llm["event_id"]]}
    )
    artifact = await _post(
        q,
        "/api/v1/artifacts",
        {
            "name": "finding",
            "artifact_type": "fact",
            "content": "the sky is blue",
            "extraction_method": "tool_extraction",
            "execution_id": ex["id"],
            "node_id": "work",
            "caused_by": [turn["last_event_id"], tool["event_id"]],
        },
    )
    note = await _post(
        q,
        "/api/v1/notes",
        {
            "title": "sky",
            "content": "blue, per a search",
            "note_type": "fact",
            "source_artifact_ids": [artifact["artifact_id"]],
            "source_trajectory_ids": [trajectory["trajectory_id"]],
        },
    )
    dag = await _get(q, f"/api/v1/event-dag?correlation_id={ex['id']}")
    return {
        "wf": wf, "ex": ex, "approval": approval, "trajectory": trajectory, "scope": scope, "turn": turn,
        "llm": llm, "tool": tool, "artifact": artifact, "note": note,
        "kinds": {n["event_id"]: n for n in dag["nodes"]},
    }  # fmt: skip


def _event_of(chain: dict[str, Any], kind: str, node_id: str | None = None) -> dict[str, Any]:
    return next(
        e
        for e in chain["kinds"].values()
        if e["kind"] == kind and (node_id is None or e["payload"]["node_id"] == node_id)
    )


def _assert_produced_by_the_chain(p: dict[str, Any], chain: dict[str, Any]) -> None:
    ex_id, actor = chain["ex"]["id"], _event_of(chain, "execution.started")["actor"]
    turn = chain["turn"]
    assert [(t["turn_id"], t["event_id"]) for t in p["turns"]] == [(turn["turn_id"], turn["last_event_id"])]
    assert p["turns"][0]["scope_id"] == chain["scope"]["scope_id"]
    assert p["turns"][0]["trajectory_id"] == chain["trajectory"]["trajectory_id"]
    assert (p["turns"][0]["role"], p["turns"][0]["execution_id"], p["turns"][0]["node_id"]) == (
        "assistant",
        ex_id,
        "work",
    )
    assert [(c["event_id"], c["tool"], c["node_id"]) for c in p["tool_calls"]] == [
        (chain["tool"]["event_id"], "web_search", "work")
    ]
    assert [(c["event_id"], c["model"], c["input_tokens"]) for c in p["llm_calls"]] == [
        (chain["llm"]["event_id"], "m-1", 7)
    ]
    scheduled = _event_of(chain, "execution.node_scheduled", "work")
    node = p["node"]
    assert (node["execution_id"], node["node_id"], node["attempt"]) == (ex_id, "work", 1)
    assert (node["event_id"], node["kind"], node["status"]) == (
        scheduled["event_id"],
        "execution.node_scheduled",
        "scheduled",
    )
    answered = _event_of(chain, "execution.approval_answered")
    [approval] = p["approvals"]
    assert (approval["approval_id"], approval["event_id"]) == (chain["approval"], answered["event_id"])
    assert (approval["approved"], approval["node_id"], approval["feedback"]) == (True, "gate", "go")
    assert approval["answered_by"] == actor and approval["state_hash"] == answered["payload"]["state_hash"]
    commands = {(c["kind"], c["stream_id"]): c for c in p["command"]}
    started = commands[("execution.started", ex_id)]
    assert (started["event_id"], started["actor"], started["reason"]) == (
        _event_of(chain, "execution.started")["event_id"],
        actor,
        "stream_start",
    )
    ran = commands[("workflow.created", chain["wf"]["id"])]
    assert ran["reason"] == "workflow_run" and ran["actor"] == actor
    assert _event_of(chain, "execution.started")["parent_ids"] == [ran["event_id"]]  # the definition it ran
    distances = [e["distance"] for e in p["events"]]
    assert (
        distances == sorted(distances)
        and distances[0] == 0
        and len(set(e["event"]["event_id"] for e in p["events"])) == len(distances)
    )
    assert p["truncated"] is False


async def test_an_artifacts_provenance_leads_to_its_turn_tools_node_approval_and_command(quipu: Running) -> None:
    chain = await _chain(quipu)
    artifact = chain["artifact"]
    p = await _get(quipu, f"/api/v1/artifacts/{artifact['artifact_id']}/provenance")
    item = p["item"]
    assert (item["entity_type"], item["id"], item["created_event_id"]) == (
        "artifact",
        artifact["artifact_id"],
        artifact["last_event_id"],
    )
    assert item["actor"] == _event_of(chain, "execution.started")["actor"] and item["created_at"]
    assert (item["supersedes"], item["superseded_by"], item["deleted"]) == (None, None, False)
    assert p["events"][0]["event"]["event_id"] == artifact["last_event_id"]
    # The artifact's own causes are one hop away; the LLM call only through the tool call.
    hops = {c["event_id"]: c["distance"] for c in p["tool_calls"] + p["llm_calls"] + p["turns"]}
    assert hops == {chain["tool"]["event_id"]: 1, chain["turn"]["last_event_id"]: 1, chain["llm"]["event_id"]: 2}
    assert p["node"]["distance"] == 1 and p["sources"] == []
    _assert_produced_by_the_chain(p, chain)


async def test_a_notes_provenance_goes_through_its_sources(quipu: Running) -> None:
    chain = await _chain(quipu)
    note, artifact = chain["note"], chain["artifact"]
    p = await _get(quipu, f"/api/v1/notes/{note['note_id']}/provenance")
    assert (p["item"]["entity_type"], p["item"]["id"], p["item"]["created_event_id"]) == (
        "note",
        note["note_id"],
        note["last_event_id"],
    )
    sources = {s["entity_type"]: s for s in p["sources"]}
    assert set(sources) == {"artifact", "trajectory"}
    a = sources["artifact"]
    assert (a["id"], a["created_event_id"], a["linked_event_id"], a["distance"]) == (
        artifact["artifact_id"],
        artifact["last_event_id"],
        artifact["last_event_id"],
        1,
    )
    t = sources["trajectory"]  # named, not a parent: known but not on the walk's way
    assert t["id"] == chain["trajectory"]["trajectory_id"] and t["created_event_id"] and t["linked_event_id"] is None
    _assert_produced_by_the_chain(p, chain)
    assert p["node"]["distance"] == 2  # through the artifact

    # A superseding artifact names what it replaced; the replaced one names its successor.
    old = artifact["artifact_id"]
    new = await _post(
        quipu,
        f"/api/v1/artifacts/{old}/supersede",
        {"name": "finding v2", "artifact_type": "fact", "content": "blue-ish", "extraction_method": "inferred"},
    )
    p_new = await _get(quipu, f"/api/v1/artifacts/{new['artifact_id']}/provenance")
    assert p_new["item"]["supersedes"] == {"id": old, "event_id": artifact["last_event_id"]}
    assert p_new["node"]["event_id"] == _event_of(chain, "execution.node_scheduled", "work")["event_id"]
    p_old = await _get(quipu, f"/api/v1/artifacts/{old}/provenance")
    assert p_old["item"]["superseded_by"] == new["artifact_id"]
    assert p_old["item"]["last_event_id"] != p_old["item"]["created_event_id"]


async def test_provenance_is_bounded_tenant_scoped_and_404s_for_unknown_items(quipu: Running) -> None:
    chain = await _chain(quipu)
    artifact, note = chain["artifact"]["artifact_id"], chain["note"]["note_id"]
    near = await _get(quipu, f"/api/v1/artifacts/{artifact}/provenance?max_depth=1")
    assert near["truncated"] is True and {e["distance"] for e in near["events"]} == {0, 1}
    assert near["llm_calls"] == [] and near["approvals"] == [] and near["node"]["distance"] == 1
    few = await _get(quipu, f"/api/v1/artifacts/{artifact}/provenance?limit=2")
    assert few["truncated"] is True and len(few["events"]) == 3 and few["limit"] == 2
    assert (await _get(quipu, f"/api/v1/notes/{note}/provenance", tenant="acme-reader"))["item"]["id"] == note

    unknown = "0190a5f4-0000-7000-8000-000000000000"
    for path in (
        f"/api/v1/artifacts/{artifact}/provenance",
        f"/api/v1/notes/{note}/provenance",
    ):
        r = await quipu.client.get(path, headers=quipu.auth("beta"))
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    for path in (
        f"/api/v1/artifacts/{unknown}/provenance",
        f"/api/v1/notes/{unknown}/provenance",
        f"/api/v1/artifacts/{note}/provenance",  # a note is not an artifact
        f"/api/v1/notes/{chain['turn']['turn_id']}/provenance",
    ):
        assert (await quipu.client.get(path, headers=quipu.auth())).status_code == 404, path
    for query in ("max_depth=0", "limit=0", "limit=x"):
        r = await quipu.client.get(f"/api/v1/artifacts/{artifact}/provenance?{query}", headers=quipu.auth())
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), query
    # A deleted artifact keeps its history, and so its provenance.
    assert (await quipu.client.delete(f"/api/v1/artifacts/{artifact}", headers=quipu.auth())).status_code == 204
    gone = await _get(quipu, f"/api/v1/artifacts/{artifact}/provenance")
    assert gone["item"]["deleted"] is True and gone["tool_calls"]
