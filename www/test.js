// Test page for tests/browser/run.mjs: exposes the wasm API through window.emolensTest so that
// Playwright can drive it with page.evaluate. Each page holds at most one Analyzer.
import init, { Analyzer } from '../pkg/emolens.js';

const WASM_URL = new URL('../pkg/emolens_bg.wasm', import.meta.url);
let analyzer = null;
let initialised = null;

// Describes a rejection value: the API promises an Error with a sentence as its message.
function describe(e) {
  if (e instanceof Error) return { isError: true, name: e.name, message: e.message };
  let message;
  try {
    message = typeof e === 'string' ? e : JSON.stringify(e);
  } catch {
    message = String(e);
  }
  return { isError: false, name: typeof e, message: String(message) };
}

// Runs fn; resolves to { ok: true, value } or { ok: false, error: describe(e) } so that the Node
// side sees exactly what the API rejected with.
async function capture(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: describe(e) };
  }
}

// Converts an analyzeFrame result to plain JSON, flagging values that would not survive
// JSON (Maps from serde-wasm-bindgen, typed arrays), so schema problems show up clearly.
function toPlain(v, where = 'result') {
  if (v instanceof Map) throw new Error(`${where} is a JS Map, expected a plain object`);
  if (ArrayBuffer.isView(v)) return Array.from(v);
  if (Array.isArray(v)) return v.map((x, i) => toPlain(x, `${where}[${i}]`));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = toPlain(x, `${where}.${k}`);
    return out;
  }
  return v;
}

const cache = new Map();
async function fetchBlob(url) {
  if (!cache.has(url)) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
    cache.set(url, await res.blob());
  }
  return cache.get(url);
}

// Builds the source object handed to analyzeFrame.
//   bitmap:    ImageBitmap decoded from the PNG bytes (no colour conversion, no premultiplication)
//   image:     HTMLImageElement
//   imagedata: ImageData read back from a 2D canvas
async function loadSource(url, kind) {
  const blob = await fetchBlob(url);
  if (kind === 'bitmap') {
    return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  }
  const img = new Image();
  img.src = URL.createObjectURL(blob);
  await img.decode();
  if (kind === 'image') return img;
  if (kind === 'imagedata') {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, c.width, c.height);
  }
  throw new Error(`unknown source kind ${kind}`);
}

window.emolensTest = {
  hasWebGPU: () => !!navigator.gpu,

  init: () =>
    capture(async () => {
      if (!initialised) initialised = init({ module_or_path: WASM_URL });
      await initialised;
      return true;
    }),

  create: (opts) =>
    capture(async () => {
      if (!initialised) initialised = init({ module_or_path: WASM_URL });
      await initialised;
      if (analyzer) {
        analyzer.free();
        analyzer = null;
      }
      const t0 = performance.now();
      const a = await Analyzer.create(opts);
      analyzer = a;
      return { backend: a.backend, adapterInfo: a.adapterInfo ?? null, fallbackReason: a.fallbackReason ?? null, ms: performance.now() - t0 };
    }),

  analyze: (url, kind = 'bitmap') =>
    capture(async () => {
      if (!analyzer) throw new Error('no analyzer: call create first');
      const src = await loadSource(url, kind);
      const t0 = performance.now();
      const r = await analyzer.analyzeFrame(src);
      const ms = performance.now() - t0;
      if (src.close) src.close();
      return { ms, result: toPlain(r) };
    }),

  // Times n analyzeFrame calls on one photo after `warmup` untimed ones.
  bench: (url, n = 10, warmup = 1) =>
    capture(async () => {
      if (!analyzer) throw new Error('no analyzer: call create first');
      const src = await loadSource(url, 'bitmap');
      for (let i = 0; i < warmup; i++) await analyzer.analyzeFrame(src);
      const times = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await analyzer.analyzeFrame(src);
        times.push(performance.now() - t);
      }
      const total = performance.now() - t0;
      src.close();
      return { n, totalMs: total, fps: (n * 1000) / total, times };
    }),
};
document.getElementById('status').dataset.ready = '1';
