// The run's checkpoints: pick two to see their diff (POST .../checkpoints/compare), or fork a
// branch from one with an edited state (POST .../checkpoints/{cp}/resume).
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime, badge } from '../dom.js';

function valueCell(value) {
  return h('td', {}, value === undefined ? h('span', { class: 'muted' }, '—') : h('pre', {}, pretty(value)));
}

function diffView(cmp) {
  const keyList = (kind, keys) => h('div', {},
    h('h3', { class: `diff-${kind}` }, `${kind} keys (${keys.length})`),
    keys.length
      ? h('ul', { 'data-testid': `diff-${kind}-keys` }, keys.map((k) => h('li', { class: 'mono', 'data-testid': 'diff-key', 'data-kind': kind }, k)))
      : h('p', { class: 'muted', 'data-testid': `diff-${kind}-keys` }, 'none'));
  return h('div', { class: 'panel', 'data-testid': 'checkpoint-diff' },
    h('h2', {}, `Diff: version ${cmp.a.version} → version ${cmp.b.version}`),
    h('div', { class: 'row top' }, keyList('added', cmp.added_keys), keyList('removed', cmp.removed_keys), keyList('modified', cmp.modified_keys)),
    h('table', {},
      h('thead', {}, h('tr', {}, ['Change', 'JSON pointer', 'Before', 'After'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, cmp.changes.map((c) => {
        const kind = { add: 'added', remove: 'removed', replace: 'modified' }[c.op] || c.op;
        return h('tr', { 'data-testid': 'diff-row', 'data-op': c.op, 'data-path': c.path },
          h('td', { class: `diff-${kind}` }, h('strong', {}, kind)),
          h('td', { class: 'mono' }, c.path),
          valueCell(c.before), valueCell(c.after));
      }))));
}

function changedKeys(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) if (JSON.stringify(before[k]) !== JSON.stringify(v)) out[k] = v;
  return out;
}

async function forkForm(holder, executionId, cp, onForked) {
  clear(holder);
  let full;
  try {
    full = await api(`/executions/${executionId}/checkpoints/${cp.checkpoint_id}`);
  } catch (err) { showProblem(holder, err); return; }
  const name = h('input', { id: 'fork-name', name: 'name', 'data-testid': 'fork-name', value: `branch from #${cp.sequence}` });
  const hypothesis = h('input', { id: 'fork-hypothesis', name: 'hypothesis', size: 50, 'data-testid': 'fork-hypothesis' });
  const state = h('textarea', { id: 'fork-state', rows: 12, 'data-testid': 'fork-state', spellcheck: 'false' }, pretty(full.state));
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', 'data-testid': 'fork-form' },
    h('h2', {}, `Fork from checkpoint #${cp.sequence}${cp.node_id ? ` (after ${cp.node_id})` : ''}`),
    h('div', { class: 'row' },
      h('label', { for: 'fork-name' }, 'Branch name', name),
      h('label', { for: 'fork-hypothesis' }, 'Hypothesis', hypothesis)),
    h('label', { for: 'fork-state', class: 'field' }, 'State (JSON; changed top-level keys are merged into the checkpoint\'s state)', state),
    h('button', { type: 'submit', 'data-testid': 'fork-submit' }, 'Fork'), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(result);
    let edited;
    try { edited = JSON.parse(state.value); } catch (err) {
      showProblem(result, { message: `The state is not valid JSON: ${err.message}` });
      return;
    }
    if (!edited || typeof edited !== 'object' || Array.isArray(edited)) {
      showProblem(result, { message: 'The state must be a JSON object.' });
      return;
    }
    const body = { name: name.value.trim() || undefined, hypothesis: hypothesis.value.trim() || undefined, modified_state: changedKeys(full.state, edited) };
    try {
      const branch = await api(`/executions/${executionId}/checkpoints/${cp.checkpoint_id}/resume`, { method: 'POST', body });
      result.append(h('p', { 'data-testid': 'fork-created' }, 'Branch started: ',
        h('a', { href: `/ui/executions/${branch.id}`, class: 'mono' }, branch.id), ' ', badge(branch.status)));
      onForked(branch);
    } catch (err) { showProblem(result, err); }
  });
  holder.append(form);
  state.focus();
}

export function checkpointsPanel(container, executionId, { onForked }) {
  const list = h('div', { 'data-testid': 'checkpoints' });
  const diff = h('div', {});
  const fork = h('div', {});
  container.append(list, diff, fork);

  async function load() {
    clear(list);
    let page;
    try {
      page = await api(`/executions/${executionId}/checkpoints`, { query: { limit: 1000 } });
    } catch (err) { showProblem(list, err); return; }
    const items = [...page.items].sort((a, b) => a.sequence - b.sequence);
    const compare = h('button', { type: 'button', disabled: true, 'data-testid': 'checkpoint-compare' }, 'Compare the two picked');
    const picks = () => [...list.querySelectorAll('input[data-testid=checkpoint-pick]:checked')];
    const table = h('table', {},
      h('thead', {}, h('tr', {}, ['Pick', '#', 'Type', 'After node', 'Recoverable', 'Created', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((cp) => h('tr', { 'data-testid': 'checkpoint-row', 'data-checkpoint-id': cp.checkpoint_id },
        h('td', {}, h('input', {
          type: 'checkbox', 'data-testid': 'checkpoint-pick', value: cp.checkpoint_id, 'aria-label': `pick checkpoint ${cp.sequence}`,
          onchange: () => {
            const picked = picks();
            if (picked.length > 2) picked.filter((i) => i !== document.activeElement)[0].checked = false;
            compare.disabled = picks().length !== 2;
          },
        })),
        h('td', {}, String(cp.sequence)),
        h('td', {}, cp.type + (cp.label ? ` (${cp.label})` : '')),
        h('td', {}, cp.node_id || ''),
        h('td', {}, cp.is_recoverable ? 'yes' : 'no'),
        h('td', {}, fmtTime(cp.created_at)),
        h('td', { class: 'mono', title: cp.state_hash }, `${cp.state_size_bytes} B`),
        h('td', {}, h('button', { type: 'button', class: 'secondary', 'data-testid': 'checkpoint-fork', onclick: () => forkForm(fork, executionId, cp, onForked) }, 'Fork…'))))));
    compare.addEventListener('click', async () => {
      const [a, b] = picks().map((i) => items.find((cp) => cp.checkpoint_id === i.value)).sort((x, y) => x.sequence - y.sequence);
      clear(diff);
      try {
        const cmp = await api(`/executions/${executionId}/checkpoints/compare`, { method: 'POST', body: { checkpoint_a: a.checkpoint_id, checkpoint_b: b.checkpoint_id } });
        diff.append(diffView(cmp));
      } catch (err) { showProblem(diff, err); }
    });
    list.append(items.length ? table : h('p', { class: 'muted' }, 'No checkpoints yet.'), h('div', { class: 'pager' }, compare));
  }
  load();
  return { reload: load };
}
