"""The Agent Studio reference's execution side, sent as its API reference writes it: resume of a
failed run from its latest recoverable checkpoint, pause recording a checkpoint, checkpoint
types, thoughts with their type, the delete of a finished run, and the agent-type list.

Its resume, pause and delete requests carry no body (the reference's cURL examples send
none); its AgentThought bodies are copied as written."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Running

PIPELINE = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "collect", "agent_type": "data-collector", "max_retries": 0},
        {"id": "analyze", "agent_type": "sentiment-analyzer", "max_retries": 0},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "collect"},
        {"from": "collect", "to": "analyze"},
        {"from": "analyze", "to": "end"},
    ],
}
# The reference's AgentThought examples, as written in its execute-agent response.
THOUGHTS = [
    {
        "timestamp": "2025-10-08T10:40:00Z",
        "type": "observation",
        "content": "Received 3 customer reviews for sentiment analysis",
    },
    {
        "timestamp": "2025-10-08T10:40:01Z",
        "type": "reasoning",
        "content": "Using BERT model for multi-class sentiment classification",
    },
    {"timestamp": "2025-10-08T10:40:03Z", "type": "action", "content": "Computing sentiment scores for each review"},
]


async def _start(q: Running, definition: dict[str, Any] = PIPELINE, tenant: str = "acme") -> str:
    c, h = q.client, q.auth(tenant)
    wf = await c.post("/api/v1/workflows", json={"name": "studio", "definition": definition}, headers=h)
    assert wf.status_code == 201, wf.text
    ex = await c.post("/api/v1/executions", json={"workflow_id": wf.json()["id"]}, headers=h)
    assert ex.status_code == 201, ex.text
    return str(ex.json()["id"])


async def _checkpoints(q: Running, execution_id: str, count: int) -> list[dict[str, Any]]:
    """The execution's checkpoints, oldest first, once the read model holds ``count``."""
    url = f"/api/v1/executions/{execution_id}/checkpoints?order=asc"
    found: list[dict[str, Any]] = []

    async def projected() -> bool:
        found[:] = (await q.client.get(url, headers=q.auth())).json()["items"]
        return len(found) >= count

    await q.wait_for(projected)
    return found


async def _events(q: Running, execution_id: str, kind: str) -> list[dict[str, Any]]:
    dag = (await q.client.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=q.auth())).json()
    return [n for n in dag["nodes"] if n["kind"] == kind]


async def test_a_failed_run_resumes_from_its_failure_checkpoint(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu)
    base = f"/api/v1/executions/{execution_id}"
    await c.post(f"{base}/nodes/collect/complete", json={"output": {"reviews": 3}}, headers=h)
    failed = (await c.post(f"{base}/nodes/analyze/fail", json={"error": "model unavailable"}, headers=h)).json()
    assert (failed["status"], failed["error"]) == ("failed", "model unavailable")

    after_collect, failure = await _checkpoints(quipu, execution_id, 2)
    assert (after_collect["type"], after_collect["node_id"], after_collect["is_recoverable"]) == (
        "automatic",
        "collect",
        True,
    )
    assert (failure["type"], failure["node_id"], failure["is_recoverable"]) == ("failure", "analyze", True)
    one = (await c.get(f"{base}/checkpoints/{failure['checkpoint_id']}", headers=h)).json()
    assert one["type"] == "failure" and one["state"]["reviews"] == 3

    r = await c.post(f"{base}/resume", headers=h)  # the reference's resume: no body
    assert r.status_code == 200, r.text
    ex = r.json()
    assert (ex["status"], ex["error"], ex["current_nodes"]) == ("running", None, ["analyze"])
    assert ex["attempts"]["analyze"] == 2 and ex["state"]["reviews"] == 3  # the state at the checkpoint
    (resumed,) = await _events(quipu, execution_id, "execution.resumed")
    assert resumed["payload"]["from_checkpoint_id"] == failure["checkpoint_id"]
    assert failure["checkpoint_id"] in resumed["parent_ids"]
    (rescheduled,) = [
        e for e in await _events(quipu, execution_id, "execution.node_scheduled") if e["payload"]["attempt"] == 2
    ]
    assert resumed["event_id"] in rescheduled["parent_ids"] and rescheduled["payload"]["node_id"] == "analyze"

    done = await c.post(f"{base}/nodes/analyze/complete", json={"output": {"sentiment": "mixed"}}, headers=h)
    assert done.json()["status"] == "succeeded"
    again = await c.post(f"{base}/resume", headers=h)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    listed = (await c.get(f"/api/v1/executions?workflow_id={ex['workflow_id']}", headers=h)).json()
    assert listed["total"] == 1

    async def succeeded_in_list() -> bool:
        page = (await c.get(f"/api/v1/executions?workflow_id={ex['workflow_id']}", headers=h)).json()
        return bool(page["items"][0]["status"] == "succeeded")

    await quipu.wait_for(succeeded_in_list)


