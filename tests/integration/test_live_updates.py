"""Live updates: SSE over a real HTTP server and the WebSocket, against real NATS and Postgres.

SSE goes through uvicorn on a free port (httpx over ASGI buffers whole responses). The
WebSocket protocol is driven here as ASGI messages on the test's own event loop (Litestar's
test client runs the app on another loop, where the API's async Postgres pool and NATS
client cannot be used); test_websocket_server.py covers the same endpoint through uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from litestar import Litestar

from api.app import create_app
from bus.subjects import Subjects
from commands.errors import ConcurrencyConflict
from domain.timers import TimerKind
from tests.integration.conftest import Running
from tests.integration.servers import serving

pytestmark = pytest.mark.timeout(120)
WAIT = 20.0  # seconds any single expected message may take

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "work", "agent_type": "llm", "max_retries": 1, "config": {"retry_backoff": 0}},
        {"id": "review", "type": "approval", "name": "Review", "timeout": 3600, "config": {"prompt": "Ship it?"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "work"}, {"from": "work", "to": "review"}, {"from": "review", "to": "end"}],
}
SHORT = {
    "nodes": [{"id": "start", "type": "start"}, {"id": "a", "agent_type": "llm"}, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "end"}],
}


# -- helpers --------------------------------------------------------------------------------------
@dataclass
class Sse:
    id: str | None
    event: str | None
    data: dict[str, Any]


@dataclass
class SseReader:
    """Reads one SSE response in a task; ``next`` waits (bounded) for the next message."""

    messages: asyncio.Queue[Sse | None] = field(default_factory=asyncio.Queue)
    seen: list[Sse] = field(default_factory=list)
    status: int = 0
    content_type: str = ""

    async def run(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        try:
            async with client.stream("GET", url, headers=headers) as response:
                self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
                if response.status_code != 200:
                    return
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if "data" in fields:
                            message = Sse(fields.get("id"), fields.get("event"), json.loads(fields["data"]))
                            self.seen.append(message)
                            await self.messages.put(message)
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        finally:
            await self.messages.put(None)  # the stream ended

    async def next(self) -> Sse:
        message = await asyncio.wait_for(self.messages.get(), WAIT)
        assert message is not None, "the stream ended early"
        return message

    async def until(self, predicate: Any) -> Sse:
        while True:
            message = await self.next()
            if predicate(message):
                return message


async def read_all(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Sse]:
    """A whole stream that is expected to end by itself (after ``completed``)."""
    reader = SseReader()
    await asyncio.wait_for(reader.run(client, url, headers), WAIT)
    assert reader.status == 200
    return reader.seen


@contextlib.asynccontextmanager
async def sse(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> AsyncIterator[SseReader]:
    reader = SseReader()
    task = asyncio.create_task(reader.run(client, url, headers))
    try:
        yield reader
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 10)


async def start_run(q: Running, definition: dict[str, Any], tenant: str = "acme") -> str:
    h = q.auth(tenant)
    wf = await q.client.post("/api/v1/workflows", json={"name": "live", "definition": definition}, headers=h)
    assert wf.status_code == 201, wf.text
    ex = await q.client.post("/api/v1/executions", json={"workflow_id": wf.json()["id"], "input": {"n": 1}}, headers=h)
    assert ex.status_code == 201, ex.text
    return str(ex.json()["id"])


async def post(q: Running, path: str, body: dict[str, Any] | None = None, tenant: str = "acme") -> dict[str, Any]:
    r = await q.client.post(path, json=body or {}, headers=q.auth(tenant))
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


async def fire_retry(q: Running, tenant: str, execution_id: str, node_id: str, attempt: int) -> None:
    """Fire the retry timer (it is due at once: backoff 0). A timer runner may beat us to it."""

    def fire() -> None:
        with contextlib.suppress(ConcurrencyConflict):
            q.ctx.executions.fire_timer(tenant, UUID(execution_id), TimerKind.RETRY, node_id, attempt)

    await asyncio.to_thread(fire)

    async def retried() -> bool:
        ex = (await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth(tenant))).json()
        return bool(ex["attempts"][node_id] == attempt + 1)

    await q.wait_for(retried)


def log_of(database_url: str, execution_id: str) -> list[tuple[str, str]]:
    """(event id, kind) of the execution and its telemetry, in log order, without checkpoints."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id, kind FROM event_dag WHERE correlation_id = %s AND kind <> 'execution.checkpoint_taken'"
            " ORDER BY notification_id",
            (UUID(execution_id),),
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


