#!/usr/bin/env node
// Same-page benchmark: face-api.js (its tfjs wasm backend) and emolens on the same decoded frames
// of a clip, in one headless Chromium page.
//
//   node tests/browser/bench.mjs [--clip assets/sample.mp4] [--frames 72] [--fps 30]
//        [--gpu-frames 4] [--live-seconds 8] [--workers 2] [--no-webgpu] [--no-live] [--pkg DIR] [--json FILE]
//        [--profile]
//
// Prints one table: ms/frame (median) and frames/s of face-api.js at 416 (detection + 68
// landmarks + expressions), emolens' analyzeFrame at 416 (the same work) and by default (two
// detector views), the dense path (analyzeFrames over every frame, with and without tracking, and
// on `--workers` Web Workers with FramePool),
// each against face-api.js; then cold start (module fetch to first result), live-mode coverage
// of the clip played as a 30 fps stream, and on WebGPU the GPU-independent costs per frame
// (compute dispatches, uploads, read-backs, submits) and the first frame's time (shaders).
// Checks (they can fail): emolens at 416 matches face-api.js on every frame (face count, every
// expression probability within 1e-3), tracking changes no event of the dense path, and the
// workers' report equals one thread's.
// `--pkg DIR` serves another wasm build as /pkg/ (e.g. a copy of the previous one, for
// before/after numbers on the same machine). `--profile` also samples the page (Chrome's CPU
// profiler) during analyzeFrame at 416 and the dense path and prints where the time goes, per
// function (wasm names: burn's ops, gemm kernels, ours). Needs scripts/build-wasm.sh and npm ci.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startBrowser, record, finish } from './harness.mjs';

function parseArgs(argv) {
  const o = { clip: path.join(ROOT, 'assets', 'sample.mp4'), frames: 72, fps: 30, gpuFrames: 4, liveSeconds: 8, workers: 2, webgpu: true, live: true, pkg: null, json: null, profile: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--clip') o.clip = path.resolve(val());
    else if (a === '--frames') o.frames = Number(val());
    else if (a === '--fps') o.fps = Number(val());
    else if (a === '--gpu-frames') o.gpuFrames = Number(val());
    else if (a === '--live-seconds') o.liveSeconds = Number(val());
    else if (a === '--workers') o.workers = Number(val());
    else if (a === '--no-webgpu') o.webgpu = false;
    else if (a === '--no-live') o.live = false;
    else if (a === '--pkg') o.pkg = path.resolve(val());
    else if (a === '--json') o.json = path.resolve(val());
    else if (a === '--profile') o.profile = true;
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 23).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ['frames', 'fps', 'gpuFrames', 'liveSeconds', 'workers']) {
    if (!(Number.isFinite(o[k]) && o[k] > 0)) throw new Error(`--${k}: a positive number, not ${o[k]}`);
  }
  return o;
}

const o = parseArgs(process.argv.slice(2));
const t0 = Date.now();
const mounts = { '/node_modules/': path.join(ROOT, 'node_modules'), '/clip/': path.dirname(o.clip), '/www/': path.join(ROOT, 'www') };
if (o.pkg) mounts['/pkg/'] = o.pkg;
const browser = await startBrowser({ mounts, timeoutS: 1200 });
const clipUrl = `/clip/${encodeURIComponent(path.basename(o.clip))}`;
const open = async (label) => {
  const page = await browser.openPage(label, null, '/blank.html', '/tests/bench-page.js');
  await page.waitForFunction(() => window.bench);
  const d = await browser.call(page, 'decode', ([u, fps, n]) => window.bench.decode(u, fps, n), [clipUrl, o.fps, o.frames]);
  if (!d.ok) throw new Error(`decoding ${o.clip} in the page: ${d.error.message}`);
  return { page, decoded: d.value };
};
const { page, decoded } = await open('bench');
console.log(`${path.basename(o.clip)}: ${decoded.frames} frames of ${decoded.width}×${decoded.height}, decoded in the page`);
const run = async (what, fn, arg) => {
  const r = await browser.call(page, what, fn, arg);
  if (!r.ok) {
    record(what, [`rejected: ${r.error.message}`]);
    return null;
  }
  return r.value;
};

