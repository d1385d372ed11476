// Live analysis of a webcam <video> in a Web Worker, so that the page's main thread stays free:
// it only copies each frame into an ImageBitmap and transfers it. While a frame is analysed, the
// next ones wait in a short queue (option liveQueue) so that the detector's slower frames are
// caught up on, and the oldest is dropped (and counted) when it is full. The
// decisions are Rust's (LiveCapture, src/timeline/live.rs; the analysis: src/web/live.rs); this
// file carries them out. Where workers or OffscreenCanvas are missing, it runs analyzeVideo on
// the main thread instead (`report.live.worker` says which ran).
//
//   const report = await analyzeLive(video, { analyzer: { backend: 'auto', modelBaseUrl: 'models/' },
//     fallback: analyzerOnThisThread, signal, onProgress: (analysed) => {}, onReady: () => {}, ...analyzeVideoOptions });

import init, { LiveCapture } from '../pkg/emolens.js';

export async function analyzeLive(video, { analyzer, fallback, signal, onProgress, onReady, ...videoOptions } = {}) {
  const workers = typeof Worker !== 'undefined' && typeof OffscreenCanvas !== 'undefined' && typeof createImageBitmap !== 'undefined';
  if (!workers) {
    if (!fallback) throw new Error('this browser has no Web Workers with OffscreenCanvas, and no analyzer for the main thread was given (option fallback)');
    await onReady?.();
    return fallback.analyzeVideo(video, { ...videoOptions, mode: 'live', signal, onProgress });
  }
  await init({ module_or_path: new URL('../pkg/emolens_bg.wasm', import.meta.url) }); // once per page
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  let onMessage = () => {};
  let onError = () => {};
  worker.onmessage = ({ data }) => (data.type === 'error' ? onError(new Error(data.message)) : onMessage(data));
  worker.onerror = (e) => onError(new Error(`the live-analysis worker failed: ${e.message || 'it could not be loaded'}`));
  const next = (type) =>
    new Promise((resolve, reject) => {
      onMessage = (data) => data.type === type && resolve(data);
      onError = reject;
    });
  try {
    const ready = next('ready');
    worker.postMessage({ type: 'start', analyzer, video: videoOptions });
    await ready;
    await onReady?.(); // e.g. start a clip now, so that no frame passes while the worker loads
    return await new Promise((resolve, reject) => {
      // What to do with each frame is LiveCapture's answer (src/timeline/live.rs): one frame in
      // flight, up to `liveQueue` waiting in order (the oldest dropped when full), every dropped
      // frame counted; a stop analyses what waits, then finishes.
      const capture = new LiveCapture(videoOptions);
      const queue = [];
      let handle = 0;
      const send = (frame, dropped) =>
        frame.bitmap.then(
          (bitmap) => worker.postMessage({ type: 'frame', bitmap, time: frame.time, dropped }, [bitmap]),
          (e) => reject(new Error(`copying a video frame failed: ${e.message}`)),
        );
      const finish = (dropped) => {
        onMessage = (data) => data.type === 'report' && resolve(data.report);
        worker.postMessage({ type: 'finish', stopped: !!signal?.aborted, dropped });
      };
      const stop = () => {
        if (handle) video.cancelVideoFrameCallback(handle);
        handle = 0;
        const answer = capture.stop();
        if (answer.action === 'finish') finish(answer.dropped);
      };
      onError = reject;
      onMessage = (data) => {
        if (data.type !== 'analysed') return;
        onProgress?.(data.analysed);
        const answer = capture.analysed();
        if (answer.action === 'sendNext') send(queue.shift(), answer.dropped);
        else if (answer.action === 'finish') finish(answer.dropped);
      };
      const onFrame = (_now, meta) => {
        handle = 0;
        const answer = capture.presented(meta.presentedFrames);
        if (answer.action === 'ignore') return;
        const frame = { bitmap: createImageBitmap(video), time: meta.mediaTime };
        if (answer.action === 'send') send(frame, answer.dropped);
        else {
          if (answer.dropsOldest) queue.shift().bitmap.then((b) => b.close(), () => {});
          queue.push(frame);
        }
        handle = video.requestVideoFrameCallback(onFrame);
      };
      if (signal?.aborted) return stop();
      signal?.addEventListener('abort', stop, { once: true });
      video.addEventListener('ended', stop, { once: true });
      handle = video.requestVideoFrameCallback(onFrame);
    });
  } finally {
    worker.terminate();
  }
}
