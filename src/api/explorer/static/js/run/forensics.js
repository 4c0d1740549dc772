// Blame and bisect on the run's page: which event last set a part of the state
// (GET .../blame?path=<JSON pointer>), and the first event after which a condition holds
// (GET .../bisect?condition=). Event ids in the answer link to the event page.
import { api, showProblem } from '../api.js';
import { h, clear, pretty } from '../dom.js';

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
    try { out.append(eventLinks(await run(input.value))); } catch (err) { showProblem(out, err); }
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
