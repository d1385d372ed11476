// Calls every export of the emolens package with its types (type-checked by
// scripts/check-types.sh with `tsc --noEmit`, never run): options and results are typed, so a
// misspelt option or field fails here, as it would in a user's TypeScript project.
import init, {
  Analyzer,
  LiveCapture,
  LiveSession,
  askClip,
  askRemote,
  buildPrompt,
  expressionNames,
  frameChunks,
  framesReport,
  featureNames,
  previewRemote,
  promptModes,
  labelNames,
  start,
  initSync,
  type AskResult,
  type ExpressionEvent,
  type FrameAnalysis,
  type Prompt,
  type VideoReport,
} from 'emolens';
// The local VLM's module: imported lazily, as a page does (its wasm is fetched only then).
import type { LocalVlm } from 'emolens/vlm';

export async function faces(video: HTMLVideoElement, image: HTMLImageElement): Promise<string> {
  await init();
  const analyzer = await Analyzer.create({ backend: 'auto', modelBaseUrl: '/models/', scoreThreshold: 0.5 });
  const backend: 'webgpu' | 'cpu' = analyzer.backend;
  const why: string | undefined = analyzer.fallbackReason ?? analyzer.adapterInfo;
  const frame: FrameAnalysis = await analyzer.analyzeFrame(image);
  const names = expressionNames();
  const top = frame.faces.map((f) => names.reduce((a, b) => (f.expressions[b as keyof typeof f.expressions] > f.expressions[a as keyof typeof f.expressions] ? b : a)));
  const [x, y] = frame.faces[0].landmarks[30];
  const box = frame.faces[0].box.width * frame.faces[0].aligned_box.height;

  const controller = new AbortController();
  const report: VideoReport = await analyzer.analyzeVideo(video, {
    keyframeFps: 2,
    keyframeSampling: 'uniform',
    records: true,
    tracking: false,
    signal: controller.signal,
    onProgress: (done, total) => console.log(done, total ?? '?'),
  });
  const micro: ExpressionEvent[] = report.events.filter((e) => e.kind === 'micro');
  const apex = micro.map((e) => (e.apex_expression ? `${e.apex_expression[0]} ${e.apex_expression[1].toFixed(2)}` : e.moves[0].name));
  const features = featureNames();
  const mouth = (report.records ?? []).map((r) => (r.features ? r.features[features.indexOf('mouth_open')] : null));
  const jpegs = report.keyframes.map((k) => k.jpeg ?? k.file ?? `${k.reason} at ${k.time}`);
  const decoded = [new ImageData(4, 4)];
  const again: VideoReport = await analyzer.analyzeFrames(decoded, new Float64Array([0]), { batch: 2, fps: 30 });
  analyzer.free();
  return [backend, why, top, x + y + box, apex, mouth, jpegs, again.summaries.map((s) => s.text), report.live?.dropped_frames].join(' ');
}

export async function chunks(analyzer: Analyzer, frames: ImageData[], times: number[]): Promise<VideoReport> {
  const options = { redetectEvery: 15, keyframeFps: 1 };
  const starts = frameChunks(frames.length, options);
  const parts = await Promise.all(
    Array.from(starts, (a, i) => analyzer.analyzeChunk(frames.slice(a, starts[i + 1] ?? frames.length), a, options)),
  );
  const detected = parts.reduce((n, c) => n + c.tracking.detected + c.faces.length, 0);
  const report = framesReport(frames, times, parts, options, performance.now());
  return detected > 0 ? report : framesReport(frames, times, parts, undefined, 0);
}

export async function live(analyzer: Analyzer, bitmap: ImageBitmap): Promise<VideoReport> {
  const capture = new LiveCapture({ liveQueue: 4 });
  const answer = capture.presented(12);
  const dropped = answer.action === 'send' ? answer.dropped : answer.action === 'queue' && answer.dropsOldest ? 1 : 0;
  const after = capture.analysed();
  const stop = capture.stop();
  if (after.action === 'sendNext' || stop.action === 'drain') capture.free();
  const session = LiveSession.start(analyzer, { keyframeFps: 1, liveJpegLimit: 100 });
  const analysed: number = await session.push(bitmap, 0.033, dropped);
  return session.finish(analysed > 0, 0);
}

