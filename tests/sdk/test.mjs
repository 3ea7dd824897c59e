// The Vercel AI SDK against a real paddock: `ai`'s experimental_generateVideo
// with the `@ai-sdk/alibaba` provider, configured with nothing but paddock's
// base URL and key. Started by test_sdk.py, which runs the servers and
// passes them in the environment:
//
//   SANDBOX_URL, SANDBOX_DATA  a paddock on the sandbox engine (deterministic
//                              renders), --fetch-allow 127.0.0.1/32
//   RECORD_URL, RECORD_DIR     a paddock on a command engine that writes each
//                              job it is handed (docs/engines.md) to RECORD_DIR
//   KEY                        the API key of both
//   IMAGE                      a 640x480 PNG (a 4:3 first frame / reference)
//
// Every check prints "ok - ..."; the first failure throws (exit 1). Nothing
// here touches the network beyond 127.0.0.1. docs/sdk.md has the mapping.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { basename, join } from 'node:path';
import assert from 'node:assert/strict';

import { experimental_generateVideo as generateVideo } from 'ai';
import { createAlibaba } from '@ai-sdk/alibaba';

const env = name => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through test_sdk.py)`);
  return v;
};
const SANDBOX_URL = env('SANDBOX_URL');
const SANDBOX_DATA = env('SANDBOX_DATA');
const RECORD_URL = env('RECORD_URL');
const RECORD_DIR = env('RECORD_DIR');
const KEY = env('KEY');
const IMAGE = readFileSync(env('IMAGE'));

const ok = what => console.log(`ok - ${what}`);
const PINNED = JSON.parse(readFileSync(new URL('./package.json', import.meta.url))).dependencies;

// ------------------------------------------------------------ the wire
// Every request the SDK makes goes through globalThis.fetch (provider-utils
// looks it up per call): record them, change nothing. Anything that is not
// 127.0.0.1 is refused, so the test cannot reach the network by accident.
const realFetch = globalThis.fetch;
const wire = [];
globalThis.fetch = async (input, init = {}) => {
  const url = new URL(typeof input === 'string' ? input : input.url ?? input.href);
  if (url.hostname !== '127.0.0.1')
    throw new Error(`the test only talks to 127.0.0.1, not ${url}`);
  const entry = {
    method: init.method ?? 'GET',
    url: url.toString(),
    headers: Object.fromEntries(new Headers(init.headers ?? {}).entries()),
    body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
  };
  const res = await realFetch(input, init);
  entry.status = res.status;
  wire.push(entry);
  return res;
};

// The SDK's default downloader refuses loopback and private hosts (a guard
// against SSRF in servers): paddock's video_url is http://127.0.0.1:PORT/...
// here, so hand it a plain one, as the SDK's `download` option allows.
async function download({ url, abortSignal }) {
  const res = await realFetch(url, { signal: abortSignal });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return {
    data: new Uint8Array(await res.arrayBuffer()),
    mediaType: res.headers.get('content-type') ?? undefined,
  };
}

// Only the base URL and the key change; everything else is the provider's
// default (its video API lives under videoBaseURL, the DashScope native
// endpoint; baseURL is the chat endpoint and is not used for video).
const sandbox = createAlibaba({ videoBaseURL: SANDBOX_URL, apiKey: KEY });
const recorded = createAlibaba({ videoBaseURL: RECORD_URL, apiKey: KEY });

// ------------------------------------------------------------ helpers

const sha = b => createHash('sha256').update(b).digest('hex');

// ffprobe gets a file: on a pipe it stops reading once it has the moov
// box (faststart puts it first), and the writer gets EPIPE.
const TMP = mkdtempSync(join(tmpdir(), 'paddock-sdk-probe-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));

function probe(bytes) {
  const path = join(TMP, 'video.mp4');
  writeFileSync(path, bytes);
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path],
    { maxBuffer: 64 << 20 },
  );
  const info = JSON.parse(out);
  const video = info.streams.find(s => s.codec_type === 'video');
  return { format: info.format, video };
}

// The SDK's video: exactly the MP4 paddock stored, H.264 of the wanted
// size and length. Returns the bytes.
async function checkVideo(result, { width, height, seconds, data }) {
  const bytes = result.video.uint8Array;
  assert.equal(result.video.mediaType, 'video/mp4');
  assert.equal(result.videos.length, 1);
  const meta = result.providerMetadata.alibaba;
  // The same bytes as a fresh GET of the task's video_url ...
  const again = new Uint8Array(await (await realFetch(meta.videoUrl)).arrayBuffer());
  assert.equal(sha(bytes), sha(again), 'SDK bytes differ from video_url');
  // ... and as the task's file under DATA/results/ (the sandbox's store).
  if (data) {
    const file = join(data, 'results', basename(new URL(meta.videoUrl).pathname));
    assert.ok(file.includes(meta.taskId), file);
    assert.equal(sha(bytes), sha(readFileSync(file)), `${file} differs from the SDK's bytes`);
  }
  assert.equal(Buffer.from(bytes.subarray(4, 8)).toString('latin1'), 'ftyp');
  const { format, video } = probe(bytes);
  assert.match(format.format_name, /mp4/);
  assert.equal(video.codec_name, 'h264');
  assert.equal(video.pix_fmt, 'yuv420p');
  assert.deepEqual([video.width, video.height], [width, height]);
  assert.ok(
    Math.abs(Number(format.duration) - seconds) < 0.25,
    `duration ${format.duration}, want ${seconds}`,
  );
  return bytes;
}

