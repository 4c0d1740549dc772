"""Time travel against real Postgres and NATS: state as of an event, a version or a time
(executions and workflows), snapshots, replay as NDJSON, SSE and in the terminal, and the
timeline as it was."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
from psycopg.rows import dict_row

from commands.executions import ExecutionService
from commands.snapshots import encode_state
from commands.store import EventStore, postgres_env
from commands.workflows import WorkflowInput, WorkflowService
from domain.aggregate import CommandContext
from domain.execution import Execution
from domain.timers import TimerKind
from domain.workflow_graph import Edge, Node, WorkflowDefinition
from projections.timeline import TimelineProjection
from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "a", "agent_type": "worker"},
        {"id": "b", "agent_type": "worker"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "end"}],
}
LLM = {"type": "llm_call", "node_id": "a", "model": "m", "input_tokens": 3, "output_tokens": 4, "cost_usd": 0.01}


class Run(msgspec.Struct):
    id: str
    views: list[dict[str, Any]]  # GET /executions/{id} after each step, oldest first
    telemetry: list[str]  # telemetry event ids


async def _run(q: Running, tenant: str = "acme") -> Run:
    """start -> a -> b -> end over HTTP, with telemetry and a checkpoint, keeping each view."""
    c, h = q.client, q.auth(tenant)
    wf = (await c.post("/api/v1/workflows", json={"name": "tt", "definition": FLOW}, headers=h)).json()
    first = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "input": {"q": 1}}, headers=h)
    assert first.status_code == 201, first.text
    base = f"/api/v1/executions/{first.json()['id']}"
    run = Run(first.json()["id"], [first.json()], [])

    async def step(path: str, body: dict[str, Any]) -> None:
        r = await c.post(base + path, json=body, headers=h)
        assert r.status_code in (200, 201), r.text
        if path == "/telemetry":
            run.telemetry.append(r.json()["event_id"])
        run.views.append((await c.get(base, headers=h)).json())

    await step("/nodes/a/heartbeat", {"worker": "w"})
    await step("/telemetry", LLM)
    await step("/nodes/a/complete", {"output": {"found": 2}})
    await step("/checkpoints", {"label": "after a"})
    await step("/nodes/b/heartbeat", {})
    await step("/telemetry", {"type": "thought", "node_id": "b", "text": "hmm"})
    await step("/nodes/b/complete", {"output": {"written": True}})
    assert run.views[-1]["status"] == "succeeded"
    return run


async def _dag(database_url: str, correlation_id: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT event_id, stream_id, version, kind, occurred_at, notification_id FROM event_dag"
            " WHERE correlation_id = %s ORDER BY notification_id",
            (correlation_id,),
        )
        return await cur.fetchall()


def _without_as_of(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "as_of"}


def _as_get(body: dict[str, Any]) -> dict[str, Any]:
    """An execution's state as GET /executions/{id} answers it (no run here is deleted)."""
    assert body["deleted"] is False
    return {k: v for k, v in _without_as_of(body).items() if k != "deleted"}


