#!/usr/bin/env node
// Browser video test: Analyzer.analyzeVideo and buildPrompt in headless Chromium on real clips
// with the real face models, against the native CLI on the same clips.
//
//   node tests/browser/video.mjs [--verbose]
//
// Needs pkg/ (scripts/build-wasm.sh), the native binary and examples (cargo test --release; found
// in $CARGO_TARGET_DIR or target/), ffmpeg/ffprobe and node_modules/@vladmandic/face-api.
// Checks:
// - single_face.mp4, file mode, CPU: every frame once, at ffprobe's times; the same frame rate,
//   events, keyframes and summaries as `emolens video --json --records`; expression
//   probabilities within 1e-3 frame by frame (up to 3 frames within 3e-2); the pixels Chromium draws identical to the native
//   decode (examples/decode_frames.rs);
//   progress reports; keyframe JPEGs;
// - buildPrompt: each mode the same JSON as `emolens prompt` (image bytes aside), `summaries`
//   without images, bad options rejected with an Error;
// - askClip against the fake server: the same requests and JSON as `emolens ask`, failures alike;
// - WebGPU on the first frames against the CPU;
// - no_face.mp4: every frame faceless, no events; face_noface.mov (HEVC): analysed with faceless
//   frames marked, or a clear Error; a file that is not a video: an Error;
// - live mode on a MediaStream: keeps up (drops counted), times increase, stops on abort with
//   the report.
// Prints frames/s of dense analysis (CPU, WebGPU), then "N passed, M failed".
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SHARED, startBrowser, startFakeServer, record, finish, errorProblems } from './harness.mjs';

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
const EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];
const EXPRESSION_TOL = 1e-3;
// Frames whose <video> pixels may differ from the native decode's in a run, and by how much.
const MAX_OFF_FRAMES = 3;
const OFF_FRAME_TOL = 3e-2;
// Where such a frame changes which channels an event moves, the apex (the first frame near the
// moving channels' strongest) and so the apex keyframe and the summary stretches may move this
// many frames.
const APEX_SHIFT_FRAMES = 3;
const TIME_TOL = 2e-6; // both sides give microseconds
const VIDEO = path.join(SHARED, 'video');
const MODELS = path.join(ROOT, 'node_modules', '@vladmandic', 'face-api', 'model');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
const BIN = path.join(targetDir, 'release', 'emolens');
if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run cargo build --release first`);

// ------------------------------------------------------------------ native side
// The native runs go side by side (each is one process analysing the clip).
const run = promisify(execFile);
const native = async (args) => JSON.parse((await run(BIN, args, { cwd: ROOT, maxBuffer: 1 << 28 })).stdout);
const clip = (name) => path.join(VIDEO, name);
const t0 = Date.now();
const [nativeVideo, enriched, keyframes, summaries, summariesAt2, nativeNoFace] = await Promise.all([
  native(['video', '--json', '--records', '--keyframe-size', '512', clip('single_face.mp4')]),
  native(['prompt', '--mode', 'enriched', '--stage1', '--permutations', '2', clip('single_face.mp4')]),
  native(['prompt', '--mode', 'keyframes', '--detail', 'high', clip('single_face.mp4')]),
  native(['prompt', '--mode', 'summaries', '--labels', 'mafw', clip('single_face.mp4')]),
  native(['prompt', '--mode', 'summaries', '--labels', 'faceapi', '--keyframe-fps', '2', clip('single_face.mp4')]),
  native(['video', '--json', clip('no_face.mp4')]),
]);
const nativePrompts = { enriched, keyframes, summaries, summariesAt2 };
/** Display times from the first frame, as ffprobe decodes them. */
function probeTimes(file) {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file]).toString();
  const times = out.split('\n').map((l) => parseFloat(l)).filter((x) => Number.isFinite(x));
  times.sort((a, b) => a - b);
  return times.map((t) => t - times[0]);
}
const probedTimes = probeTimes(clip('single_face.mp4'));
// Every frame as the native analysis decodes it (examples/decode_frames.rs, built by cargo test),
// for the pixel comparison and the identical-pixels run.
const FRAME = 40;
const DECODE_FRAMES = path.join(targetDir, 'release', 'examples', 'decode_frames');
if (!fs.existsSync(DECODE_FRAMES)) throw new Error(`${DECODE_FRAMES} missing: run cargo test --release (or cargo build --release --example decode_frames) first`);
const nativeFrames = execFileSync(DECODE_FRAMES, [clip('single_face.mp4')], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
const FRAME_BYTES = 640 * 360 * 3;
const nativeFrame = nativeFrames.subarray(FRAME * FRAME_BYTES, (FRAME + 1) * FRAME_BYTES);
console.log(`native runs done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// ------------------------------------------------------------------ browser
const notVideo = Buffer.from('this is not a video at all, only text pretending to be one '.repeat(50));
const browser = await startBrowser({
  mounts: { '/models/': MODELS },
  verbose,
  timeoutS: 240,
  routes: (req, res) => {
    if (req.url === '/native/single_face.rgb') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': nativeFrames.length });
      res.end(nativeFrames);
      return true;
    }
    if (req.url !== '/not-a-video.mp4') return false;
    res.writeHead(200, { 'Content-Type': 'video/mp4', 'Content-Length': notVideo.length });
    res.end(notVideo);
    return true;
  },
});
const page = await browser.openPage('video');
await browser.call(page, 'set-up', async () => {
  window.analyzers = {
    cpu: await window.emolens.Analyzer.create({ backend: 'cpu', modelBaseUrl: '/models/' }),
  };
  window.videoOf = (src) => {
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.src = src;
    document.body.appendChild(video);
    return video;
  };
});

