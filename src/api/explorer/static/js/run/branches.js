// The branch tree of a run (GET /executions/{id}/branches) and a comparison of two branches
// (GET /branches/compare): common ancestor, where they diverged, per-node differences.
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime, fmtCost, badge } from '../dom.js';
import { shortId } from '../common.js';

function branchItem(branch, currentId) {
  const label = branch.name || (branch.parent_execution_id ? 'branch' : 'original run');
  return h('li', { 'data-testid': 'branch', 'data-execution-id': branch.execution_id },
    h('label', {}, h('input', { type: 'radio', name: 'branch-a', value: branch.execution_id, 'aria-label': `compare ${label} as A`, 'data-testid': 'branch-pick-a' }), ' A '),
    h('label', {}, h('input', { type: 'radio', name: 'branch-b', value: branch.execution_id, 'aria-label': `compare ${label} as B`, 'data-testid': 'branch-pick-b' }), ' B '),
    branch.execution_id === currentId ? h('strong', {}, label) : h('a', { href: `/ui/executions/${branch.execution_id}` }, label),
    ' ', h('span', { class: 'mono muted' }, shortId(branch.execution_id)), ' ',
    branch.status ? badge(branch.status) : '',
    branch.mode ? h('span', { class: 'muted' }, ` ${branch.mode}`) : '',
    branch.hypothesis ? h('em', {}, ` “${branch.hypothesis}”`) : '',
    h('span', { class: 'muted' }, ` ${fmtTime(branch.created_at)}`),
    branch.children && branch.children.length ? h('ul', {}, branch.children.map((c) => branchItem(c, currentId))) : null);
}

function eventList(events) {
  return h('ul', {}, events.map((e) => h('li', {}, h('a', { href: `/ui/events/${e.event_id}`, class: 'mono' }, e.kind),
    ` v${e.version} of `, h('span', { class: 'mono' }, shortId(e.execution_id)), ` ${fmtTime(e.occurred_at)}`)));
}

function comparisonView(cmp) {
  const side = (s) => h('tr', {}, h('td', {}, s.name || shortId(s.branch_id)), h('td', {}, badge(s.final_status)),
    h('td', {}, `${s.completed_steps} / ${s.total_steps}`), h('td', {}, fmtCost(s.total_cost)));
  const common = cmp.common_ancestors;
  const d = cmp.final_state_diff;
  return h('div', { class: 'panel', 'data-testid': 'branch-comparison' },
    h('h2', {}, 'Branch comparison'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Branch', 'Final status', 'Steps done', 'Cost'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, side(cmp.branch_a), side(cmp.branch_b))),
    h('h3', {}, `Common ancestors (${common.length})`),
    common.length ? h('p', { 'data-testid': 'common-ancestor' }, 'Latest: ', eventList(common.slice(-1))) : h('p', { class: 'muted' }, 'None.'),
    h('h3', {}, 'Divergence'),
    h('div', { 'data-testid': 'divergence' }, Object.entries(cmp.diverged_at).map(([branch, events]) => h('div', {},
      h('span', { class: 'mono' }, shortId(branch)), ' first differs at:', eventList(events)))),
    h('h3', {}, `Per-node differences (${cmp.steps.filter((s) => s.differs.length).length})`),
    h('table', { 'data-testid': 'branch-steps' },
      h('thead', {}, h('tr', {}, ['Node', 'Differs in', 'A', 'B'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, cmp.steps.map((s) => h('tr', { 'data-testid': 'branch-step', 'data-node-id': s.node_id, 'data-differs': s.differs.join(',') },
        h('td', {}, s.node_id), h('td', {}, s.differs.join(', ') || 'same'),
        h('td', {}, badge(s.a.status), ` ×${s.a.attempts} ${fmtCost(s.a.cost_usd)}`, h('pre', {}, pretty(s.a.output))),
        h('td', {}, badge(s.b.status), ` ×${s.b.attempts} ${fmtCost(s.b.cost_usd)}`, h('pre', {}, pretty(s.b.output))))))),
    h('h3', {}, 'Final state'),
    h('p', {}, `added: ${d.added_keys.join(', ') || '—'}; removed: ${d.removed_keys.join(', ') || '—'}; modified: ${d.modified_keys.join(', ') || '—'}`));
}

export function branchesPanel(container, executionId) {
  const tree = h('div', { class: 'tree', 'data-testid': 'branch-tree' });
  const result = h('div', {});
  const compare = h('button', { type: 'button', 'data-testid': 'branch-compare' }, 'Compare A with B');
  container.append(tree, h('div', { class: 'pager' }, compare), result);
  compare.addEventListener('click', async () => {
    const a = tree.querySelector('input[name=branch-a]:checked');
    const b = tree.querySelector('input[name=branch-b]:checked');
    clear(result);
    if (!a || !b) { showProblem(result, { message: 'Pick a branch as A and another as B.' }); return; }
    try {
      result.append(comparisonView(await api('/branches/compare', { query: { a: a.value, b: b.value } })));
    } catch (err) { showProblem(result, err); }
  });
  async function load() {
    let found;
    try {
      found = await api(`/executions/${executionId}/branches`);
    } catch (err) { clear(tree); showProblem(tree, err); return; }
    clear(tree).append(h('p', { class: 'muted' }, `${found.total} run(s) in this tree.`), h('ul', {}, branchItem(found.root, executionId)));
  }
  load();
  return { reload: load };
}
