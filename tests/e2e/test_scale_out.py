"""The parts as separate processes, as in production: two APIs, two relays, a projector.

Nothing may be duplicated or lost: concurrent updates through both APIs end in 200 or
409 (never a lost update), every event is in JetStream exactly once and in order even
when the active relay is SIGKILLed, and the read model counts every workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from nats.js.api import DeliverPolicy

from bus.runtime import connect_nats
from bus.streams import ensure_event_stream
from bus.subjects import Subjects
from quipu.embedded import free_port
from tests.nats_access import NatsForTests

QUIPU = [sys.executable, "-m", "quipu.cli"]
DEFINITION = {"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"from": "a", "to": "b"}]}


def _env(database_url: str, nats: NatsForTests) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    env.update(QUIPU_DATABASE_URL=database_url, QUIPU_LOG_LEVEL="warning", **nats.env())
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*QUIPU, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"api on {port} not ready")


async def _stream_ids(nats_url: str) -> list[str]:
    nc = await connect_nats(nats_url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        subjects = Subjects()
        await ensure_event_stream(js, subjects)
        info = await js.stream_info(subjects.events_stream)
        sub = await js.subscribe(subjects.all_events, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        ids = []
        for _ in range(info.state.messages):
            msg = await sub.next_msg(timeout=10)
            ids.append(msg.headers["Nats-Msg-Id"])
        return ids
    finally:
        await nc.close()


def test_two_apis_two_relays_and_a_projector(infra: tuple[str, NatsForTests], tmp_path: Path) -> None:
    database_url, nats_url = infra
    env = _env(database_url, nats_url)
    log = tmp_path / "processes.log"
    key = subprocess.run(
        [*QUIPU, "keys", "create", "--tenant", "acme", "--scopes", "read,write,admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert key.startswith("qk_")
    ports = [free_port(), free_port()]
    procs = [_spawn(["api", "--port", str(p)], env, log) for p in ports]
    relays = [_spawn(["relay"], env, log) for _ in range(2)]
    procs.append(_spawn(["projector", "workflows"], env, log))
    try:
        for port in ports:
            _wait_ready(port)
        headers = {"Authorization": f"Bearer {key}"}
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}/api/v1", headers=headers, timeout=30) for p in ports]

        async def burst() -> tuple[list[int], str]:
            async with httpx.AsyncClient(headers=headers, timeout=30) as c:

                async def create(i: int) -> int:
                    r = await c.post(
                        f"http://127.0.0.1:{ports[i % 2]}/api/v1/workflows",
                        json={"name": f"wf-{i}", "definition": DEFINITION},
                    )
                    return r.status_code

                codes = await asyncio.gather(*[create(i) for i in range(40)])
                target = (
                    await c.post(
                        f"http://127.0.0.1:{ports[0]}/api/v1/workflows",
                        json={"name": "contended", "definition": DEFINITION},
                    )
                ).json()["id"]

                async def update(i: int) -> int:
                    r = await c.put(
                        f"http://127.0.0.1:{ports[i % 2]}/api/v1/workflows/{target}",
                        json={"name": f"u{i}", "definition": DEFINITION},
                    )
                    return r.status_code

                return [*codes, *await asyncio.gather(*[update(i) for i in range(12)])], target

        codes, target = asyncio.run(burst())
        assert codes[:40] == [201] * 40
        updates = codes[40:]
        assert set(updates) <= {200, 409} and 200 in updates
        final = clients[1].get(f"/workflows/{target}").json()
        assert final["version"] == 1 + updates.count(200)  # no update was lost

        # Kill the active relay; the standby takes over and nothing is lost or doubled.
        with psycopg.connect(database_url) as conn:
            active = conn.execute(
                "SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
                " WHERE a.application_name = 'quipu-relay' AND l.locktype = 'advisory' AND l.granted"
            ).fetchall()
        assert len(active) == 1
        leader = [r for r in relays if _owns(r, active[0][0], database_url)]
        assert len(leader) == 1
        leader[0].send_signal(signal.SIGKILL)
        assert leader[0].wait(timeout=10) == -signal.SIGKILL
        for i in range(20):
            assert (
                clients[i % 2].post("/workflows", json={"name": f"after-{i}", "definition": DEFINITION}).status_code
                == 201
            )

        deadline = time.monotonic() + 60
        while clients[0].get("/workflows?limit=1").json()["total"] < 61 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert clients[0].get("/workflows?limit=1").json()["total"] == 61
        with psycopg.connect(database_url) as conn:
            logged = [str(r[0]) for r in conn.execute("SELECT event_id FROM event_dag ORDER BY notification_id")]
        deadline = time.monotonic() + 60
        while True:
            published = asyncio.run(_stream_ids(nats_url))
            if len(published) >= len(logged) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert published == logged  # every event exactly once, in log order

        rebuild = [*QUIPU, "projector", "rebuild", "workflows", "--log-level", "info"]
        rebuilt = subprocess.run(rebuild, env=env, capture_output=True, text=True, check=True)
        progress = [json.loads(line) for line in rebuilt.stderr.splitlines() if '"rebuild_progress"' in line]
        assert "rebuilt workflows" in rebuilt.stdout and progress[-1]["percent"] == 100.0  # log lines, not a bar
        assert clients[0].get("/workflows?limit=1").json()["total"] == 61
    finally:
        for proc in procs + relays:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs + relays:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _owns(relay: subprocess.Popen[bytes], backend_pid: int, database_url: str) -> bool:
    """Whether this relay process holds the leader lock (its Postgres backend's client port
    belongs to the relay process)."""
    import psutil

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT client_port FROM pg_stat_activity WHERE pid = %s", (backend_pid,)).fetchone()
    if row is None:
        return False
    ports = {c.laddr.port for c in psutil.Process(relay.pid).net_connections(kind="tcp")}
    return row[0] in ports