async def test_pause_records_a_paused_checkpoint(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu)
    base = f"/api/v1/executions/{execution_id}"
    r = await c.post(f"{base}/pause", headers=h)  # the reference's pause: no body
    assert r.status_code == 200 and r.json()["status"] == "paused"
    (paused,) = await _checkpoints(quipu, execution_id, 1)
    assert (paused["type"], paused["is_recoverable"], paused["node_id"]) == ("paused", True, None)
    (event,) = await _events(quipu, execution_id, "execution.checkpoint_taken")
    assert event["event_id"] == paused["checkpoint_id"] and event["payload"]["type"] == "paused"
    assert (await c.post(f"{base}/resume", headers=h)).json()["status"] == "running"
    manual = await c.post(f"{base}/checkpoints", json={"label": "by hand"}, headers=h)
    assert (manual.json()["type"], manual.json()["is_recoverable"]) == ("manual", True)


async def test_thoughts_carry_their_type_confidence_and_metadata(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu)
    url = f"/api/v1/executions/{execution_id}/telemetry"
    for thought in THOUGHTS:
        r = await c.post(url, json=thought, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["type"] == "thought"
    own = {
        "type": "thought",
        "node_id": "collect",
        "text": "Three reviews is a small sample",
        "thought_type": "reasoning",
        "confidence": 0.62,
        "metadata": {"model": "bert-base-uncased"},
    }
    assert (await c.post(url, json=own, headers=h)).status_code == 201
    unsure = {**THOUGHTS[0], "confidence": 1.5}
    assert (await c.post(url, json=unsure, headers=h)).status_code == 422
    odd = {"type": "thought", "text": "x", "thought_type": "dreaming"}
    assert (await c.post(url, json=odd, headers=h)).status_code == 422

    recorded = [e["payload"] for e in await _events(quipu, execution_id, "telemetry.thought")]
    assert [(p["thought_type"], p["text"]) for p in recorded] == [
        ("observation", THOUGHTS[0]["content"]),
        ("reasoning", THOUGHTS[1]["content"]),
        ("action", THOUGHTS[2]["content"]),
        ("reasoning", own["text"]),
    ]
    assert recorded[0]["reported_at"] == "2025-10-08T10:40:00Z" and recorded[0]["node_id"] is None
    assert (recorded[3]["confidence"], recorded[3]["metadata"], recorded[3]["node_id"]) == (
        0.62,
        {"model": "bert-base-uncased"},
        "collect",
    )

    async def in_timeline() -> bool:
        page = await c.get(f"/api/v1/executions/{execution_id}/timeline?event_types=thought", headers=h)
        return len(page.json()["timeline"]) == 4

    await quipu.wait_for(in_timeline)
    page = (await c.get(f"/api/v1/executions/{execution_id}/timeline?event_types=thought", headers=h)).json()
    assert [i["data"]["thought_type"] for i in page["timeline"]] == ["observation", "reasoning", "action", "reasoning"]


async def test_deleting_a_finished_run_leaves_its_history_in_the_log(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu)
    base = f"/api/v1/executions/{execution_id}"
    running = await c.delete(base, headers=h)
    assert running.status_code == 409 and "cancel it first" in running.json()["detail"]
    await c.post(f"{base}/nodes/collect/complete", json={"output": {"reviews": 3}}, headers=h)
    (checkpoint, *_) = await _checkpoints(quipu, execution_id, 1)
    assert (await c.post(f"{base}/cancel", headers=h)).json()["status"] == "cancelled"
    assert (await c.delete(base, headers=quipu.auth("beta"))).status_code == 404  # another tenant's
    assert (await c.delete(base, headers=quipu.auth("acme-reader"))).status_code == 403

    r = await c.delete(base, headers=h)  # the reference's delete: no body
    assert r.status_code == 200, r.text
    gone = r.json()
    assert (gone["execution_id"], gone["status"]) == (execution_id, "cancelled")
    assert gone["message"] == f"Execution '{execution_id}' deleted successfully"
    (tombstone,) = await _events(quipu, execution_id, "execution.deleted")
    assert tombstone["event_id"] == gone["last_event_id"]

    missing = await c.get(base, headers=h)
    assert missing.status_code == 404 and missing.json()["detail"] == f"execution {execution_id} was deleted"
    assert (await c.delete(base, headers=h)).status_code == 404
    assert (await c.post(f"{base}/resume", headers=h)).status_code == 404
    assert (await c.post(f"{base}/checkpoints", json={}, headers=h)).status_code == 404
    # Nor can it be forked: not from its checkpoint, a node, or with other outputs.
    fork = f"{base}/checkpoints/{checkpoint['checkpoint_id']}/resume"
    assert (await c.post(fork, json={}, headers=h)).status_code == 404
    assert (await c.post(f"{base}/play-from-node", json={"node_id": "collect"}, headers=h)).status_code == 404
    what_if = {"outputs": {"collect": {"reviews": 4}}}
    assert (await c.post(f"{base}/counterfactual", json=what_if, headers=h)).status_code == 404

    async def left_the_lists() -> bool:
        listed = (await c.get("/api/v1/executions?limit=1000", headers=h)).json()["items"]
        shown = (await c.get(f"{base}/checkpoints", headers=h)).status_code
        return execution_id not in {e["id"] for e in listed} and shown == 404

    await quipu.wait_for(left_the_lists)

    # Forensics still walk it: the whole stream is in the DAG, and its past state is readable.
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=h)).json()
    kinds = [e["kind"] for e in dag["nodes"]]
    assert kinds[0] == "execution.started" and kinds[-1] == "execution.deleted" and "execution.cancelled" in kinds
    past = (await c.get(f"{base}/state?as_of=2", headers=h)).json()
    assert past["deleted"] is False and past["status"] == "running"
    now = (await c.get(f"{base}/state", headers=h)).json()
    assert now["deleted"] is True and now["status"] == "cancelled"
    replayed = await c.get(f"{base}/replay", headers=h)
    assert replayed.status_code == 200 and replayed.text.strip().splitlines()[-1].count("execution.deleted") == 1


