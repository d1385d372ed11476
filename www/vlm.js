// The demo's VLM panel: ask a vision-language model about the current frame.
//
//   none   (default) no VLM; the demo stays fully offline.
//   local  SmolVLM (Idefics3) in burn, in this page: loaded from a URL folder (config.json,
//          tokenizer.json, preprocessor_config.json, model.safetensors), e.g.
//          https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/
//          kept in the Cache API after the first load.
//   remote an OpenAI-compatible server: not wired into the demo yet (see askRemote).
//
// URL parameters: ?vlm=none|local|remote&vlmUrl=URL&vlmBackend=auto|webgpu|cpu
import { LocalVlm } from '../pkg/emolens.js';

const LABEL_SETS = {
  faceapi: ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'],
  dfew: ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'],
};
const SCORE_PROMPT = 'Which emotion does the person in this image show? Answer with one word.';
const DESCRIBE_PROMPT = "Describe the person's facial expression in one sentence.";
const MAX_TOKENS = 40;
// Frames are sent at most this large (longest edge): SmolVLM splits an image into 512 px tiles.
const MAX_FRAME_EDGE = 1024;

/**
 * Wires the panel. `state` is the demo's state object (window.__emolens): its `vlm` field holds
 * { mode, status: 'idle'|'loading'|'ready'|'asking', model, progress, answer, error } for the
 * page and for automated checks. `currentFrame()` returns the element shown now (video or img)
 * or null.
 */
