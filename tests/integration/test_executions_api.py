"""Executions through the HTTP API: start, worker reports, decisions, approvals, steering."""

from __future__ import annotations

from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "agent_type": "http"},
        {"id": "search", "agent_type": "http"},
        {"id": "route", "type": "decision"},
        {"id": "summarise", "agent_type": "llm"},
        {"id": "apologise", "agent_type": "llm"},
        {"id": "ok", "type": "approval"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "fetch"},
        {"from": "start", "to": "search"},
        {"from": "fetch", "to": "route"},
        {"from": "search", "to": "route"},
        {"from": "route", "to": "summarise", "condition": "pages > 0"},
        {"from": "route", "to": "apologise"},
        {"from": "summarise", "to": "ok"},
        {"from": "apologise", "to": "ok"},
        {"from": "ok", "to": "end"},
    ],
}


async def _workflow(q: Running, tenant: str = "acme") -> dict[str, object]:
    r = await q.client.post("/api/v1/workflows", json={"name": "flow", "definition": FLOW}, headers=q.auth(tenant))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_run_from_start_to_approval_to_success(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = await _workflow(quipu)
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "input": {"query": "q"}}, headers=h)
    assert r.status_code == 201, r.text
    ex = r.json()
    assert ex["status"] == "running" and sorted(ex["current_nodes"]) == ["fetch", "search"]
    base = f"/api/v1/executions/{ex['id']}"
    ex = (await c.post(f"{base}/nodes/fetch/complete", json={"output": {"pages": 3}}, headers=h)).json()
    ex = (await c.post(f"{base}/nodes/search/complete", json={"output": {"hits": 1}}, headers=h)).json()
    assert ex["nodes"]["route"] == "succeeded" and ex["nodes"]["apologise"] == "skipped"
    assert ex["current_nodes"] == ["summarise"]
    r = await c.post(f"{base}/nodes/apologise/complete", json={"output": {}}, headers=h)
    assert r.status_code == 409  # a skipped node cannot report
    ex = (await c.post(f"{base}/nodes/summarise/complete", json={"output": {"summary": "s"}}, headers=h)).json()
    assert ex["status"] == "waiting_for_approval" and ex["pending_approvals"][0]["node_id"] == "ok"
    approval = ex["pending_approvals"][0]["approval_id"]
    ex = (
        await c.post(f"/api/v1/approvals/{approval}/respond", json={"action": "approve", "feedback": "ok"}, headers=h)
    ).json()
    assert ex["status"] == "succeeded" and ex["progress"] == 100.0
    assert ex["state"]["summary"] == "s" and ex["state"]["outputs"]["ok"] == {"approved": True, "feedback": "ok"}
    r = await c.post(f"/api/v1/approvals/{approval}/respond", json={"action": "approve"}, headers=h)
    assert r.status_code == 409
    assert (await c.post(f"{base}/pause", headers=h)).status_code == 409

    # The DAG says why each node ran: route's scheduling names both completions it waited for.
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={ex['id']}", headers=h)).json()
    by_id = {n["event_id"]: n for n in dag["nodes"]}
    route = next(
        n for n in dag["nodes"] if n["kind"] == "execution.node_scheduled" and n["payload"]["node_id"] == "route"
    )
    waited = {
        by_id[p]["payload"].get("node_id")
        for p in route["parent_ids"]
        if by_id[p]["kind"] == "execution.node_completed"
    }
    assert waited == {"fetch", "search"}
    started = dag["nodes"][0]
    assert started["kind"] == "execution.started" and wf["last_event_id"] in started["parent_ids"]