const cpu = { backend: 'cpu', modelBaseUrl: '/models/' };
const faceApi = await run('face-api.js', (a) => window.bench.faceApi(a), { inputSize: 416, models: '/models/' });
const at416 = await run('emolens analyzeFrame 416', (a) => window.bench.frames(a), { ...cpu, inputSize: 416 });
const twoViews = await run('emolens analyzeFrame default', (a) => window.bench.frames(a), cpu);
const dense = await run('emolens analyzeFrames (tracking)', ([a, v]) => window.bench.dense(a, v), [cpu, {}]);
const denseEvery = await run('emolens analyzeFrames (detector on every frame)', ([a, v]) => window.bench.dense(a, v), [cpu, { tracking: false }]);
const denseWorkers = await run('emolens analyzeFrames in Web Workers (tracking)', ([a, v, n]) => window.bench.denseWorkers(a, v, n), [cpu, {}, o.workers]);

/** Runs `work` under Chrome's sampling profiler; the functions with the most self time. */
async function profiled(p, work) {
  const cdp = await p.context().newCDPSession(p);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 250 });
  await cdp.send('Profiler.start');
  await work();
  const { profile } = await cdp.send('Profiler.stop');
  await cdp.detach();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n);
  const short = (n) => (n?.callFrame.functionName || '(anonymous)').replace(/::h[0-9a-f]{16}$/, '').slice(-60);
  const self = new Map();
  for (const id of profile.samples) {
    const n = byId.get(id);
    if (['(idle)', '(program)', '(garbage collector)'].includes(n.callFrame.functionName)) continue;
    const key = `${short(n)} <- ${short(parent.get(id))}`;
    self.set(key, (self.get(key) || 0) + 1);
  }
  const samples = [...self.values()].reduce((a, b) => a + b, 0);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, v / samples]);
  return { top, samples };
}

// ------------------------------------------------------------------ checks
if (faceApi && at416) {
  const p = [];
  let worst = 0;
  faceApi.results.forEach((theirs, i) => {
    const ours = at416.results[i];
    if (ours.length !== theirs.length) p.push(`frame ${i}: ${ours.length} faces, face-api.js ${theirs.length}`);
    else ours.forEach((f, j) => Object.keys(theirs[j].expressions).forEach((k) => {
      worst = Math.max(worst, Math.abs(f.expressions[k] - theirs[j].expressions[k]));
    }));
  });
  if (!(worst <= 1e-3)) p.push(`an expression probability differs by ${worst.toExponential(2)} (> 1e-3)`);
  record('analyzeFrame at 416 matches face-api.js on every frame', p, `largest expression difference ${worst.toExponential(2)}`);
}
if (dense && denseEvery) {
  const p = [];
  if (dense.events.join() !== denseEvery.events.join()) p.push(`events ${dense.events} with tracking, ${denseEvery.events} without`);
  let both = 0;
  let close = 0;
  dense.expressions.forEach((e, i) => {
    const f = denseEvery.expressions[i];
    if (e && f) {
      both++;
      close += e.every((v, k) => Math.abs(v - f[k]) <= 0.02) ? 1 : 0;
    }
  });
  if (close < 0.95 * both) p.push(`expressions within 0.02 of detection on every frame on ${close}/${both} frames`);
  record('tracking: the same events, expressions within 0.02 on ≥ 95 % of frames', p,
    `${close}/${both} frames within 0.02; detector on ${dense.tracking?.detected}/${decoded.frames} frames`);
}

if (dense && denseWorkers) {
  const p = [];
  if (JSON.stringify(denseWorkers.expressions) !== JSON.stringify(dense.expressions)) p.push('expressions differ from analyzeFrames on one thread');
  if (denseWorkers.events.join() !== dense.events.join()) p.push(`events ${denseWorkers.events} in workers, ${dense.events} on one thread`);
  if (JSON.stringify(denseWorkers.tracking) !== JSON.stringify(dense.tracking)) p.push(`tracking ${JSON.stringify(denseWorkers.tracking)} in workers, ${JSON.stringify(dense.tracking)} on one thread`);
  record(`FramePool (${denseWorkers.workers} Web Workers) gives analyzeFrames' report, bit for bit`, p,
    `${(dense.msPerFrame / denseWorkers.msPerFrame).toFixed(2)}× the frames/s of one thread; pool start ${denseWorkers.startMs.toFixed(0)} ms`);
}