async def live_consumers(nats_client: Any, subjects: Subjects, tenant: str = "acme") -> int:
    """Live subscribers' ordered consumers on the event stream (projectors' are durable, filtered otherwise)."""
    filters = {subjects.event(tenant, "execution.>"), subjects.event(tenant, "telemetry.>")}
    infos = await nats_client.jetstream().consumers_info(subjects.events_stream)
    return sum(set(c.config.filter_subjects or []) == filters for c in infos)


async def all_released(q: Running, nats_client: Any, subjects: Subjects) -> None:
    """Every feed let go of its subscription: the server drops an ephemeral consumer nobody reads."""

    async def released() -> bool:
        return await live_consumers(nats_client, subjects) == 0

    await q.wait_for(released, timeout=20)


# -- SSE ------------------------------------------------------------------------------------------
async def test_sse_follows_a_run_and_a_reconnect_gets_exactly_the_rest(
    quipu: Running, database_url: str, nats_client: Any, subjects: Subjects
) -> None:
    h = quipu.auth()
    ex = await start_run(quipu, FLOW)
    base = f"/api/v1/executions/{ex}"
    async with serving(create_app(quipu.ctx)) as url, httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
        # Live: the first message is where the run stands (work was scheduled), then what follows.
        async with sse(http, f"{base}/events", h) as first:
            opened = await first.next()
            assert first.content_type.startswith("text/event-stream")
            assert (opened.event, opened.data["node_id"], opened.data["kind"]) == (
                "progress",
                "work",
                "execution.node_scheduled",
            )
            assert opened.data["current_nodes"] == ["work"] and opened.data["progress_percent"] == 25.0
            await post(quipu, f"{base}/nodes/work/heartbeat", {"worker": "w1"})
            started = await first.next()
            assert (started.event, started.data["node_status"]) == ("progress", "running")
            await post(
                quipu,
                f"{base}/telemetry",
                {"type": "llm_call", "node_id": "work", "model": "m-1", "input_tokens": 10, "output_tokens": 5},
            )
            llm = await first.next()
            assert llm.event == "glass_box" and llm.data["execution_id"] == ex and llm.data["node_id"] == "work"
            assert llm.data["log"]["event"] == "llm_call" and llm.data["log"]["model"] == "m-1"
            assert llm.data["log"]["tokens_used"] == 15
            await post(quipu, f"{base}/nodes/work/fail", {"error": "model overloaded"})
            failed = await first.next()
            assert failed.event == "error" and failed.data["node_id"] == "work"
            assert failed.data["error_code"] == "NODE_FAILED" and failed.data["recoverable"] is True
            assert failed.data["message"] == "model overloaded"
        # Disconnected while the run goes on.
        await fire_retry(quipu, "acme", ex, "work", 1)
        await post(quipu, f"{base}/telemetry", {"type": "thought", "node_id": "work", "text": "try again"})

        # Reconnect: the log fills the gap, then NATS carries on; no gaps, no duplicates.
        async with sse(http, f"{base}/events", {**h, "Last-Event-ID": str(failed.id)}) as second:
            retried = await second.next()
            assert (retried.event, retried.data["kind"], retried.data["attempt"]) == (
                "progress",
                "execution.node_scheduled",
                2,
            )
            thought = await second.next()
            assert thought.data["log"] == {"event": "thought", "node_id": "work", "text": "try again", "metadata": {}}
            assert await live_consumers(nats_client, subjects) >= 1  # live messages come from NATS

            await post(quipu, f"{base}/nodes/work/complete", {"output": {"draft": "d1"}})
            hitp = await second.until(lambda m: m.event == "hitp_required")
            pending = (await quipu.client.get(base, headers=h)).json()["pending_approvals"]
            assert hitp.data["approval_id"] == pending[0]["approval_id"] == hitp.id
            assert hitp.data["node_id"] == "review" and hitp.data["prompt"] == "Ship it?"
            assert hitp.data["timeout_seconds"] == 3600 and hitp.data["context"]["draft"] == "d1"
            await post(quipu, f"/api/v1/approvals/{hitp.id}/respond", {"action": "approve", "feedback": "ok"})
            done = await second.until(lambda m: m.event == "completed")
            assert await asyncio.wait_for(second.messages.get(), WAIT) is None  # the stream ended after it
        assert done.data["status"] == "SUCCEEDED" and done.data["output"]["draft"] == "d1"
        assert done.data["output"]["outputs"]["review"]["approved"] is True and done.data["duration_seconds"] > 0

        streamed = first.seen + second.seen
        log = log_of(database_url, ex)
        ids = [i for i, _ in log]
        assert [m.id for m in streamed] == ids[ids.index(str(opened.id)) :]
        assert [m.event for m in streamed] == [
            "progress",  # work scheduled
            "progress",  # work started
            "glass_box",
            "error",
            "progress",  # work scheduled again (attempt 2)
            "glass_box",
            "progress",  # work completed
            "hitp_required",
            "progress",  # approval answered
            "progress",  # review completed
            "progress",  # end scheduled
            "progress",  # end completed
            "completed",
        ]
        assert all(m.data["event_id"] == m.id for m in streamed)
        assert [m.data["progress_percent"] for m in streamed if m.data.get("kind") == "execution.node_completed"] == [
            50.0,
            75.0,
            100.0,
        ]

        # After the end: resuming from the middle gives exactly the rest and ends; from the
        # start gives everything; a new live subscriber gets the outcome and the stream ends.
        rest = await read_all(http, f"{base}/events?last_event_id={llm.id}", h)
        assert [m.id for m in rest] == [m.id for m in streamed[3:]]
        everything = await read_all(http, f"{base}/events?from_start=true", h)
        assert [m.id for m in everything] == ids and everything[0].data["kind"] == "execution.started"
        assert everything[-len(streamed) :] == streamed
        outcome = await read_all(http, f"{base}/events", h)
        assert [(m.event, m.id) for m in outcome] == [("completed", done.id)]
        assert await read_all(http, f"{base}/events", {**h, "Last-Event-ID": str(done.id)}) == []
    await all_released(quipu, nats_client, subjects)  # also the stream the client dropped


