"""Ancestor and descendant walks page by ``offset``: the pages, joined, are the whole walk."""

from __future__ import annotations

from tests.integration.conftest import Running

API = "/api/v1/event-dag"


async def test_walk_pages_joined_are_the_whole_walk(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    ids: list[str] = []
    for i in range(23):  # a causal fan: each workflow is caused by the two before it
        causes = ids[-2:]
        r = await c.post(
            "/api/v1/workflows",
            json={"name": f"w{i}", "definition": {"nodes": [{"id": "a"}]}, "caused_by": causes},
            headers=h,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["last_event_id"])
    for start, direction in [(ids[-1], "ancestors"), (ids[0], "descendants")]:
        whole = (await c.get(f"{API}/{start}/{direction}", params={"limit": 1000}, headers=h)).json()
        assert whole["total"] == len(whole["items"]) == 22 and whole["offset"] == 0
        pages: list[dict[str, object]] = []
        for offset in range(0, 30, 5):
            page = (await c.get(f"{API}/{start}/{direction}", params={"limit": 5, "offset": offset}, headers=h)).json()
            assert page["offset"] == offset and page["total"] == len(page["items"]) <= 5
            pages.extend(page["items"])
        assert pages == whole["items"]
    r = await c.get(f"{API}/{ids[-1]}/ancestors", params={"offset": 100_001}, headers=h)
    assert r.status_code == 422
