// Shared bits of the explorer's pages: the signed-out notice, cached workflow names, live polling.
import { api, apiKey } from './api.js';
import { h } from './dom.js';

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

// True when a key is set; otherwise draws the "sign in first" notice and returns false.
export function requireKey(container) {
  if (apiKey()) return true;
  container.append(h('div', { class: 'notice', 'data-testid': 'signed-out' },
    h('p', {}, 'Sign in with an API key (top right) to explore runs. The key stays in this browser tab only.')));
  const field = document.getElementById('api-key');
  if (field) field.focus();
  return false;
}

const workflowNames = new Map();

// A workflow's name, fetched once per page load; the id when it cannot be read.
export async function workflowName(id) {
  if (!workflowNames.has(id)) {
    workflowNames.set(id, api(`/workflows/${id}`).then((w) => w.name || id, () => id));
  }
  return workflowNames.get(id);
}

// Calls fn every `ms` until stopped; one call at a time, errors reported once to onError.
export function every(ms, fn, onError) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try { await fn(); } catch (err) { if (onError) onError(err); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}

// uuid7 ids begin with their time, so runs started together share a prefix: show the end.
export function shortId(id) { const s = String(id); return `…${s.slice(-8)}`; }
