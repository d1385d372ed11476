// Live analysis of a webcam <video> in a Web Worker, so that the page's main thread stays free:
// it only copies each frame into an ImageBitmap and transfers it. As in analyzeVideo's live mode
// (src/web_live.rs decides everything) nothing queues: while a frame is analysed only the newest
// one waits, and the frames it replaces are dropped and counted. Where workers or OffscreenCanvas are missing, it runs analyzeVideo on
// the main thread instead (`report.live.worker` says which ran).
//
//   const report = await analyzeLive(video, { analyzer: { backend: 'auto', modelBaseUrl: 'models/' },
//     fallback: analyzerOnThisThread, signal, onProgress: (analysed) => {}, ...analyzeVideoOptions });

export async function analyzeLive(video, { analyzer, fallback, signal, onProgress, ...videoOptions } = {}) {
  const workers = typeof Worker !== 'undefined' && typeof OffscreenCanvas !== 'undefined' && typeof createImageBitmap !== 'undefined';
  if (!workers) {
    if (!fallback) throw new Error('this browser has no Web Workers with OffscreenCanvas, and no analyzer for the main thread was given (option fallback)');
    return fallback.analyzeVideo(video, { ...videoOptions, mode: 'live', signal, onProgress });
  }
  const worker = new Worker(new URL('./live-worker.js', import.meta.url), { type: 'module' });
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
    return await new Promise((resolve, reject) => {
      // One frame in flight and at most one waiting: the newest, which replaces (and drops) an
      // older one, so the worker never idles between frames and never works through a backlog.
      let inFlight = false;
      let waiting = null;
      let stopping = false;
      let dropped = 0;
      let lastPresented = null;
      let handle = 0;
      const send = (frame) => {
        inFlight = true;
        const sent = dropped;
        dropped = 0;
        frame.bitmap.then(
          (bitmap) => worker.postMessage({ type: 'frame', bitmap, time: frame.time, dropped: sent }, [bitmap]),
          (e) => reject(new Error(`copying a video frame failed: ${e.message}`)),
        );
      };
      const discard = (frame) => {
        dropped += 1;
        frame.bitmap.then((b) => b.close(), () => {});
      };
      const finish = () => {
        stopping = true;
        if (handle) video.cancelVideoFrameCallback(handle);
        if (waiting) discard(waiting);
        waiting = null;
        if (inFlight) return; // finished when the frame in flight is done
        onMessage = (data) => {
          if (data.type === 'report') resolve(data.report);
        };
        worker.postMessage({ type: 'finish', stopped: !!signal?.aborted, dropped });
      };
      onError = reject;
      onMessage = (data) => {
        if (data.type !== 'analysed') return;
        inFlight = false;
        onProgress?.(data.analysed);
        if (stopping) finish();
        else if (waiting) {
          const frame = waiting;
          waiting = null;
          send(frame);
        }
      };
      const onFrame = (_now, meta) => {
        handle = 0;
        if (stopping) return;
        if (lastPresented !== null) dropped += Math.max(0, meta.presentedFrames - lastPresented - 1);
        lastPresented = meta.presentedFrames;
        const frame = { bitmap: createImageBitmap(video), time: meta.mediaTime };
        if (!inFlight) send(frame);
        else {
          if (waiting) discard(waiting);
          waiting = frame;
        }
        handle = video.requestVideoFrameCallback(onFrame);
      };
      if (signal?.aborted) return finish();
      signal?.addEventListener('abort', finish, { once: true });
      video.addEventListener('ended', finish, { once: true });
      handle = video.requestVideoFrameCallback(onFrame);
    });
  } finally {
    worker.terminate();
  }
}
