"""The explorer's run list and run page in a real Chromium, against a real Quipu and a real
worker: signing in, a run's nodes turning succeeded live, answering an approval, and problems
drawn as their title and detail."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Run, artifacts_dir, sign_in, wait_for
from tests.browser.explorer_flows import chain, echo


def test_signing_in_keeps_the_key_in_the_tab_only_and_signing_out_forgets_it(
    page: Page, base_url: str, api_key: str
) -> None:
    sign_in(page, base_url, api_key)
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Signed in")
    expect(page.get_by_test_id("executions-table")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('quipu.apiKey')") == api_key
    assert page.evaluate("localStorage.length") == 0
    assert api_key not in page.url
    page.get_by_test_id("signout").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('quipu.apiKey')") is None
    expect(page.get_by_test_id("signed-out")).to_be_visible()


def test_a_runs_nodes_turn_succeeded_live_on_its_page(
    signed_in_page: Page, base_url: str, api: httpx.Client, run_workflow: Run
) -> None:
    page = signed_in_page
    flow = chain(echo("first", delay=4, output={"a": 1}), echo("second", delay=4, output={"b": 2}))
    run = run_workflow(flow, wait=False, name="live")
    page.goto(f"{base_url}/ui/executions/{run['id']}")
    nodes = page.get_by_test_id("dag-node")
    expect(nodes).to_have_count(4)
    # The page opened while the run was still going: "second" had not succeeded yet.
    assert page.locator('[data-node-id="second"]').get_attribute("data-state") != "succeeded"
    for node in ("start", "first", "second", "end"):
        expect(page.locator(f'[data-node-id="{node}"]')).to_have_attribute("data-state", "succeeded", timeout=60_000)
    # State is told in text as well as colour.
    expect(page.locator('[data-node-id="second"] .dag-state')).to_have_text("succeeded")
    expect(page.get_by_test_id("run-status")).to_contain_text("succeeded", timeout=30_000)
    assert api.get(f"/executions/{run['id']}").json()["status"] == "succeeded"
    # The list shows the run with its status, and a node's details open from the keyboard.
    page.locator('[data-node-id="first"]').focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("node-output")).to_contain_text('"a": 1')
    expect(page.get_by_test_id("node-attempts")).to_contain_text("node_completed")


def test_a_pending_approval_is_approved_from_the_page(
    signed_in_page: Page, base_url: str, api: httpx.Client, run_workflow: Run
) -> None:
    page = signed_in_page
    flow = chain(
        echo("draft", output={"draft": "text"}),
        {"id": "review", "type": "approval", "config": {"prompt": "Publish the draft?"}},
        echo("publish", output={"published": True}),
    )
    run = run_workflow(flow, wait=False, name="approval")
    wait_for(lambda: api.get(f"/executions/{run['id']}").json()["pending_approvals"], "the approval to be asked")
    page.goto(f"{base_url}/ui/executions/{run['id']}?tab=approvals")
    pending = page.get_by_test_id("approval-pending")
    expect(pending).to_contain_text("Publish the draft?")
    shown = json.loads(page.get_by_test_id("approval-state").inner_text())
    assert shown == api.get(f"/executions/{run['id']}").json()["state"]
    page.get_by_label("Feedback").fill("looks right")
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("approval-answered")).to_be_visible()

    def ended() -> dict[str, Any] | None:
        now: dict[str, Any] = api.get(f"/executions/{run['id']}").json()
        return now if now["status"] == "succeeded" else None

    assert wait_for(ended, "the approved run to succeed")["state"]["published"] is True
    answered = api.get(f"/executions/{run['id']}/approvals").json()["items"][0]
    assert (answered["status"], answered["feedback"]) == ("approved", "looks right")
    expect(page.locator('[data-testid=approval-row][data-status="approved"]')).to_be_visible()


def test_the_list_shows_status_workflow_and_cost_and_filters_by_status(
    signed_in_page: Page, base_url: str, api: httpx.Client, run_workflow: Run
) -> None:
    page = signed_in_page
    run = run_workflow(chain(echo("only")), name="listed")

    def listed() -> bool:  # the list is a read model: it follows the run's events shortly after
        found = api.get("/executions", params={"status": "succeeded", "limit": 20}).json()["items"]
        return any(item["id"] == run["id"] for item in found)

    wait_for(listed, "the run in the list's read model")
    page.goto(f"{base_url}/ui/executions?status=succeeded&limit=20")
    row = page.locator(f'[data-testid=execution-row][data-execution-id="{run["id"]}"]')
    expect(row.locator("[data-col=status]")).to_have_text("succeeded")
    expect(row.locator("[data-col=workflow]")).to_have_text("listed")
    expect(row.locator("[data-col=cost]")).to_have_text("$0.0000")
    expect(page.get_by_test_id("filter-status")).to_have_value("succeeded")
    statuses = page.locator("[data-testid=execution-row] [data-status]").evaluate_all(
        "els => els.map(e => e.dataset.status)"
    )
    assert statuses and set(statuses) == {"succeeded"}


def test_every_page_of_a_run_opens_without_a_console_error(
    signed_in_page: Page, base_url: str, run_workflow: Run
) -> None:
    """The ``page`` fixture fails the test on any console or page error."""
    page = signed_in_page
    run = run_workflow(chain(echo("only", output={"x": 1})), name="tour")
    page.goto(f"{base_url}/ui/executions/{run['id']}")
    for tab in ("timeline", "checkpoints", "approvals", "branches", "forensics", "graph"):
        page.get_by_test_id(f"tab-{tab}").click()
        expect(page.get_by_test_id(f"panel-{tab}")).to_be_visible()
    page.get_by_test_id("tab-timeline").click()
    page.get_by_test_id("timeline-type-node_completed").check()
    page.get_by_test_id("timeline-apply").click()
    expect(page.get_by_test_id("timeline-summary")).to_contain_text("match")  # the filtered answer is in
    types = page.get_by_test_id("timeline-row").evaluate_all("els => els.map(e => e.dataset.eventType)")
    assert types and set(types) == {"node_completed"}
    page.get_by_test_id("nav-executions").click()
    expect(page.get_by_test_id("executions-table")).to_be_visible()


def test_an_api_error_is_shown_as_the_problems_title_and_detail(browser: Browser, base_url: str, api_key: str) -> None:
    """Its own page: the browser reports the 404 response itself on the console, which the
    ``page`` fixture would count as the page's error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{base_url}/ui/executions")
        page.get_by_label("API key").fill("qk_not-a-key")
        page.get_by_test_id("signin").click()
        refused = page.get_by_test_id("signin-error")
        expect(refused.get_by_test_id("problem-title")).to_have_text("401 Unauthorized")
        expect(refused.get_by_test_id("problem-detail")).to_contain_text("unknown or revoked")
        assert page.evaluate("sessionStorage.getItem('quipu.apiKey')") is None
        sign_in(page, base_url, api_key)
        expect(refused).to_be_empty()
        missing = uuid.uuid4()
        page.goto(f"{base_url}/ui/executions/{missing}")
        expect(page.get_by_test_id("problem-title")).to_have_text("404 Not Found")
        expect(page.get_by_test_id("problem-detail")).to_contain_text(str(missing))
        page.goto(f"{base_url}/ui/executions?created_after=not-a-time")
        expect(page.get_by_test_id("problem-title")).to_contain_text("422")
        page.screenshot(path=str(artifacts_dir() / "api_error_is_shown.png"), full_page=True)
    finally:
        context.close()
    assert not errors


def test_the_list_updates_a_runs_status_live(
    signed_in_page: Page, base_url: str, api: httpx.Client, run_workflow: Run
) -> None:
    page = signed_in_page
    run = run_workflow(chain(echo("slow", delay=4)), wait=False, name="live list")

    def listed_running() -> bool:
        found = api.get("/executions", params={"limit": 50}).json()["items"]
        return any(item["id"] == run["id"] and item["status"] == "running" for item in found)

    wait_for(listed_running, "the running run in the list's read model")
    page.goto(f"{base_url}/ui/executions")
    status = page.locator(f'[data-testid=execution-row][data-execution-id="{run["id"]}"] [data-col=status]')
    expect(status).to_have_text("running")
    expect(status).to_have_text("succeeded", timeout=90_000)  # no reload: the page re-reads the list
