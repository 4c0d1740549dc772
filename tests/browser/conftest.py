"""Browser tests: a real Quipu (``quipu up``, embedded Postgres and NATS), a real worker
process, and Debian's chromium driven by Playwright through ``executable_path`` (Playwright
never downloads a browser of its own; ``make test`` installs chromium when absent).

Quipu, the worker and the browser are started once for the tests of this package and
stopped after its last test, so the rest of the suite never shares a process with them.
Every ``page`` fails its test on a console error (but the browser's own log line of a 4xx
answer) or an uncaught page error, and leaves a screenshot in the artefacts folder
(``$QUIPU_TEST_ARTIFACTS``, else ``tests/browser/artifacts/``, which git ignores).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from quipu.embedded import free_port

CHROMIUM = os.environ.get("QUIPU_TEST_CHROMIUM", "/usr/bin/chromium")
# A loaded CI machine is slow: waits (and expect's retries) get 30 s instead of Playwright's 5 s.
# They only bound how long a test waits for what it checks; no test asserts a duration.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)
WORKER = Path(__file__).with_name("worker_process.py")
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
Run = Callable[..., dict[str, Any]]
_CLIENT_ERROR = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("QUIPU_TEST_ARTIFACTS") or Path(__file__).with_name("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class RunningQuipu:
    base_url: str  # http://127.0.0.1:PORT (the explorer is at base_url + "/ui")
    api_url: str  # base_url + "/api/v1"
    api_key: str
    log: Path


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _wait_ready(proc: subprocess.Popen[bytes], data_dir: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    runtime_file = data_dir / "runtime.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("quipu up exited:\n" + log.read_text(errors="replace"))
        if runtime_file.exists():
            runtime: dict[str, Any] = json.loads(runtime_file.read_text())
            base = str(runtime["api_url"]).removesuffix("/api/v1")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    return runtime
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise AssertionError("quipu up not ready:\n" + log.read_text(errors="replace"))


@pytest.fixture(scope="package")
def quipu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningQuipu]:
    """``quipu up`` on a data folder of its own and one ``echo`` worker process."""
    tmp = tmp_path_factory.mktemp("browser-quipu")
    os.chmod(tmp, 0o755)  # the embedded Postgres runs as another user when we are root
    data_dir, log = tmp / "data", tmp / "quipu.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    env["QUIPU_LOG_LEVEL"] = "warning"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quipu.cli", "--data-dir", str(data_dir), "up", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker: subprocess.Popen[bytes] | None = None
    try:
        runtime = _wait_ready(proc, data_dir, log)
        api_url, key = str(runtime["api_url"]), str(runtime["api_key"])
        with (tmp / "worker.log").open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, str(WORKER), api_url, key, "browser-worker"], env=env, stdout=out, stderr=out
            )
        yield RunningQuipu(api_url.removesuffix("/api/v1"), api_url, key, log)
    finally:
        if worker is not None:
            _stop(worker, signal.SIGTERM)
        _stop(proc)


@pytest.fixture(scope="package")
def base_url(quipu: RunningQuipu) -> str:
    return quipu.base_url


@pytest.fixture(scope="package")
def api_key(quipu: RunningQuipu) -> str:
    return quipu.api_key


@pytest.fixture(scope="package")
def api(quipu: RunningQuipu) -> Iterator[httpx.Client]:
    """The API with the same key the browser signs in with, to check pages against it."""
    headers = {"Authorization": f"Bearer {quipu.api_key}"}
    with httpx.Client(base_url=quipu.api_url, headers=headers, timeout=30) as client:
        yield client


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll ``check`` until it returns something truthy (the machine may be slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="package")
def run_workflow(api: httpx.Client) -> Run:
    """``run_workflow(definition, input={}, wait=True, name=...)`` creates the workflow,
    starts a run of it and (with ``wait``) waits until the run has ended; returns the run.
    Task nodes use ``"agent_type": "echo"`` (see worker_process.py for ``config``)."""

    def start(
        definition: dict[str, Any], input: dict[str, Any] | None = None, *, wait: bool = True, name: str = "browser"
    ) -> dict[str, Any]:
        created = api.post("/workflows", json={"name": name, "definition": definition})
        assert created.status_code == 201, created.text
        started = api.post("/executions", json={"workflow_id": created.json()["id"], "input": input or {}})
        assert started.status_code == 201, started.text
        run: dict[str, Any] = started.json()
        if not wait:
            return run

        def ended() -> dict[str, Any] | None:
            now: dict[str, Any] = api.get(f"/executions/{run['id']}").json()
            return now if now["status"] in TERMINAL else None

        result: dict[str, Any] = wait_for(ended, f"run {run['id']} to end")
        return result

    return start


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; fails the test on a console error or page error,
    and saves a screenshot named after the test when it is done."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium also logs every 4xx answer as a console error ("Failed to load resource"):
        # those are the API's problems, which a page must show (tests check it does), not
        # errors of the page; a 5xx or anything a script logs fails the test.
        if message.type == "error" and not _CLIENT_ERROR.match(message.text):
            errors.append(f"console error: {message.text} ({message.location})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    try:
        yield opened
    finally:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])[:150]
        try:
            opened.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)
        finally:
            context.close()
    assert not errors, "\n".join(errors)


def sign_in(page: Page, base_url: str, api_key: str, path: str = "/ui/executions") -> None:
    """Open ``path`` and sign in as a person does: the key typed into the field labelled
    ``API key`` and the form submitted."""
    page.goto(base_url + path)
    page.get_by_label("API key").fill(api_key)
    page.get_by_test_id("signin").click()
    page.get_by_test_id("signed-in-as").wait_for(state="visible")


@pytest.fixture
def signed_in_page(page: Page, base_url: str, api_key: str) -> Page:
    sign_in(page, base_url, api_key)
    return page
