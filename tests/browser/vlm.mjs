#!/usr/bin/env node
// Browser test of the local VLM (SmolVLM / Idefics3 in burn) in headless Chromium.
//
//   node tests/browser/vlm.mjs [--verbose] [--only parity,loading,generation,benchmark,ask,demo]
//        [--screenshot demo.png]
//
// Needs pkg/ (scripts/build-wasm.sh) and, for the demo check, www/dist (webpack). Data: the tiny
// random-weight checkpoints in tests/data/vlm/. They come without a tokenizer; SmolLM's
// (tests/data/vlm/smollm_tokenizer) does not fit their 256-token vocabulary, so the server
// hands out the byte-level tokenizer that tests/vlm_processor.rs builds for them (same ids:
// ChatML specials 0–2, bytes as 3–247, SmolVLM's image tokens at 248–255).
//
// Checks:
// - parity (`vlmCheck`, the CLI's `vlm-check`) for both checkpoints on WebGPU and the CPU:
//   image features and logits within 1e-4 of transformers, greedy tokens identical; and a
//   perturbed checkpoint that must fail the same check;
// - LocalVlm.load: progress (monotonic, ends at the bytes served), a second load from the Cache
//   API with the server refusing every request, abort mid-download (clear Error, nothing cached,
//   the same URL loads afterwards), clear Errors for 404, an F64 weight, an unsupported config,
//   a tokenizer that does not fit the model, a truncated safetensors, maxMemoryBytes too
//   small, no baseUrl, an unknown backend, and a bad copy in the cache (removed, then fetched
//   anew); after all of them a load in the same page still works;
// - generate and scoreLabels on WebGPU and the CPU (same probabilities on both); F16 and BF16
//   checkpoints give what their exact f32 twins give;
// - time to first token and decode tokens/s (`vlmBenchmark`, the reference inputs as in
//   examples/bench_vlm.rs), printed;
// - askClip with the local VLM: the whole ask flow, equal to `emolens ask --local-vlm` (vlm-ask.mjs);
// - the demo page (www/dist) with VLM = local answering about the current frame.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startBrowser, record, finish, errorProblems, withTimeout, SHARED } from './harness.mjs';
import { askClipStep, demoClipStep } from './vlm-ask.mjs';

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(',')) : null;
const screenshotArg = args.indexOf('--screenshot');
const screenshot = screenshotArg >= 0 ? args[screenshotArg + 1] : null;
const TOLERANCE = 1e-4;
const VLM_DATA = path.join(SHARED, 'vlm');
const CHECKPOINTS = ['smolvlm_tiny', 'smolvlm_tiny_tied'];
const BACKENDS = ['webgpu', 'cpu'];
const DFEW = ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'];

// ------------------------------------------------------------------ fixtures
/** GPT-2's byte → printable character table used by byte-level BPE. */
function byteChars() {
  const bytes = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = [...bytes];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  const table = new Array(256);
  bytes.forEach((b, i) => (table[b] = String.fromCodePoint(chars[i])));
  return table;
}

/** The tiny checkpoints' tokenizer.json (the same one tests/vlm_processor.rs builds). */
function tinyTokenizerJson() {
  const specials = [
    [0, '<|endoftext|>'], [1, '<|im_start|>'], [2, '<|im_end|>'],
    [248, '<row_1_col_2>'], [249, '<row_2_col_1>'], [250, '<row_2_col_2>'],
    [251, '<end_of_utterance>'], [252, '<fake_token_around_image>'], [253, '<global-img>'],
    [254, '<row_1_col_1>'], [255, '<image>'],
  ];
  const vocab = {};
  byteChars().slice(0, 245).forEach((c, b) => (vocab[c] = b + 3));
  const added = [];
  for (const [id, content] of specials) {
    vocab[content] = id;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: byteLevel, post_processor: null, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  });
}

// The tiny vision encoder sees 32×32 tiles; images are resized to at most 64 px first.
const TINY_PREPROCESSOR = JSON.stringify({ size: { longest_edge: 64 }, max_image_size: { longest_edge: 32 } });

function readSafetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  return { header, data: buf.subarray(8 + n) };
}