export async function prompts(report: VideoReport): Promise<AskResult> {
  const dfew: string[] = labelNames('dfew');
  console.log(dfew.length);
  const perMode = promptModes().map((mode) => {
    const prompt: Prompt = buildPrompt(report, { mode, labels: 'dfew', detail: 'low', permutations: 2, stage1: true });
    return `${mode}: ${prompt.requests[0].tokens.total} tokens of ${prompt.all_frames_image_tokens}`;
  });
  const prompt = buildPrompt(report, { labels: ['happy', 'sad'], keyframeFps: 1, keyframeSampling: 'balanced' });
  const first = prompt.requests[0].messages[1].content;
  const text = typeof first === 'string' ? first : first.map((p) => (p.type === 'text' ? p.text : p.image_url.url)).join('');
  const options = { endpoint: 'http://localhost:11434/v1', model: 'llava:7b', apiKey: 'k', textOnly: true, maxConcurrent: 2 };
  const preview = previewRemote(prompt, options);
  console.log(perMode, text, preview.requests[0].headers['Authorization'], preview.images);
  const result = await askRemote(prompt, { ...options, stream: true, onToken: (piece, index) => console.log(piece, index) });
  const byLabels = await askRemote((order) => [{ role: 'user', content: order.join(', ') }], options);
  console.log(result.label ?? 'none', result.scores?.happy, result.runs[0].usage?.total_tokens, byLabels.unparsed);
  const clip = await askClip(report, { endpoint: 'http://localhost:8000/v1', model: 'm', mode: 'enriched', stage1: true, permutations: 2, contentFree: true, onProgress: (done, total) => console.log(done, total) });
  const priors = await askClip(report, { endpoint: 'http://localhost:8000/v1', model: 'm', priors: [1, 1, 1, 1, 1, 1, 1], tau: 0.5 });
  console.log(clip.stage1?.[0].description, clip.corrected?.label, priors.notes?.length);
  return result;
}

export async function localVlm(image: ImageData, jpeg: Uint8Array): Promise<string> {
  const { default: initVlm, LocalVlm, vlmCheck, vlmBenchmark } = await import('emolens/vlm');
  const instance = await initVlm({ module_or_path: '/assets/emolens_vlm_bg.wasm' });
  console.log(instance.memory.buffer.byteLength);
  const vlm = await LocalVlm.load({ baseUrl: '/smolvlm/', backend: 'webgpu', onProgress: (done, total) => console.log(done / total), maxMemoryBytes: 2e9 });
  const facts = `${vlm.backend} ${vlm.memoryBytes} ${vlm.parameterCount} ${vlm.loadedFromCache} ${vlm.cachedOffline} ${vlm.fallbackReason}`;
  const text: string = await vlm.generate('Which emotion?', [image], { maxTokens: 16, onToken: (piece) => piece !== '.' });
  const chat = await vlm.generate([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Which emotion?' }] }], [jpeg]);
  const scores = await vlm.scoreLabels('Which emotion?', [image], ['happy', 'sad']);
  const check = await vlmCheck('/smolvlm/', { backend: 'cpu' });
  const bench = await vlmBenchmark('/smolvlm/', { backend: 'cpu', tokens: 4, repeat: 1 });
  const cleared: boolean = await LocalVlm.clearCache();
  return [facts, text, chat, scores.probabilities[0], check.passed, bench.decodeTokensPerSecond, cleared].join(' ');
}

export async function explicitUrl(): Promise<WebAssembly.Memory> {
  const output = await init({ module_or_path: new URL('/assets/emolens_bg.wasm', location.href) });
  return output.memory;
}

export function synchronous(bytes: ArrayBuffer): void {
  initSync({ module: bytes });
  start();
}

export async function synchronousVlm(bytes: ArrayBuffer): Promise<void> {
  const vlmModule = await import('emolens/vlm');
  vlmModule.initSync({ module: bytes });
  vlmModule.start();
}

export async function localAsk(vlm: LocalVlm, report: VideoReport): Promise<string> {
  const direct = await vlm.askClip(report, { stage1: true, contentFree: true, maxTokens: 32 });
  const viaOptions = await askClip(report, { vlm, permutations: 2, mode: 'summaries' });
  return [direct.label, direct.stage1?.length, viaOptions.corrected?.label].join(' ');
}
