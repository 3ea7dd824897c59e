// The API as the console calls it: the key from sessionStorage as
// "Authorization: Bearer", JSON in and out, errors as ApiError with the
// API's code and message; the status stream read with fetch() (EventSource
// cannot send the header).

const STORE = 'paddock.key';

export function getKey() {
  return sessionStorage.getItem(STORE) || '';
}

export function setKey(k) {
  if (k) sessionStorage.setItem(STORE, k);
  else sessionStorage.removeItem(STORE);
}

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId || '';
  }
}

// Set by the app: called when the server refuses the key (401).
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

function headers(extra, key) {
  const hd = Object.assign({}, extra || {});
  const k = key === undefined ? getKey() : key;
  if (k) hd['Authorization'] = 'Bearer ' + k;
  return hd;
}

async function failure(r) {
  const text = await r.text();
  let j = null;
  try {
    j = text ? JSON.parse(text) : null;
  } catch (e) {
    j = null;
  }
  const code = (j && (j.code || (j.error && j.error.code))) || 'HTTP ' + r.status;
  const msg = (j && (j.message || (j.error && j.error.message))) ||
              text.slice(0, 300) || r.statusText;
  return new ApiError(r.status, code, msg, (j && j.request_id) ||
                      r.headers.get('X-Request-Id'));
}

// call('/api/v1/tasks', {query: {...}, method, body, headers, key, signal})
export async function call(path, opts = {}) {
  const o = opts;
  let url = path;
  if (o.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(o.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += '?' + qs;
  }
  const hd = headers(o.headers, o.key);
  let body = o.body;
  if (body !== undefined && !(body instanceof Blob)) {
    hd['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, {method: o.method || 'GET', headers: hd, body,
                          signal: o.signal, cache: 'no-store',
                          credentials: 'omit'});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError',
                       'the server could not be reached (' + e.message + ')');
  }
  if (!r.ok) {
    const err = await failure(r);
    if (r.status === 401 && o.key === undefined) unauthorized(err);
    throw err;
  }
  const text = await r.text();
  return text ? JSON.parse(text) : {};
}

// An upload with progress: XMLHttpRequest, since fetch() reports none.
export function upload(file, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/uploads');
    x.setRequestHeader('Authorization', 'Bearer ' + getKey());
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.responseType = 'text';
    x.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    x.onerror = () => reject(new ApiError(0, 'NetworkError',
                                          'the upload was cut off'));
    x.onload = () => {
      let j = null;
      try {
        j = JSON.parse(x.responseText);
      } catch (e) {
        j = null;
      }
      if (x.status === 200 && j && j.output) resolve(j.output);
      else reject(new ApiError(x.status, (j && j.code) || 'HTTP ' + x.status,
                               (j && j.message) || x.statusText,
                               j && j.request_id));
    };
    if (signal) signal.addEventListener('abort', () => x.abort());
    x.send(file);
  });
}

// Read a text/event-stream: onEvent({id, event, data}) per event. Resolves
// when the server closes it; rejects with ApiError on a refusal (404 where
// the server has no stream).
export async function stream(path, onEvent, signal, lastId) {
  const hd = headers({Accept: 'text/event-stream'});
  if (lastId) hd['Last-Event-ID'] = lastId;
  const r = await fetch(path, {headers: hd, signal, cache: 'no-store',
                               credentials: 'omit'});
  if (!r.ok) throw await failure(r);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = {id: '', event: 'message', data: []};
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.data.length) onEvent({id: ev.id, event: ev.event,
                                     data: ev.data.join('\n')});
        ev = {id: ev.id, event: 'message', data: []};
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? '' : line.slice(c + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'data') ev.data.push(val);
      else if (field === 'event') ev.event = val;
      else if (field === 'id') ev.id = val;
    }
  }
}

export const SUBMIT = '/api/v1/services/aigc/video-generation/video-synthesis';