function writeSafetensors(header, data) {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** Rewrites every tensor's data, in file order; `edit(name, info, bytes)` returns new bytes and dtype. */
function rewriteSafetensors(buf, edit) {
  const { header, data } = readSafetensors(buf);
  const names = Object.keys(header).filter((k) => k !== '__metadata__')
    .sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
  const parts = [];
  let offset = 0;
  for (const name of names) {
    const info = header[name];
    const bytes = data.subarray(info.data_offsets[0], info.data_offsets[1]);
    const out = edit(name, info, bytes) || { bytes, dtype: info.dtype };
    header[name] = { ...info, dtype: out.dtype, data_offsets: [offset, offset + out.bytes.length] };
    parts.push(out.bytes);
    offset += out.bytes.length;
  }
  return writeSafetensors(header, Buffer.concat(parts));
}

const tinyModel = fs.readFileSync(path.join(VLM_DATA, 'smolvlm_tiny', 'model.safetensors'));
const tinyConfig = JSON.parse(fs.readFileSync(path.join(VLM_DATA, 'smolvlm_tiny', 'config.json'), 'utf8'));
const F64_WEIGHT = 'model.text_model.norm.weight';
const f64Model = rewriteSafetensors(tinyModel, (name, info, bytes) => {
  if (name !== F64_WEIGHT) return null;
  const out = Buffer.alloc(bytes.length * 2);
  for (let i = 0; i < bytes.length / 4; i++) out.writeDoubleLE(bytes.readFloatLE(i * 4), i * 8);
  return { bytes: out, dtype: 'F64' };
});
// A checkpoint that still loads but no longer matches its reference outputs.
const perturbedModel = rewriteSafetensors(tinyModel, (name, info, bytes) => {
  if (name !== F64_WEIGHT) return null;
  const out = Buffer.from(bytes);
  out.writeFloatLE(out.readFloatLE(0) + 0.01, 0);
  return { bytes: out, dtype: info.dtype };
});
// Half-precision checkpoints (SmolVLM ships bf16) and their exact f32 twins: every weight
// rounded to the half format, then written once as F16/BF16 and once as F32 holding the same
// values. Both must give the same answers.
const scratch = new DataView(new ArrayBuffer(4));
const bits = (v) => (scratch.setFloat32(0, v), scratch.getUint32(0));
const fromBits = (u) => (scratch.setUint32(0, u), scratch.getFloat32(0));
const HALF = {
  BF16: {
    encode: (v) => bits(v) >>> 16, // truncation: the twin holds exactly what is stored
    decode: (h) => fromBits(h << 16),
  },
  F16: {
    encode: (v) => {
      const x = bits(v);
      const sign = (x >>> 16) & 0x8000;
      const exp = ((x >>> 23) & 0xff) - 127 + 15;
      const mant = x & 0x7fffff;
      if (exp >= 31) return sign | 0x7c00;
      if (exp <= 0) return exp < -10 ? sign : sign | ((mant | 0x800000) >>> (14 - exp));
      return sign | (exp << 10) | (mant >>> 13);
    },
    decode: (h) => {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0) return sign * mant * 2 ** -24;
      return sign * (1 + mant / 1024) * 2 ** (exp - 15);
    },
  },
};
function halfTwins(model, dtype) {
  const { encode, decode } = HALF[dtype];
  const half = rewriteSafetensors(model, (name, info, bytes) => {
    const out = Buffer.alloc(bytes.length / 2);
    for (let i = 0; i < bytes.length / 4; i++) out.writeUInt16LE(encode(bytes.readFloatLE(i * 4)), i * 2);
    return { bytes: out, dtype };
  });
  const twin = rewriteSafetensors(model, (name, info, bytes) => {
    const out = Buffer.alloc(bytes.length);
    for (let i = 0; i < bytes.length / 4; i++) out.writeFloatLE(decode(encode(bytes.readFloatLE(i * 4))), i * 4);
    return { bytes: out, dtype: 'F32' };
  });
  return [half, twin];
}
const [bf16Model, bf16Twin] = halfTwins(tinyModel, 'BF16');
const [f16Model, f16Twin] = halfTwins(tinyModel, 'F16');

const unsupportedConfig = JSON.stringify({
  ...tinyConfig,
  text_config: { ...tinyConfig.text_config, hidden_act: 'gelu' },
});

function file(name) {
  return (f) => fs.readFileSync(path.join(VLM_DATA, name, f));
}
/** A checkpoint folder: file name → Buffer | string | null (absent), plus `slow` streaming. */
function checkpoint(name, overrides = {}) {
  const read = file(name);
  return {
    'config.json': read('config.json'),
    'model.safetensors': read('model.safetensors'),
    'tokenizer.json': tinyTokenizerJson(),
    'preprocessor_config.json': TINY_PREPROCESSOR,
    'reference.safetensors': read('reference.safetensors'),
    'reference.json': read('reference.json'),
    ...overrides,
  };
}
const FOLDERS = {
  smolvlm_tiny: checkpoint('smolvlm_tiny'),
  smolvlm_tiny_tied: checkpoint('smolvlm_tiny_tied'),
  perturbed: checkpoint('smolvlm_tiny', { 'model.safetensors': perturbedModel }),
  offline: checkpoint('smolvlm_tiny'),
  slow: checkpoint('smolvlm_tiny'),
  'gpu-cpu': checkpoint('smolvlm_tiny_tied'),
  again: checkpoint('smolvlm_tiny'),
  demo: checkpoint('smolvlm_tiny'),
  missing: checkpoint('smolvlm_tiny', { 'model.safetensors': null }),
  f64: checkpoint('smolvlm_tiny', { 'model.safetensors': f64Model }),
  'bad-config': checkpoint('smolvlm_tiny', { 'config.json': unsupportedConfig }),
  'smollm-tokenizer': checkpoint('smolvlm_tiny', {
    'tokenizer.json': fs.readFileSync(path.join(VLM_DATA, 'smollm_tokenizer', 'tokenizer.json')),
  }),
  truncated: checkpoint('smolvlm_tiny', { 'model.safetensors': tinyModel.subarray(0, tinyModel.length >> 1) }),
  memory: checkpoint('smolvlm_tiny'),
  recache: checkpoint('smolvlm_tiny'),
  bf16: checkpoint('smolvlm_tiny', { 'model.safetensors': bf16Model }),
  'bf16-as-f32': checkpoint('smolvlm_tiny', { 'model.safetensors': bf16Twin }),
  f16: checkpoint('smolvlm_tiny', { 'model.safetensors': f16Model }),
  'f16-as-f32': checkpoint('smolvlm_tiny', { 'model.safetensors': f16Twin }),
};
const LOAD_FILES = ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'model.safetensors'];
const servedBytes = (folder) =>
  LOAD_FILES.reduce((sum, f) => sum + (FOLDERS[folder][f] ? Buffer.byteLength(FOLDERS[folder][f]) : 0), 0);

// ------------------------------------------------------------------ server
const requests = {}; // folder → count
const refusing = new Set(); // folders whose every request is refused (offline)
const SLOW_CHUNK = 16 * 1024;
const SLOW_DELAY_MS = 40;

