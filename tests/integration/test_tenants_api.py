"""Tenants: a key sees its own tenant, an operator key every tenant; a suspended tenant's keys
are refused (403) until an operator reactivates it; archived is final."""

from __future__ import annotations

import asyncio
from typing import Any

from commands.access import issue_bootstrap_key
from domain.access import ApiKey, new_secret
from domain.aggregate import CommandContext
from tests.integration.conftest import Running


async def _operator(q: Running) -> dict[str, str]:
    secret = await asyncio.to_thread(issue_bootstrap_key, q.ctx.store, "ops", ["operator"], "operator")
    return {"Authorization": f"Bearer {secret}"}


async def test_a_key_sees_and_changes_its_own_tenant_only(quipu: Running) -> None:
    q = quipu
    page = (await q.client.get("/api/v1/tenants", headers=q.auth())).json()
    assert page["total"] == 1 and [t["tenant_id"] for t in page["tenants"]] == ["acme"]
    acme = (await q.client.get("/api/v1/tenants/acme", headers=q.auth())).json()
    # Its stream was started with its first key.
    assert acme["status"] == "active" and acme["name"] == "acme" and acme["version"] == 1
    assert (await q.client.get("/api/v1/tenants/current", headers=q.auth())).json()["id"] == "acme"

    # Another tenant and an unknown one answer alike.
    for other in ("beta", "nobody"):
        r = await q.client.get(f"/api/v1/tenants/{other}", headers=q.auth())
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await q.client.patch("/api/v1/tenants/acme", json={"name": "Beta's"}, headers=q.auth("beta"))
    assert r.status_code == 404

    body = {"name": "Acme Corp", "settings": {"region": "eu"}, "domain": "acme.example"}
    r = await q.client.patch("/api/v1/tenants/acme", json=body, headers=q.auth())
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "Acme Corp" and changed["settings"] == {"region": "eu"}
    assert changed["domain"] == "acme.example" and changed["version"] == 2 and changed["last_event_id"]
    assert (await q.client.get("/api/v1/tenants/acme", headers=q.auth())).json()["name"] == "Acme Corp"

    # Only admin keys change a tenant; the same status again is no transition.
    r = await q.client.patch("/api/v1/tenants/acme", json={"name": "x"}, headers=q.auth("acme-reader"))
    assert r.status_code == 403
    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "active"}, headers=q.auth())
    assert r.status_code == 409
    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "gone"}, headers=q.auth())
    assert r.status_code in (400, 422)
    r = await q.client.patch("/api/v1/tenants/acme", json={"colour": "red"}, headers=q.auth())
    assert r.status_code in (400, 422)

    # No tenant admin can make itself an operator.
    r = await q.client.post("/api/v1/api-keys", json={"name": "op", "scopes": ["operator"]}, headers=q.auth())
    assert r.status_code == 403
    op = await _operator(q)
    r = await q.client.post("/api/v1/api-keys", json={"name": "op2", "scopes": ["operator"]}, headers=op)
    assert r.status_code == 201


async def test_an_operator_lists_every_tenant_including_those_known_only_from_keys(quipu: Running) -> None:
    q = quipu
    op = await _operator(q)
    # A tenant from before tenants had streams: a key and nothing else.
    legacy = ApiKey.issue(CommandContext("legacy", "cli"), name="old", scopes=["admin"], secret=new_secret())
    await asyncio.to_thread(q.ctx.store.save_all, legacy)

    seen: dict[str, Any] = {}

    async def listed() -> bool:
        page = (await q.client.get("/api/v1/tenants", params={"limit": 100}, headers=op)).json()
        seen.update({t["tenant_id"]: t for t in page["tenants"]})
        return {"acme", "beta", "ops", "legacy"} <= set(seen)

    await q.wait_for(listed)
    assert seen["legacy"]["version"] == 0 and seen["legacy"]["status"] == "active"
    assert seen["acme"]["version"] >= 1
    r = await q.client.get("/api/v1/tenants/legacy", headers=op)
    assert r.status_code == 200 and r.json()["name"] == "legacy" and r.json()["version"] == 0
    assert (await q.client.get("/api/v1/tenants/nobody", headers=op)).status_code == 404

    # The first change starts its stream; archived is final.
    r = await q.client.patch("/api/v1/tenants/legacy", json={"status": "archived"}, headers=op)
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await q.client.patch("/api/v1/tenants/legacy", json={"status": "active"}, headers=op)
    assert r.status_code == 409
    r = await q.client.patch("/api/v1/tenants/legacy", json={"name": "renamed"}, headers=op)
    assert r.status_code == 409

    async def archived_listed() -> bool:
        page = (await q.client.get("/api/v1/tenants", params={"status": "archived"}, headers=op)).json()
        return [t["tenant_id"] for t in page["tenants"]] == ["legacy"]

    await q.wait_for(archived_listed)


async def test_a_suspended_tenants_keys_get_403_until_reactivated(quipu: Running) -> None:
    q = quipu
    op = await _operator(q)
    assert (await q.client.get("/api/v1/trajectories", headers=q.auth())).status_code == 200

    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "suspended"}, headers=q.auth())
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    for key in ("acme", "acme-reader"):
        r = await q.client.get("/api/v1/trajectories", headers=q.auth(key))
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "suspended" in r.json()["detail"]
    # Its own admin cannot lift it; other tenants are untouched.
    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "active"}, headers=q.auth())
    assert r.status_code == 403
    assert (await q.client.get("/api/v1/trajectories", headers=q.auth("beta"))).status_code == 200
    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "suspended"}, headers=op)
    assert r.status_code == 409  # suspended already

    r = await q.client.patch("/api/v1/tenants/acme", json={"status": "active"}, headers=op)
    assert r.status_code == 200 and r.json()["status"] == "active"
    for key in ("acme", "acme-reader"):
        assert (await q.client.get("/api/v1/trajectories", headers=q.auth(key))).status_code == 200