async def test_agent_types_are_listed_from_workflows_agents_and_tasks(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()

    async def types(tenant: str = "acme") -> dict[str, dict[str, Any]]:
        r = await c.get("/api/v1/agent-types", headers=quipu.auth(tenant))
        assert r.status_code == 200, r.text
        return {t["agent_type"]: t for t in r.json()["items"]}

    execution_id = await _start(quipu)
    agent = await c.post("/api/v1/agents", json={"agent_type": "report-generator"}, headers=h)
    assert agent.status_code == 201, agent.text
    seen: dict[str, dict[str, Any]] = {}

    async def listed() -> bool:
        seen.update(await types())
        return {"data-collector", "sentiment-analyzer", "report-generator"} <= set(seen)

    await quipu.wait_for(listed)
    assert list(await types()) == sorted(seen)
    collector, analyzer, reporter = seen["data-collector"], seen["sentiment-analyzer"], seen["report-generator"]
    assert (collector["workflows"], collector["agents"], collector["tasks_scheduled"]) == (1, 0, 1)
    assert (analyzer["workflows"], analyzer["tasks_scheduled"], analyzer["last_scheduled_at"]) == (1, 0, None)
    assert (reporter["workflows"], reporter["agents"], reporter["online_agents"]) == (0, 1, 1)
    assert collector["last_scheduled_at"] is not None
    assert not any(t["configured"] for t in seen.values())  # no QUIPU_AGENT_TYPES in this test
    assert await types("beta") == {}  # another tenant's work names nothing here

    workflow_id = (await c.get(f"/api/v1/executions/{execution_id}", headers=h)).json()["workflow_id"]
    removed = await c.delete(f"/api/v1/workflows/{workflow_id}", headers=h)
    assert removed.status_code == 204, removed.text

    async def workflow_gone() -> bool:
        now = await types()
        return now["data-collector"]["workflows"] == 0 and "sentiment-analyzer" not in now

    await quipu.wait_for(workflow_gone)  # tasks once scheduled keep data-collector listed
    paged = (await c.get("/api/v1/agent-types?limit=1&offset=1", headers=h)).json()
    assert paged["total"] == 2 and [t["agent_type"] for t in paged["items"]] == ["report-generator"]