function routes(req, res) {
  const m = /^\/vlm\/([^/]+)\/([^/?]+)$/.exec(req.url);
  if (!m) return false;
  const [, folder, name] = m;
  requests[folder] = (requests[folder] || 0) + 1;
  if (refusing.has(folder)) {
    res.writeHead(503, { 'Content-Type': 'text/plain' });
    res.end('offline\n');
    return true;
  }
  const body = FOLDERS[folder]?.[name];
  if (body == null) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
    return true;
  }
  const bytes = Buffer.from(body);
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  if (folder !== 'slow' || name !== 'model.safetensors') {
    res.end(bytes);
    return true;
  }
  let sent = 0;
  const next = () => {
    if (res.destroyed) return;
    if (sent >= bytes.length) return res.end();
    res.write(bytes.subarray(sent, sent + SLOW_CHUNK));
    sent += SLOW_CHUNK;
    setTimeout(next, SLOW_DELAY_MS);
  };
  next();
  return true;
}

// ------------------------------------------------------------------ in-page helpers
/** Loads a LocalVlm from /vlm/<folder>/ with every progress call recorded; never throws. */
function pageLoad([folder, options]) {
  const progress = [];
  return window.capture(async () => {
    const vlm = await window.emolensVlm.LocalVlm.load({
      baseUrl: `/vlm/${folder}/`,
      onProgress: (done, total) => progress.push([done, total]),
      ...options,
    });
    window.vlms = window.vlms || {};
    window.vlms[folder] = vlm;
    return { backend: vlm.backend, loadedFromCache: vlm.loadedFromCache, cachedOffline: vlm.cachedOffline,
      memoryBytes: vlm.memoryBytes, parameterCount: vlm.parameterCount, progress };
  }).then((r) => ({ ...r, progress }));
}

/** A 40×20 gradient frame: 1×2 tiles plus the global image at the tiny model's 32 px. */
function pageImage() {
  const w = 40, h = 20;
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 4;
    data.set([x * 6, y * 12, 255 - x * 6, 255], i);
  }
  return new ImageData(data, w, h);
}

// ------------------------------------------------------------------ checks
const near = (a, b, tol) => Math.abs(a - b) <= tol;

async function parity(browser, page) {
  for (const backend of BACKENDS) {
    for (const name of [...CHECKPOINTS, 'perturbed']) {
      const res = await browser.call(page, `vlmCheck ${name} ${backend}`,
        ([n, b]) => window.capture(async () => window.toPlain(await window.emolensVlm.vlmCheck(`/vlm/${n}/`, { backend: b }))), [name, backend]);
      if (!res.ok) {
        record(`parity ${name} ${backend}`, [`vlmCheck rejected: ${res.error.message}`]);
        continue;
      }
      const r = res.value;
      const p = [];
      if (r.backend !== backend) p.push(`ran on ${r.backend}, asked for ${backend}`);
      if (r.tolerance !== TOLERANCE && !near(r.tolerance, TOLERANCE, 1e-9)) p.push(`tolerance ${r.tolerance}`);
      const info = `image_features ${r.maxImageFeatureDiff.toExponential(2)}, logits ${r.maxLogitDiff.toExponential(2)}, greedy ${r.greedyMatches ? 'identical' : 'DIFFERENT'} (${r.tokens.length} tokens)`;
      if (name === 'perturbed') {
        // The check must be able to fail: one norm weight moved by 0.01.
        if (r.passed || r.maxLogitDiff <= TOLERANCE) p.push(`a perturbed checkpoint passed parity (logits ${r.maxLogitDiff})`);
        if (!(r.maxImageFeatureDiff <= TOLERANCE)) p.push(`the vision side was not touched but image_features differ by ${r.maxImageFeatureDiff}`);
        record(`parity detects a perturbed weight (${backend})`, p, info);
        continue;
      }
      if (!(r.maxImageFeatureDiff <= TOLERANCE)) p.push(`image_features differ by ${r.maxImageFeatureDiff} > ${TOLERANCE}`);
      if (!(r.maxLogitDiff <= TOLERANCE)) p.push(`logits differ by ${r.maxLogitDiff} > ${TOLERANCE}`);
      if (!r.greedyMatches || JSON.stringify(r.tokens) !== JSON.stringify(r.expectedTokens)) p.push(`greedy tokens ${r.tokens} != reference ${r.expectedTokens}`);
      if (!r.passed) p.push('report says not passed');
      record(`parity ${name} ${backend}`, p, info);
    }
  }
}

