"""Durable timers (node timeouts, retries, run timeouts) fired by the timer runner, and
checkpoints over HTTP, against real Postgres and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest
from psycopg.rows import dict_row

from bus.subjects import Subjects
from bus.timers import TimerRunner
from domain.execution import Execution
from domain.hashing import state_hash
from domain.timers import TimerKind
from quipu.rebuild import rebuild_projection
from tests.integration.conftest import Running, running_quipu

Fire = Callable[[str, UUID, TimerKind, str | None, int], bool]

FLAKY = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "work", "agent_type": "llm", "timeout": 0.5, "max_retries": 1, "config": {"retry_backoff": 0.2}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "work"}, {"from": "work", "to": "end"}],
}
TWO_STEPS = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "a", "agent_type": "llm"},
        {"id": "b", "agent_type": "llm"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "end"}],
}


@contextlib.asynccontextmanager
async def timer_runner(database_url: str, fire: Fire, key: str) -> AsyncIterator[tuple[TimerRunner, asyncio.Event]]:
    stop = asyncio.Event()
    runner = TimerRunner(database_url, fire, leader_key=key)
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner, stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class Recorder:
    """Delegates to the real ``fire_timer`` and remembers what recorded something."""

    def __init__(self, q: Running) -> None:
        self._q = q
        self.fired: list[tuple[TimerKind, str | None, int]] = []
        self._lock = threading.Lock()

    def __call__(self, tenant: str, execution_id: UUID, kind: TimerKind, node: str | None, attempt: int) -> bool:
        fired = self._q.ctx.executions.fire_timer(tenant, execution_id, kind, node, attempt)
        if fired:
            with self._lock:
                self.fired.append((kind, node, attempt))
        return fired


@pytest.fixture
async def quipu(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    """Without the built-in timer runner: these tests run their own, to watch it fire."""
    async with running_quipu(database_url, nats_url, subjects, timers=False) as running:
        yield running


async def _start(q: Running, definition: dict[str, Any], **body: Any) -> str:
    c, h = q.client, q.auth()
    r = await c.post("/api/v1/workflows", json={"name": "w", "definition": definition}, headers=h)
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/executions", json={"workflow_id": r.json()["id"], **body}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _execution(q: Running, execution_id: str) -> dict[str, Any]:
    r = await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _events(q: Running, execution_id: str, kind: str) -> list[dict[str, Any]]:
    r = await q.client.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=q.auth())
    assert r.status_code == 200, r.text
    return [n for n in r.json()["nodes"] if n["kind"] == kind]


async def _timers(q: Running, execution_id: str) -> list[dict[str, Any]]:
    async with q.ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, node_id, attempt, due_at FROM rm_timers.timers WHERE execution_id = %s ORDER BY kind",
            (UUID(execution_id),),
        )
        return await cur.fetchall()


async def _rebuild_changes_nothing(database_url: str, name: str, rows: int) -> None:
    """A read model is a pure function of the log: a rebuild gives the same rows."""
    query = f"SELECT * FROM rm_{name}.{name} ORDER BY 1, 2, 3, 4"
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        before = conn.execute(query).fetchall()
    await rebuild_projection(database_url, name)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        after = conn.execute(query).fetchall()
    assert before == after and len(after) == rows


async def test_a_timed_out_attempt_is_retried_and_the_retry_completes(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu, FLAKY)
    base = f"/api/v1/executions/{execution_id}"
    fire = Recorder(quipu)
    retried = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fire_until_retried(tenant: str, ex: UUID, kind: TimerKind, node: str | None, attempt: int) -> bool:
        fired = fire(tenant, ex, kind, node, attempt)
        if fired and kind is TimerKind.RETRY:
            loop.call_soon_threadsafe(retried.set)
        return fired

    async with timer_runner(database_url, fire_until_retried, "retry") as (_, stop):
        await asyncio.wait_for(retried.wait(), 15)
        stop.set()  # attempt 2 is left to the worker: no runner times it out
    assert fire.fired == [(TimerKind.NODE_TIMEOUT, "work", 1), (TimerKind.RETRY, "work", 1)]

    ex = await _execution(quipu, execution_id)
    assert ex["attempts"]["work"] == 2 and ex["nodes"]["work"] == "scheduled" and ex["status"] == "running"
    [failed] = await _events(quipu, execution_id, "execution.node_failed")
    assert failed["payload"]["timed_out"] is True and failed["payload"]["attempt"] == 1
    assert failed["payload"]["retry_at"] is not None and failed["payload"]["error"] == "timed out after 0.5 s"
    scheduled = await _events(quipu, execution_id, "execution.node_scheduled")
    retry = next(e for e in scheduled if e["payload"]["node_id"] == "work" and e["payload"]["attempt"] == 2)
    assert failed["event_id"] in retry["parent_ids"]  # the retry names the failure it follows

    # The timers read model now holds attempt 2's timeout and no retry.
    async def attempt_two_timer() -> bool:
        rows = await _timers(quipu, execution_id)
        return [(r["kind"], r["node_id"], r["attempt"]) for r in rows] == [("node_timeout", "work", 2)]

    await quipu.wait_for(attempt_two_timer)

    late = await c.post(f"{base}/nodes/work/complete", json={"output": {"v": 1}, "attempt": 1}, headers=h)
    assert late.status_code == 409 and "attempt 1" in late.json()["detail"]
    r = await c.post(f"{base}/nodes/work/complete", json={"output": {"v": 2}, "attempt": 2}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["state"]["v"] == 2

    async def listed_and_no_timers() -> bool:
        page = (await c.get("/api/v1/executions?status=succeeded", headers=h)).json()
        done = [i for i in page["items"] if i["id"] == execution_id]
        return bool(done and done[0]["progress"] == 100.0 and not await _timers(quipu, execution_id))

    await quipu.wait_for(listed_and_no_timers)


async def test_a_new_runner_fires_an_overdue_timeout_exactly_once(quipu: Running, database_url: str) -> None:
    execution_id = await _start(quipu, FLAKY)

    # No runner yet: the deadline passes while nothing watches the clock.
    async def overdue() -> bool:
        rows = await _timers(quipu, execution_id)
        return bool(rows) and rows[0]["kind"] == "node_timeout" and rows[0]["due_at"] < datetime.now(UTC)

    await quipu.wait_for(overdue)
    assert (await _execution(quipu, execution_id))["status"] == "running"
    await _rebuild_changes_nothing(database_url, "timers", 1)

    # Two runners under one leader key (one stands by) and a third under another key, all
    # firing the same timers: the aggregate records each consequence once.
    fire = Recorder(quipu)
    async with (
        timer_runner(database_url, fire, "durable") as (first, _),
        timer_runner(database_url, fire, "durable") as (standby, _),
        timer_runner(database_url, fire, "other") as (other, _),
    ):

        async def failed() -> bool:
            return bool((await _execution(quipu, execution_id))["status"] == "failed")

        await quipu.wait_for(failed)
        assert first.fired == 0 or standby.fired == 0  # one leader per key

    failures = await _events(quipu, execution_id, "execution.node_failed")
    assert sorted((e["payload"]["node_id"], e["payload"]["attempt"]) for e in failures) == [("work", 1), ("work", 2)]
    assert all(e["payload"]["timed_out"] for e in failures)
    assert failures[0]["payload"]["retry_at"] is not None and failures[1]["payload"].get("retry_at") is None
    assert sorted(fire.fired) == [
        (TimerKind.NODE_TIMEOUT, "work", 1),
        (TimerKind.NODE_TIMEOUT, "work", 2),
        (TimerKind.RETRY, "work", 1),
    ]
    assert first.fired + standby.fired + other.fired == 3
    assert len(await _events(quipu, execution_id, "execution.failed")) == 1

    async def cleared() -> bool:
        return not await _timers(quipu, execution_id)

    await quipu.wait_for(cleared)


async def test_an_execution_timeout_ends_the_run_as_timed_out(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu, TWO_STEPS, timeout_seconds=0.5)
    async with timer_runner(database_url, Recorder(quipu), "run-timeout"):

        async def timed_out() -> bool:
            return bool((await _execution(quipu, execution_id))["status"] == "timed_out")

        await quipu.wait_for(timed_out)
    ex = await _execution(quipu, execution_id)
    assert ex["error"] == "the execution timed out" and ex["deadline"] is not None
    r = await c.post(f"/api/v1/executions/{execution_id}/nodes/a/complete", json={}, headers=h)
    assert r.status_code == 409  # a worker still on node a learns the run is over

    async def listed() -> bool:
        items = (await c.get("/api/v1/executions?status=timed_out", headers=h)).json()["items"]
        return [i["id"] for i in items] == [execution_id] and not await _timers(quipu, execution_id)

    await quipu.wait_for(listed)


async def test_checkpoints_after_each_node_and_on_demand(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id = await _start(quipu, TWO_STEPS, input={"q": "hello"})
    base = f"/api/v1/executions/{execution_id}"
    states = []
    for node, output in (("a", {"x": 1}), ("b", {"y": [1, 2]})):
        r = await c.post(f"{base}/nodes/{node}/complete", json={"output": output}, headers=h)
        assert r.status_code == 200, r.text
        states.append(r.json()["state"])
    assert states[1]["y"] == [1, 2] and states[0] != states[1]

    assert (await c.post(f"{base}/checkpoints", json={"label": "x" * 201}, headers=h)).status_code == 422
    assert (
        await c.post(f"{base}/checkpoints", json={"label": "l"}, headers=quipu.auth("acme-reader"))
    ).status_code == 403
    assert (await c.post(f"{base}/checkpoints", json={"label": "l"}, headers=quipu.auth("beta"))).status_code == 404
    r = await c.post(f"{base}/checkpoints", json={"label": "after review"}, headers=h)
    assert r.status_code == 201, r.text
    manual = r.json()
    assert r.headers["location"] == f"{base}/checkpoints/{manual['checkpoint_id']}"
    assert manual["label"] == "after review" and manual["state"] == states[1]
    ex = await _execution(quipu, execution_id)
    assert manual["checkpoint_id"] == ex["last_event_id"]  # the checkpoint is that event

    async def three() -> bool:
        return bool((await c.get(f"{base}/checkpoints", headers=h)).json()["total"] == 3)

    await quipu.wait_for(three)
    newest = (await c.get(f"{base}/checkpoints?limit=1", headers=h)).json()
    assert newest["total"] == 3 and len(newest["items"]) == 1
    assert newest["items"][0]["checkpoint_id"] == manual["checkpoint_id"] and newest["items"][0]["sequence"] == 3
    first_page = (await c.get(f"{base}/checkpoints?order=asc&limit=2", headers=h)).json()
    second_page = (await c.get(f"{base}/checkpoints?order=asc&limit=2&offset=2", headers=h)).json()
    items = first_page["items"] + second_page["items"]
    assert [i["sequence"] for i in items] == [1, 2, 3] and len(second_page["items"]) == 1
    assert [(i["node_id"], i["label"]) for i in items] == [("a", None), ("b", None), (None, "after review")]
    assert all("state" not in i for i in items)

    # Each checkpoint holds the state the execution had right after its event (the end
    # node's output is merged later, so b's checkpoint lacks it).
    taken = await _events(quipu, execution_id, "execution.checkpoint_taken")
    assert [e["event_id"] for e in taken] == [i["checkpoint_id"] for i in items]
    for item, event in zip(items, taken, strict=True):
        then = await asyncio.to_thread(
            quipu.ctx.store.load, Execution, UUID(execution_id), "acme", version=event["version"]
        )
        r = await c.get(f"{base}/checkpoints/{item['checkpoint_id']}", headers=h)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["state"] == then.state and got["state_hash"] == state_hash(then.state)
        size = len(msgspec.json.encode(then.state, order="sorted"))
        assert got["state_size_bytes"] == size == item["state_size_bytes"] and got["sequence"] == item["sequence"]
    assert "end" not in taken[1]["payload"]["state"]["outputs"] and "end" in manual["state"]["outputs"]
    assert taken[0]["payload"]["state"] == states[0] and manual["state"] == states[1]

    some = items[0]["checkpoint_id"]
    other_tenant = await c.get(f"{base}/checkpoints/{some}", headers=quipu.auth("beta"))
    assert other_tenant.status_code == 404 and other_tenant.headers["content-type"].startswith("application/problem")
    assert (await c.get(f"{base}/checkpoints", headers=quipu.auth("beta"))).status_code == 404
    unknown = await c.get(f"{base}/checkpoints/{ex['id']}", headers=h)
    assert unknown.status_code == 404
    assert (await c.get(f"/api/v1/executions/{some}/checkpoints", headers=h)).status_code == 404
    assert (await c.get(f"{base}/checkpoints?order=sideways", headers=h)).status_code in (400, 422)

    await _rebuild_changes_nothing(database_url, "checkpoints", 3)


async def test_the_list_counts_decisions_and_keeps_waiting_for_an_approval_across_a_pause(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "pick", "type": "decision", "config": {"external": True}},
            {"id": "ok", "type": "approval"},
            {"id": "other", "agent_type": "llm"},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "pick"},
            {"from": "pick", "to": "ok"},
            {"from": "pick", "to": "other", "condition": "urgent == true"},
            {"from": "ok", "to": "end"},
            {"from": "other", "to": "end"},
        ],
    }
    execution_id = await _start(quipu, definition)
    base = f"/api/v1/executions/{execution_id}"
    r = await c.post(f"{base}/decisions/pick", json={"targets": ["ok"]}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "waiting_for_approval"
    assert (await c.post(f"{base}/pause", headers=h)).json()["status"] == "paused"

    async def listed(status: str) -> bool:
        items = (await c.get("/api/v1/executions", headers=h)).json()["items"]
        return [(i["status"], i["progress"], i["current_nodes"]) for i in items] == [(status, 60.0, ["ok"])]

    await quipu.wait_for(lambda: listed("paused"))
    assert (await c.post(f"{base}/resume", headers=h)).json()["status"] == "waiting_for_approval"
    await quipu.wait_for(lambda: listed("waiting_for_approval"))  # the approval is still pending
