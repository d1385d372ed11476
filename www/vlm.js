// The demo's VLM panel: ask a vision-language model about the current frame, or, after
// "Analyse whole clip", run the whole ask flow on the clip (askClip: optional stage 1, the final
// question, optional content-free correction) with either VLM.
//
//   none   (default) no VLM; the demo stays fully offline.
//   local  SmolVLM (Idefics3) in burn, in this page: loaded from a URL folder (config.json,
//          tokenizer.json, preprocessor_config.json, model.safetensors), e.g.
//          https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/
//          kept in the Cache API after the first load.
//   remote an OpenAI-compatible server (vLLM, llama.cpp, Ollama, hosted APIs), called from this
//          page with fetch. After "Analyse whole clip" it gets the clip's enriched prompt (keyframes
//          plus measured summaries and events; text only with "send no pixels"), otherwise this
//          frame and its measured expression probabilities. Nothing is sent before "Ask"; "Show
//          what will be sent" shows the exact request (API key redacted). The key is never stored.
//
// URL parameters: ?vlm=none|local|remote&vlmUrl=URL&vlmBackend=auto|webgpu|cpu
//                 &vlmEndpoint=URL&vlmModel=NAME&vlmTextOnly=1
import { askClip, askRemote, previewRemote, buildPrompt, labelNames } from 'emolens';

/**
 * The local VLM's own wasm module (emolens/vlm), fetched and started on first use only: a page
 * that never loads a VLM never downloads it (webpack puts it in a chunk of its own).
 */
