"""`quipu up` as a user runs it: a real process with embedded Postgres and NATS."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from quipu.embedded import free_port
from quipu.ports import DEFAULT_API_PORT

QUIPU = [sys.executable, "-m", "quipu.cli"]


def _start(data_dir: Path, port: int | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    return subprocess.Popen(
        [*QUIPU, "--data-dir", str(data_dir), "up", *(["--port", str(port)] if port is not None else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_up(proc: subprocess.Popen[str], data_dir: Path, timeout: float = 90) -> tuple[dict[str, Any], list[str]]:
    """Wait for runtime.json; it must appear only once the API answers, so no retrying after."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True).start()
    runtime_file = data_dir / "runtime.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("quipu up exited:\n" + "\n".join(lines))
        if runtime_file.exists():
            runtime = json.loads(runtime_file.read_text())
            base = runtime["api_url"].removesuffix("/api/v1")
            assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
            while not any("Quipu is up" in line for line in lines) and time.monotonic() < deadline:
                time.sleep(0.05)
            return runtime, lines
        time.sleep(0.05)
    raise AssertionError("quipu up not ready:\n" + "\n".join(lines))


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=60)


@contextlib.contextmanager
def _holding(port: int) -> Iterator[None]:
    """Keep ``port`` taken (if someone else already holds it, it is taken all the same)."""
    sock = socket.socket()
    try:
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield
    finally:
        sock.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "quipu-data"


def test_up_prints_urls_serves_and_keeps_data_across_restarts(data_dir: Path) -> None:
    # 8000 is taken: `quipu up` without a port moves to a free one and says so everywhere.
    with _holding(DEFAULT_API_PORT):
        proc = _start(data_dir, None)
        try:
            runtime, lines = _wait_up(proc, data_dir)
            port = urlsplit(runtime["api_url"]).port
            assert port is not None and port != DEFAULT_API_PORT
            assert stat.S_IMODE((data_dir / "runtime.json").stat().st_mode) == 0o600
            printed = "\n".join(lines)
            for key in ("api_url", "docs_url", "ui_url", "database_url", "nats_url", "api_key"):
                assert runtime[key] in printed, key
            assert f"http://127.0.0.1:{port}/api/v1" in printed
            assert ":5432/" not in runtime["database_url"] and not runtime["nats_url"].endswith(":4222")
            # The database URL carries the embedded Postgres password, and only it gets in.
            password = urlsplit(runtime["database_url"]).password
            assert password and len(password) >= 32
            with psycopg.connect(runtime["database_url"]) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            wrong = runtime["database_url"].replace(password, "wrong")
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(wrong).close()
            headers = {"Authorization": f"Bearer {runtime['api_key']}"}
            base = f"http://127.0.0.1:{port}/api/v1"
            tail = subprocess.Popen(
                [*QUIPU, "--data-dir", str(data_dir), "events", "tail", "--limit", "1"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            # The tail prints only events published after it subscribed: wait for it to say so.
            assert tail.stderr is not None
            for line in tail.stderr:
                if "events_tail_subscribed" in line:
                    break
            created = httpx.post(
                f"{base}/workflows",
                headers=headers,
                timeout=10,
                json={"name": "e2e", "definition": {"nodes": [{"id": "a"}]}},
            ).json()
            out, _ = tail.communicate(timeout=30)
            assert json.loads(out.splitlines()[0])["event_id"] == created["last_event_id"]
            assert (httpx.get(f"http://127.0.0.1:{port}/docs/openapi.json", timeout=10)).status_code == 200
        finally:
            assert _stop(proc) == 0
    # Stopped: runtime.json no longer points at a port nobody serves.
    assert not (data_dir / "runtime.json").exists()
    # Everything it started is gone, and a restart (on the port asked for) finds the data.
    proc = _start(data_dir, port)
    try:
        runtime2, _ = _wait_up(proc, data_dir)
        assert runtime2["api_url"] == runtime["api_url"]
        assert runtime2["api_key"] == runtime["api_key"]
        assert urlsplit(runtime2["database_url"]).password == password  # kept across restarts
        r = httpx.get(f"{base}/workflows/{created['id']}", headers=headers, timeout=10)
        assert r.status_code == 200 and r.json()["name"] == "e2e"
    finally:
        assert _stop(proc) == 0
    assert not (data_dir / "runtime.json").exists()


def test_up_refuses_an_explicit_port_that_is_taken(data_dir: Path) -> None:
    port = free_port()
    with _holding(port):
        proc = _start(data_dir, port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in out
    assert "Quipu is up" not in out
    # It failed before starting or announcing anything.
    assert not (data_dir / "runtime.json").exists()
    assert not (data_dir / "postgres").exists()
