// emolens demo: runs the wasm face pipeline on a video (sample clip, webcam or local file) or the
// sample photo, and draws boxes, 68 landmarks and expression bars for the main face.
//
// URL parameters (handy for automation): ?backend=auto|webgpu|cpu&input=sample|photo|webcam|file
// (and the VLM panel's, see vlm.js)
import init, { Analyzer, expressionNames } from 'emolens';
import { setupVlm } from './vlm.js';
import { setupClipReport } from './clip-report.js';
import { setupLiveAnalysis } from './live-button.js';

const MODEL_BASE_URL = 'models/';

const $ = (id) => document.getElementById(id);
const ui = {
  backend: $('backend'),
  input: $('input'),
  fileLabel: $('file-label'),
  file: $('file'),
  pause: $('pause'),
  status: $('status'),
  error: $('error'),
  video: $('video'),
  photo: $('photo'),
  overlay: $('overlay'),
  bars: $('bars'),
  faceInfo: $('face-info'),
};
const ctx = ui.overlay.getContext('2d');

// State exposed for automated checks (tests/browser, screenshots).
const state = {
  ready: false,
  analyzer: null,
  backend: null,
  adapterInfo: null,
  fallbackReason: null,
  inflight: null, // the one analyzeFrame promise allowed at a time
  loopId: 0, // bumped to stop a running loop
  frames: 0, // analysed frames since the source/backend changed
  dropped: 0, // video frames skipped because an analysis was still running
  times: [], // completion times (ms) of recent analyses, for frames/s
  latency: 0, // smoothed analyzeFrame latency (ms)
  lastResult: null,
  error: null,
  objectUrl: null,
  stream: null,
};
window.__emolens = state;

// ------------------------------------------------------------------ errors and status
function showError(err, context) {
  const msg = err && err.message ? err.message : String(err);
  state.error = context ? `${context}: ${msg}` : msg;
  ui.error.textContent = state.error;
  ui.error.hidden = false;
  console.error(context || 'emolens', err);
}
function clearError() {
  state.error = null;
  ui.error.hidden = true;
  ui.error.textContent = '';
}
window.addEventListener('unhandledrejection', (e) => showError(e.reason, 'Unexpected error'));
window.addEventListener('error', (e) => showError(e.error || e.message, 'Unexpected error'));

function setStatus(text) {
  ui.status.textContent = text;
}

function fps() {
  const t = state.times;
  if (t.length < 2) return 0;
  return ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
}

function renderStatus() {
  if (!state.analyzer) return;
  const faces = state.lastResult ? state.lastResult.faces.length : 0;
  const adapter = state.adapterInfo ? ` (${state.adapterInfo})` : '';
  const parts = [`backend: ${state.backend}${adapter}${state.fallbackReason ? ' (WebGPU unavailable)' : ''}`];
  if (ui.input.value === 'photo') {
    if (state.frames) parts.push(`${state.latency.toFixed(0)} ms/frame`);
  } else {
    parts.push(`${fps().toFixed(1)} frames/s analysed`, `${state.latency.toFixed(0)} ms/frame`);
    parts.push(`${state.dropped} frames dropped`);
  }
  parts.push(`${faces} face${faces === 1 ? '' : 's'}`);
  setStatus(parts.join(' · '));
}

// ------------------------------------------------------------------ expression bars
// The names come from the package, so the bars are built once it is initialised.
let EXPRESSIONS = [];
const barEls = {};
function buildBars() {
  EXPRESSIONS = expressionNames();
  for (const name of EXPRESSIONS) {
    const row = document.createElement('div');
    row.className = 'bar';
    row.innerHTML = `<span class="name">${name}</span><div class="track"><div class="fill"></div></div><span class="val">–</span>`;
    ui.bars.appendChild(row);
    barEls[name] = { row, fill: row.querySelector('.fill'), val: row.querySelector('.val') };
  }
}

function renderBars(face) {
  const ex = face ? face.expressions : null;
  const top = ex ? EXPRESSIONS.reduce((a, b) => (ex[b] > ex[a] ? b : a)) : null;
  for (const name of EXPRESSIONS) {
    const b = barEls[name];
    const p = ex ? ex[name] : 0;
    b.fill.style.width = `${(p * 100).toFixed(1)}%`;
    b.val.textContent = ex ? p.toFixed(2) : '–';
    b.row.classList.toggle('top', name === top);
  }
  ui.faceInfo.textContent = face
    ? `score ${face.score.toFixed(2)} · box ${Math.round(face.box.width)}×${Math.round(face.box.height)} px at (${Math.round(face.box.x)}, ${Math.round(face.box.y)})`
    : 'No face in this frame.';
}

