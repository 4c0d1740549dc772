"""Checkpoint compare over HTTP against real Postgres and NATS: two checkpoints,
two points named by version or event, the patch checked with a reference JSON-patch
library, and the 404/422 answers."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import jsonpatch

from domain.execution import Execution
from tests.integration.conftest import Running

TWO_STEPS = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "a", "agent_type": "llm"},
        {"id": "b", "agent_type": "llm"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "end"}],
}
# b changes a scalar a wrote, shrinks its list, nests deeper and adds a key that needs
# escaping in a JSON pointer.
OUTPUT_A = {"x": 1, "items": [1, 2, 3], "meta": {"source": "web", "n": 1}}
OUTPUT_B = {"x": 2, "items": [1], "meta": {"source": "web", "n": 2}, "a/b~": True}


async def _start(q: Running, tenant: str = "acme") -> str:
    c, h = q.client, q.auth(tenant)
    r = await c.post("/api/v1/workflows", json={"name": "diffs", "definition": TWO_STEPS}, headers=h)
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/executions", json={"workflow_id": r.json()["id"], "input": {"q": "hi"}}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _complete(q: Running, execution_id: str, node: str, output: dict[str, Any]) -> dict[str, Any]:
    r = await q.client.post(
        f"/api/v1/executions/{execution_id}/nodes/{node}/complete", json={"output": output}, headers=q.auth()
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _checkpoints(q: Running, execution_id: str, count: int) -> list[dict[str, Any]]:
    """The execution's checkpoints, oldest first, once the projector has seen ``count``."""
    base = f"/api/v1/executions/{execution_id}/checkpoints"

    async def projected() -> bool:
        r = await q.client.get(f"{base}?order=asc", headers=q.auth())
        return bool(r.status_code == 200 and r.json()["total"] >= count)

    await q.wait_for(projected)
    items = (await q.client.get(f"{base}?order=asc", headers=q.auth())).json()["items"]
    states = []
    for item in items:
        r = await q.client.get(f"{base}/{item['checkpoint_id']}", headers=q.auth())
        assert r.status_code == 200, r.text
        states.append({**item, "state": r.json()["state"]})
    return states


async def _events(q: Running, execution_id: str) -> list[dict[str, Any]]:
    r = await q.client.get(f"/api/v1/event-dag?correlation_id={execution_id}", headers=q.auth())
    assert r.status_code == 200, r.text
    return r.json()["nodes"]  # type: ignore[no-any-return]


async def _state_at(q: Running, execution_id: str, version: int) -> dict[str, Any]:
    then = await asyncio.to_thread(q.ctx.store.load, Execution, UUID(execution_id), "acme", version=version)
    return then.state


async def _compare(q: Running, execution_id: str, body: Any, tenant: str = "acme") -> Any:
    return await q.client.post(
        f"/api/v1/executions/{execution_id}/checkpoints/compare", json=body, headers=q.auth(tenant)
    )