const close = (a, b, tol) => Math.abs(a - b) <= tol;
const keysOf = (o) => Object.keys(o).sort().join(',');

// ---------------------------------------------------------------- single_face, file mode, CPU
const analyseSingle = () => browser.call(page, 'single_face cpu', async ({ frame }) => window.capture(async () => {
  const progress = [];
  const video = window.videoOf('/shared/video/single_face.mp4');
  const started = performance.now();
  const report = await window.analyzers.cpu.analyzeVideo(video, { records: true, keyframeSize: 512, onProgress: (done, total) => progress.push([done, total]) });
  const seconds = (performance.now() - started) / 1000;
  // The pixels Chromium draws for one frame, to compare with the native decode.
  const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const time = report.records[frame].time + 0.25 / report.fps;
  await new Promise((resolve) => {
    video.requestVideoFrameCallback(() => {
      context.drawImage(video, 0, 0);
      resolve();
    });
    video.currentTime = time;
  });
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) rgb.set(rgba.subarray(i, i + 3), j);
  window.singleReport = report;
  return { report: window.toPlain(report), progress, seconds, rgb: Array.from(rgb) };
}), { frame: FRAME });
// Largest expression difference of a report's frames against the native run's.
const worstAgainstNative = (report) => Math.max(0, ...report.records.map((r, i) => {
  const n = nativeVideo.records[i];
  return r.expressions && n?.expressions ? Math.max(...r.expressions.map((v, c) => Math.abs(v - n.expressions[c]))) : 0;
}));
// Now and then (about 1 run in 6 here) <video> hands over a different picture for a frame
// (seen: frame 70 at 0.5 apart): that pass compares other pixels, not the analysis. It is
// analysed once more, and said so; a second such pass fails below.
let single = await analyseSingle();
let retried = null;
if (single.ok && worstAgainstNative(single.value.report) > OFF_FRAME_TOL) {
  retried = worstAgainstNative(single.value.report);
  single = await analyseSingle();
}

