// Models and engines: every name this server takes and whether its engine
// is up (GET /api/v1/models), each engine's capacity in this process, what
// it holds now and the PENDING tasks of its models (GET /api/v1/engines),
// and the node's readiness (GET /readyz). Read again every 5 s.
import {h, replace, errorBanner, empty, progress} from './dom.js';
import {call} from './api.js';

const EVERY_MS = 5000;

function up(ok, message) {
  return h('span', {class: 'badge ' + (ok ? 'st-succeeded' : 'st-failed')},
           ok ? 'up' : 'down', message ? ' · ' + message : '');
}

async function ready(signal) {
  try {
    const r = await fetch('/readyz', {signal, cache: 'no-store', credentials: 'omit'});
    const j = await r.json();
    return {ok: r.ok, reason: j.reason || ''};
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return {ok: false, reason: 'the server did not answer'};
  }
}

function engineCard(e) {
  const cap = e.capacity === null ? 'no limit' : String(e.capacity);
  const load = e.capacity ? progress(Math.round(100 * e.in_flight / e.capacity),
                                     'load of ' + e.name) : null;
  return h('article', {class: 'card engine', 'data-engine': e.name},
    h('h3', null, e.name, ' ', h('span', {class: 'muted small'}, e.backend)),
    up(e.available, e.message),
    h('dl', {class: 'kv'},
      h('dt', null, 'Capacity'), h('dd', null, cap),
      h('dt', null, 'In flight here'), h('dd', null, String(e.in_flight)),
      h('dt', null, 'Pending (all nodes)'), h('dd', null, String(e.pending))),
    load,
    h('ul', {class: 'chips models'}, (e.models || []).map((m) =>
      h('li', {class: 'badge mono'}, m))));
}

export async function render(root, _params, ctx) {
  const readyBox = h('p');
  const engBox = h('div', {class: 'grid'});
  const modelBox = h('div');
  replace(root, h('div', {class: 'head'}, h('h1', null, 'Models & engines'), readyBox),
          h('h2', null, 'Engines'), engBox, h('h2', null, 'Models'), modelBox);

  async function load() {
    const [rd, eng, mods] = await Promise.allSettled([
      ready(ctx.signal), call('/api/v1/engines', {signal: ctx.signal}),
      call('/api/v1/models', {signal: ctx.signal})]);
    if (ctx.signal.aborted) return;
    if (rd.status === 'fulfilled') {
      replace(readyBox, 'Node: ', up(rd.value.ok, rd.value.reason));
    }
    if (eng.status === 'rejected') replace(engBox, errorBanner(eng.reason));
    else if (!eng.value.engines.length) replace(engBox, empty('No engine is configured.'));
    else replace(engBox, eng.value.engines.map(engineCard));
    if (mods.status === 'rejected') {
      replace(modelBox, errorBanner(mods.reason));
      return;
    }
    const ms = mods.value.models || [];
    replace(modelBox, ms.length ? h('table', {class: 'models'},
      h('thead', null, h('tr', null, ['Name', 'Alias of', 'Kind', 'Engine', 'Status']
        .map((c) => h('th', {scope: 'col'}, c)))),
      h('tbody', null, ms.map((m) => h('tr', null,
        h('td', {'data-label': 'Name', class: 'mono'}, m.name),
        h('td', {'data-label': 'Alias of'}, m.name === m.model ? '' : m.model),
        h('td', {'data-label': 'Kind'}, m.task),
        h('td', {'data-label': 'Engine'}, m.engine + ' (' + m.backend + ')'),
        h('td', {'data-label': 'Status'}, up(m.available, m.message)))))) :
      empty('This server takes no model.'));
  }
  await load();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') load().catch(() => {});
  }, EVERY_MS);
  return () => clearInterval(timer);
}
