// Entry point: the sign-in form, then the router. Page modules (js/pages/*.js) are loaded by
// index.html before this one (the controller lists the files present, so a page not yet written
// costs no 404) and register their routes on import; module scripts run in document order.
import { api, apiKey, setApiKey, showProblem } from './api.js';
import { h } from './dom.js';
import { route, start, navigate } from './router.js';

function showSession() {
  const signedIn = Boolean(apiKey());
  document.getElementById('signin').hidden = signedIn;
  document.getElementById('signed-in').hidden = !signedIn;
}

async function describeKey() {
  const label = document.getElementById('signed-in-as');
  try {
    const tenant = await api('/tenants/current');
    label.textContent = `Signed in (tenant ${tenant.name || tenant.tenant_id || tenant.id})`;
  } catch {
    label.textContent = 'Signed in';
  }
}

function wireSession() {
  const form = document.getElementById('signin');
  const error = h('div', { class: 'signin-error', 'data-testid': 'signin-error', role: 'alert' });
  form.after(error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const input = document.getElementById('api-key');
    const key = input.value.trim();
    if (!key) return;
    setApiKey(key);
    try {
      await api('/tenants/current');  // a wrong key is told here, not as every page's 401
    } catch (err) {
      setApiKey('');
      showProblem(error, err);
      input.focus();
      return;
    }
    input.value = '';
    showSession();
    describeKey();
    navigate(location.pathname === '/ui' || location.pathname === '/ui/' ? '/ui/executions' : location.pathname + location.search);
  });
  document.getElementById('signout').addEventListener('click', () => {
    setApiKey('');
    error.replaceChildren();
    showSession();
    navigate('/ui/executions');
    document.getElementById('api-key').focus();
  });
  showSession();
  if (apiKey()) describeKey();
}

route('/ui', () => { navigate('/ui/executions'); });

async function boot() {
  wireSession();
  start(document.getElementById('main'));
}

boot();
