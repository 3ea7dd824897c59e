// Keys and quotas (admin keys: /api/v1/keys, docs/api.md) and webhooks
// (any key's own endpoints: /api/v1/webhooks). A secret (a new key, a
// webhook's signing secret) is shown once, when it is made.
import {h, replace, errorBanner, empty} from './dom.js';
import {call} from './api.js';

// The list in an answer: output.keys, output as an array, or data.
function listOf(j, name) {
  const o = j.output;
  if (o && Array.isArray(o[name])) return o[name];
  if (Array.isArray(o)) return o;
  if (Array.isArray(j[name])) return j[name];
  if (Array.isArray(j.data)) return j.data;
  return [];
}

function quotaText(q) {
  if (!q) return 'none';
  if (q.balance !== undefined) return 'balance ' + q.balance;
  if (q.seconds !== undefined) return q.seconds + ' s per ' + (q.period || 'day');
  if (q.amount !== undefined) return q.amount + ' per ' + (q.period || 'day');
  return JSON.stringify(q);
}

function secretBox(title, value, note) {
  return h('div', {class: 'banner ok', role: 'status'},
    h('strong', null, title), ' ', h('code', {class: 'secret'}, value),
    h('p', {class: 'small'}, note));
}

function unavailable(e, what) {
  if (e.status === 404) return empty('This server has no ' + what + ' API yet.');
  if (e.status === 403) return errorBanner(e, 'Only an admin key may manage keys.');
  return errorBanner(e);
}

function quotaFields(prefix) {
  const kind = h('select', {id: prefix + '-qkind'},
    h('option', {value: ''}, 'No quota'), h('option', {value: 'seconds'}, 'Seconds'),
    h('option', {value: 'amount'}, 'Amount'), h('option', {value: 'balance'}, 'Prepaid balance'));
  const value = h('input', {id: prefix + '-qvalue', type: 'text', inputmode: 'decimal',
                            placeholder: '3600'});
  const period = h('select', {id: prefix + '-qperiod'},
    h('option', {value: 'day'}, 'per day'), h('option', {value: 'month'}, 'per month'));
  return {
    el: [h('label', {for: prefix + '-qkind'}, 'Quota', kind),
         h('label', {for: prefix + '-qvalue'}, 'Value', value),
         h('label', {for: prefix + '-qperiod'}, 'Period', period)],
    read() {
      if (!kind.value) return undefined;
      const v = value.value.trim();
      if (kind.value === 'balance') return {balance: v};
      return {[kind.value]: kind.value === 'seconds' ? Number(v) : v, period: period.value};
    },
  };
}

export const keys = {
  async render(root, _p, ctx) {
    const listBox = h('div');
    const out = h('div', {'aria-live': 'polite'});
    const name = h('input', {id: 'k-name', type: 'text', maxlength: 64});
    const isAdmin = h('input', {id: 'k-admin', type: 'checkbox'});
    const scenario = h('input', {id: 'k-scenario', type: 'text', placeholder: 'fail-rate=0.1'});
    const quota = quotaFields('k');
    const form = h('form', {class: 'card inline-form'}, h('h2', null, 'New key'),
      h('label', {for: 'k-name'}, 'Name', name), ...quota.el,
      h('label', {for: 'k-scenario'}, 'Default scenario', scenario),
      h('label', {class: 'check', for: 'k-admin'}, isAdmin, 'admin'),
      h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Create')),
      out);
    replace(root, h('div', {class: 'head'}, h('h1', null, 'Keys & quotas')), form, listBox);

    async function load() {
      let j;
      try {
        j = await call('/api/v1/keys', {signal: ctx.signal});
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        form.hidden = e.status === 404 || e.status === 403;
        replace(listBox, unavailable(e, 'keys'));
        return;
      }
      const ks = listOf(j, 'keys');
      replace(listBox, ks.length ? h('table', {class: 'keys'},
        h('thead', null, h('tr', null, ['Key', 'Name', 'Quota', 'Admin', 'State', '']
          .map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', null, ks.map((k) => h('tr', null,
          h('td', {'data-label': 'Key', class: 'mono'}, k.key_id),
          h('td', {'data-label': 'Name'}, k.name || ''),
          h('td', {'data-label': 'Quota'}, quotaText(k.quota)),
          h('td', {'data-label': 'Admin'}, k.admin ? 'yes' : 'no'),
          h('td', {'data-label': 'State'}, k.revoked ? 'revoked' : 'active'),
          h('td', {class: 'actions'},
            k.revoked ? null : h('button', {type: 'button', class: 'ghost',
              onclick: () => act(() => call('/api/v1/keys/' + encodeURIComponent(k.key_id),
                {method: 'PATCH', body: {revoked: true}}),
                'Revoke key ' + k.key_id + '? It stops working at once.')}, 'Revoke'),
            h('button', {type: 'button', class: 'danger',
              onclick: () => act(() => call('/api/v1/keys/' + encodeURIComponent(k.key_id),
                {method: 'DELETE'}), 'Delete key ' + k.key_id + '?')}, 'Delete')))))) :
        empty('No minted keys yet.'));
    }
    async function act(fn, question) {
      if (!window.confirm(question)) return;
      try {
        await fn();
        await load();
      } catch (e) {
        if (e.name !== 'AbortError') replace(out, errorBanner(e));
      }
    }
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {};
      if (name.value.trim()) body.name = name.value.trim();
      if (isAdmin.checked) body.admin = true;
      const q = quota.read();
      if (q) body.quota = q;
      if (scenario.value.trim()) body.scenario = scenario.value.trim();
      try {
        const j = await call('/api/v1/keys', {method: 'POST', body, signal: ctx.signal});
        replace(out, secretBox('New key:', j.output.key,
          'Copy it now: it is not shown again. Its id is ' + j.output.key_id + '.'));
        await load();
      } catch (ex) {
        if (ex.name !== 'AbortError') replace(out, errorBanner(ex));
      }
    });
    await load();
    return null;
  },
};

