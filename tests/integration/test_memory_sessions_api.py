"""Trajectories, scopes and turns over HTTP: CRUD, nesting, budgets, sequences under
concurrency, the link to a running execution node, tenancy and bad input."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import psycopg

from tests.integration.conftest import Running

T, S, U = "/api/v1/trajectories", "/api/v1/scopes", "/api/v1/turns"


async def _post(q: Running, path: str, body: dict[str, Any], tenant: str = "acme", status: int = 201) -> Any:
    r = await q.client.post(path, json=body, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    return r.json()


async def _session(q: Running, budget: int = 1000) -> tuple[dict[str, Any], dict[str, Any]]:
    trajectory = await _post(q, T, {"name": "research"})
    scope = await _post(q, S, {"trajectory_id": trajectory["trajectory_id"], "name": "s", "token_budget": budget})
    return trajectory, scope


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()  # type: ignore[no-any-return]


async def test_trajectories_nest_list_with_filters_finish_and_delete(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    agent = "2b1e3b65-2c04-4fa2-a2d7-467901e98978"
    r = await c.post(T, json={"name": "root", "agent_id": agent, "metadata": {"k": 1}}, headers=h)
    assert r.status_code == 201 and r.headers["location"] == f"{T}/{r.json()['trajectory_id']}"
    root = r.json()
    assert root["status"] == "active" and root["root_trajectory_id"] == root["trajectory_id"]
    assert root["_links"]["children"].endswith("/children")
    child = await _post(quipu, T, {"name": "child", "parent_trajectory_id": root["trajectory_id"]})
    grandchild = await _post(quipu, T, {"name": "gc", "parent_trajectory_id": child["trajectory_id"]})
    assert grandchild["root_trajectory_id"] == root["trajectory_id"]
    assert grandchild["parent_trajectory_id"] == child["trajectory_id"]

    # idempotent create: the same key answers the first creation again
    keyed = {**h, "Idempotency-Key": "t-1"}
    first = await c.post(T, json={"name": "once"}, headers=keyed)
    again = await c.post(T, json={"name": "once"}, headers=keyed)
    assert first.json()["trajectory_id"] == again.json()["trajectory_id"]
    assert again.headers["idempotent-replayed"] == "true"
    _problem(await c.post(T, json={"name": "other"}, headers=keyed), 422)

    base = f"{T}/{child['trajectory_id']}"
    r = await c.patch(base, json={"name": "renamed", "status": "suspended"}, headers=h)
    assert r.status_code == 200 and (r.json()["name"], r.json()["status"]) == ("renamed", "suspended")
    r = await c.post(f"{base}/complete", json={"outcome": {"summary": "found it"}}, headers=h)
    done = r.json()
    assert done["status"] == "completed" and done["outcome"] == {"summary": "found it"} and done["completed_at"]
    _problem(await c.post(f"{base}/complete", headers=h), 409)
    _problem(await c.post(f"{base}/fail", json={"error": "late"}, headers=h), 409)
    _problem(await c.patch(base, json={"status": "active"}, headers=h), 409)
    _problem(await c.post(T, json={"name": "x", "parent_trajectory_id": child["trajectory_id"]}, headers=h), 409)
    failed = (await c.post(f"{T}/{grandchild['trajectory_id']}/fail", json={"error": "boom"}, headers=h)).json()
    assert (failed["status"], failed["error"]) == ("failed", "boom")

    async def listed() -> bool:
        page = (await c.get(f"{T}?limit=100", headers=h)).json()
        statuses = sorted(i["status"] for i in page["items"])
        return bool(page["total"] == 4 and statuses == ["active", "active", "completed", "failed"])

    await quipu.wait_for(listed)
    by_agent = (await c.get(f"{T}?agent_id={agent}", headers=h)).json()
    assert [i["trajectory_id"] for i in by_agent["items"]] == [root["trajectory_id"]]
    assert by_agent["items"][0]["metadata"] == {"k": 1}
    completed = (await c.get(f"{T}?status=completed", headers=h)).json()["items"]
    assert [i["name"] for i in completed] == ["renamed"]
    kids = (await c.get(f"{T}?parent_trajectory_id={root['trajectory_id']}", headers=h)).json()
    assert kids["total"] == 1 and kids["items"][0]["trajectory_id"] == child["trajectory_id"]
    children = (await c.get(f"{T}/{root['trajectory_id']}/children", headers=h)).json()
    assert [i["trajectory_id"] for i in children["items"]] == [child["trajectory_id"]]
    paged = (await c.get(f"{T}?limit=2&offset=2", headers=h)).json()
    assert paged["total"] == 4 and len(paged["items"]) == 2 and paged["offset"] == 2

    # delete is a tombstone: gone from reads, kept in the log
    assert (await c.delete(f"{T}/{root['trajectory_id']}", headers=h)).status_code == 204
    _problem(await c.get(f"{T}/{root['trajectory_id']}", headers=h), 404)
    _problem(await c.delete(f"{T}/{root['trajectory_id']}", headers=h), 404)
    _problem(await c.get(f"{T}/{root['trajectory_id']}/children", headers=h), 404)
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={root['trajectory_id']}", headers=h)).json()
    kinds = [n["kind"] for n in dag["nodes"]]
    assert "trajectory.created" in kinds and "trajectory.deleted" in kinds and "trajectory.completed" in kinds

    async def gone() -> bool:
        return bool((await c.get(f"{T}?limit=100", headers=h)).json()["total"] == 3)

    await quipu.wait_for(gone)


async def test_scopes_nest_keep_budgets_checkpoint_and_close(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    trajectory, outer = await _session(quipu, budget=100)
    tid = trajectory["trajectory_id"]
    assert (outer["tokens_used"], outer["is_active"], outer["checkpoint"]) == (0, True, None)
    inner = await _post(
        quipu, S, {"trajectory_id": tid, "name": "in", "token_budget": 10, "parent_scope_id": outer["scope_id"]}
    )
    other, _ = await _session(quipu)
    r = await c.post(
        S,
        json={
            "trajectory_id": other["trajectory_id"],
            "name": "x",
            "token_budget": 5,
            "parent_scope_id": outer["scope_id"],
        },
        headers=h,
    )
    assert _problem(r, 422)["errors"][0]["field"] == "parent_scope_id"
    _problem(await c.post(S, json={"trajectory_id": tid, "name": "x", "token_budget": 0}, headers=h), 422)

    base = f"{S}/{outer['scope_id']}"
    await _post(quipu, U, {"scope_id": outer["scope_id"], "role": "user", "content": "q", "token_count": 60})
    r = await c.post(
        U, json={"scope_id": outer["scope_id"], "role": "assistant", "content": "a", "token_count": 41}, headers=h
    )
    assert "budget" in _problem(r, 409)["detail"]
    assert (await c.get(base, headers=h)).json()["tokens_used"] == 60
    _problem(await c.patch(base, json={"token_budget": 59}, headers=h), 409)
    r = await c.patch(base, json={"token_budget": 200, "purpose": "planning"}, headers=h)
    assert (r.json()["token_budget"], r.json()["purpose"], r.json()["name"]) == (200, "planning", "s")

    state = base64.b64encode(b"\x00\x01context").decode()
    r = await c.post(f"{base}/checkpoint", json={"context_state": state, "recoverable": True}, headers=h)
    assert r.status_code == 201 and r.json()["context_state"] == state and r.json()["recoverable"] is True
    _problem(
        await c.post(f"{base}/checkpoint", json={"context_state": "not base64!", "recoverable": True}, headers=h), 422
    )
    assert (await c.get(base, headers=h)).json()["checkpoint"]["context_state"] == state

    async def listed() -> bool:
        page = (await c.get(f"{T}/{tid}/scopes", headers=h)).json()
        return bool(page["total"] == 2 and page["items"][0]["tokens_used"] == 60 and page["items"][0]["checkpoint"])

    await quipu.wait_for(listed)
    nested = (await c.get(f"{S}?parent_scope_id={outer['scope_id']}", headers=h)).json()
    assert [i["scope_id"] for i in nested["items"]] == [inner["scope_id"]]

    closed = (await c.post(f"{base}/close", headers=h)).json()
    assert closed["is_active"] is False and closed["closed_at"]
    _problem(await c.post(f"{base}/close", headers=h), 409)
    _problem(await c.post(U, json={"scope_id": outer["scope_id"], "role": "user", "content": "late"}, headers=h), 409)
    _problem(await c.post(f"{base}/checkpoint", json={"context_state": state, "recoverable": False}, headers=h), 409)
    r = await c.post(
        S, json={"trajectory_id": tid, "name": "x", "token_budget": 5, "parent_scope_id": outer["scope_id"]}, headers=h
    )
    _problem(r, 409)

    async def inactive() -> bool:
        page = (await c.get(f"{S}?trajectory_id={tid}&is_active=false", headers=h)).json()
        return bool(page["total"] == 1)

    await quipu.wait_for(inactive)
    assert (await c.delete(f"{S}/{inner['scope_id']}", headers=h)).status_code == 204
    _problem(await c.get(f"{S}/{inner['scope_id']}", headers=h), 404)
    await c.post(f"{T}/{tid}/complete", headers=h)
    _problem(await c.post(S, json={"trajectory_id": tid, "name": "late", "token_budget": 5}, headers=h), 409)


async def test_turns_are_sequenced_edited_listed_and_deleted(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    trajectory, scope = await _session(quipu)
    sid = scope["scope_id"]
    first = await _post(quipu, U, {"scope_id": sid, "role": "user", "content": "hello", "token_count": 5})
    assert (first["sequence"], first["trajectory_id"], first["tool_calls"]) == (1, trajectory["trajectory_id"], None)
    calls = [{"id": "c1", "name": "search", "arguments": {"q": "x"}}]
    second = await _post(
        quipu, U, {"scope_id": sid, "role": "assistant", "content": "", "tool_calls": calls, "token_count": 7}
    )
    tool = await _post(
        quipu, U, {"scope_id": sid, "role": "tool", "content": "r", "tool_results": {"c1": "ok"}, "sequence": 9}
    )
    assert (second["sequence"], second["tool_calls"], tool["sequence"]) == (2, calls, 9)
    assert (await _post(quipu, U, {"scope_id": sid, "role": "system", "content": "s"}))["sequence"] == 10
    r = await c.post(U, json={"scope_id": sid, "role": "user", "content": "dup", "sequence": 2}, headers=h)
    assert "sequence 2" in _problem(r, 409)["detail"]
    got = (await c.get(f"{U}/{first['turn_id']}", headers=h)).json()
    assert got["content"] == "hello" and got["_links"]["scope"] == f"{S}/{sid}"

    r = await c.patch(f"{U}/{first['turn_id']}", json={"content": "hello!", "metadata": {"edited": True}}, headers=h)
    assert (r.json()["content"], r.json()["metadata"], r.json()["sequence"], r.json()["version"]) == (
        "hello!",
        {"edited": True},
        1,
        2,
    )
    _problem(await c.patch(f"{U}/{first['turn_id']}", json={"content": "x"}, headers={**h, "If-Match": '"1"'}), 412)
    assert (await c.delete(f"{U}/{tool['turn_id']}", headers=h)).status_code == 204
    _problem(await c.get(f"{U}/{tool['turn_id']}", headers=h), 404)
    _problem(await c.patch(f"{U}/{tool['turn_id']}", json={"content": "x"}, headers=h), 404)
    assert (await c.get(f"{S}/{sid}", headers=h)).json()["tokens_used"] == 12  # spent tokens stay counted

    async def listed() -> bool:
        page = (await c.get(f"{S}/{sid}/turns", headers=h)).json()
        return bool(page["total"] == 3 and page["items"][0]["content"] == "hello!")

    await quipu.wait_for(listed)
    page = (await c.get(f"{S}/{sid}/turns", headers=h)).json()
    assert [i["sequence"] for i in page["items"]] == [1, 2, 10]
    assert (await c.get(f"{S}/{sid}/turns?role=assistant", headers=h)).json()["items"][0]["tool_calls"] == calls
    by_trajectory = (await c.get(f"{U}?trajectory_id={trajectory['trajectory_id']}&role=user", headers=h)).json()
    assert [i["turn_id"] for i in by_trajectory["items"]] == [first["turn_id"]]
    assert (await c.get(f"{S}/{sid}/turns?limit=1&offset=1", headers=h)).json()["items"][0]["sequence"] == 2


async def test_concurrent_turns_in_one_scope_get_distinct_sequences(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    _, scope = await _session(quipu)
    sid = scope["scope_id"]
    posts = [
        c.post(U, json={"scope_id": sid, "role": "user", "content": f"t{i}", "token_count": i}, headers=h)
        for i in range(10)
    ]
    answers = await asyncio.gather(*posts)
    assert [r.status_code for r in answers] == [201] * 10, [r.text for r in answers if r.status_code != 201]
    assert sorted(r.json()["sequence"] for r in answers) == list(range(1, 11))
    got = (await c.get(f"{S}/{sid}", headers=h)).json()
    assert (got["tokens_used"], got["turn_count"]) == (45, 10)
    # Each turn's event sits under the scope event that gave it its sequence.
    for r in answers:
        event = (await c.get(f"/api/v1/event-dag/{r.json()['last_event_id']}", headers=h)).json()
        (parent,) = event["parent_ids"]
        appended = (await c.get(f"/api/v1/event-dag/{parent}", headers=h)).json()
        assert appended["kind"] == "scope.turn_appended" and appended["payload"]["sequence"] == r.json()["sequence"]

    # Retries of one request (same Idempotency-Key), even concurrent ones, record one turn.
    keyed = {**h, "Idempotency-Key": "turn-11"}
    retries = await asyncio.gather(
        *(c.post(U, json={"scope_id": sid, "role": "user", "content": "once"}, headers=keyed) for _ in range(3))
    )
    assert {r.status_code for r in retries} == {201} and len({r.json()["turn_id"] for r in retries}) == 1
    assert {r.json()["sequence"] for r in retries} == {11}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in retries) == 2
    assert (await c.get(f"{S}/{sid}", headers=h)).json()["turn_count"] == 11

    async def listed() -> bool:
        page = (await c.get(f"{S}/{sid}/turns", headers=h)).json()
        return bool([i["sequence"] for i in page["items"]] == list(range(1, 12)))

    await quipu.wait_for(listed)


FLOW = {
    "nodes": [{"id": "start", "type": "start"}, {"id": "work", "agent_type": "llm"}, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "work"}, {"from": "work", "to": "end"}],
}


async def test_a_turn_from_a_running_node_has_the_nodes_event_as_parent(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    _, scope = await _session(quipu)
    wf = await _post(quipu, "/api/v1/workflows", {"name": "agent", "definition": FLOW})
    ex = await _post(quipu, "/api/v1/executions", {"workflow_id": wf["id"]})
    assert ex["nodes"]["work"] == "scheduled"
    body = {
        "scope_id": scope["scope_id"],
        "role": "assistant",
        "content": "thinking",
        "execution_id": ex["id"],
        "node_id": "work",
    }
    turn = await _post(quipu, U, body)
    assert (turn["execution_id"], turn["node_id"]) == (ex["id"], "work")
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={ex['id']}", headers=h)).json()
    scheduled = next(
        n for n in dag["nodes"] if n["kind"] == "execution.node_scheduled" and n["payload"]["node_id"] == "work"
    )
    event = (await c.get(f"/api/v1/event-dag/{turn['last_event_id']}", headers=h)).json()
    assert event["kind"] == "turn.recorded" and scheduled["event_id"] in event["parent_ids"]
    ancestors = (await c.get(f"/api/v1/event-dag/{turn['last_event_id']}/ancestors?max_depth=10", headers=h)).json()
    assert {"execution.started", "scope.opened", "trajectory.created"} <= {
        i["event"]["kind"] for i in ancestors["items"]
    }

    async def by_execution() -> bool:
        page = (await c.get(f"{U}?execution_id={ex['id']}", headers=h)).json()
        return bool(page["total"] == 1 and page["items"][0]["turn_id"] == turn["turn_id"])

    await quipu.wait_for(by_execution)
    _problem(await c.post(U, json={**body, "node_id": "nope"}, headers=h), 404)
    _problem(await c.post(U, json={**body, "node_id": "start"}, headers=h), 409)  # already finished
    _problem(await c.post(U, json={**body, "execution_id": scope["scope_id"]}, headers=h), 404)
    assert _problem(await c.post(U, json={k: v for k, v in body.items() if k != "node_id"}, headers=h), 422)["errors"]
    _problem(await c.post(U, json=body, headers=quipu.auth("beta")), 404)
    await c.post(f"/api/v1/executions/{ex['id']}/nodes/work/complete", json={"output": {}}, headers=h)
    _problem(await c.post(U, json=body, headers=h), 409)  # the node is no longer running
    assert (await c.get(f"{S}/{scope['scope_id']}", headers=h)).json()["turn_count"] == 1  # refusals left no trace


async def test_another_tenant_sees_and_touches_nothing(quipu: Running) -> None:
    c, beta = quipu.client, quipu.auth("beta")
    trajectory, scope = await _session(quipu)
    turn = await _post(quipu, U, {"scope_id": scope["scope_id"], "role": "user", "content": "secret"})
    tid, sid = trajectory["trajectory_id"], scope["scope_id"]
    for path in (
        f"{T}/{tid}",
        f"{S}/{sid}",
        f"{U}/{turn['turn_id']}",
        f"{T}/{tid}/children",
        f"{T}/{tid}/scopes",
        f"{S}/{sid}/turns",
    ):
        _problem(await c.get(path, headers=beta), 404)
    for path in (f"{T}/{tid}", f"{S}/{sid}", f"{U}/{turn['turn_id']}"):
        _problem(await c.patch(path, json={"metadata": {"x": 1}}, headers=beta), 404)
        _problem(await c.delete(path, headers=beta), 404)
    _problem(await c.post(f"{T}/{tid}/complete", headers=beta), 404)
    _problem(await c.post(f"{S}/{sid}/close", headers=beta), 404)
    _problem(await c.post(S, json={"trajectory_id": tid, "name": "x", "token_budget": 5}, headers=beta), 404)
    _problem(await c.post(U, json={"scope_id": sid, "role": "user", "content": "x"}, headers=beta), 404)
    _problem(await c.post(T, json={"name": "x", "parent_trajectory_id": tid}, headers=beta), 404)
    _problem(await c.post(T, json={"name": "x", "caused_by": [turn["last_event_id"]]}, headers=beta), 422)
    _problem(await c.post(T, json={"name": "x"}, headers=quipu.auth("acme-reader")), 403)

    async def projected() -> bool:
        return bool((await c.get(f"{S}/{sid}/turns", headers=quipu.auth())).json()["total"] == 1)

    await quipu.wait_for(projected)
    for path in (T, S, U):
        assert (await c.get(path, headers=beta)).json()["total"] == 0
    assert (await c.get(f"{S}/{sid}", headers=quipu.auth())).json()["turn_count"] == 1


async def test_bad_input_is_a_4xx_problem(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    _, scope = await _session(quipu)
    sid = scope["scope_id"]
    assert _problem(await c.post(T, json={"name": "x", "colour": 1}, headers=h), 422)["errors"]
    assert _problem(await c.post(T, json={"name": ""}, headers=h), 422)["errors"][0]["field"] == "name"
    _problem(await c.post(T, json={"name": "x", "agent_id": "not-a-uuid"}, headers=h), 422)
    _problem(await c.post(T, json={"name": "x", "parent_trajectory_id": sid}, headers=h), 404)
    _problem(await c.patch(f"{T}/{scope['trajectory_id']}", json={"status": "paused"}, headers=h), 422)
    for bad in ({"role": "robot"}, {"token_count": -1}, {"sequence": -3}, {"tool_calls": "text"}, {"content": None}):
        _problem(await c.post(U, json={"scope_id": sid, "role": "user", "content": "x", **bad}, headers=h), 422)
    _problem(await c.post(U, json={"role": "user", "content": "x"}, headers=h), 422)
    _problem(
        await c.post(S, json={"trajectory_id": scope["trajectory_id"], "name": "x", "token_budget": 2**31}, headers=h),
        422,
    )
    _problem(await c.post(f"{S}/{sid}/checkpoint", json={"context_state": "AA=="}, headers=h), 422)
    _problem(await c.get(f"{T}?status=bogus", headers=h), 422)
    _problem(await c.get(f"{U}?limit=0", headers=h), 422)
    _problem(await c.get(f"{S}?trajectory_id=nope", headers=h), 422)
    _problem(await c.patch(f"{S}/{sid}", json={"name": "x"}, headers={**h, "If-Match": "garbage"}), 412)
    _problem(await c.get(f"{U}/00000000-0000-0000-0000-000000000000", headers=h), 404)
    _problem(
        await c.post(U, json={"scope_id": sid, "role": "user", "content": "x", "caused_by": [sid]}, headers=h), 422
    )
    assert (await c.get(f"{S}/{sid}", headers=h)).json()["turn_count"] == 0


async def test_rebuilding_the_read_model_equals_the_incremental_one(quipu: Running, database_url: str) -> None:
    from quipu.rebuild import rebuild_projection

    c, h = quipu.client, quipu.auth()
    trajectory, scope = await _session(quipu, budget=50)
    await _post(quipu, T, {"name": "sub", "parent_trajectory_id": trajectory["trajectory_id"]})
    turn = await _post(quipu, U, {"scope_id": scope["scope_id"], "role": "user", "content": "a", "token_count": 5})
    await c.patch(f"{U}/{turn['turn_id']}", json={"tool_results": [1, 2]}, headers=h)
    await _post(quipu, U, {"scope_id": scope["scope_id"], "role": "assistant", "content": "b"})
    await c.post(f"{S}/{scope['scope_id']}/checkpoint", json={"context_state": "AA==", "recoverable": True}, headers=h)
    await c.post(f"{S}/{scope['scope_id']}/close", headers=h)
    await c.post(f"{T}/{trajectory['trajectory_id']}/fail", json={"outcome": {"x": 1}}, headers=h)
    last = await _post(quipu, T, {"name": "gone"})
    await c.delete(f"{T}/{last['trajectory_id']}", headers=h)

    async def caught_up() -> bool:  # the last event written has been projected
        async with quipu.ctx.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT deleted FROM rm_memory_sessions.trajectories WHERE trajectory_id = %s", (last["trajectory_id"],)
            )
            row = await cur.fetchone()
        return bool(row and row["deleted"])

    await quipu.wait_for(caught_up)
    tables = ("trajectories", "scopes", "turns")

    def snapshot() -> list[list[tuple[Any, ...]]]:
        with psycopg.connect(database_url) as conn:
            return [conn.execute(f"SELECT * FROM rm_memory_sessions.{t} ORDER BY 2").fetchall() for t in tables]

    before = snapshot()
    await rebuild_projection(database_url, "memory_sessions")
    after = snapshot()
    assert before == after and [len(rows) for rows in after] == [3, 1, 2]
