// /ui/events/{id}: one event. Its envelope with a hash-chain verify badge, its ancestors and
// descendants drawn as one graph and counted (within the API's depth limits, ?up= and ?down=),
// and a second event (typed, picked on the graph, or ?with=) for the causal path between the
// two and their lowest common ancestors. Clicking any event goes to its page.
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime } from '../dom.js';
import { route, navigate } from '../router.js';
import { requireKey, shortId } from '../common.js';
import { renderDag } from '../graph.js';

const PAGE = 10000; // the graph walk's largest page
const DEFAULT_DEPTH = 100; // the API's default max_depth
const MAX_DEPTH = 10000; // and its largest

// The states this page gives the graph's nodes (always written in the node too, never told
// by colour alone): the event itself, its causes and effects, and a comparison's marks.
const STYLE = `
[data-testid=event-graph] .dag-node.st-this rect { stroke: #1d4ed8; stroke-width: 3px; fill: #dbeafe; }
[data-testid=event-graph] .dag-node.st-descendant rect { fill: #f5f3ff; }
[data-testid=event-graph] .dag-node.st-on_path rect { stroke: #b45309; stroke-width: 2px; fill: #fef3c7; }
[data-testid=event-graph] .dag-node.st-common rect { stroke: #047857; stroke-width: 2px; fill: #d1fae5; }`;

// A constructed style sheet: the explorer's Content-Security-Policy refuses inline <style>.
let sheet = null;
function ensureStyle() {
  if (sheet) return;
  sheet = new CSSStyleSheet();
  sheet.replaceSync(STYLE);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

function depthOf(text) {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) ? Math.min(Math.max(n, 1), MAX_DEPTH) : DEFAULT_DEPTH;
}

// Every event of a walk within maxDepth hops, nearest first, from the graph walk (ids, kinds
// and parent links, no payloads): one answer holds 10,000 events, further pages by offset.
async function walkAll(id, direction, maxDepth) {
  const get = (offset) => api(`/event-dag/${id}/graph`, { query: { direction, max_depth: maxDepth, limit: PAGE, offset } });
  const first = await get(0);
  const items = first.items.slice();
  const rest = [];
  for (let offset = PAGE; offset < first.total; offset += PAGE) rest.push(get(offset));
  for (const page of await Promise.all(rest)) items.push(...page.items);
  return { items, truncated: first.truncated };
}

function label(event) {
  const kind = event.kind.slice(event.kind.indexOf('.') + 1);
  const node = event.payload && typeof event.payload.node_id === 'string' ? ` ${event.payload.node_id}` : '';
  return `${kind}${node}`;
}

function eventLink(id, text) {
  return h('a', { href: `/ui/events/${id}`, class: 'mono', 'data-testid': 'event-link' }, text || id);
}

function envelopePanel(event) {
  const run = event.kind.startsWith('execution.') || event.kind.startsWith('telemetry.');
  const rows = [
    ['kind', `${event.kind} (0x${Number(event.code).toString(16)})`],
    ['event id', h('span', { class: 'mono', 'data-testid': 'event-id' }, event.event_id)],
    ['stream', h('span', { class: 'mono' }, `${event.stream_id} v${event.version}`)],
    ['correlation', run
      ? h('a', { href: `/ui/executions/${event.correlation_id}`, class: 'mono' }, event.correlation_id)
      : h('span', { class: 'mono' }, event.correlation_id)],
    ['parents', event.parent_ids.length
      ? h('ul', { 'data-testid': 'event-parents' }, event.parent_ids.map((p) => h('li', {}, eventLink(p))))
      : 'none (a root)'],
    ['depth', String(event.depth)],
    ['actor', event.actor],
    ['occurred at', fmtTime(event.occurred_at)],
    ['tenant', event.tenant_id],
    ['log position', String(event.notification_id)],
    ['hash', h('span', { class: 'mono' }, event.hash)],
  ];
  return h('div', { class: 'panel', 'data-testid': 'event-envelope' },
    h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('h2', {}, 'Payload'), h('pre', { 'data-testid': 'event-payload' }, pretty(event.payload)));
}

