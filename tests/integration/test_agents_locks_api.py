"""Agents and locks over HTTP on real Postgres and NATS: every endpoint, every refused
transition, tenant isolation, the expiry timer, waiting for a lock, and liveness (a silent
agent goes offline once and its locks are revoked once)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg

from tests.integration.conftest import Running, running_quipu

A, L = "/api/v1/agents", "/api/v1/locks"


async def _post(q: Running, path: str, body: dict[str, Any], tenant: str = "acme", status: int = 201) -> Any:
    r = await q.client.post(path, json=body, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    return r.json()


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()  # type: ignore[no-any-return]


async def _agent(q: Running, agent_type: str = "Tester", tenant: str = "acme") -> str:
    body = {"agent_type": agent_type, "capabilities": ["code"], "can_delegate_to": [], "memory_access": {}}
    return str((await _post(q, A, body, tenant))["agent_id"])


def _acquire(agent: str, resource: str, mode: str = "Exclusive", timeout_ms: int = 60_000, **extra: Any) -> Any:
    return {
        "holder_agent_id": agent,
        "mode": mode,
        "resource_type": "trajectory",
        "resource_id": resource,
        "timeout_ms": timeout_ms,
        **extra,
    }


def _kinds(database_url: str, *kinds: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT kind, count(*) FROM event_dag WHERE kind = ANY(%s) GROUP BY kind", (list(kinds),)
        ).fetchall()
    return {kind: 0 for kind in kinds} | {k: int(n) for k, n in rows}


async def test_agents_register_list_get_patch_heartbeat_and_unregister(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    # The reference's own example body.
    example = {
        "agent_type": "Tester",
        "can_delegate_to": [],
        "capabilities": [],
        "memory_access": {},
        "owner_principal_id": "fe39bf7b-6b2d-42fc-be7f-80505e2d7f4f",
        "reports_to": "788f594d-4490-438b-9a88-e4150fb7d6c0",
    }
    r = await c.post(A, json=example, headers={**h, "Idempotency-Key": "agent-1"})
    assert r.status_code == 201, r.text
    tester = r.json()
    assert r.headers["location"] == f"{A}/{tester['agent_id']}"
    assert tester["status"] == "idle" and tester["agent_type"] == "Tester" and tester["last_event_id"]
    assert tester["reports_to"] == example["reports_to"] and tester["last_heartbeat_at"]
    again = await c.post(A, json=example, headers={**h, "Idempotency-Key": "agent-1"})
    assert again.json()["agent_id"] == tester["agent_id"] and again.headers["idempotent-replayed"] == "true"
    custom = await _post(quipu, A, {"agent_type": "Reviewer", "capabilities": ["review", "review"]})
    assert custom["agent_type"] == "Reviewer" and custom["capabilities"] == ["review"]
    planner = await _post(quipu, A, {"agent_type": "Planner", "can_delegate_to": ["Tester"]})

    base = f"{A}/{tester['agent_id']}"
    got = await c.get(base, headers=h)
    assert got.json()["agent_id"] == tester["agent_id"] and got.headers["etag"] == '"1"'
    trajectory = str(uuid.uuid4())
    r = await c.patch(
        base, json={"status": "active", "current_trajectory_id": trajectory, "capabilities": ["x"]}, headers=h
    )
    patched = r.json()
    assert (patched["status"], patched["current_trajectory_id"], patched["capabilities"]) == (
        "active",
        trajectory,
        ["x"],
    )
    assert patched["last_event_id"] != tester["last_event_id"]
    _problem(await c.patch(base, json={"status": "sleeping"}, headers=h), 422)
    _problem(await c.patch(base, json={"status": "idle"}, headers={**h, "If-Match": '"1"'}), 412)
    beat = (await c.post(f"{base}/heartbeat", headers=h)).json()
    assert beat["status"] == "active" and beat["last_heartbeat_at"] > tester["last_heartbeat_at"]
    assert beat["last_event_id"] != patched["last_event_id"]

    async def listed() -> bool:
        page = (await c.get(f"{A}?limit=10", headers=h)).json()
        return bool(page["total"] == 3 and any(a["status"] == "active" for a in page["agents"]))

    await quipu.wait_for(listed)
    by_type = (await c.get(f"{A}?agent_type=Planner", headers=h)).json()
    assert [a["agent_id"] for a in by_type["agents"]] == [planner["agent_id"]] and by_type["total"] == 1
    assert by_type["agents"][0]["can_delegate_to"] == ["Tester"]
    by_status = (await c.get(f"{A}?status=active", headers=h)).json()["agents"]
    assert [a["agent_id"] for a in by_status] == [tester["agent_id"]]
    by_trajectory = (await c.get(f"{A}?trajectory_id={trajectory}", headers=h)).json()["agents"]
    assert [a["agent_id"] for a in by_trajectory] == [tester["agent_id"]]
    paged = (await c.get(f"{A}?limit=1&offset=1", headers=h)).json()
    assert (len(paged["agents"]), paged["total"], paged["limit"], paged["offset"]) == (1, 3, 1, 1)

    # Setting offline by hand takes the agent out of active_only; a heartbeat brings it back.
    await c.patch(f"{A}/{planner['agent_id']}", json={"status": "offline"}, headers=h)

    async def planner_offline() -> bool:
        page = (await c.get(f"{A}?active_only=true", headers=h)).json()
        return planner["agent_id"] not in [a["agent_id"] for a in page["agents"]] and page["total"] == 2

    await quipu.wait_for(planner_offline)
    back = (await c.post(f"{A}/{planner['agent_id']}/heartbeat", headers=h)).json()
    assert back["status"] == "idle"

    r = await c.delete(base, headers=h)
    assert r.status_code == 204
    _problem(await c.get(base, headers=h), 404)
    _problem(await c.post(f"{base}/heartbeat", headers=h), 404)
    _problem(await c.patch(base, json={"status": "idle"}, headers=h), 404)
    _problem(await c.delete(base, headers=h), 404)

    async def gone() -> bool:
        page = (await c.get(A, headers=h)).json()
        return tester["agent_id"] not in [a["agent_id"] for a in page["agents"]]

    await quipu.wait_for(gone)
    # Bad input and the reader key.
    _problem(await c.post(A, json={"agent_type": "", "capabilities": []}, headers=h), 422)
    _problem(await c.post(A, json={"agent_type": "T", "unknown": 1}, headers=h), 422)
    _problem(await c.post(A, json={"agent_type": {"Custom": "x"}}, headers=h), 422)
    _problem(await c.post(A, json={"agent_type": "T"}, headers=quipu.auth("acme-reader")), 403)
    assert (await c.get(A, headers=quipu.auth("acme-reader"))).status_code == 200


async def test_agents_and_locks_are_isolated_by_tenant(quipu: Running) -> None:
    c = quipu.client
    agent = await _agent(quipu)
    resource = str(uuid.uuid4())
    lock = await _post(quipu, f"{L}/acquire", _acquire(agent, resource))
    for method, path, body in (
        ("GET", f"{A}/{agent}", None),
        ("PATCH", f"{A}/{agent}", {"status": "idle"}),
        ("POST", f"{A}/{agent}/heartbeat", None),
        ("DELETE", f"{A}/{agent}", None),
        ("GET", f"{L}/{lock['lock_id']}", None),
        ("POST", f"{L}/{lock['lock_id']}/extend", {"additional_ms": 10}),
        ("POST", f"{L}/{lock['lock_id']}/release", {"releasing_agent_id": agent}),
    ):
        _problem(await c.request(method, path, json=body, headers=quipu.auth("beta")), 404)
    # beta cannot lock for acme's agent, and its own lock on the same resource id is its own.
    _problem(await c.post(f"{L}/acquire", json=_acquire(agent, resource), headers=quipu.auth("beta")), 404)
    beta_agent = await _agent(quipu, tenant="beta")
    beta_lock = await _post(quipu, f"{L}/acquire", _acquire(beta_agent, resource), "beta")
    assert beta_lock["fencing_token"] == 1 and beta_lock["tenant_id"] == "beta"

    async def listed() -> bool:
        acme = (await c.get(L, headers=quipu.auth())).json()
        beta = (await c.get(f"{A}", headers=quipu.auth("beta"))).json()
        return bool(acme["total"] == 1 and beta["total"] == 1)

    await quipu.wait_for(listed)
    assert (await c.get(L, headers=quipu.auth())).json()["locks"][0]["lock_id"] == lock["lock_id"]
    assert (await c.get(A, headers=quipu.auth("beta"))).json()["agents"][0]["agent_id"] == beta_agent
    assert (await c.get(L, headers=quipu.auth("beta"))).json()["locks"][0]["lock_id"] == beta_lock["lock_id"]


async def test_lock_modes_fencing_extend_release_and_refusals(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    a1, a2, a3 = await _agent(quipu), await _agent(quipu), await _agent(quipu)
    resource = str(uuid.uuid4())
    first = await _post(quipu, f"{L}/acquire", _acquire(a1, resource, "exclusive"))
    assert first["mode"] == "Exclusive" and first["fencing_token"] == 1 and first["holder_agent_id"] == a1
    assert first["last_event_id"] == first["lock_id"] and first["expires_at"] > first["acquired_at"]

    # Taken: 409 naming the holder and its expiry (exclusive excludes shared too).
    for mode in ("Exclusive", "Shared"):
        taken = _problem(await c.post(f"{L}/acquire", json=_acquire(a2, resource, mode), headers=h), 409)
        assert [(x["holder_agent_id"], x["lock_id"], x["expires_at"]) for x in taken["holders"]] == [
            (a1, first["lock_id"], first["expires_at"])
        ]
    # The holder again: not reentrant.
    _problem(await c.post(f"{L}/acquire", json=_acquire(a1, resource), headers=h), 409)

    lock_url = f"{L}/{first['lock_id']}"
    got = (await c.get(lock_url, headers=h)).json()
    assert got["fencing_token"] == 1 and got["holder_agent_id"] == a1
    # Only the holder extends or releases.
    _problem(await c.post(f"{lock_url}/extend", json={"additional_ms": 1000, "holder_agent_id": a2}, headers=h), 409)
    _problem(await c.post(f"{lock_url}/release", json={"releasing_agent_id": a2}, headers=h), 409)
    extended = (
        await c.post(f"{lock_url}/extend", json={"additional_ms": 5000, "holder_agent_id": a1}, headers=h)
    ).json()
    assert extended["expires_at"] > first["expires_at"] and extended["fencing_token"] == 1
    assert extended["last_event_id"] != first["last_event_id"]
    same = (await c.post(f"{lock_url}/extend", json={"additional_ms": 0}, headers=h)).json()  # the reference's example
    assert same["expires_at"] == extended["expires_at"]
    released = (await c.post(f"{lock_url}/release", json={"releasing_agent_id": a1}, headers=h)).json()
    assert released["released_at"] and released["last_event_id"] != extended["last_event_id"]
    # Over: no second release, no extension, no read.
    _problem(await c.post(f"{lock_url}/release", json={"releasing_agent_id": a1}, headers=h), 409)
    _problem(await c.post(f"{lock_url}/extend", json={"additional_ms": 10}, headers=h), 409)
    _problem(await c.get(lock_url, headers=h), 404)

    # Shared admits shared, excludes exclusive; tokens keep growing on the resource.
    s2 = await _post(quipu, f"{L}/acquire", _acquire(a2, resource, "shared"))
    s3 = await _post(quipu, f"{L}/acquire", _acquire(a3, resource, "Shared"))
    assert (s2["mode"], s2["fencing_token"], s3["fencing_token"]) == ("Shared", 2, 3)
    taken = _problem(await c.post(f"{L}/acquire", json=_acquire(a1, resource), headers=h), 409)
    assert sorted(x["holder_agent_id"] for x in taken["holders"]) == sorted([a2, a3])

    async def both_listed() -> bool:
        page = (await c.get(f"{L}?resource_id={resource}", headers=h)).json()
        return bool(page["total"] == 2)

    await quipu.wait_for(both_listed)
    mine = (await c.get(f"{L}?holder_agent_id={a3}&resource_type=trajectory", headers=h)).json()["locks"]
    assert [x["lock_id"] for x in mine] == [s3["lock_id"]]

    # Unknown ids and bad input.
    _problem(await c.get(f"{L}/{uuid.uuid4()}", headers=h), 404)
    _problem(await c.get(f"{L}/{a1}", headers=h), 404)  # an id that is not a grant
    _problem(await c.post(f"{L}/{uuid.uuid4()}/release", json={"releasing_agent_id": a1}, headers=h), 404)
    _problem(await c.post(f"{L}/acquire", json=_acquire(str(uuid.uuid4()), resource), headers=h), 404)
    _problem(await c.post(f"{L}/acquire", json=_acquire(a1, resource, "read"), headers=h), 422)
    _problem(await c.post(f"{L}/acquire", json=_acquire(a1, resource, timeout_ms=-1), headers=h), 422)
    _problem(await c.post(f"{L}/acquire", json={**_acquire(a1, resource), "resource_type": "workflow"}, headers=h), 422)
    _problem(await c.post(f"{L}/{s2['lock_id']}/extend", json={"additional_ms": -5}, headers=h), 422)
    # An offline agent takes no locks until it beats again.
    await c.patch(f"{A}/{a1}", json={"status": "offline"}, headers=h)
    _problem(await c.post(f"{L}/acquire", json=_acquire(a1, str(uuid.uuid4())), headers=h), 409)
    await c.post(f"{A}/{a1}/heartbeat", headers=h)
    await _post(quipu, f"{L}/acquire", _acquire(a1, str(uuid.uuid4())))


async def test_an_expired_lock_is_recorded_by_the_timer_and_can_be_waited_for(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    a1, a2 = await _agent(quipu), await _agent(quipu)
    resource = str(uuid.uuid4())
    short = await _post(quipu, f"{L}/acquire", _acquire(a1, resource, timeout_ms=300))

    async def expired() -> bool:
        return _kinds(quipu.wiring.database_url, "lock.expired")["lock.expired"] == 1

    await quipu.wait_for(expired, timeout=20)
    _problem(await c.get(f"{L}/{short['lock_id']}", headers=h), 404)
    _problem(await c.post(f"{L}/{short['lock_id']}/extend", json={"additional_ms": 100}, headers=h), 409)
    with psycopg.connect(quipu.wiring.database_url) as conn:
        (parents,) = conn.execute(
            "SELECT array_agg(e.parent_id) FROM event_edges e JOIN event_dag d ON d.event_id = e.child_id"
            " WHERE d.kind = 'lock.expired'"
        ).fetchone()  # type: ignore[misc]
    assert uuid.UUID(short["lock_id"]) in parents  # the expiry names the grant it ends

    # wait_ms: a2 waits while a1 holds, and gets the resource when a1 releases.
    held = await _post(quipu, f"{L}/acquire", _acquire(a1, resource))
    _problem(await c.post(f"{L}/acquire", json=_acquire(a2, resource, wait_ms=100), headers=h), 409)
    waiting = asyncio.create_task(c.post(f"{L}/acquire", json=_acquire(a2, resource, wait_ms=10_000), headers=h))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await c.post(f"{L}/{held['lock_id']}/release", json={"releasing_agent_id": a1}, headers=h)
    r = await asyncio.wait_for(waiting, 15)
    assert r.status_code == 201, r.text
    assert r.json()["holder_agent_id"] == a2 and r.json()["fencing_token"] == held["fencing_token"] + 1

    # Concurrent exclusive acquires of one free resource: exactly one wins.
    contested = str(uuid.uuid4())
    agents = [await _agent(quipu) for _ in range(5)]
    answers = await asyncio.gather(*(c.post(f"{L}/acquire", json=_acquire(a, contested), headers=h) for a in agents))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409]


async def test_a_silent_agent_goes_offline_once_and_loses_its_locks_once(
    database_url: str, nats_url: str, subjects: Any
) -> None:
    async with running_quipu(database_url, nats_url, subjects, agent_offline_after=1.0) as q:
        c, h = q.client, q.auth()
        quiet, busy = await _agent(q), await _agent(q)
        resource = str(uuid.uuid4())
        lock = await _post(q, f"{L}/acquire", _acquire(quiet, resource, "Shared"))
        other = await _post(q, f"{L}/acquire", _acquire(busy, resource, "Shared"))

        async def beat() -> None:  # busy keeps beating; quiet does not
            while True:
                assert (await c.post(f"{A}/{busy}/heartbeat", headers=h)).status_code == 200
                await asyncio.sleep(0.25)

        beating = asyncio.create_task(beat())

        async def offline() -> bool:
            return bool((await c.get(f"{A}/{quiet}", headers=h)).json()["status"] == "offline")

        await q.wait_for(offline, timeout=20)
        assert (await c.get(f"{A}/{busy}", headers=h)).json()["status"] == "idle"
        _problem(await c.get(f"{L}/{lock['lock_id']}", headers=h), 404)
        assert (await c.get(f"{L}/{other['lock_id']}", headers=h)).status_code == 200
        await asyncio.sleep(2.5)  # the timer had every chance to fire again
        beating.cancel()
        counts = _kinds(database_url, "agent.went_offline", "lock.revoked", "lock.expired")
        assert counts == {"agent.went_offline": 1, "lock.revoked": 1, "lock.expired": 0}
        with psycopg.connect(database_url) as conn:
            (parents,) = conn.execute(
                "SELECT array_agg(e.parent_id) FROM event_edges e JOIN event_dag d ON d.event_id = e.child_id"
                " WHERE d.kind = 'lock.revoked'"
            ).fetchone()  # type: ignore[misc]
            (offline_event,) = conn.execute(
                "SELECT event_id FROM event_dag WHERE kind = 'agent.went_offline'"
            ).fetchone()  # type: ignore[misc]
        assert uuid.UUID(lock["lock_id"]) in parents and offline_event in parents  # the revocation's causes
        # The exclusive resource is free for the other agent now that shared 'quiet' is gone.
        await c.post(f"{L}/{other['lock_id']}/release", json={"releasing_agent_id": busy}, headers=h)
        await _post(q, f"{L}/acquire", _acquire(busy, resource))
