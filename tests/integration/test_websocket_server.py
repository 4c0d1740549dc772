"""The WebSocket endpoint through a real uvicorn server and a real WebSocket client."""

from __future__ import annotations

import json
from typing import Any

import websockets

from api.app import create_app
from tests.integration.conftest import Running
from tests.integration.servers import serving

FLOW = {"nodes": [{"id": "only", "agent_type": "w"}]}


async def _recv(ws: Any) -> dict[str, Any]:
    return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def test_a_client_connects_pings_and_follows_a_run_to_its_end(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "w", "definition": FLOW}, headers=h)).json()
    ex = (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()
    async with serving(create_app(quipu.ctx)) as base:
        url = base.replace("http://", "ws://") + "/api/v1/ws"
        token = quipu.keys["acme"]
        async with websockets.connect(f"{url}?token={token}", open_timeout=10) as ws:
            assert (await _recv(ws))["type"] == "connected"
            await ws.send(json.dumps({"action": "ping"}))
            assert (await _recv(ws))["type"] == "pong"
            await ws.send(json.dumps({"action": "subscribe", "execution_id": ex["id"]}))
            assert (await _recv(ws))["type"] == "subscribed"
            r = await c.post(f"/api/v1/executions/{ex['id']}/nodes/only/complete", json={"output": {"v": 1}}, headers=h)
            assert r.status_code == 200
            seen = []
            while not seen or seen[-1]["type"] != "completed":
                seen.append(await _recv(ws))
            assert seen[-1]["status"] == "SUCCEEDED" and seen[-1]["output"]["v"] == 1
            assert all(m["execution_id"] == ex["id"] for m in seen)
        other = quipu.keys["beta"]
        async with websockets.connect(f"{url}?token={other}", open_timeout=10) as ws:
            assert (await _recv(ws))["type"] == "connected"
            await ws.send(json.dumps({"action": "subscribe", "execution_id": ex["id"]}))
            assert (await _recv(ws))["error_code"] == "NOT_FOUND"  # another tenant's run