async def test_sse_failed_and_cancelled_runs_and_refusals(quipu: Running, database_url: str) -> None:
    h = quipu.auth()
    ex = await start_run(quipu, SHORT)
    other = await start_run(quipu, SHORT)
    base = f"/api/v1/executions/{ex}"
    async with serving(create_app(quipu.ctx)) as url, httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
        for path, headers, status in [
            (f"/api/v1/executions/{uuid4()}/events", h, 404),
            (f"{base}/events", quipu.auth("beta"), 404),  # another tenant's execution
            (f"{base}/events", {}, 401),
            (f"{base}/events?last_event_id={uuid4()}", h, 422),
            (f"{base}/events", {**h, "Last-Event-ID": log_of(database_url, other)[0][0]}, 422),  # not this run's
            (f"{base}/events?last_event_id=not-a-uuid", h, 422),
        ]:
            r = await http.get(path, headers=headers)
            assert r.status_code == status, (path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            if status == 422:
                assert r.json()["errors"][0]["field"] == "last_event_id"

        async with sse(http, f"{base}/events", quipu.auth("acme-reader")) as stream:  # read scope is enough
            assert (await stream.next()).data["node_id"] == "a"
            await post(quipu, f"{base}/nodes/a/fail", {"error": "bad input"})
            failed = await stream.next()
            assert failed.event == "error" and failed.data["recoverable"] is False
            done = await stream.next()
            assert done.event == "completed" and done.data["status"] == "FAILED"
            assert done.data["error"] == "bad input" and done.data["output"] == {"n": 1, "outputs": {"start": {}}}
            assert await asyncio.wait_for(stream.messages.get(), WAIT) is None

        await post(quipu, f"/api/v1/executions/{other}/cancel", {"reason": "test"})
        cancelled = await read_all(http, f"/api/v1/executions/{other}/events?from_start=true", h)
        assert [m.id for m in cancelled] == [i for i, _ in log_of(database_url, other)]
        assert cancelled[-1].event == "completed" and cancelled[-1].data["status"] == "CANCELLED"


async def test_sse_without_nats_polls_the_log(quipu: Running) -> None:
    from dataclasses import replace

    ex = await start_run(quipu, SHORT)
    app = create_app(replace(quipu.ctx, live=None))
    async with (
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT) as http,
        sse(http, f"/api/v1/executions/{ex}/events", quipu.auth()) as stream,
    ):
        assert (await stream.next()).data["node_id"] == "a"
        await post(quipu, f"/api/v1/executions/{ex}/nodes/a/complete", {"output": {"x": 2}})
        done = await stream.until(lambda m: m.event == "completed")
        assert done.data["output"] == {"n": 1, "x": 2, "outputs": done.data["output"]["outputs"]}
        assert done.data["status"] == "SUCCEEDED"


