"""The web explorer in Chromium: time to an interactive graph (goal under 2 s each).

Setup: ``quipu up`` as a user runs it (its own embedded Postgres and NATS, so the figure
includes the real HTTP server and nothing of the other phases' load), Debian's chromium
driven by Playwright through ``executable_path``, signed in once (the key stays in the
tab's sessionStorage across page loads).

* ``ui_graph_500_tti_ms``: a run of a 500-node workflow (50 layers of 10, each node after
  one or two of the layer above; no worker, so the run stays at its first layer) opened at
  ``/ui/executions/{id}``.
* ``ui_event_5000_ancestors_tti_ms``: an event with 5,000 ancestors opened at
  ``/ui/events/{id}``: the page walks them from the API in pages of 1,000 and draws them.
  The DAG is appended directly through the event store (like the DAG-walk phase): 5,000
  workflow events in batches of ``R``; event i names event i-R (so every one is an ancestor
  of the last batch) and up to two random events of the batches before as causes; the
  measured event names the last R.

"Interactive" means: the graph's SVG says it holds every node (``data-node-count``), its
nodes are in the DOM and the first one takes the keyboard focus. The time is the page's own
clock (``performance.now()``: from the start of the navigation), checked on every animation
frame; the figure is the median of ``ROUNDS`` page loads, each a full navigation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import log, new_workflow
from bench.phase import Context, Outcome
from quipu.embedded import free_port
from quipu.wiring import build_store

CHROMIUM = os.environ.get("QUIPU_BENCH_CHROMIUM", "/usr/bin/chromium")
ROUNDS, QUICK_ROUNDS = 7, 3
LAYERS, WIDTH = 50, 10  # 500 nodes
ANCESTORS, R = 5000, 100
TENANT = "default"  # the tenant of the key `quipu up` prints
GOAL_MS = 2000.0

# Ready when the DAG's SVG counts every node, its nodes are drawn and the first takes focus.
READY_JS = """(count) => {
  const svg = document.querySelector('svg[data-testid=dag]');
  if (!svg || svg.getAttribute('data-node-count') !== String(count)) return false;
  const node = svg.querySelector('g[data-testid=dag-node]');
  if (!node) return false;
  node.focus();
  return document.activeElement === node ? performance.now() : false;
}"""


def workflow_500() -> dict[str, Any]:
    rng = random.Random(5)
    nodes = [{"id": f"n{layer}_{i}", "agent_type": "bench-ui"} for layer in range(LAYERS) for i in range(WIDTH)]
    edges = []
    for layer in range(1, LAYERS):
        for i in range(WIDTH):
            for j in {i, rng.randrange(WIDTH)}:
                edges.append({"from": f"n{layer - 1}_{j}", "to": f"n{layer}_{i}"})
    return {"nodes": nodes, "edges": edges}


def append_ancestors(database_url: str) -> uuid.UUID:
    """5,000 events that are all ancestors of the returned one (see the module's docstring)."""
    rng = random.Random(7)
    store = build_store(database_url, pool_size=2)
    ids: list[uuid.UUID] = []
    try:
        while len(ids) < ANCESTORS:
            base = len(ids)
            batch = []
            for i in range(base, base + R):
                causes = {ids[i - R]} if i >= R else set()
                if base >= R:
                    causes |= {ids[rng.randrange(max(0, base - 4 * R), base)] for _ in range(rng.randint(0, 2))}
                batch.append(new_workflow(TENANT, tuple(causes), i))
            store.save_all(*batch)
            ids.extend(wf.last_event_id for wf in batch if wf.last_event_id is not None)
        tip = new_workflow(TENANT, tuple(ids[-R:]), ANCESTORS)
        store.save_all(tip)
        assert tip.last_event_id is not None
        return tip.last_event_id
    finally:
        store.close()


class QuipuUp:
    def __init__(self, tmp: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
        env["QUIPU_LOG_LEVEL"] = "warning"
        self.data, self.log = tmp / "data", tmp / "quipu.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "quipu.cli", "--data-dir", str(self.data), "up", "--port", str(free_port())],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.runtime = self._wait()
        self.api_url = str(self.runtime["api_url"])
        self.base_url = self.api_url.removesuffix("/api/v1")

    def _wait(self) -> dict[str, Any]:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("quipu up exited: " + self.log.read_text(errors="replace")[-2000:])
            path = self.data / "runtime.json"
            if path.exists():
                runtime: dict[str, Any] = json.loads(path.read_text())
                try:
                    base = str(runtime["api_url"]).removesuffix("/api/v1")
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        return runtime
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("quipu up not ready in 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_500_node_run(api: httpx.Client) -> str:
    created = api.post("/workflows", json={"name": "bench ui 500", "definition": workflow_500()})
    created.raise_for_status()
    started = api.post("/executions", json={"workflow_id": created.json()["id"]})
    started.raise_for_status()
    return str(started.json()["id"])


def time_to_interactive(page: Any, url: str, count: int, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds + 1):  # the first load warms the caches and is not counted
        page.goto(url, wait_until="commit")
        handle = page.wait_for_function(READY_JS, arg=count, polling="raf", timeout=60_000)
        times.append(float(handle.json_value()))
    return times[1:]


def measure(rounds: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright  # the dev extra; only this phase needs it

    with tempfile.TemporaryDirectory(prefix="quipu-bench-ui-") as tmp:
        os.chmod(tmp, 0o755)  # the embedded Postgres runs as another user when we are root
        quipu = QuipuUp(Path(tmp))
        try:
            key = str(quipu.runtime["api_key"])
            with httpx.Client(base_url=quipu.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
                run_id = start_500_node_run(api)
            log(f"  appending {ANCESTORS:,} ancestors of one event")
            tip = append_ancestors(str(quipu.runtime["database_url"]))
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{quipu.base_url}/ui/executions")
                page.get_by_label("API key").fill(key)
                page.get_by_test_id("signin").click()
                page.get_by_test_id("signed-in-as").wait_for(state="visible")
                graph = time_to_interactive(page, f"{quipu.base_url}/ui/executions/{run_id}", LAYERS * WIDTH, rounds)
                event = time_to_interactive(page, f"{quipu.base_url}/ui/events/{tip}", ANCESTORS + 1, rounds)
                browser.close()
        finally:
            quipu.stop()
    return {"graph": graph, "event": event}


def phase(ctx: Context) -> Outcome:
    times = measure(QUICK_ROUNDS if ctx.quick else ROUNDS)
    graph, event = statistics.median(times["graph"]), statistics.median(times["event"])

    def row(what: str, ms: float, values: list[float]) -> tuple[str, str, str, str]:
        spread = f"{min(values):,.0f}-{max(values):,.0f} ms over {len(values)} loads"
        return (what, f"{ms:,.0f} ms", spread, f"goal < {GOAL_MS:,.0f} ms: {'OK' if ms < GOAL_MS else 'MISS'}")

    return Outcome(
        rows=[
            row("UI: run page, 500-node workflow, time to interactive graph (p50)", graph, times["graph"]),
            row("UI: event page, 5,000 ancestors, time to interactive graph (p50)", event, times["event"]),
        ],
        figures={"ui_graph_500_tti_ms": round(graph, 1), "ui_event_5000_ancestors_tti_ms": round(event, 1)},
        notes=["UI times: Chromium's performance.now() from navigation start to the graph drawn and focusable."],
    )


if __name__ == "__main__":
    print(json.dumps(measure(QUICK_ROUNDS)))