async function loading(browser, page) {
  // Progress and the network load, then the same URL with the server refusing everything.
  const first = await browser.call(page, 'load offline (network)', pageLoad, ['offline', { backend: 'cpu' }]);
  {
    const p = [];
    if (!first.ok) p.push(`load failed: ${first.error.message}`);
    const pr = first.progress;
    const expected = servedBytes('offline');
    if (pr.length < 3) p.push(`only ${pr.length} progress calls`);
    for (let i = 1; i < pr.length; i++) {
      if (pr[i][0] < pr[i - 1][0]) p.push(`bytes done went back at call ${i}: ${pr[i - 1][0]} → ${pr[i][0]}`);
      if (pr[i][0] > pr[i][1]) p.push(`done ${pr[i][0]} > total ${pr[i][1]} at call ${i}`);
    }
    const last = pr[pr.length - 1] || [0, 0];
    if (last[0] !== expected || last[1] !== expected) p.push(`last progress ${last} != bytes served ${expected}`);
    if (pr[0] && pr[0][1] !== expected) p.push(`total announced up front ${pr[0][1]} != ${expected}`);
    if (first.ok && first.value.loadedFromCache) p.push('first load claims to come from the cache');
    if (first.ok && !first.value.cachedOffline) p.push('first load did not store the checkpoint for offline use');
    record('load: progress is monotonic and ends at the bytes served', p, `${pr.length} calls, ${expected} bytes`);
  }
  const prompt = 'Which emotion?';
  const generateWith = (folder) => browser.call(page, `generate ${folder}`, ([f, text]) => window.capture(async () => {
    const img = window.pageImage();
    return window.vlms[f].generate(text, [img], { maxTokens: 6 });
  }), [folder, prompt]);
  const firstText = first.ok ? await generateWith('offline') : null;

  refusing.add('offline');
  const before = requests.offline || 0;
  const second = await browser.call(page, 'load offline (cache)', pageLoad, ['offline', { backend: 'cpu' }]);
  {
    const p = [];
    if (!second.ok) p.push(`offline load failed: ${second.error.message}`);
    else {
      if (!second.value.loadedFromCache) p.push('loadedFromCache is false');
      const again = await generateWith('offline');
      if (!again.ok || !firstText?.ok || again.value !== firstText.value) {
        p.push(`generation differs after the cached load: ${JSON.stringify(firstText)} vs ${JSON.stringify(again)}`);
      }
      const last = second.progress[second.progress.length - 1];
      if (!last || last[0] !== servedBytes('offline') || last[1] !== last[0]) p.push(`cached load progress ends at ${last}`);
    }
    const hits = (requests.offline || 0) - before;
    if (hits !== 0) p.push(`${hits} requests reached the (refusing) server`);
    record('load: second load comes from the Cache API with the server refusing every request', p);
  }

  // Abort in the middle of the model download.
  const aborted = await browser.call(page, 'load slow (abort)', ([folder]) => {
    const controller = new AbortController();
    const progress = [];
    return window.capture(() => window.emolensVlm.LocalVlm.load({
      baseUrl: `/vlm/${folder}/`,
      backend: 'cpu',
      signal: controller.signal,
      onProgress: (done, total) => {
        progress.push([done, total]);
        if (done > 0.3 * total) controller.abort();
      },
    })).then(async (r) => {
      const cache = await caches.open('emolens-vlm');
      const keys = (await cache.keys()).map((k) => new URL(k.url).pathname).filter((k) => k.startsWith(`/vlm/${folder}/`));
      return { ...r, progress, keys };
    });
  }, ['slow']);
  {
    const p = [];
    if (aborted.ok) p.push('the aborted load resolved');
    else {
      p.push(...errorProblems(aborted, 'aborted load'));
      if (!/abort/i.test(aborted.error.message)) p.push(`error does not say it was aborted: ${aborted.error.message}`);
    }
    const last = aborted.progress[aborted.progress.length - 1] || [0, 1];
    if (!(last[0] < last[1])) p.push(`the download finished before the abort (${last}): the test did not abort mid-download`);
    if (aborted.keys.length) p.push(`cached after the abort: ${aborted.keys.join(', ')}`);
    const retry = await browser.call(page, 'load slow again', pageLoad, ['slow', { backend: 'cpu' }]);
    if (!retry.ok) p.push(`loading the same URL after the abort failed: ${retry.error.message}`);
    else if (retry.value.loadedFromCache) p.push('the load after the abort came from the cache');
    record('load: abort mid-download gives an Error and caches nothing', p,
      aborted.ok ? '' : `"${aborted.error.message}" at ${last[0]}/${last[1]} bytes`);
  }

  // Abort once every byte is in (before the weights go to the device): still an abort.
  const late = await browser.call(page, 'load (late abort)', () => {
    const controller = new AbortController();
    return window.capture(() => window.emolensVlm.LocalVlm.load({
      baseUrl: '/vlm/smolvlm_tiny/',
      backend: 'cpu',
      signal: controller.signal,
      onProgress: (done, total) => {
        if (done === total && done > 0) controller.abort();
      },
    }));
  });
  record('load: abort after the download still rejects as aborted',
    late.ok ? ['the load resolved'] : [...errorProblems(late, 'late abort'), ...(/abort/i.test(late.error.message) ? [] : [`message: ${late.error.message}`])]);

  // Errors, each an Error with a sentence, none of them a panic.
  const closedPort = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port)); // nothing listens there any more: connection refused
    });
  });
  const errorCases = [
    ['missing', {}, /model\.safetensors.*404|404.*model\.safetensors/s, '404 for model.safetensors'],
    ['f64', {}, new RegExp(`${F64_WEIGHT.replace(/\./g, '\\.')}.*F64`), 'an F64 weight'],
    ['bad-config', {}, /hidden_act.*gelu.*not supported/, 'an unsupported config (text hidden_act gelu)'],
    ['smollm-tokenizer', {}, /<image>.*image_token_id/, 'a tokenizer that does not fit the model'],
    ['truncated', {}, /safetensors/i, 'a truncated model.safetensors'],
    ['memory', { maxMemoryBytes: 100_000 }, null, 'maxMemoryBytes below what the weights need'],
    ['unreachable', { baseUrl: `http://127.0.0.1:${closedPort}/` }, new RegExp(`cannot fetch http://127\\.0\\.0\\.1:${closedPort}/config\\.json.*unreachable`), 'a server that cannot be reached'],
  ];
  for (const [folder, options, pattern, what] of errorCases) {
    const r = await browser.call(page, `load ${folder}`, pageLoad, [folder, { backend: 'webgpu', ...options }]);
    const p = [];
    if (r.ok) p.push('the load resolved');
    else {
      p.push(...errorProblems(r, `load ${folder}`));
      if (pattern && !pattern.test(r.error.message)) p.push(`message does not match ${pattern}: ${r.error.message}`);
      if (folder === 'memory') {
        // The tiny model has parameterCount × 4 bytes of f32 weights: the message names that size.
        const params = (await browser.call(page, 'parameters', () => window.vlms.offline.parameterCount));
        const kb = `${((params * 4) / 1e3).toFixed(1)} kB`;
        if (!r.error.message.includes(kb)) p.push(`message does not name the ${kb} needed: ${r.error.message}`);
      }
    }
    record(`load error: ${what}`, p, r.ok ? '' : `"${r.error.message}"`);
  }

  // Bad options.
  for (const [what, options, pattern] of [
    ['no baseUrl', { backend: 'cpu' }, /baseUrl/],
    ['an unknown backend', { baseUrl: '/vlm/smolvlm_tiny/', backend: 'tpu' }, /unknown backend 'tpu'/],
  ]) {
    const r = await browser.call(page, `load ${what}`, (o) => window.capture(() => window.emolensVlm.LocalVlm.load(o)), options);
    const p = r.ok ? ['the load resolved'] : errorProblems(r, what);
    if (!r.ok && !pattern.test(r.error.message)) p.push(`message does not match ${pattern}: ${r.error.message}`);
    record(`load error: ${what}`, p, r.ok ? '' : `"${r.error.message}"`);
  }

  // A stored copy that went bad (here: a truncated model put into the cache by hand) fails
  // with an Error that says so, is removed, and the next load fetches the files anew.
  const stale = await browser.call(page, 'stale cache', async ([folder, files]) => {
    const cache = await caches.open('emolens-vlm');
    for (const f of files) {
      let body = await (await fetch(`/vlm/${folder}/${f}`)).arrayBuffer();
      if (f === 'model.safetensors') body = body.slice(0, body.byteLength >> 1);
      await cache.put(`/vlm/${folder}/${f}`, new Response(body, { headers: { 'content-length': String(body.byteLength) } }));
    }
    const r = await window.capture(() => window.emolensVlm.LocalVlm.load({ baseUrl: `/vlm/${folder}/`, backend: 'cpu' }));
    const keys = (await cache.keys()).map((k) => new URL(k.url).pathname).filter((k) => k.startsWith(`/vlm/${folder}/`));
    const again = await window.capture(async () => {
      const vlm = await window.emolensVlm.LocalVlm.load({ baseUrl: `/vlm/${folder}/`, backend: 'cpu' });
      return { loadedFromCache: vlm.loadedFromCache, cachedOffline: vlm.cachedOffline };
    });
    return { r, keys, again };
  }, ['recache', LOAD_FILES]);
  {
    const p = [];
    if (stale.r.ok) p.push('a load from a truncated cached model resolved');
    else {
      p.push(...errorProblems(stale.r, 'stale cache load'));
      if (!/safetensors/.test(stale.r.error.message) || !/cache.*removed/.test(stale.r.error.message)) p.push(`message: ${stale.r.error.message}`);
    }
    if (stale.keys.length) p.push(`still cached: ${stale.keys.join(', ')}`);
    if (!stale.again.ok) p.push(`the next load failed: ${stale.again.error.message}`);
    else if (stale.again.value.loadedFromCache || !stale.again.value.cachedOffline) p.push(`next load ${JSON.stringify(stale.again.value)}`);
    record('load: a bad cached copy gives an Error, is removed, and the next load fetches anew', p, stale.r.ok ? '' : `"${stale.r.error.message}"`);
  }

  // Without WebGPU: 'auto' runs on the CPU and says why; 'webgpu' is an Error.
  const noGpu = await browser.openPage('vlm-no-webgpu', () => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
  }, '/blank.html', null, { vlm: true });
  try {
    const r = await browser.call(noGpu, 'load without WebGPU', pageLoad, ['smolvlm_tiny', { backend: 'auto' }]);
    const forced = await browser.call(noGpu, 'webgpu without WebGPU', pageLoad, ['smolvlm_tiny', { backend: 'webgpu' }]);
    const reason = await browser.call(noGpu, 'fallbackReason', () => window.vlms?.smolvlm_tiny?.fallbackReason ?? null);
    const p = [];
    if (!r.ok) p.push(`auto failed: ${r.error.message}`);
    else if (r.value.backend !== 'cpu') p.push(`auto ran on ${r.value.backend}`);
    if (!reason || !/WebGPU/i.test(reason)) p.push(`fallbackReason ${JSON.stringify(reason)}`);
    if (forced.ok) p.push("backend 'webgpu' without WebGPU resolved");
    else p.push(...errorProblems(forced, "backend 'webgpu' without WebGPU"));
    record("load without WebGPU: 'auto' runs on the CPU and says why, 'webgpu' is an Error", p,
      `reason "${reason}"; webgpu: "${forced.ok ? '' : forced.error.message}"`);
  } finally {
    await noGpu.close().catch(() => {});
  }

  // After all of that the module still works in the same page.
  const after = await browser.call(page, 'load again', pageLoad, ['again', { backend: 'webgpu' }]);
  const text = after.ok ? await generateWith('again') : null;
  const p = [];
  if (!after.ok) p.push(`load after the failures failed: ${after.error.message}`);
  else if (after.value.backend !== 'webgpu') p.push(`backend ${after.value.backend}`);
  if (after.ok && (!text.ok || typeof text.value !== 'string')) p.push(`generate failed: ${JSON.stringify(text)}`);
  record('load: after every failure a load and generate in the same page work', p, text?.ok ? `text ${JSON.stringify(text.value)}` : '');

  const cleared = await browser.call(page, 'clearCache', () => window.capture(async () => {
    const first = await window.emolensVlm.LocalVlm.clearCache();
    const names = await caches.keys();
    const second = await window.emolensVlm.LocalVlm.clearCache();
    return { first, second, names };
  }));
  const q = [];
  if (!cleared.ok) q.push(`clearCache failed: ${cleared.error.message}`);
  else {
    if (cleared.value.first !== true) q.push('clearCache found nothing to delete after the loads above');
    if (cleared.value.names.includes('emolens-vlm')) q.push('the emolens-vlm cache still exists');
    if (cleared.value.second !== false) q.push('a second clearCache still found something');
  }
  record('LocalVlm.clearCache deletes the stored checkpoints', q);
}

