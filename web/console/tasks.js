// Tasks: the key's tasks in a window (GET /api/v1/tasks), filtered by
// status, model and time, newest first, kept live: the page is read again
// every 2 s while the tab is visible, and each PENDING or RUNNING row is
// queried for its progress and queue position. (Not a stream per row: a
// browser keeps at most 6 connections to one HTTP/1.1 origin.)
import {h, replace, badge, progress, errorBanner, empty, fmtTime, fmtSpan} from './dom.js';
import {call} from './api.js';
import {serverStamp, localInput, toLocalInput, zoneName} from './time.js';

const STATUSES = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'];
const PAGE_SIZE = 20;
const DAY = 24 * 3600 * 1000;
const LIVE_MS = 2000;

function filtersFrom(query) {
  return {status: query.get('status') || '', model: query.get('model') || '',
          from: query.get('from') || '', to: query.get('to') || '',
          page: Math.max(1, parseInt(query.get('page') || '1', 10) || 1)};
}

function hashOf(f) {
  const q = new URLSearchParams();
  for (const k of ['status', 'model', 'from', 'to']) if (f[k]) q.set(k, f[k]);
  if (f.page > 1) q.set('page', String(f.page));
  const qs = q.toString();
  return '#/tasks' + (qs ? '?' + qs : '');
}

// The list's query parameters; a window the server refuses (over 24 h,
// reversed) is said here first, naming the field.
function listQuery(f, offset) {
  const q = {page_no: f.page, page_size: PAGE_SIZE, status: f.status,
             model_name: f.model};
  const from = f.from ? Number(f.from) : NaN;
  const to = f.to ? Number(f.to) : NaN;
  if (!isNaN(from) && !isNaN(to)) {
    if (to < from) throw new Error('"To" is before "From"');
    if (to - from > DAY) throw new Error('the window may span at most 24 hours');
  }
  if (!isNaN(from)) q.start_time = serverStamp(from, offset);
  if (!isNaN(to)) q.end_time = serverStamp(to, offset);
  return q;
}

function filterForm(f, models, ctx) {
  const status = h('select', {id: 'f-status', name: 'status'},
    h('option', {value: ''}, 'Any status'),
    STATUSES.map((s) => h('option', {value: s, selected: s === f.status}, s)));
  const model = h('select', {id: 'f-model', name: 'model'},
    h('option', {value: ''}, 'Any model'),
    models.filter((m) => m.name === m.model)
      .map((m) => h('option', {value: m.name, selected: m.name === f.model}, m.name)));
  const from = h('input', {type: 'datetime-local', id: 'f-from', name: 'from',
                           value: f.from ? toLocalInput(Number(f.from)) : ''});
  const to = h('input', {type: 'datetime-local', id: 'f-to', name: 'to',
                         value: f.to ? toLocalInput(Number(f.to)) : ''});
  const form = h('form', {class: 'filters', 'aria-label': 'Filters'},
    h('label', null, 'Status', status),
    h('label', null, 'Model', model),
    h('label', null, 'From', from),
    h('label', null, 'To', to),
    h('div', {class: 'actions'},
      h('button', {type: 'submit', class: 'primary'}, 'Apply'),
      h('button', {type: 'button', class: 'ghost', onclick: () => ctx.go('#/tasks')},
        'Reset')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const a = localInput(from.value);
    const b = localInput(to.value);
    ctx.go(hashOf({status: status.value, model: model.value,
                   from: isNaN(a) ? '' : String(a), to: isNaN(b) ? '' : String(b),
                   page: 1}));
  });
  return form;
}

function row(t, live) {
  const info = live[t.task_id];
  let state = null;
  if (t.status === 'RUNNING') {
    state = progress(info && info.progress !== undefined ? info.progress : 0,
                     'progress of ' + t.task_id);
  } else if (t.status === 'PENDING') {
    state = h('span', {class: 'muted'}, info && info.queue_position ?
      'in queue, #' + info.queue_position : 'in queue');
  } else if (t.status === 'FAILED') {
    state = h('code', {class: 'code'}, t.code || '');
  }
  const took = t.end_time && t.gmt_create ? fmtSpan(t.end_time - t.gmt_create) : '';
  const link = '#/task/' + encodeURIComponent(t.task_id);
  return h('tr', {'data-task': t.task_id, 'data-status': t.status},
    h('td', {class: 'id', 'data-label': 'Task'},
      h('a', {href: link, class: 'mono'}, t.task_id)),
    h('td', {'data-label': 'Model'}, t.model_name),
    h('td', {'data-label': 'Status'}, badge(t.status)),
    h('td', {class: 'state', 'data-label': 'State'}, state),
    h('td', {'data-label': 'Submitted'}, fmtTime(t.gmt_create)),
    h('td', {'data-label': 'Took'}, took));
}

