"""Callbacks (jsondagapi reference): registration with the seed's body, the list, deregistration
(409 while a live workflow names it), UNKNOWN_CALLBACK at create, validate and node edits,
tenant isolation, and deliveries to a real local HTTP server: signed, retried with backoff,
listed, recorded in the DAG, dead after the last attempt."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bus.subjects import Subjects
from domain.delivery import DeliveryPolicy
from tests.callback_receiver import Receiver, callback_receiver
from tests.integration.conftest import Running, running_quipu

# jsondagapi's registration example, verbatim.
SEED_REGISTRATION = {
    "service_name": "order-service",
    "environment": "prod",
    "base_url": "https://orders.mycorp.com",
    "callbacks": {
        "start-task": {"path": "/callbacks/start"},
        "approve-task": {"path": "/callbacks/approve"},
        "reject-task": {"path": "/callbacks/reject"},
    },
}
POLICY = DeliveryPolicy(max_attempts=3, timeout_seconds=2.0, base_seconds=0.1, cap_seconds=1.0)


@pytest.fixture
async def fast(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    """A Quipu whose deliverer retries quickly and gives up after three attempts."""
    async with running_quipu(database_url, nats_url, subjects, callback_policy=POLICY) as running:
        yield running


def _flow(*nodes: dict[str, Any]) -> dict[str, Any]:
    ids = ["start", *(n["id"] for n in nodes), "end"]
    return {
        "name": "callbacks",
        "definition": {
            "nodes": [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end"}],
            "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)],
        },
    }


async def _callbacks(q: Running, tenant: str = "acme", **params: Any) -> dict[str, Any]:
    r = await q.client.get("/api/v1/callbacks", params=params, headers=q.auth(tenant))
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def test_the_seed_registration_is_accepted_listed_and_tenant_scoped(quipu: Running) -> None:
    q = quipu
    r = await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["service_name"] == "order-service" and out["environment"] == "prod"
    assert out["registered_callbacks"] == ["start-task", "approve-task", "reject-task"]
    assert out["secret"].startswith("whsec_") and len(out["secret"]) > 40 and out["last_event_id"]

    async def listed() -> bool:
        return (await _callbacks(q))["total"] == 3

    await q.wait_for(listed)
    page = await _callbacks(q)
    by_id = {c["callback_id"]: c for c in page["items"]}
    assert by_id["approve-task"]["url"] == "https://orders.mycorp.com/callbacks/approve"
    assert {c["status"] for c in page["items"]} == {"ACTIVE"}
    assert {c["service_name"] for c in page["items"]} == {"order-service"}
    # The secret is shown once: nowhere in the list.
    assert "secret" not in page["items"][0] and out["secret"] not in str(page)
    # Paged, by id.
    first = await _callbacks(q, limit=2)
    second = await _callbacks(q, limit=2, offset=2)
    assert [c["callback_id"] for c in first["items"] + second["items"]] == ["approve-task", "reject-task", "start-task"]
    assert first["total"] == 3 and first["limit"] == 2
    # Another tenant sees none of them, and may register the same ids for itself.
    assert (await _callbacks(q, "beta"))["total"] == 0
    r = await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth("beta"))
    assert r.status_code == 201 and r.json()["secret"] != out["secret"]
    # A read-only key cannot register.
    r = await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth("acme-reader"))
    assert r.status_code == 403


async def test_registration_conflicts_and_bad_bodies(quipu: Running) -> None:
    q = quipu
    assert (await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth())).is_success
    # Another service may not take an active id; the owner may register it again (new secret).
    other = {**SEED_REGISTRATION, "service_name": "billing"}
    r = await q.client.post("/api/v1/callbacks/register", json=other, headers=q.auth())
    assert r.status_code == 409 and "order-service" in r.json()["detail"]
    moved = {**SEED_REGISTRATION, "base_url": "https://orders-v2.mycorp.com/"}
    r = await q.client.post("/api/v1/callbacks/register", json=moved, headers=q.auth())
    assert r.status_code == 201

    async def moved_listed() -> bool:
        items = (await _callbacks(q))["items"]
        return any(c["url"] == "https://orders-v2.mycorp.com/callbacks/start" for c in items)

    await q.wait_for(moved_listed)
    for bad in (
        {**SEED_REGISTRATION, "callbacks": {}},
        {**SEED_REGISTRATION, "base_url": "ftp://orders"},
        {**SEED_REGISTRATION, "callbacks": {"a b": {"path": "/x"}}},
        {**SEED_REGISTRATION, "callbacks": {"x": {"path": "no-slash"}}},
        {**SEED_REGISTRATION, "colour": "red"},
    ):
        r = await q.client.post("/api/v1/callbacks/register", json=bad, headers=q.auth())
        assert r.status_code in (400, 422), (bad, r.text)


async def test_unknown_callbacks_are_refused_at_create_validate_and_node_edits(quipu: Running) -> None:
    q = quipu
    unknown = _flow({"id": "ship", "callback_id": "start-task"})
    r = await q.client.post("/api/v1/workflows", json=unknown, headers=q.auth())
    assert r.status_code == 422
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [
        ("definition.nodes[1].callback_id", "UNKNOWN_CALLBACK")
    ]
    r = await q.client.post("/api/v1/analysis/validate", json=unknown["definition"], headers=q.auth())
    assert r.status_code == 200 and r.json()["valid"] is False
    assert [e["code"] for e in r.json()["errors"]] == ["UNKNOWN_CALLBACK"]

    assert (await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth())).is_success
    # Registered a moment ago: the check reads the log, not a lagging read model.
    r = await q.client.post("/api/v1/analysis/validate", json=unknown["definition"], headers=q.auth())
    assert r.json() == {"valid": True, "errors": []}
    r = await q.client.post("/api/v1/workflows", json=unknown, headers=q.auth())
    assert r.status_code == 201, r.text
    wf = r.json()
    assert wf["definition"]["nodes"][1]["callback_id"] == "start-task"
    # Another tenant's registry is not ours.
    r = await q.client.post("/api/v1/workflows", json=unknown, headers=q.auth("beta"))
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "UNKNOWN_CALLBACK"

    # Node edits: an unknown id, and a node naming both a callback and an agent type.
    headers = q.auth()
    node = {"id": "bill", "callback_id": "bill-task"}
    r = await q.client.post(f"/api/v1/workflows/{wf['id']}/nodes", json=node, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "UNKNOWN_CALLBACK"
    node = {"id": "bill", "callback_id": "reject-task", "agent_type": "llm"}
    r = await q.client.post(f"/api/v1/workflows/{wf['id']}/nodes", json=node, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "ambiguous"
    node = {"id": "bill", "callback_id": "reject-task"}
    r = await q.client.post(f"/api/v1/workflows/{wf['id']}/nodes", json=node, headers=headers)
    assert r.status_code == 200, r.text
    # A decision settled by Quipu itself cannot be served by a callback.
    settled = _flow({"id": "route", "type": "decision", "callback_id": "approve-task"})
    r = await q.client.post("/api/v1/analysis/validate", json=settled, headers=q.auth())
    assert "placement" in [e["code"] for e in r.json()["errors"]]


async def test_deregistering_is_refused_while_a_live_workflow_names_the_callback(quipu: Running) -> None:
    q = quipu
    assert (await q.client.post("/api/v1/callbacks/register", json=SEED_REGISTRATION, headers=q.auth())).is_success
    r = await q.client.post(
        "/api/v1/workflows", json=_flow({"id": "ship", "callback_id": "start-task"}), headers=q.auth()
    )
    wf = r.json()

    # Right after the create: the check waits for the read model to see the workflow.
    r = await q.client.delete("/api/v1/callbacks/start-task", headers=q.auth())
    assert r.status_code == 409 and wf["id"] in r.json()["detail"], r.text
    # Unreferenced ids go; another tenant's and unknown ids are 404.
    assert (await q.client.delete("/api/v1/callbacks/reject-task", headers=q.auth("beta"))).status_code == 404
    assert (await q.client.delete("/api/v1/callbacks/nope", headers=q.auth())).status_code == 404
    r = await q.client.delete("/api/v1/callbacks/reject-task", headers=q.auth())
    assert r.status_code == 200 and r.json()["status"] == "DEREGISTERED" and r.json()["last_event_id"]
    assert (await q.client.delete("/api/v1/callbacks/reject-task", headers=q.auth())).status_code == 409
    # Once the workflow is deleted, the callback may go too.
    assert (await q.client.delete(f"/api/v1/workflows/{wf['id']}", headers=q.auth())).status_code in (200, 204)

    r = await q.client.delete("/api/v1/callbacks/start-task", headers=q.auth())
    assert r.status_code == 200, r.text

    async def statuses() -> bool:
        page = await _callbacks(q, status="DEREGISTERED")
        return {c["callback_id"] for c in page["items"]} == {"start-task", "reject-task"}

    await q.wait_for(statuses)
    # A deregistered id cannot be named any more.
    r = await q.client.post(
        "/api/v1/workflows", json=_flow({"id": "ship", "callback_id": "start-task"}), headers=q.auth()
    )
    assert r.status_code == 422


async def _register_at(q: Running, receiver: Receiver, **paths: str) -> None:
    body = {
        "service_name": "orders",
        "environment": "test",
        "base_url": receiver.base_url,
        "callbacks": {cid: {"path": path} for cid, path in paths.items()},
    }
    r = await q.client.post("/api/v1/callbacks/register", json=body, headers=q.auth())
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]


async def _execution(q: Running, execution_id: str) -> dict[str, Any]:
    r = await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth())
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_callback_nodes_are_delivered_signed_retried_and_completed(fast: Running) -> None:
    q = fast
    with callback_receiver() as receiver:
        receiver.scripts["/ship"] = [500, 503]  # two failures, then 200
        await _register_at(q, receiver, **{"ship-task": "/ship", "bill-task": "/bill"})
        flow = _flow({"id": "ship", "callback_id": "ship-task"}, {"id": "bill", "callback_id": "bill-task"})
        wf = (await q.client.post("/api/v1/workflows", json=flow, headers=q.auth())).json()
        r = await q.client.post(
            "/api/v1/executions", json={"workflow_id": wf["id"], "input": {"order": 7}}, headers=q.auth()
        )
        execution_id = r.json()["id"]

        async def delivered(path: str) -> bool:
            return any(d.answered == 200 for d in receiver.received(path))

        await q.wait_for(lambda: delivered("/ship"))
        ship = receiver.received("/ship")
        assert [d.answered for d in ship] == [500, 503, 200] and all(d.verified for d in ship)
        # Standard Webhooks: one id for every attempt of the delivery, a signature each.
        assert len({d.headers["webhook-id"] for d in ship}) == 1
        assert len({d.headers["webhook-signature"] for d in ship}) >= 2 or ship[0].body != ship[2].body
        task = ship[-1].data
        assert task["execution_id"] == execution_id and task["node_id"] == "ship", task
        assert task["inputs"]["order"] == 7, task
        assert task["callback_id"] == "ship-task" and task["delivery_attempt"] == 3 and task["attempt"] == 1
        assert task["complete_path"] == f"/api/v1/executions/{execution_id}/nodes/ship/complete"
        # Nothing went to the workers' queue: the node is the callback's.
        assert (await _execution(q, execution_id))["nodes"]["ship"] == "scheduled"

        # The service answers with the seed's completion body (jsondagapi's example, verbatim).
        seed = {"status": "COMPLETED", "outputs": {}, "error": None}
        r = await q.client.post(task["complete_path"], json=seed, headers=q.auth())
        assert r.status_code == 200, r.text
        await q.wait_for(lambda: delivered("/bill"))
        bill = receiver.received("/bill")[-1]
        assert bill.verified and bill.data["node_id"] == "bill"
        r = await q.client.post(
            bill.data["complete_path"],
            json={"status": "COMPLETED", "outputs": {"billed": True}, "error": None},
            headers=q.auth(),
        )
        assert r.status_code == 200 and r.json()["status"] == "succeeded" and r.json()["state"]["billed"] is True

        # The attempts, listed per callback, each an event caused by the scheduling event.
        async def listed() -> bool:
            r = await q.client.get("/api/v1/callbacks/ship-task/deliveries", headers=q.auth())
            return r.json()["total"] == 3 and r.json()["items"][-1]["delivery_status"] == "delivered"

        await q.wait_for(listed)
        items = (await q.client.get("/api/v1/callbacks/ship-task/deliveries", headers=q.auth())).json()["items"]
        assert [(a["attempt"], a["outcome"], a["status_code"]) for a in items] == [
            (1, "failed", 500),
            (2, "failed", 503),
            (3, "delivered", 200),
        ]
        assert items[0]["retry_at"] and items[2]["retry_at"] is None and all(a["latency_ms"] >= 0 for a in items)
        scheduling = items[0]["delivery_id"]
        for attempt in items:
            r = await q.client.get(f"/api/v1/event-dag/{attempt['event_id']}", headers=q.auth())
            assert r.status_code == 200 and r.json()["kind"] == "delivery.attempted"
            assert scheduling in [str(p) for p in r.json()["parent_ids"]]
        r = await q.client.get(f"/api/v1/event-dag/{scheduling}", headers=q.auth())
        assert r.json()["kind"] == "execution.node_scheduled" and r.json()["payload"]["callback_id"] == "ship-task"
        filtered = await q.client.get(
            "/api/v1/callbacks/ship-task/deliveries", params={"execution_id": execution_id}, headers=q.auth()
        )
        assert filtered.json()["total"] == 3
        # Tenant isolation: another tenant sees no such callback.
        r = await q.client.get("/api/v1/callbacks/ship-task/deliveries", headers=q.auth("beta"))
        assert r.status_code == 404


async def test_a_delivery_that_runs_out_of_attempts_is_dead_and_fails_the_node(fast: Running) -> None:
    q = fast
    with callback_receiver() as receiver:
        receiver.scripts["/down"] = [500] * 10
        await _register_at(q, receiver, **{"down-task": "/down"})
        flow = _flow({"id": "ship", "callback_id": "down-task"})
        wf = (await q.client.post("/api/v1/workflows", json=flow, headers=q.auth())).json()
        r = await q.client.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=q.auth())
        execution_id = r.json()["id"]

        async def failed() -> bool:
            return (await _execution(q, execution_id))["status"] == "failed"

        await q.wait_for(failed)
        run = await _execution(q, execution_id)
        assert "not delivered after 3 attempts" in (run["error"] or "")
        await asyncio.sleep(POLICY.cap_seconds + 0.5)  # no attempt after the last
        assert len(receiver.received("/down")) == POLICY.max_attempts

        async def dead() -> bool:
            r = await q.client.get("/api/v1/callbacks/down-task/deliveries", headers=q.auth())
            return r.json()["total"] == 3 and {a["delivery_status"] for a in r.json()["items"]} == {"dead"}

        await q.wait_for(dead)


async def test_an_external_decision_served_by_a_callback_answers_with_the_seed_decision_body(fast: Running) -> None:
    q = fast
    with callback_receiver() as receiver:
        await _register_at(q, receiver, **{"risk-task": "/risk", "ship-task": "/ship"})
        flow = {
            "name": "decided by a service",
            "definition": {
                "nodes": [
                    {"id": "start", "type": "start"},
                    {
                        "id": "risk_decision",
                        "type": "decision",
                        "callback_id": "risk-task",
                        "config": {"external": True, "outcomes": {"approve": "ship"}},
                    },
                    {"id": "ship", "callback_id": "ship-task"},
                    {"id": "reject", "type": "end"},
                ],
                "edges": [
                    {"from": "start", "to": "risk_decision"},
                    {"from": "risk_decision", "to": "ship"},
                    {"from": "risk_decision", "to": "reject", "condition": "risk == 'high'"},
                ],
            },
        }
        r = await q.client.post("/api/v1/workflows", json=flow, headers=q.auth())
        assert r.status_code == 201, r.text
        r = await q.client.post("/api/v1/executions", json={"workflow_id": r.json()["id"]}, headers=q.auth())
        execution_id = r.json()["id"]

        async def delivered(path: str) -> bool:
            return any(d.answered == 200 for d in receiver.received(path))

        await q.wait_for(lambda: delivered("/risk"))
        task = receiver.received("/risk")[-1].data
        assert task["node_type"] == "decision"
        assert task["decision_path"] == f"/api/v1/executions/{execution_id}/decisions/risk_decision"
        # jsondagapi's decision body, verbatim.
        r = await q.client.post(task["decision_path"], json={"outcome": "approve"}, headers=q.auth())
        assert r.status_code == 200, r.text
        assert r.json()["nodes"]["reject"] == "skipped"
        await q.wait_for(lambda: delivered("/ship"))
        ship = receiver.received("/ship")[-1].data
        r = await q.client.post(
            ship["complete_path"], json={"status": "COMPLETED", "outputs": {}, "error": None}, headers=q.auth()
        )
        assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
