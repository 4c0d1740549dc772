"""Blame and bisect on random runs against a brute-force replay (real Postgres).

Each hypothesis example drives a new run over HTTP: a chain of task nodes that complete
with random outputs over a few keys (merged into the state), checkpoints (which change
nothing) and pauses resumed with random ``additional_data`` (kept under ``hitp_response``).
The brute force reads ``GET /state?as_of=<v>`` for every version ``v``: blame must name the
last version whose value at the pointer (RFC 6901, the ``jsonpointer`` library) differs from
the version before, and bisect the first version where a monotonic condition holds (and
for any condition, a version where it turned true).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any

import jsonpointer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.subjects import Subjects
from domain.bisect import max_probes
from domain.conditions import parse
from tests.integration.conftest import Running, running_quipu
from tests.integration.test_forensics_property import on_loop

MISSING = object()
VALUES = st.one_of(
    st.integers(0, 3), st.sampled_from(["x", "y", None, True]), st.fixed_dictionaries({"x": st.integers(0, 2)})
)
OUTPUTS = st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3)
STEPS = st.one_of(
    st.tuples(st.just("complete"), OUTPUTS),
    st.tuples(st.just("checkpoint"), st.just({})),
    st.tuples(st.just("pause"), st.dictionaries(st.sampled_from(["note", "a"]), st.integers(0, 2), max_size=2)),
)
POINTERS = ["", "/a", "/b", "/c", "/a/x", "/outputs", "/outputs/n0", "/outputs/n1/a", "/hitp_response", "/never"]
# Monotonic on these runs: keys are never removed and ``outputs`` only grows.
MONOTONIC = ["exists(a)", "exists(outputs.n1)", "len(outputs) >= 2", "exists(hitp_response)", "exists(never)"]
ANY = ["a == 1", "b != null and a == 'x'", "a.x >= 1", "not exists(c)", "true", "false"]


@dataclass(frozen=True)
class Case:
    steps: list[tuple[str, dict[str, Any]]]
    pointers: list[str]
    conditions: list[str]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    steps = draw(st.lists(STEPS, min_size=1, max_size=8))
    pointers = draw(st.lists(st.sampled_from(POINTERS), min_size=1, max_size=3, unique=True))
    conditions = draw(st.lists(st.sampled_from(MONOTONIC + ANY), min_size=1, max_size=3, unique=True))
    return Case(steps, pointers, conditions)


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


async def _drive(q: Running, case: Case) -> str:
    """The run's id, after every step of the case was recorded."""
    c, h = q.client, q.auth()
    completions = sum(1 for kind, _ in case.steps if kind == "complete")
    nodes = [{"id": f"n{i}", "agent_type": "w"} for i in range(max(completions, 1))]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    wf = await c.post(
        "/api/v1/workflows", json={"name": "blame", "definition": {"nodes": nodes, "edges": edges}}, headers=h
    )
    assert wf.status_code == 201, wf.text
    run = await c.post("/api/v1/executions", json={"workflow_id": wf.json()["id"], "input": {"b": 0}}, headers=h)
    assert run.status_code == 201, run.text
    base = f"/api/v1/executions/{run.json()['id']}"
    done = 0
    for kind, body in case.steps:
        if kind == "complete":
            assert (
                await c.post(f"{base}/nodes/n{done}/heartbeat", json={"worker": f"w{done}"}, headers=h)
            ).status_code == 200
            r = await c.post(f"{base}/nodes/n{done}/complete", json={"output": body}, headers=h)
            done += 1
        elif kind == "checkpoint":
            r = await c.post(f"{base}/checkpoints", json={"label": "cp"}, headers=h)
        else:
            status = (await c.get(base, headers=h)).json()["status"]
            if status != "running":
                continue
            assert (await c.post(f"{base}/pause", json={}, headers=h)).status_code == 200
            r = await c.post(f"{base}/resume", json={"additional_data": body}, headers=h)
        assert r.status_code in (200, 201), r.text
    return str(run.json()["id"])


