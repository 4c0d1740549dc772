"""Analysis, partial edits and the Agent Studio form through the HTTP API."""

from __future__ import annotations

from tests.integration.conftest import Running

GRAPH = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "agent_type": "http", "timeout": 30},
        {"id": "route", "type": "decision"},
        {"id": "summarise", "agent_type": "llm", "timeout": 60},
        {"id": "notify"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "fetch"},
        {"from": "fetch", "to": "route"},
        {"from": "route", "to": "summarise", "condition": "state.pages > 0"},
        {"from": "route", "to": "notify"},
        {"from": "summarise", "to": "end"},
        {"from": "notify", "to": "end"},
    ],
}


async def test_validate_reports_everything_and_stores_nothing(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    ok = (await c.post("/api/v1/analysis/validate", json=GRAPH, headers=h)).json()
    assert ok == {"valid": True, "errors": []}
    bad = {
        "nodes": [{"id": "s", "type": "start"}, {"id": "d", "type": "decision"}, {"id": "d"}, {"id": "lost"}],
        "edges": [{"from": "s", "to": "d"}, {"from": "d", "to": "ghost"}],
    }
    r = (await c.post("/api/v1/analysis/validate", json=bad, headers=h)).json()
    assert r["valid"] is False
    codes = {e["code"] for e in r["errors"]}
    assert {"duplicate_id", "dangling_edge", "unreachable", "decision_without_conditions"} <= codes
    assert all(e["field"] for e in r["errors"])
    assert (await c.get("/api/v1/event-dag/by-kind/workflow.created", headers=h)).json()["total"] == 0


async def test_analysis_takes_a_create_body_definition_as_well(quipu: Running) -> None:
    """``{"definition": ...}`` (as a create body holds it) is analysed like the bare definition,
    and its problems are named as a create names them."""
    c, h = quipu.client, quipu.auth()
    ok = await c.post("/api/v1/analysis/validate", json={"definition": GRAPH}, headers=h)
    assert ok.status_code == 200 and ok.json() == {"valid": True, "errors": []}
    bad = {"nodes": [{"id": "a"}, {"id": "a"}], "edges": [{"from": "a", "to": "ghost"}]}
    wrapped = (await c.post("/api/v1/analysis/validate", json={"definition": bad}, headers=h)).json()
    bare = (await c.post("/api/v1/analysis/validate", json=bad, headers=h)).json()
    assert wrapped["valid"] is False and len(wrapped["errors"]) == len(bare["errors"]) > 0
    assert [e["field"] for e in wrapped["errors"]] == [f"definition.{e['field']}" for e in bare["errors"]]
    created = await c.post("/api/v1/workflows", json={"name": "bad", "definition": bad}, headers=h)
    assert created.status_code == 422
    assert {e["field"] for e in created.json()["errors"]} == {e["field"] for e in wrapped["errors"]}
    inspected = await c.post("/api/v1/analysis/inspect", json={"definition": GRAPH}, headers=h)
    assert inspected.status_code == 200 and inspected.json()["node_count"] == 6
    both = await c.post("/api/v1/analysis/validate", json={"definition": GRAPH, "nodes": []}, headers=h)
    assert both.status_code == 200 and both.json()["errors"][0]["code"] == "invalid_form"


async def test_inspect_gives_counts_depth_and_critical_path(quipu: Running) -> None:
    r = await quipu.client.post("/api/v1/analysis/inspect", json=GRAPH, headers=quipu.auth())
    assert r.status_code == 200, r.text
    facts = r.json()
    assert (facts["node_count"], facts["edge_count"], facts["depth"]) == (6, 6, 5)
    assert facts["decision_nodes"] == ["route"]
    assert facts["entry_nodes"] == ["start"] and facts["exit_nodes"] == ["end"]
    assert facts["critical_path"] == ["start", "fetch", "route", "summarise", "end"]
    cyclic = {"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}
    r = await quipu.client.post("/api/v1/analysis/inspect", json=cyclic, headers=quipu.auth())
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "cycle"


async def test_partial_edits_version_the_definition(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = (await c.post("/api/v1/workflows", json={"name": "g", "definition": GRAPH}, headers=h)).json()
    base = f"/api/v1/workflows/{wf['id']}"
    r = await c.post(f"{base}/nodes", json={"id": "audit", "agent_type": "logger"}, headers=h)
    assert r.status_code == 200 and r.json()["definition_version"] == 2
    r = await c.post(f"{base}/edges", json={"from": "notify", "to": "audit"}, headers=h)
    assert r.json()["definition_version"] == 3
    # refused: removing a node that an edge references, a cycle, an unknown node
    r = await c.delete(f"{base}/nodes/audit", headers=h)
    assert r.status_code == 409 and "notify -> audit" in r.json()["detail"]
    r = await c.post(f"{base}/edges", json={"from": "end", "to": "start"}, headers=h)
    assert r.status_code == 422 and {e["code"] for e in r.json()["errors"]} >= {"cycle"}
    assert (await c.put(f"{base}/nodes/nope", json={"id": "nope"}, headers=h)).status_code == 404
    assert (await c.put(f"{base}/nodes/fetch", json={"id": "other"}, headers=h)).status_code == 422
    r = await c.put(f"{base}/nodes/fetch", json={"id": "fetch", "agent_type": "http", "max_retries": 3}, headers=h)
    assert r.json()["definition_version"] == 4
    assert (await c.delete(f"{base}/edges?from=notify&to=audit", headers=h)).json()["definition_version"] == 5
    r = await c.delete(f"{base}/nodes/audit", headers={**h, "If-Match": r.headers["etag"]})
    assert r.status_code == 412  # the edge removal moved the version on
    r = await c.delete(f"{base}/nodes/audit", headers=h)
    assert r.json()["definition_version"] == 6 and len(r.json()["definition"]["nodes"]) == 6
    old = (await c.get(f"{base}?version=2", headers=h)).json()
    assert [n["id"] for n in old["definition"]["nodes"]][-1] == "audit" and len(old["definition"]["edges"]) == 6
    fetch = next(n for n in (await c.get(base, headers=h)).json()["definition"]["nodes"] if n["id"] == "fetch")
    assert fetch["max_retries"] == 3

    async def projected() -> bool:
        rows = (await c.get("/api/v1/workflows?name=g", headers=h)).json()["items"]
        return bool(
            rows and rows[0]["definition_version"] == 6 and rows[0]["node_count"] == 6 and rows[0]["edge_count"] == 6
        )

    await quipu.wait_for(projected)


async def test_agent_studio_form_is_stored_canonically(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    studio = {
        "steps": [
            {"id": "collect", "name": "Collect", "agentType": "scraper", "timeout": "PT5M"},
            {"id": "analyse", "agentType": "llm", "dependsOn": ["collect"], "configuration": {"model": "m"}},
        ]
    }
    r = await c.post("/api/v1/workflows", json={"name": "studio", "definition": studio}, headers=h)
    assert r.status_code == 201, r.text
    d = r.json()["definition"]
    assert d["nodes"][0] == {
        "id": "collect",
        "type": "task",
        "name": "Collect",
        "agent_type": "scraper",
        "callback_id": None,
        "config": {},
        "timeout": 300.0,
        "max_retries": 3,  # steps retry three times unless maxRetries says otherwise
    }
    assert d["edges"] == [{"from": "collect", "to": "analyse", "condition": None}]
    both = {"steps": studio["steps"], "nodes": [{"id": "x"}]}
    r = await c.post("/api/v1/workflows", json={"name": "mixed", "definition": both}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_form"
    r = await c.post(
        "/api/v1/workflows",
        json={
            "name": "bad",
            "definition": {"steps": [{"id": "a", "timeout": "soon"}, {"id": "b", "dependsOn": ["zzz"]}]},
        },
        headers=h,
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"definition.steps[0].timeout"}


async def test_agent_type_registry_when_configured(database_url: str, nats_url: str, subjects: object) -> None:
    from tests.integration.conftest import running_quipu

    async with running_quipu(database_url, nats_url, subjects, background=False) as q:  # type: ignore[arg-type]
        q.ctx.workflows.agent_types = frozenset({"http", "llm"})
        r = await q.client.post(
            "/api/v1/workflows",
            json={
                "name": "x",
                "definition": {"nodes": [{"id": "a", "agent_type": "http"}, {"id": "b", "agent_type": "quantum"}]},
            },
            headers=q.auth(),
        )
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {
                "field": "definition.nodes[1].agent_type",
                "message": "unknown agent type 'quantum'",
                "code": "unknown_agent_type",
            }
        ]
        v = (
            await q.client.post(
                "/api/v1/analysis/validate", json={"nodes": [{"id": "a", "agent_type": "ghost"}]}, headers=q.auth()
            )
        ).json()
        assert v["valid"] is False and v["errors"][0]["code"] == "unknown_agent_type"
