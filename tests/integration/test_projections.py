"""Read models: exactly-once application, rebuild == incremental, dead letters, admin status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row

from bus.subjects import Subjects
from commands.log import head, read_after
from domain.aggregate import CommandContext
from domain.envelope import EventEnvelope
from domain.ids import uuid7
from domain.workflow import Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from projections.applier import apply_batch, ensure_schema, retry_dead_letters
from projections.base import Handler, Projection
from projections.workflows import WorkflowsProjection
from quipu.rebuild import rebuild_projection
from quipu.wiring import build_store
from tests.integration.conftest import Running, running_quipu

DEFINITION = {
    "nodes": [{"id": "fetch", "agent_type": "http"}, {"id": "sum"}],
    "edges": [{"from": "fetch", "to": "sum"}],
}


def _append_workflows(database_url: str, names: list[str]) -> None:
    store = build_store(database_url, pool_size=1)
    try:
        ctx = CommandContext("acme", "test")
        store.save_all(
            *[
                Workflow.create(
                    ctx,
                    workflow_id=uuid7(),
                    name=n,
                    description="",
                    definition=WorkflowDefinition(nodes=[Node(id="a")]),
                    metadata={},
                )
                for n in names
            ]
        )
    finally:
        store.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection[DictRow]]:
    await asyncio.to_thread(build_store(database_url, pool_size=1).close)  # write-side tables
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as c:
        yield c


async def _one(conn: AsyncConnection[DictRow], sql: str, *params: Any) -> Any:
    cur = await conn.execute(sql, params or None)  # type: ignore[arg-type]
    row = await cur.fetchone()
    assert row is not None
    return next(iter(row.values()))


async def test_redelivered_batch_changes_nothing(database_url: str, conn: AsyncConnection[DictRow]) -> None:
    await asyncio.to_thread(_append_workflows, database_url, [f"wf-{i}" for i in range(6)])
    proj = WorkflowsProjection()
    await ensure_schema(conn, proj)
    envelopes = await read_after(conn, 0, 100)
    assert len(envelopes) == 6
    assert await apply_batch(conn, proj, envelopes[:4]) == 4
    # A redelivery of everything (the first four again plus two new ones) applies only the new.
    assert await apply_batch(conn, proj, envelopes) == 2
    snapshot = [
        dict(r)
        for r in await (await conn.execute("SELECT * FROM rm_workflows.workflows ORDER BY workflow_id")).fetchall()
    ]
    tracking = dict(
        await (await conn.execute("SELECT notification_id, applied FROM rm_workflows.tracking")).fetchone() or {}
    )
    assert tracking == {"notification_id": envelopes[-1].notification_id, "applied": 6}
    assert len(snapshot) == 6
    # The exact same batch again: nothing applied, nothing changed.
    assert await apply_batch(conn, proj, envelopes) == 0
    assert await apply_batch(conn, proj, envelopes[2:3]) == 0
    again = [
        dict(r)
        for r in await (await conn.execute("SELECT * FROM rm_workflows.workflows ORDER BY workflow_id")).fetchall()
    ]
    assert again == snapshot
    assert (
        dict(await (await conn.execute("SELECT notification_id, applied FROM rm_workflows.tracking")).fetchone() or {})
        == tracking
    )


async def _caught_up(quipu: Running) -> bool:
    r = await quipu.client.get("/api/v1/admin/projections", headers=quipu.auth())
    assert r.status_code == 200, r.text
    wf = next(p for p in r.json() if p["name"] == "workflows")
    return bool(wf["lag_events"] == 0 and wf["position"] == wf["head"] and wf["head"] > 0)


async def test_rebuild_equals_incremental(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    ids = []
    for i in range(8):
        r = await c.post(
            "/api/v1/workflows", json={"name": f"wf-{i}", "definition": DEFINITION, "metadata": {"i": i}}, headers=h
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await c.post(
        "/api/v1/workflows", json={"name": "beta-wf", "definition": DEFINITION}, headers=quipu.auth("beta")
    )
    assert r.status_code == 201
    for wid in ids[:3]:
        changed = {**DEFINITION, "nodes": [*DEFINITION["nodes"], {"id": "notify"}]}
        r = await c.put(
            f"/api/v1/workflows/{wid}",
            json={"name": "renamed", "definition": changed},
            headers={**h, "If-Match": '"1"'},
        )
        assert r.status_code == 200, r.text
    for wid in ids[2:4]:
        assert (await c.delete(f"/api/v1/workflows/{wid}", headers=h)).status_code == 204

    await quipu.wait_for(lambda: _caught_up(quipu))
    query = "SELECT * FROM rm_workflows.workflows ORDER BY tenant_id, workflow_id"
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        incremental = await (await conn.execute(query)).fetchall()
        top = await head(conn)
        assert len(incremental) == 9 and sum(r["deleted"] for r in incremental) == 2
        assert sum(r["name"] == "renamed" for r in incremental) == 3

        calls: list[tuple[int, int]] = []
        position = await rebuild_projection(database_url, "workflows", lambda done, total: calls.append((done, total)))
        assert position == top
        assert calls and calls[-1] == (top, top)
        assert all(done <= total for done, total in calls)
        rebuilt = await (await conn.execute(query)).fetchall()
        assert rebuilt == incremental
        assert await _one(conn, "SELECT notification_id FROM rm_workflows.tracking") == top
        assert await _one(conn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rm_workflows__%%'") == 0

    # The live projector keeps working on the swapped-in schema.
    r = await c.post("/api/v1/workflows", json={"name": "after-rebuild", "definition": DEFINITION}, headers=h)
    assert r.status_code == 201

    async def listed() -> bool:
        return (await c.get("/api/v1/workflows?name=after-rebuild", headers=h)).json()["total"] == 1

    await quipu.wait_for(listed)


class Flaky(Projection):
    """Test-only projection whose handler fails for workflows named 'bad' while ``broken``."""

    name: ClassVar[str] = "flaky_test"
    broken: ClassVar[bool] = True
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS seen (notification_id bigint PRIMARY KEY, name text NOT NULL)"
    ]

    @staticmethod
    async def _created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await cur.execute("INSERT INTO seen VALUES (%s, %s)", (e.notification_id, e.payload["name"]))
        if e.payload["name"] == "bad" and Flaky.broken:
            raise RuntimeError("handler exploded on purpose")  # after a write: the savepoint undoes it

    handlers: ClassVar[dict[str, Handler]] = {"workflow.created": _created}


async def test_failing_handler_is_parked_and_retried(database_url: str, conn: AsyncConnection[DictRow]) -> None:
    await asyncio.to_thread(_append_workflows, database_url, ["ok-1", "ok-2", "bad", "ok-3", "ok-4"])
    proj = Flaky()
    Flaky.broken = True
    await ensure_schema(conn, proj)
    envelopes = await read_after(conn, 0, 100)
    bad = next(e for e in envelopes if e.payload["name"] == "bad")

    assert await apply_batch(conn, proj, envelopes) == 4
    names = [
        r["name"]
        for r in await (await conn.execute("SELECT name FROM rm_flaky_test.seen ORDER BY notification_id")).fetchall()
    ]
    assert names == ["ok-1", "ok-2", "ok-3", "ok-4"]  # later events applied, bad one's write undone
    assert await _one(conn, "SELECT notification_id FROM rm_flaky_test.tracking") == envelopes[-1].notification_id
    rows = await (await conn.execute("SELECT * FROM projection_dead_letters")).fetchall()
    assert len(rows) == 1
    dead = rows[0]
    assert dead["projection"] == "flaky_test" and dead["notification_id"] == bad.notification_id
    assert dead["event_id"] == bad.event_id and dead["kind"] == "workflow.created"
    assert "handler exploded on purpose" in dead["error"] and dead["attempts"] == 1

    async def fetch(notification_id: int) -> EventEnvelope | None:
        batch = await read_after(conn, notification_id - 1, 1, upto=notification_id)
        return batch[0] if batch else None

    # Not due yet: nothing retried.
    assert await retry_dead_letters(conn, proj, fetch) == 0
    # Due but still broken: attempts go up, the row stays, backoff pushes next_retry_at out.
    await conn.execute("UPDATE projection_dead_letters SET next_retry_at = now()")
    assert await retry_dead_letters(conn, proj, fetch) == 0
    assert await _one(conn, "SELECT attempts FROM projection_dead_letters") == 2
    assert await _one(conn, "SELECT next_retry_at > now() FROM projection_dead_letters")

    Flaky.broken = False
    try:
        await conn.execute("UPDATE projection_dead_letters SET next_retry_at = now()")
        assert await retry_dead_letters(conn, proj, fetch) == 1
    finally:
        Flaky.broken = True
    assert await _one(conn, "SELECT count(*) FROM projection_dead_letters") == 0
    assert (
        await _one(conn, "SELECT name FROM rm_flaky_test.seen WHERE notification_id = %s", bad.notification_id) == "bad"
    )
    assert await _one(conn, "SELECT count(*) FROM rm_flaky_test.seen") == 5


async def test_admin_projections_status(quipu: Running) -> None:
    r = await quipu.client.post(
        "/api/v1/workflows", json={"name": "one", "definition": DEFINITION}, headers=quipu.auth()
    )
    assert r.status_code == 201
    await quipu.wait_for(lambda: _caught_up(quipu))
    r = await quipu.client.get("/api/v1/admin/projections", headers=quipu.auth("acme"))
    assert r.status_code == 200, r.text
    status = {p["name"]: p for p in r.json()}
    wf = status["workflows"]
    assert {"position", "head", "lag_events", "lag_seconds", "updated_at", "errors"} <= set(wf)
    assert wf["position"] == wf["head"] > 0 and wf["lag_events"] == 0 and wf["lag_seconds"] == 0
    assert wf["errors"] == []
    assert (await quipu.client.get("/api/v1/admin/projections", headers=quipu.auth("acme-reader"))).status_code == 403
    assert (await quipu.client.get("/api/v1/admin/projections")).status_code == 401


async def test_a_second_projector_instance_stands_by(database_url: str, nats_url: str, subjects: Subjects) -> None:
    """Two instances of one projection never share the stream: one applies, one waits."""
    import asyncio

    from bus.consumer import Projector
    from bus.relay import Relay
    from projections.registry import projection

    async with running_quipu(database_url, nats_url, subjects, background=False) as q:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(Relay(database_url, nats_url, subjects).run(stop))]
        tasks += [
            asyncio.create_task(Projector(projection("workflows"), database_url, nats_url, subjects).run(stop))
            for _ in range(2)
        ]

        # A fast burst from many writers: large, interleaved batches for both instances.
        def burst(n: int) -> None:
            store = q.ctx.store
            for i in range(n):
                store.save_all(_workflow(f"burst-{i}"))

        await asyncio.gather(*[asyncio.to_thread(burst, 150) for _ in range(4)])

        async def all_listed() -> bool:
            page = (await q.client.get("/api/v1/workflows?limit=1", headers=q.auth())).json()
            return bool(page["total"] == 600)

        await q.wait_for(all_listed)
        stop.set()
        for t in tasks:
            await asyncio.wait_for(t, 15)


def _workflow(name: str) -> Workflow:
    return Workflow.create(
        CommandContext("acme", "test"),
        workflow_id=uuid7(),
        name=name,
        description="",
        definition=WorkflowDefinition(nodes=[Node(id="a")]),
        metadata={},
    )
