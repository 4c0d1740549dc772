"""The drawing walk (GET /event-dag/{id}/graph) against networkx and the envelope walks, on
random DAGs built through the API (the cases of test_forensics_property)."""

from __future__ import annotations

import asyncio
from typing import Any

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.subjects import Subjects
from tests.integration.conftest import Running, running_quipu
from tests.integration.test_forensics_property import Case, build, cases, mirror, on_loop

API = "/api/v1/event-dag"


async def _check(q: Running, case: Case, depth: int) -> None:
    ids = await build(q, case)
    index = {e: i for i, e in enumerate(ids)}
    g = mirror(case.parents)
    for i in case.probes:
        for direction, graph in [("ancestors", g.reverse(copy=False)), ("descendants", g)]:
            hops = nx.single_source_shortest_path_length(graph, i, cutoff=depth)
            expected = {n: d for n, d in hops.items() if n != i}
            r = await q.client.get(
                f"{API}/{ids[i]}/graph", params={"direction": direction, "max_depth": depth}, headers=q.auth()
            )
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            got = {index[e["event_id"]]: e["distance"] for e in body["items"]}
            assert got == expected and body["total"] == len(expected) and not body["truncated"]
            assert body["start"]["event_id"] == ids[i] and body["start"]["distance"] == 0
            for e in body["items"]:
                assert e["parent_ids"] == [ids[p] for p in case.parents[index[e["event_id"]]]]
            # The same events, distances and order as the envelope walk.
            walk = await q.client.get(
                f"{API}/{ids[i]}/{direction}", params={"max_depth": depth, "limit": 1000}, headers=q.auth()
            )
            assert [(e["event"]["event_id"], e["distance"]) for e in walk.json()["items"]] == [
                (e["event_id"], e["distance"]) for e in body["items"]
            ]
            # Pages of it, joined, are the whole.
            paged: list[dict[str, Any]] = []
            for offset in range(0, len(expected) + 2, 2):
                page = await q.client.get(
                    f"{API}/{ids[i]}/graph",
                    params={"direction": direction, "max_depth": depth, "limit": 2, "offset": offset},
                    headers=q.auth(),
                )
                paged.extend(page.json()["items"])
            assert paged == body["items"]


async def test_the_drawing_walk_matches_networkx_and_the_envelope_walks(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    loop = asyncio.get_running_loop()
    async with running_quipu(database_url, nats_url, subjects, background=False) as quipu:

        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=cases(), depth=st.integers(1, 30))
        def property_holds(case: Case, depth: int) -> None:
            on_loop(loop, _check(quipu, case, depth))

        await asyncio.to_thread(property_holds)


async def test_another_tenants_or_an_unknown_event_is_404_and_bad_parameters_422(quipu: Running) -> None:
    c = quipu.client
    r = await c.post(
        "/api/v1/workflows", json={"name": "g", "definition": {"nodes": [{"id": "a"}]}}, headers=quipu.auth()
    )
    event_id = r.json()["last_event_id"]
    assert (await c.get(f"{API}/{event_id}/graph", headers=quipu.auth("beta"))).status_code == 404
    unknown = "0190d4a8-0000-7000-8000-000000000000"
    assert (await c.get(f"{API}/{unknown}/graph", headers=quipu.auth())).status_code == 404
    for params in [{"direction": "sideways"}, {"max_depth": 0}, {"limit": 10_001}, {"offset": -1}]:
        r = await c.get(f"{API}/{event_id}/graph", params=params, headers=quipu.auth())
        assert r.status_code == 422, (params, r.text)
    ok = (await c.get(f"{API}/{event_id}/graph", headers=quipu.auth())).json()
    assert (ok["total"], ok["items"], ok["direction"]) == (0, [], "ancestors")  # a root
