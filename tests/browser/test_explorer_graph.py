"""The explorer's DAG drawing (js/graph.js) in a real Chromium, on random DAGs: every edge
points down the drawing, no two nodes overlap, every node is drawn once (a large graph as it
scrolls into view), and a node is picked by click or keyboard. Its speed is measured in
``make bench``, never asserted here."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

DRAW = """async ({n, seed, windowed}) => {
  const { renderDag } = await import('/ui/static/js/graph.js');
  let s = seed;
  const rnd = () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  const nodes = []; const edges = [];
  for (let i = 0; i < n; i++) {
    nodes.push({ id: 'n' + i, label: 'node ' + i, state: i % 3 ? 'succeeded' : 'running' });
    const parents = i ? 1 + Math.floor(rnd() * 3) : 0;
    for (let j = 0; j < parents; j++) edges.push(['n' + Math.floor(rnd() * i), 'n' + i]);
  }
  document.getElementById('main').replaceChildren();
  const picked = [];
  const onSelect = (id) => picked.push(id);
  window.dag = renderDag(document.getElementById('main'), { nodes, edges, windowed, onSelect });
  window.picked = picked;
  const { x, y } = window.dag.positions;
  const index = new Map(nodes.map((node, i) => [node.id, i]));
  const down = edges.every(([a, b]) => y[index.get(a)] < y[index.get(b)]);
  const spots = new Set(nodes.map((_, i) => `${x[i]},${y[i]}`));
  return { down, distinct: spots.size === n, drawn: document.querySelectorAll('[data-testid=dag-node]').length,
           count: Number(window.dag.svg.dataset.nodeCount) };
}"""


FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
SCROLL = "(w, [l, t]) => { w.scrollLeft = l; w.scrollTop = t; w.dispatchEvent(new Event('scroll')); }"


def draw(page: Page, base_url: str, n: int, seed: int, windowed: bool | None = None) -> dict[str, Any]:
    page.goto(f"{base_url}/ui/static/index.html")
    result: dict[str, Any] = page.evaluate(DRAW, {"n": n, "seed": seed, "windowed": windowed})
    return result


@pytest.mark.parametrize(("n", "seed"), [(1, 1), (12, 7), (300, 11), (2000, 5)])
def test_edges_point_down_and_nodes_never_overlap(page: Page, base_url: str, n: int, seed: int) -> None:
    found = draw(page, base_url, n, seed)
    assert found["down"] and found["distinct"]
    assert found["count"] == n
    if n <= 600:
        assert found["drawn"] == n  # small graphs are drawn whole, so Tab reaches every node
    else:
        assert 0 < found["drawn"] < n  # large ones only around the view


def test_a_large_graph_draws_every_node_as_it_scrolls_into_view(page: Page, base_url: str) -> None:
    draw(page, base_url, 1500, 3, windowed=True)
    seen: set[str] = set()
    wrap = page.locator(".dag-wrap")
    height = int(wrap.evaluate("w => w.scrollHeight"))
    width = int(wrap.evaluate("w => w.scrollWidth"))
    step_y = int(wrap.evaluate("w => w.clientHeight"))
    step_x = int(wrap.evaluate("w => w.clientWidth"))
    for top in range(0, height + step_y, step_y):
        for left in range(0, width + step_x, step_x):
            wrap.evaluate(
                "(w, [l, t]) => { w.scrollLeft = l; w.scrollTop = t; w.dispatchEvent(new Event('scroll')); }",
                [left, top],
            )
            page.evaluate(FRAMES)  # the redraw runs on the next animation frame
            seen.update(page.locator("[data-testid=dag-node]").evaluate_all("els => els.map(e => e.dataset.nodeId)"))
    assert len(seen) == 1500


def test_a_node_is_picked_by_click_enter_and_the_arrow_keys(page: Page, base_url: str) -> None:
    draw(page, base_url, 12, 7)
    page.locator('[data-node-id="n0"]').click()
    page.keyboard.press("ArrowDown")  # to a successor of n0
    focused = page.evaluate("document.activeElement.dataset.nodeId")
    assert focused and focused != "n0"
    page.keyboard.press("Enter")
    assert page.evaluate("window.picked") == ["n0", focused]
    label = page.locator(f'[data-node-id="{focused}"]').get_attribute("aria-label") or ""
    assert label.endswith(("succeeded", "running"))  # the state in words, not colour alone
    page.evaluate("window.dag.update('n1', 'failed')")
    assert page.locator('[data-node-id="n1"] .dag-state').text_content() == "failed"
