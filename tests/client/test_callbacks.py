"""The client's callbacks group against a real Quipu: register (the secret once), list,
deliveries, deregister, and the typed errors of a refusal."""

from __future__ import annotations

import pytest

from quipu_client import Conflict, NotFound, ValidationFailed
from quipu_client.webhooks import sign, verify_webhook
from tests.client.conftest import Served


async def test_register_list_deliveries_and_deregister(served: Served) -> None:
    async with served.client() as quipu:
        registered = await quipu.callbacks.register(
            {
                "service_name": "order-service",
                "environment": "prod",
                "base_url": "https://orders.mycorp.com",
                "callbacks": {"start-task": {"path": "/callbacks/start"}, "reject-task": {"path": "/callbacks/reject"}},
            }
        )
        assert registered.registered_callbacks == ["start-task", "reject-task"]
        # The shown secret is what a receiver verifies with.
        body = b'{"type":"node.scheduled"}'
        headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
        headers["webhook-signature"] = sign(registered.secret, "msg_1", 1_700_000_000, body)
        verify_webhook(headers, body, registered.secret, now=1_700_000_000)

        async def listed() -> bool:
            return (await quipu.callbacks.list()).total == 2

        await served.quipu.wait_for(listed)
        ids = [c.callback_id async for c in quipu.callbacks.iter_list(page_size=1)]
        assert ids == ["reject-task", "start-task"]
        assert (await quipu.callbacks.deliveries("start-task")).total == 0

        with pytest.raises(ValidationFailed) as refused:
            await quipu.workflows.create(
                {"name": "x", "definition": {"nodes": [{"id": "a", "callback_id": "missing-task"}]}}
            )
        assert [e.code for e in refused.value.errors] == ["UNKNOWN_CALLBACK"]

        gone = await quipu.callbacks.deregister("reject-task")
        assert gone.status == "DEREGISTERED"
        with pytest.raises(Conflict):
            await quipu.callbacks.deregister("reject-task")
        with pytest.raises(NotFound):
            await quipu.callbacks.deliveries("never-task")
