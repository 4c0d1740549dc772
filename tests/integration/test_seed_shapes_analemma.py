"""The Analemma OS reference's request shapes, sent as its API reference writes them: the HITP
resume body over HTTP and over the WebSocket, checkpoint resume with ``skip_failed_segment``,
and the timeline's ``segment_start`` / ``segment_end`` / ``self_healing`` filters.

The reference writes some values as ``{...}``, which is not JSON; those placeholders are filled
with a small object, everything else is copied as written."""

from __future__ import annotations

import json
from typing import Any

import websockets

from api.app import create_app
from tests.integration.conftest import Running
from tests.integration.servers import serving

REVIEW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "draft", "agent_type": "llm"},
        {"id": "review", "type": "approval", "config": {"prompt": "Please review and approve"}},
        {"id": "publish", "agent_type": "llm"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "draft"},
        {"from": "draft", "to": "review"},
        {"from": "review", "to": "publish"},
        {"from": "publish", "to": "end"},
    ],
}
ADDITIONAL = {"reviewer": "ana", "notes": "numbers checked"}  # the reference's {...}
RESUME_BODY = {"user_response": "Approved", "additional_data": ADDITIONAL}


async def _run(q: Running, definition: dict[str, Any]) -> str:
    c, h = q.client, q.auth()
    wf = await c.post("/api/v1/workflows", json={"name": "hitp", "definition": definition}, headers=h)
    assert wf.status_code == 201, wf.text
    ex = await c.post("/api/v1/executions", json={"workflow_id": wf.json()["id"]}, headers=h)
    assert ex.status_code == 201, ex.text
    return str(ex.json()["id"])


async def _resumed_events(q: Running, execution_id: str) -> list[dict[str, Any]]:
    dag = (await q.client.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=q.auth())).json()
    return [n["payload"] for n in dag["nodes"] if n["kind"] == "execution.resumed"]


async def test_the_resume_body_is_recorded_kept_in_the_state_and_answers_a_waiting_approval(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _run(quipu, REVIEW)
    base = f"/api/v1/executions/{execution_id}"
    assert (await c.post(f"{base}/pause", headers=h)).json()["status"] == "paused"
    r = await c.post(f"{base}/resume", json=RESUME_BODY, headers=h)
    assert r.status_code == 200, r.text
    ex = r.json()
    assert ex["status"] == "running" and ex["current_nodes"] == ["draft"]
    assert ex["state"]["hitp_response"] == {"user_response": "Approved", "additional_data": ADDITIONAL}
    (resumed,) = await _resumed_events(quipu, execution_id)
    assert (resumed["user_response"], resumed["additional_data"], resumed["approval_id"]) == (
        "Approved",
        ADDITIONAL,
        None,
    )

    # Waiting for the approval is the reference's PAUSED_FOR_HITP: the same body answers it.
    r = await c.post(f"{base}/nodes/draft/complete", json={"output": {"text": "draft"}}, headers=h)
    assert r.json()["status"] == "waiting_for_approval"
    approval_id = r.json()["pending_approvals"][0]["approval_id"]
    again = {"user_response": "Approved after edits", "additional_data": {"round": 2}}
    ex = (await c.post(f"{base}/resume", json=again, headers=h)).json()
    assert ex["status"] == "running" and ex["current_nodes"] == ["publish"] and ex["pending_approvals"] == []
    assert ex["state"]["hitp_response"]["additional_data"] == {"round": 2}
    history = (await c.get(f"{base}/approvals", headers=h)).json()["items"]
    assert [(a["approval_id"], a["status"], a["feedback"]) for a in history] == [
        (approval_id, "approved", "Approved after edits")
    ]
    assert (await _resumed_events(quipu, execution_id))[1]["approval_id"] == approval_id

    # Nothing to resume any more: running, not paused, no approval waiting.
    r = await c.post(f"{base}/resume", json=RESUME_BODY, headers=h)
    assert r.status_code == 409
    r = await c.post(f"{base}/resume", json={"user_response": "x", "surprise": 1}, headers=h)
    assert r.status_code == 422  # unknown fields are still refused


async def _recv_type(ws: Any, wanted: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] in (wanted, "error"):
            return message


async def test_hitp_answers_over_the_websocket(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    first, second, third = [await _run(quipu, REVIEW) for _ in range(3)]
    for execution_id in (first, second, third):
        r = await c.post(f"/api/v1/executions/{execution_id}/nodes/draft/complete", json={}, headers=h)
        assert r.json()["status"] == "waiting_for_approval"
    async with serving(create_app(quipu.ctx)) as base:
        url = base.replace("http://", "ws://") + "/api/v1/ws"
        async with websockets.connect(f"{url}?token={quipu.keys['acme-reader']}", open_timeout=10) as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            await ws.send(json.dumps({"action": "approve", "execution_id": first}))
            refused = await _recv_type(ws, "approved")
            assert (refused["type"], refused["error_code"]) == ("error", "FORBIDDEN")  # a read-only key
        async with websockets.connect(f"{url}?token={quipu.keys['acme']}", open_timeout=10) as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            # The reference's HITP response, as written (its {...} filled).
            hitp = {"action": "resume", "execution_id": first, "response": "Approved", "additional_data": ADDITIONAL}
            await ws.send(json.dumps(hitp))
            done = await _recv_type(ws, "resumed")
            assert (done["type"], done["execution_id"], done["status"]) == ("resumed", first, "running")
            approval = (await c.get(f"/api/v1/executions/{second}/approvals", headers=h)).json()["items"][0]
            await ws.send(
                json.dumps(
                    {
                        "action": "approve",
                        "execution_id": second,
                        "approval_id": approval["approval_id"],
                        "feedback": "Looks good, proceed",
                    }
                )
            )
            assert (await _recv_type(ws, "approved"))["status"] == "running"
            await ws.send(json.dumps({"action": "reject", "execution_id": third, "response": "Not this week"}))
            assert (await _recv_type(ws, "rejected"))["status"] == "failed"
            await ws.send(json.dumps({"action": "reject", "execution_id": third}))
            assert (await _recv_type(ws, "rejected"))["error_code"] == "CONFLICT"  # nothing waits any more
            both = {"action": "resume", "execution_id": first, "response": "a", "user_response": "b"}
            await ws.send(json.dumps(both))
            assert (await _recv_type(ws, "resumed"))["error_code"] == "BAD_REQUEST"
            await ws.send(json.dumps({"action": "ping"}))
            assert json.loads(await ws.recv())["type"] == "pong"  # the socket is still open

    ex = (await c.get(f"/api/v1/executions/{first}", headers=h)).json()
    assert ex["nodes"]["review"] == "succeeded" and ex["current_nodes"] == ["publish"]
    assert ex["state"]["hitp_response"] == {"user_response": "Approved", "additional_data": ADDITIONAL}
    second_history = (await c.get(f"/api/v1/executions/{second}/approvals", headers=h)).json()["items"]
    assert [(a["status"], a["feedback"]) for a in second_history] == [("approved", "Looks good, proceed")]
    third_ex = (await c.get(f"/api/v1/executions/{third}", headers=h)).json()
    assert third_ex["status"] == "failed" and third_ex["error"] == "rejected: Not this week"


PIPELINE = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "agent_type": "web"},
        {"id": "parse", "agent_type": "web"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "parse"}, {"from": "parse", "to": "end"}],
}