// The last submit the SDK sent, checked for its route and headers.
function lastSubmit(base) {
  const s = wire.filter(e => e.method === 'POST').at(-1);
  assert.equal(s.url, `${base}/api/v1/services/aigc/video-generation/video-synthesis`);
  assert.equal(s.headers.authorization, `Bearer ${KEY}`);
  assert.equal(s.headers['x-dashscope-async'], 'enable');
  assert.match(s.headers['content-type'], /^application\/json/);
  assert.ok(s.headers['user-agent'].startsWith(`ai/${PINNED.ai} `), s.headers['user-agent']);
  assert.equal(s.status, 200);
  return s.body;
}

// The same task in paddock's own field names, straight over HTTP: the
// sandbox renders the same bytes for the same prompt, media, seed and
// parameters, so equal bytes prove every SDK field was mapped as intended.
async function canonical(body) {
  const h = { Authorization: `Bearer ${KEY}`, 'X-DashScope-Async': 'enable',
              'Content-Type': 'application/json' };
  let r = await realFetch(`${SANDBOX_URL}/api/v1/services/aigc/video-generation/video-synthesis`,
                          { method: 'POST', headers: h, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  const id = (await r.json()).output.task_id;
  const deadline = Date.now() + 180_000;
  for (;;) {
    r = await realFetch(`${SANDBOX_URL}/api/v1/tasks/${id}`, { headers: h });
    const out = (await r.json()).output;
    if (out.task_status === 'SUCCEEDED')
      return new Uint8Array(await (await realFetch(out.video_url)).arrayBuffer());
    assert.ok(['PENDING', 'RUNNING'].includes(out.task_status), JSON.stringify(out));
    assert.ok(Date.now() < deadline, `task ${id} still ${out.task_status}`);
    await new Promise(res => setTimeout(res, 100));
  }
}

const fast = { pollIntervalMs: 200, pollTimeoutMs: 180_000 };
const PROMPT = 'a horse galloping along a beach at dawn';
const pngB64 = IMAGE.toString('base64');

// ------------------------------------------------------------ text to video

async function t2v() {
  // The provider's defaults throughout (a 5 s poll), every option it maps.
  const result = await generateVideo({
    model: sandbox.video('happyhorse-1.0-t2v'),
    prompt: PROMPT,
    resolution: '832x480',
    duration: 3,
    seed: 42,
    generateAudio: false,
    providerOptions: {
      alibaba: {
        negativePrompt: 'blurry, low quality',
        promptExtend: false,
        watermark: false,
        shotType: 'single',
      },
    },
    download,
  });
  const body = lastSubmit(SANDBOX_URL);
  assert.deepEqual(body, {
    model: 'happyhorse-1.0-t2v',
    input: { prompt: PROMPT, negative_prompt: 'blurry, low quality' },
    parameters: { duration: 3, seed: 42, size: '832*480', prompt_extend: false,
                  shot_type: 'single', watermark: false, audio: false },
  });
  ok('t2v: the SDK sends size "832*480", duration, seed, watermark, prompt_extend, shot_type, audio, negative_prompt');
  const polls = wire.filter(e => e.method === 'GET' && e.url.includes('/api/v1/tasks/'));
  assert.ok(polls.length >= 1 && polls.every(p => p.status === 200));
  assert.equal(polls.at(-1).headers.authorization, `Bearer ${KEY}`);
  ok(`t2v: polled GET /api/v1/tasks/{id} ${polls.length}x, all 200`);

  const bytes = await checkVideo(result, { width: 832, height: 480, seconds: 3, data: SANDBOX_DATA });
  ok('t2v: the SDK returns the exact MP4 paddock stored: H.264 832x480, 3 s');
  const meta = result.providerMetadata.alibaba;
  assert.equal(meta.usage.resolution, 480);
  assert.equal(meta.usage.duration, 3);
  assert.equal(meta.usage.outputVideoDuration, 3);
  assert.equal(meta.usage.ratio, '16:9');
  assert.match(meta.taskId, /^[0-9a-f-]{36}$/);
  ok('t2v: providerMetadata carries taskId and usage (SR 480, 3 s, 16:9)');

  const same = await canonical({
    model: 'happyhorse-1.0-t2v', input: { prompt: PROMPT },
    parameters: { resolution: '480P', ratio: '16:9', duration: 3, seed: 42, watermark: false },
  });
  assert.equal(sha(bytes), sha(same), 'size/seed/watermark did not map as intended');
  ok('t2v: same bytes as resolution 480P + ratio 16:9 + seed 42 + watermark false sent natively');
}

async function t2vSquare() {
  // The size alone picks tier and ratio: 624*624 is 480P 1:1.
  const result = await generateVideo({
    model: sandbox.video('happyhorse-1.1-t2v'),
    prompt: 'a foal in a meadow',
    resolution: '624x624',
    duration: 4,
    seed: 2147483647,
    providerOptions: { alibaba: { ...fast } },
    download,
  });
  const body = lastSubmit(SANDBOX_URL);
  assert.deepEqual(body.parameters, { duration: 4, seed: 2147483647, size: '624*624' });
  const bytes = await checkVideo(result, { width: 624, height: 624, seconds: 4, data: SANDBOX_DATA });
  assert.equal(result.providerMetadata.alibaba.usage.ratio, '1:1');
  const same = await canonical({
    model: 'happyhorse-1.1-t2v', input: { prompt: 'a foal in a meadow' },
    parameters: { resolution: '480P', ratio: '1:1', duration: 4, seed: 2147483647 },
  });
  assert.equal(sha(bytes), sha(same));
  ok('t2v 1.1: size "624*624" is 480P 1:1; 624x624, 4 s, watermark on by default, the largest seed');
}

async function t2vRejected() {
  // A size outside docs/api.md s.4: paddock's 400 reaches the caller as the
  // SDK's APICallError, with paddock's message and no retry.
  const before = wire.length;
  await assert.rejects(
    generateVideo({
      model: sandbox.video('happyhorse-1.0-t2v'),
      prompt: PROMPT,
      resolution: '1000x1000',
      download,
    }),
    err => {
      assert.equal(err.name, 'AI_APICallError', String(err));
      assert.equal(err.statusCode, 400);
      assert.equal(err.isRetryable, false);
      assert.equal(JSON.parse(err.responseBody).code, 'InvalidParameter');
      assert.match(err.message, /parameters\.size must be one of .*832\*480/);
      return true;
    },
  );
  assert.equal(wire.length - before, 1, 'a 400 must not be retried');
  ok('t2v: an unknown size is a 400 InvalidParameter the SDK surfaces (APICallError, not retried)');
}

// ------------------------------------------------------------ image to video

async function i2v() {
  // The image as bytes: the SDK sends input.img_url as the bare base64 of
  // the PNG (no data: prefix), and resolution as a tier.
  const result = await generateVideo({
    model: sandbox.video('happyhorse-1.0-i2v'),
    prompt: { image: new Uint8Array(IMAGE), text: 'the horse turns its head' },
    resolution: '832x480',
    duration: 3,
    seed: 7,
    providerOptions: { alibaba: { ...fast, watermark: false } },
    download,
  });
  const body = lastSubmit(SANDBOX_URL);
  assert.deepEqual(body, {
    model: 'happyhorse-1.0-i2v',
    input: { prompt: 'the horse turns its head', img_url: pngB64 },
    parameters: { duration: 3, seed: 7, resolution: '480P', watermark: false },
  });
  ok('i2v: the SDK sends input.img_url as bare base64 and parameters.resolution "480P"');
  // The first frame is 4:3: the output follows it (docs/api.md s.4), 480P 4:3.
  const bytes = await checkVideo(result, { width: 720, height: 544, seconds: 3, data: SANDBOX_DATA });
  ok('i2v: the exact stored MP4, 720x544 (480P at the image\'s 4:3), 3 s');
  const same = await canonical({
    model: 'happyhorse-1.0-i2v',
    input: { prompt: 'the horse turns its head',
             media: [{ type: 'first_frame', url: `data:image/png;base64,${pngB64}` }] },
    parameters: { resolution: '480P', duration: 3, seed: 7, watermark: false },
  });
  assert.equal(sha(bytes), sha(same));
  ok('i2v: same bytes as media first_frame data: URI sent natively');

  // A data: URL as frameImages' first frame: the SDK decodes it and sends
  // the same bare base64.
  const r2 = await generateVideo({
    model: sandbox.video('happyhorse-1.1-i2v'),
    prompt: 'the horse turns its head',
    frameImages: [{ image: `data:image/png;base64,${pngB64}`, frameType: 'first_frame' }],
    duration: 3,
    seed: 7,
    providerOptions: { alibaba: { ...fast } },
    download,
  });
  assert.equal(lastSubmit(SANDBOX_URL).input.img_url, pngB64);
  // No resolution: paddock's default tier, 1080P, at 4:3.
  await checkVideo(r2, { width: 1632, height: 1248, seconds: 3, data: SANDBOX_DATA });
  ok('i2v 1.1: frameImages first_frame (data: URL) also arrives as bare base64; default 1080P -> 1632x1248');
}

// ------------------------------------------------------------ reference to video

async function r2v() {
  // The SDK sends references only as URLs (input.reference_urls): serve the
  // image on 127.0.0.1, which this paddock may fetch (--fetch-allow).
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': IMAGE.length });
    res.end(IMAGE);
  });
  await new Promise(res => srv.listen(0, '127.0.0.1', res));
  const url = `http://127.0.0.1:${srv.address().port}/ref.png`;
  try {
    const result = await generateVideo({
      model: sandbox.video('happyhorse-1.0-r2v'),
      prompt: '[Image 1] walks along the shore',
      inputReferences: [url],
      resolution: '480x832',
      duration: 3,
      seed: 11,
      providerOptions: { alibaba: { ...fast } },
      download,
    });
    const body = lastSubmit(SANDBOX_URL);
    assert.deepEqual(body, {
      model: 'happyhorse-1.0-r2v',
      input: { prompt: '[Image 1] walks along the shore', reference_urls: [url] },
      parameters: { duration: 3, seed: 11, size: '480*832' },
    });
    ok('r2v: the SDK sends input.reference_urls and size "480*832"');
    const bytes = await checkVideo(result, { width: 480, height: 832, seconds: 3, data: SANDBOX_DATA });
    assert.equal(result.providerMetadata.alibaba.usage.ratio, '9:16');
    const same = await canonical({
      model: 'happyhorse-1.0-r2v',
      input: { prompt: '[Image 1] walks along the shore',
               media: [{ type: 'reference_image', url }] },
      parameters: { resolution: '480P', ratio: '9:16', duration: 3, seed: 11 },
    });
    assert.equal(sha(bytes), sha(same));
    ok('r2v: the exact stored MP4, 480x832 (480P 9:16), same bytes as media reference_image');
  } finally {
    srv.close();
  }
}