// The badge at once; the check itself (it rehashes every ancestor) starts when asked, so
// it does not compete with the walks the graph waits for.
function verifyBadge(id) {
  const slot = h('span', { 'data-testid': 'verify-badge', 'data-ok': 'pending', class: 'badge st-pending' }, 'hash chain: checking…');
  const start = () => api(`/event-dag/${id}/verify`).then((v) => {
    slot.className = `badge st-${v.ok ? 'succeeded' : 'failed'}`;
    slot.dataset.ok = String(v.ok);
    slot.textContent = v.ok
      ? `hash chain verified (${v.checked} events)`
      : `hash chain broken at ${v.first_broken.event_id}: ${v.first_broken.reason}`;
  }, (err) => {
    slot.className = 'badge st-unknown';
    slot.dataset.ok = 'error';
    slot.textContent = `hash chain: cannot verify (${err.title || err})`;
  });
  return { slot, start };
}

function depthForm(id, up, down, withId) {
  const field = (name, value, text) => h('label', { class: 'field' }, text,
    h('input', { type: 'number', name, min: 1, max: MAX_DEPTH, value, 'data-testid': `depth-${name}` }));
  const form = h('form', { class: 'row', 'data-testid': 'depth-form' },
    field('up', up, 'Ancestor hops'), field('down', down, 'Descendant hops'),
    h('button', { type: 'submit', 'data-testid': 'depth-apply' }, 'Walk'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(eventUrl(id, depthOf(form.up.value), depthOf(form.down.value), withId));
  });
  return form;
}

function eventUrl(id, up, down, withId) {
  const q = new URLSearchParams();
  if (up !== DEFAULT_DEPTH) q.set('up', up);
  if (down !== DEFAULT_DEPTH) q.set('down', down);
  if (withId) q.set('with', withId);
  const s = q.toString();
  return `/ui/events/${id}${s ? `?${s}` : ''}`;
}

// The causal path between this event and another (whichever way it runs) and their lowest
// common ancestors; both are marked on the graph when they are drawn there.
async function relate(out, id, other, graph) {
  clear(out);
  graph.reset();
  // An event is its own ancestor here, so when one of the two led to the other, it is their
  // only lowest common ancestor: that tells which way a path runs without asking both ways.
  const common = await api('/event-dag/common-ancestors', { query: { a: id, b: other } });
  const shared = new Set(common.items.map((e) => e.event_id));
  const ends = shared.has(other) ? [other, id] : shared.has(id) ? [id, other] : null;
  const path = ends ? await api('/event-dag/path', { query: { from: ends[0], to: ends[1] } }) : null;
  if (path) {
    out.append(h('h3', {}, 'Causal path ', h('span', { 'data-testid': 'path-length' }, `${path.length} hops`)),
      h('ol', { 'data-testid': 'causal-path' }, path.events.map((e) => h('li', {}, eventLink(e.event_id, shortId(e.event_id)), ` ${label(e)}`))));
    for (const e of path.events) if (e.event_id !== id) graph.mark(e.event_id, 'on_path');
  } else {
    out.append(h('p', { 'data-testid': 'causal-path-none' }, 'No causal path: neither event led to the other.'));
  }
  out.append(h('h3', {}, `Lowest common ancestors (${common.items.length})`),
    h('ul', { 'data-testid': 'common-ancestors' }, common.items.map((e) => h('li', {}, eventLink(e.event_id, shortId(e.event_id)), ` ${label(e)}`))));
  for (const e of common.items) if (e.event_id !== id && !graph.marks.has(e.event_id)) graph.mark(e.event_id, 'common');
}

