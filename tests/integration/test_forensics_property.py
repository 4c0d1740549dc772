"""Forensic queries over the event DAG checked against networkx, on random DAGs.

Each hypothesis example builds a brand-new DAG through the HTTP API and mirrors it in a
``networkx.DiGraph`` (edge parent -> child). A node is either a ``workflow.created``
event whose parents are exactly its ``caused_by``, or a ``workflow.updated`` event of an
earlier node's workflow, whose parents are that workflow's previous event followed by its
``caused_by``. Every example creates new events and
walks can only reach events of that example, so one running Quipu serves all examples.

Hypothesis drives a sync function; it runs in a worker thread and hands the async work
to the session loop that also serves the API.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import networkx as nx
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.subjects import Subjects
from tests.integration.conftest import Running, running_quipu

T = TypeVar("T")
API = "/api/v1/event-dag"
DEFINITION = {"nodes": [{"id": "a"}]}
MAX_NODES = 25
MAX_PARENTS = 4


CREATED, UPDATED = "workflow.created", "workflow.updated"


@dataclass(frozen=True)
class Case:
    causes: list[list[int]]  # causes[i]: earlier nodes that node i names in caused_by
    update_of: list[int | None]  # None: node i creates a workflow; j: it updates j's workflow
    parents: list[list[int]]  # parents[i]: the parent links the event must end up with
    probes: list[int]  # nodes whose ancestry/descent/siblings are compared
    pairs: list[tuple[int, int]]  # (from, to) for paths and common ancestors
    cut: int  # a max_depth cut-off
    limit: int  # a walk limit


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, MAX_NODES))
    causes: list[list[int]] = []
    update_of: list[int | None] = []
    parents: list[list[int]] = []
    workflow: list[int] = []  # node -> the node that created its workflow
    latest: dict[int, int] = {}  # workflow -> its newest node
    for i in range(n):
        causes.append(draw(st.lists(st.integers(0, i - 1), unique=True, max_size=min(MAX_PARENTS, i))) if i else [])
        target = draw(st.none() | st.integers(0, i - 1)) if i else None
        update_of.append(target)
        if target is None:
            workflow.append(i)
            parents.append(causes[i])
        else:
            workflow.append(workflow[target])
            parents.append(list(dict.fromkeys([latest[workflow[target]], *causes[i]])))
        latest[workflow[i]] = i
    node = st.integers(0, n - 1)
    probes = draw(st.lists(node, min_size=1, max_size=4, unique=True))
    pairs = draw(st.lists(st.tuples(node, node), min_size=1, max_size=4))
    return Case(causes, update_of, parents, probes, pairs, draw(st.integers(1, 4)), draw(st.integers(1, 6)))


def mirror(parents: list[list[int]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(len(parents)))
    g.add_edges_from((p, child) for child, ps in enumerate(parents) for p in ps)
    return g


def longest_depths(parents: list[list[int]]) -> list[int]:
    depths: list[int] = []
    for ps in parents:
        depths.append(1 + max(depths[p] for p in ps) if ps else 0)
    return depths


def lowest_common_ancestors(g: nx.DiGraph, a: int, b: int) -> set[int]:
    common = (nx.ancestors(g, a) | {a}) & (nx.ancestors(g, b) | {b})
    return {c for c in common if not any(child in common for child in g.successors(c))}


async def build(quipu: Running, case: Case) -> list[str]:
    """Append the DAG through the API, in order; return the event id of each node."""
    ids: list[str] = []
    workflow_of: list[str] = []
    for i, (causes, target) in enumerate(zip(case.causes, case.update_of, strict=True)):
        body = {"name": f"n{i}", "definition": DEFINITION, "caused_by": [ids[p] for p in causes]}
        if target is None:
            r = await quipu.client.post("/api/v1/workflows", json=body, headers=quipu.auth())
            assert r.status_code == 201, r.text
        else:
            r = await quipu.client.put(f"/api/v1/workflows/{workflow_of[target]}", json=body, headers=quipu.auth())
            assert r.status_code == 200, r.text
        ids.append(r.json()["last_event_id"])
        workflow_of.append(r.json()["id"])
    return ids


class Checker:
    """Compares one example's API answers with its networkx mirror."""

    def __init__(self, quipu: Running, case: Case, ids: list[str]) -> None:
        self.q, self.case, self.ids = quipu, case, ids
        self.index = {e: i for i, e in enumerate(ids)}
        self.g = mirror(case.parents)
        self.depths = longest_depths(case.parents)
        self.kinds = [CREATED if t is None else UPDATED for t in case.update_of]
        self.seen_envelopes: list[dict[str, Any]] = []

    async def get(self, url: str, status: int = 200) -> Any:
        r = await self.q.client.get(url, headers=self.q.auth())
        assert r.status_code == status, (url, r.status_code, r.text)
        return r.json()

    def node(self, envelope: dict[str, Any]) -> int:
        self.seen_envelopes.append(envelope)
        assert envelope["event_id"] in self.index, "walk escaped the example's own events"
        return self.index[envelope["event_id"]]

    async def walked(self, i: int, direction: str, **params: int | str) -> list[tuple[int, int]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        body = await self.get(f"{API}/{self.ids[i]}/{direction}?{query}")
        assert body["event_id"] == self.ids[i] and body["total"] == len(body["items"])
        found = [(self.node(item["event"]), item["distance"]) for item in body["items"]]
        distances = [d for _, d in found]
        assert distances == sorted(distances), "walk is not nearest first"
        assert len({n for n, _ in found}) == len(found), "walk returned an event twice"
        return found

    def expected(self, i: int, direction: str) -> dict[int, int]:
        """Reachable nodes with their shortest hop distance (BFS, parent -> child edges)."""
        graph = self.g.reverse(copy=False) if direction == "ancestors" else self.g
        reach: dict[int, int] = dict(nx.single_source_shortest_path_length(graph, i))
        reach.pop(i)
        return reach

    async def check_walks(self, i: int) -> None:
        for direction in ("ancestors", "descendants"):
            expected = self.expected(i, direction)
            reach = nx.ancestors(self.g, i) if direction == "ancestors" else nx.descendants(self.g, i)
            assert set(expected) == reach
            for n, d in expected.items():  # distance as the brief defines it, from the graph
                src, dst = (n, i) if direction == "ancestors" else (i, n)
                assert d == nx.shortest_path_length(self.g, src, dst)

            everything = await self.walked(i, direction, max_depth=1000, limit=1000)
            assert dict(everything) == expected, direction

            cut = self.case.cut
            within = await self.walked(i, direction, max_depth=cut, limit=1000)
            assert dict(within) == {n: d for n, d in expected.items() if d <= cut}, (direction, cut)

            limit = self.case.limit
            nearest = await self.walked(i, direction, max_depth=1000, limit=limit)
            self.check_nearest(nearest, expected, limit)

            # A kind filter drops other kinds from the answer but still walks through them.
            for kind, spelled in ((UPDATED, "0xa002"), (CREATED, CREATED)):
                of_kind = {n: d for n, d in expected.items() if self.kinds[n] == kind}
                filtered = await self.walked(i, direction, max_depth=1000, limit=1000, kinds=spelled)
                assert dict(filtered) == of_kind, (direction, kind)
                filtered = await self.walked(i, direction, max_depth=1000, limit=limit, kinds=spelled)
                self.check_nearest(filtered, of_kind, limit)

    @staticmethod
    def check_nearest(nearest: list[tuple[int, int]], expected: dict[int, int], limit: int) -> None:
        """``limit`` caps the answer at the nearest events: no left-out one is nearer."""
        assert len(nearest) == min(limit, len(expected)), limit
        for n, d in nearest:
            assert expected[n] == d
        returned = {n for n, _ in nearest}
        left_out = [d for n, d in expected.items() if n not in returned]
        if nearest and left_out:
            assert max(d for _, d in nearest) <= min(left_out), "limit did not keep the nearest"

    async def check_siblings(self, i: int) -> None:
        expected = {c for p in self.g.predecessors(i) for c in self.g.successors(p)} - {i}
        body = await self.get(f"{API}/{self.ids[i]}/siblings?limit=1000")
        got = [self.node(e) for e in body["items"]]
        assert len(got) == len(set(got))
        assert set(got) == expected and body["total"] == len(expected)

    async def check_path(self, a: int, b: int) -> None:
        url = f"{API}/path?from={self.ids[a]}&to={self.ids[b]}"
        if not nx.has_path(self.g, a, b):
            await self.get(url, status=404)
            return
        body = await self.get(url)
        path = [self.node(e) for e in body["events"]]
        assert body["source"] == self.ids[a] and body["target"] == self.ids[b]
        assert path[0] == a and path[-1] == b
        assert body["length"] == len(path) - 1 == nx.shortest_path_length(self.g, a, b)
        for parent, child in itertools.pairwise(path):
            assert self.g.has_edge(parent, child), (parent, child)

    async def check_common_ancestors(self, a: int, b: int) -> None:
        body = await self.get(f"{API}/common-ancestors?a={self.ids[a]}&b={self.ids[b]}")
        got = [self.node(e) for e in body["items"]]
        assert len(got) == len(set(got)) == body["total"]
        assert set(got) == lowest_common_ancestors(self.g, a, b), (a, b)
        assert set(got) == lowest_common_ancestors(self.g, b, a)

    def check_envelopes(self) -> None:
        """Depth (longest path from a root) and parent links of everything returned."""
        for env in self.seen_envelopes:
            i = self.index[env["event_id"]]
            assert env["depth"] == self.depths[i], (i, env["depth"], self.depths[i])
            assert env["parent_ids"] == [self.ids[p] for p in self.case.parents[i]]
            assert env["kind"] == self.kinds[i]

    async def run(self) -> None:
        for i in self.case.probes:
            await self.check_walks(i)
            await self.check_siblings(i)
        for a, b in self.case.pairs:
            await self.check_path(a, b)
            await self.check_path(b, a)
            await self.check_common_ancestors(a, b)
        # Every node's own envelope, so depth is checked for all of them.
        for event_id in self.ids:
            self.node(await self.get(f"{API}/{event_id}"))
        self.check_envelopes()


def on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)