async function generation(browser, page) {
  const results = {};
  for (const backend of BACKENDS) {
    const folder = 'gpu-cpu';
    const loaded = await browser.call(page, `load ${folder} ${backend}`, pageLoad, [folder, { backend }]);
    if (!loaded.ok) {
      record(`generate and scoreLabels on ${backend}`, [`load failed: ${loaded.error.message}`]);
      continue;
    }
    const r = await browser.call(page, `generate/score ${backend}`, ([f, labels]) => window.capture(async () => {
      const vlm = window.vlms[f];
      const img = window.pageImage();
      const pieces = [];
      const ids = [];
      const text = await vlm.generate('Describe the face.', [img], {
        maxTokens: 8, onToken: (piece, id) => { pieces.push(piece); ids.push(id); },
      });
      const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Which emotion?' }] }];
      const scores = window.toPlain(await vlm.scoreLabels(messages, [img], labels));
      // Stopping from onToken after two tokens.
      const stopped = [];
      await vlm.generate('Describe the face.', [img], { maxTokens: 8, onToken: (_, id) => { stopped.push(id); return stopped.length < 2; } });
      const sampled = await vlm.generate('Describe the face.', [img], { maxTokens: 8, temperature: 1.0, topP: 0.9, seed: 7 });
      const sampledAgain = await vlm.generate('Describe the face.', [img], { maxTokens: 8, temperature: 1.0, topP: 0.9, seed: 7 });
      let mismatch = null;
      try {
        await vlm.generate([{ role: 'user', content: [{ type: 'image' }, { type: 'image' }] }], [img], {});
      } catch (e) {
        mismatch = { isError: e instanceof Error, message: e.message };
      }
      // Options out of range (issue 14): an Error naming the option, and the model still answers.
      const refused = [];
      for (const options of [{ maxTokens: Infinity }, { maxTokens: NaN }, { maxTokens: -1 }, { maxTokens: 1e9 }, { temperature: NaN }, { topP: 2 }]) {
        try {
          await vlm.generate('Describe the face.', [img], options);
          refused.push({ options: JSON.stringify(options), resolved: true });
        } catch (e) {
          refused.push({ options: Object.keys(options)[0], isError: e instanceof Error, message: e.message });
        }
      }
      const after = await vlm.generate('Describe the face.', [img], { maxTokens: 2 });
      return { text, pieces, ids, scores, stopped, sampled, sampledAgain, mismatch, refused, after };
    }), [folder, DFEW]);
    const p = [];
    if (!r.ok) {
      record(`generate and scoreLabels on ${backend}`, [`failed: ${r.error.message}`]);
      continue;
    }
    const v = r.value;
    if (typeof v.text !== 'string') p.push('generate did not resolve to a string');
    if (v.ids.length < 1 || v.ids.length > 8) p.push(`${v.ids.length} tokens for maxTokens 8`);
    if (v.pieces.join('') !== v.text.replace(/\uFFFD+$/, '') && v.pieces.join('') !== v.text) p.push(`streamed pieces ${JSON.stringify(v.pieces.join(''))} != text ${JSON.stringify(v.text)}`);
    const sum = v.scores.probabilities.reduce((a, b) => a + b, 0);
    if (JSON.stringify(v.scores.labels) !== JSON.stringify(DFEW)) p.push(`labels ${v.scores.labels}`);
    if (v.scores.probabilities.length !== DFEW.length || !near(sum, 1, 1e-6) || v.scores.probabilities.some((x) => !(x > 0 && x < 1))) {
      p.push(`probabilities ${v.scores.probabilities} (sum ${sum})`);
    }
    if (v.stopped.length !== 2) p.push(`onToken returning false after 2 tokens gave ${v.stopped.length}`);
    if (v.sampled !== v.sampledAgain) p.push(`same seed, different samples: ${JSON.stringify(v.sampled)} vs ${JSON.stringify(v.sampledAgain)}`);
    if (!v.mismatch || !v.mismatch.isError || !/image/.test(v.mismatch.message)) p.push(`two image parts with one image: ${JSON.stringify(v.mismatch)}`);
    for (const x of v.refused) {
      if (x.resolved || !x.isError || !x.message.includes(`options.${x.options}`)) p.push(`out-of-range option not refused: ${JSON.stringify(x)}`);
    }
    if (typeof v.after !== 'string') p.push('generate no longer answers after refused options');
    results[backend] = v;
    record(`generate and scoreLabels on ${backend}`, p,
      `${JSON.stringify(v.text)}; p = ${v.scores.probabilities.map((x) => x.toFixed(4)).join(' ')}`);
  }
  // Images as encoded bytes (the sample JPEG) work; bytes that are no image and values that are
  // neither ImageData nor bytes are Errors.
  {
    const r = await browser.call(page, 'image inputs', () => window.capture(async () => {
      const vlm = window.vlms['gpu-cpu'];
      const jpeg = new Uint8Array(await (await fetch('/assets/sample.jpg')).arrayBuffer());
      const scores = window.toPlain(await vlm.scoreLabels('Which emotion?', [jpeg], ['happy', 'sad']));
      const outcome = async (images) => {
        try {
          await vlm.scoreLabels('Which emotion?', images, ['happy', 'sad']);
          return { resolved: true };
        } catch (e) {
          return { isError: e instanceof Error, message: e.message };
        }
      };
      return { scores, garbage: await outcome([new Uint8Array([1, 2, 3, 4])]), wrongType: await outcome([42]) };
    }));
    const p = [];
    if (!r.ok) p.push(`failed: ${r.error.message}`);
    else {
      const sum = r.value.scores.probabilities.reduce((a, b) => a + b, 0);
      if (r.value.scores.probabilities.length !== 2 || !near(sum, 1, 1e-6)) p.push(`JPEG scores ${JSON.stringify(r.value.scores)}`);
      for (const [what, o] of [['garbage bytes', r.value.garbage], ['a number', r.value.wrongType]]) {
        if (o.resolved || !o.isError || !(o.message.length >= 10)) p.push(`${what} as an image: ${JSON.stringify(o)}`);
      }
    }
    record('images: JPEG bytes work; non-image bytes and other values are Errors', p,
      r.ok ? `garbage: "${r.value.garbage.message}"; number: "${r.value.wrongType.message}"` : '');
  }

  // F16 and BF16 checkpoints answer exactly as their f32 twins.
  for (const dtype of ['bf16', 'f16']) {
    const r = await browser.call(page, `${dtype} twins`, ([folders, labels]) => window.capture(async () => {
      const out = [];
      for (const f of folders) {
        const vlm = await window.emolensVlm.LocalVlm.load({ baseUrl: `/vlm/${f}/`, backend: 'cpu' });
        const img = window.pageImage();
        const ids = [];
        await vlm.generate('Describe the face.', [img], { maxTokens: 8, onToken: (_, id) => { ids.push(id); } });
        const scores = window.toPlain(await vlm.scoreLabels('Which emotion?', [img], labels));
        out.push({ ids, probabilities: scores.probabilities, memoryBytes: vlm.memoryBytes });
        vlm.free();
      }
      return out;
    }), [[dtype, `${dtype}-as-f32`], DFEW]);
    const p = [];
    let diff = NaN;
    if (!r.ok) p.push(`failed: ${r.error.message}`);
    else {
      const [half, twin] = r.value;
      diff = Math.max(...half.probabilities.map((x, i) => Math.abs(x - twin.probabilities[i])));
      if (!(diff <= 1e-6)) p.push(`label probabilities differ by ${diff}`);
      if (JSON.stringify(half.ids) !== JSON.stringify(twin.ids)) p.push(`greedy tokens ${half.ids} vs ${twin.ids}`);
      if (half.memoryBytes !== twin.memoryBytes) p.push(`memoryBytes ${half.memoryBytes} vs ${twin.memoryBytes}`);
    }
    record(`a ${dtype.toUpperCase()} checkpoint answers as its exact f32 twin`, p, `max probability difference ${diff.toExponential(2)}`);
  }

  if (results.webgpu && results.cpu) {
    const a = results.webgpu.scores.probabilities;
    const b = results.cpu.scores.probabilities;
    const diff = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    const p = [];
    if (!(diff <= 1e-4)) p.push(`label probabilities differ by ${diff}`);
    if (JSON.stringify(results.webgpu.ids) !== JSON.stringify(results.cpu.ids)) p.push(`greedy tokens differ: ${results.webgpu.ids} vs ${results.cpu.ids}`);
    record('WebGPU and CPU agree on scoreLabels and greedy generate', p, `max probability difference ${diff.toExponential(2)}`);
  }
}

