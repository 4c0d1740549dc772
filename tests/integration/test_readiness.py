"""The API's readiness follows Postgres only: NATS down is reported, not fatal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.subjects import Subjects
from quipu.embedded import EmbeddedNats
from tests.integration.conftest import running_quipu

DEFINITION = {"nodes": [{"id": "a"}]}


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_ready_stays_200_with_nats_stopped(database_url: str, own_nats: EmbeddedNats, subjects: Subjects) -> None:
    async with running_quipu(database_url, own_nats.endpoint, subjects, background=False) as q:
        ready = await q.client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"postgres": "ok", "nats": "ok"}

        own_nats.stop()
        for _ in range(3):  # the connected client notices; a reconnect attempt must not block the probe
            started = time.monotonic()
            ready = await q.client.get("/ready")
            assert time.monotonic() - started < 2.0
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "ok"
            assert body["checks"]["postgres"] == "ok"
            assert body["checks"]["nats"] != "ok"  # still reported, as information

        # And the API is as ready as it says: commands are accepted without NATS.
        created = await q.client.post(
            "/api/v1/workflows", json={"name": "no-nats", "definition": DEFINITION}, headers=q.auth()
        )
        assert created.status_code == 201
