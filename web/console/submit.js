// New task: the form is drawn from GET /api/v1/models (the media each
// model takes and its parameters with their ranges), local files go
// through POST /api/v1/uploads as they are picked (paddock-upload://
// URLs), and a sandbox model takes a scenario (X-Paddock-Scenario).
import {h, replace, errorBanner, progress} from './dom.js';
import {call, upload, SUBMIT, ApiError} from './api.js';

const KIND_TEXT = {
  't2v': 'text to video',
  'i2v': 'first frame to video',
  'r2v': 'reference images to video',
  'video-edit': 'edit a video',
};
const MEDIA_TEXT = {
  first_frame: 'First frame (image)',
  reference_image: 'Reference images',
  video: 'Video to edit',
};
// Scenario presets for sandbox models (docs/extensions.md, "Scenarios").
const PRESETS = [
  ['Queue 3 s, run 5 s', 'queue=3s,run=5s'],
  ['Realistic ×20', 'realistic,speed=20'],
  ['Fail (InternalError.Algo)', 'run=2s,fail=InternalError.Algo'],
  ['Fail: content refused', 'fail=DataInspectionFailed'],
  ['Slow link', 'link=slow'],
];
const PROMPT_MAX = 5000;

// One media slot: files picked are uploaded at once; URLs may be typed.
function mediaSlot(spec, note) {
  const isVideo = spec.type === 'video';
  const list = h('ul', {class: 'uploads'});
  const items = []; // {url, name, el}
  const file = h('input', {type: 'file', id: 'media-' + spec.type,
                           accept: isVideo ? 'video/mp4,video/quicktime,video/*' :
                                             'image/jpeg,image/png,image/webp',
                           multiple: spec.max > 1});
  const url = h('input', {type: 'url', placeholder: 'or a https:// URL, Enter to add',
                          'aria-label': MEDIA_TEXT[spec.type] + ' URL'});
  function add(entry) {
    const remove = h('button', {type: 'button', class: 'ghost small',
                                'aria-label': 'remove ' + entry.name}, 'Remove');
    entry.state = h('span', {class: 'muted small'});
    entry.el = h('li', null, h('span', {class: 'mono'}, entry.name), ' ', entry.state, ' ', remove);
    remove.addEventListener('click', () => {
      items.splice(items.indexOf(entry), 1);
      entry.el.remove();
      if (entry.abort) entry.abort.abort();
    });
    items.push(entry);
    list.appendChild(entry.el);
  }
  file.addEventListener('change', () => {
    for (const f of file.files) {
      const entry = {name: f.name, url: '', pending: null, abort: new AbortController()};
      add(entry);
      const bar = progress(0, 'upload of ' + f.name);
      entry.state.appendChild(bar);
      entry.pending = upload(f, (p) => {
        const pct = Math.round(p * 100);
        bar.querySelector('.fill').style.width = pct + '%';
        bar.querySelector('.pct').textContent = pct + '%';
      }, entry.abort.signal).then((out) => {
        entry.url = out.url;
        replace(entry.state, 'uploaded, ' + Math.round(out.size / 1024) + ' KB');
      }, (e) => {
        entry.error = e;
        replace(entry.state, h('span', {class: 'error-text'}, e.code + ': ' + e.message));
      });
    }
    file.value = '';
  });
  url.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      const v = url.value.trim();
      if (v) add({name: v, url: v});
      url.value = '';
    }
  });
  const range = spec.min === spec.max ? 'exactly ' + spec.min :
    spec.min + ' to ' + spec.max;
  return {
    type: spec.type, spec, items,
    el: h('fieldset', {class: 'media-slot'},
      h('legend', null, MEDIA_TEXT[spec.type] || spec.type),
      h('p', {class: 'muted small'}, range + (note ? ' · ' + note : '')),
      h('div', {class: 'row'}, file, url), list),
    async collect() {
      const typed = url.value.trim();
      if (typed) {
        add({name: typed, url: typed});
        url.value = '';
      }
      await Promise.all(items.map((i) => i.pending));
      const bad = items.find((i) => i.error);
      if (bad) throw new ApiError(0, bad.error.code, bad.name + ': ' + bad.error.message);
      if (items.length < spec.min || items.length > spec.max) {
        throw new ApiError(0, 'InvalidParameter', (MEDIA_TEXT[spec.type] || spec.type) +
                           ': ' + range + ' needed, got ' + items.length);
      }
      return items.map((i) => ({type: spec.type, url: i.url}));
    },
  };
}

function paramField(name, p) {
  const id = 'p-' + name;
  const words = name.replace(/_/g, ' ');
  const label = words.charAt(0).toUpperCase() + words.slice(1);
  if (p.enum) {
    return {name, el: h('label', {for: id}, label,
      h('select', {id}, p.enum.map((v) => h('option', {value: v, selected: v === p.default}, v)))),
            read: (el) => el.querySelector('select').value};
  }
  if (p.type === 'boolean') {
    return {name, el: h('label', {class: 'check', for: id},
      h('input', {type: 'checkbox', id, checked: !!p.default}), label),
            read: (el) => el.querySelector('input').checked};
  }
  const ph = p.default !== undefined ? String(p.default) : 'random';
  return {name, el: h('label', {for: id}, label + ' (' + p.minimum + '–' + p.maximum + ')',
    h('input', {type: 'number', id, min: p.minimum, max: p.maximum, step: 1,
                placeholder: ph, inputmode: 'numeric'})),
          read: (el) => {
            const v = el.querySelector('input').value.trim();
            return v === '' ? undefined : Number(v);
          }};
}

