// The run's approvals: each pending one with the state the approver decides on, and approve or
// reject with feedback (POST /approvals/{id}/respond, sending the state hash that was shown).
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime, badge } from '../dom.js';

function answerForm(approval, shown, notice, onAnswered) {
  const id = `feedback-${approval.approval_id}`;
  const feedback = h('textarea', { id, rows: 3, 'data-testid': 'approval-feedback' });
  const result = h('div', { 'aria-live': 'polite' });
  const send = async (action) => {
    clear(result);
    try {
      await api(`/approvals/${approval.approval_id}/respond`, {
        method: 'POST',
        body: { action, feedback: feedback.value, state_hash: shown.hash },
      });
      // Told outside the form, which the reload that follows replaces.
      clear(notice).append(h('p', { 'data-testid': 'approval-answered' },
        `${action === 'approve' ? 'Approved' : 'Rejected'}: ${approval.prompt || approval.node_id}.`));
      onAnswered();
    } catch (err) { showProblem(result, err); }
  };
  return h('div', { class: 'panel', 'data-testid': 'approval-pending', 'data-approval-id': approval.approval_id },
    h('h3', {}, `${approval.prompt || 'Approval'} (node ${approval.node_id})`),
    h('p', { class: 'muted' }, `Requested ${fmtTime(approval.requested_at)}. The state you decide on (hash `,
      h('span', { class: 'mono' }, shown.hash.slice(0, 12)), '…):'),
    h('pre', { 'data-testid': 'approval-state' }, pretty(shown.state)),
    h('label', { for: id, class: 'field' }, 'Feedback', feedback),
    h('div', { class: 'row' },
      h('button', { type: 'button', 'data-testid': 'approve', onclick: () => send('approve') }, 'Approve'),
      h('button', { type: 'button', class: 'secondary', 'data-testid': 'reject', onclick: () => send('reject') }, 'Reject')),
    result);
}

export function approvalsPanel(container, executionId, { onAnswered }) {
  const out = h('div', { 'data-testid': 'approvals' });
  const notice = h('div', { 'aria-live': 'polite' });
  container.append(notice, out);
  async function load() {
    let list; let run;
    try {
      [list, run] = await Promise.all([api(`/executions/${executionId}/approvals`), api(`/executions/${executionId}`)]);
    } catch (err) { clear(out); showProblem(out, err); return; }
    clear(out);
    if (!list.items.length) { out.append(h('p', { class: 'muted' }, 'This run has asked for no approval.')); return; }
    const shown = { hash: list.current_state_hash, state: run.state };
    for (const a of list.items.filter((i) => i.status === 'pending')) {
      out.append(answerForm(a, shown, notice, () => { load(); onAnswered(); }));
    }
    out.append(h('table', {},
      h('thead', {}, h('tr', {}, ['Node', 'Prompt', 'Status', 'Requested', 'Answered by', 'Feedback'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.items.map((a) => h('tr', { 'data-testid': 'approval-row', 'data-status': a.status },
        h('td', {}, a.node_id), h('td', {}, a.prompt || ''), h('td', {}, badge(a.status)),
        h('td', {}, fmtTime(a.requested_at)), h('td', {}, a.answered_by || ''), h('td', {}, a.feedback || ''))))));
  }
  load();
  return { reload: load };
}
