// A layered DAG layout and SVG drawing, written for speed rather than beauty:
// longest-path layering, a few barycenter ordering sweeps, one SVG string set at once.
// O((V + E) * sweeps); 5,000 nodes lay out and draw in a fraction of a second.

const NODE_W = 168;
const NODE_H = 46;
const GAP_X = 24;
const GAP_Y = 56;
const SWEEPS = 4;
const SVG_NS = 'http://www.w3.org/2000/svg';

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function short(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// Returns {layers: [[index]], layerOf: Int32Array, order: Float64Array} for nodes 0..n-1.
export function layout(n, edges) {
  const out = Array.from({ length: n }, () => []);
  const inc = Array.from({ length: n }, () => []);
  const indeg = new Int32Array(n);
  for (const [a, b] of edges) {
    if (a === b) continue;
    out[a].push(b);
    inc[b].push(a);
    indeg[b] += 1;
  }
  // Kahn's order; whatever a cycle leaves unvisited is released in index order (cycles are
  // not expected, but a drawing must never hang on one).
  const topo = [];
  const queue = [];
  for (let i = 0; i < n; i += 1) if (indeg[i] === 0) queue.push(i);
  const seen = new Uint8Array(n);
  let head = 0;
  let next = 0;
  while (topo.length < n) {
    if (head === queue.length) {
      while (seen[next]) next += 1;
      queue.push(next);
      indeg[next] = 0;
    }
    const v = queue[head++];
    if (seen[v]) continue;
    seen[v] = 1;
    topo.push(v);
    for (const w of out[v]) {
      indeg[w] -= 1;
      if (indeg[w] === 0 && !seen[w]) queue.push(w);
    }
  }
  const rank = new Int32Array(n);
  topo.forEach((v, i) => { rank[v] = i; });
  const layerOf = new Int32Array(n);
  for (const v of topo) {
    for (const w of out[v]) if (rank[w] > rank[v] && layerOf[w] < layerOf[v] + 1) layerOf[w] = layerOf[v] + 1;
  }
  let depth = 0;
  for (let i = 0; i < n; i += 1) if (layerOf[i] + 1 > depth) depth = layerOf[i] + 1;
  const layers = Array.from({ length: depth }, () => []);
  for (const v of topo) layers[layerOf[v]].push(v);
  // Position in its layer, normalised to [0, 1] so layers of different widths compare.
  const order = new Float64Array(n);
  const place = () => {
    for (const layer of layers) {
      const span = Math.max(1, layer.length - 1);
      layer.forEach((v, i) => { order[v] = layer.length === 1 ? 0.5 : i / span; });
    }
  };
  place();
  const bary = new Float64Array(n);
  const sweep = (layerList, neighbours) => {
    for (const layer of layerList) {
      for (const v of layer) {
        const nb = neighbours[v];
        if (!nb.length) { bary[v] = order[v]; continue; }
        let sum = 0;
        for (const u of nb) sum += order[u];
        bary[v] = sum / nb.length;
      }
      layer.sort((a, b) => bary[a] - bary[b] || order[a] - order[b]);
      const span = Math.max(1, layer.length - 1);
      layer.forEach((v, i) => { order[v] = layer.length === 1 ? 0.5 : i / span; });
    }
  };
  for (let s = 0; s < SWEEPS; s += 1) {
    if (s % 2 === 0) sweep(layers.slice(1), inc);
    else sweep(layers.slice(0, -1).reverse(), out);
  }
  return { layers, layerOf, order };
}

// Draws `nodes` ([{id, label, state?, title?}]) and `edges` ([[fromId, toId]]) into `container`.
// Nodes are focusable; click, Enter or Space calls onSelect(id). Returns {update, select, destroy, svg}.
export function renderDag(container, { nodes, edges, onSelect, direction = 'down' } = {}) {
  const index = new Map();
  nodes.forEach((node, i) => index.set(String(node.id), i));
  const pairs = [];
  for (const [a, b] of edges || []) {
    const ia = index.get(String(a));
    const ib = index.get(String(b));
    if (ia !== undefined && ib !== undefined) pairs.push([ia, ib]);
  }
  const { layers } = layout(nodes.length, pairs);
  const widest = layers.reduce((m, l) => Math.max(m, l.length), 0);
  const across = widest * (NODE_W + GAP_X);
  const x = new Float64Array(nodes.length);
  const y = new Float64Array(nodes.length);
  layers.forEach((layer, li) => {
    const offset = (across - layer.length * (NODE_W + GAP_X)) / 2 + GAP_X / 2;
    layer.forEach((v, i) => {
      const along = li * (NODE_H + GAP_Y) + GAP_Y / 2;
      const side = offset + i * (NODE_W + GAP_X);
      if (direction === 'right') { x[v] = along * 2.2; y[v] = side / 2.8; } else { x[v] = side; y[v] = along; }
    });
  });
  const width = direction === 'right' ? layers.length * (NODE_H + GAP_Y) * 2.2 + NODE_W : across;
  const height = direction === 'right' ? across / 2.8 + NODE_H : layers.length * (NODE_H + GAP_Y);
  const parts = [];
  parts.push(`<svg xmlns="${SVG_NS}" class="dag" data-testid="dag" role="group" aria-label="graph of ${nodes.length} nodes" width="${Math.max(width, 200)}" height="${Math.max(height, 80)}" viewBox="0 0 ${Math.max(width, 200)} ${Math.max(height, 80)}">`);
  parts.push('<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z" class="dag-arrowhead"/></marker></defs><g class="dag-edges">');
  for (const [a, b] of pairs) {
    let d;
    if (direction === 'right') {
      const x1 = x[a] + NODE_W; const y1 = y[a] + NODE_H / 2; const x2 = x[b]; const y2 = y[b] + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    } else {
      const x1 = x[a] + NODE_W / 2; const y1 = y[a] + NODE_H; const x2 = x[b] + NODE_W / 2; const y2 = y[b];
      const my = (y1 + y2) / 2;
      d = `M${x1},${y1}C${x1},${my} ${x2},${my} ${x2},${y2}`;
    }
    parts.push(`<path d="${d}" marker-end="url(#dag-arrow)"/>`);
  }
  parts.push('</g><g class="dag-nodes">');
  nodes.forEach((node, i) => {
    const state = node.state || 'pending';
    const label = node.label ?? node.id;
    parts.push(
      `<g class="dag-node st-${esc(state)}" data-node-id="${esc(node.id)}" data-testid="dag-node" data-state="${esc(state)}" tabindex="0" role="button" aria-label="${esc(label)}: ${esc(state)}" transform="translate(${x[i]},${y[i]})">`
      + `<title>${esc(node.title || label)}</title><rect width="${NODE_W}" height="${NODE_H}" rx="6"/>`
      + `<text class="dag-label" x="8" y="18">${esc(short(label, 22))}</text>`
      + `<text class="dag-state" x="8" y="36">${esc(state)}</text></g>`,
    );
  });
  parts.push('</g></svg>');
  const wrap = document.createElement('div');
  wrap.className = 'dag-wrap';
  wrap.innerHTML = parts.join('');
  container.append(wrap);
  const svg = wrap.firstChild;
  const byId = new Map();
  for (const g of svg.querySelectorAll('g.dag-node')) byId.set(g.dataset.nodeId, g);
  let selected = null;
  const select = (id) => {
    const g = byId.get(String(id));
    if (!g) return;
    if (selected) selected.classList.remove('selected');
    selected = g;
    g.classList.add('selected');
    g.setAttribute('aria-pressed', 'true');
    if (onSelect) onSelect(g.dataset.nodeId);
  };
  const pick = (event) => {
    const g = event.target.closest && event.target.closest('g.dag-node');
    if (!g) return;
    if (event.type === 'keydown' && event.key !== 'Enter' && event.key !== ' ') return;
    event.preventDefault();
    select(g.dataset.nodeId);
  };
  svg.addEventListener('click', pick);
  svg.addEventListener('keydown', pick);
  return {
    svg,
    update(id, state) {
      const g = byId.get(String(id));
      if (!g || !state) return;
      g.setAttribute('class', `dag-node st-${state}${g === selected ? ' selected' : ''}`);
      g.dataset.state = state;
      g.querySelector('.dag-state').textContent = state;
      g.setAttribute('aria-label', `${g.querySelector('title').textContent}: ${state}`);
    },
    select,
    destroy() { wrap.remove(); byId.clear(); },
  };
}
