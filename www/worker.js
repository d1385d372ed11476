// The Web Worker of emolens' analyses off the page's main thread: its own wasm instance and
// Analyzer. Live sessions (www/live.js) push transferred ImageBitmaps through a LiveSession;
// dense analysis of decoded frames (www/frames.js) sends chunks to analyzeChunk. Every decision
// is in Rust (src/web/live.rs, src/web/chunks.rs); this file only passes messages.
import init, { Analyzer, LiveSession } from '../pkg/emolens.js';

let session = null;
let analyzer = null;

const reply = (message) => self.postMessage(message);
const fail = (e) => reply({ type: 'error', message: e instanceof Error ? e.message : String(e) });

self.onmessage = async ({ data }) => {
  try {
    if (data.type === 'start') {
      await init({ module_or_path: new URL('../pkg/emolens_bg.wasm', import.meta.url) });
      analyzer = await Analyzer.create(data.analyzer);
      if (data.video) session = LiveSession.start(analyzer, data.video);
      reply({ type: 'ready', backend: analyzer.backend, fallbackReason: analyzer.fallbackReason ?? null });
    } else if (data.type === 'frame') {
      const analysed = await session.push(data.bitmap, data.time, data.dropped);
      reply({ type: 'analysed', analysed });
    } else if (data.type === 'finish') {
      reply({ type: 'report', report: await session.finish(data.stopped, data.dropped) });
    } else if (data.type === 'chunk') {
      reply({ type: 'chunk', chunk: await analyzer.analyzeChunk(data.frames, data.first, data.options) });
    }
  } catch (e) {
    data.bitmap?.close?.();
    fail(e);
  }
};
