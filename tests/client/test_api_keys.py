"""The client against a real Quipu: API keys, the tenant, and the operator's endpoints."""

from __future__ import annotations

import pytest

from quipu_client import AsyncQuipuClient, Forbidden, Unauthorized
from tests.client.conftest import Served


async def test_api_keys_tenant_and_admin(served: Served) -> None:
    async with served.client() as quipu:
        tenant = await quipu.api_keys.current_tenant()
        assert tenant.id == "acme" and "admin" in tenant.scopes
        made = await quipu.api_keys.create({"name": "ci workers", "scopes": ["worker"]})
        assert made.key.startswith("qk_") and made.scopes == ["worker"]
        listed = [k.id async for k in quipu.api_keys.iter_list(page_size=1)]
        assert made.id in listed and len(listed) >= 2

        async with AsyncQuipuClient(served.url, made.key) as worker:
            with pytest.raises(Forbidden):  # a worker key reads nothing
                await worker.workflows.list()
            grant = await worker.workers.credentials({"agent_types": ["http"], "name": "w1"})
            assert grant.tenant_id == "acme" and set(grant.consumers) == {"http"}
        revoked = await quipu.api_keys.revoke(made.id)
        assert revoked.revoked
        async with AsyncQuipuClient(served.url, made.key) as worker:
            with pytest.raises(Unauthorized):
                await worker.workers.credentials({"agent_types": ["http"]})

        assert (await quipu.admin.health()).status == "ok"
        assert (await quipu.admin.ready()).checks["postgres"] == "ok"
        assert {p.name for p in await quipu.admin.projections()} >= {"workflows", "executions"}
        assert "quipu_http_request_seconds" in await quipu.admin.metrics()