export async function render(root, _params, ctx) {
  const models = await ctx.models();
  if (!models.length) {
    replace(root, h('h1', null, 'New task'),
            errorBanner({code: 'ModelNotFound', message: 'this server serves no model'}));
    return null;
  }
  const select = h('select', {id: 'model', name: 'model'},
    Object.keys(KIND_TEXT).map((kind) => {
      const ms = models.filter((m) => m.task === kind);
      return ms.length ? h('optgroup', {label: KIND_TEXT[kind]},
        ms.map((m) => h('option', {value: m.name, disabled: !m.available},
                        m.name + (m.available ? '' : ' (unavailable)')))) : null;
    }));
  const prompt = h('textarea', {id: 'prompt', rows: 4, maxlength: PROMPT_MAX,
                                placeholder: 'a horse galloping along a beach at dawn'});
  const count = h('span', {class: 'muted small'});
  prompt.addEventListener('input', () => {
    count.textContent = [...prompt.value].length + ' / ' + PROMPT_MAX;
  });
  const about = h('p', {class: 'muted small'});
  const mediaBox = h('div', {class: 'media-box'});
  const paramBox = h('div', {class: 'params'});
  const scenario = h('input', {id: 'scenario', type: 'text', spellcheck: 'false',
                               placeholder: 'queue=3s,run=5s'});
  const scenarioBox = h('fieldset', {class: 'scenario'},
    h('legend', null, 'Scenario (sandbox only)'),
    h('p', {class: 'muted small'}, 'Sent as X-Paddock-Scenario: make the stand-in ' +
      'wait, run, fail or hand out a slow link.'),
    h('div', {class: 'chips'}, PRESETS.map(([t, v]) =>
      h('button', {type: 'button', class: 'chip', onclick: () => { scenario.value = v; }}, t))),
    h('label', {for: 'scenario'}, 'Directives', scenario));
  const result = h('div', {'aria-live': 'assertive'});
  const send = h('button', {type: 'submit', class: 'primary', id: 'submit'}, 'Submit');

  let slots = [];
  let fields = [];
  function pick() {
    const m = models.find((x) => x.name === select.value) || models[0];
    about.textContent = KIND_TEXT[m.task] + ' · engine ' + m.engine + ' (' +
                        m.backend + ')' + (m.available ? '' : ' · ' + (m.message || 'unavailable'));
    slots = (m.media || []).map((spec) => mediaSlot(spec,
      m.backend === 'sandbox' || m.backend === 'command' || m.backend === 'resident' ?
        'local files are uploaded' : 'this engine takes URLs only'));
    replace(mediaBox, slots.map((s) => s.el));
    fields = Object.entries(m.parameters || {}).map(([k, p]) => paramField(k, p));
    replace(paramBox, fields.map((f) => f.el));
    scenarioBox.hidden = m.backend !== 'sandbox';
    prompt.required = m.task !== 'i2v';
  }
  select.addEventListener('change', pick);
  const firstOk = models.find((m) => m.available);
  if (firstOk) select.value = firstOk.name;

  const form = h('form', {class: 'submit card', novalidate: true},
    h('label', {for: 'model'}, 'Model', select), about,
    h('label', {for: 'prompt'}, 'Prompt', prompt), count,
    mediaBox,
    h('fieldset', null, h('legend', null, 'Parameters'), paramBox),
    scenarioBox,
    h('div', {class: 'actions'}, send), result);
  replace(root, h('div', {class: 'head'}, h('h1', null, 'New task')), form);
  pick();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(result);
    send.disabled = true;
    try {
      const m = models.find((x) => x.name === select.value);
      const media = [];
      for (const s of slots) media.push(...await s.collect());
      const parameters = {};
      for (const f of fields) {
        const v = f.read(f.el);
        if (v !== undefined) parameters[f.name] = v;
      }
      const input = {};
      if (prompt.value.trim()) input.prompt = prompt.value;
      if (media.length) input.media = media;
      const headers = {'X-DashScope-Async': 'enable'};
      if (m.backend === 'sandbox' && scenario.value.trim()) {
        headers['X-Paddock-Scenario'] = scenario.value.trim();
      }
      const j = await call(SUBMIT, {method: 'POST', headers, signal: ctx.signal,
                                    body: {model: m.name, input, parameters}});
      ctx.go('#/task/' + encodeURIComponent(j.output.task_id));
    } catch (ex) {
      if (ex.name === 'AbortError') return;
      replace(result, errorBanner(ex));
    } finally {
      send.disabled = false;
    }
  });
  select.focus();
  return null;
}
