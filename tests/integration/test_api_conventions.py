"""Every failure is problem+json with a clear status; bad input never gives a 500."""

from __future__ import annotations

import time

from tests.integration.conftest import Running

DEFINITION = {"nodes": [{"id": "a"}]}


def _problem(r: object, status: int) -> dict[str, object]:
    assert r.status_code == status, (r.status_code, r.text)  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    for field in ("type", "title", "status", "detail", "instance", "trace_id"):
        assert field in body, field
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


async def test_missing_bad_and_under_scoped_keys(quipu: Running) -> None:
    c = quipu.client
    _problem(await c.get("/api/v1/workflows"), 401)
    _problem(await c.get("/api/v1/workflows", headers={"Authorization": "Bearer qk_nope"}), 401)
    r = await c.post(
        "/api/v1/workflows", json={"name": "w", "definition": DEFINITION}, headers=quipu.auth("acme-reader")
    )
    _problem(r, 403)
    assert (await c.get("/api/v1/workflows", headers=quipu.auth("acme-reader"))).status_code == 200
    _problem(await c.get("/api/v1/admin/projections", headers=quipu.auth("acme-reader")), 403)


async def test_unknown_fields_wrong_types_and_broken_json_are_422(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    body = _problem(
        await c.post("/api/v1/workflows", json={"name": "w", "definition": DEFINITION, "colour": 1}, headers=h), 422
    )
    assert body["errors"]
    body = _problem(await c.post("/api/v1/workflows", json={"name": 5, "definition": DEFINITION}, headers=h), 422)
    assert body["errors"][0]["field"] == "name"
    body = _problem(
        await c.post("/api/v1/workflows", json={"name": "w", "definition": {"nodes": [{"id": "a b"}]}}, headers=h), 422
    )
    assert "nodes[0].id" in body["errors"][0]["field"]
    body = _problem(
        await c.post("/api/v1/workflows", content=b"{not json", headers={**h, "Content-Type": "application/json"}), 400
    )
    assert "malformed" in str(body["detail"])
    _problem(await c.get("/api/v1/workflows?limit=0", headers=h), 422)
    _problem(await c.get("/api/v1/workflows?sort=password", headers=h), 422)


async def test_not_found_method_not_allowed_and_body_limit(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    _problem(await c.get("/api/v1/workflows/00000000-0000-0000-0000-000000000000", headers=h), 404)
    _problem(await c.get("/api/v1/nothing-here", headers=h), 404)
    _problem(await c.patch("/api/v1/workflows", headers=h), 405)
    huge = {"name": "w", "definition": DEFINITION, "description": "x" * 400_000}
    _problem(await c.post("/api/v1/workflows", json=huge, headers=h), 413)


async def test_conflict_on_deleted_workflow_and_bad_if_match(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "w", "definition": DEFINITION}, headers=h)).json()
    _problem(
        await c.put(
            f"/api/v1/workflows/{wf['id']}",
            json={"name": "x", "definition": DEFINITION},
            headers={**h, "If-Match": "garbage"},
        ),
        412,
    )
    assert (await c.delete(f"/api/v1/workflows/{wf['id']}", headers=h)).status_code == 204
    _problem(await c.delete(f"/api/v1/workflows/{wf['id']}", headers=h), 404)


async def test_health_ready_metrics_and_openapi(quipu: Running) -> None:
    c = quipu.client
    assert (await c.get("/health")).json()["status"] == "ok"
    ready = await c.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "nats": "ok"}
    await c.post("/api/v1/workflows", json={"name": "w", "definition": DEFINITION}, headers=quipu.auth())
    metrics = (await c.get("/metrics")).text
    assert "quipu_http_request_seconds" in metrics and "quipu_appends_total" in metrics
    schema = (await c.get("/docs/openapi.json")).json()
    ops = {op.get("operationId") for path in schema["paths"].values() for op in path.values() if isinstance(op, dict)}
    assert {"createWorkflow", "getAncestors", "verifyEvent", "createApiKey"} <= ops


async def test_api_keys_lifecycle_stores_only_hashes(quipu: Running, database_url: str) -> None:
    import psycopg

    c, h = quipu.client, quipu.auth()
    created = await c.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["read"]}, headers=h)
    assert created.status_code == 201
    secret = created.json()["key"]
    me = await c.get("/api/v1/tenants/current", headers={"Authorization": f"Bearer {secret}"})
    assert me.json() == {"id": "acme", "scopes": ["read"]}
    listed = (await c.get("/api/v1/api-keys", headers=h)).json()
    assert all("key" not in k for k in listed["items"]) and listed["total"] >= 3
    with psycopg.connect(database_url) as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM quipu_events WHERE position(%s in convert_from(state, 'UTF8')) > 0", (secret,)
        ).fetchone()
    assert leaked == (0,)
    revoked = await c.post(f"/api/v1/api-keys/{created.json()['id']}/revoke", headers=h)
    assert revoked.json()["revoked"] is True
    _problem(await c.get("/api/v1/tenants/current", headers={"Authorization": f"Bearer {secret}"}), 401)
    _problem(await c.post("/api/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=h), 422)


async def test_rate_limit_headers_and_429(database_url: str, nats_url: str, subjects: object) -> None:
    from tests.integration.conftest import running_quipu

    async with running_quipu(database_url, nats_url, subjects, background=False, rate_limit_per_minute=3) as q:  # type: ignore[arg-type]
        seen = [await q.client.get("/api/v1/workflows", headers=q.auth()) for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert seen[0].headers["x-ratelimit-limit"] == "3"
        assert [r.headers["x-ratelimit-remaining"] for r in seen[:3]] == ["2", "1", "0"]
        body = _problem(seen[3], 429)
        assert int(seen[3].headers["retry-after"]) >= 1 and "retry" in str(body["detail"])
        # X-RateLimit-Reset is the Unix time the window ends: Retry-After seconds from now
        reset = int(seen[3].headers["x-ratelimit-reset"])
        assert reset % 60 == 0 and abs(reset - (time.time() + int(seen[3].headers["retry-after"]))) <= 2
        assert (await q.client.get("/health")).status_code == 200  # probes are never throttled


async def test_database_outage_is_a_503_problem(database_url: str, nats_url: str, subjects: object) -> None:
    from tests.integration.conftest import running_quipu

    async with running_quipu(database_url, nats_url, subjects, background=False) as q:  # type: ignore[arg-type]
        headers = q.auth()
        await q.ctx.pool.close()  # reads now cannot get a connection
        body = _problem(await q.client.get("/api/v1/workflows", headers=headers), 503)
        assert body["type"].endswith("/unavailable")  # type: ignore[union-attr]


async def test_wrong_content_type_is_415(quipu: Running) -> None:
    r = await quipu.client.post(
        "/api/v1/workflows",
        content=b"name=w",
        headers={**quipu.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    _problem(r, 415)
