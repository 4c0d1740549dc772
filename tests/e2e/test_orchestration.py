"""One workflow end to end, as in production: Quipu as a real process, two real worker
processes over NATS, and Quipu SIGKILLed and restarted in the middle of the run.

The workflow has eleven nodes: parallel branches, a join, a decision, an approval, a
node that fails once and succeeds on retry, and a node whose first attempt times out
(while Quipu is down: the durable timer fires after the restart). The test checks the
final state, the timeline, the metrics, the live stream (reconnecting with
Last-Event-ID across the restart) and the DAG (each node start's parents are the
completions it waited for).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from quipu.embedded import free_port
from tests.nats_access import NatsForTests

QUIPU = [sys.executable, "-m", "quipu.cli"]
WORKER = [sys.executable, str(Path(__file__).with_name("worker_process.py"))]
FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "agent_type": "io"},
        {"id": "search", "agent_type": "io"},
        {"id": "flaky", "agent_type": "llm", "max_retries": 2, "config": {"retry_backoff": 0.2}},
        {"id": "slow", "agent_type": "io", "timeout": 8, "max_retries": 1, "config": {"retry_backoff": 0.2}},
        {"id": "join", "agent_type": "llm"},
        {"id": "route", "type": "decision"},
        {"id": "summarise", "agent_type": "llm"},
        {"id": "apologise", "agent_type": "llm"},
        {"id": "review", "type": "approval", "config": {"prompt": "Publish the summary?"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "fetch"},
        {"from": "start", "to": "search"},
        {"from": "fetch", "to": "flaky"},
        {"from": "search", "to": "slow"},
        {"from": "flaky", "to": "join"},
        {"from": "slow", "to": "join"},
        {"from": "join", "to": "route"},
        {"from": "route", "to": "summarise", "condition": "pages > 0 and hits >= 1"},
        {"from": "route", "to": "apologise"},
        {"from": "summarise", "to": "review"},
        {"from": "apologise", "to": "review"},
        {"from": "review", "to": "end"},
    ],
}
OUTPUTS = {
    "start": {},
    "fetch": {"pages": 3},
    "search": {"hits": 7},
    "flaky": {"draft": "draft from 3 pages"},
    "slow": {"slow": "attempt 2"},
    "join": {"joined": ["draft from 3 pages", "attempt 2"]},
    "route": {},
    "summarise": {"summary": "three pages, seven hits"},
    "review": {"reviewed_by": "e2e", "approved": True, "feedback": "looks right"},
    "end": {},
}


class Quipu:
    """`quipu up` on the given Postgres and NATS: API, relay, projectors, dispatcher, timers."""

    def __init__(self, database_url: str, nats: NatsForTests, tmp: Path) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
        self.env.update(
            QUIPU_DATABASE_URL=database_url,
            **nats.env(),
            QUIPU_DATA_DIR=str(tmp / "data"),
            QUIPU_LOG_LEVEL="warning",
        )
        self.log = tmp / "quipu.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*QUIPU, "up", "--port", str(self.port)], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("quipu not ready:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def key(self) -> str:
        runtime = json.loads((Path(self.env["QUIPU_DATA_DIR"]) / "runtime.json").read_text())
        return str(runtime["api_key"])


class LiveStream(threading.Thread):
    """Reads the SSE stream of one execution; reconnects with Last-Event-ID when cut."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.reconnects = 0
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while not self.done.is_set() and time.monotonic() < deadline:
            headers = {"Authorization": f"Bearer {self.key}", "Accept": "text/event-stream"}
            params = {"from_start": "true"}
            if self.messages:
                headers["Last-Event-ID"] = self.messages[-1][0]
                params = {}
            try:
                with httpx.stream(
                    "GET", self.url, headers=headers, params=params, timeout=httpx.Timeout(5, read=30)
                ) as r:
                    if r.status_code != 200:
                        time.sleep(0.3)
                        continue
                    self._read(r)
            except httpx.HTTPError:
                pass
            if not self.done.is_set():
                self.reconnects += 1
                time.sleep(0.3)

    def _read(self, response: httpx.Response) -> None:
        event_id, event_type, data = "", "", ""
        for line in response.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                event_type = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                self.messages.append((event_id, event_type, json.loads(data)))
                if event_type == "completed":
                    self.done.set()
                    return
                event_id, event_type, data = "", "", ""