async def test_forensic_queries_match_networkx_on_random_dags(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    loop = asyncio.get_running_loop()
    async with running_quipu(database_url, nats_url, subjects, background=False) as quipu:

        async def example(case: Case) -> None:
            ids = await build(quipu, case)
            await Checker(quipu, case, ids).run()

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=cases())
        def property_holds(case: Case) -> None:
            on_loop(loop, example(case))

        await asyncio.to_thread(property_holds)


async def test_verify_detects_a_tampered_ancestor(quipu: Running, database_url: str) -> None:
    c, h = quipu.client, quipu.auth()

    async def create(name: str, *causes: str) -> str:
        r = await c.post(
            "/api/v1/workflows", json={"name": name, "definition": DEFINITION, "caused_by": list(causes)}, headers=h
        )
        assert r.status_code == 201, r.text
        return r.json()["last_event_id"]  # type: ignore[no-any-return]

    # r0 -> r1 -> r2 -> m <- s0 ; m -> t ; and an unrelated branch r0 -> x
    r0 = await create("r0")
    r1 = await create("r1", r0)
    r2 = await create("r2", r1)
    s0 = await create("s0")
    m = await create("m", r2, s0)
    t = await create("t", m)
    x = await create("x", r0)

    async def verify(event_id: str) -> dict[str, Any]:
        r = await c.get(f"{API}/{event_id}/verify", headers=h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    v = await verify(t)
    # Five ancestors (r0, r1, r2, s0, m) and t itself.
    assert v == {"event_id": t, "ok": True, "checked": 5 + 1, "first_broken": None}
    assert (await verify(r0))["checked"] == 1
    assert (await verify(x))["checked"] == 2

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT e.state FROM quipu_events e JOIN event_dag d"
            " ON e.originator_id = d.stream_id AND e.originator_version = d.version WHERE d.event_id = %s",
            (r1,),
        )
        row = await cur.fetchone()
        assert row is not None
        state = msgspec.json.decode(bytes(row[0]))
        assert state["name"] == "r1"
        state["name"] = "r1-rewritten"
        tampered = msgspec.json.Encoder(order="sorted").encode(state)
        async with conn.transaction():
            await conn.execute("ALTER TABLE quipu_events DISABLE TRIGGER USER")
            await conn.execute(
                "UPDATE quipu_events SET state = %s WHERE originator_id = %s AND originator_version = %s",
                (tampered, state["originator_id"], state["originator_version"]),
            )
            await conn.execute("ALTER TABLE quipu_events ENABLE TRIGGER USER")
        # The triggers are back: history is immutable again.
        try:
            await conn.execute(
                "UPDATE quipu_events SET state = state WHERE originator_id = %s", (state["originator_id"],)
            )
        except psycopg.errors.InsufficientPrivilege:
            pass
        else:
            raise AssertionError("immutability trigger was not re-enabled")

    for descendant in (r1, r2, m, t):
        v = await verify(descendant)
        assert v["ok"] is False, descendant
        broken = v["first_broken"]
        assert broken["event_id"] == r1 and broken["reason"] == "hash_mismatch", v
        assert broken["expected"] != broken["actual"] and len(broken["actual"]) == 64
    # Events that do not descend from the tampered one still verify.
    for clean, checked in ((r0, 1), (s0, 1), (x, 2)):
        v = await verify(clean)
        assert v["ok"] is True and v["checked"] == checked and v["first_broken"] is None, (clean, v)
    # The tampered event still reads (it is valid JSON), showing the rewritten payload.
    r = await c.get(f"{API}/{r1}", headers=h)
    assert r.status_code == 200 and r.json()["payload"]["name"] == "r1-rewritten"


