"""Artifacts, notes and entity edges through the HTTP API, against real Postgres and NATS."""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from typing import Any

import networkx as nx
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from quipu.rebuild import rebuild_projection
from tests.integration.conftest import Running

A = "/api/v1/artifacts"
N = "/api/v1/notes"
E = "/api/v1/edges"


def artifact(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "trace",
        "artifact_type": "error_log",
        "content": "boom",
        "extraction_method": "explicit",
        **overrides,
    }


def note(**overrides: Any) -> dict[str, Any]:
    return {"title": "t", "content": "c", "note_type": "fact", **overrides}


def edge(*ids: str, edge_type: str = "relates_to", **overrides: Any) -> dict[str, Any]:
    parts = [
        {"entity_type": "note", "entity_id": i, "role": "source" if n == 0 else "target"} for n, i in enumerate(ids)
    ]
    return {"edge_type": edge_type, "participants": parts, "provenance": {"extraction_method": "inferred"}, **overrides}


async def post(q: Running, path: str, body: Any, tenant: str = "acme", status: int = 201) -> dict[str, Any]:
    r = await q.client.post(path, json=body, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def listed(q: Running, path: str, tenant: str = "acme", **params: Any) -> dict[str, Any]:
    r = await q.client.get(path, params=params, headers=q.auth(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def settle(q: Running, path: str, expected: int, **params: Any) -> dict[str, Any]:
    """Wait until the read model lists ``expected`` items (projection lag), then return the page."""
    found: dict[str, Any] = {}

    async def check() -> bool:
        found.update(await listed(q, path, **params))
        return bool(found["total"] == expected)

    await q.wait_for(check)
    return found


async def _caught_up(q: Running) -> bool:
    r = await q.client.get("/api/v1/admin/projections", headers=q.auth())
    knowledge = next(p for p in r.json() if p["name"] == "knowledge")
    return bool(knowledge["lag_events"] == 0 and knowledge["position"] == knowledge["head"])


async def test_artifact_create_get_update_delete(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    r = await c.post(A, json=artifact(confidence=0.7, source_turn=3, ttl="persistent"), headers=h)
    assert r.status_code == 201, r.text
    a = r.json()
    assert r.headers["location"] == f"{A}/{a['artifact_id']}" and r.headers["etag"] == '"1"'
    assert a["content_hash"] == hashlib.sha256(b"boom").hexdigest() and a["expires_at"] is None
    assert a["provenance"] == {"source_turn": 3, "extraction_method": "explicit", "confidence": 0.7}
    assert (await c.get(f"{A}/{a['artifact_id']}", headers=h)).json() == a
    r = await c.patch(f"{A}/{a['artifact_id']}", json={"content": "bang", "ttl": "ephemeral"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["content_hash"] == hashlib.sha256(b"bang").hexdigest() and r.json()["expires_at"] is not None
    stale = await c.patch(f"{A}/{a['artifact_id']}", json={"name": "x"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert (await c.delete(f"{A}/{a['artifact_id']}", headers={**h, "If-Match": '"2"'})).status_code == 204
    assert (await c.get(f"{A}/{a['artifact_id']}", headers=h)).status_code == 404
    assert (await c.patch(f"{A}/{a['artifact_id']}", json={"name": "x"}, headers=h)).status_code == 409
    assert (await c.delete(f"{A}/{a['artifact_id']}", headers=h)).status_code == 409
    # The history stays: three events on the artifact's stream.
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={a['artifact_id']}", headers=h)).json()
    assert [n["kind"] for n in dag["nodes"]] == ["artifact.created", "artifact.updated", "artifact.deleted"]
    await quipu.wait_for(lambda: _caught_up(quipu))
    assert (await listed(quipu, A, include_expired="true", include_superseded="true"))["total"] == 0


async def test_artifact_lists_filter_and_page(quipu: Running) -> None:
    t1, t2, s1 = (str(uuid.uuid4()) for _ in range(3))
    for i in range(5):
        await post(quipu, A, artifact(name=f"a{i}", trajectory_id=t1 if i < 3 else t2, scope_id=s1 if i == 0 else None))
    await post(quipu, A, artifact(artifact_type="fact", extraction_method="llm_extraction", trajectory_id=t2))
    await post(quipu, A, artifact(), tenant="beta")
    page = await settle(quipu, A, 6, limit=4)
    assert len(page["items"]) == 4 and page["items"][0]["artifact_type"] == "fact"  # newest first
    rest = await listed(quipu, A, limit=4, offset=4)
    assert len(rest["items"]) == 2
    assert {i["artifact_id"] for i in page["items"]}.isdisjoint(i["artifact_id"] for i in rest["items"])
    assert (await listed(quipu, A, trajectory_id=t1))["total"] == 3
    assert (await listed(quipu, A, artifact_type="fact", trajectory_id=t2))["total"] == 1
    assert (await listed(quipu, A, extraction_method="llm_extraction"))["total"] == 1
    assert [i["name"] for i in (await listed(quipu, A, scope_id=s1))["items"]] == ["a0"]
    oldest = (await listed(quipu, A, order="asc", limit=1))["items"][0]
    assert (await listed(quipu, A, created_after=oldest["created_at"]))["total"] == 6
    assert (await listed(quipu, A, created_before=oldest["created_at"]))["total"] == 0
    assert (await listed(quipu, A, tenant="beta"))["total"] == 1
    bad = await quipu.client.get(A, params={"artifact_type": "poem"}, headers=quipu.auth())
    assert bad.status_code in (400, 422) and bad.headers["content-type"].startswith("application/problem+json")


async def test_supersede_chains_and_what_lists_show(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    trajectory = str(uuid.uuid4())
    v1 = await post(quipu, A, artifact(content="v1", trajectory_id=trajectory))
    v2 = await post(quipu, f"{A}/{v1['artifact_id']}/supersede", artifact(content="v2"))
    assert v2["supersedes"] == v1["artifact_id"] and v2["trajectory_id"] == trajectory  # inherited
    old = (await c.get(f"{A}/{v1['artifact_id']}", headers=h)).json()
    assert old["superseded_by"] == v2["artifact_id"] and old["_links"]["superseded_by"].endswith(v2["artifact_id"])
    again = await c.post(f"{A}/{v1['artifact_id']}/supersede", json=artifact(content="fork"), headers=h)
    assert again.status_code == 409
    assert (await c.patch(f"{A}/{v1['artifact_id']}", json={"name": "late"}, headers=h)).status_code == 409
    v3 = await post(quipu, f"{A}/{v2['artifact_id']}/supersede", artifact(content="v3"))
    await settle(quipu, A, 3, include_superseded="true")
    page = await listed(quipu, A)
    assert [i["artifact_id"] for i in page["items"]] == [v3["artifact_id"]] and page["total"] == 1
    # The replacement's first event names the replaced artifact's event, and vice versa.
    created = (await c.get(f"/api/v1/event-dag/{v2['last_event_id']}", headers=h)).json()
    assert v1["last_event_id"] in created["parent_ids"]
    superseded = (await c.get(f"/api/v1/event-dag/{old['last_event_id']}", headers=h)).json()
    assert superseded["kind"] == "artifact.superseded" and v2["last_event_id"] in superseded["parent_ids"]
    # Concurrent supersedes of one artifact: exactly one wins, the rest are refused.
    base = await post(quipu, A, artifact(content="base"))
    racers = await asyncio.gather(
        *[c.post(f"{A}/{base['artifact_id']}/supersede", json=artifact(content=f"r{i}"), headers=h) for i in range(4)]
    )
    assert sorted(r.status_code for r in racers) == [201, 409, 409, 409]
    winner = next(r.json() for r in racers if r.status_code == 201)
    assert (await c.get(f"{A}/{base['artifact_id']}", headers=h)).json()["superseded_by"] == winner["artifact_id"]
    assert (await c.get("/api/v1/event-dag/by-kind/artifact.superseded", headers=h)).json()["total"] == 3
    creations = (await c.get("/api/v1/event-dag/by-kind/artifact.created", headers=h)).json()
    assert creations["total"] == 5  # the losers' replacements were never written
    # Notes chain the same way.
    n1 = await post(quipu, N, note(content="n1"))
    n2 = await post(quipu, f"{N}/{n1['note_id']}/supersede", note(content="n2", abstraction_level="summary"))
    assert n2["supersedes"] == n1["note_id"]
    assert (await c.post(f"{N}/{n1['note_id']}/supersede", json=note(), headers=h)).status_code == 409
    await settle(quipu, N, 2, include_superseded="true")
    assert [n["note_id"] for n in (await listed(quipu, N))["items"]] == [n2["note_id"]]


async def test_a_replacement_keeps_the_metadata_it_does_not_restate(quipu: Running) -> None:
    """Filters on ``metadata.<key>`` find a superseded item's replacement as they found the
    original: metadata the supersede body leaves out is carried over, metadata it gives wins."""
    n1 = await post(quipu, N, note(content="n1", metadata={"repo": "api"}))
    n2 = await post(quipu, f"{N}/{n1['note_id']}/supersede", note(content="n2"))
    assert n2["metadata"] == {"repo": "api"}
    n3 = await post(quipu, f"{N}/{n2['note_id']}/supersede", note(content="n3", metadata={"repo": "web"}))
    assert n3["metadata"] == {"repo": "web"}
    a1 = await post(quipu, A, artifact(content="a1", metadata={"repo": "api"}))
    a2 = await post(quipu, f"{A}/{a1['artifact_id']}/supersede", artifact(content="a2"))
    assert a2["metadata"] == {"repo": "api"}
    # The read model agrees with the command's answer.
    await settle(quipu, N, 3, include_superseded="true")
    stored = (await quipu.client.get(f"{N}/{n2['note_id']}", headers=quipu.auth())).json()
    assert stored["metadata"] == {"repo": "api"}


async def test_expired_items_are_listed_only_when_asked(quipu: Running) -> None:
    gone = await post(quipu, A, artifact(name="gone", ttl={"duration_ms": 1}))
    await post(quipu, A, artifact(name="kept", ttl="ephemeral"))
    await post(quipu, A, artifact(name="forever"))
    await post(quipu, N, note(ttl={"duration_ms": 1}))
    await post(quipu, N, note(ttl="long_term"))
    await settle(quipu, A, 3, include_expired="true")
    assert sorted(i["name"] for i in (await listed(quipu, A))["items"]) == ["forever", "kept"]
    await settle(quipu, N, 2, include_expired="true")
    assert (await listed(quipu, N))["total"] == 1
    # A new TTL counts from now: the expired artifact comes back.
    r = await quipu.client.patch(f"{A}/{gone['artifact_id']}", json={"ttl": "persistent"}, headers=quipu.auth())
    assert r.status_code == 200 and r.json()["expires_at"] is None
    await settle(quipu, A, 3)


async def test_notes_sources_filters_and_updates(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    source = await post(quipu, A, artifact())
    raw = await post(quipu, N, note(note_type="gotcha"))
    trajectory = str(uuid.uuid4())
    derived = await post(
        quipu,
        N,
        note(
            note_type="insight",
            abstraction_level="summary",
            source_artifact_ids=[source["artifact_id"]],
            source_note_ids=[raw["note_id"]],
            source_trajectory_ids=[trajectory],
            metadata={"k": "v"},
        ),
    )
    event = (await c.get(f"/api/v1/event-dag/{derived['last_event_id']}", headers=h)).json()
    assert {source["last_event_id"], raw["last_event_id"]} <= set(event["parent_ids"])
    await settle(quipu, N, 2)
    assert [n["note_id"] for n in (await listed(quipu, N, source_trajectory_id=trajectory))["items"]] == [
        derived["note_id"]
    ]
    assert (await listed(quipu, N, source_artifact_id=source["artifact_id"]))["total"] == 1
    assert (await listed(quipu, N, source_note_id=raw["note_id"]))["total"] == 1
    assert (await listed(quipu, N, note_type="gotcha"))["items"][0]["note_id"] == raw["note_id"]
    assert (await listed(quipu, N, abstraction_level="summary"))["total"] == 1
    r = await c.patch(f"{N}/{raw['note_id']}", json={"abstraction_level": "principle", "title": "T"}, headers=h)
    assert r.status_code == 200 and r.json()["version"] == 2
    await quipu.wait_for(lambda: _total(quipu, N, abstraction_level="principle"))
    # Sources must exist for the tenant and be live; every bad one is named.
    beta_artifact = await post(quipu, A, artifact(), tenant="beta")
    await c.delete(f"{A}/{source['artifact_id']}", headers=h)
    r = await c.post(
        N,
        json=note(
            source_artifact_ids=[beta_artifact["artifact_id"], source["artifact_id"]],
            source_note_ids=[str(uuid.uuid4())],
        ),
        headers=h,
    )
    assert r.status_code == 422
    fields = {e["field"]: e["code"] for e in r.json()["errors"]}
    assert fields == {
        "source_artifact_ids[0]": "unknown",
        "source_artifact_ids[1]": "deleted",
        "source_note_ids[0]": "unknown",
    }
    assert (await c.delete(f"{N}/{raw['note_id']}", headers=h)).status_code == 204
    assert (await c.get(f"{N}/{raw['note_id']}", headers=h)).status_code == 404


async def _total(q: Running, path: str, **params: Any) -> bool:
    return bool((await listed(q, path, **params))["total"] == 1)


async def test_idempotent_creates(quipu: Running) -> None:
    h = {**quipu.auth(), "Idempotency-Key": "k1"}
    first = await quipu.client.post(A, json=artifact(), headers=h)
    again = await quipu.client.post(A, json=artifact(), headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await quipu.client.post(A, json=artifact(content="else"), headers=h)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "idempotency_key_reused"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [edge(ids[0], ids[1]), edge(ids[1], ids[2])]
    one = await quipu.client.post(f"{E}/batch", json=batch, headers=h)
    two = await quipu.client.post(f"{E}/batch", json=batch, headers=h)
    assert one.status_code == two.status_code == 201 and one.json() == two.json()
    assert two.headers["idempotent-replayed"] == "true"
    events = (await quipu.client.get("/api/v1/event-dag/by-kind/edge.created", headers=quipu.auth())).json()
    assert events["total"] == 2


async def test_edges_crud_and_by_participant(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    x, y, z = (str(uuid.uuid4()) for _ in range(3))
    xy = await post(quipu, E, edge(x, y, edge_type="supports", weight=0.4, trajectory_id=x))
    yz = await post(quipu, E, edge(y, z, edge_type="contradicts"))
    assert [p["role"] for p in xy["participants"]] == ["source", "target"]
    await settle(quipu, E, 2)
    assert (await listed(quipu, E, participant=y))["total"] == 2
    assert [e["edge_id"] for e in (await listed(quipu, E, participant=x))["items"]] == [xy["edge_id"]]
    assert [e["edge_id"] for e in (await listed(quipu, E, participant=y, role="source"))["items"]] == [yz["edge_id"]]
    assert (await listed(quipu, E, edge_type="contradicts"))["items"][0]["participants"] == yz["participants"]
    assert (await listed(quipu, f"{E}/by-participant/{z}"))["items"][0]["edge_id"] == yz["edge_id"]
    r = await c.patch(f"{E}/{xy['edge_id']}", json={"weight": 0.9, "edge_type": "causal"}, headers=h)
    assert r.status_code == 200 and r.json()["weight"] == 0.9 and r.json()["version"] == 2
    await quipu.wait_for(lambda: _total(quipu, E, edge_type="causal"))
    assert (await c.delete(f"{E}/{yz['edge_id']}", headers=h)).status_code == 204
    assert (await c.get(f"{E}/{yz['edge_id']}", headers=h)).status_code == 404
    await settle(quipu, E, 0, participant=z)
    # A batch with one bad edge creates nothing.
    r = await c.post(f"{E}/batch", json=[edge(x, z), edge(x, x)], headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "[1].participants[1].entity_id"
    assert (await c.get("/api/v1/event-dag/by-kind/edge.created", headers=h)).json()["total"] == 2


async def traverse(q: Running, tenant: str = "acme", **params: Any) -> dict[str, Any]:
    r = await q.client.get(f"{E}/traverse", params=params, headers=q.auth(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_traverse_depth_relations_limit_and_cycles(quipu: Running) -> None:
    a, b, c, d, e = (str(uuid.uuid4()) for _ in range(5))
    # a - b - c - d with a cycle c - a, and e hanging off d by a causal edge.
    await post(quipu, f"{E}/batch", [edge(a, b), edge(b, c), edge(c, d), edge(c, a), edge(d, e, edge_type="causal")])
    await settle(quipu, E, 5)
    walk = await traverse(quipu, start=a, max_depth=10)
    assert {n["entity_id"]: n["depth"] for n in walk["nodes"]} == {a: 0, b: 1, c: 1, d: 2, e: 3}
    assert len(walk["edges"]) == 5 and not walk["truncated"]
    near = await traverse(quipu, start_id=a, max_depth=1)
    assert {n["entity_id"] for n in near["nodes"]} == {a, b, c}
    # a-b and c-a were crossed; b-c joins two entities at the last depth, so the walk never crossed it.
    assert sorted(sorted(p["entity_id"] for p in e["participants"]) for e in near["edges"]) == sorted(
        [sorted([a, b]), sorted([c, a])]
    )
    only = await traverse(quipu, start=a, max_depth=10, relation="relates_to")
    assert e not in {n["entity_id"] for n in only["nodes"]} and len(only["edges"]) == 4
    causal = await traverse(quipu, start=e, relation=["causal", "supports"])
    assert {n["entity_id"] for n in causal["nodes"]} == {e, d}
    first = await traverse(quipu, start=a, max_depth=10, limit=2)
    assert [n["depth"] for n in first["nodes"]] == [0, 1] and first["truncated"]
    assert (await traverse(quipu, "beta", start=a))["nodes"] == [{"entity_id": a, "entity_type": None, "depth": 0}]
    h = quipu.auth()
    bads: list[dict[str, Any]] = [{"start": a, "relation": "likes"}, {}, {"start": a, "max_depth": 0}, {"start": "x"}]
    for bad in bads:
        r = await quipu.client.get(f"{E}/traverse", params=bad, headers=h)
        assert r.status_code in (400, 422), bad
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_traverse_matches_networkx_bfs_on_random_graphs(quipu: Running) -> None:
    rng = random.Random(20250101)
    expected_edges = 0
    cases: list[tuple[nx.Graph, nx.Graph, list[str]]] = []
    for _ in range(6):
        nodes = [str(uuid.uuid4()) for _ in range(rng.randint(3, 12))]
        every, supports = nx.Graph(), nx.Graph()
        every.add_nodes_from(nodes)
        supports.add_nodes_from(nodes)
        batch = []
        for _ in range(rng.randint(1, 18)):
            members = rng.sample(nodes, rng.choice([2, 2, 2, 3]))
            kind = rng.choice(["supports", "relates_to"])
            batch.append(edge(*members, edge_type=kind))
            for i, u in enumerate(members):  # a hyperedge joins every pair of its participants
                for v in members[i + 1 :]:
                    every.add_edge(u, v)
                    if kind == "supports":
                        supports.add_edge(u, v)
        await post(quipu, f"{E}/batch", batch)
        expected_edges += len(batch)
        cases.append((every, supports, nodes))
    await settle(quipu, E, expected_edges)
    for every, supports, nodes in cases:
        for start in rng.sample(nodes, 3):
            depth = rng.randint(1, 4)
            walk = await traverse(quipu, start=start, max_depth=depth, limit=1000)
            got = {n["entity_id"]: n["depth"] for n in walk["nodes"]}
            assert got == nx.single_source_shortest_path_length(every, start, cutoff=depth)
            walk = await traverse(quipu, start=start, max_depth=depth, relation="supports", limit=1000)
            got = {n["entity_id"]: n["depth"] for n in walk["nodes"]}
            assert got == nx.single_source_shortest_path_length(supports, start, cutoff=depth)
            assert all(e["edge_type"] == "supports" for e in walk["edges"])


FLOW = {
    "nodes": [{"id": "start", "type": "start"}, {"id": "research", "agent_type": "llm"}, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "research"}, {"from": "research", "to": "end"}],
}


async def test_items_made_by_a_running_node_link_its_event(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    wf = await post(quipu, "/api/v1/workflows", {"name": "memory", "definition": FLOW})
    ex = await post(quipu, "/api/v1/executions", {"workflow_id": wf["id"]})
    assert ex["current_nodes"] == ["research"]
    dag = (await c.get(f"/api/v1/event-dag?correlation_id={ex['id']}", headers=h)).json()
    scheduled = next(
        n["event_id"]
        for n in dag["nodes"]
        if n["kind"] == "execution.node_scheduled" and n["payload"]["node_id"] == "research"
    )
    cause = (await post(quipu, A, artifact()))["last_event_id"]
    made = await post(quipu, N, note(execution_id=ex["id"], node_id="research", caused_by=[cause]))
    assert made["execution_id"] == ex["id"] and made["node_id"] == "research"
    event = (await c.get(f"/api/v1/event-dag/{made['last_event_id']}", headers=h)).json()
    assert scheduled in event["parent_ids"] and cause in event["parent_ids"]
    linked = await post(quipu, A, artifact(execution_id=ex["id"], node_id="research"))
    event = (await c.get(f"/api/v1/event-dag/{linked['last_event_id']}", headers=h)).json()
    assert event["parent_ids"] == [scheduled]
    await settle(quipu, N, 1, execution_id=ex["id"])
    # Only with both ids, only a running node, only the tenant's own execution.
    await post(quipu, N, note(execution_id=ex["id"]), status=422)
    await post(quipu, N, note(execution_id=ex["id"], node_id="research"), tenant="beta", status=404)
    await post(quipu, N, note(execution_id=ex["id"], node_id="nowhere"), status=404)
    done = await c.post(f"/api/v1/executions/{ex['id']}/nodes/research/complete", json={"output": {}}, headers=h)
    assert done.status_code == 200, done.text
    await post(quipu, N, note(execution_id=ex["id"], node_id="research"), status=409)
    await post(quipu, A, artifact(execution_id=ex["id"], node_id="research"), status=409)


async def test_tenancy_and_problems(quipu: Running) -> None:
    c = quipu.client
    a = await post(quipu, A, artifact())
    n = await post(quipu, N, note())
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    e = await post(quipu, E, edge(x, y))
    beta = quipu.auth("beta")
    for path in (f"{A}/{a['artifact_id']}", f"{N}/{n['note_id']}", f"{E}/{e['edge_id']}"):
        assert (await c.get(path, headers=beta)).status_code == 404
        assert (await c.patch(path, json={"metadata": {}}, headers=beta)).status_code == 404
        assert (await c.delete(path, headers=beta)).status_code == 404
    assert (await c.post(f"{A}/{a['artifact_id']}/supersede", json=artifact(), headers=beta)).status_code == 404
    await settle(quipu, E, 1, participant=x)
    assert (await listed(quipu, E, "beta", participant=x))["total"] == 0
    assert (await listed(quipu, N, "beta"))["total"] == 0
    # Bad input is a 4xx problem, never a 500.
    reader = quipu.auth("acme-reader")
    assert (await c.post(A, json=artifact(), headers=reader)).status_code == 403
    assert (await c.get(f"{A}/{a['artifact_id']}", headers=reader)).status_code == 200
    h = quipu.auth()
    for path, body in (
        (A, artifact(surprise=1)),
        (A, artifact(confidence=1.2)),
        (A, artifact(caused_by=[str(uuid.uuid4())])),
        (N, note(note_type="poem")),
        (N, note(ttl={"duration_ms": -5})),
        (E, edge(x)),
        (E, edge(x, y, weight=2)),
        (
            E,
            {
                **edge(x, y),
                "participants": [{"entity_type": "nothing", "entity_id": x}, {"entity_type": "note", "entity_id": y}],
            },
        ),
    ):
        r = await c.post(path, json=body, headers=h)
        assert r.status_code == 422, (path, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await c.get(f"{A}/{uuid.uuid4()}", headers=h)).status_code == 404


async def test_rebuild_from_the_log_equals_the_live_read_model(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()
    a1 = await post(quipu, A, artifact(ttl={"duration_ms": 5000}))
    await post(quipu, f"{A}/{a1['artifact_id']}/supersede", artifact(content="v2"))
    a3 = await post(quipu, A, artifact(artifact_type="plan"))
    await c.patch(f"{A}/{a3['artifact_id']}", json={"metadata": {"x": 1}, "ttl": "medium_term"}, headers=h)
    n1 = await post(quipu, N, note(source_artifact_ids=[a3["artifact_id"]]))
    await post(quipu, f"{N}/{n1['note_id']}/supersede", note(source_note_ids=[n1["note_id"]]))
    await c.delete(f"{A}/{a3['artifact_id']}", headers=h)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    edges = await post(quipu, f"{E}/batch", [edge(*ids[:3]), edge(ids[2], ids[3])])
    await c.patch(f"{E}/{edges['edges'][0]['edge_id']}", json={"edge_type": "grouped"}, headers=h)
    await c.delete(f"{E}/{edges['edges'][1]['edge_id']}", headers=h)
    await post(quipu, N, note(), tenant="beta")
    await quipu.wait_for(lambda: _caught_up(quipu))
    tables = {
        "artifacts": "artifact_id",
        "notes": "note_id",
        "edges": "edge_id",
        "edge_participants": "edge_id, position",
    }
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:

        async def dump() -> dict[str, list[dict[str, Any]]]:
            return {
                t: await (await conn.execute(f"SELECT * FROM rm_knowledge.{t} ORDER BY tenant_id, {key}")).fetchall()
                for t, key in tables.items()
            }

        live = await dump()
        assert [len(live[t]) for t in tables] == [3, 3, 2, 3]
        assert await rebuild_projection(database_url, "knowledge") > 0
        assert await dump() == live