def _wait(check: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_eleven_node_run_with_two_workers_survives_a_restart_of_quipu(
    infra: tuple[str, NatsForTests], tmp_path: Path
) -> None:
    database_url, nats_url = infra
    quipu = Quipu(database_url, nats_url, tmp_path)
    quipu.start()
    h = {"Authorization": f"Bearer {quipu.key}"}
    workers = []
    try:
        for name in ("worker-1", "worker-2"):
            with (tmp_path / f"{name}.log").open("ab") as out:
                workers.append(
                    subprocess.Popen(
                        [*WORKER, quipu.api, quipu.key, name], env=quipu.env, stdout=out, stderr=out
                    )
                )
        api = httpx.Client(base_url=quipu.api, headers=h, timeout=10)
        wf = api.post("/workflows", json={"name": "e2e", "definition": FLOW}).json()
        execution = api.post("/executions", json={"workflow_id": wf["id"], "input": {"topic": "e2e"}}).json()
        base = f"/executions/{execution['id']}"
        live = LiveStream(f"{quipu.api}{base}/events", quipu.key)
        live.start()

        def get() -> dict[str, Any]:
            return api.get(base).json()  # type: ignore[no-any-return]

        # Mid-run: the slow node's first attempt is under way. Kill every Quipu process and
        # keep it down past that attempt's deadline; the timeout must fire after the restart.
        _wait(lambda: get()["nodes"]["slow"] == "running", "the slow node to start")
        quipu.kill()
        # Down past the 8 s deadline; the deadline also bounds attempt 2, which must leave the
        # worker time to reconnect to the restarted Quipu (3 s was too little on a busy machine).
        time.sleep(9)
        quipu.start()
        api = httpx.Client(base_url=quipu.api, headers=h, timeout=10)

        ex = _wait(lambda: (e := get())["status"] == "waiting_for_approval" and e, "the approval", timeout=120)
        approvals = api.get(f"{base}/approvals").json()["items"]
        assert [a["node_id"] for a in approvals] == ["review"] and approvals[0]["prompt"] == "Publish the summary?"
        answer = {
            "action": "approve",
            "feedback": "looks right",
            "state_changes": {"reviewed_by": "e2e"},
            "state_hash": approvals[0]["state_hash"],
        }
        r = api.post(f"/approvals/{approvals[0]['approval_id']}/respond", json=answer)
        assert r.status_code == 200, r.text
        ex = _wait(lambda: (e := get())["status"] == "succeeded" and e, "the end of the run")
        assert live.done.wait(60), "the live stream never said completed"

        # Final state: exactly the outputs merged in order, whatever ran where.
        expected: dict[str, Any] = {"topic": "e2e"}
        for node in ("fetch", "search", "flaky", "slow", "join", "summarise", "review"):
            expected.update(OUTPUTS[node])
        assert {k: v for k, v in ex["state"].items() if k != "outputs"} == expected
        assert ex["state"]["outputs"] == OUTPUTS
        assert ex["nodes"]["apologise"] == "skipped" and ex["attempts"]["flaky"] == 2 and ex["attempts"]["slow"] == 2

        dag = api.get("/event-dag", params={"correlation_id": execution["id"]}).json()["nodes"]
        _check_dag(dag)
        _check_live(live, dag, execution["id"])
        _check_read_models(api, base, dag)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                assert w.wait(timeout=40) == 0, (tmp_path / "worker-1.log").read_text()
            finally:
                if w.poll() is None:
                    w.kill()
        quipu.stop()


def _check_dag(dag: list[dict[str, Any]]) -> None:
    """Each first attempt's parents are the completions it waited for; a retry's, the failure."""
    by_id = {n["event_id"]: n for n in dag}
    kinds = [n["kind"] for n in dag]
    completed = [n["payload"]["node_id"] for n in dag if n["kind"] == "execution.node_completed"]
    assert sorted(completed) == sorted(set(completed)), "a node completed twice"
    failures = [
        (n["payload"]["node_id"], n["payload"]["timed_out"]) for n in dag if n["kind"] == "execution.node_failed"
    ]
    assert sorted(failures) == [("flaky", False), ("slow", True)]  # the timeout fired once, after the restart
    assert kinds.count("execution.succeeded") == 1
    # Glass-box records hang under the node run that made them (its start event).
    telemetry = [n for n in dag if n["kind"].startswith("telemetry.")]
    assert sorted(n["kind"] for n in telemetry) == ["telemetry.llm_call", "telemetry.thought", "telemetry.tool_call"]
    for n in telemetry:
        [parent] = [by_id[p] for p in n["parent_ids"]]
        assert parent["kind"] == "execution.node_started" and parent["payload"]["node_id"] == "summarise"
    predecessors: dict[str, set[str]] = {}
    for e in FLOW["edges"]:
        predecessors.setdefault(e["to"], set()).add(e["from"])
    for n in dag:
        if n["kind"] != "execution.node_scheduled":
            continue
        node, attempt = n["payload"]["node_id"], n["payload"]["attempt"]
        parents = [by_id[p] for p in n["parent_ids"] if p in by_id]
        causes = {p["payload"].get("node_id") for p in parents if p["kind"] == "execution.node_completed"}
        if attempt > 1:
            assert any(p["kind"] == "execution.node_failed" and p["payload"]["node_id"] == node for p in parents)
        elif node == "review":
            assert causes >= {"summarise"} and "apologise" not in causes  # the skipped branch caused nothing
        else:
            assert causes >= predecessors.get(node, set()), node


def _check_live(live: LiveStream, dag: list[dict[str, Any]], execution_id: str) -> None:
    ids = [m[0] for m in live.messages]
    assert len(ids) == len(set(ids)), "the live stream repeated an event"
    assert live.reconnects >= 1  # the restart cut the stream; Last-Event-ID resumed it
    types = [m[1] for m in live.messages]
    assert types[-1] == "completed" and live.messages[-1][2]["status"] == "SUCCEEDED"
    assert "hitp_required" in types and "glass_box" in types and "progress" in types
    assert set(ids) <= {n["event_id"] for n in dag} | {ids[-1]}
    assert all(m[2]["execution_id"] == execution_id for m in live.messages)


def _check_read_models(api: httpx.Client, base: str, dag: list[dict[str, Any]]) -> None:
    def timeline() -> Any:
        t = api.get(f"{base}/timeline", params={"limit": 500}).json()
        return t if t["summary"]["total_events"] == len(dag) else None

    t = _wait(timeline, "the timeline to hold every event")
    assert [item["event_id"] for item in t["timeline"]] == [n["event_id"] for n in dag]
    llm = api.get(f"{base}/timeline", params={"event_types": "llm_call"}).json()
    assert [i["node_id"] for i in llm["timeline"]] == ["summarise"]
    metrics = _wait(lambda: (m := api.get(f"{base}/metrics").json())["totals"]["llm_calls"] == 1 and m, "metrics")
    assert metrics["totals"]["input_tokens"] == 120 and metrics["totals"]["output_tokens"] == 30
    assert metrics["by_model"][0]["model"] == "model-a"
    assert {n["node_id"] for n in metrics["by_node"]} >= {"fetch", "search", "flaky", "slow", "join", "summarise"}