# -- WebSocket ------------------------------------------------------------------------------------
class Socket:
    """A WebSocket client speaking ASGI to the app on this loop."""

    def __init__(self, app: Litestar, query: str = "", headers: dict[str, str] | None = None) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": "/api/v1/ws",
            "raw_path": b"/api/v1/ws",
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 50000),
            "server": ("quipu", 80),
            "subprotocols": [],
        }
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(app(scope, self.to_app.get, self.from_app.put))  # type: ignore[arg-type]

    async def handshake(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.from_app.get(), WAIT)

    async def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        await self.to_app.put({"type": "websocket.receive", "text": text})

    async def receive(self) -> dict[str, Any]:
        event = await asyncio.wait_for(self.from_app.get(), WAIT)
        assert event["type"] == "websocket.send", event
        return json.loads(event["text"])  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, WAIT)


async def test_websocket_refuses_missing_and_unknown_keys(quipu: Running) -> None:
    app = create_app(quipu.ctx)
    for query, headers in [("", {}), ("token=qk_nope", {}), ("", {"Authorization": "Bearer qk_nope"})]:
        ws = Socket(app, query, headers)
        refused = await ws.handshake()
        assert refused["type"] == "websocket.close" and refused["code"] == 4401
        await asyncio.wait_for(ws.task, WAIT)