let cpuFps = null;
if (!single.ok) {
  record('single_face.mp4, file mode, CPU: analysed', [`rejected: ${single.error.message}`]);
} else {
  const { report, progress, seconds, rgb } = single.value;
  cpuFps = report.frames / seconds;
  // Every frame once, at the decoder's times.
  const times = report.records.map((r) => r.time);
  const p = [];
  if (times.length !== probedTimes.length) p.push(`${times.length} frames, ffprobe decodes ${probedTimes.length}`);
  const worstTime = Math.max(...probedTimes.map((t, i) => Math.abs((times[i] ?? Infinity) - t)));
  if (!(worstTime <= TIME_TOL)) p.push(`frame times differ from ffprobe's by up to ${worstTime}`);
  if (report.records.some((r, i) => r.index !== i)) p.push('frame indices are not 0, 1, 2, ...');
  record('single_face.mp4: every frame once, at its media time (against ffprobe)', p, `${times.length} frames, max time difference ${worstTime.toExponential(1)} s; ${report.analysis_fps.toFixed(2)} frames/s stepping + analysis, ${cpuFps.toFixed(2)} with keyframe JPEGs`);

  // Same report structure and the same analysis as the native CLI.
  const q = [];
  const nativeKeys = keysOf(nativeVideo);
  if (keysOf(report) !== nativeKeys) q.push(`report keys ${keysOf(report)} != native ${nativeKeys}`);
  if (!close(report.fps, nativeVideo.fps, 1e-5 * nativeVideo.fps)) q.push(`fps ${report.fps} != native ${nativeVideo.fps}`);
  for (const key of ['width', 'height', 'frames', 'face_frames', 'main_track', 'baseline_frames', 'baseline_neutral', 'blinks', 'talking']) {
    if (JSON.stringify(report[key]) !== JSON.stringify(nativeVideo[key])) q.push(`${key}: ${JSON.stringify(report[key])} != native ${JSON.stringify(nativeVideo[key])}`);
  }
  if (!close(report.duration, nativeVideo.duration, 1e-5)) q.push(`duration ${report.duration} != native ${nativeVideo.duration}`);
  if (report.events.length !== nativeVideo.events.length) q.push(`${report.events.length} events, native ${nativeVideo.events.length}`);
  // Chromium's <video> pixels are not always the native decode's on every frame (seen: frame 5
  // off by a pixel level in some runs, expressions 4.8e-7 apart instead of 3.9e-7), and spotting's
  // thresholds can flip on that: here event boundaries may move by one frame, and the moves and
  // summary texts are reported, not required; where the moves differ, so may the apex (and its
  // keyframe and the stretches between keyframes) by up to APEX_SHIFT_FRAMES. The identical-
  // pixels test below holds the whole report to native exactly.
  const notes = [];
  const frameTime = 1 / nativeVideo.fps;
  const names = (e) => e.moves.map((m) => m.name).sort().join();
  let apexShift = 0; // frames the apex moved (one at most, more where the moving channels differ)
  report.events.forEach((e, i) => {
    const n = nativeVideo.events[i];
    if (!n) return;
    const otherMoves = names(e) !== names(n);
    if (otherMoves) apexShift = APEX_SHIFT_FRAMES;
    for (const k of ['kind', 'cut_off']) if (e[k] !== n[k]) q.push(`event ${i} ${k}: ${e[k]} != native ${n[k]}`);
    for (const k of ['onset_frame', 'apex_frame', 'offset_frame']) {
      const tol = k === 'apex_frame' && otherMoves ? APEX_SHIFT_FRAMES : 1;
      if (Math.abs(e[k] - n[k]) > tol) q.push(`event ${i} ${k}: ${e[k]} != native ${n[k]}`);
      else if (e[k] !== n[k]) notes.push(`event ${i} ${k} ${e[k]} (native ${n[k]})`);
    }
    for (const k of ['onset_time', 'apex_time', 'offset_time', 'duration']) {
      const frames = k === 'apex_time' && otherMoves ? APEX_SHIFT_FRAMES : 2;
      if (!close(e[k], n[k], frames * frameTime + 1e-5)) q.push(`event ${i} ${k}: ${e[k]} != native ${n[k]}`);
    }
    // The apex keyframe and the stretches between keyframes follow the apex wherever it went.
    apexShift = Math.max(apexShift, Math.min(Math.abs(e.apex_frame - n.apex_frame), otherMoves ? APEX_SHIFT_FRAMES : 1));
    if (e.moves.map((m) => m.name).join() !== n.moves.map((m) => m.name).join()) notes.push(`event ${i} moves ${e.moves.map((m) => m.name)} (native ${n.moves.map((m) => m.name)})`);
    if (e.expression_sequence.join() !== n.expression_sequence.join()) q.push(`event ${i} expression sequence differs`);
  });
  if (report.events.length !== 1 || report.events[0]?.kind !== 'macro') q.push(`expected one macro event (the smile), got ${JSON.stringify(report.events.map((e) => e.kind))}`);
  // Keyframes (same reasons, frames within the apex's shift) and the summary stretches between
  // them.
  const within = (a, b, frame) => a.length === b.length && a.every((x, i) => frame(x, b[i]));
  const compare = (what, a, b, text, frame) => {
    if (text(a) === text(b)) return;
    if (apexShift > 0 && within(a, b, frame)) notes.push(`${what} ${text(a)} (native ${text(b)})`);
    else q.push(`${what} ${text(a)} != native ${text(b)}`);
  };
  compare('keyframes', report.keyframes, nativeVideo.keyframes,
    (ks) => ks.map((k) => `${k.frame}:${k.reason}`).join(' '),
    (x, y) => x.reason === y.reason && Math.abs(x.frame - y.frame) <= apexShift);
  compare('summary stretches', report.summaries, nativeVideo.summaries,
    (ss) => ss.map((x) => `${x.start_frame}-${x.end_frame}`).join(' '),
    (x, y) => Math.abs(x.start_frame - y.start_frame) <= apexShift && Math.abs(x.end_frame - y.end_frame) <= apexShift);
  const sameText = report.summaries.filter((x, i) => x.text === nativeVideo.summaries[i]?.text).length;
  if (sameText !== nativeVideo.summaries.length) notes.push(`${sameText} of ${nativeVideo.summaries.length} summary texts identical`);
  let worstExpr = 0;
  let worstAt = -1;
  const offFrames = [];
  report.records.forEach((r, i) => {
    const n = nativeVideo.records[i];
    if (!n) return;
    if (r.face_present !== n.face_present) q.push(`frame ${i}: face_present ${r.face_present} != native ${n.face_present}`);
    if (!r.expressions || !n.expressions) return;
    const d = Math.max(...r.expressions.map((v, c) => Math.abs(v - n.expressions[c])));
    if (d > EXPRESSION_TOL) offFrames.push(`${i}: ${d.toExponential(1)}`);
    if (d > worstExpr) [worstExpr, worstAt] = [d, i];
  });
  // The native decoder converts YUV as Chromium draws it (asserted below on one frame, and the
  // identical-pixels test holds the whole report to native), but <video> is not bit-exact in
  // every run (seen: frames 17 and 18 at 8.3e-3 and 2.0e-3 once in several runs): a few frames
  // may be off, by little.
  if (offFrames.length > MAX_OFF_FRAMES || worstExpr > OFF_FRAME_TOL) q.push(`expression probabilities differ by more than ${EXPRESSION_TOL} on ${offFrames.length} frames (at most ${MAX_OFF_FRAMES} may, by up to ${OFF_FRAME_TOL}): ${offFrames.join(', ')}`);
  record('single_face.mp4 through <video>: same report structure, events, keyframes and summary stretches as `emolens video --json`', q,
    `${retried !== null ? `second pass (the first had a frame ${retried.toExponential(1)} off: other pixels); ` : ''}fps ${report.fps} (native ${nativeVideo.fps}); expressions: max difference ${worstExpr.toExponential(2)} (frame ${worstAt}), ${offFrames.length} of ${report.frames} frames over ${EXPRESSION_TOL} (${offFrames.join(', ')}); ${sameText}/${report.summaries.length} summary texts identical; events ${report.events.map((e) => `${e.kind} ${e.onset_time.toFixed(2)}-${e.offset_time.toFixed(2)} s`).join(', ')}${notes.length ? `; differs from native by a frame's pixels: ${notes.join('; ')}` : ''}`);

  // The pixels of one frame: Chromium's drawing against the native decode.
  let maxPx = 0;
  let sumPx = 0;
  for (let i = 0; i < rgb.length; i++) {
    const d = Math.abs(rgb[i] - nativeFrame[i]);
    maxPx = Math.max(maxPx, d);
    sumPx += d;
  }
  const px = [];
  if (rgb.length !== nativeFrame.length) px.push(`${rgb.length} bytes against ${nativeFrame.length}`);
  if (maxPx > 0) px.push(`pixels differ by up to ${maxPx} (mean ${(sumPx / rgb.length).toFixed(3)}): the native YUV conversion (src/video.rs, bt601_to_rgb) no longer matches Chromium's`);
  record(`frame ${FRAME}: Chromium's pixels against the native decode`, px, `max |difference| ${maxPx}, mean ${(sumPx / rgb.length).toFixed(3)} (0-255)`);

  // Progress and keyframe JPEGs.
  const r = [];
  if (!progress.length) r.push('onProgress was never called');
  if (progress.some((x, i) => i > 0 && x[0] < progress[i - 1][0])) r.push('progress went backwards');
  const last = progress.at(-1);
  if (last && (last[0] !== report.frames || last[1] !== report.frames)) r.push(`last progress ${JSON.stringify(last)}, expected [${report.frames}, ${report.frames}]`);
  for (const k of report.keyframes) {
    if (!/^data:image\/jpeg;base64,\/9j\//.test(k.jpeg ?? '')) r.push(`keyframe at ${k.time} s has no JPEG data URL`);
  }
  record('progress reports and keyframe JPEGs', r, `${progress.length} progress calls, ${report.keyframes.length} keyframes`);
}

// ---------------------------------------------------------------- identical pixels
/** Problems where `a` (browser) and `b` (native) differ: numbers within tol·max(1, |x|). */
function deepDiff(a, b, where, tol, out) {
  if (out.length > 12) return out;
  if (typeof b === 'number' && typeof a === 'number') {
    if (!(Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b)))) out.push(`${where}: ${a} != native ${b}`);
  } else if (Array.isArray(b)) {
    if (!Array.isArray(a) || a.length !== b.length) out.push(`${where}: ${JSON.stringify(a)?.slice(0, 80)} != native ${JSON.stringify(b).slice(0, 80)}`);
    else b.forEach((x, i) => deepDiff(a[i], x, `${where}[${i}]`, tol, out));
  } else if (b && typeof b === 'object') {
    if (!a || typeof a !== 'object') out.push(`${where}: missing`);
    else {
      if (keysOf(a) !== keysOf(b)) out.push(`${where}: keys ${keysOf(a)} != native ${keysOf(b)}`);
      for (const k of Object.keys(b)) deepDiff(a[k], b[k], `${where}.${k}`, tol, out);
    }
  } else if (a !== b) out.push(`${where}: ${JSON.stringify(a)} != native ${JSON.stringify(b)}`);
  return out;
}
const same = await browser.call(page, 'identical pixels', async ({ times, fps }) => window.capture(async () => {
  const bytes = new Uint8Array(await (await fetch('/native/single_face.rgb')).arrayBuffer());
  const [w, h] = [640, 360];
  const frames = times.map((_, f) => {
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let i = 0, j = f * w * h * 3; i < rgba.length; i += 4, j += 3) {
      rgba[i] = bytes[j];
      rgba[i + 1] = bytes[j + 1];
      rgba[i + 2] = bytes[j + 2];
      rgba[i + 3] = 255;
    }
    return new ImageData(rgba, w, h);
  });
  const report = await window.analyzers.cpu.analyzeFrames(frames, times, { records: true, keyframeSize: 512, fps, batch: 8 });
  window.sameReport = report;
  return window.toPlain(report);
}), { times: probedTimes, fps: nativeVideo.fps });
let pureFps = null;
if (!same.ok) {
  record('identical pixels (analyzeFrames): same report as native', [`rejected: ${same.error.message}`]);
} else {
  const b = { ...same.value, path: nativeVideo.path, analysis_fps: nativeVideo.analysis_fps };
  b.keyframes = b.keyframes.map(({ jpeg, ...k }) => k);
  const p = deepDiff(b, nativeVideo, 'report', EXPRESSION_TOL, []);
  let worst = 0;
  same.value.records.forEach((r, i) => r.expressions?.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - nativeVideo.records[i].expressions[c])))));
  pureFps = same.value.analysis_fps;
  record('identical pixels (analyzeFrames on the native decoder\'s frames): the whole report equals `emolens video --json --records` (numbers within 1e-3 relative)', p, `max expression difference ${worst.toExponential(2)}, ${pureFps.toFixed(2)} frames/s`);
}

