"""Callbacks end to end, as in production: Quipu as a real process (`quipu up`), and a real
local HTTP service that registered callbacks with the seed's body and serves every node of a
workflow. The service checks each delivery's signature as a receiver would, answers 200, and
then reports the node done with the seed's completion body ({status, outputs, error}),
retrying while Quipu is down.

One callback fails twice before it takes a delivery (the attempts are events in the DAG,
caused by the node's scheduling). Quipu is SIGKILLed while a delivery is in flight (the
service holds its answer back); after the restart the deliverer, resuming from the log,
delivers it again with the same webhook-id. Every node is delivered at least once, and no
node completes twice.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.callback_receiver import Delivery, callback_receiver
from tests.e2e.test_orchestration import Quipu
from tests.nats_access import NatsForTests

NODES = ("fetch", "flaky", "slow")
HOLD_SECONDS = 12.0  # the in-flight delivery's answer is held back this long


def _wait(check: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Service:
    """What the registered service does after accepting a delivery: complete the node."""

    def __init__(self, api: str, key: str) -> None:
        self.api = api
        self.key = key
        self.answers: list[tuple[str, int]] = []  # (node, Quipu's status) per completion sent
        self.lock = threading.Lock()

    def accepted(self, delivery: Delivery) -> None:
        threading.Thread(target=self._complete, args=(delivery,), daemon=True).start()

    def _complete(self, delivery: Delivery) -> None:
        task = delivery.data
        body = {"status": "COMPLETED", "outputs": {f"{task['node_id']}_done": True}, "error": None}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # Quipu may be down (killed): try until it answers
            try:
                r = httpx.post(
                    self.api.removesuffix("/api/v1") + task["complete_path"],
                    json=body,
                    headers={"Authorization": f"Bearer {self.key}"},
                    timeout=5,
                )
            except httpx.HTTPError:
                time.sleep(0.3)
                continue
            if r.status_code in (200, 409):  # 409: the node's attempt is over (completed already)
                with self.lock:
                    self.answers.append((task["node_id"], r.status_code))
                return
            time.sleep(0.3)


def _events(database_url: str, execution_id: str, kind: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id FROM event_dag WHERE correlation_id = %s AND kind = %s ORDER BY notification_id",
            (execution_id, kind),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_callback_nodes_run_signed_retried_and_survive_a_kill(infra: tuple[str, NatsForTests], tmp_path: Path) -> None:
    database_url, nats = infra
    quipu = Quipu(database_url, nats, tmp_path)
    quipu.env.update(QUIPU_CALLBACK_RETRY_BASE="0.3", QUIPU_CALLBACK_TIMEOUT="30", QUIPU_CALLBACK_MAX_ATTEMPTS="6")
    quipu.start()
    try:
        with callback_receiver() as receiver:
            api = httpx.Client(base_url=quipu.api, headers={"Authorization": f"Bearer {quipu.key}"}, timeout=10)
            service = Service(quipu.api, quipu.key)
            receiver.on_accepted = service.accepted
            receiver.scripts["/flaky"] = [500, 500]  # fails twice, then takes it
            receiver.holds["/slow"] = HOLD_SECONDS  # Quipu is killed while this one is in flight

            registration = {
                "service_name": "order-service",
                "environment": "e2e",
                "base_url": receiver.base_url,
                "callbacks": {f"{node}-task": {"path": f"/{node}"} for node in NODES},
            }
            r = api.post("/callbacks/register", json=registration)
            assert r.status_code == 201, r.text
            receiver.secret = r.json()["secret"]
            flow = {
                "name": "served by callbacks",
                "definition": {
                    "nodes": [
                        {"id": "start", "type": "start"},
                        *({"id": node, "callback_id": f"{node}-task"} for node in NODES),
                        {"id": "end", "type": "end"},
                    ],
                    "edges": [{"from": a, "to": b} for a, b in zip(("start", *NODES), (*NODES, "end"), strict=True)],
                },
            }
            r = api.post("/workflows", json=flow)
            assert r.status_code == 201, r.text
            r = api.post("/executions", json={"workflow_id": r.json()["id"], "inputs": {"order": 42}})
            assert r.status_code == 201, r.text
            execution_id = r.json()["id"]

            # The slow node's delivery arrives and is held: kill Quipu with it in flight.
            _wait(lambda: receiver.received("/slow"), "the slow node's delivery")
            quipu.kill()
            time.sleep(1)
            quipu.start()

            def succeeded() -> bool:
                return api.get(f"/executions/{execution_id}").json()["status"] == "succeeded"

            _wait(succeeded, "the run to succeed")
            run = api.get(f"/executions/{execution_id}").json()
            assert all(run["state"].get(f"{node}_done") for node in NODES), run["state"]
            assert run["state"]["order"] == 42

            # Every delivery was signed, and the receiver's check passed.
            assert receiver.deliveries and all(d.verified for d in receiver.deliveries)
            for node in NODES:
                assert receiver.received(f"/{node}"), f"{node} was never delivered"
            # Retries: two failures, then accepted; one webhook-id across the attempts.
            flaky = receiver.received("/flaky")
            assert [d.answered for d in flaky] == [500, 500, 200]
            assert len({d.headers["webhook-id"] for d in flaky}) == 1
            # The in-flight delivery was made again after the restart, under the same id.
            slow = receiver.received("/slow")
            assert len(slow) >= 2 and len({d.headers["webhook-id"] for d in slow}) == 1

            # No node completed twice: one completion event per node, and the service's late
            # report of the held delivery was refused.
            _wait(lambda: sum(1 for n, _ in service.answers if n == "slow") >= 2, "the held answer", HOLD_SECONDS + 30)
            completed = [
                api.get(f"/event-dag/{e}").json()["payload"]["node_id"]
                for e in _events(database_url, execution_id, "execution.node_completed")
            ]
            assert sorted(completed) == sorted(["start", *NODES, "end"])
            assert sorted(s for n, s in service.answers if n == "slow") == [200, 409]

            # The attempts are events in the DAG, each caused by its node's scheduling event.
            attempts: dict[str, list[dict[str, Any]]] = {}
            for event_id in _events(database_url, execution_id, "delivery.attempted"):
                event = api.get(f"/event-dag/{event_id}").json()
                attempts.setdefault(event["payload"]["node_id"], []).append(event)
            flaky_attempts = attempts["flaky"]
            assert [(a["payload"]["attempt"], a["payload"]["status_code"]) for a in flaky_attempts] == [
                (1, 500),
                (2, 500),
                (3, 200),
            ]
            scheduling = flaky_attempts[0]["payload"]["scheduling_event_id"]
            assert all(scheduling in a["parent_ids"] for a in flaky_attempts)
            assert api.get(f"/event-dag/{scheduling}").json()["kind"] == "execution.node_scheduled"
            # The killed attempt was never recorded; the one after the restart was, once.
            assert [a["payload"]["attempt"] for a in attempts["slow"]] == [1]
            listed = api.get("/callbacks/flaky-task/deliveries").json()
            assert [a["outcome"] for a in listed["items"]] == ["failed", "failed", "delivered"]
    finally:
        quipu.stop()
