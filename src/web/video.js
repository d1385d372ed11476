// Frame access for Analyzer.analyzeVideo (src/web/video.rs): only what needs
// requestVideoFrameCallback and media events. Bookkeeping, analysis and decisions stay in Rust.

function decodeError(video) {
  const e = video.error;
  const detail = e ? e.message || `MediaError code ${e.code}` : 'unknown media error';
  return new Error(`the browser cannot decode this video: ${detail}`);
}

/** Resolves once the video has its first frame; rejects with a clear Error otherwise. */
export async function loadVideo(video, timeoutMs) {
  if (video.error) throw decodeError(video);
  if (video.readyState < 2) {
    await new Promise((resolve, reject) => {
      const done = (settle) => {
        clearTimeout(timer);
        video.removeEventListener('loadeddata', ok);
        video.removeEventListener('error', bad);
        settle();
      };
      const ok = () => done(resolve);
      const bad = () => done(() => reject(decodeError(video)));
      const timer = setTimeout(
        () => done(() => reject(new Error(`the video gave no frame within ${timeoutMs / 1000} s: the browser may not decode it, or it does not load`))),
        timeoutMs,
      );
      video.addEventListener('loadeddata', ok);
      video.addEventListener('error', bad);
      if (video.preload === 'none') video.preload = 'auto';
    });
  }
  if (!video.videoWidth || !video.videoHeight) throw new Error('the video has no picture: no video track the browser can decode');
}

/** How long a seek may take, after 'seeked', to present its frame before it is retried. */
const SEEK_GRACE_MS = 500;

/**
 * Resolves with { mediaTime, presentedFrames } of the next frame the video presents, after
 * drawing that frame into `ctx` inside the frame callback (so the pixels are that frame's), or
 * with null when the video ends or `signal` aborts.
 * - seekTo (a number): seek there (paused) and take the frame shown;
 * - step: file mode: play to the next frame and pause on it;
 * - neither: live mode: the next frame of the running video.
 */
export function nextFrame(video, ctx, step, seekTo, timeoutMs, signal) {
  return new Promise((resolve, reject) => {
    let handle = 0;
    let settled = false;
    let endTimer = 0;
    let graceTimer = 0;
    // A seek onto the frame already shown presents no new frame, and Chromium then calls no
    // frame callback (now and then, for the first frame at 0 s): when none comes soon after
    // 'seeked', seek half a second away and back. 0: no detour, 1: away, 2: back.
    let detour = 0;
    const settle = (finish) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(endTimer);
      clearTimeout(graceTimer);
      if (handle) video.cancelVideoFrameCallback(handle);
      video.removeEventListener('ended', onEnded);
      video.removeEventListener('error', onError);
      video.removeEventListener('seeked', onSeeked);
      signal?.removeEventListener('abort', onAbort);
      finish();
    };
    const onSeeked = () => {
      if (detour === 1) {
        detour = 2;
        video.currentTime = seekTo;
        return;
      }
      if (detour) return;
      clearTimeout(graceTimer);
      graceTimer = setTimeout(() => {
        if (settled) return;
        detour = 1;
        const duration = Number.isFinite(video.duration) ? video.duration : 0;
        video.currentTime = seekTo + 0.5 < duration ? seekTo + 0.5 : Math.max(0, seekTo - 0.5);
      }, SEEK_GRACE_MS);
    };
    const onFrame = (_now, meta) => {
      handle = 0;
      // The detour's own frame, or one shown before the seek back landed: not the one asked for.
      if (detour === 1 || (detour === 2 && Math.abs(meta.mediaTime - seekTo) > 0.25)) {
        handle = video.requestVideoFrameCallback(onFrame);
        return;
      }
      if (step) video.pause();
      ctx.drawImage(video, 0, 0, ctx.canvas.width, ctx.canvas.height);
      settle(() => resolve({ mediaTime: meta.mediaTime, presentedFrames: meta.presentedFrames }));
    };
    const onError = () => settle(() => reject(decodeError(video)));
    // The last frame's callback can come just after 'ended': give it a moment.
    const onEnded = () => {
      endTimer = setTimeout(() => settle(() => resolve(null)), 250);
    };
    const onAbort = () => settle(() => resolve(null));
    const timer = setTimeout(
      () => settle(() => reject(new Error(`no video frame arrived within ${timeoutMs / 1000} s: the browser may not decode this video`))),
      timeoutMs,
    );
    if (video.error) return onError();
    if (signal?.aborted) return onAbort();
    if (step && seekTo == null && video.ended) return settle(() => resolve(null));
    handle = video.requestVideoFrameCallback(onFrame);
    video.addEventListener('ended', onEnded);
    video.addEventListener('error', onError);
    signal?.addEventListener('abort', onAbort);
    if (seekTo != null) {
      video.addEventListener('seeked', onSeeked);
      video.currentTime = seekTo;
    } else if (step && video.paused) {
      video.play().catch((e) => settle(() => reject(new Error(`the video will not play: ${e.message}`))));
    }
  });
}

/**
 * A JPEG of what `ctx` shows now, its longer side at most `size` (0: as is; never enlarged),
 * encoded by the browser (libjpeg-turbo, asynchronously) so that live analysis does not wait for
 * it. Resolves to a Blob; the canvas may be drawn on again at once.
 */
export function canvasJpeg(ctx, size, quality) {
  const { width, height } = ctx.canvas;
  const long = Math.max(width, height);
  const scale = size > 0 && long > size ? size / long : 1;
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  let canvas = ctx.canvas;
  if (scale !== 1) {
    canvas = new OffscreenCanvas(w, h);
    const small = canvas.getContext('2d');
    small.imageSmoothingQuality = 'high';
    small.drawImage(ctx.canvas, 0, 0, w, h);
  }
  return canvas.convertToBlob({ type: 'image/jpeg', quality: quality / 100 });
}

/** A Blob as a data: URL. */
export function blobDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`reading a keyframe JPEG failed: ${reader.error?.message}`));
    reader.readAsDataURL(blob);
  });
}