// ------------------------------------------------------------------ cold start, live, WebGPU
const coldPage = await open('cold');
const coldRes = await browser.call(coldPage.page, 'cold start', (a) => window.bench.cold(a), cpu);
const cold = coldRes.ok ? coldRes.value : (record('cold start', [`rejected: ${coldRes.error.message}`]), null);
await coldPage.page.close();

const live = o.live ? await run('live mode', (a) => window.bench.live(a), { url: clipUrl, seconds: o.liveSeconds, options: cpu }) : null;
const liveWorker = o.live ? await run('live mode in a worker', (a) => window.bench.live(a), { url: clipUrl, seconds: o.liveSeconds, options: cpu, worker: true }) : null;
if (liveWorker) {
  const p = [];
  if (!liveWorker.worker) p.push('the report says the worker did not run');
  // The issue's target: ≥ 90 % of the frames the camera presented (the queue catches up after
  // the detector's frames).
  const presented = liveWorker.analysed + liveWorker.dropped;
  if (!(liveWorker.analysed >= 0.9 * presented)) p.push(`${liveWorker.analysed} of ${presented} presented frames analysed (< 90 %)`);
  if (liveWorker.keyframesWithJpeg !== liveWorker.keyframes) p.push(`${liveWorker.keyframesWithJpeg}/${liveWorker.keyframes} keyframes with a JPEG`);
  if (!(liveWorker.longestTaskMs < 50)) p.push(`a main-thread task took ${liveWorker.longestTaskMs.toFixed(0)} ms`);
  record('live mode in a Web Worker: ≥ 90 % of presented frames analysed, keyframe JPEGs, main thread free (no task ≥ 50 ms)', p, `${liveWorker.analysed} analysed, longest main-thread task ${liveWorker.longestTaskMs.toFixed(0)} ms`);
}

let gpu = null;
const hasGpu = o.webgpu && (await browser.call(page, 'webgpu?', () => !!navigator.gpu));
if (hasGpu) {
  const webgpu = { backend: 'webgpu', modelBaseUrl: '/models/', maxFrames: o.gpuFrames };
  gpu = {
    at416: await run('webgpu analyzeFrame 416', (a) => window.bench.frames(a), { ...webgpu, inputSize: 416 }),
    twoViews: await run('webgpu analyzeFrame default', (a) => window.bench.frames(a), webgpu),
    dense: await run('webgpu analyzeFrames (tracking)', ([a, v, n]) => window.bench.dense(a, v, n), [webgpu, {}, Math.max(o.gpuFrames, 8)]),
    auto: await run('auto', (a) => window.bench.frames(a), { backend: 'auto', modelBaseUrl: '/models/', maxFrames: 1 }),
  };
}

