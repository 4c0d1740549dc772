"""The CMBAgent reference's request shapes, sent as its API reference writes them:
play-from-node with ``branch_name``, branch comparison by ``branch_a`` / ``branch_b`` with a
summary of each branch, and a run's steps."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Running

# The reference's play-from-node body names its node "uuid": this workflow has a node with that id.
FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "plan", "name": "Analyze requirements", "agent_type": "engineer"},
        {"id": "uuid", "name": "Train model", "agent_type": "engineer", "max_retries": 1},
        {"id": "report", "name": "Write report", "agent_type": "engineer"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "plan"},
        {"from": "plan", "to": "uuid"},
        {"from": "uuid", "to": "report"},
        {"from": "report", "to": "end"},
    ],
}


async def _main_run(q: Running) -> str:
    """plan (with an LLM call costing 0.0125), uuid failing once then succeeding, report; succeeded."""
    c, h = q.client, q.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "research", "definition": FLOW}, headers=h)).json()
    execution_id = str((await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()["id"])
    base = f"/api/v1/executions/{execution_id}"
    await c.post(f"{base}/nodes/plan/heartbeat", json={}, headers=h)
    llm = {"type": "llm_call", "node_id": "plan", "model": "gpt-4o", "input_tokens": 900, "cost_usd": 0.0125}
    assert (await c.post(f"{base}/telemetry", json=llm, headers=h)).status_code == 201
    await c.post(f"{base}/nodes/plan/complete", json={"output": {"plan": "train"}}, headers=h)
    await c.post(f"{base}/nodes/uuid/fail", json={"error": "diverged"}, headers=h)
    ex = (await c.get(base, headers=h)).json()
    if ex["nodes"]["uuid"] == "retrying":  # the retry timer schedules attempt 2
        await q.wait_for(lambda: _node_is(q, base, "uuid", "scheduled"))
    await c.post(f"{base}/nodes/uuid/complete", json={"output": {"loss": 0.2}}, headers=h)
    ex = (await c.post(f"{base}/nodes/report/complete", json={"output": {"pages": 4}}, headers=h)).json()
    assert ex["status"] == "succeeded", ex
    return execution_id


async def _node_is(q: Running, base: str, node: str, status: str) -> bool:
    return bool((await q.client.get(base, headers=q.auth())).json()["nodes"][node] == status)


async def test_play_from_node_takes_branch_name_and_compare_takes_branch_a_and_b(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    main = await _main_run(quipu)

    # The reference's body, as written.
    seed_body = {"node_id": "uuid", "branch_name": "retry-from-step-3", "hypothesis": "Fix validation error"}
    r = await c.post(f"/api/v1/executions/{main}/play-from-node", json=seed_body, headers=h)
    assert r.status_code == 201, r.text
    branch = r.json()
    assert (branch["fork"]["name"], branch["fork"]["hypothesis"]) == ("retry-from-step-3", "Fix validation error")
    assert branch["fork"]["mode"] == "play_from_node" and branch["current_nodes"] == ["uuid"]
    bid = branch["id"]
    await c.post(f"/api/v1/executions/{bid}/nodes/uuid/fail", json={"error": "nan loss"}, headers=h)
    assert (await c.get(f"/api/v1/executions/{bid}", headers=h)).json()["nodes"]["uuid"] in ("retrying", "scheduled")
    await c.post(f"/api/v1/executions/{bid}/cancel", json={"reason": "enough"}, headers=h)

    async def tree_named() -> bool:
        tree = (await c.get(f"/api/v1/executions/{main}/branches", headers=h)).json()
        return [(b["name"], b["hypothesis"]) for b in tree["root"]["children"]] == [
            ("retry-from-step-3", "Fix validation error")
        ]

    await quipu.wait_for(tree_named)

    compared: dict[str, Any] = {}

    async def costed() -> bool:  # the metrics read model has seen the LLM call
        r = await c.get(f"/api/v1/branches/compare?branch_a={main}&branch_b={bid}", headers=h)
        assert r.status_code == 200, r.text
        compared.update(r.json())
        return bool(compared["branch_a"]["total_cost"] > 0)

    await quipu.wait_for(costed)
    assert (compared["a"], compared["b"]) == (main, bid)
    assert compared["branch_a"] == {
        "branch_id": main,
        "name": None,
        "total_steps": 5,
        "completed_steps": 5,
        "total_cost": 0.0125,
        "final_status": "succeeded",
    }
    side_b = compared["branch_b"]
    assert (side_b["branch_id"], side_b["name"], side_b["total_steps"]) == (bid, "retry-from-step-3", 5)
    assert (side_b["completed_steps"], side_b["final_status"]) == (2, "cancelled")  # start and plan were carried
    steps = {s["node_id"]: s for s in compared["steps"]}
    assert steps["uuid"]["differs"] == ["status", "output"] and steps["start"]["differs"] == []
    # Quipu's own names still work; mixing a name with its alias, or leaving a side out, does not.
    assert (await c.get(f"/api/v1/branches/compare?a={main}&b={bid}", headers=h)).json()["branch_b"] == side_b
    r = await c.get(f"/api/v1/branches/compare?a={main}&branch_a={main}&b={bid}", headers=h)
    assert r.status_code == 422 and "ambiguous" in r.text
    r = await c.get(f"/api/v1/branches/compare?branch_a={main}", headers=h)
    assert r.status_code == 422 and "required" in r.text
    both = {**seed_body, "name": "other"}
    assert (await c.post(f"/api/v1/executions/{main}/play-from-node", json=both, headers=h)).status_code == 422


async def test_the_steps_of_a_run(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    main = await _main_run(quipu)
    page: dict[str, Any] = {}

    async def projected() -> bool:
        page.update((await c.get(f"/api/v1/executions/{main}/steps", headers=h)).json())
        by_id = {s["node_id"]: s for s in page["items"]}
        return bool(by_id["plan"]["cost_usd"] > 0 and by_id["end"]["completed_at"])

    await quipu.wait_for(projected)
    assert page["total"] == 5 and (page["limit"], page["offset"]) == (100, 0)
    assert [(s["step_number"], s["node_id"], s["status"]) for s in page["items"]] == [
        (1, "start", "succeeded"),
        (2, "plan", "succeeded"),
        (3, "uuid", "succeeded"),
        (4, "report", "succeeded"),
        (5, "end", "succeeded"),
    ]
    plan, train = page["items"][1], page["items"][2]
    assert (plan["name"], plan["agent_type"], plan["cost_usd"], plan["retry_count"]) == (
        "Analyze requirements",
        "engineer",
        0.0125,
        0,
    )
    assert plan["scheduled_at"] <= plan["started_at"] <= plan["completed_at"]
    assert (train["name"], train["attempts"], train["retry_count"], train["started_at"]) == ("Train model", 2, 1, None)
    assert train["completed_at"] is not None

    # A branch that has not run everything: the nodes still waiting come last, unnumbered.
    r = await c.post(f"/api/v1/executions/{main}/play-from-node", json={"node_id": "uuid"}, headers=h)
    branch = r.json()["id"]
    second = (await c.get(f"/api/v1/executions/{branch}/steps?limit=2&offset=2", headers=h)).json()
    assert second["total"] == 5
    assert [(s["step_number"], s["node_id"], s["status"]) for s in second["items"]] == [
        (3, "uuid", "scheduled"),
        (None, "report", "pending"),
    ]
    assert (await c.get(f"/api/v1/executions/{branch}/steps", headers=quipu.auth("beta"))).status_code == 404
