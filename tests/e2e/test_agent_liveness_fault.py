"""Agent liveness across a crash: an agent holding a lock stops heartbeating and Quipu is
SIGKILLed before the agent's deadline; after the restart the durable timer (rebuilt from the
log, not from memory) marks the agent offline and revokes its lock, each exactly once,
also after a second SIGKILL and restart."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.e2e.test_orchestration import Quipu
from tests.nats_access import NatsForTests

OFFLINE_AFTER = 2.0


def _wait(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _counts(database_url: str, agent_id: str, lock_id: str) -> dict[str, int]:
    """How often the agent went offline, and how its grant ended (events naming the grant)."""
    with psycopg.connect(database_url) as conn:
        offline = conn.execute(
            "SELECT count(*) FROM event_dag WHERE kind = 'agent.went_offline' AND stream_id = %s", (agent_id,)
        ).fetchone()
        ended = conn.execute(
            "SELECT d.kind, count(*) FROM event_edges e JOIN event_dag d ON d.event_id = e.child_id"
            " WHERE e.parent_id = %s AND d.kind LIKE 'lock.%%' GROUP BY d.kind",
            (lock_id,),
        ).fetchall()
    assert offline is not None
    return {"agent.went_offline": int(offline[0]), "lock.released": 0, "lock.revoked": 0, "lock.expired": 0} | {
        k: int(n) for k, n in ended
    }


def test_a_silent_lock_holder_goes_offline_once_after_quipu_is_killed(
    infra: tuple[str, NatsForTests], tmp_path: Path
) -> None:
    database_url, nats = infra
    quipu = Quipu(database_url, nats, tmp_path)
    quipu.env["QUIPU_AGENT_OFFLINE_AFTER"] = str(OFFLINE_AFTER)
    quipu.start()
    try:
        api = httpx.Client(base_url=quipu.api, headers={"Authorization": f"Bearer {quipu.key}"}, timeout=10)
        silent = api.post("/agents", json={"agent_type": "Tester"}).json()["agent_id"]
        other = api.post("/agents", json={"agent_type": "Tester"}).json()["agent_id"]
        resource = str(uuid.uuid4())
        body = {"mode": "Exclusive", "resource_type": "trajectory", "resource_id": resource, "timeout_ms": 600_000}
        r = api.post("/locks/acquire", json={**body, "holder_agent_id": silent})
        assert r.status_code == 201, r.text
        lock = r.json()
        # Killed while the agent is still alive: nothing in memory knows its deadline any more.
        quipu.kill()
        time.sleep(OFFLINE_AFTER + 1)
        quipu.start()

        def offline() -> bool:
            r = api.get(f"/agents/{silent}")
            return r.status_code == 200 and r.json()["status"] == "offline"

        _wait(offline, "the silent agent to be marked offline")
        assert api.get(f"/locks/{lock['lock_id']}").status_code == 404
        # The lock is free: another agent gets it, with a higher fencing token. The other
        # agent beats first, since it was silent through the crash as well.
        assert api.post(f"/agents/{other}/heartbeat").status_code == 200
        taken = api.post("/locks/acquire", json={**body, "holder_agent_id": other, "timeout_ms": 60_000})
        assert taken.status_code == 201, taken.text
        assert taken.json()["fencing_token"] == lock["fencing_token"] + 1

        once = {"agent.went_offline": 1, "lock.released": 0, "lock.revoked": 1, "lock.expired": 0}
        assert _counts(database_url, silent, lock["lock_id"]) == once
        # Exactly once, even across another crash and restart.
        quipu.kill()
        quipu.start()
        time.sleep(OFFLINE_AFTER + 2)
        assert _counts(database_url, silent, lock["lock_id"]) == once
    finally:
        quipu.stop()
