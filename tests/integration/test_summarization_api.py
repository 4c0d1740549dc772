"""Summarization: policies and requests over HTTP, triggers fired once per crossing from the
log under concurrent turns, and a real worker writing the summary note (SynthesizedFrom
edges, the request as the note's cause)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from commands.log import read_at
from commands.summarization_firing import TriggerFiring
from domain.envelope import EventEnvelope
from quipu_client.worker import Task, serve_workers, worker
from tests.integration.conftest import Running


async def _trajectory(q: Running, tenant: str = "acme") -> str:
    r = await q.client.post("/api/v1/trajectories", json={"name": "t"}, headers=q.auth(tenant))
    assert r.status_code == 201, r.text
    return str(r.json()["trajectory_id"])


async def _scope(q: Running, trajectory_id: str, budget: int = 100_000) -> str:
    body = {"trajectory_id": trajectory_id, "name": "s", "token_budget": budget}
    r = await q.client.post("/api/v1/scopes", json=body, headers=q.auth())
    assert r.status_code == 201, r.text
    return str(r.json()["scope_id"])


async def _policy(q: Running, **fields: Any) -> dict[str, Any]:
    body = {"name": "p", "source_level": "raw", "target_level": "summary", "max_sources": 10, "create_edges": True}
    r = await q.client.post("/api/v1/summarization-policies", json=body | fields, headers=q.auth())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _turn(q: Running, scope_id: str, content: str, tokens: int) -> None:
    body = {"scope_id": scope_id, "role": "user", "content": content, "token_count": tokens}
    r = await q.client.post("/api/v1/turns", json=body, headers=q.auth())
    assert r.status_code == 201, r.text


async def _requests(q: Running, **params: Any) -> dict[str, Any]:
    r = await q.client.get("/api/v1/summarization-requests", params={"limit": 1000, **params}, headers=q.auth())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_policies_and_requests_over_http_with_409s_and_tenant_isolation(quipu: Running) -> None:
    q = quipu
    trajectory = await _trajectory(q)
    # The reference's own example body (with a real trajectory): no trigger, max_sources 0.
    example = {"create_edges": True, "max_sources": 0, "metadata": None, "name": "string", "source_level": "raw",
               "target_level": "raw", "trajectory_id": trajectory, "triggers": []}  # fmt: skip
    r = await q.client.post("/api/v1/summarization-policies", json=example, headers=q.auth())
    assert r.status_code == 201, r.text
    assert r.json()["triggers"] == [] and r.json()["max_sources"] == 100 and r.json()["last_event_id"]

    triggers = ["Manual", {"TurnCount": {"count": 5}}, {"dosage_threshold": {"percent": 80}}, "scope_close"]
    policy = await _policy(q, trajectory_id=trajectory, triggers=triggers, metadata={"k": 1})
    pid = policy["summarization_policy_id"]
    assert policy["triggers"] == ["manual", {"turn_count": {"count": 5}}, {"dosage_threshold": {"percent": 80}},
                                  "scope_close"]  # fmt: skip
    got = (await q.client.get(f"/api/v1/summarization-policies/{pid}", headers=q.auth())).json()
    assert got == policy

    for bad in (["sometimes"], [{"turn_count": {"count": 0}}], [{"turn_count": {"n": 3}}], [{"a": 1, "b": 2}]):
        r = await q.client.post(
            "/api/v1/summarization-policies",
            json={
                "name": "x",
                "source_level": "raw",
                "target_level": "summary",
                "max_sources": 1,
                "create_edges": False,
                "triggers": bad,
            },
            headers=q.auth(),
        )
        assert r.status_code == 422, (bad, r.text)

    async def listed() -> bool:
        r = await q.client.get(f"/api/v1/trajectories/{trajectory}/summarization-policies", headers=q.auth())
        return r.status_code == 200 and r.json()["total"] == 2

    await q.wait_for(listed)

    # Another tenant sees none of it.
    assert (await q.client.get(f"/api/v1/summarization-policies/{pid}", headers=q.auth("beta"))).status_code == 404
    r = await q.client.get(f"/api/v1/trajectories/{trajectory}/summarization-policies", headers=q.auth("beta"))
    assert r.status_code == 404
    assert (await q.client.delete(f"/api/v1/summarization-policies/{pid}", headers=q.auth("beta"))).status_code == 404
    r = await q.client.post(
        "/api/v1/summarization-policies", json={**example, "triggers": ["manual"]}, headers=q.auth("beta")
    )
    assert r.status_code == 404  # acme's trajectory

    # A manual request, and its status machine.
    scope = await _scope(q, trajectory)
    await _turn(q, scope, "hello", 3)
    r = await q.client.post(
        f"/api/v1/summarization-policies/{pid}/requests", json={"scope_id": scope}, headers=q.auth()
    )
    assert r.status_code == 201, r.text
    request = r.json()
    rid = request["summarization_request_id"]
    assert request["status"] == "pending" and request["trigger"] == "manual" and len(request["sources"]) == 1
    assert request["sources"][0]["entity_type"] == "turn" and request["requested_by"]
    no_manual = (await _policy(q, triggers=[{"turn_count": {"count": 1000}}]))["summarization_policy_id"]
    r = await q.client.post(f"/api/v1/summarization-policies/{no_manual}/requests", json={}, headers=q.auth())
    assert r.status_code == 409

    status = f"/api/v1/summarization-requests/{rid}/status"
    assert (await q.client.patch(status, json={"status": "completed"}, headers=q.auth())).status_code == 409
    assert (await q.client.patch(status, json={"status": "pending"}, headers=q.auth())).status_code == 409
    assert (await q.client.patch(status, json={"status": "in_progress"}, headers=q.auth("beta"))).status_code == 404
    assert (
        await q.client.patch(status, json={"status": "in_progress"}, headers=q.auth("acme-reader"))
    ).status_code == 403
    assert (await q.client.patch(status, json={"status": "done"}, headers=q.auth())).status_code in (400, 422)
    r = await q.client.patch(status, json={"status": "in_progress"}, headers=q.auth())
    assert r.status_code == 200 and r.json()["status"] == "in_progress" and r.json()["last_event_id"]
    assert (await q.client.patch(status, json={"status": "in_progress"}, headers=q.auth())).status_code == 409
    assert (await q.client.patch(status, json={"status": "pending"}, headers=q.auth())).status_code == 409
    r = await q.client.patch(status, json={"status": "failed"}, headers=q.auth())
    assert r.status_code == 200 and r.json()["status"] == "failed" and r.json()["completed_at"]
    for again in ("in_progress", "completed", "failed", "pending"):
        assert (await q.client.patch(status, json={"status": again}, headers=q.auth())).status_code == 409
    assert (await q.client.get(f"/api/v1/summarization-requests/{rid}", headers=q.auth("beta"))).status_code == 404
    got = (await q.client.get(f"/api/v1/summarization-requests/{rid}", headers=q.auth())).json()
    assert got["status"] == "failed" and got["version"] == 3

    async def in_list() -> bool:
        page = await _requests(q, status="failed", summarization_policy_id=pid)
        return [x["summarization_request_id"] for x in page["requests"]] == [rid]

    await q.wait_for(in_list)
    assert (await q.client.get("/api/v1/summarization-requests", headers=q.auth("beta"))).json()["total"] == 0

    # Deleting: 204, then gone (and fires no more).
    assert (await q.client.delete(f"/api/v1/summarization-policies/{pid}", headers=q.auth())).status_code == 204
    assert (await q.client.get(f"/api/v1/summarization-policies/{pid}", headers=q.auth())).status_code == 404
    assert (await q.client.delete(f"/api/v1/summarization-policies/{pid}", headers=q.auth())).status_code == 404


async def test_token_and_turn_triggers_fire_once_per_crossing_under_concurrent_turns(quipu: Running) -> None:
    q = quipu
    trajectory = await _trajectory(q)
    scope = await _scope(q, trajectory, budget=12_000)
    triggers = [
        {"dosage_threshold": {"percent": 25}},  # 3000 tokens
        {"dosage_threshold": {"percent": 50}},  # 6000 tokens
        {"dosage_threshold": {"percent": 90}},  # 10800: never reached
        {"token_threshold": {"tokens": 1000}},  # each 1000 tokens: 6 crossings
        {"turn_count": {"count": 10}},  # every 10th turn: 4
    ]
    policy = await _policy(q, trajectory_id=trajectory, triggers=triggers, agent_type="nobody-listens", max_sources=5)
    # 40 turns of 150 tokens at once: 6000 tokens; they race for the scope's stream.
    await asyncio.gather(*(_turn(q, scope, f"turn {i}", 150) for i in range(40)))
    assert (await q.client.get(f"/api/v1/scopes/{scope}", headers=q.auth())).json()["tokens_used"] == 6000

    expected = 1 + 1 + 6 + 4
    found: dict[str, Any] = {}

    async def all_fired() -> bool:
        found.update(await _requests(q, scope_id=scope))
        return int(found["total"]) >= expected

    await q.wait_for(all_fired)
    await asyncio.sleep(1.0)  # time for any duplicate to show up
    page = await _requests(q, scope_id=scope)
    assert page["total"] == expected
    fired = Counter(str(r["trigger"]) for r in page["requests"])
    assert fired[str({"dosage_threshold": {"percent": 25}})] == 1
    assert fired[str({"dosage_threshold": {"percent": 50}})] == 1
    assert fired[str({"token_threshold": {"tokens": 1000}})] == 6
    assert fired[str({"turn_count": {"count": 10}})] == 4
    for r in page["requests"]:
        assert r["summarization_policy_id"] == policy["summarization_policy_id"] and r["status"] == "pending"
        assert 1 <= len(r["sources"]) <= 5 and {s["entity_type"] for s in r["sources"]} == {"turn"}

    # Deciding every event again (a redelivery, a second summarizer) records nothing more.
    async with q.ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT notification_id FROM event_dag WHERE tenant_id = 'acme' AND stream_id = %s"
            " AND kind = 'scope.turn_appended'",
            (scope,),
        )
        positions = [row["notification_id"] for row in await cur.fetchall()]
    envelopes = await _envelopes(q, positions)
    firing = TriggerFiring(q.ctx.store)
    again = await asyncio.gather(*(asyncio.to_thread(firing.decide, e) for e in envelopes))
    assert all(made == [] for made in again)
    assert (await _requests(q, scope_id=scope))["total"] == expected


async def _envelopes(q: Running, positions: list[int]) -> list[EventEnvelope]:
    async with q.ctx.pool.connection() as conn:
        found = await read_at(conn, positions)
    return [found[p] for p in positions]


@contextlib.asynccontextmanager
async def _summarizer(q: Running, seen: list[Task]) -> AsyncIterator[None]:
    @worker("summarizer")
    async def summarize(task: Task) -> dict[str, Any]:
        seen.append(task)
        texts = [s["content"] for s in task.input["sources"]]
        return {"content": "summary: " + " | ".join(texts), "title": f"{task.input['target_level']} summary"}

    stop = asyncio.Event()
    running = asyncio.create_task(
        serve_workers(
            [summarize],
            nats_url=q.wiring.nats_url,
            tenant="acme",
            prefix=q.wiring.subjects.prefix,
            stop=stop,
            heartbeat_seconds=0.2,
            grace_seconds=2,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_a_worker_writes_the_summary_note_with_edges_and_the_request_as_its_cause(quipu: Running) -> None:
    q = quipu
    trajectory = await _trajectory(q)
    scope = await _scope(q, trajectory)
    await _policy(q, trajectory_id=trajectory, triggers=[{"turn_count": {"count": 3}}], max_sources=5)
    # The summary (level "summary") is itself counted by a second policy, which asks for a principle.
    await _policy(
        q,
        trajectory_id=trajectory,
        source_level="summary",
        target_level="principle",
        triggers=[{"note_count": {"count": 1}}],
    )
    seen: list[Task] = []
    async with _summarizer(q, seen):
        for text in ("alpha", "beta", "gamma"):
            await _turn(q, scope, text, 10)

        done: dict[str, Any] = {}

        async def completed() -> bool:
            page = await _requests(q, trajectory_id=trajectory, status="completed")
            done.update({r["target_level"]: r for r in page["requests"]})
            return {"summary", "principle"} <= set(done)

        await q.wait_for(completed, timeout=60)

    first = (await q.client.get(f"/api/v1/summarization-requests/{done['summary']['summarization_request_id']}",
                                headers=q.auth())).json()  # fmt: skip
    assert (
        first["status"] == "completed"
        and first["scope_id"] == scope
        and first["trigger"] == {"turn_count": {"count": 3}}
    )
    note = (await q.client.get(f"/api/v1/notes/{first['note_id']}", headers=q.auth())).json()
    assert note["content"] == "summary: alpha | beta | gamma"
    assert note["abstraction_level"] == "summary" and note["note_type"] == "summary"
    assert note["source_trajectory_ids"] == [trajectory]

    # The note's first event names the request as its cause; the request's completion names the note.
    created = (await q.client.get(f"/api/v1/event-dag/{note['last_event_id']}", headers=q.auth())).json()
    assert created["kind"] == "note.created"
    started = (await q.client.get(f"/api/v1/event-dag/{created['parent_ids'][0]}", headers=q.auth())).json()
    assert started["kind"] == "summarization_request.started"
    assert started["stream_id"] == first["summarization_request_id"]
    completion = (await q.client.get(f"/api/v1/event-dag/{first['last_event_id']}", headers=q.auth())).json()
    assert completion["kind"] == "summarization_request.completed" and note["last_event_id"] in completion["parent_ids"]

    # One SynthesizedFrom edge from the note to each turn it summarizes.
    turns = (await q.client.get(f"/api/v1/scopes/{scope}/turns", headers=q.auth())).json()["items"]
    edges: list[dict[str, Any]] = []

    async def linked() -> bool:
        r = await q.client.get(f"/api/v1/edges/by-participant/{note['note_id']}", headers=q.auth())
        mine = {"entity_type": "note", "entity_id": note["note_id"], "role": "summary"}
        edges[:] = [e for e in r.json()["items"] if mine in e["participants"]]
        return len(edges) == 3

    await q.wait_for(linked)
    assert {e["edge_type"] for e in edges} == {"synthesized_from"}
    sources = {p["entity_id"] for e in edges for p in e["participants"] if p["role"] == "source"}
    assert sources == {t["turn_id"] for t in turns} and sorted(first["edge_ids"]) == sorted(e["edge_id"] for e in edges)

    # The chain goes on: the principle was written from the summary note.
    second = done["principle"]
    assert second["trigger"] == {"note_count": {"count": 1}}
    assert second["sources"] == [{"entity_type": "note", "entity_id": first["note_id"]}]
    principle = (await q.client.get(f"/api/v1/notes/{second['note_id']}", headers=q.auth())).json()
    assert principle["abstraction_level"] == "principle" and principle["source_note_ids"] == [first["note_id"]]
    assert len(second["edge_ids"]) == 1
    assert {t.input["summarization_request_id"] for t in seen} == {
        first["summarization_request_id"],
        second["summarization_request_id"],
    }