// ------------------------------------------------------------------ drawing
function mainFace(faces) {
  let best = null;
  for (const f of faces) if (!best || f.box.width * f.box.height > best.box.width * best.box.height) best = f;
  return best;
}

function topExpression(face) {
  const ex = face.expressions;
  const name = EXPRESSIONS.reduce((a, b) => (ex[b] > ex[a] ? b : a));
  return `${name} ${(ex[name] * 100).toFixed(0)}%`;
}

function sizeOverlay(width, height) {
  if (ui.overlay.width !== width || ui.overlay.height !== height) {
    ui.overlay.width = width;
    ui.overlay.height = height;
  }
}

function draw(result) {
  sizeOverlay(result.width, result.height);
  ctx.clearRect(0, 0, ui.overlay.width, ui.overlay.height);
  const main = mainFace(result.faces);
  const unit = Math.max(1, Math.min(result.width, result.height) / 360); // line widths scale with the frame
  for (const face of result.faces) {
    const isMain = face === main;
    const color = isMain ? '#3ddc97' : '#ffb84d';
    const { x, y, width, height } = face.box;
    ctx.lineWidth = 2 * unit;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, width, height);

    ctx.fillStyle = isMain ? '#e9fff5' : '#fff2dc';
    const r = 1.6 * unit;
    for (const [lx, ly] of face.landmarks) {
      ctx.beginPath();
      ctx.arc(lx, ly, r, 0, 2 * Math.PI);
      ctx.fill();
    }

    const label = topExpression(face);
    ctx.font = `${Math.round(13 * unit)}px system-ui, sans-serif`;
    const tw = ctx.measureText(label).width;
    const th = 18 * unit;
    const ly = y - th >= 0 ? y - th : y + height;
    ctx.fillStyle = color;
    ctx.fillRect(x - ctx.lineWidth / 2, ly, tw + 10 * unit, th);
    ctx.fillStyle = '#0b0e12';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, x + 5 * unit, ly + th / 2);
  }
  renderBars(main);
}

function clearDrawing() {
  ctx.clearRect(0, 0, ui.overlay.width, ui.overlay.height);
  renderBars(null);
  ui.faceInfo.textContent = 'No face yet.';
}

// ------------------------------------------------------------------ analysis
function recordTiming(t0) {
  const now = performance.now();
  const dt = now - t0;
  state.latency = state.frames === 0 ? dt : 0.8 * state.latency + 0.2 * dt;
  state.frames += 1;
  state.times.push(now);
  while (state.times.length > 2 && now - state.times[0] > 2000) state.times.shift();
}

function resetStats() {
  state.frames = 0;
  state.dropped = 0;
  state.times = [];
  state.latency = 0;
  state.lastResult = null;
}

function analyze(source) {
  const analyzer = state.analyzer;
  const t0 = performance.now();
  const p = analyzer.analyzeFrame(source).then((result) => {
    if (analyzer !== state.analyzer) return; // backend switched meanwhile
    recordTiming(t0);
    state.lastResult = result;
    draw(result);
    renderStatus();
  });
  // state.inflight settles (never rejects) when this analysis is over; p carries the outcome.
  const done = p.then(
    () => {},
    () => {},
  ).then(() => {
    if (state.inflight === done) state.inflight = null;
  });
  state.inflight = done;
  return p;
}

function stopLoop() {
  state.loopId += 1;
}

// Analyses the video frame by frame. At most one analyzeFrame is in flight: frames that arrive
// while it runs are dropped, so the overlay lags by one analysis at most and never falls behind.
function startVideoLoop() {
  const id = ++state.loopId;
  const video = ui.video;
  const hasRvfc = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
  const schedule = () => {
    if (id !== state.loopId) return;
    if (hasRvfc) video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onFrame);
  };
  let lastPresented = null;
  const onFrame = (now, meta) => {
    if (id !== state.loopId) return;
    schedule();
    if (!state.analyzer || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || video.videoWidth === 0) return;
    if (state.inflight) {
      if (!meta) state.dropped += 1; // rAF fallback: count skipped callbacks
      return;
    }
    // Frames presented since the last analysed one were dropped (also those the browser never
    // called back for while a CPU analysis held the main thread).
    if (meta && meta.presentedFrames !== undefined) {
      if (lastPresented !== null) state.dropped += Math.max(0, meta.presentedFrames - lastPresented - 1);
      lastPresented = meta.presentedFrames;
    }
    analyze(video).catch((err) => {
      if (id !== state.loopId) return;
      stopLoop();
      showError(err, 'Analysis failed (analysis stopped; change the backend or input to retry)');
    });
  };
  schedule();
}