// ---------------------------------------------------------------- buildPrompt
if (same.ok && single.ok) {
  const prompts = await browser.call(page, 'prompts', async () => window.capture(async () => {
    const build = (o) => window.toPlain(window.emolens.buildPrompt(window.sameReport, o));
    const videoSummaries = window.toPlain(window.emolens.buildPrompt(window.singleReport, { mode: 'summaries' }));
    const bad = (o) => {
      try {
        window.emolens.buildPrompt(window.singleReport, o);
        return { isError: false, message: 'accepted' };
      } catch (e) {
        return { isError: e instanceof Error, message: e.message };
      }
    };
    const noJpeg = { ...window.sameReport, keyframes: window.sameReport.keyframes.map(({ jpeg, ...k }) => k) };
    return {
      videoSummaries,
      enriched: build({ mode: 'enriched', stage1: true, permutations: 2 }),
      keyframes: build({ mode: 'keyframes', detail: 'high' }),
      summaries: build({ mode: 'summaries', labels: 'mafw' }),
      summariesNoJpeg: window.toPlain(window.emolens.buildPrompt(noJpeg, { mode: 'summaries', labels: 'mafw' })),
      // keyframeFps: keyframes picked again from the records.
      summariesAt2: build({ mode: 'summaries', labels: 'faceapi', keyframeFps: 2 }),
      enrichedAt1: build({ mode: 'enriched', stage1: true, permutations: 2, keyframeFps: 1 }),
      errors: {
        keyframeFpsWithoutPixels: bad({ keyframeFps: 2, mode: 'enriched' }),
        keyframeFpsWithoutRecords: (() => {
          try {
            window.emolens.buildPrompt({ ...window.sameReport, records: undefined }, { keyframeFps: 2, mode: 'summaries' });
            return { isError: false, message: 'accepted' };
          } catch (e) {
            return { isError: e instanceof Error, message: e.message };
          }
        })(),
        labels: bad({ labels: '' }),
        mode: bad({ mode: 'everything' }),
        // Stage 1 sends frames; summaries mode promises none.
        stage1InSummaries: bad({ mode: 'summaries', stage1: true }),
        noJpeg: (() => {
          try {
            window.emolens.buildPrompt(noJpeg, { mode: 'enriched' });
            return { isError: false, message: 'accepted' };
          } catch (e) {
            return { isError: e instanceof Error, message: e.message };
          }
        })(),
        notReport: (() => {
          try {
            window.emolens.buildPrompt({ frames: 'many' }, {});
            return { isError: false, message: 'accepted' };
          } catch (e) {
            return { isError: e instanceof Error, message: e.message };
          }
        })(),
      },
    };
  }));
  if (!prompts.ok) {
    record('buildPrompt', [`rejected: ${prompts.error.message}`]);
  } else {
    const videoImages = prompts.value.videoSummaries.requests.flatMap((r) => r.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : []))).filter((x) => x.type === 'image_url').length;
    record('buildPrompt on the <video> report, mode summaries: text only', videoImages ? [`${videoImages} images`] : [], `${prompts.value.videoSummaries.requests[0].tokens.total} tokens`);
    const images = (request) => request.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((p) => p.type === 'image_url');
    for (const mode of ['enriched', 'keyframes', 'summaries']) {
      const browserJson = prompts.value[mode];
      const nativeJson = nativePrompts[mode];
      const p = [];
      // On the same pixels the same JPEG encoder gives the same bytes: images included.
      const b = browserJson;
      const n = { ...nativeJson };
      n.path = b.path; // a file path natively, the video's URL in the browser
      if (JSON.stringify(b) !== JSON.stringify(n)) {
        for (const key of Object.keys(n)) if (JSON.stringify(b[key]) !== JSON.stringify(n[key])) p.push(`${key} differs from emolens prompt: ${JSON.stringify(b[key]).slice(0, 300)} != ${JSON.stringify(n[key]).slice(0, 300)}`);
        if (!p.length) p.push('the JSON differs from emolens prompt (key order)');
      }
      const counts = browserJson.requests.map((r) => images(r).length);
      if (mode === 'summaries' && counts.some((c) => c > 0)) p.push('summaries mode carries images');
      if (mode !== 'summaries' && counts.some((c) => c !== browserJson.keyframes.length)) p.push(`${counts} images for ${browserJson.keyframes.length} keyframes`);
      for (const r of browserJson.requests) for (const part of images(r)) if (!part.image_url.url.startsWith('data:image/jpeg;base64,/9j/')) p.push('an image is not a JPEG data URL');
      if (mode === 'enriched' && (browserJson.requests.length !== 2 || !browserJson.stage1?.length)) p.push('permutations 2 and stage1 not honoured');
      record(`buildPrompt mode ${mode} (identical-pixels report): same JSON as \`emolens prompt\`, image bytes included`, p,
        `tokens ${browserJson.requests[0].tokens.total} (all frames: ${browserJson.all_frames_image_tokens} image tokens), images ${counts.join('/')}`);
    }
    {
      const k = [];
      const b = prompts.value.summariesAt2;
      const n = { ...nativePrompts.summariesAt2, path: b.path };
      if (JSON.stringify(b) !== JSON.stringify(n)) k.push(`keyframeFps 2 differs from \`emolens prompt --keyframe-fps 2\`: keyframes ${JSON.stringify(b.keyframes)} vs ${JSON.stringify(n.keyframes)}`);
      if (b.keyframes.length <= prompts.value.summaries.keyframes.length) k.push('keyframeFps 2 gave no more keyframes than 1');
      if (JSON.stringify(prompts.value.enrichedAt1) !== JSON.stringify(prompts.value.enriched)) k.push('keyframeFps 1 (the rate analysed at) changed the enriched request');
      record('buildPrompt keyframeFps: keyframes picked again from the records, as `emolens prompt --keyframe-fps`', k, `${b.keyframes.length} keyframes at 2/s`);
    }
    const s = [];
    if (JSON.stringify(prompts.value.summariesNoJpeg) !== JSON.stringify(prompts.value.summaries)) s.push('summaries mode depends on keyframe pixels');
    for (const [what, e] of Object.entries(prompts.value.errors)) {
      if (!e.isError) s.push(`${what}: not rejected with an Error (${e.message})`);
      else if (e.message.length < 15) s.push(`${what}: message is not a sentence: ${e.message}`);
    }
    record('buildPrompt: summaries need no pixels; bad options and reports give an Error', s, Object.entries(prompts.value.errors).map(([k, e]) => `${k}: "${e.message.slice(0, 70)}"`).join('; '));
  }
}

