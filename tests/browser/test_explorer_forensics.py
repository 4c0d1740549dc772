"""The explorer's forensic pages in a real Chromium against a real Quipu and worker: one
event's page (envelope, hash-chain badge, ancestors and descendants counted as the API
counts them, navigation, causal path to a second event), memory search with its provenance
walks, and blame and bisect on a run's page."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Run, wait_for

CHAIN = {
    "nodes": [
        {"id": "fetch", "agent_type": "echo", "config": {"output": {"pages": 3}}},
        {"id": "draft", "agent_type": "echo", "config": {"output": {"draft": "v1", "pages": 4}}},
        {"id": "review", "agent_type": "echo", "config": {"output": {"approved": True}}},
    ],
    "edges": [{"from": "fetch", "to": "draft"}, {"from": "draft", "to": "review"}],
}


@pytest.fixture(scope="module")
def chain_run(run_workflow: Run) -> dict[str, Any]:
    run = run_workflow(CHAIN, {"topic": "ducks"})
    assert run["status"] == "succeeded", run
    return run


def run_events(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    graph = api.get("/event-dag", params={"correlation_id": run_id, "limit": 1000}).json()
    return sorted(graph["nodes"], key=lambda e: e["notification_id"])


def open_event(page: Page, base_url: str, event_id: str, query: str = "") -> None:
    page.goto(f"{base_url}/ui/events/{event_id}{query}")
    expect(page.get_by_test_id("event-graph")).to_have_attribute("data-ready", "true", timeout=30_000)


def test_an_event_page_counts_ancestors_and_descendants_as_the_api_does(
    signed_in_page: Page, base_url: str, api: httpx.Client, chain_run: dict[str, Any]
) -> None:
    page = signed_in_page
    events = run_events(api, chain_run["id"])
    last, first = events[-1], events[0]
    open_event(page, base_url, last["event_id"])
    ancestors = api.get(f"/event-dag/{last['event_id']}/ancestors", params={"limit": 1000}).json()["items"]
    assert len(ancestors) >= len(events) - 1  # the whole run led to its last event
    expect(page.get_by_test_id("ancestor-count")).to_have_attribute("data-count", str(len(ancestors)))
    expect(page.get_by_test_id("descendant-count")).to_have_attribute("data-count", "0")
    expect(page.get_by_test_id("event-id")).to_have_text(last["event_id"])
    expect(page.get_by_test_id("verify-badge")).to_have_attribute("data-ok", "true")
    expect(page.get_by_test_id("dag")).to_have_attribute("data-node-count", str(len(ancestors) + 1))
    # The first event, walked the other way and with a depth limit, as the API walks it.
    open_event(page, base_url, first["event_id"], "?down=2")
    below = api.get(f"/event-dag/{first['event_id']}/descendants", params={"max_depth": 2, "limit": 1000}).json()
    expect(page.get_by_test_id("descendant-count")).to_have_attribute("data-count", str(len(below["items"])))
    above = api.get(f"/event-dag/{first['event_id']}/ancestors", params={"limit": 1000}).json()  # its workflow
    expect(page.get_by_test_id("ancestor-count")).to_have_attribute("data-count", str(len(above["items"])))


def test_clicking_an_event_of_the_graph_opens_its_page_and_keys_work_too(
    signed_in_page: Page, base_url: str, api: httpx.Client, chain_run: dict[str, Any]
) -> None:
    page = signed_in_page
    last = run_events(api, chain_run["id"])[-1]
    open_event(page, base_url, last["event_id"])
    parent = last["parent_ids"][0]
    page.locator(f'g[data-testid=dag-node][data-node-id="{parent}"]').click()
    expect(page).to_have_url(f"{base_url}/ui/events/{parent}")
    expect(page.get_by_test_id("event-graph")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("event-id")).to_have_text(parent)
    grandparent = api.get(f"/event-dag/{parent}").json()["parent_ids"][0]
    node = page.locator(f'g[data-testid=dag-node][data-node-id="{grandparent}"]')
    node.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base_url}/ui/events/{grandparent}")
    expect(page.get_by_test_id("event-id")).to_have_text(grandparent)


def test_a_second_event_shows_the_causal_path_and_common_ancestors(
    signed_in_page: Page, base_url: str, api: httpx.Client, chain_run: dict[str, Any]
) -> None:
    page = signed_in_page
    events = run_events(api, chain_run["id"])
    first, last = events[0], events[-1]
    open_event(page, base_url, last["event_id"])
    page.get_by_test_id("second-event-input").fill(first["event_id"])
    page.get_by_test_id("second-event-submit").click()
    path = api.get("/event-dag/path", params={"from": first["event_id"], "to": last["event_id"]}).json()
    expect(page.get_by_test_id("path-length")).to_have_text(f"{path['length']} hops")
    expect(page.get_by_test_id("causal-path").locator("li")).to_have_count(len(path["events"]))
    common = page.get_by_test_id("common-ancestors").locator("a")
    expect(common).to_have_count(1)
    expect(common).to_have_attribute("href", f"/ui/events/{first['event_id']}")
    # Picked on the graph instead: a node of the path is marked, as text and colour.
    page.get_by_test_id("pick-second").click()
    middle = path["events"][len(path["events"]) // 2]["event_id"]
    page.locator(f'g[data-testid=dag-node][data-node-id="{middle}"]').click()
    expect(page).to_have_url(f"{base_url}/ui/events/{last['event_id']}?with={middle}")
    expect(page.get_by_test_id("causal-path")).to_be_visible()
    expect(page.locator(f'g[data-testid=dag-node][data-node-id="{middle}"]')).to_have_attribute("data-state", "on_path")


def test_an_unknown_event_shows_the_problem_not_a_blank_page(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    page.goto(f"{base_url}/ui/events/0190d4a8-0000-7000-8000-000000000000")
    expect(page.get_by_test_id("problem-title")).to_contain_text("404")
    expect(page.get_by_test_id("problem-detail")).to_contain_text("not found")


def test_memory_search_shows_the_apis_results_and_each_links_to_its_provenance_walk(
    signed_in_page: Page, base_url: str, api: httpx.Client, chain_run: dict[str, Any]
) -> None:
    page = signed_in_page
    cause = run_events(api, chain_run["id"])[-1]["event_id"]
    notes = []
    for i, text in enumerate(["Ducks fly south in winter", "Ducks eat bread, which is bad for them", "Geese honk"]):
        r = api.post(
            "/notes",
            json={"title": f"bird fact {i}", "content": text, "note_type": "fact", "caused_by": [cause]},
        )
        assert r.status_code == 201, r.text
        notes.append(r.json()["note_id"])
    body = {"query": "ducks", "mode": "keyword", "entity_types": ["note"], "limit": 20}
    found = wait_for(
        lambda: (r := api.post("/search", json=body).json())["total"] >= 2 and r, "the notes to be searchable"
    )
    page.goto(f"{base_url}/ui/memory")
    page.get_by_test_id("memory-query").fill("ducks")
    page.get_by_test_id("memory-mode").select_option("keyword")
    page.get_by_test_id("memory-type-note").check()
    page.get_by_test_id("memory-search").click()
    expect(page.get_by_test_id("memory-total")).to_have_attribute("data-total", str(found["total"]))
    results = page.get_by_test_id("memory-result")
    expect(results).to_have_count(len(found["results"]))
    shown = [results.nth(i).get_attribute("data-entity-id") for i in range(len(found["results"]))]
    assert shown == [r["entity_id"] for r in found["results"]]
    # Hybrid (the default mode) answers too, with the local embedding model.
    page.get_by_test_id("memory-mode").select_option("hybrid")
    page.get_by_test_id("memory-search").click()
    expect(page).to_have_url(re.compile(r"mode=hybrid"))
    expect(page.get_by_test_id("memory-result").first).to_be_visible()
    # A result's provenance walk reaches the event the note named as its cause.
    page.get_by_test_id("memory-mode").select_option("keyword")
    page.get_by_test_id("memory-search").click()
    first = page.get_by_test_id("memory-result").first
    note_id = first.get_attribute("data-entity-id")
    first.get_by_test_id("memory-provenance-link").click()
    expect(page).to_have_url(f"{base_url}/ui/memory/note/{note_id}")
    walked = api.get(f"/notes/{note_id}/provenance").json()
    expect(page.get_by_test_id("provenance-events").locator("li")).to_have_count(len(walked["events"]))
    expect(page.get_by_test_id("provenance-events").locator(f'a[href="/ui/events/{cause}"]')).to_have_count(1)


def test_blame_and_bisect_answer_on_the_runs_page_as_the_api_does(
    signed_in_page: Page, base_url: str, api: httpx.Client, chain_run: dict[str, Any]
) -> None:
    page = signed_in_page
    run_id = chain_run["id"]
    blame = api.get(f"/executions/{run_id}/blame", params={"path": "/pages"}).json()
    assert blame["node_id"] == "draft" and blame["value"] == 4 and blame["previous"] == 3
    bisect = api.get(f"/executions/{run_id}/bisect", params={"condition": "pages > 3"}).json()
    assert bisect["found"] and bisect["node_id"] == "draft"
    page.goto(f"{base_url}/ui/executions/{run_id}")
    page.get_by_test_id("tab-forensics").click()
    page.get_by_test_id("blame-input").fill("/pages")
    page.get_by_test_id("blame-submit").click()
    answer = page.get_by_test_id("blame-result")
    expect(answer.locator(f'a[href="/ui/events/{blame["event"]["event_id"]}"]').first).to_be_visible()
    expect(answer).to_contain_text("draft")
    page.get_by_test_id("bisect-input").fill("pages > 3")
    page.get_by_test_id("bisect-submit").click()
    answer = page.get_by_test_id("bisect-result")
    expect(answer.locator(f'a[href="/ui/events/{bisect["event"]["event_id"]}"]').first).to_be_visible()
    # A condition that does not parse: the problem's title and detail, not a blank panel.
    page.get_by_test_id("bisect-input").fill("pages >")
    page.get_by_test_id("bisect-submit").click()
    expect(answer.get_by_test_id("problem-title")).to_contain_text("422")
