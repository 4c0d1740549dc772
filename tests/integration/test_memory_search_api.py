"""Memory search through the HTTP API: the memory_search projection fed by notes, artifacts and
turns, searched by keyword, vector and hybrid ranking, with filters, lifecycle and as-of points."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import psycopg
import pytest
from psycopg.rows import dict_row

from bus.subjects import Subjects
from commands.log import read_after
from projections.memory_search import SCHEMA, MemorySearchProjection
from quipu.rebuild import rebuild_projection
from tests.integration.conftest import Running, running_quipu

S, NS, AS = "/api/v1/search", "/api/v1/notes/search", "/api/v1/artifacts/search"
MODES = ("keyword", "vector", "hybrid")
SYSTEM_URL = os.environ.get("QUIPU_TEST_SYSTEM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def post(q: Running, path: str, body: Any, tenant: str = "acme", status: int = 201) -> dict[str, Any]:
    r = await q.client.post(path, json=body, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def search(
    q: Running, body: dict[str, Any], path: str = S, tenant: str = "acme", status: int = 200, **params: Any
) -> dict[str, Any]:
    r = await q.client.post(path, json=body, params=params, headers=q.auth(tenant))
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()  # type: ignore[no-any-return]


async def found(q: Running, query: str, path: str = S, tenant: str = "acme", **body: Any) -> list[str]:
    """The ids a search returns, best first."""
    return [h["entity_id"] for h in (await search(q, {"query": query, "limit": 50, **body}, path, tenant))["results"]]


def note(title: str, content: str, **more: Any) -> dict[str, Any]:
    return {"title": title, "content": content, "note_type": "fact", **more}


def artifact(name: str, content: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "artifact_type": "fact", "content": content, "extraction_method": "explicit", **more}


async def caught_up(q: Running) -> None:
    """Wait until the memory_search projection has applied the whole log, with nothing parked."""

    async def check() -> bool:
        r = await q.client.get("/api/v1/admin/projections", headers=q.auth())
        status = next(p for p in r.json() if p["name"] == "memory_search")
        assert status["errors"] == [], status["errors"]
        return bool(status["position"] == status["head"])

    await q.wait_for(check)


async def memory(q: Running) -> dict[str, str]:
    """A trajectory, a scope with two turns, two artifacts and three notes of tenant acme."""
    traj = (await post(q, "/api/v1/trajectories", {"name": "research"}))["trajectory_id"]
    scope = (await post(q, "/api/v1/scopes", {"trajectory_id": traj, "name": "s", "token_budget": 10_000}))["scope_id"]
    user = await post(q, "/api/v1/turns", {"scope_id": scope, "role": "user", "content": "How do turbines fail?"})
    reply = await post(
        q, "/api/v1/turns", {"scope_id": scope, "role": "assistant", "content": "Blade fatigue cracks near the root."}
    )
    crack = await post(
        q, "/api/v1/artifacts", artifact("Inspection", "Crack found near a turbine root.", trajectory_id=traj)
    )
    pasta = await post(q, "/api/v1/artifacts", artifact("Recipe", "Boil the pasta in salted water, add garlic."))
    cat = await post(q, "/api/v1/notes", note("Cats", "The cat sat on the mat and purred.", metadata={"pet": "yes"}))
    shock = await post(
        q,
        "/api/v1/notes",
        note(
            "Shock waves",
            "Supersonic flow over a wedge produces an oblique shock wave.",
            source_trajectory_ids=[traj],
            metadata={"topic": "aero", "tags": ["flow", "gas"]},
        ),
    )
    money = await post(q, "/api/v1/notes", note("Quarterly report", "Revenue grew twelve percent this quarter."))
    await caught_up(q)
    return {
        "trajectory": traj,
        "scope": scope,
        "user": user["turn_id"],
        "reply": reply["turn_id"],
        "crack": crack["artifact_id"],
        "pasta": pasta["artifact_id"],
        "cat": cat["note_id"],
        "shock": shock["note_id"],
        "money": money["note_id"],
    }


async def test_search_in_every_mode(quipu: Running) -> None:
    m = await memory(quipu)
    page = await search(quipu, {"query": "oblique shock", "limit": 3})
    assert page["mode"] == "hybrid" and page["limit"] == 3 and page["offset"] == 0  # the default with pgvector
    top = page["results"][0]
    assert (top["entity_type"], top["entity_id"], top["title"]) == ("note", m["shock"], "Shock waves")
    assert (
        top["keyword_rank"] == 1 and top["vector_rank"] == 1 and top["_links"]["self"] == f"/api/v1/notes/{m['shock']}"
    )
    assert "oblique shock" in top["snippet"] and top["metadata"] == {"topic": "aero", "tags": ["flow", "gas"]}
    assert top["trajectory_id"] == m["trajectory"] and top["scope_id"] is None and not top["superseded"]
    assert len(page["results"]) == 3 and page["total"] >= 3  # every vector is a candidate

    keyword = await search(quipu, {"query": "oblique shock", "mode": "keyword"})
    assert [h["entity_id"] for h in keyword["results"]] == [m["shock"]] and keyword["total"] == 1
    assert keyword["results"][0]["vector_rank"] is None and keyword["results"][0]["score"] > 0
    # Vector search finds meaning without shared words; keyword search finds nothing.
    assert await found(quipu, "a kitten resting on a rug", mode="keyword") == []
    vector = await search(quipu, {"query": "a kitten resting on a rug", "mode": "vector"})
    assert vector["results"][0]["entity_id"] == m["cat"] and vector["results"][0]["keyword_rank"] is None
    assert vector["total"] == 7 and len(vector["results"]) == 7  # 2 turns, 2 artifacts, 3 notes
    scores = [h["score"] for h in vector["results"]]
    assert scores == sorted(scores, reverse=True)
    # The CELLSTATE reference's switch: true ranks by embeddings, false by keywords.
    assert (await search(quipu, {"query": "kitten on a rug", "use_vector_search": True}))["mode"] == "vector"
    assert (await search(quipu, {"query": "kitten on a rug", "use_vector_search": False}))["results"] == []
    hybrid = await found(quipu, "turbine blade root crack")
    assert set(hybrid[:3]) == {m["crack"], m["reply"], m["user"]}

    # Per-resource endpoints and entity types narrow what is searched.
    assert await found(quipu, "turbine root", NS, mode="keyword") == []
    assert await found(quipu, "turbine root", AS, mode="keyword") == [m["crack"]]
    assert set(await found(quipu, "turbine", mode="keyword", entity_types=["turn"])) == {m["user"]}
    for mode in MODES:
        assert set(await found(quipu, "food and cooking", AS, mode=mode)) <= {m["crack"], m["pasta"]}
        notes = await search(quipu, {"query": "revenue and money earned", "mode": mode, "entity_types": ["note"]}, NS)
        assert notes["results"][0]["entity_id"] == m["money"], mode
        assert {h["entity_type"] for h in notes["results"]} == {"note"}
    # Paging: a page is a slice of the whole ranking.
    for mode in MODES:
        whole = await found(quipu, "the turbine cat flow", mode=mode)
        part = await search(quipu, {"query": "the turbine cat flow", "mode": mode, "limit": 2, "offset": 1})
        assert [h["entity_id"] for h in part["results"]] == whole[1:3], mode


async def test_filters_in_every_mode(quipu: Running) -> None:
    m = await memory(quipu)
    t, s = m["trajectory"], m["scope"]
    cases: list[tuple[list[dict[str, Any]], set[str]]] = [
        ([{"field": "trajectory_id", "op": "eq", "value": t}], {m["user"], m["reply"], m["crack"], m["shock"]}),
        ([{"field": "scope_id", "op": "in", "value": [s, str(uuid.uuid4())]}], {m["user"], m["reply"]}),
        (
            [
                {"field": "entity_type", "op": "in", "value": ["artifact", "note"]},
                {"field": "trajectory_id", "value": t},
            ],
            {m["crack"], m["shock"]},
        ),
        ([{"field": "metadata", "op": "contains", "value": {"topic": "aero"}}], {m["shock"]}),
        ([{"field": "metadata.tags", "op": "eq", "value": ["gas"]}], {m["shock"]}),
        ([{"field": "metadata.pet", "value": "yes"}], {m["cat"]}),
        ([{"field": "metadata.pet", "value": "yes"}, {"field": "metadata.pet", "value": "no"}], set()),
        ([{"field": "scope_id", "value": s}, {"field": "scope_id", "value": str(uuid.uuid4())}], set()),
        ([{"field": "trajectory_id", "value": str(uuid.uuid4())}], set()),
    ]
    assert len(await found(quipu, "turbine cat shock revenue pasta", mode="vector")) == 7
    for mode in MODES:
        for filters, expected in cases:
            ids = await found(quipu, "turbine cat shock revenue pasta flow root", mode=mode, filters=filters)
            assert set(ids) == expected, (mode, filters)
            one = await search(
                quipu, {"query": "turbine cat shock pasta", "mode": mode, "filters": filters, "limit": 1}
            )
            assert (
                len(one["results"]) == min(1, len(expected)) and set(h["entity_id"] for h in one["results"]) <= expected
            )
    # Time ranges: created_at gte (inclusive) and lt (exclusive).
    money = await search(quipu, {"query": "revenue", "mode": "keyword"})
    at = money["results"][0]["created_at"]
    since = [{"field": "created_at", "op": "gte", "value": at}]
    assert await found(quipu, "revenue quarter cat", mode="keyword", filters=since) == [m["money"]]
    until = [{"field": "created_at", "op": "lt", "value": at}]
    assert await found(quipu, "revenue quarter cat", mode="keyword", filters=until) == [m["cat"]]


async def test_updates_supersede_expiry_and_delete(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    a = await post(quipu, "/api/v1/notes", note("Glacier", "Glacier melt measurements from the north face."))
    b = await post(quipu, "/api/v1/notes", note("Glacier retreat", "Photographs of the glacier retreat."))
    gone = await post(quipu, "/api/v1/notes", note("Glacier cores", "Ice cores drilled from the glacier."))
    brief = await post(
        quipu, "/api/v1/notes", note("Glacier TTL", "Glacier surface melt today.", ttl={"duration_ms": 1})
    )
    art = await post(quipu, "/api/v1/artifacts", artifact("Glacier map", "Map of the glacier tongue."))
    await caught_up(quipu)
    before = (await search(quipu, {"query": "glacier", "mode": "vector", "limit": 10}))["results"]
    score = {x["entity_id"]: x["score"] for x in before}
    assert brief["note_id"] not in score  # expired already

    # Metadata only: the same vector (not re-embedded). New content: a new vector.
    assert (await c.patch(f"/api/v1/notes/{a['note_id']}", json={"metadata": {"v": 2}}, headers=h)).status_code == 200
    r = await c.patch(f"/api/v1/notes/{b['note_id']}", json={"content": "Sea ice thickness readings."}, headers=h)
    assert r.status_code == 200
    await post(quipu, f"/api/v1/artifacts/{art['artifact_id']}/supersede", artifact("Glacier map", "A newer map."))
    assert (await c.delete(f"/api/v1/notes/{gone['note_id']}", headers=h)).status_code == 204
    await caught_up(quipu)
    after = {
        x["entity_id"]: x for x in (await search(quipu, {"query": "glacier", "mode": "vector", "limit": 10}))["results"]
    }
    assert after[a["note_id"]]["metadata"] == {"v": 2}
    assert after[a["note_id"]]["score"] == pytest.approx(score[a["note_id"]], abs=1e-6)
    assert after[b["note_id"]]["content"] == "Sea ice thickness readings."
    assert after[b["note_id"]]["score"] < score[b["note_id"]] - 0.05
    async with quipu.ctx.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT entity_id, count(DISTINCT embedding::text) AS vectors FROM {SCHEMA}.documents"
            " WHERE entity_id = ANY(%s) GROUP BY entity_id",
            ([uuid.UUID(a["note_id"]), uuid.UUID(b["note_id"])],),
        )
        assert {str(r["entity_id"]): r["vectors"] for r in await cur.fetchall()} == {a["note_id"]: 1, b["note_id"]: 2}
    for mode in MODES:
        visible = set(await found(quipu, "glacier map melt cores", mode=mode))
        assert visible.isdisjoint({art["artifact_id"], gone["note_id"], brief["note_id"]}), mode
        assert a["note_id"] in visible, mode
        superseded = set(await found(quipu, "glacier map melt cores", mode=mode, include_superseded=True))
        assert art["artifact_id"] in superseded and gone["note_id"] not in superseded, mode
        expired = set(await found(quipu, "glacier map melt cores", mode=mode, include_expired=True))
        assert brief["note_id"] in expired and art["artifact_id"] not in expired, mode
        everything = await found(quipu, "glacier cores", mode=mode, include_expired=True, include_superseded=True)
        assert gone["note_id"] not in everything, mode  # deleted: gone whatever is asked
    flagged = await search(quipu, {"query": "glacier map", "mode": "keyword", "include_superseded": True}, AS)
    assert [x["superseded"] for x in flagged["results"] if x["entity_id"] == art["artifact_id"]] == [True]

    # Turns: an edit is searched by its new text, a deleted turn is gone.
    traj = (await post(quipu, "/api/v1/trajectories", {"name": "t"}))["trajectory_id"]
    scope = (await post(quipu, "/api/v1/scopes", {"trajectory_id": traj, "name": "s", "token_budget": 100}))["scope_id"]
    turn = await post(quipu, "/api/v1/turns", {"scope_id": scope, "role": "user", "content": "volcano ash cloud"})
    await caught_up(quipu)
    assert await found(quipu, "volcano", mode="keyword") == [turn["turn_id"]]
    r = await c.patch(f"/api/v1/turns/{turn['turn_id']}", json={"content": "tsunami warning"}, headers=h)
    assert r.status_code == 200
    await caught_up(quipu)
    assert await found(quipu, "volcano", mode="keyword") == []
    assert await found(quipu, "tsunami", mode="keyword") == [turn["turn_id"]]
    assert (await c.delete(f"/api/v1/turns/{turn['turn_id']}", headers=h)).status_code == 204
    await caught_up(quipu)
    for mode in MODES:
        assert turn["turn_id"] not in await found(quipu, "tsunami warning", mode=mode), mode


async def test_as_of_returns_what_memory_held_then(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    old = await post(quipu, "/api/v1/notes", note("Comet", "A comet tail points away from the sun."))
    doomed = await post(quipu, "/api/v1/notes", note("Comet dust", "Comet dust samples returned to Earth."))
    short = await post(quipu, "/api/v1/notes", note("Comet sighting", "Comet seen at dawn.", ttl={"duration_ms": 1500}))
    then = short["last_event_id"]
    new = await post(quipu, f"/api/v1/notes/{old['note_id']}/supersede", note("Comet", "Comet tails: dust and ion."))
    assert (await c.delete(f"/api/v1/notes/{doomed['note_id']}", headers=h)).status_code == 204
    r = await c.patch(f"/api/v1/notes/{new['note_id']}", json={"content": "Comet tails, revised."}, headers=h)
    assert r.status_code == 200
    now = r.json()["last_event_id"]
    await caught_up(quipu)

    async def current_drops_expired() -> bool:
        return short["note_id"] not in await found(quipu, "comet", mode="keyword")

    await quipu.wait_for(current_drops_expired)
    for mode in MODES:
        assert await found(quipu, "comet", mode=mode) == [new["note_id"]], mode
        past = await search(quipu, {"query": "comet", "mode": mode, "limit": 10}, as_of=then)
        assert past["as_of"] == then
        held = {x["entity_id"]: x for x in past["results"]}
        assert set(held) == {old["note_id"], doomed["note_id"], short["note_id"]}, mode  # before supersede/delete
        assert held[old["note_id"]]["content"] == "A comet tail points away from the sun."
        later = await found(quipu, "comet", mode=mode, include_superseded=True)
        assert set(later) == {old["note_id"], new["note_id"]}, mode
        # At the patch the short-lived note had not expired yet: TTLs are judged at that point.
        at_patch = await search(quipu, {"query": "comet", "mode": mode, "limit": 10}, as_of=now)
        assert {(x["entity_id"], x["content"]) for x in at_patch["results"]} == {
            (new["note_id"], "Comet tails, revised."),
            (short["note_id"], "Comet seen at dawn."),
        }, mode
    first = await search(quipu, {"query": "comet", "mode": "keyword"}, NS, as_of=old["last_event_id"])
    assert [x["entity_id"] for x in first["results"]] == [old["note_id"]]
    # Unknown events, another tenant's events and non-ids are refused, not searched.
    beta_note = await post(quipu, "/api/v1/notes", note("Comet", "beta's comet"), tenant="beta")
    for point in (str(uuid.uuid4()), beta_note["last_event_id"]):
        body = await search(quipu, {"query": "comet"}, status=422, as_of=point)
        assert body["errors"][0]["field"] == "as_of"
    await search(quipu, {"query": "comet"}, status=422, as_of="yesterday")


async def test_tenants_and_read_only_keys(quipu: Running) -> None:
    ours = await post(quipu, "/api/v1/notes", note("Launch", "shared secret launch plan"))
    theirs = await post(quipu, "/api/v1/notes", note("Launch", "shared secret launch plan"), tenant="beta")
    await caught_up(quipu)
    for mode in MODES:
        assert await found(quipu, "secret launch plan", mode=mode) == [ours["note_id"]], mode
        assert await found(quipu, "secret launch plan", mode=mode, tenant="beta") == [theirs["note_id"]], mode
        assert await found(quipu, "secret launch plan", NS, mode=mode, tenant="acme-reader") == [ours["note_id"]]
    r = await quipu.client.post(S, json={"query": "launch"})
    assert r.status_code == 401


async def test_bad_bodies_are_422(quipu: Running) -> None:
    u = str(uuid.uuid4())
    bad: list[tuple[str, dict[str, Any]]] = [
        (S, {}),
        (S, {"query": ""}),
        (S, {"query": "   "}),
        (S, {"query": 5}),
        (S, {"query": "x", "colour": "red"}),
        (S, {"query": "x", "limit": 0}),
        (S, {"query": "x", "limit": 101}),
        (S, {"query": "x", "offset": -1}),
        (S, {"query": "x", "offset": 950, "limit": 100}),
        (S, {"query": "x", "mode": "fuzzy"}),
        (S, {"query": "x", "mode": "keyword", "use_vector_search": True}),
        (S, {"query": "x", "mode": "hybrid", "use_vector_search": False}),
        (S, {"query": "x", "entity_types": ["planet"]}),
        (S, {"query": "x", "entity_types": ["trajectory"]}),
        (NS, {"query": "x", "entity_types": ["artifact"]}),
        (AS, {"query": "x", "entity_types": ["note", "artifact"]}),
        (S, {"query": "x", "filters": {"trajectory_id": u}}),
        (S, {"query": "x", "filters": [{"field": "colour", "op": "eq", "value": 1}]}),
        (S, {"query": "x", "filters": [{"field": "trajectory_id", "op": "gte", "value": u}]}),
        (S, {"query": "x", "filters": [{"field": "trajectory_id", "op": "eq", "value": "nope"}]}),
        (S, {"query": "x", "filters": [{"field": "scope_id", "op": "in", "value": u}]}),
        (S, {"query": "x", "filters": [{"field": "created_at", "op": "gte", "value": "last week"}]}),
        (S, {"query": "x", "filters": [{"field": "metadata", "op": "contains", "value": [1]}]}),
        (S, {"query": "x", "filters": [{"field": "metadata..a", "op": "eq", "value": 1}]}),
        (S, {"query": "x", "filters": [{"field": "metadata", "op": "like", "value": {}}]}),
    ]
    for path, body in bad:
        problem = await search(quipu, body, path, status=422)
        assert problem["status"] == 422 and problem["detail"], body
    body = await search(quipu, {"query": "x", "filters": [{"field": "scope_id", "value": "nope"}]}, status=422)
    assert body["errors"][0]["field"] == "filters[0].value"
    # Bodies in the CELLSTATE reference's shape work: null limit and use_vector_search, empty lists.
    ok = await search(
        quipu, {"query": "x", "entity_types": [], "filters": [], "limit": None, "use_vector_search": None}
    )
    assert ok == {"results": [], "total": 0, "limit": 10, "offset": 0, "mode": "hybrid", "as_of": None}


async def test_redelivery_and_rebuild_change_nothing(quipu: Running, database_url: str) -> None:
    m = await memory(quipu)
    c, h = quipu.client, quipu.auth()
    assert (
        await c.patch(f"/api/v1/notes/{m['cat']}", json={"content": "The cat slept."}, headers=h)
    ).status_code == 200
    assert (await c.patch(f"/api/v1/notes/{m['money']}", json={"metadata": {"q": 3}}, headers=h)).status_code == 200
    await post(quipu, f"/api/v1/notes/{m['shock']}/supersede", note("Shock waves", "Normal and oblique shocks."))
    assert (await c.delete(f"/api/v1/artifacts/{m['pasta']}", headers=h)).status_code == 204
    assert (await c.delete(f"/api/v1/turns/{m['user']}", headers=h)).status_code == 204
    await caught_up(quipu)

    async def dump() -> list[dict[str, Any]]:
        async with quipu.ctx.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT tenant_id, entity_type, entity_id, valid_from, valid_to, title, text, metadata, trajectory_id,"
                f" scope_id, created_at, expires_at, superseded, deleted, embedding_model, embedding::text AS vector"
                f" FROM {SCHEMA}.documents ORDER BY entity_id, valid_from"
            )
            return await cur.fetchall()

    live = await dump()
    assert len(live) == 7 + 1 + 2 + 1 + 2  # 7 created and 1 superseding note, 2 updates, 1 supersede, 2 tombstones
    assert all(r["vector"] is not None for r in live if not r["deleted"])
    # Every event applied again, as a redelivery past the tracking position would: nothing changes.
    projection = MemorySearchProjection()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        events = await read_after(conn, 0, 10_000)
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            for envelope in events:
                await projection.apply(cur, envelope)
    assert await dump() == live
    assert await rebuild_projection(database_url, "memory_search") == events[-1].notification_id
    assert await dump() == live
    assert (await search(quipu, {"query": "oblique shocks"}))["results"][0]["content"] == "Normal and oblique shocks."


@contextlib.contextmanager
def _database_without_pgvector(admin_url: str) -> Iterator[tuple[str, str]]:
    """A database where pgvector cannot be had: on the system Postgres when it lacks the
    extension, else one owned by a role without the right to create it (it is not trusted)."""
    name = "quipu_nv_" + uuid.uuid4().hex[:10]
    try:
        with psycopg.connect(SYSTEM_URL, connect_timeout=2, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
                conn.execute(f"CREATE DATABASE {name}")
                url = urlunparse(urlparse(SYSTEM_URL)._replace(path="/" + name))
                try:
                    yield url, "system Postgres without pgvector"
                finally:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
    except psycopg.OperationalError:
        pass
    secret = uuid.uuid4().hex
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{secret}'")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
        parts = urlparse(admin_url)
        netloc = f"{name}:{quote(secret)}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        try:
            yield urlunparse(parts._replace(netloc=netloc, path="/" + name)), "role that may not create pgvector"
        finally:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
async def keyword_only(postgres_admin_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    with _database_without_pgvector(postgres_admin_url) as (url, how):
        async with running_quipu(url, nats_url, subjects) as running:
            async with running.ctx.pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) AS n FROM pg_extension WHERE extname = 'vector'")
                assert (await cur.fetchone()) == {"n": 0}, how
            yield running


async def test_without_pgvector_keyword_search_works_and_vector_search_is_501(keyword_only: Running) -> None:
    q = keyword_only
    shock = await post(q, "/api/v1/notes", note("Shock waves", "Supersonic flow makes an oblique shock wave."))
    await post(q, "/api/v1/notes", note("Cats", "The cat sat on the mat."))
    await post(q, "/api/v1/artifacts", artifact("Recipe", "Boil the pasta."))
    await caught_up(q)
    async with q.ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'documents'",
            (SCHEMA,),
        )
        columns = {r["column_name"] for r in await cur.fetchall()}
    assert "embedding" not in columns and "tsv" in columns
    page = await search(q, {"query": "oblique shock"})  # the default falls back to keyword search
    assert page["mode"] == "keyword" and [x["entity_id"] for x in page["results"]] == [shock["note_id"]]
    assert (await search(q, {"query": "shock", "use_vector_search": False}))["total"] == 1
    for body in (
        {"query": "shock", "use_vector_search": True},
        {"query": "shock", "mode": "hybrid"},
        {"query": "shock", "mode": "vector"},
    ):
        for path in (S, NS):
            problem = await search(q, body, path, status=501)
            assert "pgvector" in problem["detail"] and problem["type"].endswith("vector-search-unavailable")
