"""Split roles as a supervisor sees them: health ports, exit codes, and `quipu status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from projections.registry import PROJECTIONS
from quipu.embedded import EmbeddedNats, EmbeddedPostgres, free_port

QUIPU = [sys.executable, "-m", "quipu.cli"]
DEFINITION = {"nodes": [{"id": "a"}]}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedPostgres, dict[str, str]]]:
    """One Postgres and NATS for the module; each test gets a database of its own."""
    root = tmp_path_factory.mktemp("roles")
    os.chmod(root, 0o755)
    pg = EmbeddedPostgres(root / "pg", extra_settings={"fsync": "off"})
    pg.start()
    nats_server = EmbeddedNats(root / "nats")
    try:
        nats_server.start()
        yield pg, nats_server.env()
    finally:
        nats_server.stop()
        pg.stop(mode="immediate")


@pytest.fixture
def env(servers: tuple[EmbeddedPostgres, dict[str, str]], tmp_path: Path) -> dict[str, str]:
    pg, nats_env = servers
    database_url = pg.create_database("roles_" + uuid.uuid4().hex[:10])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    # A subject prefix per test: the module's tests share one NATS.
    prefix = "r" + uuid.uuid4().hex[:8]
    return {
        **clean,
        "QUIPU_DATABASE_URL": database_url,
        **nats_env,
        "QUIPU_SUBJECT_PREFIX": prefix,
        "QUIPU_DATA_DIR": str(tmp_path / "data"),
        "QUIPU_LOG_FORMAT": "json",
    }


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([*QUIPU, *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    def events(self) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def wait_for_event(self, name: str, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name:
                    return event
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"no {name} in:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def _get(url: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_ready(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = _get(url)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_relay_exits_non_zero_when_its_task_dies(env: dict[str, str], tmp_path: Path) -> None:
    # A relay_position Postgres cannot use: every read of it is a ProgrammingError (undefined
    # column), which no retry fixes. The process must not stay up without its relay.
    with psycopg.connect(env["QUIPU_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE relay_position (name text PRIMARY KEY, position bigint NOT NULL)")
    relay = Process(["relay"], env, tmp_path / "relay.log")
    try:
        code = relay.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        relay.stop()
        raise AssertionError("relay kept running without its role task:\n" + relay.log.read_text()) from None
    assert code != 0
    failed = [e for e in relay.events() if e.get("event") == "role_task_failed"]
    assert failed and failed[0]["task"] == "relay" and "UndefinedColumn" in str(failed[0]["error"])
    assert any(e.get("event") == "quipu_stopped" for e in relay.events())  # stopped cleanly, not killed


def test_relay_and_projector_serve_health_ready_and_metrics(env: dict[str, str], tmp_path: Path) -> None:
    relay_port = free_port()
    relay = Process(["relay", "--health-port", str(relay_port)], env, tmp_path / "relay.log")
    projector: Process | None = None
    try:
        # The relay listens first: the projector's free port (chosen by the kernel) could
        # otherwise be the one free_port() just handed the relay, before the relay binds it.
        assert int(str(relay.wait_for_event("health_listening")["port"])) == relay_port
        # The projector on a free port of its choosing, found in its log.
        projector = Process(["projector", "workflows"], env, tmp_path / "projector.log")
        listening = projector.wait_for_event("health_listening")
        projector_port = int(str(listening["port"]))
        assert projector_port not in (0, relay_port)
        for port, metric in ((relay_port, "quipu_relay_published_total"), (projector_port, "quipu_projection_applied")):
            base = f"http://127.0.0.1:{port}"
            health = _get(f"{base}/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            ready = _wait_ready(f"{base}/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ok", "checks": {"postgres": "ok", "roles": "ok"}}
            metrics = _get(f"{base}/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            assert metric in metrics.text
            assert _get(f"{base}/nothing").status_code == 404
        assert relay.proc.poll() is None and projector.proc.poll() is None
    finally:
        codes = [relay.stop(), projector.stop() if projector else 0]
    assert projector is not None
    assert codes == [0, 0], relay.log.read_text() + projector.log.read_text()


def test_role_not_ready_while_postgres_does_not_answer(env: dict[str, str], tmp_path: Path) -> None:
    url = env["QUIPU_DATABASE_URL"]
    missing = {**env, "QUIPU_DATABASE_URL": url.rsplit("/", 1)[0] + "/no_such_database"}
    port = free_port()
    relay = Process(["relay", "--health-port", str(port)], missing, tmp_path / "relay.log")
    try:
        assert _get(f"http://127.0.0.1:{port}/health").status_code == 200  # alive, retrying
        ready = _get(f"http://127.0.0.1:{port}/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"].startswith("error")
        assert relay.proc.poll() is None  # an outage is retried, not a reason to exit
    finally:
        assert relay.stop() == 0


def test_health_port_taken_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [*QUIPU, "relay", "--health-port", str(port)], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_status_prints_projections_from_the_api(env: dict[str, str], tmp_path: Path) -> None:
    key = subprocess.run(
        [*QUIPU, "keys", "create", "--tenant", "acme", "--scopes", "read,write,admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    api = Process(["api", "--port", str(port)], env, tmp_path / "api.log")
    try:
        assert _wait_ready(f"http://127.0.0.1:{port}/ready").status_code == 200
        created = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/workflows",
            json={"name": "status", "definition": DEFINITION},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert created.status_code == 201

        args = [*QUIPU, "status", "--api-url", f"http://127.0.0.1:{port}", "--api-key", key]
        table = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        header = next(line for line in lines if line.startswith("NAME"))
        for column in ("POSITION", "HEAD", "LAG_EVENTS", "LAG_SECONDS", "ERRORS"):
            assert column in header.split()
        for name in PROJECTIONS:
            assert any(line.split()[:1] == [name] for line in lines), name

        # The same numbers as the API, through --json; no projector runs, so all lag behind.
        as_json = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=60)
        document = json.loads(as_json.stdout)
        rows = document if isinstance(document, list) else document["projections"]
        workflows = next(row for row in rows if row["name"] == "workflows")
        assert workflows["head"] >= 1 and workflows["position"] == 0 and workflows["lag_events"] >= 1
        row = next(line.split() for line in lines if line.split()[:1] == ["workflows"])
        assert row[1:4] == ["0", str(workflows["head"]), str(workflows["lag_events"])]

        # With nothing on the command line it asks the API named in runtime.json.
        data_dir = Path(env["QUIPU_DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        api_url = f"http://127.0.0.1:{port}/api/v1"
        (data_dir / "runtime.json").write_text(json.dumps({"api_url": api_url, "api_key": key}))
        from_runtime = subprocess.run([*QUIPU, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert from_runtime.returncode == 0 and "workflows" in from_runtime.stdout

        refused = subprocess.run([*args[:-1], "qk_wrong"], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "401" in refused.stderr
    finally:
        assert api.stop() == 0


def test_cli_refuses_to_revoke_the_last_admin_key(env: dict[str, str]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*QUIPU, "keys", *args], env=env, capture_output=True, text=True, timeout=60)

    assert cli("create", "--tenant", "solo", "--scopes", "admin").returncode == 0
    (only,) = [json.loads(line) for line in cli("list", "--tenant", "solo").stdout.splitlines()]
    refused = cli("revoke", "--tenant", "solo", only["id"])
    assert refused.returncode != 0
    assert "not revoked" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads(cli("list", "--tenant", "solo").stdout)["revoked"] is False


def test_an_api_process_logs_nothing_but_json_lines(env: dict[str, str], tmp_path: Path) -> None:
    """uvicorn's own lines too: the app must not replace the root logger's handler."""
    import socket

    port = free_port()
    api = Process(["api", "--port", str(port)], env, tmp_path / "api.log")
    try:
        assert _wait_ready(f"http://127.0.0.1:{port}/ready").status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs this itself, as a warning
            raw.recv(1024)
        deadline = time.monotonic() + 30
        while not any(e.get("logger") == "uvicorn.error" for e in api.events()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert api.stop() == 0
    lines = api.log.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"event", "level", "logger", "timestamp"} <= line.keys() for line in parsed), lines
    invalid = [line for line in parsed if line["logger"] == "uvicorn.error"]
    assert invalid and invalid[0]["level"] == "warning" and "Invalid HTTP request" in invalid[0]["event"]
