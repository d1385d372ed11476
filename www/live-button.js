// The demo's "Live analysis" button: the playing video (webcam, sample clip or file) analysed as
// it plays, every frame it can, in a Web Worker (www/live.js), so the page stays responsive; on
// Stop (or at the end of a clip) the session's report goes to the clip report (timeline plot,
// events, summaries, prompt). The overlay's own frame-by-frame analysis pauses meanwhile: both
// would compete for the same cores.
import { analyzeLive } from './live.js';

export function setupLiveAnalysis({ button, video, hasVideo, state, modelBaseUrl, pauseOverlay, resume, setStatus, show, showError }) {
  let session = null; // the AbortController of the running session
  button.addEventListener('click', async () => {
    if (session) {
      session.abort();
      return;
    }
    if (!state.analyzer) return showError(new Error('the analyzer is not ready yet'), 'Live analysis');
    if (!hasVideo()) return showError(new Error('choose the webcam, the sample clip or a file'), 'Live analysis');
    session = new AbortController();
    button.textContent = 'Stop live analysis';
    pauseOverlay();
    const looping = video.loop;
    try {
      if (!video.srcObject) {
        // A clip plays once from its start, once the worker is ready: a loop would go back in
        // time, and frames shown while the worker loads would be lost.
        video.pause();
        video.loop = false;
        video.currentTime = 0;
      }
      const report = await analyzeLive(video, {
        // The worker's own analyzer: the same backend, models from the page's URL.
        analyzer: { backend: state.backend === 'webgpu' ? 'webgpu' : 'cpu', modelBaseUrl: new URL(modelBaseUrl, location.href).href },
        fallback: state.analyzer,
        signal: session.signal,
        records: true, // the timeline plot draws every frame
        onProgress: (analysed) => setStatus(`live analysis: ${analysed} frames analysed…`),
        onReady: () => video.play(),
      });
      state.liveReport = report;
      state.clipReport = report;
      show(report);
      const { dropped_frames: dropped, worker } = report.live;
      setStatus(`live analysis: ${report.frames} frames analysed, ${dropped} dropped (${worker ? 'in a Web Worker' : 'on the page’s thread'})`);
    } catch (e) {
      showError(e, 'Live analysis failed');
    } finally {
      session = null;
      button.textContent = 'Live analysis';
      video.loop = looping;
      await resume();
    }
  });
}
