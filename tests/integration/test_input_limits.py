"""Bad input is a clear 4xx (docs/architecture.md, Bounds): NUL characters, deep JSON and out-of-range paging are
refused with 422 naming the field before any command runs, and a tenant cannot lose its last
admin key."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.input_limits import MAX_JSON_DEPTH
from api.pagination import MAX_OFFSET
from commands.schema import EVENTS_TABLE
from tests.integration.conftest import Running

W = "/api/v1/workflows"
DEFINITION = {"nodes": [{"id": "a"}]}


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


async def _log_size(q: Running) -> int:
    async with q.ctx.pool.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) AS n FROM {EVENTS_TABLE}")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (W, {"name": "bad\x00name", "definition": DEFINITION}, "name"),
        (W, {"name": "w", "definition": DEFINITION, "metadata": {"bad\x00key": 1}}, "metadata.bad\\u0000key"),
        (W, {"name": "w", "definition": DEFINITION, "metadata": {"k": {"d": ["ok", "v\x00"]}}}, "metadata.k.d[1]"),
        ("/api/v1/notes", {"title": "t", "content": "before\x00after", "note_type": "fact"}, "content"),
        ("/api/v1/search", {"query": "find\x00me"}, "query"),
    ],
)
async def test_nul_in_a_body_is_422_naming_the_field_and_appends_nothing(
    quipu: Running, path: str, body: dict[str, Any], field: str
) -> None:
    before = await _log_size(quipu)
    problem = _problem(await quipu.client.post(path, json=body, headers=quipu.auth()), 422)
    assert _fields(problem) == {field}
    assert problem["errors"][0]["code"] == "nul_character"
    assert await _log_size(quipu) == before
    # the same request without the NUL is fine (the check is about NUL, not the request)
    clean = json.loads(json.dumps(body).replace("\\u0000", ""))
    assert (await quipu.client.post(path, json=clean, headers=quipu.auth())).status_code in (200, 201)


async def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(quipu: Running) -> None:
    r = await quipu.client.post(W, json={"name": "literally \\u0000", "definition": DEFINITION}, headers=quipu.auth())
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "literally \\u0000"


async def test_nul_in_query_and_path_parameters_is_422(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    before = await _log_size(quipu)
    assert _fields(_problem(await c.get(W, params={"name": "a\x00b"}, headers=h), 422)) == {"query.name"}
    executions = "/api/v1/executions/00000000-0000-0000-0000-000000000001"
    r = await c.get(f"{executions}/timeline", params={"node": "\x00"}, headers=h)
    assert _fields(_problem(r, 422)) == {"query.node"}
    r = await c.get(f"{executions}/state", params={"as_of": "1\x00"}, headers=h)
    assert _fields(_problem(r, 422)) == {"query.as_of"}
    r = await c.get("/api/v1/event-dag/by-kind/workflow.created%00", headers=h)
    assert _fields(_problem(r, 422)) == {"path.kind"}
    r = await c.post(f"{executions}/nodes/a%00b/heartbeat", json={}, headers=h)
    assert _fields(_problem(r, 422)) == {"path.node_id"}
    assert await _log_size(quipu) == before


async def test_json_nested_past_the_limit_is_422_and_the_limit_itself_is_fine(quipu: Running) -> None:
    c, h = quipu.client, {**quipu.auth(), "Content-Type": "application/json"}

    def nested(depth: int) -> bytes:
        """A valid workflow whose body nests ``depth`` levels: the body's object is level 1,
        metadata level 2, and arrays in metadata.x the rest."""
        inner = "[" * (depth - 2) + "]" * (depth - 2)
        return f'{{"name": "w", "definition": {{"nodes": [{{"id": "a"}}]}}, "metadata": {{"x": {inner}}}}}'.encode()

    for depth in (MAX_JSON_DEPTH + 1, 1_000, 10_000):
        problem = _problem(await c.post(W, content=nested(depth), headers=h), 422)
        assert problem["errors"][0]["code"] == "too_deep"
    ok = await c.post(W, content=nested(MAX_JSON_DEPTH), headers=h)
    assert ok.status_code == 201, ok.text
    # brackets inside strings are text, not nesting
    text = {"name": "w", "definition": DEFINITION, "metadata": {"s": "[" * 10_000, "t": "{\\" * 5_000}}
    assert (await c.post(W, json=text, headers=h)).status_code == 201
    # 10,000 levels without a single closing bracket: still 422, never a RecursionError
    _problem(await c.post(W, content=b'{"metadata": ' + b"[" * 10_000, headers=h), 422)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # A body is typed as its schema reads: 0 is not false, "1" is not 1.
        (
            W,
            {"name": "w", "definition": {"nodes": [{"id": "a", "max_retries": "1"}]}},
            "definition.nodes[0].max_retries",
        ),
        (W, {"name": "w", "definition": {"nodes": [{"id": "a", "timeout": "30"}]}}, "definition.nodes[0].timeout"),
        ("/api/v1/search", {"query": "q", "include_expired": 0}, "include_expired"),
    ],
)
async def test_a_body_is_decoded_strictly_not_coerced(
    quipu: Running, path: str, body: dict[str, Any], field: str
) -> None:
    before = await _log_size(quipu)
    problem = _problem(await quipu.client.post(path, json=body, headers=quipu.auth()), 422)
    assert _fields(problem) == {field} and problem["errors"][0]["code"] == "invalid"
    assert await _log_size(quipu) == before


@pytest.mark.parametrize(
    "path",
    [W, "/api/v1/executions", "/api/v1/notes", "/api/v1/artifacts", "/api/v1/edges", "/api/v1/api-keys"],
)
async def test_out_of_range_paging_is_422_naming_the_parameter(quipu: Running, path: str) -> None:
    c, h = quipu.client, quipu.auth()
    for params, name in [
        ({"offset": "99999999999999999999999"}, "offset"),
        ({"offset": str(MAX_OFFSET + 1)}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "99999999999999999999999"}, "limit"),
    ]:
        problem = _problem(await c.get(path, params=params, headers=h), 422)
        assert name in _fields(problem), (params, problem)
    r = await c.get(path, params={"offset": str(MAX_OFFSET), "limit": "1000"}, headers=h)
    assert r.status_code == 200 and r.json()["items"] == []


async def test_other_integer_parameters_are_bounded(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    huge = "99999999999999999999999"
    wf = (await c.post(W, json={"name": "w", "definition": DEFINITION}, headers=h)).json()
    assert "version" in _fields(_problem(await c.get(f"{W}/{wf['id']}", params={"version": huge}, headers=h), 422))
    r = await c.get("/api/v1/event-dag/by-kind/workflow.created", params={"min_depth": huge}, headers=h)
    assert "min_depth" in _fields(_problem(r, 422))
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "version": int(huge)}, headers=h)
    assert "version" in _fields(_problem(r, 422))


async def test_the_last_admin_key_cannot_be_revoked(quipu: Running) -> None:
    c = quipu.client
    admin = quipu.auth("beta")  # beta has one admin key
    keys = (await c.get("/api/v1/api-keys", headers=admin)).json()["items"]
    (own,) = [k for k in keys if "admin" in k["scopes"] and not k["revoked"]]

    before = await _log_size(quipu)
    problem = _problem(await c.post(f"/api/v1/api-keys/{own['id']}/revoke", headers=admin), 409)
    assert "last active admin key" in problem["detail"]
    assert await _log_size(quipu) == before
    assert (await c.get("/api/v1/api-keys", headers=admin)).status_code == 200  # the key still works

    # non-admin keys come and go freely; with a second admin key, the first may go
    reader = (await c.post("/api/v1/api-keys", json={"name": "r", "scopes": ["read"]}, headers=admin)).json()
    assert (await c.post(f"/api/v1/api-keys/{reader['id']}/revoke", headers=admin)).status_code == 200
    second = (await c.post("/api/v1/api-keys", json={"name": "a2", "scopes": ["admin"]}, headers=admin)).json()
    assert (await c.post(f"/api/v1/api-keys/{own['id']}/revoke", headers=admin)).status_code == 200
    # ... and now the second one is the last
    other = {"Authorization": f"Bearer {second['key']}"}
    _problem(await c.post(f"/api/v1/api-keys/{second['id']}/revoke", headers=other), 409)
    assert (await c.get("/api/v1/tenants/current", headers=other)).json()["id"] == "beta"


async def test_two_admins_revoking_each_other_at_once_leave_one(quipu: Running) -> None:
    c = quipu.client
    first = quipu.auth("beta")
    keys = (await c.get("/api/v1/api-keys", headers=first)).json()["items"]
    (one,) = [k for k in keys if "admin" in k["scopes"]]
    two = (await c.post("/api/v1/api-keys", json={"name": "a2", "scopes": ["admin"]}, headers=first)).json()
    second = {"Authorization": f"Bearer {two['key']}"}
    assert (await c.get("/api/v1/tenants/current", headers=second)).status_code == 200  # warm the auth cache
    answers = await asyncio.gather(
        c.post(f"/api/v1/api-keys/{two['id']}/revoke", headers=first),
        c.post(f"/api/v1/api-keys/{one['id']}/revoke", headers=second),
    )
    # the loser is refused as the last admin (409), or finds its own key already revoked (401)
    assert sorted(r.status_code for r in answers)[0] == 200 and {r.status_code for r in answers} != {200}
    survivor = first if answers[0].status_code == 200 else second
    keys = (await c.get("/api/v1/api-keys", headers=survivor)).json()
    assert sum(1 for k in keys["items"] if "admin" in k["scopes"] and not k["revoked"]) == 1
