// /ui/memory: memory search (keyword, vector or hybrid) with the API's filters; the query lives
// in the URL (?q=&mode=&types=&trajectory_id=&scope_id=&after=&before=&meta=&offset=), so a
// search can be linked and Back works. /ui/memory/{note|artifact}/{id}: an item's provenance
// walk: the node, turns, tool and LLM calls, approvals, sources and commands that produced it.
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime } from '../dom.js';
import { route, navigate } from '../router.js';
import { requireKey, shortId } from '../common.js';

const TYPES = ['note', 'artifact', 'turn', 'agent', 'message'];
const WALKED = new Set(['note', 'artifact']); // the items with a provenance walk
const MODES = ['hybrid', 'keyword', 'vector'];
const PAGE = 20;

function searchForm(query) {
  const types = new Set((query.types || '').split(',').filter(Boolean));
  const text = (name, label, attrs = {}) => h('label', { class: 'field' }, label,
    h('input', { name, value: query[name] || '', 'data-testid': `memory-${name}`, ...attrs }));
  const form = h('form', { class: 'panel', role: 'search', 'data-testid': 'memory-form' },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, 'Search memory',
        h('input', { name: 'q', size: 50, required: true, value: query.q || '', 'data-testid': 'memory-query' })),
      h('label', { class: 'field' }, 'Mode',
        h('select', { name: 'mode', 'data-testid': 'memory-mode' },
          MODES.map((m) => h('option', { value: m, selected: (query.mode || 'hybrid') === m }, m)))),
      h('button', { type: 'submit', 'data-testid': 'memory-search' }, 'Search')),
    h('fieldset', { class: 'row' }, h('legend', {}, 'Kinds (none ticked: all)'),
      TYPES.map((t) => h('label', {}, h('input', { type: 'checkbox', name: 'types', value: t, checked: types.has(t), 'data-testid': `memory-type-${t}` }), ` ${t}s`))),
    h('div', { class: 'row' },
      text('trajectory_id', 'Trajectory id', { size: 36 }), text('scope_id', 'Scope id', { size: 36 }),
      text('after', 'Created from', { type: 'date' }), text('before', 'Created before', { type: 'date' }),
      text('meta', 'Metadata key=value', { placeholder: 'topic=ducks' }),
      h('label', {}, h('input', { type: 'checkbox', name: 'superseded', checked: query.superseded === '1', 'data-testid': 'memory-superseded' }), ' include superseded')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const name of ['q', 'mode', 'trajectory_id', 'scope_id', 'after', 'before', 'meta']) {
      const value = form.elements[name].value.trim();
      if (value) q.set(name, value);
    }
    const ticked = [...form.querySelectorAll('input[name=types]:checked')].map((el) => el.value);
    if (ticked.length) q.set('types', ticked.join(','));
    if (form.elements.superseded.checked) q.set('superseded', '1');
    navigate(`/ui/memory?${q}`);
  });
  return form;
}

// The request body the API takes for what the URL asks.
function searchBody(query) {
  const filters = [];
  if (query.trajectory_id) filters.push({ field: 'trajectory_id', op: 'eq', value: query.trajectory_id });
  if (query.scope_id) filters.push({ field: 'scope_id', op: 'eq', value: query.scope_id });
  if (query.after) filters.push({ field: 'created_at', op: 'gte', value: `${query.after}T00:00:00Z` });
  if (query.before) filters.push({ field: 'created_at', op: 'lt', value: `${query.before}T00:00:00Z` });
  if (query.meta) {
    const cut = query.meta.indexOf('=');
    const key = cut < 0 ? query.meta : query.meta.slice(0, cut);
    filters.push({ field: `metadata.${key.trim()}`, op: 'eq', value: cut < 0 ? true : query.meta.slice(cut + 1).trim() });
  }
  return {
    query: query.q,
    mode: MODES.includes(query.mode) ? query.mode : 'hybrid',
    entity_types: (query.types || '').split(',').filter((t) => TYPES.includes(t)),
    filters,
    include_superseded: query.superseded === '1',
    limit: PAGE,
    offset: Number.parseInt(query.offset || '0', 10) || 0,
  };
}

function resultItem(r) {
  const walk = WALKED.has(r.entity_type)
    ? h('a', { href: `/ui/memory/${r.entity_type}/${r.entity_id}`, 'data-testid': 'memory-provenance-link' }, 'provenance walk')
    : h('span', { class: 'muted' }, `a ${r.entity_type} has no provenance walk`);
  const ranks = [r.keyword_rank ? `keyword #${r.keyword_rank}` : null, r.vector_rank ? `vector #${r.vector_rank}` : null].filter(Boolean).join(', ');
  return h('li', { class: 'panel', 'data-testid': 'memory-result', 'data-entity-id': r.entity_id },
    h('div', { class: 'row' }, h('strong', { 'data-testid': 'memory-result-title' }, r.title || '(untitled)'),
      h('span', { class: 'badge' }, r.entity_type), h('span', { class: 'muted' }, `score ${r.score.toFixed(4)}${ranks ? ` (${ranks})` : ''}`),
      r.superseded ? h('span', { class: 'badge st-skipped' }, 'superseded') : null),
    h('p', {}, r.snippet), h('div', { class: 'row muted' }, `created ${fmtTime(r.created_at)}`, walk));
}

