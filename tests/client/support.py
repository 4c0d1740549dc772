"""Helpers of the client's tests: waiting for read models, counting requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import httpx

from quipu_client import AsyncQuipuClient
from quipu_client.models import ExecutionOut, ExecutionStart, Heartbeat, NodeCompletion

T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0) -> T:
    """``read()`` again until ``ok`` holds: read models follow the log a moment later."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in time; last value: {value!r}")
        await asyncio.sleep(0.05)


class Recorder:
    """The requests an httpx client sent and the statuses it got, in order."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def on_response(self, response: httpx.Response) -> None:
        self.statuses.append(response.status_code)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=30, event_hooks={"request": [self.on_request], "response": [self.on_response]})


FLOW = {
    "nodes": [{"id": "fetch", "agent_type": "http_reports"}, {"id": "publish", "type": "approval"}],
    "edges": [{"from": "fetch", "to": "publish"}],
}


async def wait_status(quipu: AsyncQuipuClient, execution_id: UUID, status: str) -> ExecutionOut:
    return await eventually(lambda: quipu.executions.get(execution_id), lambda e: e.status == status)


async def finished_run(quipu: AsyncQuipuClient) -> ExecutionOut:
    """fetch done over HTTP (as a worker without NATS would), then the approval answered."""
    workflow = await quipu.workflows.create({"name": "reported", "definition": FLOW})
    run = await quipu.executions.start(ExecutionStart(workflow_id=workflow.id, input={"topic": "q3"}))
    beat = await quipu.executions.heartbeat_node(run.id, "fetch", Heartbeat(attempt=1, worker="test"))
    assert (beat.node_status, beat.attempt) == ("running", 1)
    await quipu.executions.record_telemetry(
        run.id, {"type": "llm_call", "node_id": "fetch", "model": "m", "input_tokens": 10, "output_tokens": 5}
    )
    await quipu.executions.complete_node(run.id, "fetch", NodeCompletion(attempt=1, output={"pages": 3}))
    waiting = await wait_status(quipu, run.id, "waiting_for_approval")
    approvals = await quipu.approvals.list(run.id)
    assert [a.node_id for a in approvals.items] == ["publish"] == [p.node_id for p in waiting.pending_approvals]
    answered = await quipu.approvals.respond(
        approvals.items[0].approval_id,
        {"action": "approve", "state_changes": {"channel": "blog"}, "state_hash": approvals.current_state_hash},
    )
    assert answered.status == "succeeded" and answered.state["channel"] == "blog"
    return answered
