// /ui/executions/{id}: one run. Header, then tabs: graph with time slider and node details,
// timeline, checkpoints (diff, fork), approvals, branches, blame and bisect.
import { api, showProblem } from '../api.js';
import { h, clear, fmtTime, fmtCost, badge } from '../dom.js';
import { route } from '../router.js';
import { requireKey, workflowName, shortId } from '../common.js';
import { liveGraph } from '../run/live_graph.js';
import { nodeDetail } from '../run/node_detail.js';
import { timelinePanel } from '../run/timeline.js';
import { checkpointsPanel } from '../run/checkpoints.js';
import { approvalsPanel } from '../run/approvals.js';
import { branchesPanel } from '../run/branches.js';
import { forensicsPanel } from '../run/forensics.js';

const TABS = [
  ['graph', 'Graph and state'], ['timeline', 'Timeline'], ['checkpoints', 'Checkpoints'],
  ['approvals', 'Approvals'], ['branches', 'Branches'], ['forensics', 'Blame and bisect'],
];

function header(execution, workflow) {
  const status = h('span', { 'data-testid': 'run-status' }, badge(execution.status));
  const progress = h('span', { 'data-testid': 'run-progress' }, `${Math.round(execution.progress)}%`);
  const cost = h('span', { 'data-testid': 'run-cost' }, '…');
  const pending = h('span', { 'data-testid': 'run-pending-approvals' });
  const el = h('div', { class: 'panel' },
    h('h1', {}, 'Run ', h('span', { class: 'mono' }, execution.id)),
    h('div', { class: 'row' },
      h('span', {}, 'Workflow ', h('a', { href: `/ui/executions?workflow_id=${execution.workflow_id}` }, workflow), ` v${execution.workflow_version}`),
      status, progress, h('span', {}, 'Cost ', cost), h('span', {}, `Started ${fmtTime(execution.created_at)}`), pending),
    execution.fork ? h('p', {}, `A ${execution.fork.mode} branch${execution.fork.name ? ` “${execution.fork.name}”` : ''} of `,
      h('a', { href: `/ui/executions/${execution.fork.execution_id}` }, shortId(execution.fork.execution_id)), ' from event ',
      h('a', { href: `/ui/events/${execution.fork.from_event_id}`, class: 'mono' }, shortId(execution.fork.from_event_id))) : null,
    execution.error ? h('p', { class: 'problem-detail' }, `Error: ${execution.error}`) : null);
  const update = (ex) => {
    clear(status).append(badge(ex.status));
    progress.textContent = `${Math.round(ex.progress)}%`;
    pending.textContent = ex.pending_approvals.length ? `${ex.pending_approvals.length} approval(s) pending` : '';
    api(`/executions/${ex.id}/metrics`).then((m) => { cost.textContent = fmtCost(m.totals.cost_usd); }, () => { cost.textContent = '—'; });
  };
  update(execution);
  return { el, update };
}

async function render(container, params, query) {
  if (!requireKey(container)) return undefined;
  const id = params.id;
  const execution = await api(`/executions/${id}`);
  let workflow;
  let unreadable = null;
  try {
    workflow = await api(`/workflows/${execution.workflow_id}`, { query: { version: execution.workflow_version } });
  } catch (err) {
    // The run stays explorable without its workflow (say, deleted): its nodes, without edges.
    unreadable = err;
    workflow = { name: await workflowName(execution.workflow_id), definition: { nodes: Object.keys(execution.nodes).map((nodeId) => ({ id: nodeId })), edges: [] } };
  }
  const head = header(execution, workflow.name || execution.workflow_id);
  container.append(head.el);
  if (unreadable) showProblem(head.el, unreadable);

  const tabList = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'run views' });
  const sections = {};
  const panels = {};
  container.append(tabList);
  for (const [key, label] of TABS) {
    sections[key] = h('section', { role: 'tabpanel', id: `panel-${key}`, 'aria-label': label, 'data-testid': `panel-${key}`, hidden: true });
    tabList.append(h('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `panel-${key}`, 'aria-selected': 'false', 'data-testid': `tab-${key}`, onclick: () => open(key) }, label));
    container.append(sections[key]);
  }
  const detail = h('section', { class: 'panel', 'data-testid': 'node-detail', 'aria-label': 'node details' },
    h('p', { class: 'muted' }, 'Pick a node in the graph (click it, or Tab to it and press Enter; arrow keys move along the edges) to see its attempts, output, telemetry and errors.'));
  let graph = null;
  const init = {
    graph: (el) => {
      graph = liveGraph(el, {
        id, execution, definition: workflow.definition, side: detail,
        onSelect: (nodeId, asOf) => nodeDetail(detail, id, nodeId, asOf).then(() => detail.querySelector('h2').focus()),
        onChange: (ex) => { head.update(ex); },
      });
      return graph;
    },
    timeline: (el) => timelinePanel(el, id),
    checkpoints: (el) => checkpointsPanel(el, id, { onForked: () => { if (panels.branches) panels.branches.reload(); } }),
    approvals: (el) => approvalsPanel(el, id, { onAnswered: () => { if (graph) graph.refresh(); } }),
    branches: (el) => branchesPanel(el, id),
    forensics: (el) => forensicsPanel(el, id),
  };
  function open(key) {
    for (const [k] of TABS) {
      sections[k].hidden = k !== key;
      document.getElementById(`tab-${k}`).setAttribute('aria-selected', String(k === key));
    }
    if (!panels[key]) {
      try { panels[key] = init[key](sections[key]) || {}; } catch (err) { showProblem(sections[key], err); panels[key] = {}; }
    } else if (panels[key].reload) {
      panels[key].reload();
    }
    const url = new URL(location.href);
    url.searchParams.set('tab', key);
    history.replaceState(null, '', url);
  }
  open(TABS.some(([k]) => k === query.tab) ? query.tab : 'graph');
  return () => { if (graph) graph.destroy(); };
}

route('/ui/executions/:id', render);
