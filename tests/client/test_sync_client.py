"""The synchronous client against a real Quipu: the same calls, iterators and streams,
without an event loop (run in a thread here, as the server shares the test's loop)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from quipu_client import NotFound, QuipuClient
from quipu_client.models import Heartbeat, NodeCompletion, WorkflowWrite
from tests.client.conftest import Served

ONE_NODE = {"nodes": [{"id": "only", "agent_type": "sync_reports"}]}


def _session(url: str, key: str) -> dict[str, object]:
    with QuipuClient(url, key) as quipu:
        tag = uuid.uuid4().hex[:8]
        made = [quipu.workflows.create(WorkflowWrite(name=f"{tag}-{i}", definition=ONE_NODE)) for i in range(3)]
        with pytest.raises(NotFound):
            quipu.executions.get(uuid.uuid4())

        run = quipu.executions.start({"workflow_id": made[0].id})
        quipu.executions.heartbeat_node(run.id, "only", Heartbeat(attempt=1))
        done = quipu.executions.complete_node(run.id, "only", NodeCompletion(attempt=1, output={"ok": True}))
        events = list(quipu.executions.events(run.id, from_start=True))
        replayed = list(quipu.time_travel.replay(run.id))
        listed = []
        for _ in range(200):  # the read model follows the log a moment later
            listed = [w.id for w in quipu.workflows.iter_list(name=tag, sort="name", order="asc", page_size=2)]
            if len(listed) == 3:
                break
            time.sleep(0.05)
        return {
            "made": [w.id for w in made],
            "listed": listed,
            "status": done.status,
            "last_event": events[-1].event,
            "replayed": [e.kind for e in replayed],
        }


async def test_the_sync_client_does_what_the_async_one_does(served: Served) -> None:
    seen = await asyncio.to_thread(_session, served.url, served.quipu.keys["acme"])
    assert seen["listed"] == seen["made"]
    assert seen["status"] == "succeeded" and seen["last_event"] == "completed"
    replayed = seen["replayed"]
    assert isinstance(replayed, list) and replayed[0] == "execution.started" and "execution.succeeded" in replayed
