// The run's timeline with the API's filters: event types, node, time window; paged.
import { api, showProblem } from '../api.js';
import { h, clear, fmtTime } from '../dom.js';

// What GET /executions/{id}/timeline accepts in event_types (projections/timeline.py).
export const EVENT_TYPES = [
  'execution_start', 'node_scheduled', 'node_started', 'node_completed', 'node_skipped', 'node_retry',
  'error', 'decision', 'checkpoint_created', 'hitp_triggered', 'hitp_resumed', 'hitp_rejected',
  'execution_paused', 'execution_resumed', 'execution_end', 'llm_call', 'tool_call', 'thought',
];
const PAGE = 50;

function summarise(data) {
  const text = JSON.stringify(data);
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

export function timelinePanel(container, executionId) {
  const form = h('form', { class: 'panel', 'data-testid': 'timeline-filters' });
  const types = h('fieldset', { class: 'row' }, h('legend', {}, 'Event types (none ticked: all)'),
    EVENT_TYPES.map((t) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'event_types', value: t, 'data-testid': `timeline-type-${t}` }), ` ${t}`)));
  form.append(types, h('div', { class: 'row' },
    h('label', {}, 'Node', h('input', { name: 'node', 'data-testid': 'timeline-node', size: 16 })),
    h('label', {}, 'From', h('input', { type: 'datetime-local', step: 1, name: 'start_time' })),
    h('label', {}, 'To', h('input', { type: 'datetime-local', step: 1, name: 'end_time' })),
    h('button', { type: 'submit', 'data-testid': 'timeline-apply' }, 'Filter')));
  const out = h('div', { 'data-testid': 'timeline' });
  container.append(form, out);
  let offset = 0;

  async function load() {
    const data = new FormData(form);
    const query = { limit: PAGE, offset };
    const ticked = data.getAll('event_types');
    if (ticked.length) query.event_types = ticked.join(',');
    if (data.get('node')) query.node = String(data.get('node')).trim();
    for (const name of ['start_time', 'end_time']) {
      if (data.get(name)) query[name] = new Date(String(data.get(name))).toISOString();
    }
    clear(out);
    let page;
    try {
      page = await api(`/executions/${executionId}/timeline`, { query });
    } catch (err) {
      showProblem(out, err);
      return;
    }
    const counts = Object.entries(page.summary.counts_by_type).map(([k, v]) => `${k} ${v}`).join(', ');
    out.append(h('p', { class: 'muted', 'data-testid': 'timeline-summary' },
      `${page.summary.total_events} events${page.filtered ? ' match' : ''}: ${counts}`));
    out.append(h('table', { class: 'timeline' },
      h('thead', {}, h('tr', {}, ['Time', 'Type', 'Node', 'Data'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, page.timeline.map((r) => h('tr', { 'data-testid': 'timeline-row', 'data-event-type': r.event_type },
        h('td', {}, fmtTime(r.timestamp)),
        h('td', {}, h('a', { href: `/ui/events/${r.event_id}`, title: r.kind }, r.event_type)),
        h('td', {}, r.node_id || ''),
        h('td', { class: 'mono' }, summarise(r.data)))))));
    const total = page.summary.total_events;
    out.append(h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: offset === 0, 'data-testid': 'timeline-prev', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, 'Previous'),
      h('span', {}, total ? `${offset + 1}–${offset + page.timeline.length} of ${total}` : 'none'),
      h('button', { type: 'button', class: 'secondary', disabled: offset + PAGE >= total, 'data-testid': 'timeline-next', onclick: () => { offset += PAGE; load(); } }, 'Next')));
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); offset = 0; load(); });
  load();
  return { reload: load };
}