async def test_by_kind_accepts_names_and_codes_and_filters_depth(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    ids: list[str] = []
    workflow_ids: list[str] = []
    for depth in range(4):  # a chain of creates at depths 0, 1, 2, 3
        r = await c.post(
            "/api/v1/workflows", json={"name": f"d{depth}", "definition": DEFINITION, "caused_by": ids[-1:]}, headers=h
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["last_event_id"])
        workflow_ids.append(r.json()["id"])
    extra = await c.post("/api/v1/workflows", json={"name": "root2", "definition": DEFINITION}, headers=h)
    ids.append(extra.json()["last_event_id"])  # a second root, depth 0
    # An update is another kind and must not show up under workflow.created.
    r = await c.put(f"/api/v1/workflows/{workflow_ids[0]}", json={"name": "d0 v2", "definition": DEFINITION}, headers=h)
    assert r.status_code == 200, r.text
    # Another tenant's events are invisible.
    await c.post("/api/v1/workflows", json={"name": "beta", "definition": DEFINITION}, headers=quipu.auth("beta"))

    async def by_kind(kind: str, query: str = "") -> dict[str, Any]:
        r = await c.get(f"{API}/by-kind/{kind}{query}", headers=h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    answers = [await by_kind(k) for k in ("workflow.created", "40961", "0xa001", "0xA001")]
    assert all(a == answers[0] for a in answers)
    everything = answers[0]
    assert everything["total"] == 5
    assert [e["event_id"] for e in everything["items"]] == ids  # log order
    depth_of = {e["event_id"]: e["depth"] for e in everything["items"]}
    assert [depth_of[i] for i in ids] == [0, 1, 2, 3, 0]

    for lo, hi in ((None, None), (1, None), (None, 1), (1, 2), (3, 3), (2, 1), (4, None)):
        query = "&".join(f"{k}={v}" for k, v in (("min_depth", lo), ("max_depth", hi)) if v is not None)
        expected = [i for i in ids if (lo is None or depth_of[i] >= lo) and (hi is None or depth_of[i] <= hi)]
        for kind in ("workflow.created", "40961", "0xa001"):
            got = await by_kind(kind, "?" + query)
            assert [e["event_id"] for e in got["items"]] == expected, (kind, lo, hi)
            assert got["total"] == len(expected)

    paged = await by_kind("0xa001", "?min_depth=0&limit=2&offset=1")
    assert [e["event_id"] for e in paged["items"]] == ids[1:3] and paged["total"] == 5

    updated = await by_kind("workflow.updated")
    assert updated["total"] == 1 and updated["items"][0]["depth"] == 1
    assert (await by_kind("0xa002")) == updated

    for unknown in ("no.such.kind", "0xffff", "123456789", "workflow"):
        r = await c.get(f"{API}/by-kind/{unknown}", headers=h)
        assert r.status_code == 404, (unknown, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 404
    r = await c.get(f"{API}/by-kind/workflow.created?min_depth=-1", headers=h)
    assert r.status_code in (400, 422)