// ---------------------------------------------------------------- askClip
// The whole ask flow (stage 1, two label orders, the content-free question) against the fake
// server, from the identical-pixels report and from `emolens ask` on the clip: the same requests
// and the same JSON; a failing server fails both the same way.
if (same.ok) {
  const server = await startFakeServer();
  try {
    const flags = ['--model', 'm', '--stage1', '--permutations', '2', '--content-free'];
    const cli = (scenario, extra = []) => run(BIN, ['ask', clip('single_face.mp4'), '--endpoint', `${server.base}/${scenario}/cli/v1`, ...flags, ...extra], { cwd: ROOT, maxBuffer: 1 << 28 })
      .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));
    const [cliOk, cliFail] = await Promise.all([cli('vllm'), cli('server-error', ['--concurrency', '1'])]);
    const asked = await browser.call(page, 'askClip', async (base) => window.capture(async () => {
      const progress = [];
      const options = { model: 'm', stage1: true, permutations: 2, contentFree: true };
      const result = await window.emolens.askClip(window.sameReport, { ...options, endpoint: `${base}/vllm/page/v1`, onProgress: (done, total) => progress.push([done, total]) });
      let failure = null;
      try {
        await window.emolens.askClip(window.sameReport, { ...options, endpoint: `${base}/server-error/page/v1`, maxConcurrent: 1 });
      } catch (e) {
        failure = { name: e.name, message: e.message, kind: e.kind, stage: e.stage };
      }
      let refused = null;
      try {
        await window.emolens.askClip(window.sameReport, { ...options, endpoint: `${base}/vllm/refused/v1`, mode: 'summaries' });
      } catch (e) {
        refused = e.message;
      }
      return { result: window.toPlain(result), progress, failure, refused };
    }), server.base);
    const seen = (await server.seen()).filter((r) => r.method === 'POST');
    const bodies = (scenario, side) => seen.filter((r) => r.path.startsWith(`/${scenario}/${side}/`)).map((r) => JSON.stringify(r.body)).sort();
    const p = [];
    if (!asked.ok) p.push(`askClip rejected: ${asked.error.message}`);
    else if (cliOk.code !== 0) p.push(`emolens ask failed: ${cliOk.stderr}`);
    else {
      const [pageBodies, cliBodies] = [bodies('vllm', 'page'), bodies('vllm', 'cli')];
      const stretches = describedStretches(asked.value.result);
      if (pageBodies.length !== 2 * 2 + stretches) p.push(`${pageBodies.length} requests from the page, expected ${2 * 2 + stretches}`);
      if (pageBodies.length !== cliBodies.length) p.push(`${pageBodies.length} requests from the page, ${cliBodies.length} from the CLI`);
      pageBodies.forEach((b, i) => b !== cliBodies[i] && p.push(`request body ${i} differs from the CLI's: ${b.slice(0, 120)} != ${cliBodies[i]?.slice(0, 120)}`));
      if (JSON.stringify(asked.value.result) !== JSON.stringify(JSON.parse(cliOk.stdout))) p.push(`the JSON differs from emolens ask: ${JSON.stringify(asked.value.result).slice(0, 300)}`);
      if (!stretches) p.push('stage 1 described no stretch');
      if (!asked.value.result.corrected) p.push('no content-free correction');
      const last = asked.value.progress.at(-1);
      if (!last || last[0] !== pageBodies.length || last[1] !== pageBodies.length) p.push(`progress ended at ${JSON.stringify(last)}`);
      const f = asked.value.failure;
      if (!f || !/^stage 1, stretch \d+: /.test(f.message) || f.kind !== 'server_error') p.push(`a failing server: ${JSON.stringify(f)}`);
      if (cliFail.code !== 1 || !/stage 1, stretch \d+: /.test(cliFail.stderr)) p.push(`the CLI against a failing server: exit ${cliFail.code}, ${cliFail.stderr}`);
      const [pageFailed, cliFailed] = [bodies('server-error', 'page').length, bodies('server-error', 'cli').length];
      if (pageFailed !== 1 || cliFailed !== 1) p.push(`after the first failure nothing more is sent: page sent ${pageFailed}, the CLI ${cliFailed}`);
      if (!/stage1/.test(asked.value.refused ?? '') || bodies('vllm', 'refused').length) p.push(`stage 1 in the summaries mode: ${asked.value.refused}`);
    }
    record('askClip against the fake server: the same requests and JSON as `emolens ask --stage1 --permutations 2 --content-free`; a failure stops both alike', p,
      asked.ok ? `${bodies('vllm', 'page').length} requests, label ${asked.value.result.label}, corrected ${asked.value.result.corrected?.label}; failure: "${asked.value.failure?.message.slice(0, 60)}"` : '');
  } finally {
    server.stop();
  }
}
/** Stretches stage 1 described. */
function describedStretches(result) {
  return (result.stage1 ?? []).length;
}

