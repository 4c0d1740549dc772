"""The README's worker example, run the way the README tells a newcomer to run it.

Nothing here restates the README: the worker code, the lines that read the API's URL and key
from runtime.json, the curl that creates the first workflow and the curl that makes a worker
key are all cut out of README.md and run as they are (the shell lines through ``bash``). Port
8000 is held, so a README that assumed :8000 would fail here instead of in a user's terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from quipu.ports import DEFAULT_API_PORT

README = Path(__file__).resolve().parents[2] / "README.md"
QUIPU = [sys.executable, "-m", "quipu.cli"]
WORKER_MARKER = "# worker.py"
RUN_WORKER = ".venv/bin/python worker.py"
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def _fenced(lang: str) -> list[str]:
    """The top-level fenced blocks of ``lang`` in README.md, in order."""
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```", README.read_text(), re.M | re.S)]


def _block(lang: str, containing: str) -> str:
    found = [b for b in _fenced(lang) if containing in b]
    assert len(found) == 1, f"README.md should have one {lang} block with {containing!r}, has {len(found)}"
    return found[0]


def _first_session() -> tuple[str, str]:
    """(the lines that set API and KEY from runtime.json, those plus the first workflow's curl)."""
    lines = _block("bash", "RUNTIME=").splitlines()
    setup = "\n".join(lines[: lines.index("")])
    assert "runtime.json" in setup and ":8000" not in setup
    create = lines[: next(i for i, line in enumerate(lines) if line.startswith("# ->"))]
    return setup, "\n".join(create)


def _worker_key_lines() -> str:
    """The README's lines that make a worker key, without the last one (which runs the worker)."""
    lines = _block("bash", '"scopes":["worker"]').rstrip("\n").splitlines()
    assert lines[-1] == RUN_WORKER, "the block should end by running the worker"
    return "\n".join(lines[:-1])


def _bash(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"{script}\n--- stderr:\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def _holding(port: int) -> Iterator[None]:
    """Keep ``port`` taken (if another process holds it already, it is taken all the same)."""
    sock = socket.socket()
    try:
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield
    finally:
        sock.close()


def _output(proc: subprocess.Popen[str]) -> tuple[list[str], threading.Thread]:
    """Collect a process's output as it comes (so the pipe never fills), in a thread that
    ends when the process closes it."""
    lines: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    reader.start()
    return lines, reader


@contextlib.contextmanager
def _quipu_up(env: dict[str, str], data_dir: Path) -> Iterator[dict[str, Any]]:
    """``quipu up`` as ``make run`` starts it; yields runtime.json once it is written."""
    proc = subprocess.Popen([*QUIPU, "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines, _ = _output(proc)
    runtime_file = data_dir / "runtime.json"
    try:
        deadline = time.monotonic() + 90
        while not runtime_file.exists():
            assert proc.poll() is None, "quipu up exited:\n" + "".join(lines)
            assert time.monotonic() < deadline, "quipu up not ready:\n" + "".join(lines)
            time.sleep(0.05)
        yield json.loads(runtime_file.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(lines[-40:])


def _wait_started(worker: subprocess.Popen[str], out: list[str], timeout: float = 20) -> None:
    """The helper logs ``worker_started`` once it holds NATS credentials and its consumers."""
    deadline = time.monotonic() + timeout
    while not any("worker_started" in line for line in out):
        assert worker.poll() is None, "the worker exited:\n" + "".join(out)
        assert time.monotonic() < deadline, "the worker did not start:\n" + "".join(out)
        time.sleep(0.05)


def _wait_done(
    api: str, headers: dict[str, str], execution_id: str, worker: subprocess.Popen[str], deadline: float
) -> dict[str, Any]:
    while True:
        assert worker.poll() is None, "the worker exited"
        body: dict[str, Any] = httpx.get(f"{api}/executions/{execution_id}", headers=headers, timeout=10).json()
        if body["status"] in TERMINAL or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "quipu-data"


def test_the_readme_worker_runs_as_written(tmp_path: Path, data_dir: Path) -> None:
    worker_code = _block("python", WORKER_MARKER)
    assert worker_code.startswith(WORKER_MARKER)
    worker_file = tmp_path / "worker.py"
    worker_file.write_text(worker_code)
    setup, create_workflow = _first_session()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")} | {"QUIPU_DATA_DIR": str(data_dir)}

    with _holding(DEFAULT_API_PORT), _quipu_up(env, data_dir) as runtime:
        api, admin_key = runtime["api_url"], runtime["api_key"]
        assert urlsplit(api).port != DEFAULT_API_PORT  # the README's lines must not assume :8000
        # The README's shell lines: API and KEY from runtime.json, then the worker key.
        printed = _bash(f'{setup}\n{_worker_key_lines()}\nprintf "%s\\n%s\\n" "$QUIPU_URL" "$QUIPU_API_KEY"\n', env)
        quipu_url, worker_key = printed.splitlines()
        assert quipu_url == api and worker_key.startswith("qk_")
        admin = {"Authorization": f"Bearer {admin_key}"}
        as_worker = {"Authorization": f"Bearer {worker_key}"}
        assert httpx.get(f"{api}/workflows", headers=as_worker, timeout=10).status_code == 403  # reads nothing

        # The worker, with exactly the two variables the README sets, from a folder of its own.
        worker_env = {k: v for k, v in env.items() if k != "QUIPU_DATA_DIR"}
        worker_env |= {"QUIPU_URL": quipu_url, "QUIPU_API_KEY": worker_key}
        worker = subprocess.Popen(
            [sys.executable, str(worker_file)],
            cwd=tmp_path,
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out, reader = _output(worker)
        try:
            _wait_started(worker, out)
            # The README's first workflow (fetch -> summarise), created by its own curl.
            first = json.loads(_bash(f"{setup}\n{create_workflow}\n", env))
            # And summarise marked flaky, as in the README's larger workflow: attempt 1 raises
            # TaskFailed, the retry succeeds.
            flaky = httpx.post(
                f"{api}/workflows",
                headers=admin,
                timeout=10,
                json={
                    "name": "digest, flaky",
                    "definition": {
                        "nodes": [
                            {"id": "fetch", "agent_type": "http"},
                            {"id": "summarise", "agent_type": "llm", "max_retries": 1, "config": {"flaky": True}},
                        ],
                        "edges": [{"from": "fetch", "to": "summarise"}],
                    },
                },
            ).json()
            runs = [
                httpx.post(
                    f"{api}/executions",
                    headers=admin,
                    timeout=10,
                    json={"workflow_id": wf["id"], "input": {"topic": "q3"}},
                ).json()["id"]
                for wf in (first, flaky)
            ]
            deadline = time.monotonic() + 30
            done = [_wait_done(api, admin, run, worker, deadline) for run in runs]
        finally:
            worker.send_signal(signal.SIGINT)  # Ctrl-C: stop fetching, let handlers finish
            worker.wait(timeout=60)
            reader.join(timeout=10)
        assert worker.returncode == 0, "".join(out)

    for run in done:
        assert run["status"] == "succeeded", run
        assert run["state"]["outputs"] == {"fetch": {"pages": 3}, "summarise": {"summary": "3 pages"}}
        assert run["state"]["summary"] == "3 pages"
    assert done[0]["attempts"] == {"fetch": 1, "summarise": 1}
    assert done[1]["attempts"] == {"fetch": 1, "summarise": 2}
    assert not (data_dir / "runtime.json").exists()  # removed on stop, as the README says
