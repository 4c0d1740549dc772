// /ui/executions: the runs with status, progress, workflow, start time and cost; the API's filters
// and paging, kept in the page's URL; statuses refreshed every two seconds while any run goes on.
import { api, showProblem } from '../api.js';
import { h, clear, badge, fmtTime, fmtCost } from '../dom.js';
import { route, navigate } from '../router.js';
import { requireKey, workflowName, every, shortId, TERMINAL } from '../common.js';

const STATUSES = ['running', 'paused', 'waiting_for_approval', 'succeeded', 'failed', 'cancelled', 'timed_out'];
const LIVE_MS = 2000;

function toIso(local) { return local ? new Date(local).toISOString() : ''; }
function toLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function filters(query) {
  const select = (name, label, options, value) => h('label', {},
    label,
    h('select', { name, 'data-testid': `filter-${name}` },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
  const form = h('form', { class: 'row panel', 'data-testid': 'execution-filters', role: 'search' },
    select('status', 'Status', [['', 'any'], ...STATUSES.map((s) => [s, s])], query.status || ''),
    h('label', {}, 'Workflow id', h('input', { name: 'workflow_id', value: query.workflow_id || '', size: 36, 'data-testid': 'filter-workflow_id' })),
    h('label', {}, 'Created after', h('input', { type: 'datetime-local', name: 'created_after', value: toLocal(query.created_after), 'data-testid': 'filter-created_after' })),
    h('label', {}, 'Created before', h('input', { type: 'datetime-local', name: 'created_before', value: toLocal(query.created_before), 'data-testid': 'filter-created_before' })),
    select('sort', 'Sort by', [['created_at', 'created'], ['updated_at', 'updated'], ['status', 'status']], query.sort || 'created_at'),
    select('order', 'Order', [['desc', 'newest first'], ['asc', 'oldest first']], query.order || 'desc'),
    select('limit', 'Per page', [['20', '20'], ['50', '50'], ['100', '100']], query.limit || '20'),
    h('button', { type: 'submit', 'data-testid': 'apply-filters' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const [name, value] of data.entries()) {
      const v = name.startsWith('created_') ? toIso(value) : String(value).trim();
      if (v) next.set(name, v);
    }
    navigate(`/ui/executions?${next}`);
  });
  return form;
}

function progressCell(item) {
  const pct = Math.round(Number(item.progress) || 0);
  return [h('progress', { max: 100, value: pct, 'aria-label': `progress ${pct}%` }), ` ${pct}%`];
}

function row(item) {
  const tr = h('tr', { 'data-testid': 'execution-row', 'data-execution-id': item.id },
    h('td', {}, h('a', { href: `/ui/executions/${item.id}`, class: 'mono', 'data-testid': 'execution-link' }, shortId(item.id))),
    h('td', { 'data-col': 'workflow' }, h('span', { class: 'mono muted' }, shortId(item.workflow_id))),
    h('td', { 'data-col': 'status' }, badge(item.status)),
    h('td', { 'data-col': 'progress' }, progressCell(item)),
    h('td', { 'data-col': 'started' }, fmtTime(item.created_at)),
    h('td', { 'data-col': 'cost', class: 'mono' }, '…'));
  workflowName(item.workflow_id).then((name) => {
    clear(tr.querySelector('[data-col=workflow]')).append(h('a', { href: `/ui/executions?workflow_id=${item.workflow_id}` }, name));
  });
  fillCost(tr, item.id);
  return tr;
}

function fillCost(tr, id) {
  api(`/executions/${id}/metrics`).then(
    (m) => { tr.querySelector('[data-col=cost]').textContent = fmtCost(m.totals.cost_usd); },
    () => { tr.querySelector('[data-col=cost]').textContent = '—'; },
  );
}

async function render(container, _params, query) {
  container.append(h('h1', {}, 'Executions'));
  if (!requireKey(container)) return undefined;
  container.append(filters(query));
  const limit = Number(query.limit || 20);
  const offset = Number(query.offset || 0);
  const params = { ...query, limit, offset };
  const status = h('div', { 'aria-live': 'polite', class: 'muted' });
  const holder = h('div', {});
  container.append(status, holder);
  let page;
  try {
    page = await api('/executions', { query: params });
  } catch (err) {
    showProblem(holder, err);
    return undefined;
  }
  const body = h('tbody', {}, page.items.map(row));
  holder.append(h('table', { 'data-testid': 'executions-table' },
    h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Status', 'Progress', 'Started', 'Cost'].map((t) => h('th', { scope: 'col' }, t)))),
    body));
  if (!page.items.length) holder.append(h('p', { class: 'muted', 'data-testid': 'no-executions' }, 'No runs match.'));
  const pageUrl = (o) => `/ui/executions?${new URLSearchParams({ ...query, offset: String(o) })}`;
  holder.append(h('div', { class: 'pager' },
    h('button', { type: 'button', class: 'secondary', disabled: offset === 0, 'data-testid': 'page-prev', onclick: () => navigate(pageUrl(Math.max(0, offset - limit))) }, 'Previous'),
    h('span', { 'data-testid': 'page-info' }, page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : '0 runs'),
    h('button', { type: 'button', class: 'secondary', disabled: offset + limit >= page.total, 'data-testid': 'page-next', onclick: () => navigate(pageUrl(offset + limit)) }, 'Next')));
  // Live: re-read the same page and update status and progress in place while a run goes on.
  return every(LIVE_MS, async () => {
    const rows = [...body.querySelectorAll('tr[data-execution-id]')];
    if (!rows.some((tr) => !TERMINAL.has(tr.querySelector('[data-status]').dataset.status))) return;
    const fresh = await api('/executions', { query: params });
    const byId = new Map(fresh.items.map((i) => [i.id, i]));
    for (const tr of rows) {
      const item = byId.get(tr.dataset.executionId);
      if (!item) continue;
      const was = tr.querySelector('[data-status]').dataset.status;
      if (was !== item.status) {
        clear(tr.querySelector('[data-col=status]')).append(badge(item.status));
        fillCost(tr, item.id);
        status.textContent = `Run ${shortId(item.id)} is now ${item.status}.`;
      }
      clear(tr.querySelector('[data-col=progress]')).append(...progressCell(item));
    }
  }, (err) => { clear(status); showProblem(status, err); });
}

route('/ui/executions', render);
