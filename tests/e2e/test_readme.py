"""README.md runs as written: every ```bash and ```python block, in order, against ``quipu up``
started as ``make run`` starts it (the way the eventsourcing library tests its docs).

Nothing here restates the README. Its blocks are cut into commands and typed, one at a time,
into one bash session in a folder of the reader's own (``.venv`` is the project's), so a
variable set in one block is there in the next. Each command must succeed, every HTTP answer
must be 2xx unless the README claims another status (``# -> 409``), and each ``# -> ...``
claim must hold (see ``readme_session`` for the rules). Port 8000 is held, so a README that
assumed :8000 would fail here instead of in a user's terminal.

Two things stand in for a person at the keyboard, and only these:
- Before each command the test waits until every projection has caught up with the log (at
  most a few seconds), as the time a person takes to read and type does: commands that read a
  read model (lists, search) then see the writes above them.
- ``ANOTHER_TERMINAL`` lists the commands the README runs in a terminal of their own (they
  never end); they run in the background here and must have printed what they are for.
"""

from __future__ import annotations

import contextlib
import json
import os
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

from quipu.ports import DEFAULT_API_PORT
from tests.e2e.readme_session import (
    SAVED_FILE,
    Block,
    Command,
    Shell,
    blocks,
    claim_problems,
    commands,
    expected_status,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
QUIPU = [sys.executable, "-m", "quipu.cli"]
MAX_NOT_RUN = 3  # `make run`/`make test` and production commands; each needs a reason in README.md

# command (comments dropped) -> what it must have printed by the end
ANOTHER_TERMINAL = {".venv/bin/quipu events tail": '"kind":"execution.started"'}


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


@contextlib.contextmanager
def _quipu_up(env: dict[str, str], data_dir: Path) -> Iterator[dict[str, Any]]:
    """``quipu up`` as ``make run`` starts it; yields runtime.json once it is written."""
    proc = subprocess.Popen([*QUIPU, "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True).start()
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


def _caught_up(api: str, admin_key: str, timeout: float = 10.0) -> None:
    """Wait until no projection lags behind the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{api}/admin/projections", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
        if r.status_code == 200 and all(p["lag_events"] == 0 for p in r.json()):
            return
        time.sleep(0.05)


def _where(command: Command) -> str:
    return f"README.md line {command.line}:\n{command.code}"


def _check(command: Command, shell: Shell) -> None:
    try:
        got = shell.run(command.code, background=command.background)
    except TimeoutError as stuck:
        jobs = "\n".join(out[-3000:] for out in shell.abandon_jobs())
        raise AssertionError(f"{_where(command)}\n{stuck}\n--- background jobs:\n{jobs}") from None
    said = f"{_where(command)}\n--- stdout:\n{got.stdout[-4000:]}\n--- stderr:\n{got.stderr[-4000:]}"
    assert got.exit_status == 0, f"exit status {got.exit_status}\n{said}"
    status = expected_status(command.claim)
    if status is not None:
        assert got.http and got.http[-1] == status, f"HTTP {got.http}, README says {status}\n{said}"
    others = got.http[:-1] if status is not None else got.http
    assert all(200 <= s < 300 for s in others), f"HTTP {got.http}\n{said}"
    problems = claim_problems(command.claim, got.stdout)
    assert not problems, f"the README says: {command.claim}\n{problems}\n{said}"


def _run_block(block: Block, shell: Shell, api: str, admin_key: str) -> None:
    if block.lang == "python":
        saved = SAVED_FILE.match(block.code)
        script = saved["name"] if saved else f"readme-block-{block.line}.py"
        (shell.cwd / script).write_text(block.code)
        if not saved:  # a script run where it stands, with the shell's variables
            _caught_up(api, admin_key)
            _check(Command(f'"{sys.executable}" {script}', block.line), shell)
        return
    for command in commands(block):
        if command.bare in ANOTHER_TERMINAL:
            command = Command(command.bare + " &", command.line, command.claim)
        _caught_up(api, admin_key)
        _check(command, shell)


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "quipu-data"
    reader = tmp_path / "reader"  # the reader's folder: worker.py lands here, .venv is the project's
    reader.mkdir()
    (reader / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")} | {"QUIPU_DATA_DIR": str(data_dir)}
    found = blocks(README.read_text())
    not_run = [b for b in found if b.not_run is not None]
    assert len(not_run) <= MAX_NOT_RUN, [f"line {b.line}: {b.not_run}" for b in not_run]
    assert any(b.lang == "python" and SAVED_FILE.match(b.code) for b in found), "the worker example is gone"

    with _holding(DEFAULT_API_PORT), _quipu_up(env, data_dir) as runtime:
        api, admin_key = runtime["api_url"], runtime["api_key"]
        assert urlsplit(api).port != DEFAULT_API_PORT  # the README's lines must not assume :8000
        shell = Shell(reader, env)
        try:
            for block in found:
                if block.not_run is None:
                    _run_block(block, shell, api, admin_key)
            stopped = shell.stop_jobs()
        finally:
            shell.close()
    assert not (data_dir / "runtime.json").exists()  # removed on stop, as the README says

    started = [c for b in found if b.lang == "bash" and b.not_run is None for c in commands(b)]
    backgrounds = [c.bare for c in started if c.background or c.bare in ANOTHER_TERMINAL]
    assert len(backgrounds) == len(stopped)
    for bare, (status, output) in zip(backgrounds, stopped, strict=True):
        if bare in ANOTHER_TERMINAL:
            assert ANOTHER_TERMINAL[bare] in output, f"{bare}\n{output[-3000:]}"
        else:  # the README's own background commands end cleanly, by themselves or on Ctrl-C
            assert status == 0, f"{bare} exited {status}\n{output[-3000:]}"
