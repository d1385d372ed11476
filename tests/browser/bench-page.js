// In-page half of tests/browser/bench.mjs: face-api.js (tfjs, wasm backend) and emolens on the
// same decoded frames, in the same page. Driven through window.bench; window.capture comes from
// harness.mjs.

const FACEAPI = '/node_modules/@vladmandic/face-api/dist/face-api.esm.js';
const TFJS_WASM = '/node_modules/@tensorflow/tfjs-backend-wasm/dist/';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// Counts the WebGPU calls that cost the same on any GPU: compute dispatches, buffer uploads,
// read-backs (mapAsync), queue submissions, and pipelines (shader compilations).
const gpuCalls = { dispatches: 0, uploads: 0, uploadBytes: 0, readbacks: 0, submits: 0, pipelines: 0 };
function countGpuCalls() {
  if (typeof GPUComputePassEncoder === 'undefined') return false;
  const wrap = (proto, name, count) => {
    const original = proto[name];
    if (typeof original !== 'function') return;
    proto[name] = function (...args) {
      count(args);
      return original.apply(this, args);
    };
  };
  wrap(GPUComputePassEncoder.prototype, 'dispatchWorkgroups', () => gpuCalls.dispatches++);
  wrap(GPUComputePassEncoder.prototype, 'dispatchWorkgroupsIndirect', () => gpuCalls.dispatches++);
  wrap(GPUQueue.prototype, 'writeBuffer', (a) => {
    gpuCalls.uploads++;
    const data = a[2];
    gpuCalls.uploadBytes += a[4] ?? data?.byteLength ?? 0;
  });
  wrap(GPUBuffer.prototype, 'mapAsync', () => gpuCalls.readbacks++);
  wrap(GPUQueue.prototype, 'submit', () => gpuCalls.submits++);
  wrap(GPUDevice.prototype, 'createComputePipeline', () => gpuCalls.pipelines++);
  wrap(GPUDevice.prototype, 'createComputePipelineAsync', () => gpuCalls.pipelines++);
  return true;
}
const counting = countGpuCalls();
const snapshot = () => ({ ...gpuCalls });
const delta = (a, b, n) => Object.fromEntries(Object.keys(a).map((k) => [k, (b[k] - a[k]) / n]));