// ------------------------------------------------------------------ the table
const fmt = (x, d = 1) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d));
const base = faceApi?.medianMs;
const rows = [];
const row = (name, ms) => rows.push([name, fmt(ms), fmt(1000 / ms), base ? `${fmt(base / ms, 2)}×` : '-']);
if (faceApi) row(`face-api.js 1.7.15, tfjs ${faceApi.backend} (SIMD ${faceApi.simd ? 'on' : 'off'}, ${faceApi.threads ? 'threads' : '1 thread'}), 416`, faceApi.medianMs);
if (at416) row('emolens CPU, analyzeFrame, inputSize 416 (the same work)', at416.medianMs);
if (twoViews) row('emolens CPU, analyzeFrame, default (two views)', twoViews.medianMs);
if (dense) row(`emolens CPU, analyzeFrames, all ${decoded.frames} frames (tracking)`, dense.msPerFrame);
if (denseEvery) row(`emolens CPU, analyzeFrames, all ${decoded.frames} frames (detector on every frame)`, denseEvery.msPerFrame);
if (denseWorkers) row(`emolens CPU, FramePool.analyzeFrames, ${denseWorkers.workers} workers (tracking)`, denseWorkers.msPerFrame);
const widths = [0, 1, 2, 3].map((c) => Math.max(...[['', 'ms/frame', 'frames/s', 'vs face-api.js'], ...rows].map((r) => r[c].length)));
const line = (r) => `| ${r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
console.log(`\nsame page, same ${decoded.frames} frames (${path.basename(o.clip)}, ${decoded.width}×${decoded.height}); ms/frame: median of analyzeFrame calls, total/frames for analyzeFrames`);
console.log(line(['', 'ms/frame', 'frames/s', 'vs face-api.js']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
rows.forEach((r) => console.log(line(r)));
if (dense?.tracking) {
  const t = dense.tracking;
  console.log(`tracking: detector on ${t.detected} of ${decoded.frames} frames (${t.periodic} periodic, ${t.moved} moved, ${t.lost} lost, ${t.edge} at the edge)`);
}
console.log(`cold start (module fetch + compile, models, first result): face-api.js ${fmt(faceApi?.coldMs, 0)} ms, emolens ${fmt(cold?.totalMs, 0)} ms (module ${fmt(cold?.initMs, 0)} ms)`);
for (const [name, l] of [['main thread', live], ['Web Worker', liveWorker]]) {
  if (!l) continue;
  const presented = l.analysed + l.dropped;
  console.log(`live mode (${name}), the clip as a 30 fps stream for ${o.liveSeconds} s: ${l.analysed} frames analysed of ${presented} presented (${fmt(100 * l.analysed / presented, 0)} %; of 30/s: ${fmt(100 * l.analysed / l.streamFrames, 0)} %), longest main-thread task ${fmt(l.longestTaskMs, 0)} ms (${l.longTasks} tasks ≥ 50 ms)`);
}
if (gpu) {
  const g = (name, r, ms) => r && console.log(`  ${name}: ${fmt(ms ?? r.medianMs)} ms/frame; first frame ${fmt(r.firstMs, 0)} ms; per frame ${r.calls ? Object.entries(r.calls).map(([k, v]) => `${fmt(v, 1)} ${k}`).join(', ') : '(not counted)'}`);
  console.log(`WebGPU (${gpu.at416?.adapterInfo ?? 'adapter'}):`);
  g('analyzeFrame 416', gpu.at416);
  g('analyzeFrame default', gpu.twoViews);
  g('analyzeFrames, tracking', gpu.dense, gpu.dense?.msPerFrame);
  if (gpu.auto) console.log(`  'auto' chose ${gpu.auto.backend}${gpu.auto.fallbackReason ? `: ${gpu.auto.fallbackReason}` : ''}`);
}
if (o.profile) {
  for (const [name, fn, arg] of [
    ['analyzeFrame, inputSize 416', (a) => window.bench.frames(a), { ...cpu, inputSize: 416, maxFrames: 24 }],
    ['analyzeFrames (tracking)', ([a, v]) => window.bench.dense(a, v), [cpu, {}]],
  ]) {
    const { top, samples } = await profiled(page, () => run(`profile ${name}`, fn, arg));
    console.log(`\nwhere the time goes, ${name} (CPU, ${samples} samples; self time, function <- caller):`);
    top.forEach(([k, share]) => console.log(`  ${(100 * share).toFixed(1).padStart(5)} %  ${k}`));
  }
}
if (o.json) fs.writeFileSync(o.json, JSON.stringify({ faceApi: faceApi && { ...faceApi, results: undefined }, at416: at416 && { ...at416, results: undefined }, twoViews: twoViews && { ...twoViews, results: undefined }, dense: dense && { ...dense, expressions: undefined }, denseEvery: denseEvery && { ...denseEvery, expressions: undefined }, denseWorkers: denseWorkers && { ...denseWorkers, expressions: undefined }, cold, live, liveWorker, gpu }, null, 1));
console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
await browser.close();
finish();