// ------------------------------------------------------------ what an engine is handed

function jobs() {
  return readdirSync(RECORD_DIR)
    .filter(f => f.endsWith('.json'))
    .sort()
    .map(f => JSON.parse(readFileSync(join(RECORD_DIR, f), 'utf8')));
}

async function recordedJobs() {
  // A command engine is handed the task as paddock stored it
  // (docs/engines.md): the SDK's fields in paddock's terms, the pass-through
  // ones under "extra".
  const result = await generateVideo({
    model: recorded.video('happyhorse-1.0-t2v'),
    prompt: PROMPT,
    resolution: '1280x720',
    duration: 3,
    seed: 5,
    generateAudio: true,
    providerOptions: {
      alibaba: { ...fast, negativePrompt: 'rain', audioUrl: 'https://example.invalid/a.mp3',
                 promptExtend: true, shotType: 'multi', watermark: true },
    },
    download,
  });
  await checkVideo(result, { width: 1280, height: 720, seconds: 3 });
  let job = jobs().at(-1);
  assert.equal(job.model, 'happyhorse-1.0-t2v');
  assert.equal(job.kind, 't2v');
  assert.equal(job.prompt, PROMPT);
  assert.deepEqual(job.media, []);
  assert.deepEqual(job.parameters, { resolution: 720, ratio: '16:9', duration: 3,
                                     watermark: true, seed: 5, audio_setting: 'auto' });
  assert.deepEqual(job.extra, {
    input: { negative_prompt: 'rain', audio_url: 'https://example.invalid/a.mp3' },
    parameters: { prompt_extend: true, shot_type: 'multi', audio: true },
  });
  ok('engine job (t2v): size "1280*720" -> resolution 720 + ratio 16:9; negative_prompt, audio_url, prompt_extend, shot_type, audio passed on in extra');

  const r2 = await generateVideo({
    model: recorded.video('happyhorse-1.0-i2v'),
    prompt: { image: new Uint8Array(IMAGE) },
    resolution: '1280x720',
    duration: 4,
    seed: 6,
    providerOptions: { alibaba: { ...fast } },
    download,
  });
  const body = lastSubmit(RECORD_URL);
  assert.equal(body.input.prompt, undefined);
  assert.equal(body.parameters.resolution, '720P');
  // The stand-in renders 16:9 when the ratio is the input's (here: "").
  await checkVideo(r2, { width: 1280, height: 720, seconds: 4 });
  job = jobs().at(-1);
  assert.equal(job.kind, 'i2v');
  assert.equal(job.prompt ?? null, null);
  assert.equal(job.media.length, 1);
  assert.equal(job.media[0].type, 'first_frame');
  assert.equal(job.media[0].url, `data:image/png;base64,${pngB64}`);
  assert.deepEqual(job.parameters, { resolution: 720, ratio: '', duration: 4,
                                     watermark: true, seed: 6, audio_setting: 'auto' });
  assert.equal(job.extra ?? null, null);
  ok('engine job (i2v, no prompt): bare base64 img_url -> media first_frame data:image/png URI; resolution "720P" -> 720');
}

