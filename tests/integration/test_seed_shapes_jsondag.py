"""jsondagapi's request bodies, sent as its reference writes them (copied from its text; only
placeholder ids are filled in): execution start, node completion, decision, and its status names."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Running

# jsondagapi 6.1 Start Execution, verbatim ("string" is its placeholder for the workflow id)
START = """{
  "workflow_id": "string",
  "workflow_version": "1.0.0",
  "inputs": {}
}"""
# 8.1 Task Completion Callback, verbatim
COMPLETE = """{
  "status": "COMPLETED",
  "outputs": {},
  "error": null
}"""
# 8.2 Decision Callback, verbatim
DECISION = """{
  "outcome": "approve"
}"""

FLOW = {
    "nodes": [
        {"id": "validate_input", "agent_type": "http"},
        {"id": "risk_decision", "type": "decision", "config": {"external": True, "outcomes": {"approve": "ship"}}},
        {"id": "ship", "agent_type": "http"},
        {"id": "reject", "agent_type": "http"},
    ],
    "edges": [
        {"from": "validate_input", "to": "risk_decision"},
        {"from": "risk_decision", "to": "ship"},
        {"from": "risk_decision", "to": "reject", "condition": "risk == 'high'"},
    ],
}


def _json(h: dict[str, str]) -> dict[str, str]:
    return h | {"Content-Type": "application/json"}


async def _workflow_with_two_versions(q: Running) -> dict[str, Any]:
    c, h = q.client, q.auth()
    r = await c.post("/api/v1/workflows", json={"name": "orders", "definition": FLOW}, headers=h)
    assert r.status_code == 201, r.text
    wf = r.json()
    changed = {"nodes": [*FLOW["nodes"], {"id": "audit", "agent_type": "http"}], "edges": FLOW["edges"]}
    r = await c.put(f"/api/v1/workflows/{wf['id']}", json={"name": "orders", "definition": changed}, headers=h)
    assert r.status_code == 200 and r.json()["definition_version"] == 2
    return wf


async def test_the_seed_start_body_runs_the_named_version_with_its_inputs(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = await _workflow_with_two_versions(quipu)
    body = START.replace('"string"', json.dumps(wf["id"]))
    r = await c.post("/api/v1/executions", content=body, headers=_json(h))
    assert r.status_code == 201, r.text
    ex = r.json()
    # 1.0.0 is the version as created, not the latest (2): the run has no "audit" node
    assert ex["workflow_version"] == 1 and "audit" not in ex["nodes"]
    assert ex["state"] == {} and ex["status"] == "running" and ex["current_nodes"] == ["validate_input"]
    # 1.1.0 is the first change; inputs become the state the run starts from
    r = await c.post(
        "/api/v1/executions",
        json={"workflow_id": wf["id"], "workflow_version": "1.1.0", "inputs": {"order": 7}},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["workflow_version"] == 2 and "audit" in r.json()["nodes"]
    assert r.json()["state"] == {"order": 7}
    both = {"workflow_id": wf["id"], "input": {"a": 1}, "inputs": {"b": 2}}
    r = await c.post("/api/v1/executions", json=both, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "ambiguous"
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "workflow_version": "2.0.0"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "unknown_version"
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "workflow_version": "1.5.0"}, headers=h)
    assert r.status_code == 404  # no sixth version


async def test_the_seed_completion_and_decision_bodies_move_the_run(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    r = await c.post("/api/v1/workflows", json={"name": "orders", "definition": FLOW}, headers=h)
    wf = r.json()
    ex = (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()
    base = f"/api/v1/executions/{ex['id']}"
    r = await c.post(f"{base}/nodes/validate_input/complete", content=COMPLETE, headers=_json(h))
    assert r.status_code == 200, r.text
    ex = r.json()
    assert ex["nodes"]["validate_input"] == "succeeded" and ex["nodes"]["risk_decision"] == "scheduled"

    r = await c.post(f"{base}/decisions/risk_decision", content=DECISION, headers=_json(h))
    assert r.status_code == 200, r.text
    ex = r.json()
    # "approve" is mapped by the node's config.outcomes to "ship"; the other branch is skipped
    assert ex["nodes"]["risk_decision"] == "succeeded" and ex["nodes"]["reject"] == "skipped"
    assert ex["current_nodes"] == ["ship"]
    made = (await c.get("/api/v1/event-dag/by-kind/execution.decision_made", headers=h)).json()["items"]
    assert [(e["payload"]["outcome"], e["payload"]["targets"]) for e in made] == [("approve", ["ship"])]

    # outputs merge into the state as output does
    r = await c.post(f"{base}/nodes/ship/complete", json={"status": "COMPLETED", "outputs": {"sent": 1}}, headers=h)
    assert r.json()["status"] == "succeeded" and r.json()["state"]["sent"] == 1
    assert (await c.get(f"{base}?style=jsondag", headers=h)).json()["status"] == "COMPLETED"


async def test_a_failed_status_fails_the_attempt_and_contradictions_are_refused(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    flow = {
        "nodes": [
            {"id": "a", "agent_type": "http", "max_retries": 1},
            {"id": "d", "type": "decision", "config": {"external": True}},
            {"id": "e", "agent_type": "http"},
        ],
        "edges": [{"from": "a", "to": "d"}, {"from": "d", "to": "e", "condition": "go == true"}],
    }
    wf = (await c.post("/api/v1/workflows", json={"name": "f", "definition": flow}, headers=h)).json()
    ex = (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()
    base = f"/api/v1/executions/{ex['id']}"
    bad = {"status": "COMPLETED", "outputs": {}, "error": "boom"}
    r = await c.post(f"{base}/nodes/a/complete", json=bad, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "contradiction"
    r = await c.post(f"{base}/nodes/a/complete", json={"output": {"x": 1}, "outputs": {"y": 2}}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "ambiguous"
    failed = {"status": "FAILED", "outputs": {}, "error": {"code": "EXECUTION_FAILED", "message": "card declined"}}
    r = await c.post(f"{base}/nodes/a/complete", json=failed, headers=h)
    assert r.status_code == 200 and r.json()["nodes"]["a"] == "retrying"
    fails = (await c.get("/api/v1/event-dag/by-kind/execution.node_failed", headers=h)).json()["items"]
    assert "card declined" in fails[0]["payload"]["error"]
    r = await c.post(f"{base}/decisions/d", json={"outcome": "approve"}, headers=h)
    assert r.status_code == 409  # d is not waiting yet
    r = await c.post(f"{base}/decisions/d", json={"outcome": "x", "targets": []}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "ambiguous"


async def test_the_jsondag_style_names_statuses_as_jsondagapi_does(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "s", "definition": FLOW}, headers=h)).json()
    r = await c.post("/api/v1/executions?style=jsondag", json={"workflow_id": wf["id"]}, headers=h)
    assert r.status_code == 201 and r.json()["status"] == "RUNNING"
    ex = r.json()
    assert (await c.get(f"/api/v1/executions/{ex['id']}", headers=h)).json()["status"] == "running"
    await c.post(f"/api/v1/executions/{ex['id']}/cancel", headers=h)
    got = await c.get(f"/api/v1/executions/{ex['id']}?style=jsondag", headers=h)
    assert got.json()["status"] == "CANCELLED"

    async def listed() -> bool:
        r = await c.get("/api/v1/executions?style=jsondag", headers=h)
        return [i["status"] for i in r.json()["items"]] == ["CANCELLED"]

    await quipu.wait_for(listed)
    assert (await c.get("/api/v1/executions?style=sideways", headers=h)).status_code in (400, 422)