async function benchmark(browser, page) {
  const rows = [];
  for (const backend of BACKENDS) {
    for (const name of CHECKPOINTS) {
      const r = await browser.call(page, `vlmBenchmark ${name} ${backend}`,
        ([n, b]) => window.capture(async () => window.toPlain(await window.emolensVlm.vlmBenchmark(`/vlm/${n}/`, { backend: b, tokens: 16, repeat: b === 'webgpu' ? 2 : 3 }))), [name, backend]);
      const p = [];
      if (!r.ok) p.push(`vlmBenchmark rejected: ${r.error.message}`);
      else {
        const v = r.value;
        if (v.newTokens !== 16) p.push(`${v.newTokens} tokens, asked for 16`);
        if (!(v.ttftMs > 0) || !(v.decodeTokensPerSecond > 0)) p.push(`timings ${JSON.stringify(v)}`);
        rows.push({ name, ...v });
      }
      record(`benchmark ${name} ${backend}`, p, r.ok
        ? `TTFT ${r.value.ttftMs.toFixed(1)} ms (first run ${r.value.firstRunTtftMs.toFixed(1)} ms), decode ${r.value.decodeTokensPerSecond.toFixed(1)} tok/s`
        : '');
    }
  }
  console.log('\nheadless Chromium, greedy, 16 new tokens on the reference inputs, best of 2 (webgpu) or 3 (cpu)');
  console.log('checkpoint           backend  prompt images  TTFT ms  first-run TTFT ms  decode tok/s');
  for (const r of rows) {
    console.log(`${r.name.padEnd(20)} ${r.backend.padEnd(8)} ${String(r.promptTokens).padStart(6)} ${String(r.images).padStart(6)} ${r.ttftMs.toFixed(1).padStart(8)} ${r.firstRunTtftMs.toFixed(1).padStart(18)} ${r.decodeTokensPerSecond.toFixed(1).padStart(13)}`);
  }
  console.log('');
}

