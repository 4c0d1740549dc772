"""The run page's history views in a real Chromium against a real Quipu and worker: the time
slider against ``GET .../state?as_of=``, the checkpoint diff against the API's compare, and a
fork from a checkpoint appearing in the branch tree."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Run
from tests.browser.explorer_flows import chain, echo

FLOW = chain(
    echo("fetch", output={"pages": 3, "source": "web"}),
    echo("draft", output={"draft": "v1", "pages": 4}),
    echo("polish", output={"draft": "v2", "polished": True}),
)


@pytest.fixture
def finished(run_workflow: Run) -> dict[str, Any]:
    run = run_workflow(FLOW, name="history")
    assert run["status"] == "succeeded", run
    return run


def test_the_slider_at_the_middle_event_shows_the_state_the_api_gives_as_of_it(
    signed_in_page: Page, base_url: str, api: httpx.Client, finished: dict[str, Any]
) -> None:
    page = signed_in_page
    page.goto(f"{base_url}/ui/executions/{finished['id']}")
    slider = page.get_by_test_id("as-of-slider")
    assert int(slider.get_attribute("max") or 0) == finished["version"]
    middle = (finished["version"] + 1) // 2
    slider.fill(str(middle))
    event = page.get_by_test_id("as-of-event")
    expect(event).to_be_visible()
    expect(page.get_by_test_id("as-of-text")).to_contain_text(f"Event {middle} of {finished['version']}")
    event_id = event.inner_text()
    then = api.get(f"/executions/{finished['id']}/state", params={"as_of": event_id}).json()
    assert then["as_of"]["version"] == middle
    assert json.loads(page.get_by_test_id("state-panel").inner_text()) == then["state"]
    # The graph shows the nodes as they were then, not as they ended.
    for node_id, status in then["nodes"].items():
        expect(page.locator(f'[data-node-id="{node_id}"]')).to_have_attribute("data-state", status)
    assert then["nodes"] != finished["nodes"]
    page.get_by_test_id("as-of-live").click()
    expect(page.get_by_test_id("as-of-text")).to_contain_text("Live")
    expect(page.locator('[data-node-id="end"]')).to_have_attribute("data-state", "succeeded")


def test_the_diff_of_two_checkpoints_shows_the_keys_of_the_apis_compare(
    signed_in_page: Page, base_url: str, api: httpx.Client, finished: dict[str, Any]
) -> None:
    page = signed_in_page
    checkpoints = api.get(f"/executions/{finished['id']}/checkpoints").json()["items"]
    first, last = sorted(checkpoints, key=lambda c: c["sequence"])[:: len(checkpoints) - 1]
    page.goto(f"{base_url}/ui/executions/{finished['id']}?tab=checkpoints")
    for cp in (first, last):
        page.locator(f'[data-checkpoint-id="{cp["checkpoint_id"]}"] [data-testid=checkpoint-pick]').check()
    page.get_by_test_id("checkpoint-compare").click()
    diff = page.get_by_test_id("checkpoint-diff")
    expect(diff).to_be_visible()
    body = {"checkpoint_a": first["checkpoint_id"], "checkpoint_b": last["checkpoint_id"]}
    expected = api.post(f"/executions/{finished['id']}/checkpoints/compare", json=body).json()
    for kind in ("added", "removed", "modified"):
        shown = diff.get_by_test_id(f"diff-{kind}-keys").locator("li").all_inner_texts()
        assert shown == expected[f"{kind}_keys"], kind
    assert expected["added_keys"] and expected["modified_keys"]  # the run changed something
    rows = diff.get_by_test_id("diff-row")
    expect(rows).to_have_count(len(expected["changes"]))
    paths = rows.evaluate_all("els => els.map(e => e.dataset.path)")
    assert paths == [c["path"] for c in expected["changes"]]


def test_a_fork_from_a_checkpoint_with_an_edited_state_appears_in_the_branch_tree(
    signed_in_page: Page, base_url: str, api: httpx.Client, finished: dict[str, Any]
) -> None:
    page = signed_in_page
    checkpoints = api.get(f"/executions/{finished['id']}/checkpoints").json()["items"]
    after_fetch = next(c for c in checkpoints if c["node_id"] == "fetch")
    page.goto(f"{base_url}/ui/executions/{finished['id']}?tab=checkpoints")
    page.locator(f'[data-checkpoint-id="{after_fetch["checkpoint_id"]}"] [data-testid=checkpoint-fork]').click()
    state_field = page.get_by_test_id("fork-state")
    state = json.loads(state_field.input_value())
    assert state["pages"] == 3
    state["pages"] = 10
    state_field.fill(json.dumps(state, indent=2))
    page.get_by_test_id("fork-name").fill("ten pages")
    page.get_by_test_id("fork-hypothesis").fill("more pages, better draft")
    page.get_by_test_id("fork-submit").click()
    created = page.get_by_test_id("fork-created")
    expect(created).to_be_visible()
    branch_id = created.locator("a").inner_text()
    branch = api.get(f"/executions/{branch_id}").json()
    assert branch["fork"]["execution_id"] == finished["id"]
    assert branch["fork"]["name"] == "ten pages"
    page.get_by_test_id("tab-branches").click()
    node = page.locator(f'[data-testid=branch][data-execution-id="{branch_id}"]')
    expect(node).to_contain_text("ten pages")
    tree = api.get(f"/executions/{finished['id']}/branches").json()
    assert branch_id in [b["execution_id"] for b in tree["root"]["children"]]
    # Compare the two branches: the common ancestor and the nodes that differ are shown.
    page.locator(f'[data-execution-id="{finished["id"]}"] > label [data-testid=branch-pick-a]').check()
    node.locator("[data-testid=branch-pick-b]").first.check()
    page.get_by_test_id("branch-compare").click()
    expect(page.get_by_test_id("branch-comparison")).to_be_visible()
    expect(page.get_by_test_id("common-ancestor")).to_be_visible()


def test_blame_and_bisect_on_the_run_page_name_the_events_the_api_names(
    signed_in_page: Page, base_url: str, api: httpx.Client, finished: dict[str, Any]
) -> None:
    page = signed_in_page
    run_id = finished["id"]
    page.goto(f"{base_url}/ui/executions/{run_id}?tab=forensics")
    page.get_by_label("JSON pointer").fill("/draft")
    page.get_by_test_id("blame-submit").click()
    blame = api.get(f"/executions/{run_id}/blame", params={"path": "/draft"}).json()
    summary = page.get_by_test_id("blame-summary")
    expect(summary).to_contain_text(blame["event"]["event_id"])
    expect(summary).to_contain_text(f"node {blame['node_id']}")
    expect(page.get_by_test_id("blame-path").locator("li")).to_have_count(len(blame["causal_path"]))
    page.get_by_label("Condition").fill("pages >= 4")
    page.get_by_test_id("bisect-submit").click()
    bisect = api.get(f"/executions/{run_id}/bisect", params={"condition": "pages >= 4"}).json()
    assert bisect["found"] and bisect["node_id"] == "draft"
    expect(page.get_by_test_id("bisect-summary")).to_contain_text(bisect["event"]["event_id"])
