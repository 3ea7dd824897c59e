// The web console in headless Chromium (Debian's /usr/bin/chromium),
// driven by playwright-core, against the paddock test_browser.py started
// on 127.0.0.1 (CONSOLE_URL, KEY). Prints "PASS browser.NAME" or
// "FAIL browser.NAME: why" per case; screenshots of every page at 1280
// and 390 px wide go to SHOTS.
import {chromium} from 'playwright-core';
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';

const BASE = process.env.CONSOLE_URL;
const KEY = process.env.KEY;
const SHOTS = process.env.SHOTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const XSS = '<img src=x onerror="window.__xss=1"> a horse <b>bold</b>';
mkdirSync(SHOTS, {recursive: true});

let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    console.log('PASS browser.' + name);
  } catch (e) {
    failed++;
    console.log('FAIL browser.' + name + ': ' + (e && e.stack || e));
    await page.screenshot({path: join(SHOTS, 'failed-' + name + '.png'), fullPage: true})
      .catch(() => {});
  }
}
function assert(ok, what) {
  if (!ok) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM, headless: true,
  args: ['--no-sandbox', '--no-proxy-server', '--disable-gpu',
         '--autoplay-policy=no-user-gesture-required'],
});
const problems = []; // page errors, console errors, CSP violations
const context = await browser.newContext({viewport: {width: 1280, height: 900}});
// Nothing may be fetched from anywhere but the server under test.
await context.route('**/*', (route) => {
  const u = route.request().url();
  if (u.startsWith(BASE) || u.startsWith('blob:') || u.startsWith('data:')) {
    return route.continue();
  }
  problems.push('request outside the server: ' + u);
  return route.abort();
});
const page = await context.newPage();
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => {
  if (m.type() === 'error' && !/status of (401|403|404)/.test(m.text())) {
    problems.push('console error: ' + m.text());
  }
});
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  // What a task page's status card showed, every time it was redrawn:
  // "progress text|queue line".
  window.__bars = [];
  document.addEventListener('DOMContentLoaded', () => {
    new MutationObserver(() => {
      const b = document.querySelector('.status .bar .pct');
      const q = document.querySelector('.status p');
      window.__bars.push((b ? b.textContent : '') + '|' + (q ? q.textContent : ''));
    }).observe(document.getElementById('view'), {childList: true, subtree: true});
  });
});

async function shots(name) {
  await page.screenshot({path: join(SHOTS, name + '-1280.png'), fullPage: true});
  await page.setViewportSize({width: 390, height: 844});
  await page.waitForTimeout(150);
  await page.screenshot({path: join(SHOTS, name + '-390.png'), fullPage: true});
  await page.setViewportSize({width: 1280, height: 900});
}

const badge = () => page.locator('.page-task .head .badge').first();