window.bench = {
  // Every frame of the clip as ImageData, by seeking (the same pixels for every contender).
  decode: (url, fps, count) =>
    window.capture(async () => {
      const video = document.createElement('video');
      video.muted = true;
      video.src = url;
      await new Promise((resolve, reject) => {
        video.onloadeddata = resolve;
        video.onerror = () => reject(new Error(`cannot load ${url}`));
      });
      const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
      const g = canvas.getContext('2d', { willReadFrequently: true });
      window.clipFrames = [];
      window.clipTimes = [];
      for (let i = 0; i < count; i++) {
        const shown = new Promise((resolve) => video.requestVideoFrameCallback((_, meta) => resolve(meta)));
        video.currentTime = (i + 0.5) / fps;
        const meta = await shown;
        g.drawImage(video, 0, 0);
        window.clipFrames.push(g.getImageData(0, 0, canvas.width, canvas.height));
        window.clipTimes.push(meta.mediaTime);
      }
      return { frames: window.clipFrames.length, width: canvas.width, height: canvas.height };
    }),

  // face-api.js as its users run it: tfjs' wasm backend (SIMD; threads only if isolated).
  faceApi: ({ inputSize, models }) =>
    window.capture(async () => {
      const t0 = performance.now();
      const faceapi = await import(FACEAPI);
      faceapi.tf.setWasmPaths(TFJS_WASM);
      await faceapi.tf.setBackend('wasm');
      await faceapi.tf.ready();
      await faceapi.nets.tinyFaceDetector.loadFromUri(models);
      await faceapi.nets.faceLandmark68Net.loadFromUri(models);
      await faceapi.nets.faceExpressionNet.loadFromUri(models);
      const options = new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.5 });
      const run = async (frame) => {
        const input = faceapi.tf.browser.fromPixels(frame);
        try {
          return await faceapi.detectAllFaces(input, options).withFaceLandmarks().withFaceExpressions();
        } finally {
          input.dispose();
        }
      };
      const first = await run(window.clipFrames[0]);
      const coldMs = performance.now() - t0;
      const times = [];
      const results = [];
      for (const frame of window.clipFrames) {
        const t = performance.now();
        const faces = await run(frame);
        times.push(performance.now() - t);
        results.push(faces.map((f) => ({ box: f.detection.box, expressions: { ...f.expressions } })));
      }
      const flags = faceapi.tf.env().flags;
      return {
        coldMs,
        firstFaces: first.length,
        medianMs: median(times),
        meanMs: times.reduce((a, b) => a + b, 0) / times.length,
        results,
        backend: faceapi.tf.getBackend(),
        simd: !!flags.WASM_HAS_SIMD_SUPPORT,
        threads: !!flags.WASM_HAS_MULTITHREAD_SUPPORT,
      };
    }),

  // A fresh emolens Analyzer; `analyzeFrame` on every frame.
  frames: (options) =>
    window.capture(async () => {
      const t0 = performance.now();
      const analyzer = await window.emolens.Analyzer.create(options);
      const createMs = performance.now() - t0;
      const t1 = performance.now();
      await analyzer.analyzeFrame(window.clipFrames[0]);
      const firstMs = performance.now() - t1;
      const limit = options.maxFrames ?? window.clipFrames.length;
      const before = snapshot();
      const times = [];
      const results = [];
      for (const frame of window.clipFrames.slice(0, limit)) {
        const t = performance.now();
        const r = await analyzer.analyzeFrame(frame);
        times.push(performance.now() - t);
        results.push(r.faces.map((f) => ({ box: f.box, expressions: f.expressions })));
      }
      const calls = counting ? delta(before, snapshot(), times.length) : null;
      const out = {
        backend: analyzer.backend,
        adapterInfo: analyzer.adapterInfo ?? null,
        fallbackReason: analyzer.fallbackReason ?? null,
        createMs,
        firstMs,
        medianMs: median(times),
        meanMs: times.reduce((a, b) => a + b, 0) / times.length,
        frames: times.length,
        calls,
        results,
      };
      analyzer.free();
      return out;
    }),

  // The dense path: analyzeFrames over every frame (report, keyframe JPEGs included).
  dense: (options, videoOptions, limit) =>
    window.capture(async () => {
      const analyzer = await window.emolens.Analyzer.create(options);
      await analyzer.analyzeFrame(window.clipFrames[0]);
      const before = snapshot();
      const t = performance.now();
      const n = limit ?? window.clipFrames.length;
      const report = await analyzer.analyzeFrames(window.clipFrames.slice(0, n), window.clipTimes.slice(0, n), { records: true, ...videoOptions });
      const ms = performance.now() - t;
      const calls = counting ? delta(before, snapshot(), n) : null;
      analyzer.free();
      return {
        msPerFrame: ms / n,
        analysisFps: report.analysis_fps,
        tracking: report.tracking ?? null,
        events: report.events.map((e) => e.kind),
        expressions: report.records.map((r) => r.expressions),
        calls,
      };
    }),

  // The dense path on several threads (www/frames.js): Web Workers analyse chunks of the
  // frames; the pool's start (a wasm instance and the models per worker) is timed apart.
  denseWorkers: (options, videoOptions, workers) =>
    window.capture(async () => {
      const { FramePool } = await import('/www/frames.js');
      let t = performance.now();
      const pool = await FramePool.start({ analyzer: options, workers });
      const startMs = performance.now() - t;
      try {
        const n = window.clipFrames.length;
        t = performance.now();
        const report = await pool.analyzeFrames(window.clipFrames, window.clipTimes, { records: true, ...videoOptions });
        const ms = performance.now() - t;
        return {
          workers: pool.size,
          startMs,
          msPerFrame: ms / n,
          tracking: report.tracking ?? null,
          events: report.events.map((e) => e.kind),
          expressions: report.records.map((r) => r.expressions),
        };
      } finally {
        pool.close();
      }
    }),

  // Live mode: the clip looping as a 30 fps MediaStream, analysed for `seconds`, on this thread
  // (analyzeVideo) or in a Web Worker (www/live.js).
  live: ({ url, seconds, options, worker }) =>
    window.capture(async () => {
      const analyzer = worker ? null : await window.emolens.Analyzer.create(options);
      if (analyzer) await analyzer.analyzeFrame(window.clipFrames[0]);
      const { analyzeLive } = worker ? await import('/www/live.js') : {};
      const source = document.createElement('video');
      source.muted = true;
      source.loop = true;
      source.src = url;
      document.body.appendChild(source);
      await source.play();
      const camera = document.createElement('video');
      camera.muted = true;
      camera.srcObject = source.captureStream(30);
      document.body.appendChild(camera);
      await camera.play();
      // The longest main-thread task while the session runs (Long Tasks API: tasks ≥ 50 ms).
      const longTasks = [];
      const observer = new PerformanceObserver((list) => list.getEntries().forEach((e) => longTasks.push(e.duration)));
      observer.observe({ type: 'longtask', buffered: false });
      const stop = new AbortController();
      setTimeout(() => stop.abort(), seconds * 1000);
      const started = performance.now();
      const report = worker
        ? await analyzeLive(camera, { analyzer: options, signal: stop.signal })
        : await analyzer.analyzeVideo(camera, { signal: stop.signal });
      const elapsed = (performance.now() - started) / 1000;
      observer.disconnect();
      source.pause();
      analyzer?.free();
      return {
        analysed: report.frames,
        dropped: report.live.dropped_frames,
        // The frames a 30 fps camera delivered meanwhile (the session ends within a frame of the abort).
        streamFrames: Math.min(elapsed, seconds) * 30,
        tracking: report.tracking ?? null,
        worker: report.live.worker ?? false,
        keyframesWithJpeg: report.keyframes.filter((k) => k.jpeg).length,
        keyframes: report.keyframes.length,
        longestTaskMs: longTasks.length ? Math.max(...longTasks) : 0,
        longTasks: longTasks.length,
      };
    }),

  // Cold start in this fresh page: module fetch and compile, models, first result.
  cold: (options) =>
    window.capture(async () => {
      const t0 = performance.now();
      const module = await import(`/pkg/emolens.js?cold=${Date.now()}`);
      await module.default({ module_or_path: `/pkg/emolens_bg.wasm?cold=${Date.now()}` });
      const initMs = performance.now() - t0;
      const analyzer = await module.Analyzer.create(options);
      await analyzer.analyzeFrame(window.clipFrames[0]);
      return { initMs, totalMs: performance.now() - t0 };
    }),
};
