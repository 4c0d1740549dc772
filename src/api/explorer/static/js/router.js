// A history-API router: route('/ui/executions/:id', render); navigate(url).

const routes = [];
let outlet = null;
let cleanup = null;

export function route(pattern, render) {
  const names = [];
  const source = pattern.replace(/\/$/, '').replace(/:([a-zA-Z_]+)/g, (_, name) => {
    names.push(name);
    return '([^/]+)';
  });
  routes.push({ regex: new RegExp(`^${source}/?$`), names, render });
}

export function navigate(url) {
  history.pushState(null, '', url);
  dispatch();
}

// A render may return a function; it is called when the page is left (close feeds, timers).
export function onLeave(fn) { cleanup = fn; }

export function start(container) {
  outlet = container;
  window.addEventListener('popstate', dispatch);
  // Same-origin links under /ui go through the router, not a full page load.
  document.addEventListener('click', (event) => {
    const a = event.target.closest && event.target.closest('a[href]');
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
    event.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  dispatch();
}

// The tab's title follows the page's heading; the nav link of the current section is marked.
function markPage(path) {
  const heading = outlet.querySelector('h1');
  document.title = heading ? `${heading.textContent.trim()} · Quipu` : 'Quipu explorer';
  for (const a of document.querySelectorAll('nav a[href]')) {
    if (path.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export async function dispatch() {
  if (cleanup) { try { cleanup(); } catch (err) { console.warn(err); } cleanup = null; }
  const path = location.pathname.replace(/\/$/, '') || '/ui';
  const query = Object.fromEntries(new URLSearchParams(location.search));
  outlet.replaceChildren();
  for (const r of routes) {
    const m = path.match(r.regex);
    if (!m) continue;
    const params = {};
    r.names.forEach((name, i) => { params[name] = decodeURIComponent(m[i + 1]); });
    try {
      const leave = await r.render(outlet, params, query);
      if (typeof leave === 'function') cleanup = leave;
    } catch (err) {
      const { showProblem } = await import('./api.js');
      showProblem(outlet, err);
    }
    markPage(path);
    document.dispatchEvent(new CustomEvent('quipu:routed', { detail: { path } }));
    return;
  }
  const p = document.createElement('p');
  p.textContent = `No page at ${path}.`;
  outlet.append(p);
}