// ---------------------------------------------------------------- WebGPU, first frames
const GPU_FRAMES = 3;
const gpu = await browser.call(page, 'webgpu', async ({ frames }) => window.capture(async () => {
  const analyzer = await window.emolens.Analyzer.create({ backend: 'webgpu', modelBaseUrl: '/models/' });
  const video = window.videoOf('/shared/video/single_face.mp4');
  const started = performance.now();
  const report = await analyzer.analyzeVideo(video, { records: true, maxFrames: frames, batch: frames, keyframeFps: 0 });
  return { report: window.toPlain(report), seconds: (performance.now() - started) / 1000, backend: analyzer.backend, adapter: analyzer.adapterInfo };
}), { frames: GPU_FRAMES });
let gpuFps = null;
if (!gpu.ok) {
  record('WebGPU: first frames of single_face.mp4', [`rejected: ${gpu.error.message}`]);
} else {
  const { report, seconds, backend, adapter } = gpu.value;
  gpuFps = report.frames / seconds;
  const p = [];
  if (backend !== 'webgpu') p.push(`backend ${backend}`);
  if (report.frames !== GPU_FRAMES) p.push(`${report.frames} frames, asked for ${GPU_FRAMES}`);
  let worst = 0;
  report.records.forEach((r, i) => {
    const n = nativeVideo.records[i];
    if (Math.abs(r.time - n.time) > TIME_TOL) p.push(`frame ${i} at ${r.time} s, native ${n.time} s`);
    if (!r.expressions) return p.push(`frame ${i}: no face on WebGPU`);
    r.expressions.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - n.expressions[c]))));
  });
  if (!(worst <= EXPRESSION_TOL)) p.push(`expressions differ from native by up to ${worst}`);
  record(`WebGPU (${adapter}): first ${GPU_FRAMES} frames against native`, p, `max expression difference ${worst.toExponential(2)}`);
}

