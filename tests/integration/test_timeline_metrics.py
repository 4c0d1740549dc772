"""Timeline and metrics read models over HTTP: a small run with a retry and telemetry,
checked against the log itself (order, timestamps) and against what was reported."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from commands.log import read_after
from projections.execution_metrics import MetricsProjection
from projections.timeline import TimelineProjection
from tests.integration.conftest import Running

FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "research", "agent_type": "researcher", "max_retries": 1, "config": {"retry_backoff": 0}},
        {"id": "write", "agent_type": "writer"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "research"},
        {"from": "start", "to": "write"},
        {"from": "research", "to": "end"},
        {"from": "write", "to": "end"},
    ],
}
LLM_1: dict[str, Any] = {
    "model": "gpt-x",
    "input_tokens": 100,
    "output_tokens": 50,
    "cost_usd": 0.01,
    "duration_ms": 120,
}
LLM_2: dict[str, Any] = {
    "model": "gpt-x",
    "input_tokens": 200,
    "output_tokens": 80,
    "cost_usd": 0.02,
    "duration_ms": 250,
}
LLM_3: dict[str, Any] = {
    "model": "claude-y",
    "input_tokens": 300,
    "output_tokens": 100,
    "cost_usd": 0.03,
    "duration_ms": 400,
}
TOOL: dict[str, Any] = {"tool": "search", "arguments": {"q": "x"}, "cost_usd": 0.002, "duration_ms": 30}
TABLES = ("rm_timeline.entries", "rm_metrics.runs", "rm_metrics.node_runs", "rm_metrics.telemetry")


async def _run(q: Running) -> str:
    """start -> research (fails once, retried) and write in parallel -> end, with telemetry."""
    c, h = q.client, q.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "insights", "definition": FLOW}, headers=h)).json()
    ex = (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()
    base = f"/api/v1/executions/{ex['id']}"

    async def post(path: str, body: dict[str, Any]) -> None:
        r = await c.post(base + path, json=body, headers=h)
        assert r.status_code in (200, 201), r.text

    await post("/nodes/research/heartbeat", {"worker": "w1"})
    await post("/telemetry", {"type": "llm_call", "node_id": "research", **LLM_1, "prompt_preview": "find"})
    await post("/telemetry", {"type": "tool_call", "node_id": "research", **TOOL})
    await post("/nodes/research/fail", {"error": "rate limited"})
    # The retry is due at once (backoff 0): the fixture's timer runner schedules attempt 2.

    async def rescheduled() -> bool:
        now = (await c.get(base, headers=h)).json()
        return bool(now["attempts"]["research"] == 2 and now["nodes"]["research"] == "scheduled")

    await q.wait_for(rescheduled)
    await post("/nodes/research/heartbeat", {"attempt": 2, "worker": "w2"})
    await post("/telemetry", {"type": "llm_call", "node_id": "research", **LLM_2})
    await post("/telemetry", {"type": "thought", "node_id": "research", "text": "the second source is better"})
    await post("/nodes/write/heartbeat", {})
    await post("/telemetry", {"type": "llm_call", "node_id": "write", **LLM_3})
    await post("/telemetry", {"type": "thought", "text": "run-level note"})  # no node
    await post("/nodes/write/complete", {"output": {"draft": "d"}})
    await post("/nodes/research/complete", {"output": {"sources": 2}, "attempt": 2})
    assert (await c.get(base, headers=h)).json()["status"] == "succeeded"
    return str(ex["id"])


async def _log(database_url: str, execution_id: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT event_id, kind, notification_id FROM event_dag WHERE tenant_id = 'acme' AND correlation_id = %s"
            " ORDER BY notification_id",
            (execution_id,),
        )
        return await cur.fetchall()


async def _caught_up(q: Running, database_url: str, upto: int) -> None:
    async def check() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            positions = [
                (await (await conn.execute(f"SELECT notification_id FROM {p.schema()}.tracking")).fetchone())
                for p in (TimelineProjection, MetricsProjection)
            ]
        return all(p is not None and p[0] >= upto for p in positions)

    await q.wait_for(check)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
async def run(quipu: Running, database_url: str) -> tuple[str, list[dict[str, Any]]]:
    execution_id = await _run(quipu)
    log = await _log(database_url, execution_id)
    await _caught_up(quipu, database_url, log[-1]["notification_id"])
    return execution_id, log


async def test_timeline_order_types_filters_and_summary(quipu: Running, run: tuple[str, list[dict[str, Any]]]) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id, log = run
    url = f"/api/v1/executions/{execution_id}/timeline"
    full = (await c.get(url, params={"limit": 1000}, headers=h)).json()
    items = full["timeline"]
    # Every event of the run and every telemetry record, in log order.
    assert [i["event_id"] for i in items] == [str(r["event_id"]) for r in log]
    assert [i["kind"] for i in items] == [r["kind"] for r in log]
    assert full["filtered"] is False and full["summary"]["total_events"] == len(log)
    types = [i["event_type"] for i in items]
    assert types[0] == "execution_start" and types[-1] == "execution_end"
    assert "definition" not in items[0]["data"] and items[-1]["data"]["status"] == "succeeded"
    counts = full["summary"]["counts_by_type"]
    assert sum(counts.values()) == len(log)
    assert counts["llm_call"] == 3 and counts["tool_call"] == 1 and counts["thought"] == 2
    assert counts["node_retry"] == 1 and counts["checkpoint_created"] == 2 and "error" not in counts
    assert counts["node_started"] == 3  # research twice, write once
    retry = next(i for i in items if i["event_type"] == "node_retry")
    assert retry["node_id"] == "research" and retry["data"]["error"] == "rate limited"
    llm = next(i for i in items if i["event_type"] == "llm_call")
    assert llm["node_id"] == "research" and llm["data"]["model"] == "gpt-x" and llm["data"]["prompt_preview"] == "find"
    assert "execution_id" not in llm["data"]
    summary = full["summary"]
    assert summary["started_at"] == items[0]["timestamp"] and summary["ended_at"] == items[-1]["timestamp"]
    span = (_ts(items[-1]["timestamp"]) - _ts(items[0]["timestamp"])) / timedelta(milliseconds=1)
    assert summary["duration_ms"] == pytest.approx(span, abs=0.01)

    # Checkpoint state leaves only when asked for.
    checkpoints = [i for i in items if i["event_type"] == "checkpoint_created"]
    assert all("state" not in i["data"] and "state_hash" in i["data"] for i in checkpoints)
    with_state = (
        await c.get(url, params={"event_types": "checkpoint_created", "include_state": "true"}, headers=h)
    ).json()
    states = [i["data"]["state"] for i in with_state["timeline"]]
    assert states[0]["draft"] == "d" and states[1]["sources"] == 2

    picked = (await c.get(url, params={"event_types": "llm_call, tool_call"}, headers=h)).json()
    assert picked["filtered"] is True
    assert [i["event_id"] for i in picked["timeline"]] == [
        i["event_id"] for i in items if i["event_type"] in ("llm_call", "tool_call")
    ]
    assert picked["summary"]["total_events"] == 4 and picked["summary"]["counts_by_type"] == {
        "llm_call": 3,
        "tool_call": 1,
    }
    assert picked["summary"]["started_at"] == summary["started_at"]  # the run's span, whatever the filter

    by_node = (await c.get(url, params={"node": "research", "limit": 1000}, headers=h)).json()
    assert [i["event_id"] for i in by_node["timeline"]] == [i["event_id"] for i in items if i["node_id"] == "research"]
    assert by_node["summary"]["counts_by_type"]["node_scheduled"] == 2

    lo, hi = items[3]["timestamp"], items[8]["timestamp"]
    window = (await c.get(url, params={"start_time": lo, "end_time": hi, "limit": 1000}, headers=h)).json()
    assert [i["event_id"] for i in window["timeline"]] == [
        i["event_id"] for i in items if _ts(lo) <= _ts(i["timestamp"]) <= _ts(hi)
    ]
    assert window["filtered"] is True and window["summary"]["total_events"] == len(window["timeline"])

    page = (await c.get(url, params={"limit": 3, "offset": 2}, headers=h)).json()
    assert [i["event_id"] for i in page["timeline"]] == [i["event_id"] for i in items[2:5]]
    assert page["limit"] == 3 and page["offset"] == 2 and page["summary"]["total_events"] == len(log)


async def test_timeline_rejects_bad_parameters_and_other_tenants(
    quipu: Running, run: tuple[str, list[dict[str, Any]]]
) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id, _ = run
    url = f"/api/v1/executions/{execution_id}/timeline"
    r = await c.get(url, params={"event_types": "llm_call,bogus"}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    error = r.json()["errors"][0]
    assert error["field"] == "event_types" and "bogus" in error["message"] and "execution_start" in error["message"]
    r = await c.get(url, params={"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "start_time"
    for bad in ({"start_time": "yesterday"}, {"limit": 0}, {"offset": -1}, {"include_state": "maybe"}):
        assert (await c.get(url, params=bad, headers=h)).status_code == 422, bad
    for path in ("timeline", "metrics"):
        assert (await c.get(f"/api/v1/executions/{execution_id}/{path}", headers=quipu.auth("beta"))).status_code == 404
        assert (await c.get(f"/api/v1/executions/{uuid4()}/{path}", headers=h)).status_code == 404
    assert (await c.get(url, headers=quipu.auth("acme-reader"))).status_code == 200


async def test_metrics_match_what_was_reported(quipu: Running, run: tuple[str, list[dict[str, Any]]]) -> None:
    c, h = quipu.client, quipu.auth()
    execution_id, _ = run
    m = (await c.get(f"/api/v1/executions/{execution_id}/metrics", headers=h)).json()
    items = (await c.get(f"/api/v1/executions/{execution_id}/timeline?limit=1000", headers=h)).json()["timeline"]
    totals = m["totals"]
    reported: list[dict[str, Any]] = [LLM_1, LLM_2, LLM_3, TOOL]
    assert totals["cost_usd"] == pytest.approx(sum(float(x["cost_usd"]) for x in reported))
    assert totals["input_tokens"] == 600 and totals["output_tokens"] == 230
    assert (totals["llm_calls"], totals["tool_calls"], totals["thoughts"]) == (3, 1, 2)
    span = (_ts(items[-1]["timestamp"]) - _ts(items[0]["timestamp"])) / timedelta(milliseconds=1)
    assert totals["duration_ms"] == pytest.approx(span, abs=0.01)

    assert m["by_model"] == [
        {
            "model": "claude-y",
            "calls": 1,
            "cost_usd": 0.03,
            "input_tokens": 300,
            "output_tokens": 100,
            "duration_ms": 400.0,
        },
        {
            "model": "gpt-x",
            "calls": 2,
            "cost_usd": 0.03,
            "input_tokens": 300,
            "output_tokens": 130,
            "duration_ms": 370.0,
        },
    ]

    # Attempt durations, recomputed from the timeline's timestamps: start (or scheduling) to the end.
    def stamp(event_type: str, node: str, nth: int = 0) -> datetime:
        found = [i for i in items if i["event_type"] == event_type and i["node_id"] == node]
        return _ts(found[nth]["timestamp"])

    ms = timedelta(milliseconds=1)
    research = [
        (stamp("node_retry", "research") - stamp("node_started", "research", 0)) / ms,
        (stamp("node_completed", "research") - stamp("node_started", "research", 1)) / ms,
    ]
    write = (stamp("node_completed", "write") - stamp("node_started", "write")) / ms
    nodes = {n["node_id"]: n for n in m["by_node"]}
    assert set(nodes) == {"research", "write"}  # start and end do no work
    r, w = nodes["research"], nodes["write"]
    assert (r["agent_type"], r["attempts"], r["llm_calls"]) == ("researcher", 2, 2)
    assert r["cost_usd"] == pytest.approx(0.032) and (r["input_tokens"], r["output_tokens"]) == (300, 130)
    assert r["duration_ms"] == pytest.approx(sum(research), abs=0.01)
    assert (w["agent_type"], w["attempts"], w["llm_calls"], w["cost_usd"]) == ("writer", 1, 1, 0.03)
    assert w["duration_ms"] == pytest.approx(write, abs=0.01)

    agents = {a["agent_type"]: a for a in m["by_agent"]}
    assert set(agents) == {"researcher", "writer", None}  # None: the run-level thought
    assert (agents["researcher"]["nodes"], agents["researcher"]["attempts"]) == (1, 2)
    assert agents["writer"]["cost_usd"] == pytest.approx(0.03) and agents[None]["attempts"] == 0

    finished = [(research[1], "research", 2, "researcher"), (write, "write", 1, "writer")]
    slowest = min(finished, key=lambda f: (-f[0], f[1]))  # ties go to the first node id
    fastest = min(finished, key=lambda f: (f[0], f[1]))
    for got, want in ((m["slowest_node"], slowest), (m["fastest_node"], fastest)):
        assert (got["node_id"], got["attempt"], got["agent_type"]) == want[1:]
        assert got["duration_ms"] == pytest.approx(want[0], abs=0.01)


async def test_rebuild_and_redelivery_change_nothing(
    quipu: Running, database_url: str, run: tuple[str, list[dict[str, Any]]]
) -> None:
    from quipu.rebuild import rebuild_projection

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        with psycopg.connect(database_url) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall() for t in TABLES}

    before = snapshot()
    assert len(before["rm_timeline.entries"]) == len(run[1]) and len(before["rm_metrics.telemetry"]) == 6
    for name in ("timeline", "metrics"):
        await rebuild_projection(database_url, name)
    assert snapshot() == before

    # Handlers applied a second time (past the applier's own check) leave the rows alone.
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        envelopes = await read_after(conn, 0, 10_000)
        for projection in (TimelineProjection(), MetricsProjection()):
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute(f"SET LOCAL search_path TO {projection.schema()}, public")
                for envelope in envelopes:
                    await projection.apply(cur, envelope)
    assert snapshot() == before
