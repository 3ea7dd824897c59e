// Building the page from nodes, never from markup: every string from the API
// goes in as a text node, so a prompt like <img src=x onerror=...> shows as text.

// h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, [more])
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'disabled' ||
               k === 'selected' || k === 'hidden') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else if (k instanceof Node) el.appendChild(k);
    else el.appendChild(document.createTextNode(String(k)));
  }
}

// SVG elements (the usage chart), attributes set as given.
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, kids);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...kids) {
  clear(el);
  append(el, kids);
  return el;
}

// A status word as a badge.
export function badge(status) {
  return h('span', {class: 'badge st-' + String(status || 'UNKNOWN').toLowerCase()},
           status || 'UNKNOWN');
}

// Its width through the CSSOM, which the policy allows (no style
// attribute is parsed from markup).
export function progress(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const fill = h('span', {class: 'fill'});
  fill.style.width = p + '%';
  return h('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0,
                   'aria-valuemax': 100, 'aria-valuenow': p,
                   'aria-label': label || 'progress'},
           fill, h('span', {class: 'pct'}, p + '%'));
}

// An error from the API (or the network) as a banner: the code, the
// message and the request id, all as text.
export function errorBanner(err, advice) {
  return h('div', {class: 'banner error', role: 'alert'},
           h('strong', null, err.code || 'Error'), ' ',
           h('span', null, err.message || String(err)),
           advice ? h('p', {class: 'advice'}, advice) : null,
           err.requestId ? h('p', {class: 'muted small'}, 'request_id ' + err.requestId) : null);
}

export function empty(text, ...extra) {
  return h('div', {class: 'empty'}, h('p', null, text), ...extra);
}

export function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) +
         ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
}

export function fmtSpan(ms) {
  if (ms === null || ms === undefined || ms < 0) return '';
  if (ms < 1000) return ms + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + ' s';
  const m = Math.floor(s / 60);
  return m + ' min ' + Math.round(s - m * 60) + ' s';
}
