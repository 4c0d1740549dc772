"""``quipu projector rebuild NAME`` as a real process against a real Postgres: into a pipe it
writes progress as JSON log lines (never a carriage return); on a terminal it draws a bar."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys

from tests.integration.conftest import Running

QUIPU = [sys.executable, "-m", "quipu.cli"]


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    return {**env, "QUIPU_DATABASE_URL": database_url}


async def _some_workflows(quipu: Running, count: int) -> None:
    for i in range(count):
        body = {"name": f"w{i}", "definition": {"nodes": [{"id": "a"}]}}
        r = await quipu.client.post("/api/v1/workflows", json=body, headers=quipu.auth())
        assert r.status_code == 201, r.text


def _rebuild_into_a_pipe(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QUIPU, "projector", "rebuild", "workflows", "--progress-interval", "0"],
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_rebuild_into_a_pipe_logs_json_progress_lines(quipu: Running, database_url: str) -> None:
    await _some_workflows(quipu, 5)
    done = await asyncio.to_thread(_rebuild_into_a_pipe, database_url)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    lines = [json.loads(text) for text in done.stderr.splitlines()]  # nothing but JSON objects
    progress = [line for line in lines if line["event"] == "rebuild_progress"]
    assert progress and all(line["logger"] == "quipu.progress" for line in progress)
    assert all(line["projection"] == "workflows" and line["level"] == "info" for line in progress)
    assert progress[-1]["percent"] == 100.0 and progress[-1]["done"] == progress[-1]["total"] >= 5
    rebuilt = next(line for line in lines if line["event"] == "projection_rebuilt")
    assert rebuilt["logger"] == "projections.rebuild" and rebuilt["projection"] == "workflows"
    assert done.stdout == f"rebuilt workflows up to notification {rebuilt['position']}\n"
    r = await quipu.client.get("/api/v1/workflows", headers=quipu.auth())
    assert r.json()["total"] == 5  # the rebuilt read model serves the same workflows


def _rebuild_on_a_terminal(database_url: str) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*QUIPU, "projector", "rebuild", "workflows"],
        env={**_env(database_url), "COLUMNS": "120", "TERM": "xterm"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the process closed the terminal (Linux answers EIO)
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert proc.stdout is not None
    proc.stdout.read()
    return proc.wait(timeout=60), seen.decode(errors="replace")


async def test_rebuild_on_a_terminal_draws_a_bar(quipu: Running, database_url: str) -> None:
    await _some_workflows(quipu, 3)
    code, screen = await asyncio.to_thread(_rebuild_on_a_terminal, database_url)
    assert code == 0, screen
    assert "rebuild workflows" in screen and "100%" in screen and "━" in screen  # rich's bar
    assert "rebuild_progress" not in screen  # a bar instead of progress lines