async function demo(browser) {
  const page = await browser.context.newPage();
  page.on('console', (m) => { if (verbose || m.type() === 'error') console.log(`[demo console.${m.type()}] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[demo pageerror] ${e.message}`));
  const p = [];
  let info = '';
  try {
    await page.goto(`${browser.base}/index.html?input=photo&backend=cpu`);
    await page.waitForFunction(() => window.__emolens && window.__emolens.ready, null, { timeout: 120_000 });
    const offByDefault = await page.evaluate(() => document.getElementById('vlm-mode').value);
    if (offByDefault !== 'none') p.push(`VLM choice defaults to ${offByDefault}, expected none`);
    // remote shows its own fields (tests/browser/remote.mjs asks the fake server through them).
    await page.selectOption('#vlm-mode', 'remote');
    const remoteShown = await page.evaluate(() => !document.getElementById('vlm-remote').hidden && document.getElementById('vlm-local').hidden);
    if (!remoteShown) p.push('VLM = remote does not show the remote fields alone');
    await page.selectOption('#vlm-mode', 'local');
    await page.fill('#vlm-url', `${browser.base}/vlm/demo/`);
    await page.selectOption('#vlm-backend', 'cpu');
    await page.click('#vlm-load');
    await page.waitForFunction(() => window.__emolens.vlm.status === 'ready' || window.__emolens.vlm.error, null, { timeout: 120_000 });
    const loadState = await page.evaluate(() => ({ ...window.__emolens.vlm, model: undefined, progressValue: document.getElementById('vlm-progress').value }));
    if (loadState.error) p.push(`demo load failed: ${loadState.error}`);
    if (!(loadState.progressValue >= 0.999)) p.push(`progress bar at ${loadState.progressValue}`);
    await page.click('#vlm-ask');
    await page.waitForFunction(() => window.__emolens.vlm.answer || window.__emolens.vlm.error, null, { timeout: 120_000 });
    const answer = await page.evaluate(() => window.__emolens.vlm.answer);
    const shown = await page.evaluate(() => document.getElementById('vlm-answer').textContent);
    const error = await page.evaluate(() => window.__emolens.vlm.error);
    if (error) p.push(`demo answer failed: ${error}`);
    if (!answer) p.push('no answer');
    else {
      const labels = answer.scores?.labels || [];
      const probs = answer.scores?.probabilities || [];
      const sum = probs.reduce((a, b) => a + b, 0);
      if (labels.length < 2 || probs.length !== labels.length || !near(sum, 1, 1e-6)) p.push(`scores ${JSON.stringify(answer.scores)}`);
      if (!labels.includes(answer.label)) p.push(`answer label ${answer.label} is not one of ${labels}`);
      if (probs[labels.indexOf(answer.label)] !== Math.max(...probs)) p.push('the shown label is not the most probable one');
      if (typeof answer.text !== 'string') p.push('no generated text');
      if (!shown.includes(answer.label)) p.push(`the page does not show the label: ${JSON.stringify(shown)}`);
      info = `label ${answer.label} (${(Math.max(...probs) * 100).toFixed(1)}%), text ${JSON.stringify(answer.text)}`;
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    const faces = await page.evaluate(() => window.__emolens.frames);
    if (!(faces >= 1)) p.push('face analysis did not run on the photo');
  } catch (e) {
    p.push(`demo page: ${e.message}`);
  }
  record('demo: VLM = local loads the checkpoint from its URL and answers about the frame', p, info);
  await page.close().catch(() => {});

  // The URL parameters load it at start, now from the cache the first visit filled.
  const again = await browser.context.newPage();
  const q = [];
  let shown = '';
  try {
    const url = encodeURIComponent(`${browser.base}/vlm/demo/`);
    await again.goto(`${browser.base}/index.html?input=photo&backend=cpu&vlm=local&vlmBackend=cpu&vlmUrl=${url}`);
    await again.waitForFunction(() => window.__emolens?.vlm && (window.__emolens.vlm.status === 'ready' || window.__emolens.vlm.error), null, { timeout: 120_000 });
    const s = await again.evaluate(() => ({ error: window.__emolens.vlm.error, fromCache: window.__emolens.vlm.model?.loadedFromCache }));
    shown = await again.evaluate(() => document.getElementById('vlm-answer').textContent);
    if (s.error) q.push(`load failed: ${s.error}`);
    if (s.fromCache !== true) q.push('the second visit did not load from the cache');
    if (!/from the browser cache/.test(shown)) q.push(`the page does not say where it loaded from: ${JSON.stringify(shown)}`);
  } catch (e) {
    q.push(`demo page: ${e.message}`);
  }
  record('demo: ?vlm=local&vlmUrl=... loads at start, from the cache on a second visit', q, JSON.stringify(shown));
  await again.close().catch(() => {});
}

// ------------------------------------------------------------------ main
const t0 = Date.now();
const browser = await startBrowser({ routes, verbose, timeoutS: 300 });
let code = 0;
try {
  const page = await browser.openPage('vlm', null, '/blank.html', null, { vlm: true });
  await page.evaluate(`window.pageImage = ${pageImage.toString()}`);
  const hasGpu = await page.evaluate(async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())));
  if (!record('WebGPU adapter present (SwiftShader)', hasGpu ? [] : ['navigator.gpu offers no adapter'])) throw new Error('no WebGPU');
  const step = async (name, fn) => {
    if (only && !only.has(name)) return;
    const t = Date.now();
    await withTimeout(fn(), 600, name);
    console.log(`  (${name}: ${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };
  await step('parity', () => parity(browser, page));
  await step('loading', () => loading(browser, page));
  await step('generation', () => generation(browser, page));
  await step('benchmark', () => benchmark(browser, page));
  await step('ask', () => askClipStep(browser, page, 'smolvlm_tiny', FOLDERS.smolvlm_tiny));
  await step('demo', async () => {
    await demo(browser);
    await demoClipStep(browser, 'demo');
  });
} catch (e) {
  record('browser VLM test ran to the end', [e.stack || String(e)]);
  code = 1;
} finally {
  await browser.close();
}
console.log(`(vlm browser test: ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
finish(code);