async def test_comparing_two_checkpoints_and_two_points_in_time(quipu: Running) -> None:
    execution_id = await _start(quipu)
    await _complete(quipu, execution_id, "a", OUTPUT_A)
    # Telemetry shares the execution's correlation but lives in its own stream: as_of it
    # means the execution as it stood when it was recorded (after a, before b).
    r = await quipu.client.post(
        f"/api/v1/executions/{execution_id}/telemetry",
        json={"type": "llm_call", "node_id": "b", "model": "m", "input_tokens": 1, "output_tokens": 1},
        headers=quipu.auth(),
    )
    assert r.status_code in (200, 201), r.text
    telemetry_id = r.json()["event_id"]
    final = await _complete(quipu, execution_id, "b", OUTPUT_B)
    cp_a, cp_b = await _checkpoints(quipu, execution_id, 2)
    assert (cp_a["node_id"], cp_b["node_id"]) == ("a", "b")
    events = {e["event_id"]: e for e in await _events(quipu, execution_id)}
    version_a, version_b = events[cp_a["checkpoint_id"]]["version"], events[cp_b["checkpoint_id"]]["version"]
    assert version_a < version_b

    r = await _compare(
        quipu, execution_id, {"checkpoint_a": cp_a["checkpoint_id"], "checkpoint_b": cp_b["checkpoint_id"]}
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["execution_id"] == execution_id
    for side, cp, version in (("a", cp_a, version_a), ("b", cp_b, version_b)):
        assert got[side]["checkpoint_id"] == got[side]["event_id"] == cp["checkpoint_id"]
        assert got[side]["version"] == version and got[side]["kind"] == "execution.checkpoint_taken"
        assert got[side]["as_of"] is None
        assert got[side]["timestamp"].replace("Z", "+00:00") == cp["created_at"].replace("Z", "+00:00")
    before, after = cp_a["state"], cp_b["state"]
    assert got["added_keys"] == ["a/b~"] == sorted(after.keys() - before.keys())
    assert got["removed_keys"] == []
    assert got["modified_keys"] == ["items", "meta", "outputs", "x"]
    assert got["state_diff"]["x"] == {"before": 1, "after": 2}
    assert got["state_diff"]["items"] == {"before": [1, 2, 3], "after": [1]}
    assert sorted(got["state_diff"]) == got["modified_keys"]
    changes = {c["path"]: c for c in got["changes"]}
    assert changes["/a~1b~0"] == {"path": "/a~1b~0", "op": "added", "after": True}
    assert changes["/meta/n"] == {"path": "/meta/n", "op": "modified", "before": 1, "after": 2}
    assert changes["/items/2"] == {"path": "/items/2", "op": "removed", "before": 3}
    assert changes["/outputs/b"] == {"path": "/outputs/b", "op": "added", "after": OUTPUT_B}
    assert "/meta/source" not in changes  # unchanged leaves are not reported
    assert [p["path"] for p in got["patch"] if p["op"] == "remove"] == ["/items/2", "/items/1"]
    assert jsonpatch.apply_patch(before, got["patch"]) == after

    # The same two points by version, the other way round: removals instead of additions.
    r = await _compare(quipu, execution_id, {"a": {"as_of": version_b}, "b": {"as_of": version_a}})
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["a"]["as_of"] == version_b and back["a"]["checkpoint_id"] == cp_b["checkpoint_id"]
    assert back["removed_keys"] == ["a/b~"] and back["added_keys"] == []
    assert back["modified_keys"] == got["modified_keys"]
    assert jsonpatch.apply_patch(after, back["patch"]) == before

    # From the first event to the last by event id: the whole run's change.
    start = next(e for e in events.values() if e["kind"] == "execution.started")
    r = await _compare(quipu, execution_id, {"a": {"as_of": start["event_id"]}, "b": {"as_of": final["last_event_id"]}})
    assert r.status_code == 200, r.text
    whole = r.json()
    assert whole["a"]["version"] == 1 and whole["a"]["event_id"] == start["event_id"]
    assert whole["a"]["checkpoint_id"] is None and whole["a"]["as_of"] == start["event_id"]
    assert whole["b"]["version"] == final["version"] and whole["b"]["event_id"] == final["last_event_id"]
    first = await _state_at(quipu, execution_id, 1)
    assert jsonpatch.apply_patch(first, whole["patch"]) == final["state"]
    assert set(whole["added_keys"]) == final["state"].keys() - first.keys() and "a/b~" in whole["added_keys"]

    # A telemetry event resolves to the execution's last event before it: state as after a.
    r = await _compare(quipu, execution_id, {"a": {"as_of": cp_a["checkpoint_id"]}, "b": {"as_of": telemetry_id}})
    assert r.status_code == 200, r.text
    during = r.json()
    assert version_a <= during["b"]["version"] < version_b and during["b"]["as_of"] == telemetry_id
    assert during["b"]["event_id"] != telemetry_id  # the execution's own event, not the telemetry
    assert during["changes"] == during["patch"] == during["modified_keys"] == [] and during["state_diff"] == {}
    same = await _compare(
        quipu, execution_id, {"checkpoint_a": cp_b["checkpoint_id"], "checkpoint_b": cp_b["checkpoint_id"]}
    )
    assert same.status_code == 200 and same.json()["patch"] == []

    # Read-only keys may compare: it is a read.
    r = await _compare(quipu, execution_id, {"a": {"as_of": 1}, "b": {"as_of": version_a}}, tenant="acme-reader")
    assert r.status_code == 200, r.text
    assert jsonpatch.apply_patch(first, r.json()["patch"]) == before == await _state_at(quipu, execution_id, version_a)


async def test_unknown_points_and_other_tenants_get_404(quipu: Running) -> None:
    execution_id = await _start(quipu)
    await _complete(quipu, execution_id, "a", OUTPUT_A)
    other_id = await _start(quipu)
    await _complete(quipu, other_id, "a", {"z": 1})
    r = await quipu.client.post(
        f"/api/v1/executions/{other_id}/telemetry",
        json={"type": "thought", "node_id": "b", "text": "hmm"},
        headers=quipu.auth(),
    )
    assert r.status_code in (200, 201), r.text
    other_telemetry = r.json()["event_id"]
    (cp,) = await _checkpoints(quipu, execution_id, 1)
    (other_cp,) = await _checkpoints(quipu, other_id, 1)
    cp_id = cp["checkpoint_id"]
    start = next(e for e in await _events(quipu, execution_id) if e["kind"] == "execution.started")
    ok = {"checkpoint_a": cp_id, "checkpoint_b": cp_id}
    assert (await _compare(quipu, execution_id, ok)).status_code == 200

    cases: list[tuple[str, dict[str, Any]]] = [
        (execution_id, {"checkpoint_a": cp_id, "checkpoint_b": str(uuid4())}),  # unknown checkpoint
        (execution_id, {"checkpoint_a": start["event_id"], "checkpoint_b": cp_id}),  # an event, not a checkpoint
        (execution_id, {"checkpoint_a": other_cp["checkpoint_id"], "checkpoint_b": cp_id}),  # another execution's
        (execution_id, {"a": {"as_of": 1}, "b": {"as_of": 10_000}}),  # a version it never reached
        (execution_id, {"a": {"as_of": str(uuid4())}, "b": {"as_of": 1}}),  # unknown event
        (execution_id, {"a": {"as_of": other_cp["checkpoint_id"]}, "b": {"as_of": 1}}),  # another execution's event
        (execution_id, {"a": {"as_of": 1}, "b": {"as_of": other_telemetry}}),  # telemetry of another execution
        (str(uuid4()), {"a": {"as_of": 1}, "b": {"as_of": 1}}),  # unknown execution
        (cp_id, {"a": {"as_of": 1}, "b": {"as_of": 1}}),  # an event id is not an execution id
    ]
    for path_id, body in cases:
        r = await _compare(quipu, path_id, body)
        assert r.status_code == 404, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # Another tenant sees none of it, whichever form it uses.
    for body in (ok, {"a": {"as_of": 1}, "b": {"as_of": 1}}, {"a": {"as_of": cp_id}, "b": {"as_of": cp_id}}):
        r = await _compare(quipu, execution_id, body, tenant="beta")
        assert r.status_code == 404, r.text


async def test_a_body_without_exactly_one_form_is_422(quipu: Running) -> None:
    execution_id = await _start(quipu)
    await _complete(quipu, execution_id, "a", OUTPUT_A)
    (cp,) = await _checkpoints(quipu, execution_id, 1)
    cp_id = cp["checkpoint_id"]
    bad: list[Any] = [
        {},  # neither form
        {"checkpoint_a": cp_id, "checkpoint_b": cp_id, "a": {"as_of": 1}, "b": {"as_of": 1}},  # both
        {"checkpoint_a": cp_id, "b": {"as_of": 1}},  # mixed
        {"checkpoint_a": cp_id},  # half of one
        {"a": {"as_of": 1}},
        {"a": {"as_of": 0}, "b": {"as_of": 1}},  # versions start at 1
        {"a": {"as_of": True}, "b": {"as_of": 1}},
        {"a": {"as_of": "yesterday"}, "b": {"as_of": 1}},
        {"a": {}, "b": {"as_of": 1}},
        {"a": {"as_of": 1, "extra": 1}, "b": {"as_of": 1}},
        {"checkpoint_a": cp_id, "checkpoint_b": cp_id, "label": "x"},
        {"checkpoint_a": "cp_001", "checkpoint_b": cp_id},
        [cp_id, cp_id],
    ]
    for body in bad:
        r = await _compare(quipu, execution_id, body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await _compare(quipu, execution_id, {"checkpoint_a": cp_id})
    assert [e["field"] for e in r.json()["errors"]] == ["checkpoint_b"]
    r = await quipu.client.post(f"/api/v1/executions/{execution_id}/checkpoints/compare", headers=quipu.auth())
    assert r.status_code == 422, r.text  # no body at all
