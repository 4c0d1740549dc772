// One node of a run: its step (status, attempts, cost, times), each attempt's events, output,
// telemetry (LLM and tool calls, thoughts) and errors, from the steps, timeline and metrics APIs.
import { api, showProblem } from '../api.js';
import { h, clear, pretty, fmtTime, fmtCost, badge } from '../dom.js';

const TELEMETRY = new Set(['llm_call', 'tool_call', 'thought']);
const ERRORS = new Set(['error', 'node_retry', 'hitp_rejected']);

function keyValues(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function telemetryLine(item) {
  const d = item.data || {};
  if (item.event_type === 'llm_call') {
    return `${d.model || 'model'}: ${d.input_tokens || 0} in / ${d.output_tokens || 0} out tokens, ${fmtCost(d.cost_usd || 0)}${d.duration_ms ? `, ${d.duration_ms} ms` : ''}`;
  }
  if (item.event_type === 'tool_call') return `${d.tool || 'tool'}(${d.arguments ? JSON.stringify(d.arguments) : ''})${d.duration_ms ? ` ${d.duration_ms} ms` : ''}`;
  return d.text || d.content || JSON.stringify(d);
}

// Draws the node's details into `container`; asOf (a version) limits the events to that point.
export async function nodeDetail(container, executionId, nodeId, asOf) {
  clear(container);
  container.append(h('h2', { 'data-testid': 'node-detail-title', tabindex: -1 }, `Node ${nodeId}`));
  let steps; let timeline; let metrics;
  try {
    [steps, timeline, metrics] = await Promise.all([
      api(`/executions/${executionId}/steps`, { query: { limit: 1000 } }),
      api(`/executions/${executionId}/timeline`, { query: { node: nodeId, limit: 1000, as_of: asOf || undefined } }),
      api(`/executions/${executionId}/metrics`),
    ]);
  } catch (err) {
    showProblem(container, err);
    return;
  }
  const step = steps.items.find((s) => s.node_id === nodeId) || {};
  const m = metrics.by_node.find((n) => n.node_id === nodeId);
  container.append(keyValues([
    ['Status', step.status ? badge(step.status) : null],
    ['Type', `${step.type || ''}${step.agent_type ? ` (${step.agent_type})` : ''}`],
    ['Attempts', String(step.attempts ?? 0)],
    ['Cost', fmtCost(m ? m.cost_usd : step.cost_usd)],
    ['Tokens', m ? `${m.input_tokens} in / ${m.output_tokens} out, ${m.llm_calls} LLM calls` : null],
    ['Scheduled', fmtTime(step.scheduled_at)],
    ['Started', fmtTime(step.started_at)],
    ['Completed', fmtTime(step.completed_at)],
  ]));
  if (asOf) container.append(h('p', { class: 'muted' }, `Events up to event ${asOf}.`));
  const rows = timeline.timeline;
  const output = [...rows].reverse().find((r) => r.event_type === 'node_completed');
  container.append(h('h3', {}, 'Output'),
    output ? h('pre', { 'data-testid': 'node-output' }, pretty(output.data.output)) : h('p', { class: 'muted' }, 'No output yet.'));
  const errors = rows.filter((r) => ERRORS.has(r.event_type));
  container.append(h('h3', {}, `Errors (${errors.length})`),
    errors.length ? h('ul', { 'data-testid': 'node-errors' }, errors.map((r) => h('li', {},
      badge(r.event_type === 'node_retry' ? 'retrying' : 'failed'),
      ` attempt ${r.data.attempt ?? '?'}: ${r.data.error || r.data.feedback || ''} `,
      h('span', { class: 'muted' }, fmtTime(r.timestamp))))) : h('p', { class: 'muted' }, 'None.'));
  const telemetry = rows.filter((r) => TELEMETRY.has(r.event_type));
  container.append(h('h3', {}, `Telemetry (${telemetry.length})`),
    telemetry.length ? h('ul', { 'data-testid': 'node-telemetry' }, telemetry.map((r) => h('li', {},
      h('strong', {}, r.event_type.replace('_', ' ')), ': ', telemetryLine(r), ' ',
      h('span', { class: 'muted' }, fmtTime(r.timestamp))))) : h('p', { class: 'muted' }, 'None recorded.'));
  // Attempts: the node's lifecycle events grouped by their attempt number.
  const attempts = new Map();
  for (const r of rows) {
    if (TELEMETRY.has(r.event_type)) continue;
    const n = r.data.attempt ?? 0;
    if (!attempts.has(n)) attempts.set(n, []);
    attempts.get(n).push(r);
  }
  container.append(h('h3', {}, 'Attempts'), h('table', { 'data-testid': 'node-attempts' },
    h('thead', {}, h('tr', {}, ['Attempt', 'Event', 'Time', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, [...attempts.entries()].flatMap(([n, events]) => events.map((r) => h('tr', {},
      h('td', {}, n ? String(n) : ''),
      h('td', {}, h('a', { href: `/ui/events/${r.event_id}` }, r.event_type)),
      h('td', {}, fmtTime(r.timestamp)),
      h('td', { class: 'mono' }, r.data.worker ? `worker ${r.data.worker}` : r.data.error || '')))))));
}
