"""Live delivery of messages on real Postgres and NATS: the relay's copy on each recipient's
NATS subject, and the SSE inbox (through uvicorn) handing out messages most urgent first,
each once, marking them delivered."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest
import websockets
from nats.js.api import ConsumerConfig

from api.app import create_app
from bus.runtime import connect_nats
from tests.integration.conftest import Running
from tests.integration.servers import serving
from tests.integration.test_coordination_exchanges import M, _agent, _get, _post
from tests.integration.test_live_updates import sse

pytestmark = pytest.mark.timeout(120)


async def _send(q: Running, sender: str, to: dict[str, Any], priority: str, payload: str) -> dict[str, Any]:
    body = {"from_agent_id": sender, "to": to, "message_type": "context_share", "priority": priority}
    return await _post(q, M, body | {"payload": payload}, 201)  # type: ignore[no-any-return]


async def test_the_relay_copies_each_message_to_its_recipients_subjects(quipu: Running) -> None:
    q = quipu
    sender, one, two = await _agent(q, "lead"), await _agent(q, "coder"), await _agent(q, "coder")
    message = await _send(q, sender, {"agent_type": "coder"}, "critical", "stop the line")
    subjects = q.wiring.subjects
    nc = await connect_nats(q.wiring.nats_url)
    try:
        js = nc.jetstream()

        async def relayed() -> bool:  # the relay creates the stream when it starts, and copies after publishing
            with contextlib.suppress(Exception):
                info = await js.stream_info(subjects.agent_messages_stream)
                return bool(info.state.messages >= 2)
            return False

        await q.wait_for(relayed)
        for agent in (one, two):
            subject = subjects.agent_messages("acme", agent)
            sub = await js.pull_subscribe(subject, stream=subjects.agent_messages_stream, config=ConsumerConfig())
            [msg] = await sub.fetch(1, timeout=10)
            envelope = msgspec.json.decode(msg.data)
            assert envelope["event_id"] == message["last_event_id"] and envelope["kind"] == "message.sent"
            assert (msg.headers or {})["Quipu-Priority"] == "critical"
            assert envelope["payload"]["content"] == "stop the line"
        # the sender was not a recipient: nothing on its subject
        sub = await js.pull_subscribe(
            subjects.agent_messages("acme", sender), stream=subjects.agent_messages_stream, config=ConsumerConfig()
        )
        with contextlib.suppress(TimeoutError):
            assert await sub.fetch(1, timeout=1) == []
    finally:
        await nc.close()


async def test_the_sse_inbox_hands_out_by_priority_once_and_marks_delivery(quipu: Running) -> None:
    q = quipu
    sender, agent = await _agent(q, "lead"), await _agent(q, "coder")
    low = await _send(q, sender, {"agent_id": agent}, "low", "when you can")
    critical = await _send(q, sender, {"agent_id": agent}, "critical", "now")
    high = await _send(q, sender, {"agent_id": agent}, "high", "soon")

    async def projected() -> bool:
        return bool((await _get(q, f"{M}?to_agent_id={agent}"))["total"] == 3)

    await q.wait_for(projected)
    url = f"/api/v1/agents/{agent}/inbox"
    async with serving(create_app(q.ctx)) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with sse(client, url, q.auth()) as reader:
            first = [await reader.next() for _ in range(3)]
            assert [m.id for m in first] == [critical["message_id"], high["message_id"], low["message_id"]]
            assert first[0].event == "context_share" and first[0].data["payload"] == "now"
            live = await _send(q, sender, {"agent_id": agent}, "normal", "while you listen")
            arrived = await reader.next()
            assert arrived.id == live["message_id"]
        got = await _get(q, f"{M}/{critical['message_id']}")
        assert got["delivered_at"] and got["acknowledged_at"] is None

        # A second feed of the same agent does not hand the same messages out again.
        async with sse(client, url, q.auth()) as again:
            fresh = await _send(q, sender, {"agent_id": agent}, "low", "only this one")
            assert (await again.next()).id == fresh["message_id"]
        r = await client.get(f"/api/v1/agents/{agent}/inbox", headers=q.auth("beta"))
        assert r.status_code == 404


async def test_the_websocket_inbox_sends_an_agents_messages_by_priority(quipu: Running) -> None:
    q = quipu
    sender, agent = await _agent(q, "lead"), await _agent(q, "coder")
    normal = await _send(q, sender, {"agent_id": agent}, "normal", "later")
    critical = await _send(q, sender, {"agent_id": agent}, "critical", "first")

    async def projected() -> bool:
        return bool((await _get(q, f"{M}?to_agent_id={agent}"))["total"] == 2)

    await q.wait_for(projected)

    async def receive(ws: Any) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(ws.recv(), 20))  # type: ignore[no-any-return]

    async with serving(create_app(q.ctx)) as base:
        url = base.replace("http://", "ws://") + f"/api/v1/ws?token={q.keys['acme']}"
        async with websockets.connect(url, open_timeout=10) as ws:
            assert (await receive(ws))["type"] == "connected"
            await ws.send(json.dumps({"action": "subscribe_inbox", "agent_id": str(UUID(int=7))}))
            assert (await receive(ws))["error_code"] == "NOT_FOUND"
            await ws.send(json.dumps({"action": "subscribe_inbox", "agent_id": agent}))
            assert (await receive(ws)) == {"type": "subscribed_inbox", "agent_id": agent}
            got = [await receive(ws), await receive(ws)]
            assert [m["message"]["message_id"] for m in got] == [critical["message_id"], normal["message_id"]]
            assert got[0]["type"] == "message" and got[0]["agent_id"] == agent
            live = await _send(q, sender, {"agent_id": agent}, "high", "now")
            assert (await receive(ws))["message"]["message_id"] == live["message_id"]
            await ws.send(json.dumps({"action": "unsubscribe_inbox", "agent_id": agent}))
            assert (await receive(ws)) == {"type": "unsubscribed_inbox", "agent_id": agent}
