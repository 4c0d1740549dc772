// Blame and bisect on the run's page: which event last set a part of the state
// (GET .../blame?path=<JSON pointer>), and the first event after which a condition holds
// (GET .../bisect?condition=). Event ids in the answer link to the event page.
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime } from '../dom.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function eventLinks(value, depth = 0) {
  // The answer drawn as nested lists, every event id a link: readable whatever its exact fields.
  if (depth > 6) return pretty(value);
  if (Array.isArray(value)) {
    return h('ol', {}, value.map((v) => h('li', {}, eventLinks(v, depth + 1))));
  }
  if (value && typeof value === 'object') {
    return h('dl', { class: 'kv' }, Object.entries(value).map(([k, v]) => [h('dt', {}, k), h('dd', {}, eventLinks(v, depth + 1))]));
  }
  if (typeof value === 'string' && UUID.test(value)) return h('a', { href: `/ui/events/${value}`, class: 'mono' }, value);
  return h('span', { class: 'mono' }, value === null ? 'null' : String(value));
}

function eventRef(e) {
  if (!e) return h('span', { class: 'muted' }, 'none');
  return h('span', {}, h('a', { href: `/ui/events/${e.event_id}`, 'data-testid': 'forensics-event' }, e.kind),
    ` (version ${e.version}, `, h('span', { class: 'mono' }, e.event_id), `, ${fmtTime(e.occurred_at)})`);
}

function changesTable(changes) {
  return h('table', {}, h('thead', {}, h('tr', {}, ['Change', 'JSON pointer', 'Before', 'After'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, changes.map((c) => h('tr', {}, h('td', {}, c.op), h('td', { class: 'mono' }, c.path),
      h('td', { class: 'mono' }, c.before === undefined ? '—' : JSON.stringify(c.before)),
      h('td', { class: 'mono' }, c.after === undefined ? '—' : JSON.stringify(c.after))))));
}

function blameView(b) {
  const r = b.report;
  return h('div', {},
    h('p', { 'data-testid': 'blame-summary' }, h('strong', {}, b.path), ` was ${b.op} by `, eventRef(b.event),
      b.node_id ? ` of node ${b.node_id}` : '', `; ${b.changes} event(s) of the run changed it.`),
    r ? h('p', {}, `Worker report: node ${r.node_id}, attempt ${r.attempt}, reported by ${r.reported_by}${r.worker ? ` (worker ${r.worker})` : ''}.`) : null,
    h('dl', { class: 'kv' },
      h('dt', {}, 'Value'), h('dd', {}, h('pre', {}, 'value' in b ? pretty(b.value) : '(removed)')),
      h('dt', {}, 'Before'), h('dd', {}, h('pre', {}, 'previous' in b ? pretty(b.previous) : '(absent)'))),
    h('h3', {}, `Causal path from the run's start (${b.causal_path_length} hops)`),
    h('ol', { 'data-testid': 'blame-path' }, b.causal_path.map((e) => h('li', {}, eventRef(e)))));
}

function bisectView(b) {
  if (!b.found) {
    return h('p', { 'data-testid': 'bisect-summary' }, `“${b.condition}” does not hold on the run's state now (${b.probes} probe(s)).`);
  }
  return h('div', {},
    h('p', { 'data-testid': 'bisect-summary' }, `“${b.condition}” holds from `, eventRef(b.event), b.node_id ? ` of node ${b.node_id}` : '', '.'),
    h('p', { class: 'muted' }, `${b.probes} of at most ${b.max_probes} probes over ${b.versions} events; versions probed: ${b.probed_versions.join(', ')}.`),
    b.changes.length ? changesTable(b.changes) : null);
}

function view(kind, answer) {
  // The fields this page knows drawn as prose; anything else falls back to the generic view.
  try {
    return kind === 'blame' ? blameView(answer) : bisectView(answer);
  } catch {
    return eventLinks(answer);
  }
}

function queryForm({ title, name, label, placeholder, help, testid, run }) {
  const id = `forensics-${name}`;
  const input = h('input', { id, name, size: 50, placeholder, 'data-testid': `${testid}-input` });
  const out = h('div', { 'data-testid': `${testid}-result`, 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', 'data-testid': `${testid}-form` },
    h('h2', {}, title), h('p', { class: 'muted' }, help),
    h('div', { class: 'row' }, h('label', { for: id }, label, input), h('button', { type: 'submit', 'data-testid': `${testid}-submit` }, 'Ask')),
    out);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(out);
    try { out.append(view(testid, await run(input.value))); } catch (err) { showProblem(out, err); }
  });
  return form;
}

export function forensicsPanel(container, executionId) {
  container.append(
    queryForm({
      title: 'Blame', name: 'path', label: 'JSON pointer', placeholder: '/draft', testid: 'blame',
      help: 'The event that last set this part of the state, the node and worker report behind it, and its causal path back to the run\'s start.',
      run: (path) => api(`/executions/${executionId}/blame`, { query: { path } }),
    }),
    queryForm({
      title: 'Bisect', name: 'condition', label: 'Condition', placeholder: 'hits >= 1', testid: 'bisect',
      help: 'The first event after which the condition holds on the state, found by binary search over the state as of each event.',
      run: (condition) => api(`/executions/${executionId}/bisect`, { query: { condition } }),
    }),
  );
}
