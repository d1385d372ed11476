// The Web Worker half of live analysis (www/live.js starts it): its own emolens instance and
// Analyzer, a LiveSession fed with the frames the page transfers. Every decision is in Rust
// (src/web_live.rs); this file only passes messages.
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
      session = LiveSession.start(analyzer, data.video);
      reply({ type: 'ready', backend: analyzer.backend, fallbackReason: analyzer.fallbackReason ?? null });
    } else if (data.type === 'frame') {
      const analysed = await session.push(data.bitmap, data.time, data.dropped);
      reply({ type: 'analysed', analysed });
    } else if (data.type === 'finish') {
      reply({ type: 'report', report: await session.finish(data.stopped, data.dropped) });
    }
  } catch (e) {
    data.bitmap?.close?.();
    fail(e);
  }
};
