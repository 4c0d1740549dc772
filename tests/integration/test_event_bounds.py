"""Limits that agree end to end (docs/architecture.md, Bounds): body < largest event < bus message.

No event, however it got big, can be appended above the event bound (413, nothing
written), and one the bus still refuses is recorded and passed by: every other event
of every tenant keeps flowing to NATS and the read models.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bus.subjects import Subjects
from quipu.embedded import EmbeddedNats
from tests.integration.pipeline_support import SMALL, log_head, metric, quipu_with, rows, workflows_total
from tests.integration.test_relay_faults import stream_contents, wait_relayed

MIB = 1 << 20


def _body_of(size: int, name: str) -> bytes:
    """A workflow create whose JSON body is exactly ``size`` bytes (metadata padding)."""
    empty = json.dumps({"name": name, "definition": SMALL, "metadata": {"blob": ""}}).encode()
    return json.dumps({"name": name, "definition": SMALL, "metadata": {"blob": "x" * (size - len(empty))}}).encode()


async def test_big_bodies_then_a_thousand_commands_of_two_tenants_all_arrive(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with quipu_with(database_url, nats_url, subjects) as q:  # the real 1 MiB body limit
        created = {"acme": 0, "beta": 0}
        statuses: dict[float, int] = {}
        for mib in (0.5, 0.99, 1.0, 2.0):
            body = _body_of(int(mib * MIB), f"big-{mib}")
            assert len(body) == int(mib * MIB)
            r = await q.client.post(
                "/api/v1/workflows", content=body, headers={**q.auth(), "Content-Type": "application/json"}
            )
            statuses[mib] = r.status_code
            assert r.status_code in (201, 413), (mib, r.status_code, r.text[:300])
            if r.status_code == 413:
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["status"] == 413
            else:
                created["acme"] += 1
        assert statuses[0.5] == 201 and statuses[0.99] == 201 and statuses[2.0] == 413

        async def create(tenant: str, i: int) -> None:
            r = await q.client.post(
                "/api/v1/workflows", json={"name": f"{tenant}-{i}", "definition": SMALL}, headers=q.auth(tenant)
            )
            assert r.status_code == 201, r.text

        for start in range(0, 500, 50):  # 1,000 commands, 50 at a time, the tenants interleaved
            await asyncio.gather(*(create(t, i) for i in range(start, start + 50) for t in ("acme", "beta")))
        created = {t: n + 500 for t, n in created.items()}

        async def all_listed() -> bool:
            return all([await workflows_total(q, t) == n for t, n in created.items()])

        await q.wait_for(all_listed, timeout=120)
        assert await metric(q, "quipu_relay_unpublishable_total") >= 0  # the series exists
        assert not await rows(database_url, "SELECT 1 FROM event_dag WHERE kind = 'system.event_unpublishable'")


CHAIN = {
    "nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
}


async def test_an_event_that_outgrew_its_body_is_refused_whole(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    """Each completion's body is under the 256 KiB body limit, but the checkpoint taken with
    it carries the merged state of every node so far: the second one would exceed the
    300 KiB event bound, so the whole completion is refused and nothing is appended."""
    async with quipu_with(database_url, nats_url, subjects, max_body_bytes=256 * 1024, max_event_bytes=300 * 1024) as q:
        c, h = q.client, q.auth()
        r = await c.post("/api/v1/workflows", json={"name": "grow", "definition": CHAIN}, headers=h)
        assert r.status_code == 201, r.text
        r = await c.post("/api/v1/executions", json={"workflow_id": r.json()["id"]}, headers=h)
        assert r.status_code == 201, r.text
        base = f"/api/v1/executions/{r.json()['id']}"
        r = await c.post(f"{base}/nodes/a/complete", json={"output": {"a": "x" * 100_000}}, headers=h)
        assert r.status_code == 200, r.text

        before = await log_head(database_url)
        r = await c.post(f"{base}/nodes/b/complete", json={"output": {"b": "y" * 100_000}}, headers=h)
        assert r.status_code == 413, r.text
        problem: dict[str, Any] = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 413 and "execution.checkpoint_taken" in problem["detail"]
        assert await log_head(database_url) == before  # not the completion either
        ex = (await c.get(base, headers=h)).json()
        assert "b" not in ex["state"] and ex["status"] == "running"
        # A smaller output still completes the node.
        r = await c.post(f"{base}/nodes/b/complete", json={"output": {"b": "small"}}, headers=h)
        assert r.status_code == 200, r.text


@pytest.fixture
def small_nats(tmp_path: Path) -> Any:
    server = EmbeddedNats(tmp_path / "nats", max_payload=64 * 1024)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_an_event_the_bus_refuses_is_recorded_and_the_rest_flow(
    database_url: str, small_nats: EmbeddedNats, subjects: Subjects
) -> None:
    async with quipu_with(database_url, small_nats.endpoint, subjects, max_body_bytes=256 * 1024) as q:
        c, h = q.client, q.auth()
        names = [f"small-{i}" for i in range(10)] + ["too-big"] + [f"after-{i}" for i in range(10)]
        ids: dict[str, str] = {}
        for name in names:
            metadata = {"blob": "z" * 100_000} if name == "too-big" else {}
            tenant = "beta" if name.endswith("-3") else "acme"
            r = await c.post(
                "/api/v1/workflows",
                json={"name": name, "definition": SMALL, "metadata": metadata},
                headers=q.auth(tenant),
            )
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]

        unpublishable = (
            "SELECT event_id, parent_ids, tenant_id FROM event_dag WHERE kind = 'system.event_unpublishable'"
        )

        async def all_listed() -> bool:  # the big one too: projectors read it from the log
            # A projector may read later events from the log (after any hint) before the relay
            # has appended its record of the refused one, so wait for both.
            listed = await workflows_total(q, "acme") == 19 and await workflows_total(q, "beta") == 2
            return listed and bool(await rows(database_url, unpublishable))

        await q.wait_for(all_listed, timeout=60)
        big = await rows(
            database_url,
            "SELECT event_id, notification_id FROM event_dag WHERE kind = 'workflow.created' AND stream_id = %s",
            ids["too-big"],
        )
        big_event, big_position = str(big[0][0]), int(big[0][1])
        records = await rows(database_url, unpublishable)
        assert len(records) == 1 and [str(p) for p in records[0][1]] == [big_event] and records[0][2] == "acme"

        # Every other event reached JetStream, once each, in log order.
        await wait_relayed(database_url)
        published = await stream_contents(small_nats.endpoint, subjects)
        logged = [
            (str(e), int(n))
            for e, n in await rows(database_url, "SELECT event_id, notification_id FROM event_dag ORDER BY 2")
        ]
        assert published == [(e, n) for e, n in logged if e != big_event]

        r = await c.get("/api/v1/admin/projections", headers=h)
        assert r.status_code == 200, r.text
        for status in r.json():
            assert status["position"] == status["head"] == logged[-1][1], status["name"]
            [item] = status["unpublishable"]
            assert item["event_id"] == big_event and item["notification_id"] == big_position
            assert item["kind"] == "workflow.created" and item["size"] > 100_000
            assert "max_payload" in item["reason"] and item["record_event_id"] == str(records[0][0])
        other = (await c.get("/api/v1/admin/projections", headers=q.auth("beta"))).json()
        assert all(s["unpublishable"] == [] for s in other)  # another tenant's event is not shown
        assert await metric(q, "quipu_relay_unpublishable_total") >= 1
        # Later events still flow.
        r = await c.post("/api/v1/workflows", json={"name": "later", "definition": SMALL}, headers=h)
        assert r.status_code == 201

        async def later_listed() -> bool:
            return await workflows_total(q, "acme") == 20

        await q.wait_for(later_listed)
