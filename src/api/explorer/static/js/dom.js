// A tiny element builder: h('a', {href, class, 'data-testid', onclick}, 'text', child, [more]).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'value') el.value = value;
    else if (name === 'checked' || name === 'selected' || name === 'disabled') el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// Text for a JSON value, indented.
export function pretty(value) { return JSON.stringify(value, null, 2); }

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtCost(value) {
  if (value === undefined || value === null) return '';
  return `$${Number(value).toFixed(4)}`;
}

// A status badge: always text and colour, never colour alone.
export function badge(status) {
  const s = String(status || 'unknown');
  return h('span', { class: `badge st-${s.replace(/[^a-z_]/gi, '')}`, 'data-status': s }, s);
}