// ---------------------------------------------------------------- clips without faces, bad files
const noFace = await browser.call(page, 'no_face', async () => window.capture(async () => {
  // Looping: the analysis must still end at the last frame, and leave `loop` as it was.
  const video = window.videoOf('/shared/video/no_face.mp4');
  video.loop = true;
  const report = await window.analyzers.cpu.analyzeVideo(video, { records: true });
  return { ...window.toPlain(report), loopKept: video.loop };
}));
if (!noFace.ok) {
  record('no_face.mp4: analysed', [`rejected: ${noFace.error.message}`]);
} else {
  const r = noFace.value;
  const p = [];
  if (r.frames !== nativeNoFace.frames) p.push(`${r.frames} frames, native ${nativeNoFace.frames}`);
  if (r.records.some((x) => x.face_present || x.expressions)) p.push('a frame is marked with a face');
  if (r.face_frames !== 0) p.push(`face_frames ${r.face_frames}`);
  if (r.events.length) p.push(`${r.events.length} events`);
  if (!r.loopKept) p.push('the video no longer loops after the analysis');
  record('no_face.mp4 (looping <video>): every frame once, all faceless, no events', p, `${r.frames} frames (native ${nativeNoFace.frames})`);
}

const bad = await browser.call(page, 'bad files', async () => {
  const run = (src) => window.capture(async () => window.toPlain(await window.analyzers.cpu.analyzeVideo(window.videoOf(src), { frameTimeoutMs: 10000 })));
  return { mov: await run('/shared/video/face_noface.mov'), text: await run('/not-a-video.mp4') };
});
{
  const p = [];
  let info;
  if (bad.mov.ok) {
    const r = bad.mov.value;
    if (!(r.frames > 0 && r.face_frames < r.frames)) p.push(`decoded, but ${r.face_frames} of ${r.frames} frames have a face: the face never leaves`);
    info = `decoded: ${r.frames} frames, ${r.face_frames} with a face, ${r.events.length} events`;
  } else {
    p.push(...errorProblems(bad.mov, 'face_noface.mov'));
    info = `Error: ${bad.mov.error.message}`;
  }
  record('face_noface.mov (HEVC): analysed with faceless frames marked, or a clear Error', p, info);
  const q = bad.text.ok ? ['a text file was analysed as a video'] : errorProblems(bad.text, 'not-a-video.mp4');
  record('a file that is not a video: an Error, no hang', q, bad.text.ok ? '' : `"${bad.text.error.message}"`);
}

