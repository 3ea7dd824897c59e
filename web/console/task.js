// One task: its status (live through GET /api/v1/tasks/{id}/events, read
// with fetch(); polled each second where the server has no stream), the
// video in a player, what was asked (GET /api/v1/tasks/{id}/input), the
// usage, and a failure's code with what a client should do about it.
import {h, replace, badge, progress, errorBanner, empty} from './dom.js';
import {call, stream} from './api.js';
import {advice} from './codes.js';
import {zoneName} from './time.js';

const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELED', 'UNKNOWN'];
const POLL_MS = 1000;

function dl(pairs) {
  return h('dl', {class: 'kv'}, pairs.filter((p) => p[1] !== undefined &&
                                                  p[1] !== null && p[1] !== '')
    .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function mediaItem(m) {
  const what = m.url !== undefined ? m.url :
    'inline ' + (m.inline_type || 'data') + ', ' + m.inline_bytes + ' bytes';
  const isLink = /^https?:\/\//i.test(m.url || '');
  return h('li', null, h('span', {class: 'badge'}, m.type), ' ',
           isLink ? h('a', {href: m.url, rel: 'noreferrer', target: '_blank'}, what) :
                    h('span', {class: 'mono'}, what));
}

function inputs(inp) {
  if (!inp) return empty('The inputs are not available for this task.');
  const p = inp.parameters || {};
  return h('div', null,
    inp.prompt !== undefined ? h('div', null, h('h3', null, 'Prompt'),
                                  h('p', {class: 'prompt'}, inp.prompt)) : null,
    dl([['Model', inp.model], ['Kind', inp.task], ['Resolution', p.resolution],
        ['Ratio', p.ratio], ['Duration', p.duration ? p.duration + ' s' : ''],
        ['Seed', p.seed], ['Watermark', p.watermark === undefined ? '' :
                                        (p.watermark ? 'yes' : 'no')],
        ['Audio', p.audio_setting]]),
    inp.media && inp.media.length ?
      h('div', null, h('h3', null, 'Media'), h('ul', {class: 'media'},
                                               inp.media.map(mediaItem))) : null);
}

function usageBlock(u) {
  if (!u) return null;
  return h('div', {class: 'card'}, h('h2', null, 'Usage'),
    dl([['Billed', u.duration + ' s'], ['Output', u.output_video_duration + ' s'],
        ['Input video', u.input_video_duration ? u.input_video_duration + ' s' : ''],
        ['Videos', u.video_count], ['Resolution', u.SR ? u.SR + 'P' : ''],
        ['Ratio', u.ratio]]));
}

export async function render(root, {rest}, ctx) {
  const id = rest[0] || '';
  const head = h('div', {class: 'head'});
  const statusBox = h('div', {class: 'card status'});
  const videoBox = h('div', {class: 'player'});
  const side = h('div', {class: 'side'});
  const inputBox = h('div', {class: 'card'}, h('h2', null, 'Inputs'));
  const liveNote = h('p', {class: 'muted small', 'aria-live': 'polite'});
  replace(root, h('p', null, h('a', {href: '#/tasks'}, '← Tasks')), head,
          h('div', {class: 'task-grid'},
            h('div', {class: 'main-col'}, statusBox, videoBox),
            h('div', {class: 'side-col'}, side, inputBox)), liveNote);

  let current = null;
  let shownVideo = false;

  function draw(d) {
    const o = d.output || {};
    const st = o.task_status || 'UNKNOWN';
    current = st;
    const cancel = st === 'PENDING' ?
      h('button', {type: 'button', class: 'danger', onclick: doCancel}, 'Cancel') : null;
    replace(head, h('h1', null, 'Task ', h('span', {class: 'mono small'}, id)),
            badge(st), cancel);
    const rows = [];
    if (st === 'UNKNOWN') {
      rows.push(empty('No such task for this key: it never existed, belongs ' +
                      'to another key, or is past its retention.'));
    }
    if (st === 'RUNNING') rows.push(progress(o.progress || 0, 'render progress'));
    if (st === 'PENDING') {
      rows.push(h('p', null, o.queue_position ?
        'Waiting in the queue: #' + o.queue_position + '.' : 'Waiting in the queue.'));
    }
    if (st === 'FAILED') {
      rows.push(h('div', {class: 'failure', role: 'alert'},
        h('p', null, 'Failed with ', h('code', {class: 'code', id: 'fail-code'}, o.code || ''),
          o.message ? ': ' : '', o.message ? h('span', null, o.message) : null),
        h('p', {class: 'advice'}, h('strong', null, 'What to do: '), advice(o.code))));
    }
    rows.push(dl([['Submitted', o.submit_time], ['Started', o.scheduled_time],
                  ['Ended', o.end_time],
                  ['Time zone', o.submit_time ? zoneName(ctx.offset) : '']]));
    replace(statusBox, h('h2', null, 'Status'), rows);
    if ((st === 'PENDING' || st === 'RUNNING') && !shownVideo) {
      replace(videoBox, h('div', {class: 'placeholder'},
        'The video appears here when the task succeeds.'));
    } else if (st !== 'SUCCEEDED') {
      replace(videoBox);
    }
    if (st === 'SUCCEEDED' && o.video_url && !shownVideo) {
      shownVideo = true;
      const v = h('video', {controls: true, preload: 'auto', playsinline: true,
                            src: o.video_url, id: 'video'});
      const err = h('p', {class: 'muted small'});
      v.addEventListener('error', () => {
        err.textContent = 'The video did not load (the link may have expired: ' +
                          'a query signs a new one).';
      });
      replace(videoBox, v, h('p', {class: 'small'},
        h('a', {href: o.video_url, download: id + '.mp4'}, 'Download MP4'),
        ' · the link expires with the task'), err);
    }
    replace(side, usageBlock(d.usage));
  }

  async function doCancel() {
    try {
      await call('/api/v1/tasks/' + encodeURIComponent(id) + '/cancel',
                 {method: 'POST', signal: ctx.signal});
      await refresh();
    } catch (e) {
      if (e.name !== 'AbortError') statusBox.appendChild(errorBanner(e));
    }
  }

  async function refresh() {
    const d = await call('/api/v1/tasks/' + encodeURIComponent(id),
                         {signal: ctx.signal});
    draw(d);
    return d;
  }

  let timer = 0;
  let stopped = false;
  async function poll() {
    while (!stopped && !TERMINAL.includes(current)) {
      await new Promise((r) => { timer = setTimeout(r, POLL_MS); });
      if (stopped) return;
      try {
        await refresh();
      } catch (e) {
        if (e.name === 'AbortError') return;
        liveNote.textContent = 'Update failed (' + e.code + '); retrying.';
      }
    }
  }

  // The status stream; where it is not served (404) or breaks, polling.
  async function follow() {
    let lastId = '';
    for (let tries = 0; !stopped && !TERMINAL.includes(current) && tries < 5; tries++) {
      if (tries) await new Promise((r) => { timer = setTimeout(r, POLL_MS); });
      if (stopped) return;
      try {
        liveNote.textContent = 'Live: following the status stream.';
        await stream('/api/v1/tasks/' + encodeURIComponent(id) + '/events', (ev) => {
          lastId = ev.id || lastId;
          try {
            draw(JSON.parse(ev.data));
          } catch (e) {
            // a malformed event: the next one or the poll corrects it
          }
        }, ctx.signal, lastId);
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e.status === 404 || e.status === 405) break;
      }
    }
    if (!stopped && !TERMINAL.includes(current)) {
      liveNote.textContent = 'Live: polling each second.';
      await poll();
    }
    if (!stopped) liveNote.textContent = '';
  }

  try {
    await refresh();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(statusBox, errorBanner(e));
    return null;
  }
  call('/api/v1/tasks/' + encodeURIComponent(id) + '/input', {signal: ctx.signal})
    .then((j) => replace(inputBox, h('h2', null, 'Inputs'), inputs(j.output)))
    .catch((e) => {
      if (e.name !== 'AbortError') {
        replace(inputBox, h('h2', null, 'Inputs'),
                e.status === 404 ? inputs(null) : errorBanner(e));
      }
    });
  if (!TERMINAL.includes(current)) follow();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