const EVENTS = ['task.running', 'task.succeeded', 'task.failed', 'task.canceled'];

export const webhooks = {
  async render(root, _p, ctx) {
    const listBox = h('div');
    const out = h('div', {'aria-live': 'polite'});
    const url = h('input', {id: 'w-url', type: 'url', placeholder: 'https://example.com/hook',
                            required: true});
    const boxes = EVENTS.map((ev) => h('input', {type: 'checkbox', value: ev, id: 'w-' + ev,
                                                 checked: ev !== 'task.running'}));
    const form = h('form', {class: 'card inline-form'}, h('h2', null, 'New endpoint'),
      h('label', {for: 'w-url'}, 'URL', url),
      h('fieldset', null, h('legend', null, 'Events'), boxes.map((b) =>
        h('label', {class: 'check', for: b.id}, b, b.value))),
      h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Add')),
      out);
    replace(root, h('div', {class: 'head'}, h('h1', null, 'Webhooks')), form, listBox);

    async function deliveries(w, box) {
      try {
        const j = await call('/api/v1/webhooks/' + encodeURIComponent(w.webhook_id) +
                             '/deliveries', {signal: ctx.signal});
        const ds = listOf(j, 'deliveries');
        replace(box, ds.length ? h('table', {class: 'deliveries'},
          h('thead', null, h('tr', null, ['Event', 'Attempt', 'Status', 'Time', 'Error', '']
            .map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', null, ds.map((d) => h('tr', null,
            h('td', {'data-label': 'Event'}, d.event || d.type || ''),
            h('td', {'data-label': 'Attempt'}, String(d.attempt ?? '')),
            h('td', {'data-label': 'Status'}, String(d.status ?? '')),
            h('td', {'data-label': 'Time'}, d.time || d.created_time || ''),
            h('td', {'data-label': 'Error'}, d.error || ''),
            h('td', null, h('button', {type: 'button', class: 'ghost', onclick: async () => {
              try {
                await call('/api/v1/webhooks/' + encodeURIComponent(w.webhook_id) +
                           '/deliveries/' + encodeURIComponent(d.delivery_id) + '/retry',
                           {method: 'POST', signal: ctx.signal});
                await deliveries(w, box);
              } catch (e) {
                if (e.name !== 'AbortError') box.appendChild(errorBanner(e));
              }
            }}, 'Retry')))))) : empty('No deliveries yet.'));
      } catch (e) {
        if (e.name !== 'AbortError') replace(box, errorBanner(e));
      }
    }

    async function load() {
      let j;
      try {
        j = await call('/api/v1/webhooks', {signal: ctx.signal});
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        form.hidden = e.status === 404 || e.status === 403;
        replace(listBox, unavailable(e, 'webhooks'));
        return;
      }
      const ws = listOf(j, 'webhooks');
      replace(listBox, ws.length ? ws.map((w) => {
        const box = h('div');
        return h('article', {class: 'card'},
          h('h3', {class: 'mono'}, w.url),
          h('p', {class: 'muted small'}, (w.events || []).join(', ') +
            (w.created_time ? ' · since ' + w.created_time : '') +
            (w.disabled ? ' · disabled (410 Gone)' : '')),
          h('div', {class: 'actions'},
            h('button', {type: 'button', class: 'ghost', onclick: () => deliveries(w, box)},
              'Deliveries'),
            h('button', {type: 'button', class: 'danger', onclick: async () => {
              if (!window.confirm('Delete the endpoint ' + w.url + '?')) return;
              try {
                await call('/api/v1/webhooks/' + encodeURIComponent(w.webhook_id),
                           {method: 'DELETE', signal: ctx.signal});
                await load();
              } catch (e) {
                if (e.name !== 'AbortError') replace(out, errorBanner(e));
              }
            }}, 'Delete')), box);
      }) : empty('No webhook endpoints for this key.'));
    }
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const events = boxes.filter((b) => b.checked).map((b) => b.value);
      try {
        const j = await call('/api/v1/webhooks', {method: 'POST', signal: ctx.signal,
                                                  body: {url: url.value.trim(), events}});
        replace(out, secretBox('Signing secret:', j.output.secret,
          'Copy it now: it is not shown again. Verify each delivery\'s ' +
          'webhook-signature with it (Standard Webhooks).'));
        url.value = '';
        await load();
      } catch (ex) {
        if (ex.name !== 'AbortError') replace(out, errorBanner(ex));
      }
    });
    await load();
    return null;
  },
};

