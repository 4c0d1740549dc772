"""Tasks over NATS: dispatch from node_scheduled events, the worker helper, reports over NATS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from nats.js.api import ConsumerConfig

from bus.runtime import connect_nats
from quipu_client.wire import HitpRequired, Report, ReportReply, Task
from quipu_client.worker import Worker, serve_workers, worker
from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "left", "agent_type": "echo"},
        {"id": "right", "agent_type": "flaky", "max_retries": 1, "config": {"retry_backoff": 0.05}},
        {"id": "join", "agent_type": "echo"},
        {"id": "sign", "type": "approval", "config": {"prompt": "ship it?"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "left"},
        {"from": "start", "to": "right"},
        {"from": "left", "to": "join"},
        {"from": "right", "to": "join"},
        {"from": "join", "to": "sign"},
        {"from": "sign", "to": "end"},
    ],
}


@contextlib.asynccontextmanager
async def workers(q: Running, *ws: Worker, tenant: str = "acme") -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_workers(
            ws,
            nats_url=q.wiring.nats_url,
            tenant=tenant,
            prefix=q.wiring.subjects.prefix,
            stop=stop,
            heartbeat_seconds=0.2,
            grace_seconds=2,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _start(q: Running, flow: dict[str, Any] = FLOW, tenant: str = "acme", **extra: Any) -> str:
    h = q.auth(tenant)
    wf = (await q.client.post("/api/v1/workflows", json={"name": "w", "definition": flow}, headers=h)).json()
    r = await q.client.post("/api/v1/executions", json={"workflow_id": wf["id"], **extra}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _status(q: Running, execution_id: str, *wanted: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        found.update((await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth())).json())
        return found["status"] in wanted

    await q.wait_for(reached, timeout=20)
    return found


async def test_workers_run_a_flow_with_fan_out_retry_and_an_approval_notice(quipu: Running) -> None:
    seen: list[tuple[str, int, dict[str, Any]]] = []

    @worker("echo", concurrency=2)
    async def echo(task: Task) -> dict[str, Any]:
        seen.append((task.node_id, task.attempt, dict(task.input)))
        return {task.node_id: f"done by attempt {task.attempt}"}

    @worker("flaky")
    async def flaky(task: Task) -> dict[str, Any]:
        seen.append((task.node_id, task.attempt, dict(task.input)))
        if task.attempt == 1:
            raise RuntimeError("first attempt always fails")
        return {"right": "recovered"}

    nc = await connect_nats(quipu.wiring.nats_url)
    js = nc.jetstream()
    async with workers(quipu, echo, flaky):
        execution_id = await _start(quipu, input={"topic": "t"})
        ex = await _status(quipu, execution_id, "waiting_for_approval")
    assert ex["attempts"] == {"start": 1, "left": 1, "right": 2, "join": 1, "sign": 1}
    assert ex["state"]["left"] == "done by attempt 1" and ex["state"]["right"] == "recovered"
    first_right = next(i for n, a, i in seen if n == "right" and a == 1)
    assert first_right["topic"] == "t" and any(n == "right" and a == 2 for n, a, _ in seen)
    join_input = next(i for n, _, i in seen if n == "join")
    assert join_input["right"] == "recovered" and join_input["left"] == "done by attempt 1"  # state when scheduled

    # The approval was announced on the notices stream, with the state hash it shows.
    sub = await js.pull_subscribe(
        quipu.wiring.subjects.notice("acme", "hitp_required"),
        stream=quipu.wiring.subjects.notices_stream,
        config=ConsumerConfig(),
    )
    notice = msgspec.json.decode((await sub.fetch(1, timeout=5))[0].data, type=HitpRequired)
    approval = ex["pending_approvals"][0]["approval_id"]
    assert str(notice.approval_id) == approval and notice.prompt == "ship it?" and notice.context == ex["state"]
    history = (await quipu.client.get(f"/api/v1/executions/{execution_id}/approvals", headers=quipu.auth())).json()
    assert history["items"][0]["state_hash"] == notice.state_hash
    r = await quipu.client.post(
        f"/api/v1/approvals/{approval}/respond",
        json={"action": "approve", "state_hash": notice.state_hash, "state_changes": {"reviewed": True}},
        headers=quipu.auth(),
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded" and r.json()["state"]["reviewed"] is True

    # Each worker's first heartbeat recorded that its attempt started, under the task's event.
    dag = (await quipu.client.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=quipu.auth())).json()
    started = [n for n in dag["nodes"] if n["kind"] == "execution.node_started"]
    assert sorted((n["payload"]["node_id"], n["payload"]["attempt"]) for n in started) == [
        ("join", 1),
        ("left", 1),
        ("right", 1),
        ("right", 2),
    ]
    await nc.close()


async def test_reports_over_nats_mirror_the_http_statuses(quipu: Running) -> None:
    flow = {"nodes": [{"id": "only", "agent_type": "none"}]}
    execution_id = await _start(quipu, flow)
    nc = await connect_nats(quipu.wiring.nats_url)
    subject = quipu.wiring.subjects.reports("acme")

    async def send(tenant_subject: str, **fields: Any) -> ReportReply:
        body = msgspec.json.encode(Report(execution_id=execution_id, node_id="only", **fields))  # type: ignore[arg-type]
        reply = await nc.request(tenant_subject, body, timeout=5)
        return msgspec.json.decode(reply.data, type=ReportReply)

    assert (await send(subject, type="heartbeat", attempt=1)).node_status == "running"
    assert (await send(subject, type="complete", attempt=2)).status == 409  # not the current attempt
    assert (await send(quipu.wiring.subjects.reports("beta"), type="complete")).status == 404  # other tenant
    bad = await nc.request(subject, b'{"type": "explode"}', timeout=5)
    assert msgspec.json.decode(bad.data, type=ReportReply).status == 422
    done = await send(subject, type="complete", attempt=1, output={"x": 1})
    assert done.ok and done.execution_status == "succeeded"
    await nc.close()


async def test_a_task_for_a_cancelled_execution_is_dropped_unrun(quipu: Running) -> None:
    ran: list[str] = []

    @worker("late")
    async def late(task: Task) -> dict[str, Any]:
        ran.append(task.node_id)
        return {}

    execution_id = await _start(quipu, {"nodes": [{"id": "n", "agent_type": "late"}]})
    r = await quipu.client.post(f"/api/v1/executions/{execution_id}/cancel", headers=quipu.auth())
    assert r.status_code == 200
    nc = await connect_nats(quipu.wiring.nats_url)
    js = nc.jetstream()
    stream = quipu.wiring.subjects.tasks_stream

    async def dispatched() -> bool:
        return (await js.stream_info(stream)).state.messages >= 1

    await quipu.wait_for(dispatched)
    async with workers(quipu, late):

        async def drained() -> bool:
            return (await js.stream_info(stream)).state.messages == 0  # acked: gone from the work queue

        await quipu.wait_for(drained)
    assert ran == []
    await nc.close()