export async function render(root, {query}, ctx) {
  const f = filtersFrom(query);
  let models = [];
  try {
    models = await ctx.models();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  const status = h('p', {class: 'muted small', 'aria-live': 'polite'});
  const body = h('div', {class: 'list'});
  replace(root,
    h('div', {class: 'head'}, h('h1', null, 'Tasks'),
      h('a', {href: '#/new', class: 'button primary'}, 'New task')),
    filterForm(f, models, ctx),
    h('p', {class: 'muted small'},
      'Times in your zone; the server counts windows in ' + zoneName(ctx.offset) +
      '. A window spans at most 24 h (the last 24 h when none is set).'),
    body, status);

  let q;
  try {
    q = listQuery(f, ctx.offset);
  } catch (e) {
    replace(body, errorBanner({code: 'InvalidParameter', message: e.message}));
    return null;
  }
  const live = {};
  let timer = 0;
  let busy = false;

  async function load() {
    if (busy || ctx.signal.aborted) return;
    busy = true;
    try {
      const j = await call('/api/v1/tasks', {query: q, signal: ctx.signal});
      const data = j.data || [];
      const active = data.filter((t) => t.status === 'PENDING' || t.status === 'RUNNING');
      await Promise.all(active.map(async (t) => {
        try {
          const d = await call('/api/v1/tasks/' + t.task_id, {signal: ctx.signal});
          live[t.task_id] = d.output || {};
          if (d.output && d.output.task_status) t.status = d.output.task_status;
        } catch (e) {
          if (e.name === 'AbortError') throw e;
        }
      }));
      draw(j, data);
      status.textContent = 'Updated ' + fmtTime(Date.now()) + ' · live';
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(body, errorBanner(e));
      status.textContent = '';
    } finally {
      busy = false;
    }
  }

  let last = '';
  function draw(j, data) {
    // Redraw only what changed, and keep the keyboard's place.
    const sig = JSON.stringify([j.total, data, live]);
    if (sig === last) return;
    last = sig;
    const a = document.activeElement;
    const focused = a && body.contains(a) && a.closest('tr') ?
      a.closest('tr').dataset.task : null;
    paint(j, data);
    if (focused) {
      const again = body.querySelector('tr[data-task="' + focused + '"] a');
      if (again) again.focus();
    }
  }

  function paint(j, data) {
    if (!data.length) {
      replace(body, empty(f.status || f.model || f.from || f.to ?
        'No task matches these filters in this window.' :
        'No tasks in the last 24 hours.',
        h('a', {href: '#/new', class: 'button'}, 'Submit a task')));
      return;
    }
    const pages = Math.max(1, j.total_page || 1);
    replace(body,
      h('table', {class: 'tasks'},
        h('thead', null, h('tr', null,
          ['Task', 'Model', 'Status', 'State', 'Submitted', 'Took']
            .map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', null, data.map((t) => row(t, live)))),
      h('nav', {class: 'pager', 'aria-label': 'Pages'},
        h('a', {class: 'button ghost', href: hashOf({...f, page: f.page - 1}),
                hidden: f.page <= 1}, '← Newer'),
        h('span', {class: 'muted'}, 'Page ' + f.page + ' of ' + pages + ' · ' +
          j.total + ' task' + (j.total === 1 ? '' : 's')),
        h('a', {class: 'button ghost', href: hashOf({...f, page: f.page + 1}),
                hidden: f.page >= pages}, 'Older →')));
  }

  const tick = () => {
    if (document.visibilityState === 'visible') load();
  };
  await load();
  timer = setInterval(tick, LIVE_MS);
  return () => clearInterval(timer);
}