async function renderSearch(container, params, query) {
  container.append(h('h1', {}, 'Memory'));
  if (!requireKey(container)) return;
  container.append(searchForm(query));
  const out = h('section', { 'data-testid': 'memory-results', 'aria-live': 'polite' });
  container.append(out);
  if (!query.q) { out.append(h('p', { class: 'muted' }, 'Search notes, artifacts, turns, agents and messages.')); return; }
  const body = searchBody(query);
  let found;
  try { found = await api('/search', { method: 'POST', body }); } catch (err) { showProblem(out, err); return; }
  out.append(h('p', { 'data-testid': 'memory-total', 'data-total': found.total }, `${found.total} results (${found.mode})`));
  out.append(h('ol', { class: 'plain' }, found.results.map(resultItem)));
  const pageLink = (offset, text, testid) => {
    const q = new URLSearchParams(query);
    q.set('offset', String(offset));
    return h('a', { href: `/ui/memory?${q}`, 'data-testid': testid }, text);
  };
  out.append(h('nav', { class: 'pager', 'aria-label': 'result pages' },
    body.offset > 0 ? pageLink(Math.max(0, body.offset - PAGE), 'Previous', 'memory-prev') : null,
    body.offset + PAGE < found.total ? pageLink(body.offset + PAGE, 'Next', 'memory-next') : null));
}

function section(title, testid, items, line) {
  if (!items || !items.length) return null;
  return h('section', { class: 'panel', 'data-testid': testid }, h('h2', {}, `${title} (${items.length})`),
    h('ul', {}, items.map((item) => h('li', {}, line(item)))));
}

const ev = (id) => h('a', { href: `/ui/events/${id}`, class: 'mono', 'data-testid': 'event-link' }, shortId(id));
const runNode = (execution, node) => (execution
  ? h('a', { href: `/ui/executions/${execution}` }, `run ${shortId(execution)}${node ? ` node ${node}` : ''}`) : null);

async function renderProvenance(container, params) {
  if (!requireKey(container)) return;
  const { type, id } = params;
  if (!WALKED.has(type)) throw new Error(`no provenance walk for a ${type}`);
  const p = await api(`/${type}s/${id}/provenance`);
  const item = p.item;
  const parts = [h('h1', {}, `Provenance of ${type} `, h('span', { class: 'mono' }, id)),
    h('div', { class: 'panel', 'data-testid': 'provenance-item' }, h('dl', { class: 'kv' },
      h('dt', {}, 'created by'), h('dd', {}, `${item.actor} at ${fmtTime(item.created_at)}`),
      h('dt', {}, 'created by event'), h('dd', {}, ev(item.created_event_id)),
      h('dt', {}, 'produced in'), h('dd', {}, runNode(item.execution_id, item.node_id) || '—'),
      h('dt', {}, 'supersedes'), h('dd', {}, item.supersedes ? h('a', { href: `/ui/memory/${type}/${item.supersedes.id}` }, shortId(item.supersedes.id)) : '—'),
      h('dt', {}, 'superseded by'), h('dd', {}, item.superseded_by ? h('a', { href: `/ui/memory/${type}/${item.superseded_by}` }, shortId(item.superseded_by)) : '—'))),
    p.truncated ? h('p', { class: 'notice', 'data-testid': 'provenance-truncated' }, `The walk stopped at ${p.limit} events or ${p.max_depth} hops.`) : null,
    section('Node', 'provenance-node', p.node ? [p.node] : [], (n) => [runNode(n.execution_id, n.node_id), ` attempt ${n.attempt}, ${n.kind}${n.status ? `, now ${n.status}` : ''} `, ev(n.event_id)]),
    section('Turns', 'provenance-turns', p.turns, (t) => [`${t.kind}${t.role ? ` (${t.role})` : ''} #${t.sequence ?? '?'} by ${t.actor} `, ev(t.event_id)]),
    section('Tool calls', 'provenance-tools', p.tool_calls, (t) => [`${t.tool}${t.error ? ` failed: ${t.error}` : ''} `, runNode(t.execution_id, t.node_id), ' ', ev(t.event_id)]),
    section('LLM calls', 'provenance-llm', p.llm_calls, (c) => [`${c.model}: ${c.input_tokens} in, ${c.output_tokens} out, $${c.cost_usd} `, ev(c.event_id)]),
    section('Approvals', 'provenance-approvals', p.approvals, (a) => [`${a.approved ? 'approved' : 'rejected'} by ${a.answered_by}${a.feedback ? `: ${a.feedback}` : ''} `, ev(a.event_id)]),
    section('Sources', 'provenance-sources', p.sources, (s) => [WALKED.has(s.entity_type)
      ? h('a', { href: `/ui/memory/${s.entity_type}/${s.id}` }, `${s.entity_type} ${shortId(s.id)}`) : `${s.entity_type} ${shortId(s.id)}`,
    s.created_event_id ? [' ', ev(s.created_event_id)] : ' (no longer there)']),
    section('Commands at the root', 'provenance-commands', p.command, (c) => [`${c.kind} (${c.reason.replace('_', ' ')}) by ${c.actor} `, ev(c.event_id)]),
    section('Events walked, nearest first', 'provenance-events', p.events, (e) => [`${e.distance} hops: ${e.event.kind} `, ev(e.event.event_id)]),
    h('details', {}, h('summary', {}, 'The whole answer'), h('pre', {}, pretty(p)))];
  container.append(...parts.filter(Boolean));
}

route('/ui/memory', renderSearch);
route('/ui/memory/:type/:id', renderProvenance);
