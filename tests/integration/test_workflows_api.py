"""Workflow definitions through the HTTP API, against real Postgres and NATS."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import Running

DEFINITION = {
    "nodes": [{"id": "fetch", "type": "task", "agent_type": "http"}, {"id": "summarise", "agent_type": "llm"}],
    "edges": [{"from": "fetch", "to": "summarise"}],
}


async def test_create_get_update_versions_and_delete(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    r = await c.post("/api/v1/workflows", json={"name": "digest", "definition": DEFINITION}, headers=h)
    assert r.status_code == 201, r.text
    wf = r.json()
    assert wf["definition_version"] == 1 and r.headers["etag"] == '"1"'
    changed = {**DEFINITION, "nodes": [*DEFINITION["nodes"], {"id": "notify"}]}
    r = await c.put(
        f"/api/v1/workflows/{wf['id']}",
        json={"name": "digest v2", "definition": changed},
        headers={**h, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["definition_version"] == 2
    # A stale If-Match is refused and nothing is appended.
    r = await c.put(
        f"/api/v1/workflows/{wf['id']}",
        json={"name": "lost", "definition": DEFINITION},
        headers={**h, "If-Match": '"1"'},
    )
    assert r.status_code == 412 and r.headers["content-type"].startswith("application/problem+json")
    old = (await c.get(f"/api/v1/workflows/{wf['id']}?version=1", headers=h)).json()
    assert old["name"] == "digest" and len(old["definition"]["nodes"]) == 2
    assert (await c.get(f"/api/v1/workflows/{wf['id']}", headers=h)).json()["name"] == "digest v2"
    assert (await c.delete(f"/api/v1/workflows/{wf['id']}", headers=h)).status_code == 204
    assert (await c.get(f"/api/v1/workflows/{wf['id']}", headers=h)).status_code == 404
    # The history stays: three events on the workflow's stream, chained.
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={wf['id']}", headers=h)).json()
    assert [n["kind"] for n in dag["nodes"]] == ["workflow.created", "workflow.updated", "workflow.deleted"]
    assert len(dag["edges"]) == 2


async def test_idempotent_create(quipu: Running) -> None:
    c = quipu.client
    h = {**quipu.auth(), "Idempotency-Key": "create-1"}
    body = {"name": "once", "definition": DEFINITION}
    first = await c.post("/api/v1/workflows", json=body, headers=h)
    again = await c.post("/api/v1/workflows", json=dict(reversed(list(body.items()))), headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await c.post("/api/v1/workflows", json={**body, "name": "different"}, headers=h)
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    events = (await c.get("/api/v1/event-dag/by-kind/workflow.created", headers=quipu.auth())).json()
    assert events["total"] == 1


async def test_concurrent_idempotent_creates_append_once(quipu: Running) -> None:
    h = {**quipu.auth(), "Idempotency-Key": "race"}
    body = {"name": "race", "definition": DEFINITION}
    results = await asyncio.gather(*[quipu.client.post("/api/v1/workflows", json=body, headers=h) for _ in range(8)])
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    events = (await quipu.client.get("/api/v1/event-dag/by-kind/0xa001", headers=quipu.auth())).json()
    assert events["total"] == 1


async def test_list_comes_from_the_projection_with_filters_and_paging(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    for i in range(5):
        r = await c.post("/api/v1/workflows", json={"name": f"wf-{i}", "definition": DEFINITION}, headers=h)
        assert r.status_code == 201
    await c.post(
        "/api/v1/workflows", json={"name": "other tenant", "definition": DEFINITION}, headers=quipu.auth("beta")
    )

    async def listed() -> bool:
        mine = (await c.get("/api/v1/workflows?limit=2&sort=name&order=asc", headers=h)).json()["total"]
        theirs = (await c.get("/api/v1/workflows", headers=quipu.auth("beta"))).json()["total"]
        return bool(mine == 5 and theirs == 1)

    await quipu.wait_for(listed)
    page = (await c.get("/api/v1/workflows?limit=2&offset=2&sort=name&order=asc", headers=h)).json()
    assert [w["name"] for w in page["items"]] == ["wf-2", "wf-3"]
    assert page["total"] == 5
    assert (await c.get("/api/v1/workflows?name=wf-4", headers=h)).json()["total"] == 1
    assert (await c.get("/api/v1/workflows", headers=quipu.auth("beta"))).json()["total"] == 1


async def test_invalid_definitions_get_every_problem_at_once(quipu: Running) -> None:
    bad = {
        "nodes": [{"id": "a"}, {"id": "a"}, {"id": "b"}],
        "edges": [{"from": "a", "to": "zzz"}, {"from": "b", "to": "a"}, {"from": "a", "to": "b"}],
    }
    r = await quipu.client.post("/api/v1/workflows", json={"name": "bad", "definition": bad}, headers=quipu.auth())
    assert r.status_code == 422
    codes = {e["code"] for e in r.json()["errors"]}
    assert {"duplicate_id", "dangling_edge", "cycle"} <= codes
    assert (await quipu.client.get("/api/v1/event-dag/by-kind/workflow.created", headers=quipu.auth())).json()[
        "total"
    ] == 0
