// The run's graph, the time slider over its events and the state panel. At the slider's right
// end the view follows the run live (the fetch-based SSE feed); anywhere else it shows the run
// as of that event (GET /executions/{id}/state?as_of=<version>).
import { api, showProblem, streamEvents } from '../api.js';
import { h, clear, pretty, fmtTime, badge } from '../dom.js';
import { renderDag } from '../graph.js';
import { TERMINAL } from '../common.js';

function graphModel(definition, statuses) {
  const nodes = definition.nodes.map((n) => ({
    id: n.id,
    label: n.name || n.id,
    state: statuses[n.id] || 'pending',
    title: `${n.id} (${n.type || 'task'}${n.agent_type ? `: ${n.agent_type}` : ''})`,
  }));
  const edges = (definition.edges || []).map((e) => [e.from, e.to]);
  return { nodes, edges };
}

// ctx: {id, execution, definition, side (drawn above the state), onSelect(nodeId, asOfVersion|null), onChange(execution)}
export function liveGraph(container, ctx) {
  let execution = ctx.execution;
  let following = true;
  const graphBox = h('div', { 'data-testid': 'run-graph' });
  const slider = h('input', {
    type: 'range', id: 'as-of', min: 1, max: execution.version, value: execution.version, step: 1,
    'data-testid': 'as-of-slider', 'aria-describedby': 'as-of-text',
  });
  const text = h('output', { id: 'as-of-text', for: 'as-of', 'data-testid': 'as-of-text', 'aria-live': 'polite' });
  const liveButton = h('button', { type: 'button', class: 'secondary', 'data-testid': 'as-of-live' }, 'Follow live');
  const statePanel = h('pre', { 'data-testid': 'state-panel', tabindex: 0, 'aria-label': 'state' });
  const stateMeta = h('div', { class: 'muted', 'data-testid': 'state-meta' });
  const problems = h('div', {});
  container.append(
    h('div', { class: 'panel' },
      h('div', { class: 'slider' },
        h('label', { for: 'as-of' }, 'Event'), slider, liveButton),
      text, problems),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel', 'aria-label': 'graph' }, h('h2', {}, 'Graph'), graphBox),
      h('div', {}, ctx.side || null,
        h('section', { class: 'panel', 'aria-label': 'state' }, h('h2', {}, 'State'), stateMeta, statePanel))),
  );
  const model = graphModel(ctx.definition, execution.nodes);
  const dag = renderDag(graphBox, {
    nodes: model.nodes,
    edges: model.edges,
    onSelect: (nodeId) => ctx.onSelect(nodeId, following ? null : Number(slider.value)),
  });

  function show(view, asOf) {
    for (const [nodeId, status] of Object.entries(view.nodes || {})) dag.update(nodeId, status);
    statePanel.textContent = pretty(view.state);
    clear(stateMeta).append('Run ', badge(view.status), ` · ${Math.round(view.progress)}% · version ${view.version}`);
    if (asOf) {
      stateMeta.append(' · as of event ', h('span', { class: 'mono', 'data-testid': 'as-of-event' }, asOf.event_id || ''), ` at ${fmtTime(asOf.occurred_at)}`);
    }
    text.textContent = following
      ? `Live: event ${view.version} of ${execution.version}`
      : `Event ${slider.value} of ${execution.version}${asOf ? ` (${fmtTime(asOf.occurred_at)})` : ''}`;
    liveButton.disabled = following;
  }

  let pending = 0;
  async function showAsOf(version) {
    const ticket = ++pending;
    try {
      const view = await api(`/executions/${ctx.id}/state`, { query: { as_of: version } });
      if (ticket !== pending) return;  // a later move of the slider won
      clear(problems);
      show(view, view.as_of);
    } catch (err) {
      clear(problems);
      showProblem(problems, err);
    }
  }

  let refreshTimer = null;
  async function refreshLive() {
    try {
      execution = await api(`/executions/${ctx.id}`);
    } catch (err) {
      clear(problems);
      showProblem(problems, err);
      return;
    }
    slider.max = String(execution.version);
    ctx.onChange(execution);
    if (following) {
      slider.value = String(execution.version);
      show(execution, null);
    } else {
      text.textContent = `Event ${slider.value} of ${execution.version}`;
    }
  }
  const soon = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(refreshLive, 150); };

  let moveTimer = null;
  slider.addEventListener('input', () => {
    following = Number(slider.value) >= execution.version;
    clearTimeout(moveTimer);
    moveTimer = setTimeout(() => (following ? refreshLive() : showAsOf(Number(slider.value))), 120);
  });
  liveButton.addEventListener('click', () => { following = true; refreshLive(); });

  show(execution, null);
  let feed = null;
  if (!TERMINAL.has(execution.status)) {
    feed = streamEvents(`/executions/${ctx.id}/events`, {
      query: execution.last_event_id ? { last_event_id: execution.last_event_id } : { from_start: true },
      onMessage: (message) => {
        // A progress message carries the node's new status: draw it at once, then re-read.
        const body = message.data || {};
        if (following && body.node_id && body.node_status) dag.update(body.node_id, body.node_status);
        soon();
      },
      onEnd: soon,
      onError: (err) => { clear(problems); showProblem(problems, err); },
    });
  }
  return {
    refresh: soon,
    destroy() { if (feed) feed.close(); clearTimeout(refreshTimer); clearTimeout(moveTimer); dag.destroy(); },
  };
}
