"""List queries served by a hot standby, and ``min_position`` making them read-your-writes.

Quipu writes to a primary and its list queries read a streaming standby
(``QUIPU_READ_DATABASE_URL``). The standby's replay is paused, so it lags the primary on
purpose: a command's write reaches the primary's read model, a plain list on the standby does
not show it, and the same list with the command's ``Quipu-Log-Position`` as ``min_position``
waits - and answers with the write once replay resumes.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from bus.subjects import Subjects
from tests.faults.pg_pair import PgPair, start_pair
from tests.integration.conftest import running_quipu

pytestmark = pytest.mark.fault


@pytest.fixture
def pair() -> Iterator[PgPair]:
    with tempfile.TemporaryDirectory(prefix="quipu-replica-") as root:
        Path(root).chmod(0o755)  # the standby's files are written by the server's account
        started = start_pair(Path(root))
        try:
            yield started
        finally:
            started.stop()


def _standby_url(pair: PgPair) -> str:
    secret = quote(pair.standby.password, safe="")
    return f"postgresql://postgres:{secret}@127.0.0.1:{pair.standby.port}/{pair.database}"


def _replay(pair: PgPair, paused: bool) -> None:
    with psycopg.connect(_standby_url(pair), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


async def _primary_applied(url: str, position: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT notification_id FROM rm_workflows.tracking")
            row = await cur.fetchone()
            if row is not None and row[0] >= position:
                return
            assert time.monotonic() < deadline, "the primary's workflows read model never applied the write"
            await asyncio.sleep(0.1)


@pytest.mark.timeout(300)
async def test_min_position_makes_a_list_read_from_a_lagging_standby_include_the_write(
    pair: PgPair, nats_url: str, subjects: Subjects
) -> None:
    primary_url = pair.url()
    async with running_quipu(
        primary_url, nats_url, subjects, read_database_url=_standby_url(pair), min_position_wait_ms=30_000
    ) as quipu:
        async with quipu.ctx.read_models.connection() as conn:
            cur = await conn.execute("SELECT pg_is_in_recovery() AS standby")
            assert await cur.fetchone() == {"standby": True}  # list queries really read the standby
        await asyncio.to_thread(_replay, pair, True)
        r = await quipu.client.post(
            "/api/v1/workflows",
            json={"name": "on-primary", "definition": {"nodes": [{"id": "a"}]}},
            headers=quipu.auth(),
        )
        assert r.status_code == 201, r.text
        workflow_id, position = r.json()["id"], int(r.headers["Quipu-Log-Position"])
        await _primary_applied(primary_url, position)

        plain = await quipu.client.get("/api/v1/workflows", headers=quipu.auth())
        assert plain.status_code == 200
        assert workflow_id not in {w["id"] for w in plain.json()["items"]}  # the standby lags
        waiting = asyncio.create_task(
            quipu.client.get("/api/v1/workflows", params={"min_position": position}, headers=quipu.auth())
        )
        await asyncio.sleep(0.5)
        assert not waiting.done(), "answered while the standby had not replayed the write"
        await asyncio.to_thread(_replay, pair, False)
        fresh = await waiting
        assert fresh.status_code == 200, fresh.text
        assert workflow_id in {w["id"] for w in fresh.json()["items"]}