async def test_websocket_subscriptions(quipu: Running, database_url: str, nats_client: Any, subjects: Subjects) -> None:
    app = create_app(quipu.ctx)
    x = await start_run(quipu, SHORT)
    y = await start_run(quipu, SHORT)
    z = await start_run(quipu, SHORT)
    theirs = await start_run(quipu, SHORT, tenant="beta")
    ws = Socket(app, f"token={quipu.keys['acme-reader']}")
    assert (await ws.handshake())["type"] == "websocket.accept"
    hello = await ws.receive()
    assert hello["type"] == "connected" and UUID(hello["connection_id"])

    await ws.send({"action": "ping"})
    assert await ws.receive() == {"type": "pong"}
    for bad in [
        "not json",
        "[1]",
        {"action": "dance"},
        {"action": "subscribe"},
        {"action": "subscribe", "execution_id": "x"},
    ]:
        await ws.send(bad)
        error = await ws.receive()
        assert error["type"] == "error" and error["error_code"] == "BAD_REQUEST" and error["message"], bad
    for missing in [theirs, str(uuid4())]:
        await ws.send({"action": "subscribe", "execution_id": missing})
        assert await ws.receive() == {
            "type": "error",
            "error_code": "NOT_FOUND",
            "message": f"execution {missing} not found",
            "execution_id": missing,
        }
    await ws.send({"action": "subscribe", "execution_id": x, "last_event_id": str(uuid4())})
    assert (await ws.receive())["error_code"] == "BAD_REQUEST"
    await ws.send({"action": "ping"})  # still open after all of that
    assert await ws.receive() == {"type": "pong"}

    # Two subscriptions on one socket; every message names its execution and event.
    await ws.send({"action": "subscribe", "execution_id": x})
    assert await ws.receive() == {"type": "subscribed", "execution_id": x}
    first_x = await ws.receive()
    assert (first_x["type"], first_x["execution_id"], first_x["node_id"]) == ("progress", x, "a")
    await ws.send({"action": "subscribe", "execution_id": y, "from_start": True})
    assert await ws.receive() == {"type": "subscribed", "execution_id": y}
    replayed = [await ws.receive() for _ in range(4)]  # started, start scheduled + completed, a scheduled
    assert [m["execution_id"] for m in replayed] == [y] * 4
    assert [m["event_id"] for m in replayed] == [i for i, _ in log_of(database_url, y)]
    await post(quipu, f"/api/v1/executions/{x}/telemetry", {"type": "tool_call", "node_id": "a", "tool": "grep"})
    tool = await ws.receive()
    assert tool["type"] == "glass_box" and tool["execution_id"] == x and tool["log"]["tool"] == "grep"

    # After unsubscribing, nothing more of x arrives; y goes on to its end.
    await ws.send({"action": "unsubscribe", "execution_id": x})
    assert await ws.receive() == {"type": "unsubscribed", "execution_id": x}
    await post(quipu, f"/api/v1/executions/{x}/nodes/a/complete", {"output": {}})
    await post(quipu, f"/api/v1/executions/{y}/nodes/a/complete", {"output": {"y": True}})
    rest_y: list[dict[str, Any]] = []
    while not rest_y or rest_y[-1]["type"] != "completed":
        rest_y.append(await ws.receive())
    assert {m["execution_id"] for m in rest_y} == {y}
    assert rest_y[-1]["status"] == "SUCCEEDED" and rest_y[-1]["output"]["y"] is True
    assert [m["event_id"] for m in replayed + rest_y] == [i for i, _ in log_of(database_url, y)]

    # Resuming a subscription from a known event gives exactly what followed it.
    await post(quipu, f"/api/v1/executions/{z}/nodes/a/fail", {"error": "no"})
    z_log = [i for i, _ in log_of(database_url, z)]
    await ws.send({"action": "subscribe", "execution_id": z, "last_event_id": z_log[1]})
    assert await ws.receive() == {"type": "subscribed", "execution_id": z}
    rest_z = [await ws.receive() for _ in z_log[2:]]
    assert [m["event_id"] for m in rest_z] == z_log[2:]
    assert [m["type"] for m in rest_z][-2:] == ["error", "completed"] and rest_z[-1]["status"] == "FAILED"
    await ws.send({"action": "ping"})
    assert await ws.receive() == {"type": "pong"}  # nothing else was queued in between
    await ws.send({"action": "subscribe", "execution_id": x})  # a live start on an ended run: its outcome
    assert await ws.receive() == {"type": "subscribed", "execution_id": x}
    assert (await ws.receive())["type"] == "completed"
    w = await start_run(quipu, SHORT)
    await ws.send({"action": "subscribe", "execution_id": w})  # still subscribed when the client leaves
    assert await ws.receive() == {"type": "subscribed", "execution_id": w}
    assert (await ws.receive())["type"] == "progress"
    assert await live_consumers(nats_client, subjects) >= 1  # (ended ones linger a few seconds)
    await ws.close()
    await all_released(quipu, nats_client, subjects)