export function setupVlm({ state, currentFrame }) {
  const $ = (id) => document.getElementById(id);
  const ui = {
    mode: $('vlm-mode'),
    local: $('vlm-local'),
    url: $('vlm-url'),
    backend: $('vlm-backend'),
    labels: $('vlm-labels'),
    load: $('vlm-load'),
    cancel: $('vlm-cancel'),
    forget: $('vlm-forget'),
    progress: $('vlm-progress'),
    progressText: $('vlm-progress-text'),
    ask: $('vlm-ask'),
    answer: $('vlm-answer'),
    scores: $('vlm-scores'),
    text: $('vlm-text'),
  };
  const vlm = { mode: 'none', status: 'idle', model: null, progress: null, answer: null, error: null };
  state.vlm = vlm;
  let controller = null;

  const params = new URLSearchParams(location.search);
  if (params.get('vlm') && [...ui.mode.options].some((o) => o.value === params.get('vlm'))) ui.mode.value = params.get('vlm');
  if (params.get('vlmUrl')) ui.url.value = params.get('vlmUrl');
  if (params.get('vlmBackend')) ui.backend.value = params.get('vlmBackend');

  function fail(err, what) {
    vlm.error = `${what}: ${err && err.message ? err.message : String(err)}`;
    ui.answer.textContent = vlm.error;
    ui.answer.classList.add('vlm-error');
    console.error(what, err);
  }
  function say(text) {
    ui.answer.classList.remove('vlm-error');
    ui.answer.textContent = text;
  }

  function render() {
    vlm.mode = ui.mode.value;
    ui.local.hidden = vlm.mode !== 'local';
    const busy = vlm.status === 'loading' || vlm.status === 'asking';
    ui.load.disabled = busy;
    ui.cancel.hidden = vlm.status !== 'loading';
    ui.ask.hidden = vlm.mode === 'none';
    ui.ask.disabled = busy || (vlm.mode === 'local' && !vlm.model);
    if (vlm.mode === 'none') say('No VLM (choose local or remote to ask about the frame).');
    else if (vlm.mode === 'remote') say('remote: not wired yet');
  }

  async function load() {
    const baseUrl = ui.url.value.trim();
    if (!baseUrl) {
      fail(new Error('enter the URL folder of a SmolVLM checkpoint (it must hold config.json, tokenizer.json and model.safetensors)'), 'Cannot load the VLM');
      return;
    }
    if (vlm.model) vlm.model.free();
    Object.assign(vlm, { model: null, status: 'loading', error: null, answer: null, progress: [0, 0] });
    ui.scores.replaceChildren();
    ui.text.textContent = '';
    controller = new AbortController();
    render();
    say('Loading…');
    const t0 = performance.now();
    try {
      const model = await LocalVlm.load({
        baseUrl,
        backend: ui.backend.value,
        signal: controller.signal,
        onProgress: (done, total) => {
          vlm.progress = [done, total];
          ui.progress.value = total > 0 ? done / total : 0;
          ui.progressText.textContent = `${(done / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
        },
      });
      vlm.model = model;
      vlm.status = 'ready';
      const source = model.loadedFromCache ? 'from the browser cache' : 'from the network';
      say(`Loaded ${(model.parameterCount / 1e6).toFixed(1)} M parameters ${source} in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${model.backend}` +
        `${model.cachedOffline ? ' (kept for offline use)' : ''}` +
        `${model.fallbackReason ? ` (no WebGPU: ${model.fallbackReason})` : ''}. Ask about the frame.`);
    } catch (e) {
      vlm.status = 'idle';
      fail(e, 'Cannot load the VLM');
    } finally {
      controller = null;
      render();
    }
  }

  function grabFrame() {
    const el = currentFrame();
    const w = el && (el.videoWidth || el.naturalWidth);
    const h = el && (el.videoHeight || el.naturalHeight);
    if (!w || !h) throw new Error('there is no frame to ask about yet');
    const scale = Math.min(1, MAX_FRAME_EDGE / Math.max(w, h));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    const c = canvas.getContext('2d');
    c.drawImage(el, 0, 0, canvas.width, canvas.height);
    return c.getImageData(0, 0, canvas.width, canvas.height);
  }

  function showScores(labels, probabilities) {
    const rows = labels.map((l, i) => [l, probabilities[i]]).sort((a, b) => b[1] - a[1]);
    ui.scores.replaceChildren(...rows.map(([label, p], i) => {
      const li = document.createElement('li');
      li.textContent = `${label} ${(p * 100).toFixed(1)}%`;
      if (i === 0) li.className = 'top';
      return li;
    }));
  }

  async function askLocal(frame) {
    const labels = LABEL_SETS[ui.labels.value];
    // Closed-set answer: exact probabilities of each label after the question.
    const scores = await vlm.model.scoreLabels(SCORE_PROMPT, [frame], labels);
    const probabilities = Array.from(scores.probabilities);
    const best = probabilities.indexOf(Math.max(...probabilities));
    showScores(labels, probabilities);
    say(`The model's answer: ${labels[best]} (${(probabilities[best] * 100).toFixed(1)}%)`);
    // Free text, streamed as it is generated.
    ui.text.textContent = '';
    const text = await vlm.model.generate(DESCRIBE_PROMPT, [frame], {
      maxTokens: MAX_TOKENS,
      onToken: (piece) => {
        ui.text.textContent += piece;
      },
    });
    ui.text.textContent = text;
    return { label: labels[best], scores: { labels, probabilities }, text };
  }

  async function askRemote() {
    // REMOTE: wire the browser remote client (src/remote/web.rs) here. Until then the demo says
    // so instead of pretending to answer.
    throw new Error('remote: not wired yet');
  }

  async function ask() {
    Object.assign(vlm, { status: 'asking', error: null, answer: null });
    render();
    say('Thinking…');
    try {
      const frame = grabFrame();
      vlm.answer = vlm.mode === 'local' ? await askLocal(frame) : await askRemote(frame);
    } catch (e) {
      fail(e, 'The VLM could not answer');
    } finally {
      vlm.status = vlm.model ? 'ready' : 'idle';
      render();
    }
  }

  ui.mode.addEventListener('change', () => {
    vlm.error = null;
    render();
    if (vlm.mode === 'local' && vlm.model) say('Ready. Ask about the frame.');
    if (vlm.mode === 'local' && !vlm.model) say('Enter the checkpoint URL and load it.');
  });
  ui.load.addEventListener('click', load);
  ui.cancel.addEventListener('click', () => controller && controller.abort());
  ui.forget.addEventListener('click', async () => {
    try {
      const had = await LocalVlm.clearCache();
      say(had ? 'Removed the cached checkpoints.' : 'No cached checkpoints.');
    } catch (e) {
      fail(e, 'Could not clear the cache');
    }
  });
  ui.ask.addEventListener('click', ask);
  render();
  if (vlm.mode === 'local' && ui.url.value) load();
}