async def test_checkpoint_resume_takes_skip_failed_segment(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _run(quipu, PIPELINE)
    base = f"/api/v1/executions/{execution_id}"
    await c.post(f"{base}/nodes/fetch/complete", json={"output": {"pages": 3}}, headers=h)
    failed = await c.post(f"{base}/nodes/parse/fail", json={"error": "bad html"}, headers=h)
    assert failed.json()["status"] == "failed"
    nodes = (await c.get(f"{base}/resumable-nodes", headers=h)).json()["items"]
    checkpoint = next(n["checkpoint_id"] for n in nodes if n["node_id"] == "fetch")

    # The reference's body, as written: parse runs again, with the modified state.
    seed_body = {"modified_state": {"retry_count": 0}, "skip_failed_segment": False}
    r = await c.post(f"{base}/checkpoints/{checkpoint}/resume", json=seed_body, headers=h)
    assert r.status_code == 201, r.text
    branch = r.json()
    assert branch["state"]["retry_count"] == 0 and branch["state"]["pages"] == 3
    assert branch["fork"]["skipped_failed"] is None and branch["current_nodes"] == ["parse"]

    # Skipping the failed segment counts parse as done: the branch runs to its end.
    skip = {**seed_body, "skip_failed_segment": True}
    r = await c.post(f"{base}/checkpoints/{checkpoint}/resume", json=skip, headers=h)
    skipped = r.json()
    assert skipped["fork"]["skipped_failed"] == "parse"
    assert skipped["nodes"]["parse"] == "succeeded" and skipped["status"] == "succeeded"


async def test_timeline_filters_take_the_segment_and_self_healing_names(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    flaky = {
        "nodes": [
            {"id": "a", "agent_type": "w"},
            {"id": "b", "agent_type": "w", "max_retries": 1, "config": {"retry_backoff": 3600}},
        ],
        "edges": [{"from": "a", "to": "b"}],
    }
    execution_id = await _run(quipu, flaky)
    base = f"/api/v1/executions/{execution_id}"
    await c.post(f"{base}/nodes/a/heartbeat", json={}, headers=h)
    await c.post(f"{base}/nodes/a/complete", json={"output": {}}, headers=h)
    await c.post(f"{base}/nodes/b/heartbeat", json={}, headers=h)
    assert (await c.post(f"{base}/nodes/b/fail", json={"error": "flaky"}, headers=h)).status_code == 200
    url = f"{base}/timeline?event_types=segment_start,segment_end,self_healing"
    seen: dict[str, Any] = {}

    async def projected() -> bool:
        seen.update((await c.get(url, headers=h)).json())
        return len(seen["timeline"]) == 4

    await quipu.wait_for(projected)
    assert seen["filtered"] is True
    assert [(e["event_type"], e["node_id"]) for e in seen["timeline"]] == [
        ("node_started", "a"),
        ("node_completed", "a"),
        ("node_started", "b"),
        ("node_retry", "b"),
    ]
    only = (await c.get(f"{base}/timeline?event_types=self_healing", headers=h)).json()
    assert [(e["event_type"], e["node_id"]) for e in only["timeline"]] == [("node_retry", "b")]
    bad = await c.get(f"{base}/timeline?event_types=segment_middle", headers=h)
    assert bad.status_code == 422 and "self_healing" in bad.text  # the aliases are listed as valid