function secondEventForm(id, graph, initial) {
  const input = h('input', { name: 'other', size: 40, placeholder: 'another event id', 'data-testid': 'second-event-input', value: initial || '' });
  const pick = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false', 'data-testid': 'pick-second' }, 'Pick on the graph');
  const out = h('div', { 'data-testid': 'relation', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', 'data-testid': 'second-event-form' },
    h('h2', {}, 'Compare with a second event'),
    h('div', { class: 'row' }, h('label', { class: 'field' }, 'Second event', input),
      h('button', { type: 'submit', 'data-testid': 'second-event-submit' }, 'Show path and common ancestors'), pick),
    out);
  const run = () => {
    const other = input.value.trim();
    if (!other) return;
    history.replaceState(null, '', eventUrl(id, graph.up, graph.down, other));
    relate(out, id, other, graph).catch((err) => { clear(out); showProblem(out, err); });
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
  pick.addEventListener('click', () => { graph.picking = !graph.picking; pick.setAttribute('aria-pressed', String(graph.picking)); });
  graph.onPick = (other) => {
    graph.picking = false;
    pick.setAttribute('aria-pressed', 'false');
    input.value = other;
    run();
  };
  if (initial) run();
  return form;
}

async function render(container, params, query) {
  if (!requireKey(container)) return undefined;
  ensureStyle();
  const id = params.id;
  const up = depthOf(query.up);
  const down = depthOf(query.down);
  // The walks need only the id: they start with the envelope's request, not after it.
  const walks = Promise.all([walkAll(id, 'ancestors', up), walkAll(id, 'descendants', down)]);
  walks.catch(() => {}); // shown below once the envelope is in; never an unhandled rejection
  const event = await api(`/event-dag/${id}`);
  const verify = verifyBadge(id);
  container.append(h('h1', {}, 'Event ', h('span', { class: 'mono' }, label(event))),
    h('div', { class: 'row' }, verify.slot), envelopePanel(event));

  const counts = h('p', { class: 'row', 'data-testid': 'event-counts' }, 'Walking the event graph…');
  const graphBox = h('section', { class: 'panel', 'data-testid': 'event-graph', 'data-ready': 'false', 'aria-label': 'ancestors and descendants' });
  const graph = {
    up, down, picking: false, onPick: null, dag: null, marks: new Map(), base: new Map(),
    mark(eid, state) { this.marks.set(eid, state); if (this.dag) this.dag.update(eid, state); },
    reset() { for (const eid of this.marks.keys()) if (this.dag) this.dag.update(eid, this.base.get(eid)); this.marks.clear(); },
  };
  container.append(h('section', { class: 'panel' }, h('h2', {}, 'Causes and effects'), depthForm(id, up, down, query.with), counts), graphBox,
    secondEventForm(id, graph, query.with));

  let left = false;
  const [ancestors, descendants] = await walks.catch((err) => { clear(counts); showProblem(counts, err); return [null, null]; });
  if (left || !ancestors) { verify.start(); return undefined; }
  const cut = (walk) => (walk.truncated ? ' (the walk stopped at its limit)' : '');
  clear(counts).append(
    h('span', { 'data-testid': 'ancestor-count', 'data-count': ancestors.items.length }, `${ancestors.items.length} ancestors within ${up} hops${cut(ancestors)}`),
    h('span', { 'data-testid': 'descendant-count', 'data-count': descendants.items.length }, `${descendants.items.length} descendants within ${down} hops${cut(descendants)}`));
  const all = [{ ...event, distance: 0 }, ...ancestors.items, ...descendants.items];
  const inGraph = new Set(all.map((e) => e.event_id));
  all.forEach((e, i) => graph.base.set(e.event_id, i === 0 ? 'this' : i <= ancestors.items.length ? 'ancestor' : 'descendant'));
  const nodes = all.map((e) => ({
    id: e.event_id,
    label: label(e),
    state: graph.marks.get(e.event_id) || graph.base.get(e.event_id),
    title: `${e.kind} ${e.event_id} (${e.distance} hops) ${e.occurred_at}`,
  }));
  const edges = [];
  for (const e of all) for (const p of e.parent_ids) if (inGraph.has(p)) edges.push([p, e.event_id]);
  graph.dag = renderDag(graphBox, {
    nodes,
    edges,
    onSelect: (eid) => {
      if (graph.picking && graph.onPick) graph.onPick(eid);
      else if (eid !== id) navigate(eventUrl(eid, up, down, null));
    },
  });
  graphBox.dataset.ready = 'true';
  verify.start();
  return () => { left = true; if (graph.dag) graph.dag.destroy(); };
}

route('/ui/events/:id', render);
