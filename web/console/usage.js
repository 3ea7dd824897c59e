// Usage: billed seconds and amounts of this key (GET /api/v1/usage), per
// day as an SVG bar chart drawn here (stacked by model when the rows carry
// both), and per model as a table with bars. Windows: 7 or 30 days.
import {h, s, replace, errorBanner, empty} from './dom.js';
import {call} from './api.js';
import {serverStamp, zoneName} from './time.js';

const DAY = 24 * 3600 * 1000;
const COLORS = ['#2f6fb0', '#d9822b', '#3a9d5d', '#a34fb5', '#c23b3b',
                '#6b7f99', '#b89b1f'];

const dayOf = (r) => r.day || r.date || r.period || r.group || '';
const num = (v) => Number(v) || 0;

// rows -> [{day, parts: [{model, seconds}]}]
function byDay(rows) {
  const days = new Map();
  for (const r of rows) {
    const d = dayOf(r);
    if (!days.has(d)) days.set(d, []);
    days.get(d).push({model: r.model || 'all', seconds: num(r.seconds),
                      tasks: num(r.tasks), amount: r.amount});
  }
  return [...days.entries()].sort((a, b) => a[0] < b[0] ? -1 : 1)
    .map(([day, parts]) => ({day, parts}));
}

function niceMax(v) {
  if (v <= 0) return 10;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function chart(days, models) {
  const W = 720;
  const H = 260;
  const L = 48;
  const B = 40;
  const T = 12;
  const max = niceMax(Math.max(0, ...days.map((d) =>
    d.parts.reduce((a, p) => a + p.seconds, 0))));
  const bw = (W - L - 8) / Math.max(1, days.length);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const g = [];
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    g.push(s('line', {x1: L, x2: W - 4, y1: y(v), y2: y(v), class: 'grid'}),
           s('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick'},
             String(Math.round(v))));
  }
  days.forEach((d, i) => {
    let acc = 0;
    const w = Math.max(1, Math.min(bw * 0.7, 56)); // a few days: no slabs
    const x = L + i * bw + (bw - w) / 2;
    for (const p of d.parts) {
      const top = y(acc + p.seconds);
      const hgt = y(acc) - top;
      const c = COLORS[Math.max(0, models.indexOf(p.model)) % COLORS.length];
      g.push(s('rect', {x, y: top, width: w, height: Math.max(0, hgt),
                        fill: c},
               s('title', null, d.day + ' · ' + p.model + ': ' + p.seconds + ' s')));
      acc += p.seconds;
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 10) === 0) {
      g.push(s('text', {x: x + w / 2, y: H - B + 16, 'text-anchor': 'middle',
                        class: 'tick'}, String(d.day).slice(-5)));
    }
  });
  g.push(s('text', {x: 4, y: T + 4, class: 'tick'}, 's'));
  return s('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img',
                   'aria-label': 'billed seconds per day'}, ...g);
}

export async function render(root, {query}, ctx) {
  const span = query.get('days') === '30' ? 30 : 7;
  const now = Date.now();
  const q = {start_time: serverStamp(now - span * DAY, ctx.offset),
             end_time: serverStamp(now, ctx.offset)};
  const body = h('div');
  replace(root, h('div', {class: 'head'}, h('h1', null, 'Usage'),
    h('nav', {class: 'seg', 'aria-label': 'Window'},
      [7, 30].map((d) => h('a', {href: '#/usage?days=' + d, class: 'button ghost',
                                 'aria-current': d === span ? 'page' : null},
                           'Last ' + d + ' days')))),
    h('p', {class: 'muted small'}, 'Days in ' + zoneName(ctx.offset) +
      ', as the server counts them. Failed and canceled tasks cost nothing.'),
    body);
  let day;
  let model;
  try {
    [day, model] = await Promise.all([
      call('/api/v1/usage', {query: {...q, group_by: 'day'}, signal: ctx.signal}),
      call('/api/v1/usage', {query: {...q, group_by: 'model'}, signal: ctx.signal})]);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(body, e.status === 404 ?
      empty('This server does not keep usage (no GET /api/v1/usage).') : errorBanner(e));
    return null;
  }
  const total = (day.output && day.output.total) || {};
  const dayRows = (day.output && day.output.rows) || [];
  const modelRows = ((model.output && model.output.rows) || [])
    .slice().sort((a, b) => num(b.seconds) - num(a.seconds));
  const days = byDay(dayRows);
  const models = [...new Set([...modelRows.map((r) => r.model),
                              ...dayRows.map((r) => r.model || 'all')])];
  const maxS = Math.max(1, ...modelRows.map((r) => num(r.seconds)));
  replace(body,
    h('div', {class: 'grid totals'},
      h('div', {class: 'card stat'}, h('span', {class: 'big', id: 'total-seconds'},
                                      String(num(total.seconds))), 'billed seconds'),
      h('div', {class: 'card stat'}, h('span', {class: 'big'}, String(num(total.tasks))),
        'tasks'),
      h('div', {class: 'card stat'}, h('span', {class: 'big'}, String(total.amount || '0')),
        'amount')),
    h('div', {class: 'card'}, h('h2', null, 'Per day'),
      days.length ? chart(days, models) : empty('No usage in this window.'),
      days.length && models.length > 1 ? h('ul', {class: 'legend'}, models.map((m, i) =>
        h('li', null, h('span', {class: 'swatch c' + (i % COLORS.length)}), m))) : null),
    h('div', {class: 'card'}, h('h2', null, 'Per model'),
      modelRows.length ? h('table', {class: 'usage'},
        h('thead', null, h('tr', null, ['Model', 'Tasks', 'Seconds', 'Amount', '']
          .map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', null, modelRows.map((r) => {
          const bar = h('span', {class: 'hbar'});
          bar.style.width = Math.round(100 * num(r.seconds) / maxS) + '%';
          return h('tr', null, h('td', {'data-label': 'Model', class: 'mono'}, r.model || ''),
            h('td', {'data-label': 'Tasks'}, String(num(r.tasks))),
            h('td', {'data-label': 'Seconds'}, String(num(r.seconds))),
            h('td', {'data-label': 'Amount'}, String(r.amount || '0')),
            h('td', {class: 'barcell'}, bar));
        }))) : empty('No usage in this window.')));
  return null;
}