async def test_sse_resume_and_live_start_during_a_burst(quipu: Running, database_url: str) -> None:
    ex = await start_run(quipu, SHORT)
    base = f"/api/v1/executions/{ex}"
    for i in range(3):  # before anyone listens: a live subscriber does not get these
        await post(quipu, f"{base}/telemetry", {"type": "thought", "node_id": "a", "text": f"old {i}"})

    async def burst() -> None:
        for i in range(40):
            await post(quipu, f"{base}/telemetry", {"type": "thought", "node_id": "a", "text": f"new {i}"})

    async def some_of_the_burst_recorded() -> bool:
        return sum(k == "telemetry.thought" for _, k in await asyncio.to_thread(log_of, database_url, ex)) >= 10

    async with serving(create_app(quipu.ctx)) as url, httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
        writer = asyncio.create_task(burst())
        await quipu.wait_for(some_of_the_burst_recorded)
        mid = log_of(database_url, ex)[-1][0]
        async with (
            sse(http, f"{base}/events", {**quipu.auth(), "Last-Event-ID": mid}) as resumed,
            sse(http, f"{base}/events", quipu.auth()) as live,
        ):
            await asyncio.wait_for(writer, WAIT)
            await post(quipu, f"{base}/nodes/a/complete", {"output": {}})
            await resumed.until(lambda m: m.event == "completed")
            await live.until(lambda m: m.event == "completed")
    log = log_of(database_url, ex)
    ids = [i for i, _ in log]
    assert [m.id for m in resumed.seen] == ids[ids.index(mid) + 1 :]
    assert log[3][1] == "execution.node_scheduled"  # a's: the latest execution event when live began
    assert live.seen[0].id == log[3][0] and live.seen[0].data["node_id"] == "a"
    tail = [m.id for m in live.seen[1:]]
    assert tail == ids[len(ids) - len(tail) :] and len(set(tail)) == len(tail)
    assert not any(m.data.get("log", {}).get("text", "").startswith("old") for m in live.seen)


async def test_a_quiet_feed_keeps_alive_and_releases_its_consumer(
    quipu: Running, nats_client: Any, subjects: Subjects
) -> None:
    from api.live import ExecutionFeed, find_target

    ex = await start_run(quipu, SHORT)
    async with quipu.ctx.pool.connection() as conn:
        target = await find_target(conn, "acme", UUID(ex), None)
    feed = ExecutionFeed(quipu.ctx, target, keepalive=0.2)
    messages = feed.messages()
    first = await asyncio.wait_for(anext(messages), WAIT)
    assert first is not None and first.type == "progress"
    assert await asyncio.wait_for(anext(messages), WAIT) is None  # nothing happened: a keep-alive tick
    busy = await start_run(quipu, SHORT)  # another run of the tenant keeps NATS busy meanwhile
    stop = asyncio.Event()

    async def chatter() -> None:
        while not stop.is_set():
            await post(quipu, f"/api/v1/executions/{busy}/telemetry", {"type": "thought", "text": "busy"})

    chatting = asyncio.create_task(chatter())
    try:
        ticks = [await asyncio.wait_for(anext(messages), WAIT) for _ in range(3)]
    finally:
        stop.set()
        await asyncio.wait_for(chatting, WAIT)
    assert ticks == [None, None, None]
    assert await live_consumers(nats_client, subjects) == 1
    await messages.aclose()
    await all_released(quipu, nats_client, subjects)
