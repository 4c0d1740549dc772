// The one way pages talk to Quipu: fetch with the bearer key from sessionStorage.
// The key never goes into a URL (proxies and history keep URLs); sessionStorage ends with the tab.

const KEY = 'quipu.apiKey';

export class ProblemError extends Error {
  constructor(status, title, detail, body) {
    super(`${title}: ${detail}`);
    this.name = 'ProblemError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.body = body;
  }
}

export function apiKey() { return sessionStorage.getItem(KEY) || ''; }
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

export function apiUrl(path, query) {
  const url = new URL(path.startsWith('/api/') ? path : `/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(name, v));
    else url.searchParams.set(name, String(value));
  }
  return url;
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function problemFrom(response) {
  let body = null;
  const text = await response.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = { detail: text }; }
  const title = (body && body.title) || response.statusText || `HTTP ${response.status}`;
  const detail = (body && body.detail) || '';
  return new ProblemError(response.status, title, detail, body);
}

// `path` is relative to /api/v1 unless it starts with /api/. Throws ProblemError on non-2xx.
export async function api(path, { method = 'GET', query, body, headers: extra } = {}) {
  const init = { method, headers: headers(extra) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), init);
  } catch (err) {
    throw new ProblemError(0, 'Network error', String(err && err.message || err), null);
  }
  if (!response.ok) throw await problemFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// Renders a problem's title and detail (and field errors) into `container`; never a blank page.
export function showProblem(container, err) {
  const box = document.createElement('div');
  box.className = 'problem';
  box.setAttribute('role', 'alert');
  box.dataset.testid = 'problem';
  const title = document.createElement('strong');
  title.className = 'problem-title';
  title.dataset.testid = 'problem-title';
  const detail = document.createElement('p');
  detail.className = 'problem-detail';
  detail.dataset.testid = 'problem-detail';
  if (err instanceof ProblemError) {
    title.textContent = `${err.status ? err.status + ' ' : ''}${err.title}`;
    detail.textContent = err.detail;
  } else {
    title.textContent = 'Error';
    detail.textContent = String(err && err.message || err);
  }
  box.append(title, detail);
  const errors = err && err.body && Array.isArray(err.body.errors) ? err.body.errors : [];
  if (errors.length) {
    const list = document.createElement('ul');
    for (const e of errors) {
      const li = document.createElement('li');
      li.textContent = `${e.field || ''}: ${e.message || ''}${e.code ? ` (${e.code})` : ''}`;
      list.append(li);
    }
    box.append(list);
  }
  container.append(box);
  return box;
}

// Server-Sent Events read with fetch, so the bearer header can be sent (EventSource cannot).
// Calls onMessage({id, event, data}) per message; returns {close()}. Reconnects with Last-Event-ID.
export function streamEvents(path, { query, onMessage, onError, onEnd } = {}) {
  const controller = new AbortController();
  let lastId = null;
  let closed = false;
  async function run() {
    while (!closed) {
      const extra = { Accept: 'text/event-stream' };
      if (lastId) extra['Last-Event-ID'] = lastId;
      let response;
      try {
        response = await fetch(apiUrl(path, query), { headers: headers(extra), signal: controller.signal });
        if (!response.ok) { if (onError) onError(await problemFrom(response)); return; }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, '\n');
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const msg = parseBlock(block);
            if (!msg) continue;
            if (msg.id) lastId = msg.id;
            onMessage(msg);
            if (msg.event === 'completed') { closed = true; if (onEnd) onEnd(); return; }
          }
        }
      } catch (err) {
        if (closed || controller.signal.aborted) return;
      }
      if (!closed) await new Promise((r) => setTimeout(r, 2000));
    }
  }
  run();
  return { close() { closed = true; controller.abort(); } };
}

function parseBlock(block) {
  const msg = { id: null, event: 'message', data: '' };
  let any = false;
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') { msg.data += (msg.data ? '\n' : '') + value; any = true; }
    else if (field === 'event') msg.event = value;
    else if (field === 'id') msg.id = value;
  }
  if (!any) return null;
  try { msg.data = JSON.parse(msg.data); } catch { /* plain text data stays a string */ }
  return msg;
}
