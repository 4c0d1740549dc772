"""`quipu up` as a user runs it: a real process with embedded Postgres and NATS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quipu.embedded import free_port

QUIPU = [sys.executable, "-m", "quipu.cli"]


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    return subprocess.Popen(
        [*QUIPU, "--data-dir", str(data_dir), "up", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_ready(proc: subprocess.Popen[str], port: int, timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True).start()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("quipu up exited:\n" + "\n".join(lines))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return lines
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("quipu up not ready:\n" + "\n".join(lines))


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "quipu-data"


def test_up_prints_urls_serves_and_keeps_data_across_restarts(data_dir: Path) -> None:
    port = free_port()
    proc = _start(data_dir, port)
    try:
        lines = _wait_ready(proc, port)
        runtime = json.loads((data_dir / "runtime.json").read_text())
        printed = "\n".join(lines)
        for key in ("api_url", "docs_url", "database_url", "nats_url", "api_key"):
            assert runtime[key] in printed, key
        assert ":5432/" not in runtime["database_url"] and not runtime["nats_url"].endswith(":4222")
        headers = {"Authorization": f"Bearer {runtime['api_key']}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        tail = subprocess.Popen(
            [*QUIPU, "--data-dir", str(data_dir), "events", "tail", "--limit", "1"], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.5)  # let the tail subscribe before the event is published
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
    # Everything it started is gone, and a restart finds the data.
    proc = _start(data_dir, port)
    try:
        _wait_ready(proc, port)
        runtime2 = json.loads((data_dir / "runtime.json").read_text())
        assert runtime2["api_key"] == runtime["api_key"]
        r = httpx.get(f"{base}/workflows/{created['id']}", headers=headers, timeout=10)
        assert r.status_code == 200 and r.json()["name"] == "e2e"
    finally:
        assert _stop(proc) == 0
