"""Losing the Postgres primary under command load, and promoting its synchronous standby.

Quipu (the API in-process, with its event store and pools) is given one multi-host URL,
``primary,standby`` with ``target_session_attrs=read-write``. Under steady load the primary is
SIGKILLed and the standby promoted; Quipu is not restarted. Commands in flight or arriving
while there is no primary must answer 503 with ``Retry-After`` (never another error), every
acknowledged command must be on the new primary, nothing may be half-written (every event has
its DAG row) or duplicated, and commands must succeed again once the standby is promoted.
The relay and the projectors run too (against NATS) and are not restarted either: the
workflows read model must come to hold exactly the log's workflows. The counts and the pause
(last acknowledgement before the kill to the first after the promotion) are printed as one
JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bus.subjects import Subjects
from tests.faults.pg_pair import PgPair, start_pair
from tests.integration.conftest import running_quipu

pytestmark = pytest.mark.fault
CLIENTS = 4
BEFORE_KILL_S = 2.0
AFTER_PROMOTION_ACKS = 20
# How long a command waits for a primary: the store retries a failed append 10 times, each
# waiting up to POSTGRES_CONNECT_TIMEOUT for a connection (eventsourcing's setting, read as
# QUIPU_POSTGRES_CONNECT_TIMEOUT; 5 s by default, so about 50 s). Shortened here so the outage
# below outlasts it and commands must answer 503; a shorter outage is only a pause.
CONNECT_TIMEOUT_S = "1"
NO_PRIMARY_S = 15.0


@dataclass
class Load:
    sent: int = 0
    acknowledged: dict[str, float] = field(default_factory=dict)  # workflow id -> when
    statuses: dict[int, int] = field(default_factory=dict)
    missing_retry_after: int = 0
    killed_at: float | None = None
    promoted_at: float | None = None

    def acked_after_promotion(self) -> int:
        return sum(t > self.promoted_at for t in self.acknowledged.values()) if self.promoted_at else 0


@pytest.fixture
def pair() -> Any:
    # Not pytest's tmp_path: pytest runs elsewhere on the machine prune old numbered
    # directories under the shared base, which would pull the clusters' files away mid-test.
    with tempfile.TemporaryDirectory(prefix="quipu-failover-") as root:
        Path(root).chmod(0o755)  # the standby's files are written by the server's account
        started = start_pair(Path(root))
        try:
            yield started
        finally:
            started.stop()


async def _client(quipu: Any, load: Load, n: int, done: asyncio.Event) -> None:
    i = 0
    while not done.is_set():
        i += 1
        load.sent += 1
        r = await quipu.client.post(
            "/api/v1/workflows",
            json={"name": f"c{n}-{i}", "definition": {"nodes": [{"id": "a"}]}},
            headers=quipu.auth(),
        )
        load.statuses[r.status_code] = load.statuses.get(r.status_code, 0) + 1
        if r.status_code == 201:
            load.acknowledged[r.json()["id"]] = time.monotonic()
        elif r.status_code == 503:
            load.missing_retry_after += "retry-after" not in r.headers
            await asyncio.sleep(0.05)


async def _fail_over(pair: PgPair, load: Load, done: asyncio.Event) -> None:
    await asyncio.sleep(BEFORE_KILL_S)
    load.killed_at = time.monotonic()
    await asyncio.to_thread(pair.primary.kill)
    # No primary at all for longer than a command waits for one: commands then fail, as 503.
    await asyncio.sleep(NO_PRIMARY_S)
    await asyncio.to_thread(pair.promote)
    load.promoted_at = time.monotonic()
    deadline = time.monotonic() + 120
    while load.acked_after_promotion() < AFTER_PROMOTION_ACKS and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    done.set()


async def _read_model_caught_up(url: str, timeout: float = 120.0) -> bool:
    """Whether the workflows read model comes to hold exactly the log's workflows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error):
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT (SELECT array_agg(originator_id ORDER BY originator_id) FROM quipu_events"
                    "  WHERE topic = 'workflow.created')"
                    " IS NOT DISTINCT FROM"
                    " (SELECT array_agg(workflow_id ORDER BY workflow_id) FROM rm_workflows.workflows)"
                )
                if (await cur.fetchone()) == (True,):
                    return True
        await asyncio.sleep(0.5)
    return False


@pytest.mark.timeout(600)
async def test_primary_loss_loses_nothing_acknowledged(
    pair: PgPair, nats_url: str, subjects: Subjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIPU_POSTGRES_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S)
    url = pair.url()
    load = Load()
    done = asyncio.Event()
    async with running_quipu(url, nats_url, subjects) as quipu:
        await asyncio.gather(_fail_over(pair, load, done), *[_client(quipu, load, n, done) for n in range(CLIENTS)])
        # The relay and the projectors, never restarted either, carry on from their positions.
        caught_up = await _read_model_caught_up(url)
    with psycopg.connect(url, autocommit=True) as conn:  # the new primary: the URL finds it
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        rows = conn.execute("SELECT originator_id FROM quipu_events WHERE topic = 'workflow.created'").fetchall()
        created = [r[0] for r in rows]
        (unindexed,) = conn.execute(
            "SELECT count(*) FROM quipu_events e LEFT JOIN event_dag d USING (notification_id) WHERE d.event_id IS NULL"
        ).fetchone() or (None,)
        (names, distinct_names) = conn.execute(
            "SELECT count(*), count(DISTINCT convert_from(state, 'UTF8')::jsonb ->> 'name')"
            " FROM quipu_events WHERE topic = 'workflow.created'"
        ).fetchone() or (None, None)
    present = set(map(str, created))
    before = [t for t in load.acknowledged.values() if load.killed_at and t < load.killed_at]
    after = [t for t in load.acknowledged.values() if load.promoted_at and t > load.promoted_at]
    summary = {
        "sent": load.sent,
        "acknowledged": len(load.acknowledged),
        "statuses": load.statuses,
        "present": len(present & set(load.acknowledged)),
        "stored_not_acknowledged": len(present - set(load.acknowledged)),
        "duplicated": (names or 0) - (distinct_names or 0),
        "unindexed_events": unindexed,
        "pause_s": round(min(after) - max(before), 3) if before and after else None,
        "read_model_caught_up": caught_up,
    }
    print("postgres_failover", json.dumps(summary))
    assert before and after, summary  # load ran on both sides of the fail-over, without a restart
    assert set(load.statuses) <= {201, 503}, summary  # an outage is a 503, never a 500
    assert load.statuses.get(503, 0) > 0 and load.missing_retry_after == 0, summary
    assert set(load.acknowledged) <= present, summary  # every acknowledged command survived
    assert summary["duplicated"] == 0 and unindexed == 0, summary
    assert caught_up, summary