async def test_steering_idempotent_start_rejection_and_tenancy(quipu: Running) -> None:
    c, h = quipu.client, {**quipu.auth(), "Idempotency-Key": "run-1"}
    wf = await _workflow(quipu)
    first = await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)
    again = await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)
    assert first.json()["id"] == again.json()["id"] and again.headers["idempotent-replayed"] == "true"
    base = f"/api/v1/executions/{first.json()['id']}"
    auth = quipu.auth()
    assert (await c.post(f"{base}/pause", json={"reason": "lunch"}, headers=auth)).json()["status"] == "paused"
    assert (await c.post(f"{base}/pause", headers=auth)).status_code == 409
    await c.post(f"{base}/nodes/fetch/complete", json={"output": {"pages": 0}}, headers=auth)
    ex = (await c.post(f"{base}/nodes/search/complete", json={}, headers=auth)).json()
    assert "route" not in ex["current_nodes"] and ex["nodes"]["route"] == "pending"  # nothing starts while paused
    ex = (await c.post(f"{base}/resume", headers=auth)).json()
    assert ex["current_nodes"] == ["apologise"]
    ex = (await c.post(f"{base}/nodes/apologise/fail", json={"error": "model timeout"}, headers=auth)).json()
    assert ex["status"] == "failed"
    assert (await c.post(f"{base}/cancel", headers=auth)).status_code == 409
    assert (await c.get(base, headers=quipu.auth("beta"))).status_code == 404
    assert (await c.post(f"{base}/resume", headers=quipu.auth("beta"))).status_code == 404
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=quipu.auth("beta"))
    assert r.status_code == 404


async def test_invalid_workflows_cannot_start(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (
        await c.post("/api/v1/workflows", json={"name": "w", "definition": {"nodes": [{"id": "a"}]}}, headers=h)
    ).json()
    # partial edits may leave a workflow incomplete; starting it checks the complete rules
    await c.post(f"/api/v1/workflows/{wf['id']}/nodes", json={"id": "s", "type": "start"}, headers=h)
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "unreachable"


async def test_list_from_the_read_model_and_rebuild_equals_incremental(quipu: Running, database_url: str) -> None:
    import psycopg

    from quipu.rebuild import rebuild_projection

    c, h = quipu.client, quipu.auth()
    wf = await _workflow(quipu)
    other = await _workflow(quipu)
    ids = [
        (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()["id"] for _ in range(3)
    ]
    await c.post("/api/v1/executions", json={"workflow_id": other["id"]}, headers=h)
    await c.post(f"/api/v1/executions/{ids[0]}/pause", headers=h)
    await c.post(f"/api/v1/executions/{ids[1]}/nodes/fetch/fail", json={"error": "boom"}, headers=h)
    await c.post(f"/api/v1/executions/{ids[2]}/nodes/fetch/complete", json={"output": {"pages": 1}}, headers=h)
    await c.post(f"/api/v1/executions/{ids[2]}/nodes/search/complete", json={}, headers=h)
    await c.post(f"/api/v1/executions/{ids[2]}/nodes/summarise/complete", json={}, headers=h)
    await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=quipu.auth("beta"))  # 404, not listed

    async def projected() -> bool:
        page = (await c.get("/api/v1/executions?limit=100", headers=h)).json()
        statuses = sorted(i["status"] for i in page["items"])
        return bool(page["total"] == 4 and statuses == ["failed", "paused", "running", "waiting_for_approval"])

    await quipu.wait_for(projected)
    page = (
        await c.get(f"/api/v1/executions?workflow_id={wf['id']}&sort=created_at&order=asc&limit=2", headers=h)
    ).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == ids[:2]
    waiting = (await c.get("/api/v1/executions?status=waiting_for_approval", headers=h)).json()["items"]
    assert [i["id"] for i in waiting] == [ids[2]] and waiting[0]["current_nodes"] == ["ok"]
    assert waiting[0]["progress"] == 75.0  # start, fetch, search, route, summarise, apologise (skipped) of 8
    assert (await c.get("/api/v1/executions?status=bogus", headers=h)).status_code in (400, 422)
    assert (await c.get("/api/v1/executions", headers=quipu.auth("beta"))).json()["total"] == 0

    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT * FROM rm_executions.executions ORDER BY execution_id").fetchall()
    await rebuild_projection(database_url, "executions")
    with psycopg.connect(database_url) as conn:
        after = conn.execute("SELECT * FROM rm_executions.executions ORDER BY execution_id").fetchall()
    assert before == after and len(after) == 4