// ------------------------------------------------------------------ analyzer (backend)
async function createAnalyzer(backend) {
  stopLoop();
  const old = state.analyzer;
  state.analyzer = null;
  if (state.inflight) await state.inflight.catch(() => {});
  if (old) old.free();
  resetStats();
  clearDrawing();
  setStatus(`Loading models and starting the ${backend} backend…`);
  const t0 = performance.now();
  const analyzer = await Analyzer.create({ backend, modelBaseUrl: MODEL_BASE_URL });
  state.analyzer = analyzer;
  state.backend = analyzer.backend;
  state.adapterInfo = analyzer.adapterInfo ?? null;
  // 'auto' that fell back to the CPU says why (binding getter fallbackReason, when present).
  state.fallbackReason = analyzer.fallbackReason ?? null;
  const adapter = state.adapterInfo ? ` (${state.adapterInfo})` : '';
  const why = state.fallbackReason ? ` · no WebGPU: ${state.fallbackReason}` : '';
  setStatus(`backend: ${state.backend}${adapter} · ready in ${((performance.now() - t0) / 1000).toFixed(1)} s${why}`);
}

// ------------------------------------------------------------------ inputs
function releaseSource() {
  stopLoop();
  const v = ui.video;
  v.pause();
  if (state.stream) {
    for (const t of state.stream.getTracks()) t.stop();
    state.stream = null;
  }
  v.srcObject = null;
  v.removeAttribute('src');
  v.load();
  if (state.objectUrl) {
    URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = null;
  }
}

function waitForVideo(video, what) {
  return new Promise((resolve, reject) => {
    const ok = () => {
      cleanup();
      resolve();
    };
    const fail = () => {
      cleanup();
      const code = video.error ? ` (media error ${video.error.code}${video.error.message ? `: ${video.error.message}` : ''})` : '';
      reject(new Error(`${what} could not be loaded or decoded${code}.`));
    };
    const cleanup = () => {
      video.removeEventListener('loadeddata', ok);
      video.removeEventListener('error', fail);
    };
    video.addEventListener('loadeddata', ok);
    video.addEventListener('error', fail);
  });
}

async function playVideo(what) {
  const v = ui.video;
  ui.photo.hidden = true;
  v.hidden = false;
  await waitForVideo(v, what);
  await v.play();
  ui.pause.disabled = false;
  ui.pause.textContent = 'Pause';
  startVideoLoop();
}

async function useSource(kind) {
  releaseSource();
  resetStats();
  clearDrawing();
  ui.fileLabel.hidden = kind !== 'file';
  const v = ui.video;
  if (kind === 'sample') {
    v.loop = true;
    v.src = 'sample.mp4';
    await playVideo('The sample clip (sample.mp4)');
  } else if (kind === 'photo') {
    v.hidden = true;
    ui.photo.hidden = false;
    ui.pause.disabled = true;
    const img = ui.photo;
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error('The sample photo (sample.jpg) could not be loaded.'));
      img.src = 'sample.jpg';
    });
    await img.decode();
    if (state.analyzer) await analyze(img);
  } else if (kind === 'webcam') {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('This browser gives no camera access here (getUserMedia needs https or localhost).');
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (e) {
      throw new Error(`The webcam could not be opened: ${e.name === 'NotAllowedError' ? 'permission was denied' : e.message || e.name}.`);
    }
    state.stream = stream;
    v.loop = false;
    v.srcObject = stream;
    await playVideo('The webcam stream');
  } else if (kind === 'file') {
    const f = ui.file.files && ui.file.files[0];
    if (!f) {
      ui.pause.disabled = true;
      setStatusIdle('Choose a video file.');
      return;
    }
    state.objectUrl = URL.createObjectURL(f);
    v.loop = true;
    v.src = state.objectUrl;
    await playVideo(`The file "${f.name}"`);
  }
}

function setStatusIdle(text) {
  if (state.analyzer) {
    const adapter = state.adapterInfo ? ` (${state.adapterInfo})` : '';
    setStatus(`backend: ${state.backend}${adapter} · ${text}`);
  } else setStatus(text);
}