async def test_execution_state_as_of_version_event_and_timestamp(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    run = await _run(quipu)
    url = f"/api/v1/executions/{run.id}/state"
    own = {r["version"]: r for r in await _dag(database_url, run.id) if str(r["stream_id"]) == run.id}
    distinct = list({v["version"]: v for v in run.views}.values())
    assert len(distinct) >= 6
    for view in distinct:
        for as_of in (str(view["version"]), view["last_event_id"], view["updated_at"]):
            r = await c.get(url, params={"as_of": as_of}, headers=h)
            assert r.status_code == 200, r.text
            body = r.json()
            assert _as_get(body) == view, as_of
            assert body["as_of"] == {
                "version": view["version"],
                "event_id": view["last_event_id"],
                "occurred_at": view["updated_at"],
            }
        nxt = own.get(view["version"] + 1)
        if nxt is not None:  # halfway to the next event: still this version
            at = datetime.fromisoformat(view["updated_at"])
            middle = at + (nxt["occurred_at"] - at) / 2
            assert (await c.get(url, params={"as_of": middle.isoformat()}, headers=h)).json()["version"] == view[
                "version"
            ]
    # The first view already ran start and scheduled a; version 1 is the bare start.
    v1 = (await c.get(url, params={"as_of": "1"}, headers=h)).json()
    assert v1["version"] == 1 and v1["nodes"] == {"start": "pending", "a": "pending", "b": "pending", "end": "pending"}
    # Now is the latest state; a time far ahead is the latest too.
    latest = (await c.get(url, headers=h)).json()
    assert _as_get(latest) == run.views[-1]
    ahead = (datetime.fromisoformat(run.views[-1]["updated_at"]) + timedelta(days=1)).isoformat()
    assert (await c.get(url, params={"as_of": ahead}, headers=h)).json()["version"] == run.views[-1]["version"]
    # A telemetry event is a point of its execution: the state its node saw.
    llm_view = run.views[2]  # after the llm_call; nothing changed the execution since the heartbeat
    body = (await c.get(url, params={"as_of": run.telemetry[0]}, headers=h)).json()
    assert _as_get(body) == llm_view and body["nodes"]["a"] == "running"
    # Naive timestamps are UTC; an unencoded '+' (a space) is repaired.
    naive = datetime.fromisoformat(llm_view["updated_at"]).replace(tzinfo=None).isoformat()
    assert (await c.get(url, params={"as_of": naive}, headers=h)).json()["version"] == llm_view["version"]
    spaced = llm_view["updated_at"].replace("Z", "+00:00").replace("+", " ")
    assert (await c.get(url + "?as_of=" + spaced.replace(" ", "+"), headers=h)).json()["version"] == llm_view["version"]


async def test_state_errors_and_tenancy(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    run = await _run(quipu)
    other = await _run(quipu)
    url = f"/api/v1/executions/{run.id}/state"
    assert (await c.get(f"/api/v1/executions/{uuid4()}/state", headers=h)).status_code == 404
    assert (await c.get(url, headers=quipu.auth("beta"))).status_code == 404
    assert (await c.get(url, params={"as_of": "1"}, headers=quipu.auth("beta"))).status_code == 404
    assert (await c.get(url, headers=quipu.auth("acme-reader"))).status_code == 200
    cases = {
        "yesterday-ish": "invalid_point",
        "0": "invalid_point",
        "9999": "no_version",
        other.views[-1]["last_event_id"]: "unknown_event",  # another execution's event
        other.telemetry[0]: "unknown_event",  # another execution's telemetry
        str(uuid4()): "unknown_event",
        "2001-01-01T00:00:00Z": "before_first_event",
    }
    for as_of, code in cases.items():
        r = await c.get(url, params={"as_of": as_of}, headers=h)
        assert r.status_code == 422, (as_of, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0] == {"field": "as_of", "message": r.json()["errors"][0]["message"], "code": code}
    assert "before" in (await c.get(url, params={"as_of": "2001-01-01T00:00:00Z"}, headers=h)).json()["detail"]
    # Another tenant's event id is not found either, never a leak of its state.
    beta = await _run(quipu, "beta")
    assert (await c.get(url, params={"as_of": beta.views[-1]["last_event_id"]}, headers=h)).status_code == 422
    # A workflow is not an execution (and vice versa).
    wf_id = (await c.get(f"/api/v1/executions/{run.id}", headers=h)).json()["workflow_id"]
    assert (await c.get(f"/api/v1/executions/{wf_id}/state", headers=h)).status_code == 404
    assert (await c.get(f"/api/v1/workflows/{run.id}/state", headers=h)).status_code == 404


async def test_workflow_state_as_of(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    created = (await c.post("/api/v1/workflows", json={"name": "v1", "definition": FLOW}, headers=h)).json()
    url = f"/api/v1/workflows/{created['id']}"
    smaller = {
        "nodes": FLOW["nodes"][:2] + FLOW["nodes"][3:],
        "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "end"}],
    }
    updated = await c.put(url, json={"name": "v2", "definition": smaller}, headers=h)
    assert updated.status_code == 200, updated.text
    assert (await c.delete(url, headers=h)).status_code in (200, 204)
    first = (await c.get(f"{url}/state", params={"as_of": "1"}, headers=h)).json()
    assert first["name"] == "v1" and first["deleted"] is False and first["definition"] == created["definition"]
    assert _without_as_of({k: v for k, v in first.items() if k != "deleted"}) == created
    by_event = (await c.get(f"{url}/state", params={"as_of": updated.json()["last_event_id"]}, headers=h)).json()
    assert by_event["name"] == "v2" and by_event["definition_version"] == 2 and by_event["as_of"]["version"] == 2
    by_time = (await c.get(f"{url}/state", params={"as_of": created["updated_at"]}, headers=h)).json()
    assert by_time["name"] == "v1"
    now = (await c.get(f"{url}/state", headers=h)).json()
    assert now["deleted"] is True and now["version"] == 3 and now["as_of"]["version"] == 3
    assert (await c.get(url, headers=h)).status_code == 404  # the live resource is gone; its history is not
    assert (await c.get(f"{url}/state", headers=quipu.auth("beta"))).status_code == 404
    assert (await c.get(f"{url}/state", params={"as_of": "4"}, headers=h)).status_code == 422


def _churn(store: EventStore, tenant: str, rounds: int) -> Execution:
    """An execution with a mixed history: heartbeats, checkpoints, failures with retries
    fired by the timer, and finally success (about five events a round)."""
    workflows = WorkflowService(store)
    executions = ExecutionService(store, workflows)
    ctx = CommandContext(tenant, "test")
    definition = WorkflowDefinition(
        nodes=[
            Node(id="start", type="start"),
            Node(id="t", agent_type="w", max_retries=100, config={"retry_backoff": 0}),
            Node(id="end", type="end"),
        ],
        edges=[Edge(source="start", target="t"), Edge(source="t", target="end")],
    )
    workflow, _ = workflows.create(ctx, WorkflowInput("churn", "", definition, {}))
    execution, _ = executions.start(ctx, workflow.id, version=None, input={"n": 0})
    for i in range(rounds):
        executions.act(ctx, execution.id, lambda e, c: e.heartbeat(c, "t"))
        executions.act(ctx, execution.id, lambda e, c, i=i: e.take_checkpoint(c, f"round {i}"))
        executions.act(ctx, execution.id, lambda e, c, i=i: e.fail_node(c, "t", f"error {i}"))
        attempt = executions.get(tenant, execution.id).attempts["t"]
        assert executions.fire_timer(tenant, execution.id, TimerKind.RETRY, "t", attempt)
    executions.act(ctx, execution.id, lambda e, c: e.complete_node(c, "t", {"rounds": rounds}))
    return executions.get(tenant, execution.id)


def _fields(e: Execution) -> dict[str, Any]:
    return {k: v for k, v in vars(e).items() if k != "_pending"}


async def test_snapshots_are_a_cache_load_with_equals_load_without(database_url: str) -> None:
    def check() -> None:
        store = EventStore(env={**postgres_env(database_url, pool_size=2), "SNAPSHOT_INTERVAL": "7"})
        try:
            final = _churn(store, "acme", 12)
            assert final.status.value == "succeeded" and final.version > 50
            with psycopg.connect(database_url) as conn:
                versions = [
                    r[0]
                    for r in conn.execute(
                        "SELECT originator_version FROM quipu_snapshots WHERE originator_id = %s ORDER BY 1",
                        (final.id,),
                    )
                ]
            # One snapshot per save that reached a multiple of 7, at the save's last version.
            assert len(versions) >= final.version // 7 - 1 and all(v % 7 < 5 for v in versions), versions
            for version in range(1, final.version + 1):
                with_snapshots = store.load(Execution, final.id, "acme", version=version)
                without = store.load(Execution, final.id, "acme", version=version, snapshots=False)
                assert with_snapshots.version == version
                assert _fields(with_snapshots) == _fields(without), version
            assert _fields(store.load(Execution, final.id, "acme")) == _fields(final)
            # The loads above did start from snapshots: a planted one shows through.
            planted = store.load(Execution, final.id, "acme", version=versions[1], snapshots=False)
            planted.error = "planted"
            with psycopg.connect(database_url, autocommit=True) as conn:
                original = conn.execute(
                    "SELECT state FROM quipu_snapshots WHERE originator_id = %s AND originator_version = %s",
                    (final.id, versions[1]),
                ).fetchone()
                assert original is not None
                update = "UPDATE quipu_snapshots SET state = %s WHERE originator_id = %s AND originator_version = %s"
                conn.execute(update, (encode_state(planted), final.id, versions[1]))
                assert store.load(Execution, final.id, "acme", version=versions[1]).error == "planted"
                assert store.load(Execution, final.id, "acme", version=versions[1], snapshots=False).error is None
                conn.execute(update, (original[0], final.id, versions[1]))
            # A snapshot that does not decode (or is of an older shape) is ignored, not trusted.
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    'UPDATE quipu_snapshots SET state = convert_to(\'{"format":1,"fingerprint":"old","state":{}}\','
                    " 'UTF8') WHERE originator_id = %s",
                    (final.id,),
                )
            for version in (versions[0], versions[-1], final.version):
                assert _fields(store.load(Execution, final.id, "acme", version=version)) == _fields(
                    store.load(Execution, final.id, "acme", version=version, snapshots=False)
                )
            # Without snapshots configured the store neither reads nor writes them.
            plain = EventStore(env={**postgres_env(database_url, pool_size=2), "SNAPSHOT_INTERVAL": "0"})
            try:
                assert plain.snapshots is None
                assert _fields(plain.load(Execution, final.id, "acme", version=33)) == _fields(
                    store.load(Execution, final.id, "acme", version=33)
                )
            finally:
                plain.close()
        finally:
            store.close()

    await asyncio.to_thread(check)


async def _replay(q: Running, execution_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await q.client.get(f"/api/v1/executions/{execution_id}/replay", params=params, headers=q.auth())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines()]


async def test_replay_ndjson_order_and_ranges(quipu: Running, database_url: str) -> None:
    run = await _run(quipu)
    await _run(quipu)  # another execution of the same tenant stays out of it
    dag = await _dag(database_url, run.id)
    everything = await _replay(quipu, run.id)
    assert [e["event_id"] for e in everything] == [str(r["event_id"]) for r in dag]
    assert [e["notification_id"] for e in everything] == sorted(e["notification_id"] for e in everything)
    assert {e["kind"] for e in everything} >= {"execution.started", "telemetry.llm_call", "telemetry.thought"}
    assert all(e["correlation_id"] == run.id for e in everything)
    own = [e for e in everything if e["stream_id"] == run.id]
    assert [e["version"] for e in own] == list(range(1, len(own) + 1))
    # from/to by version: inclusive, with the telemetry recorded in between.
    ranged = await _replay(quipu, run.id, **{"from": "3", "to": "7"})
    index = {e["event_id"]: i for i, e in enumerate(everything)}
    lo, hi = index[own[2]["event_id"]], index[own[6]["event_id"]]
    assert [e["event_id"] for e in ranged] == [e["event_id"] for e in everything[lo : hi + 1]]
    # A ``to`` version past the end is the end (the run may be shorter than the reader guessed);
    # a ``from`` past the end still names nothing that exists.
    past_end = str(len(own) + 40)
    assert await _replay(quipu, run.id, **{"from": "3", "to": past_end}) == everything[lo:]
    r = await quipu.client.get(f"/api/v1/executions/{run.id}/replay", params={"from": past_end}, headers=quipu.auth())
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "no_version"
    # from/to by event id (a telemetry event is a valid bound) and by timestamp.
    llm = run.telemetry[0]
    by_event = await _replay(quipu, run.id, **{"from": llm, "to": own[-1]["event_id"]})
    assert [e["event_id"] for e in by_event] == [e["event_id"] for e in everything[index[llm] :]]
    middle = everything[len(everything) // 2]
    by_time = await _replay(quipu, run.id, **{"from": middle["occurred_at"], "to": middle["occurred_at"]})
    assert [e["event_id"] for e in by_time] == [middle["event_id"]]
    assert await _replay(quipu, run.id, **{"from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"}) == []
    # Paced: the same events (the delays themselves are unit-tested, not timed here).
    assert [e["event_id"] for e in await _replay(quipu, run.id, pace=10_000)] == [e["event_id"] for e in everything]
    c, h = quipu.client, quipu.auth()
    url = f"/api/v1/executions/{run.id}/replay"
    r = await c.get(url, params={"from": "7", "to": "3"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_range"
    assert (await c.get(url, params={"from": "x"}, headers=h)).status_code == 422
    assert (await c.get(url, params={"to": str(uuid4())}, headers=h)).status_code == 422
    assert (await c.get(url, params={"pace": "-1"}, headers=h)).status_code in (400, 422)
    assert (await c.get(url, headers=quipu.auth("beta"))).status_code == 404
    assert (await c.get(f"/api/v1/executions/{uuid4()}/replay", headers=h)).status_code == 404


def _sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.strip().split("\r\n\r\n" if "\r\n\r\n" in text else "\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = fields.get(key, "") + value.lstrip()
        if "data" in fields:
            events.append(fields)
    return events


async def test_replay_as_server_sent_events_with_resume(quipu: Running) -> None:
    run = await _run(quipu)
    everything = await _replay(quipu, run.id)
    c = quipu.client
    url = f"/api/v1/executions/{run.id}/replay"
    r = await c.get(url, headers={**quipu.auth(), "Accept": "text/event-stream"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    messages = _sse(r.text)
    assert [m["id"] for m in messages[:-1]] == [e["event_id"] for e in everything]
    assert [json.loads(m["data"]) for m in messages[:-1]] == everything
    assert messages[-1]["event"] == "end"
    assert json.loads(messages[-1]["data"]) == {"count": len(everything), "last_event_id": everything[-1]["event_id"]}
    # A reconnect names the last event it got and continues right after it.
    resumed = _sse(
        (
            await c.get(
                url, headers={**quipu.auth(), "Accept": "text/event-stream", "Last-Event-ID": everything[4]["event_id"]}
            )
        ).text
    )
    assert [m["id"] for m in resumed[:-1]] == [e["event_id"] for e in everything[5:]]


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUIPU_LOG_LEVEL": "warning"}
    env.pop("QUIPU_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "quipu.cli", "replay", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


async def test_quipu_replay_in_the_terminal(quipu: Running, database_url: str) -> None:
    run = await _run(quipu)
    everything = await _replay(quipu, run.id)
    done = await asyncio.to_thread(_cli, database_url, run.id, "--json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == everything
    assert f"replayed {len(everything)} events" in done.stderr and "\r" not in done.stderr  # no bar into a pipe
    ranged = await asyncio.to_thread(_cli, database_url, run.id, "--from", "3", "--to", "7", "--pace", "10000")
    assert ranged.returncode == 0, ranged.stderr
    lines = ranged.stdout.splitlines()
    expected = await _replay(quipu, run.id, **{"from": "3", "to": "7"})
    assert len(lines) == len(expected) and lines[0].split()[0] == "v3" and lines[-1].split()[0] == "v7"
    assert [line.split()[2] for line in lines] == [e["kind"] for e in expected]
    missing = await asyncio.to_thread(_cli, database_url, str(uuid4()))
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad = await asyncio.to_thread(_cli, database_url, run.id, "--to", "nope")
    assert bad.returncode == 1 and "not a version number" in bad.stderr


async def test_timeline_as_of(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    run = await _run(quipu)
    dag = await _dag(database_url, run.id)

    async def projected() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute(f"SELECT notification_id FROM {TimelineProjection.schema()}.tracking")
            row = await cur.fetchone()
        return row is not None and row[0] >= dag[-1]["notification_id"]

    await quipu.wait_for(projected)
    url = f"/api/v1/executions/{run.id}/timeline"
    full = (await c.get(url, params={"limit": 1000}, headers=h)).json()
    assert full["summary"]["ended_at"] is not None and full["as_of"] is None
    ids = [str(r["event_id"]) for r in dag]
    assert [e["event_id"] for e in full["timeline"]] == ids
    llm = run.telemetry[0]
    cut = ids.index(llm)
    then = (await c.get(url, params={"as_of": llm, "limit": 1000}, headers=h)).json()
    assert [e["event_id"] for e in then["timeline"]] == ids[: cut + 1] and then["as_of"] == llm
    assert then["summary"]["total_events"] == cut + 1 and then["summary"]["ended_at"] is None
    assert then["summary"]["duration_ms"] < full["summary"]["duration_ms"]
    # A version is its execution event's place in the log; a time bounds occurred_at.
    v4 = next(r for r in dag if str(r["stream_id"]) == run.id and r["version"] == 4)
    by_version = (await c.get(url, params={"as_of": "4", "limit": 1000}, headers=h)).json()
    assert [e["event_id"] for e in by_version["timeline"]] == ids[: ids.index(str(v4["event_id"])) + 1]
    at = dag[cut]["occurred_at"].isoformat()
    by_time = (await c.get(url, params={"as_of": at, "limit": 1000}, headers=h)).json()
    assert [e["event_id"] for e in by_time["timeline"]] == [
        str(r["event_id"]) for r in dag if r["occurred_at"] <= dag[cut]["occurred_at"]
    ]
    # Filters and paging still apply within the past.
    page = (await c.get(url, params={"as_of": llm, "event_types": "node_scheduled", "limit": 1}, headers=h)).json()
    assert (
        page["summary"]["total_events"] == sum(1 for r in dag[: cut + 1] if r["kind"] == "execution.node_scheduled")
        and len(page["timeline"]) == 1
    )
    assert (await c.get(url, params={"as_of": "2001-01-01T00:00:00Z"}, headers=h)).json()["timeline"] == []
    assert (await c.get(url, params={"as_of": "999"}, headers=h)).status_code == 422
    for as_of in (str(uuid4()), "soon"):
        r = await c.get(url, params={"as_of": as_of}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "as_of"
    assert (await c.get(url, params={"as_of": llm}, headers=quipu.auth("beta"))).status_code == 404


def test_snapshot_table_is_created_with_the_store(database_url: str) -> None:
    store = EventStore(env={**postgres_env(database_url, pool_size=1), "SNAPSHOT_INTERVAL": "5"})
    try:
        assert store.snapshot_interval == 5 and store.snapshots is not None
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT to_regclass('public.quipu_snapshots') IS NOT NULL").fetchone()
        assert row == (True,)
        assert store.take_stream_snapshot(UUID(int=1), 1) is False  # nothing to snapshot: no error either
    finally:
        store.close()
