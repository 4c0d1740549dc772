"""Write-side invariants: immutability, all-or-nothing, conflicts, causes, tenancy."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from commands.errors import ConcurrencyConflict
from domain.aggregate import CommandContext
from domain.workflow import Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from tests.integration.conftest import Running

DEFINITION = {"nodes": [{"id": "a"}]}


async def _create(quipu: Running, tenant: str = "acme", **extra: object) -> dict[str, object]:
    r = await quipu.client.post(
        "/api/v1/workflows", json={"name": "w", "definition": DEFINITION, **extra}, headers=quipu.auth(tenant)
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("table", ["quipu_events", "event_dag", "event_edges"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}", "TRUNCATE {t} CASCADE"])
async def test_database_refuses_to_change_history(
    quipu: Running, database_url: str, table: str, statement: str
) -> None:
    first = await _create(quipu)
    await _create(quipu, caused_by=[first["last_event_id"]])
    column = {"quipu_events": "topic", "event_dag": "kind", "event_edges": "parent_id"}[table]
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
        with pytest.raises(psycopg.Error, match="immutable"):
            conn.execute(statement.format(t=table, c=column))  # type: ignore[arg-type]
        after = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    assert before == after and before is not None and before[0] > 0


async def test_concurrent_writers_one_wins_the_other_conflicts(quipu: Running) -> None:
    store = quipu.ctx.store
    ctx = CommandContext("acme", "test")
    definition = WorkflowDefinition(nodes=[Node(id="a")])
    wf = Workflow.create(ctx, workflow_id=uuid.uuid4(), name="w", description="", definition=definition, metadata={})
    store.save_all(wf)
    a = store.load(Workflow, wf.id, "acme")
    b = store.load(Workflow, wf.id, "acme")
    a.update(ctx, name="a", description="", definition=definition, metadata={})
    b.update(ctx, name="b", description="", definition=definition, metadata={})
    store.save_all(a)
    with pytest.raises(ConcurrencyConflict):
        store.save_all(b)
    assert store.load(Workflow, wf.id, "acme").name == "a"


async def test_racing_http_updates_get_409_never_a_lost_update(quipu: Running) -> None:
    wf = await _create(quipu)

    async def put(name: str) -> int:
        r = await quipu.client.put(
            f"/api/v1/workflows/{wf['id']}", json={"name": name, "definition": DEFINITION}, headers=quipu.auth()
        )
        return r.status_code

    codes = await asyncio.gather(*[put(f"n{i}") for i in range(6)])
    assert set(codes) <= {200, 409}
    final = (await quipu.client.get(f"/api/v1/workflows/{wf['id']}", headers=quipu.auth())).json()
    assert final["version"] == 1 + codes.count(200)


async def test_a_command_appends_all_or_nothing(quipu: Running, database_url: str) -> None:
    store = quipu.ctx.store
    ctx = CommandContext("acme", "test")
    definition = WorkflowDefinition(nodes=[Node(id="a")])
    taken = Workflow.create(ctx, workflow_id=uuid.uuid4(), name="x", description="", definition=definition, metadata={})
    store.save_all(taken)
    fresh = Workflow.create(ctx, workflow_id=uuid.uuid4(), name="y", description="", definition=definition, metadata={})
    stale = store.load(Workflow, taken.id, "acme")
    newer = store.load(Workflow, taken.id, "acme")
    newer.update(ctx, name="z", description="", definition=definition, metadata={})
    store.save_all(newer)
    stale.update(ctx, name="lost", description="", definition=definition, metadata={})
    with pytest.raises(ConcurrencyConflict):
        store.save_all(fresh, stale)  # one transaction: the fresh workflow must not appear
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM event_dag WHERE stream_id = %s", (fresh.id,)).fetchone()
    assert row == (0,)


async def test_caused_by_must_name_existing_events_of_the_same_tenant(quipu: Running, database_url: str) -> None:
    mine = await _create(quipu)
    theirs = await _create(quipu, tenant="beta")
    r = await quipu.client.post(
        "/api/v1/workflows",
        json={"name": "w", "definition": DEFINITION, "caused_by": [str(uuid.uuid4())]},
        headers=quipu.auth(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "caused_by"
    r = await quipu.client.post(
        "/api/v1/workflows",
        json={"name": "w", "definition": DEFINITION, "caused_by": [theirs["last_event_id"]]},
        headers=quipu.auth(),
    )
    assert r.status_code == 422
    with psycopg.connect(database_url) as conn:
        # Nothing of the refused commands reached the log, not even without DAG rows.
        events = conn.execute("SELECT count(*) FROM quipu_events").fetchone()
        indexed = conn.execute("SELECT count(*) FROM event_dag").fetchone()
    assert events == indexed
    child = await _create(quipu, caused_by=[mine["last_event_id"]])
    event = (await quipu.client.get(f"/api/v1/event-dag/{child['last_event_id']}", headers=quipu.auth())).json()
    assert event["parent_ids"] == [mine["last_event_id"]] and event["depth"] == 1


async def test_tenant_b_sees_nothing_of_tenant_a(quipu: Running) -> None:
    wf = await _create(quipu)
    child = await _create(quipu, caused_by=[wf["last_event_id"]])
    b = quipu.auth("beta")
    ev = child["last_event_id"]
    for path in (
        f"/api/v1/workflows/{wf['id']}",
        f"/api/v1/event-dag/{ev}",
        f"/api/v1/event-dag/{ev}/ancestors",
        f"/api/v1/event-dag/{wf['last_event_id']}/descendants",
        f"/api/v1/event-dag/{ev}/siblings",
        f"/api/v1/event-dag/{ev}/verify",
        f"/api/v1/event-dag?correlation_id={wf['id']}",
        f"/api/v1/event-dag/path?from={wf['last_event_id']}&to={ev}",
    ):
        r = await quipu.client.get(path, headers=b)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await quipu.client.put(f"/api/v1/workflows/{wf['id']}", json={"name": "x", "definition": DEFINITION}, headers=b)
    assert r.status_code == 404
    assert (await quipu.client.get("/api/v1/event-dag/by-kind/workflow.created", headers=b)).json()["total"] == 0
    # and tenant A still sees its own
    assert (await quipu.client.get(f"/api/v1/event-dag/{ev}/ancestors", headers=quipu.auth())).json()["total"] == 1


async def test_nats_subjects_are_tenant_scoped(quipu: Running, nats_client: object) -> None:
    from bus.streams import ensure_event_stream

    js = nats_client.jetstream()  # type: ignore[attr-defined]
    await ensure_event_stream(js, quipu.wiring.subjects)  # the relay may not have made it yet
    await _create(quipu, tenant="beta")
    wf = await _create(quipu)
    sub = await js.subscribe(f"{quipu.wiring.subjects.prefix}.ev.acme.workflow.>", ordered_consumer=True)
    msg = await sub.next_msg(timeout=10)
    assert msg.subject == f"{quipu.wiring.subjects.prefix}.ev.acme.workflow.created"
    assert msg.headers["Nats-Msg-Id"] == wf["last_event_id"]
    assert msg.headers["Quipu-Kind"] == "workflow.created"
    assert msg.headers["traceparent"].startswith("00-")
    await sub.unsubscribe()
