"""``?min_position``: a query waits until its read models have applied a command's log position.

The projector is stopped while the command runs and the query is sent, and started only
after: the query can answer only by waiting, and its answer must hold the write. Without a
projector for long enough the answer is the documented 503; a bad position is a 422.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.read_freshness import READS
from bus.subjects import Subjects
from projections.registry import PROJECTIONS
from quipu.config import Settings
from quipu.wiring import Wiring
from tests.integration.conftest import Running, running_quipu

HEADER = "Quipu-Log-Position"


@contextlib.asynccontextmanager
async def _projecting(quipu: Running, names: list[str]) -> AsyncIterator[None]:
    """The relay and the named projectors, for the duration of the block."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(quipu.wiring.relay().run(stop))]
    tasks += [asyncio.create_task(p.run(stop)) for p in quipu.wiring.projectors(names)]
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            await asyncio.wait_for(task, 30)


async def _create_workflow(quipu: Running, name: str) -> tuple[str, int]:
    r = await quipu.client.post(
        "/api/v1/workflows", json={"name": name, "definition": {"nodes": [{"id": "a"}]}}, headers=quipu.auth()
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], int(r.headers[HEADER])


def _listed(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_a_query_with_the_commands_position_waits_for_the_projector_and_sees_the_write(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with running_quipu(database_url, nats_url, subjects, background=False, min_position_wait_ms=30_000) as quipu:
        positions = []
        for i in range(3):
            workflow_id, position = await _create_workflow(quipu, f"ryw-{i}")
            positions.append(position)
            query = asyncio.create_task(
                quipu.client.get("/api/v1/workflows", params={"min_position": position}, headers=quipu.auth())
            )
            await asyncio.sleep(0.3)
            assert not query.done(), "answered although no projector had applied the write"
            async with _projecting(quipu, ["workflows"]):
                assert workflow_id in _listed(await query)
        assert positions == sorted(positions) and len(set(positions)) == 3


async def test_the_wait_is_bounded_and_answers_not_yet_applied(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with running_quipu(database_url, nats_url, subjects, background=False, min_position_wait_ms=200) as quipu:
        _, position = await _create_workflow(quipu, "late")
        r = await quipu.client.get("/api/v1/workflows", params={"min_position": position}, headers=quipu.auth())
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["retry-after"] == "1"
        problem: dict[str, Any] = r.json()
        assert problem["type"].endswith("/not_yet_applied")
        assert str(position) in problem["detail"] and "workflows" in problem["detail"]
        # A position already applied (0: before any event) answers at once.
        assert (
            _listed(await quipu.client.get("/api/v1/workflows", params={"min_position": 0}, headers=quipu.auth()))
            == set()
        )


async def test_a_position_that_is_not_a_log_position_is_a_422(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with running_quipu(database_url, nats_url, subjects, background=False) as quipu:
        for bad in ("abc", "-1", "1.5", str(1 << 63), ""):
            r = await quipu.client.get("/api/v1/executions", params={"min_position": bad}, headers=quipu.auth())
            assert r.status_code == 422, (bad, r.text)
            errors = r.json()["errors"]
            assert [(e["field"], e["code"]) for e in errors] == [("min_position", "invalid")], bad
        _, position = await _create_workflow(quipu, "head")
        beyond = await quipu.client.get(
            "/api/v1/workflows", params={"min_position": position + 1000}, headers=quipu.auth()
        )
        assert beyond.status_code == 422, beyond.text
        assert [(e["field"], e["code"]) for e in beyond.json()["errors"]] == [("min_position", "beyond_head")]
        twice = await quipu.client.get("/api/v1/executions?min_position=1&min_position=2", headers=quipu.auth())
        assert twice.status_code == 422
        unauthenticated = await quipu.client.get("/api/v1/executions", params={"min_position": 10**9})
        assert unauthenticated.status_code == 401  # authentication first: no wait for a stranger


def test_the_read_database_and_the_wait_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    default = Wiring.from_settings(Settings(), "postgresql://primary/q", "nats://unused")
    assert (default.read_database_url, default.min_position_wait_ms) == (None, 5000)  # None: the primary
    monkeypatch.setenv("QUIPU_READ_DATABASE_URL", "postgresql://standby/q")
    monkeypatch.setenv("QUIPU_MIN_POSITION_WAIT_MS", "0")
    configured = Wiring.from_settings(Settings(), "postgresql://primary/q", "nats://unused")
    assert (configured.read_database_url, configured.min_position_wait_ms) == ("postgresql://standby/q", 0)


async def test_every_listed_operation_exists_and_documents_the_parameter(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    async with running_quipu(database_url, nats_url, subjects, background=False) as quipu:
        document = (await quipu.client.get("/docs/openapi.json")).json()
    documented = {
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and any(p.get("name") == "min_position" for p in op.get("parameters", []))
    }
    assert documented == set(READS)
    assert {name for names in READS.values() for name in names} <= set(PROJECTIONS)
