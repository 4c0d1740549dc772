"""Only the log is trusted (docs/decisions/0006-log-trust.md): forged bus messages change nothing, and an admin
can let a projection pass a poisoned event by without rewriting anything."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from bus.runtime import connect_nats
from bus.subjects import Subjects
from commands.log import read_after
from domain.aggregate import CommandContext
from domain.envelope import EventEnvelope
from domain.ids import uuid7
from domain.workflow import Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from quipu.rebuild import rebuild_projection
from tests.integration.conftest import Running, running_quipu
from tests.integration.pipeline_support import SMALL, log_head, metric, positions, quipu_with, rows, workflows_total

TASKS = {"nodes": [{"id": "work", "agent_type": "forge_test"}]}
REJECTED = "quipu_bus_messages_rejected_total"


async def _settled(q: Running, database_url: str) -> None:
    async def caught_up() -> bool:
        top = await log_head(database_url)
        return all(p == top for p in (await positions(database_url)).values())

    await q.wait_for(caught_up)


async def _real(database_url: str, kind: str) -> EventEnvelope:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return next(e for e in await read_after(conn, 0, 10_000) if e.kind == kind)


async def _publish(nats_url: str, subjects: Subjects, forged: list[EventEnvelope]) -> None:
    """Straight onto the events stream, as any process with the operator's credentials could
    (without credentials, or with a worker's, NATS refuses: see test_nats_auth)."""
    nc = await connect_nats(nats_url, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        for e in forged:
            # Without Nats-Msg-Id for a real event's id, or JetStream would drop it as a repeat.
            headers = {"Quipu-Notification-Id": str(e.notification_id)}
            await js.publish(subjects.event(e.tenant_id, e.kind), msgspec.json.encode(e), headers=headers)
    finally:
        await nc.close()


async def _read_models(database_url: str) -> list[Any]:
    return await rows(database_url, "SELECT * FROM rm_workflows.workflows ORDER BY workflow_id")


async def test_forged_envelopes_change_nothing_and_are_counted(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with quipu_with(database_url, nats_url, subjects) as q:
        c, h = q.client, q.auth()
        r = await c.post("/api/v1/workflows", json={"name": "real", "definition": TASKS}, headers=h)
        assert r.status_code == 201, r.text
        r = await c.post("/api/v1/executions", json={"workflow_id": r.json()["id"]}, headers=h)
        assert r.status_code == 201, r.text
        execution_url = f"/api/v1/executions/{r.json()['id']}"
        await _settled(q, database_url)
        top = await log_head(database_url)
        before = (
            await positions(database_url),
            await _read_models(database_url),
            (await c.get(execution_url, headers=h)).json(),
        )
        created, scheduled = (
            await _real(database_url, "workflow.created"),
            await _real(database_url, "execution.node_scheduled"),
        )
        jumped = msgspec.structs.replace(
            created,
            event_id=uuid7(),
            stream_id=uuid7(),
            notification_id=top + 1_000_000,
            payload={**created.payload, "name": "forged"},
        )
        wrong_id = msgspec.structs.replace(created, event_id=uuid7(), notification_id=top)
        wrong_hash = msgspec.structs.replace(created, hash="0" * 64, payload={**created.payload, "name": "tampered"})
        made_up_tenant = msgspec.structs.replace(jumped, event_id=uuid7(), tenant_id="mallory", notification_id=top + 1)
        fake_task = msgspec.structs.replace(scheduled, event_id=uuid7(), notification_id=top + 2_000_000)
        counts = {
            reason: await metric(q, REJECTED, consumer="projector:workflows", reason=reason)
            for reason in ("not_in_log", "event_mismatch", "hash_mismatch")
        }
        dispatcher = await metric(q, REJECTED, consumer="dispatcher", reason="not_in_log")

        await _publish(nats_url, subjects, [jumped, wrong_id, wrong_hash, made_up_tenant, fake_task])

        async def all_counted() -> bool:
            return (
                await metric(q, REJECTED, consumer="projector:workflows", reason="not_in_log")
                >= counts["not_in_log"] + 3
                and await metric(q, REJECTED, consumer="projector:workflows", reason="event_mismatch")
                >= counts["event_mismatch"] + 1
                and await metric(q, REJECTED, consumer="projector:workflows", reason="hash_mismatch")
                >= counts["hash_mismatch"] + 1
                and await metric(q, REJECTED, consumer="dispatcher", reason="not_in_log") >= dispatcher + 1
            )

        await q.wait_for(all_counted)
        await asyncio.sleep(0.5)  # anything a forgery could still set off would have happened by now
        after = (
            await positions(database_url),
            await _read_models(database_url),
            (await c.get(execution_url, headers=h)).json(),
        )
        assert after == before
        assert await log_head(database_url) == top
        assert not await rows(database_url, "SELECT 1 FROM rm_workflows.workflows WHERE name IN ('forged', 'tampered')")
        for status in (await c.get("/api/v1/admin/projections", headers=h)).json():
            assert status["position"] == status["head"] == top and status["lag_events"] == 0

        # Real events written after the forgeries still reach every read model.
        for i in range(3):
            r = await c.post("/api/v1/workflows", json={"name": f"after-{i}", "definition": SMALL}, headers=h)
            assert r.status_code == 201, r.text

        async def later_listed() -> bool:
            return await workflows_total(q, "acme") == 4

        await q.wait_for(later_listed)
        await _settled(q, database_url)


def _append_poison(store: Any) -> str:
    """A workflow whose name Postgres text cannot hold: the workflows handler fails on it."""
    wf = Workflow.create(
        CommandContext("acme", "test"),
        workflow_id=uuid7(),
        name="poison\x00name",
        description="",
        definition=WorkflowDefinition(nodes=[Node(id="a")]),
        metadata={},
    )
    store.save_all(wf)
    return str(wf.last_event_id)


async def _workflows_status(q: Running, tenant: str = "acme") -> dict[str, Any]:
    r = await q.client.get("/api/v1/admin/projections", headers=q.auth(tenant))
    assert r.status_code == 200, r.text
    return next(s for s in r.json() if s["name"] == "workflows")


async def test_skip_lets_a_projection_pass_a_dead_lettered_event_by(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with quipu_with(database_url, nats_url, subjects) as q:
        c, h = q.client, q.auth()
        poison = await asyncio.to_thread(_append_poison, q.ctx.store)
        r = await c.post("/api/v1/workflows", json={"name": "fine", "definition": SMALL}, headers=h)
        assert r.status_code == 201

        async def parked() -> bool:
            status = await _workflows_status(q)
            return bool(status["dead_letters"] == 1 and status["position"] == status["head"])

        await q.wait_for(parked)
        assert (await _workflows_status(q))["errors"][0]["event_id"] == poison

        url = "/api/v1/admin/projections/workflows/skips"
        body = {"event_id": poison, "reason": "name holds a NUL byte; fixed at the API since"}
        for status_code, path, payload, key in (
            (403, url, body, "acme-reader"),
            (404, "/api/v1/admin/projections/nope/skips", body, "acme"),
            (404, url, {**body, "event_id": str(uuid7())}, "acme"),
            (404, url, body, "beta"),  # another tenant's event is not found
            (422, url, {**body, "reason": "   "}, "acme"),
        ):
            r = await c.post(path, json=payload, headers=q.auth(key))
            assert r.status_code == status_code, (path, key, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await c.post(url, json=body, headers=h)
        assert r.status_code == 201, r.text
        recorded = r.json()
        assert recorded["event_id"] == poison and recorded["projection"] == "workflows"
        assert recorded["kind"] == "workflow.created" and recorded["reason"] == body["reason"]
        assert recorded["actor"].startswith("api_key:") and recorded["last_event_id"] == recorded["skip_event_id"]
        again = await c.post(url, json=body, headers=h)
        assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")

        # The decision is in the DAG, a child of the skipped event, with its reason and actor.
        [(kind, parents, tenant)] = await rows(
            database_url,
            "SELECT kind, parent_ids, tenant_id FROM event_dag WHERE event_id = %s",
            recorded["last_event_id"],
        )
        assert kind == "system.event_skipped" and [str(p) for p in parents] == [poison] and tenant == "acme"

        async def passed_by() -> bool:
            status = await _workflows_status(q)
            return bool(status["dead_letters"] == 0 and not status["errors"] and status["position"] == status["head"])

        await q.wait_for(passed_by)
        [skipped] = (await _workflows_status(q))["skipped"]
        assert skipped["event_id"] == poison and skipped["honoured"] and skipped["reason"] == body["reason"]
        assert (await _workflows_status(q, "beta"))["skipped"] == []
        # Other projections are not affected by the decision.
        assert all(
            s["skipped"] == []
            for s in (await c.get("/api/v1/admin/projections", headers=h)).json()
            if s["name"] != "workflows"
        )

        # A rebuild passes it by too: nothing parked again, the read model as before.
        names = await rows(database_url, "SELECT name FROM rm_workflows.workflows ORDER BY name")
        await rebuild_projection(database_url, "workflows")
        assert await rows(database_url, "SELECT name FROM rm_workflows.workflows ORDER BY name") == names == [("fine",)]
        assert not await rows(database_url, "SELECT 1 FROM projection_dead_letters WHERE projection = 'workflows'")
        r = await c.post("/api/v1/workflows", json={"name": "later", "definition": SMALL}, headers=h)
        assert r.status_code == 201

        async def later() -> bool:
            return await workflows_total(q, "acme") == 2

        await q.wait_for(later)
        assert (await _workflows_status(q))["dead_letters"] == 0


async def test_a_claim_far_ahead_of_the_projection_is_healed_from_the_log(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    """One message naming an event 600 positions ahead (the 599 before it never arrived, say
    a bus that lost them): the projector applies the whole range from the log, in batches."""
    from dataclasses import dataclass

    from bus.consumer import Projector
    from projections.applier import ensure_schema, position
    from projections.registry import projection

    @dataclass
    class Message:  # what the projector reads of a nats-py message
        data: bytes
        headers: dict[str, str] | None
        subject: str

    async with running_quipu(database_url, nats_url, subjects, background=False) as q:
        for chunk in range(0, 600, 50):
            posted = await asyncio.gather(
                *(
                    q.client.post("/api/v1/workflows", json={"name": f"w{i}", "definition": SMALL}, headers=q.auth())
                    for i in range(chunk, chunk + 50)
                )
            )
            assert all(r.status_code == 201 for r in posted)
    workflows = projection("workflows")
    projector = Projector(workflows, database_url, nats_url, subjects)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        await ensure_schema(conn, workflows)
        last = (await read_after(conn, await log_head(database_url) - 1, 1))[0]
        hint = Message(msgspec.json.encode(last), None, subjects.event(last.tenant_id, last.kind))
        applied = await projector._apply_hints(conn, [hint], 0)  # type: ignore[arg-type]
        assert applied == last.notification_id == (await position(conn, workflows))[0]
    count = await rows(database_url, "SELECT count(*) FROM rm_workflows.workflows")
    assert count[0][0] == 600
