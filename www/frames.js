// Dense analysis of decoded frames on several threads: the frames are cut where the tracker
// detects anyway (frameChunks), Web Workers (www/worker.js, each its own wasm instance and
// Analyzer) analyse the chunks, and the report is built here from them (framesReport). The
// report equals analyzer.analyzeFrames(frames, times, options) on one thread; the chunking and
// the report are Rust's (src/web/chunks.rs), this file only hands chunks to idle workers.
// Needs Web Workers but no cross-origin isolation (nothing is shared between the instances).
//
//   const pool = await FramePool.start({ analyzer: { backend: 'cpu', modelBaseUrl: 'models/' } }); // workers: hardwareConcurrency
//   const report = await pool.analyzeFrames(imageDatas, times, { onProgress, signal, ...analyzeFramesOptions });
//   pool.close();

import init, { frameChunks, framesReport } from '../pkg/emolens.js';

export class FramePool {
  static async start({ analyzer, workers } = {}) {
    if (typeof Worker === 'undefined') throw new Error('this browser has no Web Workers: use analyzer.analyzeFrames');
    await init({ module_or_path: new URL('../pkg/emolens_bg.wasm', import.meta.url) }); // once per page
    const count = Math.max(1, Math.floor(workers ?? navigator.hardwareConcurrency ?? 1));
    const pool = new FramePool(Array.from({ length: count }, () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })));
    try {
      await Promise.all(pool.workers.map((w) => call(w, { type: 'start', analyzer })));
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  constructor(workers) {
    this.workers = workers;
  }

  get size() {
    return this.workers.length;
  }

  async analyzeFrames(frames, times, { onProgress, signal, ...options } = {}) {
    if (!this.workers.length) throw new Error('the FramePool was closed');
    const started = performance.now();
    const starts = frameChunks(frames.length, options);
    const chunks = [];
    let next = 0;
    let done = 0;
    // Each worker takes the next chunk as soon as it is free.
    const drive = async (worker) => {
      while (next < starts.length) {
        signal?.throwIfAborted();
        const k = next++;
        const first = starts[k];
        const end = starts[k + 1] ?? frames.length;
        const { chunk } = await call(worker, { type: 'chunk', frames: frames.slice(first, end), first, options });
        chunks.push(chunk);
        done += end - first;
        onProgress?.(done, frames.length);
      }
    };
    await Promise.all(this.workers.map(drive));
    return framesReport(frames, times, chunks, options, performance.now() - started);
  }

  close() {
    this.workers.forEach((w) => w.terminate());
    this.workers = [];
  }
}

function call(worker, message) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.type === 'error' ? reject(new Error(data.message)) : resolve(data));
    worker.onerror = (e) => reject(new Error(`an analysis worker failed: ${e.message || 'it could not be loaded'}`));
    worker.postMessage(message);
  });
}
