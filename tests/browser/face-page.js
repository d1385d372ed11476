// In-page half of tests/browser/run.mjs: loaded into a harness page (window.emolens is the
// initialised wasm package; window.capture and window.toPlain come from harness.mjs) and driven
// through window.emolensTest. Each page holds at most one Analyzer.
let analyzer = null;

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

  create: (opts) =>
    window.capture(async () => {
      if (analyzer) {
        analyzer.free();
        analyzer = null;
      }
      const t0 = performance.now();
      const a = await window.emolens.Analyzer.create(opts);
      analyzer = a;
      return { backend: a.backend, adapterInfo: a.adapterInfo ?? null, fallbackReason: a.fallbackReason ?? null, ms: performance.now() - t0 };
    }),

  analyze: (url, kind = 'bitmap') =>
    window.capture(async () => {
      if (!analyzer) throw new Error('no analyzer: call create first');
      const src = await loadSource(url, kind);
      const t0 = performance.now();
      const r = await analyzer.analyzeFrame(src);
      const ms = performance.now() - t0;
      if (src.close) src.close();
      return { ms, result: window.toPlain(r) };
    }),

  // Times n analyzeFrame calls on one photo after `warmup` untimed ones.
  bench: (url, n = 10, warmup = 1) =>
    window.capture(async () => {
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