// ---------------------------------------------------------------- live mode
const LIVE_SECONDS = 6;
const live = await browser.call(page, 'live', async ({ seconds }) => window.capture(async () => {
  // A camera stand-in: the clip playing in a loop, captured as a MediaStream.
  const source = window.videoOf('/shared/video/single_face.mp4');
  source.loop = true;
  await source.play();
  const camera = document.createElement('video');
  camera.muted = true;
  camera.srcObject = source.captureStream();
  document.body.appendChild(camera);
  await camera.play();
  const stop = new AbortController();
  const progress = [];
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = performance.now();
    stop.abort();
  }, seconds * 1000);
  const started = performance.now();
  const report = await window.analyzers.cpu.analyzeVideo(camera, { signal: stop.signal, records: true, onProgress: (done) => progress.push(done) });
  const stopLatency = (performance.now() - abortedAt) / 1000;
  const elapsed = (performance.now() - started) / 1000;
  source.pause();
  return { report: window.toPlain(report), elapsed, stopLatency, progress };
}), { seconds: LIVE_SECONDS });
if (!live.ok) {
  record('live mode', [`rejected: ${live.error.message}`]);
} else {
  const { report, elapsed, stopLatency } = live.value;
  const p = [];
  for (const key of Object.keys(nativeVideo)) if (!(key in report)) p.push(`report lacks ${key}`);
  if (!report.live) p.push('no live statistics');
  else {
    if (!report.live.stopped) p.push('not marked as stopped');
    if (!(Number.isInteger(report.live.dropped_frames) && report.live.dropped_frames >= 0)) p.push(`dropped_frames is ${report.live.dropped_frames}`);
  }
  if (!(report.frames >= 3)) p.push(`only ${report.frames} frames analysed`);
  const times = report.records.map((r) => r.time);
  if (times.some((t, i) => i > 0 && !(t > times[i - 1]))) p.push('frame times do not increase');
  // Generous: after the abort the report (spotting, keyframe JPEGs) is built on a busy main thread.
  if (!(stopLatency < 5)) p.push(`resolved ${stopLatency.toFixed(1)} s after the abort`);
  // Never behind: the last analysed frame is from the last moments of the session, not from a queue.
  const lastTime = times.at(-1) ?? 0;
  if (!(lastTime > LIVE_SECONDS - 2.5)) p.push(`the last analysed frame is at ${lastTime.toFixed(2)} s of a ${LIVE_SECONDS} s session: it fell behind`);
  if (report.face_frames === 0) p.push('no face found in the live stream');
  // Analysed + dropped frames cover the stream's frames: at 30 fps about 30 per second.
  const covered = report.frames + (report.live?.dropped_frames ?? 0);
  // Headless capture may present fewer than 30 a second, never as few as 10.
  if (!(covered >= 10 * elapsed)) p.push(`${covered} frames analysed or dropped in ${elapsed.toFixed(1)} s of a 30 fps stream: frames went uncounted`);
  record('live mode (MediaStream): keeps up, drops counted, stops with the report', p,
    `${report.frames} analysed + ${report.live?.dropped_frames} dropped in ${elapsed.toFixed(1)} s, last frame at ${times.at(-1)?.toFixed(2)} s, stopped ${stopLatency.toFixed(2)} s after the abort (${(covered / elapsed).toFixed(1)} frames/s presented), ${report.keyframes.filter((k) => k.jpeg).length}/${report.keyframes.length} keyframes with JPEG, ${report.events.length} events`);
}

await browser.close();
console.log(`\ndense analysis in headless Chromium: CPU ${cpuFps?.toFixed(2) ?? '-'} frames/s (single_face.mp4 through <video>, all 72 frames, stepping and keyframes included; ${pureFps?.toFixed(2) ?? '-'} frames/s on decoded frames, batch 8), WebGPU ${gpuFps?.toFixed(2) ?? '-'} frames/s (${GPU_FRAMES} frames, SwiftShader)`);
console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
finish();