// Serialises user actions: each waits for the one before it.
let chain = Promise.resolve();
function run(what, fn) {
  chain = chain.then(async () => {
    clearError();
    try {
      await fn();
    } catch (e) {
      showError(e, what);
      if (!state.analyzer) setStatus('Not running.');
    }
  });
  return chain;
}

function restartSource() {
  return useSource(ui.input.value);
}

ui.backend.addEventListener('change', () =>
  run('Could not start the backend', async () => {
    await createAnalyzer(ui.backend.value);
    await restartSource();
  }),
);
ui.input.addEventListener('change', () => run('Could not open the input', restartSource));
ui.file.addEventListener('change', () => run('Could not open the file', () => useSource('file')));
// A seek while paused (from the timeline plot or a keyframe) gets its frame analysed too: the
// frame loop only takes frames that arrive while no analysis runs. Not during a whole-clip run,
// which has the analyzer to itself.
ui.video.addEventListener('seeked', async () => {
  const idle = () => ui.video.paused && !ui.video.seeking && state.analyzer && !clipButton.disabled;
  if (!idle()) return;
  if (state.inflight) await state.inflight;
  if (idle() && !state.inflight) analyze(ui.video).catch((e) => showError(e, 'Analysis failed'));
});
ui.pause.addEventListener('click', () => {
  const v = ui.video;
  if (v.paused) {
    v.play().catch((e) => showError(e, 'Could not resume'));
    ui.pause.textContent = 'Pause';
  } else {
    v.pause();
    ui.pause.textContent = 'Play';
  }
});

// ------------------------------------------------------------------ whole clip
// Every frame of the sample clip or the chosen file, on a second <video> so the live view keeps
// its own; the live loop pauses meanwhile (both would compete for the same CPU or GPU).
const clipButton = $('whole-clip');
let clipReport = null; // set up once the package is initialised
let vlmPanel = null;
clipButton.addEventListener('click', () =>
  run('Could not analyse the whole clip', async () => {
    if (!state.analyzer) throw new Error('the analyzer is not ready yet');
    if (ui.input.value === 'photo' || !ui.video.currentSrc || state.stream) throw new Error('choose the sample clip or a file: a webcam has no whole clip');
    const clip = Object.assign(document.createElement('video'), { muted: true, playsInline: true, src: ui.video.currentSrc });
    // In the document (invisibly): Chromium may not present frames of a detached <video>.
    clip.style.cssText = 'position: fixed; left: 0; top: 0; width: 2px; height: 2px; opacity: 0; pointer-events: none;';
    document.body.appendChild(clip);
    stopLoop();
    ui.video.pause();
    clipButton.disabled = true;
    try {
      const report = await state.analyzer.analyzeVideo(clip, {
        records: true, // the timeline plot draws every frame
        onProgress: (done, total) => setStatusIdle(`whole clip: ${done}${total ? ` / ~${total}` : ''} frames analysed…`),
      });
      state.clipReport = report;
      clipReport.show(report);
      vlmPanel.render(); // its questions are now about the whole clip
    } finally {
      clipButton.disabled = false;
      clip.removeAttribute('src');
      clip.remove();
      await restartSource();
    }
  }),
);

// ------------------------------------------------------------------ start
const params = new URLSearchParams(location.search);
for (const [key, sel] of [['backend', ui.backend], ['input', ui.input]]) {
  const v = params.get(key);
  if (v && [...sel.options].some((o) => o.value === v)) sel.value = v;
}

run('Could not start emolens', async () => {
  setStatus('Loading the WebAssembly module…');
  await init(); // the package finds its .wasm beside it (a URL the bundler resolves)
  buildBars();
  clipReport = setupClipReport({ video: ui.video, state });
  setupLiveAnalysis({
    button: $('live'),
    video: ui.video,
    hasVideo: () => ui.input.value !== 'photo' && !!(ui.video.currentSrc || ui.video.srcObject),
    state,
    modelBaseUrl: MODEL_BASE_URL,
    pauseOverlay: stopLoop,
    resume: () => run('Could not restart the input', restartSource),
    setStatus: setStatusIdle,
    show: (report) => clipReport.show(report),
    showError,
  });
  // The VLM panel works whatever happens to the face analyser.
  vlmPanel = setupVlm({ state, currentFrame: () => (ui.input.value === 'photo' ? ui.photo : ui.video) });
  await createAnalyzer(ui.backend.value);
  state.ready = true;
  await restartSource();
});