// ------------------------------------------------------------ scenarios

async function scenarioFailure() {
  // docs/testing-your-client.md: a prompt token steers the sandbox through
  // an unmodified SDK; a FAILED task reaches the caller as an error with
  // the task's message, after RUNNING for the scenario's run.
  const before = wire.length;
  await assert.rejects(
    generateVideo({
      model: sandbox.video('happyhorse-1.0-t2v'),
      prompt: `${PROMPT} [paddock: run=1s,fail=DataInspectionFailed:the input did not pass moderation]`,
      resolution: '832x480',
      duration: 3,
      seed: 11,
      download,
      providerOptions: { alibaba: fast },
    }),
    err => {
      assert.match(String(err.message), /the input did not pass moderation/, String(err));
      return true;
    },
  );
  const submits = wire.slice(before).filter(w => w.method === 'POST');
  assert.equal(submits.length, 1, 'a FAILED task is not submitted again');
  ok('scenario: a [paddock: run=1s,fail=...] token through the SDK gives its error after the run');
}

const cases = [t2v, t2vSquare, t2vRejected, i2v, r2v, recordedJobs, scenarioFailure];
for (const c of cases) {
  const t0 = Date.now();
  await c();
  console.log(`# ${c.name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log(`ok - all ${cases.length} SDK cases`);