let vlmModule = null;
async function localVlmClass() {
  if (!vlmModule) {
    vlmModule = import('emolens/vlm').then(async (m) => {
      await m.default();
      return m;
    });
    vlmModule.catch(() => { vlmModule = null; });
  }
  return (await vlmModule).LocalVlm;
}

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
    remote: $('vlm-remote'),
    endpoint: $('vlm-endpoint'),
    model: $('vlm-model'),
    key: $('vlm-key'),
    textOnly: $('vlm-text-only'),
    preview: $('vlm-preview'),
    previewText: $('vlm-preview-text'),
    stop: $('vlm-stop'),
    clip: $('vlm-clip'),
    stage1: $('vlm-stage1'),
    contentFree: $('vlm-content-free'),
  };
  const vlm = { mode: 'none', status: 'idle', model: null, progress: null, answer: null, error: null };
  state.vlm = vlm;
  let controller = null;

  const params = new URLSearchParams(location.search);
  if (params.get('vlm') && [...ui.mode.options].some((o) => o.value === params.get('vlm'))) ui.mode.value = params.get('vlm');
  if (params.get('vlmUrl')) ui.url.value = params.get('vlmUrl');
  if (params.get('vlmBackend')) ui.backend.value = params.get('vlmBackend');
  if (params.get('vlmEndpoint')) ui.endpoint.value = params.get('vlmEndpoint');
  if (params.get('vlmModel')) ui.model.value = params.get('vlmModel');
  if (params.get('vlmTextOnly') === '1') ui.textOnly.checked = true;

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
    ui.remote.hidden = vlm.mode !== 'remote';
    const busy = vlm.status === 'loading' || vlm.status === 'asking';
    const wholeClip = Boolean(state.clipReport);
    ui.stop.hidden = !(vlm.status === 'asking' && (vlm.mode === 'remote' || wholeClip));
    ui.clip.hidden = !wholeClip || vlm.mode === 'none';
    ui.ask.textContent = wholeClip ? 'Ask about the whole clip' : 'Ask about this frame';
    ui.load.disabled = busy;
    ui.cancel.hidden = vlm.status !== 'loading';
    ui.ask.hidden = vlm.mode === 'none';
    ui.ask.disabled = busy || (vlm.mode === 'local' && !vlm.model);
    if (vlm.mode === 'none') say('No VLM (choose local or remote to ask about the frame).');
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
      const LocalVlm = await localVlmClass();
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

  // The frame shown now, at most MAX_FRAME_EDGE on its longer side, drawn into a canvas.
  function frameCanvas() {
    const el = currentFrame();
    const w = el && (el.videoWidth || el.naturalWidth);
    const h = el && (el.videoHeight || el.naturalHeight);
    if (!w || !h) throw new Error('there is no frame to ask about yet');
    const scale = Math.min(1, MAX_FRAME_EDGE / Math.max(w, h));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext('2d').drawImage(el, 0, 0, canvas.width, canvas.height);
    return canvas;
  }

  function grabFrame() {
    const canvas = frameCanvas();
    return canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
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
    const labels = labelNames(ui.labels.value);
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

  // What the remote VLM gets: the clip's enriched prompt when the whole clip was analysed,
  // else this frame with its measured expression probabilities. Built fresh for every request,
  // so the preview is exactly what "Ask" sends.
  function serverOptions() {
    const options = {
      endpoint: ui.endpoint.value.trim(),
      model: ui.model.value.trim(),
      apiKey: ui.key.value || undefined,
      labels: ui.labels.value,
      textOnly: ui.textOnly.checked,
      stream: true,
    };
    if (!options.endpoint) throw new Error('enter the server\'s endpoint, e.g. http://localhost:11434/v1');
    if (!options.model) throw new Error('enter the model name the server knows, e.g. llava:7b');
    return options;
  }

  function remoteRequest() {
    const options = serverOptions();
    const { labels, textOnly } = options;
    if (state.clipReport) {
      const prompt = buildPrompt(state.clipReport, { labels, mode: textOnly ? 'summaries' : 'enriched' });
      return { messages: prompt, options, what: 'the whole clip' };
    }
    const names = labelNames(labels);
    const faces = state.lastResult?.faces ?? [];
    const measured = faces.length
      ? `Measured on this frame by a facial-expression model: ${Object.entries(faces[0].expressions)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
        .join(', ')}.`
      : 'No face was found on this frame by the facial-expression model.';
    const content = [{ type: 'text', text: `Which emotion does the person show? ${measured} Choose one of: ${names.join(', ')}.` }];
    if (!textOnly) content.push({ type: 'image_url', image_url: { url: frameCanvas().toDataURL('image/jpeg', 0.85), detail: 'low' } });
    const messages = [
      { role: 'system', content: `You recognise human emotions. Answer with one label from: ${names.join(', ')}, a score per label and a short rationale, as JSON.` },
      { role: 'user', content },
    ];
    return { messages, options, what: 'this frame' };
  }

  // The request as it will be POSTed; data URLs shortened for reading (the bytes are sent whole).
  function showPreview() {
    try {
      const { messages, options } = remoteRequest();
      const preview = previewRemote(messages, options);
      const text = JSON.stringify(preview, null, 2).replace(/data:image\/[a-z]+;base64,([A-Za-z0-9+/=]{64,})/g,
        (m, b64) => `${m.slice(0, m.indexOf(',') + 17)}… (${Math.round((b64.length * 3) / 4)} bytes)`);
      ui.previewText.textContent = `${preview.images} image(s) would be sent${preview.textOnly ? ' (text only: no pixels)' : ''}.\n${text}`;
      ui.previewText.hidden = false;
      vlm.preview = preview;
    } catch (e) {
      fail(e, 'Cannot build the request');
    }
  }

  async function askRemoteVlm() {
    const { messages, options, what } = remoteRequest();
    controller = new AbortController();
    render();
    say(`Asking ${options.model} about ${what}…`);
    ui.text.textContent = '';
    try {
      const result = await askRemote(messages, {
        ...options,
        signal: controller.signal,
        onToken: (piece) => {
          ui.text.textContent += piece;
        },
      });
      const names = Object.keys(result.scores ?? {});
      if (names.length) showScores(names, names.map((n) => result.scores[n]));
      if (result.unparsed) {
        say(`The answer names no label (shown below as it came).`);
        ui.text.textContent = result.raw;
      } else {
        say(`The model's answer: ${result.label}${result.dropped_parameters?.length ? ` (the server refused ${result.dropped_parameters.join(', ')}; asked again without)` : ''}`);
        ui.text.textContent = result.rationale ?? '';
      }
      return { label: result.label, scores: result.scores, text: result.rationale ?? result.raw, unparsed: result.unparsed };
    } finally {
      controller = null;
    }
  }

  // The whole ask flow on the analysed clip, with the server or the model in this page.
  async function askAboutClip() {
    const remote = vlm.mode === 'remote';
    const options = remote ? serverOptions() : { labels: ui.labels.value, vlm: vlm.model };
    const textOnly = remote && options.textOnly;
    controller = new AbortController();
    Object.assign(options, {
      mode: textOnly ? 'summaries' : 'enriched',
      stage1: ui.stage1.checked && !textOnly,
      contentFree: ui.contentFree.checked,
      signal: controller.signal,
      onProgress: (done, total) => say(`Asking about the whole clip… ${done} of ${total} answers`),
    });
    if (remote) options.onToken = (piece) => { ui.text.textContent += piece; };
    render();
    say('Asking about the whole clip…');
    ui.text.textContent = '';
    try {
      const result = await askClip(state.clipReport, options);
      const values = result.probabilities ?? result.scores ?? {};
      const names = Object.keys(values);
      if (names.length) showScores(names, names.map((n) => values[n]));
      const corrected = result.corrected ? `; corrected for the label bias (${result.corrected.method.replace('_', '-')}): ${result.corrected.label}` : '';
      say(result.label ? `The model's answer: ${result.label}${corrected}` : 'The answer names no label (shown below as it came).');
      const described = (result.stage1 ?? []).map((s) => `Stretch ${s.segment + 1}: ${s.description}`);
      ui.text.textContent = [...described, result.rationale ?? (result.label ? '' : [result.raw].flat().join('\n'))].filter(Boolean).join('\n');
      return { label: result.label, corrected: result.corrected?.label ?? null, scores: values, stage1: result.stage1 ?? [], text: ui.text.textContent };
    } finally {
      controller = null;
    }
  }

  async function ask() {
    Object.assign(vlm, { status: 'asking', error: null, answer: null });
    render();
    say('Thinking…');
    try {
      if (state.clipReport) vlm.answer = await askAboutClip();
      else vlm.answer = vlm.mode === 'local' ? await askLocal(grabFrame()) : await askRemoteVlm();
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
    if (vlm.mode === 'remote') say('Enter the server and model; nothing is sent before you ask.');
  });
  ui.load.addEventListener('click', load);
  ui.cancel.addEventListener('click', () => controller && controller.abort());
  ui.forget.addEventListener('click', async () => {
    try {
      const had = await (await localVlmClass()).clearCache();
      say(had ? 'Removed the cached checkpoints.' : 'No cached checkpoints.');
    } catch (e) {
      fail(e, 'Could not clear the cache');
    }
  });
  ui.ask.addEventListener('click', ask);
  ui.preview.addEventListener('click', showPreview);
  ui.stop.addEventListener('click', () => controller && controller.abort());
  render();
  if (vlm.mode === 'local' && ui.url.value) load();
  return { render };
}
