// The console's shell: sign-in, the navigation, and a hash router. Each
// page is a module exporting render(root, params, ctx); it may return a
// function that stops what it started (timers, streams) when the page is
// left. ctx.signal aborts its requests at the same moment.
import {h, replace, errorBanner} from './dom.js';
import {call, getKey, setKey, onUnauthorized, ApiError} from './api.js';
import * as tasks from './tasks.js';
import * as task from './task.js';
import * as submit from './submit.js';
import * as usage from './usage.js';
import * as engines from './engines.js';
import * as admin from './admin.js';

const PAGES = [
  {path: 'tasks', title: 'Tasks', page: tasks},
  {path: 'new', title: 'New task', page: submit},
  {path: 'usage', title: 'Usage', page: usage},
  {path: 'engines', title: 'Models & engines', page: engines},
  {path: 'keys', title: 'Keys', page: admin.keys, admin: true},
  {path: 'webhooks', title: 'Webhooks', page: admin.webhooks},
  {path: 'task', title: 'Task', page: task, hidden: true},
];

const view = document.getElementById('view');
const top = document.getElementById('top');
const nav = document.getElementById('nav');
const state = {admin: false, models: null, offset: 480, stop: null, ctrl: null};

// The models this key may use, fetched once per sign-in.
function models() {
  if (!state.models) {
    state.models = call('/api/v1/models').then((j) => j.models || [])
      .catch((e) => {
        state.models = null;
        throw e;
      });
  }
  return state.models;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, qs] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return {name: parts[0] || 'tasks', rest: parts.slice(1),
          query: new URLSearchParams(qs || '')};
}

function leave() {
  if (state.stop) {
    try {
      state.stop();
    } catch (e) {
      // a page's cleanup must not stop the next page
    }
  }
  if (state.ctrl) state.ctrl.abort();
  state.stop = null;
  state.ctrl = null;
}

function drawNav(current) {
  replace(nav, PAGES.filter((p) => !p.hidden && (!p.admin || state.admin))
    .map((p) => h('a', {href: '#/' + p.path,
                        'aria-current': p.path === current ? 'page' : null},
                  p.title)));
}

async function route() {
  leave();
  if (!getKey()) {
    signIn();
    return;
  }
  const {name, rest, query} = parseHash();
  const entry = PAGES.find((p) => p.path === name) || PAGES[0];
  drawNav(entry.path === 'task' ? 'tasks' : entry.path);
  top.hidden = false;
  document.title = entry.title + ' · paddock console';
  const ctrl = new AbortController();
  state.ctrl = ctrl;
  const root = h('section', {class: 'page page-' + entry.path});
  replace(view, root);
  const ctx = {signal: ctrl.signal, admin: state.admin, models,
               offset: state.offset,
               go: (hash) => { location.hash = hash; }};
  try {
    const stop = await entry.page.render(root, {rest, query}, ctx);
    if (state.ctrl === ctrl) state.stop = stop || null;
    else if (stop) stop();
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(root, errorBanner(e));
  }
}

// What this key may see: admin pages answer 200 to an admin key, 403 to
// another; a server without the keys API answers 404 (no admin pages).
async function learnKey() {
  const [eng, keys] = await Promise.allSettled([
    call('/api/v1/engines'), call('/api/v1/keys')]);
  if (eng.status === 'fulfilled' &&
      typeof eng.value.utc_offset_minutes === 'number') {
    state.offset = eng.value.utc_offset_minutes;
  }
  state.admin = keys.status === 'fulfilled';
}

function signIn(message) {
  top.hidden = true;
  document.title = 'Sign in · paddock console';
  const input = h('input', {type: 'password', id: 'key', name: 'key',
                            autocomplete: 'off', spellcheck: 'false',
                            required: true, 'aria-describedby': 'key-help'});
  const err = h('div', {id: 'signin-error', 'aria-live': 'assertive'});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');
  if (message) err.appendChild(errorBanner(message));
  const form = h('form', {class: 'signin card', novalidate: true},
    h('h1', null, h('img', {src: '/console/icon.svg', alt: '', width: 28, height: 28}),
      ' paddock console'),
    h('label', {for: 'key'}, 'API key'),
    input,
    h('p', {id: 'key-help', class: 'muted small'},
      'The key stays in this tab (sessionStorage) and is sent only to this ' +
      'server, as Authorization: Bearer.'),
    button, err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const k = input.value.trim();
    replace(err);
    if (!k) {
      err.appendChild(errorBanner(new ApiError(0, 'InvalidApiKey',
                                               'enter an API key')));
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      // A call that answers only to a valid key.
      await call('/api/v1/models', {key: k});
      setKey(k);
      state.models = null;
      await learnKey();
      whoami();
      if (!location.hash || location.hash === '#/' || location.hash === '#') {
        location.hash = '#/tasks';
      } else {
        route();
      }
    } catch (ex) {
      err.appendChild(errorBanner(ex, ex.status === 401 ?
        'Check the key; a revoked key is refused too.' : null));
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  replace(view, h('div', {class: 'signin-wrap'}, form));
  input.focus();
}

function signOut(message) {
  leave();
  setKey('');
  state.models = null;
  state.admin = false;
  history.replaceState(null, '', location.pathname);
  signIn(message);
}

onUnauthorized((err) => signOut(err));
document.getElementById('signout').addEventListener('click', () => signOut());
window.addEventListener('hashchange', route);

function whoami() {
  const k = getKey();
  document.getElementById('who').textContent =
    k ? 'key …' + k.slice(-4) + (state.admin ? ' (admin)' : '') : '';
}
window.addEventListener('hashchange', whoami);

(async () => {
  if (getKey()) {
    try {
      await learnKey();
    } catch (e) {
      // the page itself shows what fails
    }
  }
  whoami();
  route();
})();
