// A layered DAG layout and SVG drawing, written for speed rather than beauty:
// longest-path layering, a few barycenter ordering sweeps, one SVG string set at once.
// O((V + E) * sweeps); 5,000 nodes lay out and draw in a fraction of a second.

const NODE_W = 168;
const NODE_H = 46;
const GAP_X = 24;
const GAP_Y = 56;
const SWEEPS = 4;
const MAX_ROW = 24;
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
  // Pull each node down next to its nearest successor, so a short branch beside a long one
  // does not draw an edge across the long one's nodes (sources stay on top).
  for (let i = topo.length - 1; i >= 0; i -= 1) {
    const v = topo[i];
    if (!out[v].length || !inc[v].length) continue;
    let nearest = Infinity;
    for (const w of out[v]) if (rank[w] > rank[v] && layerOf[w] < nearest) nearest = layerOf[w];
    if (nearest !== Infinity && nearest - 1 > layerOf[v]) layerOf[v] = nearest - 1;
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
// Nodes are focusable; click, Enter or Space calls onSelect(id); arrow keys move along edges and
// layers. A large graph draws only what is in view (plus a margin) and redraws on scroll, so
// 5,000 nodes are interactive at once. Returns {update, select, destroy, svg, positions}.
export function renderDag(container, { nodes, edges, onSelect, windowed } = {}) {
  const n = nodes.length;
  const index = new Map();
  nodes.forEach((node, i) => index.set(String(node.id), i));
  const pairs = [];
  for (const [a, b] of edges || []) {
    const ia = index.get(String(a));
    const ib = index.get(String(b));
    if (ia !== undefined && ib !== undefined) pairs.push([ia, ib]);
  }
  const { layers, layerOf } = layout(n, pairs);
  const slot = new Int32Array(n);
  layers.forEach((layer) => layer.forEach((v, i) => { slot[v] = i; }));
  // A layer wider than MAX_ROW nodes wraps onto several rows, so a wide fan-out (or fan-in)
  // stays readable and the drawing stays within a few screens' width.
  const widest = layers.reduce((m, l) => Math.max(m, Math.min(l.length, MAX_ROW)), 0);
  const width = Math.max(widest * (NODE_W + GAP_X), 200);
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  let row = 0;
  for (const layer of layers) {
    for (let start = 0; start < layer.length; start += MAX_ROW) {
      const part = layer.slice(start, start + MAX_ROW);
      const offset = (width - part.length * (NODE_W + GAP_X)) / 2 + GAP_X / 2;
      part.forEach((v, i) => { x[v] = offset + i * (NODE_W + GAP_X); y[v] = row * (NODE_H + GAP_Y) + GAP_Y / 2; });
      row += 1;
    }
  }
  const height = Math.max(row * (NODE_H + GAP_Y), 80);
  const states = nodes.map((node) => node.state || 'pending');
  const labels = nodes.map((node) => String(node.label ?? node.id));
  const ids = nodes.map((node) => String(node.id));
  const succ = Array.from({ length: n }, () => []);
  const pred = Array.from({ length: n }, () => []);
  for (const [a, b] of pairs) { succ[a].push(b); pred[b].push(a); }
  const large = windowed ?? n > 600;
  let selected = -1;

  const wrap = document.createElement('div');
  wrap.className = 'dag-wrap';
  wrap.innerHTML = `<svg xmlns="${SVG_NS}" class="dag" data-testid="dag" role="group" aria-label="graph of ${n} nodes" data-node-count="${n}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`
    + '<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z" class="dag-arrowhead"/></marker></defs>'
    + '<g class="dag-edges"></g><g class="dag-nodes"></g></svg>';
  container.append(wrap);
  const svg = wrap.firstChild;
  const edgeLayer = svg.querySelector('.dag-edges');
  const nodeLayer = svg.querySelector('.dag-nodes');
  let byIndex = new Map();

  const nodeSvg = (i) => `<g class="dag-node st-${esc(states[i])}${i === selected ? ' selected' : ''}" data-node-id="${esc(ids[i])}" data-testid="dag-node" data-state="${esc(states[i])}" tabindex="0" role="button" aria-label="${esc(labels[i])}: ${esc(states[i])}" transform="translate(${x[i]},${y[i]})">`
    + `<title>${esc(nodes[i].title || labels[i])}</title><rect width="${NODE_W}" height="${NODE_H}" rx="6"/>`
    + `<text class="dag-label" x="8" y="18">${esc(short(labels[i], 22))}</text>`
    + `<text class="dag-state" x="8" y="36">${esc(states[i])}</text></g>`;
  const edgeSvg = (a, b) => {
    const x1 = x[a] + NODE_W / 2; const y1 = y[a] + NODE_H; const x2 = x[b] + NODE_W / 2; const y2 = y[b];
    const my = (y1 + y2) / 2;
    return `<path d="M${x1},${y1}C${x1},${my} ${x2},${my} ${x2},${y2}" marker-end="url(#dag-arrow)"/>`;
  };

  let drawn = '';
  function draw() {
    const margin = 400;
    const left = large ? wrap.scrollLeft - margin : -Infinity;
    const top = large ? wrap.scrollTop - margin : -Infinity;
    const right = large ? wrap.scrollLeft + (wrap.clientWidth || 1200) + margin : Infinity;
    const bottom = large ? wrap.scrollTop + (wrap.clientHeight || 800) + margin : Infinity;
    const key = large ? `${Math.floor(left / 200)},${Math.floor(top / 200)},${Math.floor(right / 200)},${Math.floor(bottom / 200)}` : 'all';
    if (key === drawn) return;
    drawn = key;
    const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest('g.dag-node') ? document.activeElement.dataset.nodeId : null;
    const inView = (i) => x[i] + NODE_W >= left && x[i] <= right && y[i] + NODE_H >= top && y[i] <= bottom;
    const nodeParts = [];
    for (let i = 0; i < n; i += 1) if (inView(i)) nodeParts.push(nodeSvg(i));
    const edgeParts = [];
    for (const [a, b] of pairs) {
      if (Math.max(x[a], x[b]) + NODE_W < left || Math.min(x[a], x[b]) > right) continue;
      if (Math.max(y[a], y[b]) + NODE_H < top || Math.min(y[a], y[b]) > bottom) continue;
      edgeParts.push(edgeSvg(a, b));
    }
    edgeLayer.innerHTML = edgeParts.join('');
    nodeLayer.innerHTML = nodeParts.join('');
    byIndex = new Map();
    for (const g of nodeLayer.children) byIndex.set(index.get(g.dataset.nodeId), g);
    if (focusedId !== null) { const g = byIndex.get(index.get(focusedId)); if (g) g.focus({ preventScroll: true }); }
  }

  function reveal(i) {
    if (large) {
      const pad = 40;
      if (x[i] < wrap.scrollLeft || x[i] + NODE_W > wrap.scrollLeft + wrap.clientWidth) wrap.scrollLeft = x[i] - wrap.clientWidth / 2 + NODE_W / 2;
      if (y[i] < wrap.scrollTop || y[i] + NODE_H > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = y[i] - wrap.clientHeight / 2 + pad;
      draw();
    }
    const g = byIndex.get(i);
    if (g) g.focus();
  }

  const select = (id) => {
    const i = index.get(String(id));
    if (i === undefined) return;
    const old = byIndex.get(selected);
    if (old) { old.classList.remove('selected'); old.removeAttribute('aria-pressed'); }
    selected = i;
    const g = byIndex.get(i);
    if (g) { g.classList.add('selected'); g.setAttribute('aria-pressed', 'true'); }
    if (onSelect) onSelect(ids[i]);
  };
  const onKey = (event) => {
    const g = event.target.closest && event.target.closest('g.dag-node');
    if (!g) return;
    const i = index.get(g.dataset.nodeId);
    if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); select(ids[i]); return; }
    const layer = layers[layerOf[i]];
    const moves = {
      ArrowDown: () => succ[i][0], ArrowUp: () => pred[i][0],
      ArrowRight: () => layer[slot[i] + 1], ArrowLeft: () => layer[slot[i] - 1],
    };
    if (!moves[event.key]) return;
    event.preventDefault();
    const to = moves[event.key]();
    if (to !== undefined) reveal(to);
  };
  svg.addEventListener('click', (event) => {
    const g = event.target.closest && event.target.closest('g.dag-node');
    if (g) select(g.dataset.nodeId);
  });
  svg.addEventListener('keydown', onKey);
  let frame = 0;
  const onScroll = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); }); };
  if (large) wrap.addEventListener('scroll', onScroll, { passive: true });
  // Open on the sources: the top rows, horizontally centred on the first of them.
  if (n && width > wrap.clientWidth) wrap.scrollLeft = Math.max(0, x[layers[0][0]] + NODE_W / 2 - wrap.clientWidth / 2);
  draw();
  return {
    svg,
    positions: { x, y },
    update(id, state) {
      const i = index.get(String(id));
      if (i === undefined || !state || states[i] === state) return;
      states[i] = state;
      const g = byIndex.get(i);
      if (!g) return;
      g.setAttribute('class', `dag-node st-${state}${i === selected ? ' selected' : ''}`);
      g.dataset.state = state;
      g.querySelector('.dag-state').textContent = state;
      g.setAttribute('aria-label', `${labels[i]}: ${state}`);
    },
    select,
    destroy() { if (frame) cancelAnimationFrame(frame); wrap.remove(); byIndex.clear(); },
  };
}