async def _check(q: Running, case: Case) -> None:
    c, h = q.client, q.auth()
    run_id = await _drive(q, case)
    base = f"/api/v1/executions/{run_id}"
    head = (await c.get(f"{base}/state", headers=h)).json()["as_of"]["version"]
    views = [(await c.get(f"{base}/state", params={"as_of": str(v)}, headers=h)).json() for v in range(1, head + 1)]
    states = [view["state"] for view in views]
    event_ids = [view["as_of"]["event_id"] for view in views]
    for pointer in case.pointers:
        values = [MISSING] + [jsonpointer.resolve_pointer(s, pointer, MISSING) for s in states]
        changed = [v for v in range(1, head + 1) if not _same(values[v - 1], values[v])]
        r = await c.get(f"{base}/blame", params={"path": pointer}, headers=h)
        if not changed:
            assert r.status_code == 404, (pointer, r.text)
            continue
        assert r.status_code == 200, r.text
        blame = r.json()
        v = changed[-1]
        assert (blame["version"], blame["changes"], blame["event"]["event_id"]) == (v, len(changed), event_ids[v - 1])
        assert _same(blame.get("value", MISSING), values[v]) and _same(blame.get("previous", MISSING), values[v - 1])
        path = blame["causal_path"]
        assert path[0]["event_id"] == event_ids[0] and path[-1]["event_id"] == event_ids[v - 1]
        assert blame["causal_path_length"] == len(path) - 1
        for parent, child in itertools.pairwise(path):
            assert parent["event_id"] in child["parent_ids"]
        if blame["event"]["kind"] == "execution.node_completed":
            node = blame["node_id"]
            assert blame["report"]["node_id"] == node and blame["report"]["worker"] == f"w{node[1:]}"
    for text in case.conditions:
        holds = [parse(text).evaluate(s) for s in states]
        r = await c.get(f"{base}/bisect", params={"condition": text}, headers=h)
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["probes"] == len(found["probed_versions"]) <= found["max_probes"] == max_probes(head)
        assert found["versions"] == head
        if not holds[-1]:
            assert not found["found"] and found["version"] is None and found["event"] is None
            continue
        v = found["version"]
        assert found["found"] and found["event"]["event_id"] == event_ids[v - 1]
        assert holds[v - 1] and (v == 1 or not holds[v - 2]), (text, holds, v)
        if text in MONOTONIC:
            assert v == holds.index(True) + 1, (text, holds, v)


async def test_blame_and_bisect_match_a_brute_force_replay_on_random_runs(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    loop = asyncio.get_running_loop()
    async with running_quipu(database_url, nats_url, subjects, background=False) as quipu:

        @settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=cases())
        def property_holds(case: Case) -> None:
            on_loop(loop, _check(quipu, case))

        await asyncio.to_thread(property_holds)


async def test_blame_and_bisect_refuse_bad_input_and_other_tenants(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    run_id = await _drive(quipu, Case([("complete", {"a": 1})], [], []))
    base = f"/api/v1/executions/{run_id}"
    for url, params, field in [
        ("blame", {"path": "a"}, "path"),
        ("blame", {"path": "/a~2"}, "path"),
        ("bisect", {"condition": "a =="}, "condition"),
        ("bisect", {"condition": "(" * 60 + "1" + ")" * 60}, "condition"),
    ]:
        r = await c.get(f"{base}/{url}", params=params, headers=h)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert (await c.get(f"{base}/blame", params={"path": "/never"}, headers=h)).status_code == 404
    assert (await c.get(f"{base}/bisect", headers=h)).status_code == 422  # condition is required
    for url, params in [("blame", {"path": "/a"}), ("bisect", {"condition": "a == 1"})]:
        assert (await c.get(f"{base}/{url}", params=params, headers=quipu.auth("beta"))).status_code == 404
        unknown = "/api/v1/executions/0190d4a8-0000-7000-8000-000000000000"
        assert (await c.get(f"{unknown}/{url}", params=params, headers=h)).status_code == 404
    r = await c.get(f"{base}/blame", params={"path": "/a"}, headers=h)
    assert r.json()["op"] == "added" and r.json()["value"] == 1 and "previous" not in r.json()
    assert r.json()["report"]["attempt"] == 1 and r.json()["report"]["worker"] == "w0"
    whole = (await c.get(f"{base}/blame", params={"path": ""}, headers=h)).json()  # the whole state
    assert (whole["op"], whole["node_id"], whole["version"]) == ("modified", "n0", r.json()["version"])
