"""Branches: fork a failed run from its last good checkpoint and run the fork to
success with a real worker over NATS; play from a node; counterfactual runs; the branch
tree, the comparison and the DAG lineage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from quipu_client.worker import Task, TaskFailed, serve_workers, worker
from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "agent_type": "web"},
        {"id": "parse", "agent_type": "web"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "parse"}, {"from": "parse", "to": "end"}],
}
RUNS: list[tuple[str, str]] = []  # (execution id, node) of every task a worker ran


@worker("web")
async def web(task: Task) -> dict[str, Any]:
    RUNS.append((str(task.execution_id), task.node_id))
    if task.node_id == "fetch":
        return {"html": f"<p>{task.input['url']}</p>", "pages": task.input.get("pages", 1)}
    if task.input["url"].startswith("bad"):
        raise TaskFailed(f"cannot parse {task.input['url']}")
    return {"title": task.input["url"].upper(), "pages_seen": task.input["pages"]}


@contextlib.asynccontextmanager
async def web_worker(q: Running) -> AsyncIterator[None]:
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_workers(
            [web], nats_url=q.wiring.nats_url, tenant="acme", prefix=q.wiring.subjects.prefix, stop=stop,
            heartbeat_seconds=0.5, grace_seconds=2,
        )
    )  # fmt: skip
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def _until(q: Running, execution_id: str, *statuses: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update((await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth())).json())
        return seen["status"] in statuses

    await q.wait_for(reached, timeout=30)
    return seen


async def _dag(q: Running, execution_id: str) -> list[dict[str, Any]]:
    r = await q.client.get("/api/v1/event-dag", params={"correlation_id": execution_id}, headers=q.auth())
    return r.json()["nodes"]  # type: ignore[no-any-return]


async def test_a_failed_run_forked_from_its_last_good_checkpoint_succeeds(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "scrape", "definition": FLOW}, headers=h)).json()
    async with web_worker(quipu):
        r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "input": {"url": "bad://x"}}, headers=h)
        original = await _until(quipu, r.json()["id"], "failed")
        base = f"/api/v1/executions/{original['id']}"
        resumable = (await c.get(f"{base}/resumable-nodes", headers=h)).json()["items"]
        good = next(n for n in resumable if n["node_id"] == "fetch")
        assert good["status"] == "succeeded" and good["checkpoint_id"] and good["can_play_from"]
        assert next(n for n in resumable if n["node_id"] == "parse")["checkpoint_id"] is None  # it failed

        fix = {"modified_state": {"url": "good://x"}, "name": "fixed url", "hypothesis": "the url was wrong"}
        r = await c.post(f"{base}/checkpoints/{good['checkpoint_id']}/resume", json=fix, headers=h)
        assert r.status_code == 201, r.text
        fork = await _until(quipu, r.json()["id"], "succeeded")

    assert fork["fork"]["execution_id"] == original["id"] and fork["fork"]["from_event_id"] == good["checkpoint_id"]
    assert fork["state"]["title"] == "GOOD://X" and fork["state"]["html"] == "<p>bad://x</p>"  # fetch was carried
    assert (fork["id"], "fetch") not in RUNS and (fork["id"], "parse") in RUNS
    after = (await c.get(f"/api/v1/executions/{original['id']}", headers=h)).json()
    assert after["status"] == "failed" and after["version"] == original["version"]  # untouched

    # The DAG: the fork's first event hangs under the checkpoint, which is in the original run;
    # from the fork's final event there is a path back through the checkpoint to the original start.
    fork_dag, original_dag = await _dag(quipu, fork["id"]), await _dag(quipu, original["id"])
    assert fork_dag[0]["kind"] == "execution.started" and fork_dag[0]["parent_ids"] == [good["checkpoint_id"]]
    for source, target in (
        (good["checkpoint_id"], fork["last_event_id"]),
        (original_dag[0]["event_id"], good["checkpoint_id"]),
    ):
        r = await c.get("/api/v1/event-dag/path", params={"from": source, "to": target}, headers=h)
        assert r.status_code == 200, r.text
    r = await c.get(
        f"/api/v1/event-dag/{fork['last_event_id']}/ancestors", params={"max_depth": 100, "limit": 1000}, headers=h
    )
    ancestors = {e["event"]["event_id"] for e in r.json()["items"]}
    assert good["checkpoint_id"] in ancestors and original_dag[0]["event_id"] in ancestors

    # The branch tree, from either end.
    async def tree_ready() -> bool:
        t = (await c.get(f"/api/v1/executions/{fork['id']}/branches", headers=h)).json()
        kids = t["root"]["children"]
        return bool(kids and kids[0]["status"] == "succeeded" and t["root"]["status"] == "failed")

    await quipu.wait_for(tree_ready)
    tree = (await c.get(f"{base}/branches", headers=h)).json()
    assert tree["total"] == 2 and tree["root"]["execution_id"] == original["id"]
    [child] = tree["root"]["children"]
    assert (child["execution_id"], child["name"], child["hypothesis"]) == (fork["id"], "fixed url", "the url was wrong")
    assert child["mode"] == "resume" and child["forked_from_event_id"] == good["checkpoint_id"]

    # The comparison.
    cmp = (await c.get("/api/v1/branches/compare", params={"a": original["id"], "b": fork["id"]}, headers=h)).json()
    assert [e["event_id"] for e in cmp["common_ancestors"]] == [good["checkpoint_id"]]
    assert cmp["diverged_at"]["b"][0]["event_id"] == fork_dag[0]["event_id"]
    assert cmp["diverged_at"]["a"][0]["execution_id"] == original["id"]
    steps = {s["node_id"]: s for s in cmp["steps"]}
    assert steps["fetch"]["differs"] == [] and set(steps["parse"]["differs"]) >= {"status", "output"}
    assert steps["parse"]["a"]["status"] == "failed" and steps["parse"]["b"]["status"] == "succeeded"
    assert "url" in cmp["final_state_diff"]["modified_keys"] and "title" in cmp["final_state_diff"]["added_keys"]


async def test_play_from_a_node_and_a_counterfactual_rerun_only_what_follows(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "scrape", "definition": FLOW}, headers=h)).json()
    async with web_worker(quipu):
        r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "input": {"url": "ok"}}, headers=h)
        done = await _until(quipu, r.json()["id"], "succeeded")
        base = f"/api/v1/executions/{done['id']}"

        r = await c.post(f"{base}/play-from-node", json={"node_id": "parse", "modified_state": {"pages": 7}}, headers=h)
        assert r.status_code == 201, r.text
        played = await _until(quipu, r.json()["id"], "succeeded")
        r = await c.post(
            f"{base}/counterfactual", json={"outputs": {"fetch": {"html": "<p>x</p>", "pages": 42}}}, headers=h
        )
        assert r.status_code == 201, r.text
        what_if = await _until(quipu, r.json()["id"], "succeeded")

    assert played["state"]["pages_seen"] == 7 and played["fork"]["mode"] == "play_from_node"
    assert (played["id"], "fetch") not in RUNS and (played["id"], "parse") in RUNS
    assert what_if["state"]["pages_seen"] == 42 and what_if["state"]["outputs"]["fetch"]["pages"] == 42
    assert (what_if["id"], "fetch") not in RUNS and (what_if["id"], "parse") in RUNS
    assert what_if["fork"]["replaced"] == ["fetch"]

    # Refusals: unknown checkpoint, a node that never ran, a counterfactual on a node that did not succeed.
    unknown = "00000000-0000-7000-8000-000000000000"
    assert (await c.post(f"{base}/checkpoints/{unknown}/resume", headers=h)).status_code == 404
    assert (await c.post(f"{base}/play-from-node", json={"node_id": "nope"}, headers=h)).status_code == 404
    r = await c.post(f"{base}/counterfactual", json={"outputs": {"end": {}, "nope": {}}}, headers=h)
    assert r.status_code in (404, 422)
    r = await c.post(f"{base}/counterfactual", json={"outputs": {}}, headers=h)
    assert r.status_code == 422
    other = quipu.auth("beta")
    assert (await c.post(f"{base}/play-from-node", json={"node_id": "parse"}, headers=other)).status_code == 404
    assert (await c.get(f"{base}/branches", headers=other)).status_code == 404
    r = await c.get("/api/v1/branches/compare", params={"a": done["id"], "b": played["id"]}, headers=other)
    assert r.status_code == 404