// Submit from the form; returns the task id the page moved to.
async function submitTask({model, prompt, scenario, params}) {
  await page.goto(BASE + '/console#/new');
  await page.waitForSelector('#model');
  await page.selectOption('#model', model);
  await page.fill('#prompt', prompt);
  for (const [k, v] of Object.entries(params || {})) {
    const el = page.locator('#p-' + k);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(v);
    else if ((await el.getAttribute('type')) === 'checkbox') await el.setChecked(!!v);
    else await el.fill(String(v));
  }
  if (scenario) await page.fill('#scenario', scenario);
  await page.click('#submit');
  await page.waitForURL(/#\/task\//, {timeout: 20000});
  return decodeURIComponent(page.url().split('#/task/')[1]);
}

async function call(method, path) {
  const r = await fetch(BASE + path, {method, headers: {Authorization: 'Bearer ' + KEY}});
  assert(r.ok, method + ' ' + path + ': ' + r.status);
  return r.json();
}

let okTask = '';
let failTask = '';

await step('headers', async () => {
  const r = await fetch(BASE + '/console');
  const csp = r.headers.get('content-security-policy') || '';
  assert(r.status === 200, 'GET /console answered ' + r.status);
  for (const want of ["default-src 'self'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "object-src 'none'"]) {
    assert(csp.includes(want), 'CSP lacks ' + want + ': ' + csp);
  }
  assert(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), 'CSP allows inline: ' + csp);
  assert(r.headers.get('x-content-type-options') === 'nosniff', 'no nosniff');
  const etag = r.headers.get('etag');
  assert(etag && r.headers.get('cache-control') === 'no-cache', 'no ETag or Cache-Control');
  const html = await r.text();
  assert(!/<script>|<script [^>]*>[^<]/.test(html) && !/ style=/.test(html),
         'inline script or style in index.html');
  const again = await fetch(BASE + '/console', {headers: {'If-None-Match': etag}});
  assert(again.status === 304, 'If-None-Match answered ' + again.status);
  const js = await fetch(BASE + '/console/app.js');
  assert(js.status === 200 && /javascript/.test(js.headers.get('content-type')),
         'app.js: ' + js.status + ' ' + js.headers.get('content-type'));
  const none = await fetch(BASE + '/console/nope.js');
  assert(none.status === 404, 'a missing file answered ' + none.status);
});

await step('wrong_key', async () => {
  await page.goto(BASE + '/console');
  await page.waitForSelector('#key');
  await shots('signin');
  await page.fill('#key', 'not-the-key-0000');
  await page.press('#key', 'Enter');
  const err = page.locator('#signin-error .banner.error');
  await err.waitFor({timeout: 10000});
  const text = await err.innerText();
  assert(/InvalidApiKey/.test(text), 'error shows ' + text);
  assert(await page.locator('#top').isHidden(), 'the navigation shows without a key');
  assert(await page.evaluate(() => sessionStorage.length) === 0, 'a wrong key was kept');
  await shots('signin-error');
});

await step('sign_in', async () => {
  await page.fill('#key', KEY);
  await page.press('#key', 'Enter');
  await page.waitForSelector('.page-tasks .empty, .page-tasks table', {timeout: 10000});
  assert(await page.locator('#top').isVisible(), 'no navigation after sign-in');
  assert(await page.evaluate(() => sessionStorage.getItem('paddock.key')) === KEY,
         'the key is not in sessionStorage');
  await shots('tasks-empty');
});

await step('submit_and_watch', async () => {
  okTask = await submitTask({model: 'happyhorse-1.0-t2v', prompt: 'a horse on a beach at dawn',
                             scenario: 'queue=2s,run=3s',
                             params: {resolution: '480P', duration: 3, seed: 7}});
  // Every status the badge shows, in order, as the page redraws it.
  await page.evaluate(() => {
    window.__seen = [];
    const note = () => {
      const b = document.querySelector('.page-task .head .badge');
      const t = b && b.textContent;
      if (t && window.__seen[window.__seen.length - 1] !== t) window.__seen.push(t);
    };
    note();
    new MutationObserver(note).observe(document.getElementById('view'),
                                       {childList: true, subtree: true, characterData: true});
  });
  await page.waitForFunction(() => (window.__seen || []).includes('RUNNING'), null,
                             {timeout: 30000});
  await page.locator('.status .bar').waitFor();
  await shots('task-running');
  await page.waitForFunction(() => (window.__seen || []).includes('SUCCEEDED'), null,
                             {timeout: 60000});
  const seen = await page.evaluate(() => window.__seen);
  const order = ['PENDING', 'RUNNING', 'SUCCEEDED'];
  assert(JSON.stringify(seen.filter((s) => order.includes(s))) === JSON.stringify(order),
         'statuses seen: ' + seen.join(' → '));
});

await step('video_plays', async () => {
  const v = page.locator('#video');
  await v.waitFor({timeout: 10000});
  await page.waitForFunction(() => {
    const e = document.getElementById('video');
    return e && e.readyState >= 2;
  }, null, {timeout: 30000});
  const seeked = await page.evaluate(() => new Promise((resolve) => {
    const e = document.getElementById('video');
    e.addEventListener('seeked', () => resolve(e.currentTime), {once: true});
    e.currentTime = 2;
  }));
  assert(seeked > 1.5, 'seek ended at ' + seeked);
  await page.evaluate(() => document.getElementById('video').play());
  await page.waitForFunction(() => document.getElementById('video').readyState >= 2);
  const inputs = await page.locator('.side-col').innerText();
  assert(/480P/.test(inputs) && /a horse on a beach/.test(inputs), 'inputs: ' + inputs);
  assert(/Billed/.test(inputs), 'no usage: ' + inputs);
  await page.evaluate(() => document.getElementById('video').pause());
  await shots('task-succeeded');
});

// The status stream as h/stream's route sends it (docs/api.md: event:
// the status, data: the query answer), here played by the test for a
// task held PENDING: CRLF lines, a comment, data over two lines.
await step('status_stream', async () => {
  const id = await submitTask({model: 'happyhorse-1.0-t2v', prompt: 'held in the queue',
                               scenario: 'queue=60s', params: {resolution: '480P'}});
  const ans = (o) => JSON.stringify({request_id: 'r', output: Object.assign({task_id: id}, o)});
  const run = ans({task_status: 'RUNNING', progress: 42});
  const cut = run.indexOf('"output"'); // two data lines, joined by a newline
  // The first connection ends after PENDING; the page comes back with
  // Last-Event-ID and gets RUNNING.
  const first = ': hello\r\n\r\n' +
    'id: 1\r\nevent: PENDING\r\ndata: ' + ans({task_status: 'PENDING', queue_position: 3}) +
    '\r\n\r\n';
  const second = 'id: 2\nevent: RUNNING\ndata: ' + run.slice(0, cut) + '\ndata: ' +
    run.slice(cut) + '\n\n';
  let asked = 0;
  let lastId = null;
  // Leave the task page first (its requests are aborted), so that only
  // the page opened below meets the test's stream.
  await page.goto(BASE + '/console#/tasks');
  await page.locator('tr[data-task="' + id + '"]').waitFor();
  await page.route('**/api/v1/tasks/' + id + '/events', (route) => {
    asked++;
    const hd = route.request().headers();
    if (asked === 2) lastId = hd['last-event-id'] || '';
    if (hd['authorization'] !== 'Bearer ' + KEY) return route.fulfill({status: 401, body: '{}'});
    return route.fulfill({status: 200, contentType: 'text/event-stream',
                          body: asked === 1 ? first : second});
  });
  await page.evaluate(() => { window.__bars = []; });
  await page.goto(BASE + '/console#/task/' + id);
  try {
    await page.waitForFunction(() => window.__bars.some((x) => x.startsWith('42%')), null,
                               {timeout: 20000});
  } catch (e) {
    throw new Error('no 42% after ' + asked + ' streams: ' +
                    JSON.stringify(await page.evaluate(() => window.__bars)));
  }
  const bars = await page.evaluate(() => window.__bars);
  assert(bars.some((x) => x.includes('#3')), 'no queue position #3: ' + JSON.stringify(bars));
  for (let i = 0; i < 100 && asked < 2; i++) await page.waitForTimeout(100);
  assert(asked >= 2, 'the stream was not asked for again: ' + asked);
  assert(lastId === '1', 'Last-Event-ID on the second request: ' + lastId);
  await page.unroute('**/api/v1/tasks/' + id + '/events');
  await call('POST', '/api/v1/tasks/' + id + '/cancel');
});

await step('failed_task_code', async () => {
  failTask = await submitTask({model: 'happyhorse-1.1-t2v', prompt: 'a horse that fails',
                               scenario: 'fail=DataInspectionFailed',
                               params: {resolution: '480P', duration: 3}});
  await page.locator('#fail-code').waitFor({timeout: 60000});
  assert(await badge().innerText() === 'FAILED', 'badge ' + await badge().innerText());
  assert(await page.locator('#fail-code').innerText() === 'DataInspectionFailed', 'code');
  const adv = await page.locator('.failure .advice').innerText();
  assert(/Change the prompt/.test(adv), 'advice: ' + adv);
  await shots('task-failed');
});

await step('upload_local_image', async () => {
  await page.goto(BASE + '/console#/new');
  await page.waitForSelector('#model');
  await page.selectOption('#model', 'happyhorse-1.0-i2v');
  await page.setInputFiles('#media-first_frame', process.env.IMAGE);
  await page.getByText(/uploaded, \d+ KB/).waitFor({timeout: 20000});
  await page.selectOption('#p-resolution', '480P');
  await page.fill('#p-duration', '3');
  await page.click('#submit');
  await page.waitForURL(/#\/task\//, {timeout: 20000});
  await page.locator('#video').waitFor({timeout: 60000});
  const media = await page.locator('ul.media').innerText();
  assert(/first_frame/.test(media) && /paddock-upload:\/\//.test(media), 'media: ' + media);
});

await step('xss_as_text', async () => {
  await submitTask({model: 'happyhorse-1.0-t2v', prompt: XSS,
                    params: {resolution: '480P', duration: 3}});
  const p = page.locator('.prompt');
  await p.waitFor({timeout: 20000});
  assert(await p.innerText() === XSS, 'prompt shown as ' + await p.innerText());
  assert(await page.locator('.prompt img, .prompt b').count() === 0, 'markup was parsed');
  await page.waitForTimeout(300);
  assert(await page.evaluate(() => window.__xss) === undefined, 'the onerror ran');
});

await step('tasks_list', async () => {
  await page.goto(BASE + '/console#/tasks');
  await page.locator('tr[data-task="' + okTask + '"]').waitFor({timeout: 10000});
  assert(await page.locator('tbody tr').count() === 5, 'rows: ' + await page.locator('tbody tr').count());
  await shots('tasks');
  await page.selectOption('#f-status', 'FAILED');
  await page.click('.filters button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1 &&
    document.querySelector('tbody tr').dataset.status === 'FAILED', null, {timeout: 10000});
  assert(await page.locator('tr[data-task="' + failTask + '"] .code').innerText() ===
         'DataInspectionFailed', 'the failed row shows no code');
  // Keyboard: the row's link opens the task.
  await page.locator('tr[data-task="' + failTask + '"] a').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp('#/task/' + failTask));
  await page.goto(BASE + '/console#/tasks?model=happyhorse-1.1-i2v');
  await page.locator('.page-tasks .empty').waitFor({timeout: 10000});
});

// Usage as E5 answers it. Where this server has no usage route yet (404),
// the page's empty state is checked, then the chart is drawn from
// answers the test gives in E5's shape.
await step('usage', async () => {
  const probe = await fetch(BASE + '/api/v1/usage', {headers: {Authorization: 'Bearer ' + KEY}});
  await page.goto(BASE + '/console#/usage');
  if (probe.status === 404) {
    await page.getByText('does not keep usage').waitFor({timeout: 10000});
    const rows = {
      day: [{day: '2026-12-01', model: 'happyhorse-1.0-t2v', tasks: 2, seconds: 10, amount: '1.00'},
            {day: '2026-12-01', model: 'happyhorse-1.0-i2v', tasks: 1, seconds: 5, amount: '0.50'},
            {day: '2026-12-02', model: 'happyhorse-1.0-t2v', tasks: 1, seconds: 3, amount: '0.30'}],
      model: [{model: 'happyhorse-1.0-t2v', tasks: 3, seconds: 13, amount: '1.30'},
              {model: 'happyhorse-1.0-i2v', tasks: 1, seconds: 5, amount: '0.50'}],
    };
    await page.route('**/api/v1/usage?*', (route) => {
      const by = new URL(route.request().url()).searchParams.get('group_by');
      route.fulfill({status: 200, contentType: 'application/json', body: JSON.stringify({
        request_id: 'r', output: {total: {tasks: 4, seconds: 18, amount: '1.80'}, rows: rows[by]}})});
    });
    await page.goto(BASE + '/console#/usage?days=30');
  }
  await page.locator('#total-seconds').waitFor({timeout: 10000});
  const sec = Number(await page.locator('#total-seconds').innerText());
  assert(sec >= 3, 'billed seconds shown: ' + sec);
  await page.locator('svg.chart rect').first().waitFor();
  if (probe.status === 404) {
    assert(await page.locator('svg.chart rect').count() === 3, 'bars: ' +
           await page.locator('svg.chart rect').count());
    assert(await page.locator('table.usage tbody tr').count() === 2, 'model rows');
    await page.unroute('**/api/v1/usage?*');
  }
  await shots('usage');
});

// The keys page (E5) in the same way: the real route when the server has
// it, else answers in E5's shape.
await step('keys_page', async () => {
  const probe = await fetch(BASE + '/api/v1/keys', {headers: {Authorization: 'Bearer ' + KEY}});
  if (probe.status === 404) {
    await page.route('**/api/v1/keys', (route) => route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({
        request_id: 'r', output: {keys: [
          {key_id: 'key_1', name: 'ci <b>runner</b>', admin: false,
           quota: {seconds: 3600, period: 'day'}},
          {key_id: 'key_2', name: 'ops', admin: true, revoked: true}]}})}));
  }
  await page.goto(BASE + '/console#/keys');
  await page.locator('.page-keys table.keys, .page-keys .banner, .page-keys .empty')
    .first().waitFor({timeout: 10000});
  if (probe.status === 404) {
    const text = await page.locator('table.keys').innerText();
    assert(/ci <b>runner<\/b>/.test(text) && /3600 s per day/.test(text) && /revoked/.test(text),
           'keys: ' + text);
    await page.unroute('**/api/v1/keys');
  }
  await shots('keys');
});

await step('engines', async () => {
  await page.goto(BASE + '/console#/engines');
  const card = page.locator('article[data-engine="default"]');
  await card.waitFor({timeout: 10000});
  const text = await card.innerText();
  assert(/sandbox/.test(text) && /Capacity\s*2/.test(text) && /up/.test(text), 'engine: ' + text);
  assert(await page.locator('table.models tbody tr').count() >= 4, 'fewer than 4 models');
  await shots('engines');
});

await step('new_task_form', async () => {
  await page.goto(BASE + '/console#/new');
  await page.selectOption('#model', 'happyhorse-1.0-video-edit');
  await page.locator('#media-video').waitFor();
  assert(await page.locator('#media-reference_image').count() === 1, 'no reference slot');
  await shots('new-task');
});

await step('admin_pages', async () => {
  await page.goto(BASE + '/console#/webhooks');
  await page.locator('.page-webhooks .empty, .page-webhooks .card').first().waitFor();
  await shots('webhooks');
});

await step('sign_out', async () => {
  await page.click('#signout');
  await page.locator('#key').waitFor();
  assert(await page.evaluate(() => sessionStorage.getItem('paddock.key')) === null,
         'the key stayed');
});

await step('no_page_errors', async () => {
  assert(problems.length === 0, problems.join('\n'));
});

await browser.close();
process.exit(failed ? 1 : 0);
