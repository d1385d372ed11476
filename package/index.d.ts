// The typed API of the emolens package: the options and results of every export of emolens.js,
// which wasm-bindgen declares only as `any` (emolens.d.ts). Field names are those of the JSON the
// package returns, which are also those of the CLI's `--json` output (snake_case).
//
// The local VLM is the second module, `emolens/vlm` (vlm.d.ts), fetched only when a page loads it.
//
// Kept by hand next to the Rust binding (src/web/*.rs, src/remote/js.rs):
// scripts/check-types.sh fails when an export or a member is added or removed on one side only
// or a parameter count differs, and type-checks tests/types/every-export.ts, which calls every
// function. Nothing here refers to emolens.d.ts, so no `any` of it leaks into the API.

import type { LocalVlm } from './vlm';

// ------------------------------------------------------------------ initialisation
/** Where the .wasm comes from: by default `new URL('emolens_bg.wasm', import.meta.url)`. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;
export type SyncInitInput = BufferSource | WebAssembly.Module;
/** The instantiated module; only its memory is meant for use outside the package. */
export interface InitOutput {
  readonly memory: WebAssembly.Memory;
}
/** Fetches and instantiates the .wasm; call (and await) it once before anything else. */
export default function init(options?: { module_or_path: InitInput | Promise<InitInput> }): Promise<InitOutput>;
/** Instantiates the .wasm from bytes or a compiled module, synchronously (e.g. in a worker). */
export declare function initSync(options: { module: SyncInitInput }): InitOutput;

// ------------------------------------------------------------------ shared
/** `'auto'` takes WebGPU when the browser has a hardware adapter, else the CPU. */
export type Backend = 'auto' | 'webgpu' | 'cpu';
/** What really runs. */
export type RunningBackend = 'webgpu' | 'cpu';

/** A rectangle in the frame's pixels. */
export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The seven expression probabilities (they sum to 1); `expressionNames()` lists them in order. */
export interface Expressions {
  neutral: number;
  happy: number;
  sad: number;
  angry: number;
  fearful: number;
  disgusted: number;
  surprised: number;
}

/** Pixels `analyzeFrame` reads. */
export type FrameSource = HTMLVideoElement | HTMLImageElement | HTMLCanvasElement | ImageBitmap | ImageData;

// ------------------------------------------------------------------ Analyzer
export interface AnalyzerOptions {
  /** Default `'auto'`. */
  backend?: Backend;
  /** Folder (URL) holding the face models: the package's `models/` copied to your site. Default `'models/'`. */
  modelBaseUrl?: string;
  /** Detector input size in pixels (a multiple of 32). */
  inputSize?: number;
  /** Detector score threshold, 0..1. */
  scoreThreshold?: number;
}

export interface Face {
  box: PixelBox;
  score: number;
  /** The 68 landmarks, `[x, y]` in frame pixels. */
  landmarks: [number, number][];
  /** The box the landmark and expression models were run on. */
  aligned_box: PixelBox;
  expressions: Expressions;
  /** Luminance above the person's right eye, then their left (49 samples each, upwards from the
   *  eye's centre, 0.02 inter-ocular distances apart): what a video's brow lift is measured from.
   *  Absent under 16 px between the eyes. */
  brow_profiles?: number[];
  /** Mean luminance step (0–255) across the lip contours and across the eye contours where the
   *  landmarks put them: a mouth covered by a hand is read from it. Absent under 16 px between
   *  the eyes. */
  contour_contrast?: { lips: number; eyes: number };
}

export interface FrameAnalysis {
  width: number;
  height: number;
  backend: RunningBackend;
  faces: Face[];
}

export type KeyframeSampling = 'balanced' | 'uniform';

/** `analyzeVideo`'s and `LiveSession.start`'s options. */
export interface VideoOptions {
  /** Default: `'live'` for a MediaStream in `srcObject`, else `'file'`. */
  mode?: 'file' | 'live';
  /** Base keyframe rate per second (at most 5). Default 1. */
  keyframeFps?: number;
  maxKeyframes?: number;
  /** Default `'balanced'`: base rate plus event apexes and rare states. */
  keyframeSampling?: KeyframeSampling;
  /** Longer side of keyframe JPEGs (0: the frame's). Default 640. */
  keyframeSize?: number;
  /** JPEG quality, 1..100. Default 85. */
  keyframeQuality?: number;
  /** Include every frame's record (`report.records`). Default false. */
  records?: boolean;
  /** File mode: frames per forward pass. Default 4. */
  batch?: number;
  /** Stop after this many frames. */
  maxFrames?: number;
  /** The clip's frame rate; by default the median interval between frames. */
  fps?: number;
  /** Give up waiting for one frame after this long. Default 15000. */
  frameTimeoutMs?: number;
  /** Live mode: analysed frames kept as JPEGs for the keyframes. Default 1800. */
  liveJpegLimit?: number;
  /** Live mode in a Web Worker: frames that may wait while one is analysed (1..240). Default 8. */
  liveQueue?: number;
  /** Follow faces between frames, detecting only every `redetectEvery` frames. Default true. */
  tracking?: boolean;
  redetectEvery?: number;
}

export interface AnalyzeVideoOptions extends VideoOptions {
  onProgress?: (done: number, total: number | undefined) => void;
  /** Aborting a file analysis rejects; aborting a live session resolves with what it has. */
  signal?: AbortSignal;
}

export interface AnalyzeFramesOptions extends Omit<VideoOptions, 'mode' | 'frameTimeoutMs' | 'liveJpegLimit' | 'liveQueue' | 'maxFrames'> {
  onProgress?: (done: number, total: number | undefined) => void;
}

// ------------------------------------------------------------------ the video report
/** One analysed frame (`records: true`). */
export interface FrameRecord {
  index: number;
  /** Media time, seconds. */
  time: number;
  face_present: boolean;
  face_count: number;
  track_id: number | null;
  box: PixelBox | null;
  landmarks?: [number, number][];
  /** In `expressionNames()` order; null without a face. */
  expressions: number[] | null;
  /** Action features in `featureNames()` order (inter-ocular distances); null without a face. */
  features: number[] | null;
  /** How far the brows' pixels moved up against the person's rest (inter-ocular distance, negative
   *  down); absent where it could not be read (a face under 16 px between the eyes). */
  brow_shift?: number;
  /** The mouth covered (a hand or an object in front of it): the lips' edge gone where the
   *  landmarks put them. The spotter reads no face there. Absent when false. */
  mouth_covered?: boolean;
}

export interface TrackSummary {
  id: number;
  first_time: number;
  last_time: number;
  frames: number;
  mean_area: number;
}

export interface ChannelMove {
  /** A feature name, or `expression:<name>`. */
  name: string;
  peak_activation: number;
  peak_change: number;
  peak_time: number;
}

export type EventKind = 'micro' | 'macro';

/** A spotted facial movement. */
export interface ExpressionEvent {
  onset_time: number;
  apex_time: number;
  offset_time: number;
  onset_frame: number;
  apex_frame: number;
  offset_frame: number;
  duration: number;
  kind: EventKind;
  moves: ChannelMove[];
  /** The top expression at the apex and its probability. */
  apex_expression: [string, number] | null;
  expression_sequence: string[];
  /** Still active when the face or the clip ends. */
  cut_off: boolean;
}

export interface StretchSummary {
  start_time: number;
  end_time: number;
  start_frame: number;
  end_frame: number;
  text: string;
}

/** `base`: the base rate; `state`: the peak of a stretch of a non-neutral expression; `apex`: an event's apex. */
export type KeyframeReason = 'base' | 'state' | 'apex';

export interface ReportKeyframe {
  record: number;
  frame: number;
  time: number;
  reason: KeyframeReason;
  expression: string | null;
  /** Native `--keyframes DIR` only. */
  file?: string;
  /** Browser: the keyframe as a `data:image/jpeg;base64,` URL. */
  jpeg?: string;
}

export interface LiveStats {
  dropped_frames: number;
  keyframes_without_jpeg: number;
  stopped: boolean;
  worker: boolean;
}

export interface TrackingStats {
  detected: number;
  tracked: number;
  periodic: number;
  edge: number;
  moved: number;
  lost: number;
}

/** `analyzeVideo`'s result: the JSON of `emolens video --json`. */
export interface VideoReport {
  /** The video's URL. */
  path: string;
  fps: number;
  width: number;
  height: number;
  frames: number;
  face_frames: number;
  duration: number;
  analysis_fps: number;
  main_track: number | null;
  tracks: TrackSummary[];
  baseline_frames: number;
  baseline_neutral: boolean;
  events: ExpressionEvent[];
  /** Blinks counted. */
  blinks: number;
  /** Talking stretches counted. */
  talking: number;
  summaries: StretchSummary[];
  keyframes: ReportKeyframe[];
  records?: FrameRecord[];
  live?: LiveStats;
  tracking?: TrackingStats;
}

export declare class Analyzer {
  private constructor();
  free(): void;
  [Symbol.dispose](): void;
  static create(options?: AnalyzerOptions): Promise<Analyzer>;
  /** One frame: its faces, boxes, 68 landmarks and expressions. */
  analyzeFrame(source: FrameSource): Promise<FrameAnalysis>;
  /** Every frame of a `<video>` (file) or a `MediaStream` in `srcObject` (live). */
  analyzeVideo(video: HTMLVideoElement, options?: AnalyzeVideoOptions): Promise<VideoReport>;
  /** Frames you decoded (e.g. with WebCodecs), in display order, with their media times. */
  analyzeFrames(frames: ImageData[], times: Float64Array | number[], options?: AnalyzeFramesOptions): Promise<VideoReport>;
  /** One chunk of frames (in a Web Worker), the first being frame `first_index`, a start from `frameChunks`. */
  analyzeChunk(frames: ImageData[], first_index: number, options?: AnalyzeFramesOptions): Promise<FrameChunk>;
  readonly backend: RunningBackend;
  /** The WebGPU adapter, undefined on the CPU. */
  readonly adapterInfo: string | undefined;
  /** Why `'auto'` runs on the CPU, undefined otherwise. */
  readonly fallbackReason: string | undefined;
}

// ------------------------------------------------------------------ dense analysis on several threads
/** What `analyzeChunk` resolves to, for `framesReport`. */
export interface FrameChunk {
  first_index: number;
  faces: { width: number; height: number; faces: Face[] }[];
  tracking: TrackingStats;
}

// ------------------------------------------------------------------ live capture in a worker
export type OnPresented = { action: 'send'; dropped: number } | { action: 'queue'; dropsOldest: boolean } | { action: 'ignore' };
export type OnAnalysed = { action: 'sendNext'; dropped: number } | { action: 'idle' } | { action: 'finish'; dropped: number };
/** `drain`: the queued frames are analysed first. */
export type OnStop = { action: 'finish'; dropped: number } | { action: 'drain' } | { action: 'nothing' };

/** The page's side of a worker session: what to do with each presented frame. */
export declare class LiveCapture {
  free(): void;
  [Symbol.dispose](): void;
  /** With `analyzeVideo`'s options, of which it reads `liveQueue`. */
  constructor(options?: VideoOptions);
  /** `presentedFrames` of `requestVideoFrameCallback`. */
  presented(presented_frames: number): OnPresented;
  analysed(): OnAnalysed;
  stop(): OnStop;
}

/** A live session driven frame by frame (in a Web Worker). */
export declare class LiveSession {
  private constructor();
  free(): void;
  [Symbol.dispose](): void;
  static start(analyzer: Analyzer, options?: VideoOptions): LiveSession;
  /** Resolves to the number of frames analysed so far; the bitmap is closed. */
  push(frame: ImageBitmap, media_time: number, dropped: number): Promise<number>;
  finish(stopped: boolean, dropped: number): Promise<VideoReport>;
}

// ------------------------------------------------------------------ prompts
export type PromptMode = 'enriched' | 'keyframes' | 'summaries';
/** A known set (`'dfew'`, `'ferv39k'`, `'mafw'`, `'faceapi'`), `'a,b,c'`, or the names. */
export type Labels = string | string[];

export interface BuildPromptOptions {
  /** Default `'dfew'`. */
  labels?: Labels;
  /** Default `'enriched'`; `promptModes()` lists them. */
  mode?: PromptMode;
  /** OpenAI image detail (sets the image token cost). Default `'low'`. */
  detail?: 'low' | 'high';
  /** Label-order debiasing: this many requests. Default 1. */
  permutations?: number;
  /** Also build the stage-1 requests (one per segment). */
  stage1?: boolean;
  /** Pick keyframes again (needs `records`; image modes need pixels for each). */
  keyframeFps?: number;
  keyframeSampling?: KeyframeSampling;
}

export type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'low' | 'high' } };

/** An OpenAI-compatible chat message. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface TokenEstimate {
  text_tokens: number;
  image_tokens: number;
  images: number;
  total: number;
}

export interface PromptRequest {
  label_order: string[];
  messages: ChatMessage[];
  tokens: TokenEstimate;
}

/** `buildPrompt`'s result: the JSON of `emolens prompt`. */
export interface Prompt {
  path: string;
  mode: PromptMode;
  labels: string[];
  frames: number;
  duration: number;
  /** Keyframe times, seconds. */
  keyframes: number[];
  requests: PromptRequest[];
  /** What sending every frame as an image would cost. */
  all_frames_image_tokens: number;
  stage1?: { segment: number; messages: ChatMessage[]; tokens: TokenEstimate }[];
}

// ------------------------------------------------------------------ remote VLM
/** What `askRemote` sends: messages, one request, a whole prompt, or messages per label order. */
export type RemoteMessages = ChatMessage[] | PromptRequest | Prompt | ((labelOrder: string[]) => ChatMessage[]);

export interface AskRemoteOptions {
  /** An OpenAI-compatible base URL ending in /v1. */
  endpoint: string;
  model: string;
  /** Default: the prompt's labels, else `'dfew'`. */
  labels?: Labels;
  /** Sent only as `Authorization: Bearer …`. */
  apiKey?: string;
  stream?: boolean;
  onToken?: (text: string, requestIndex: number) => void;
  signal?: AbortSignal;
  logprobs?: number;
  schema?: boolean;
  temperature?: number;
  maxTokens?: number;
  permutations?: number;
  seed?: number;
  maxConcurrent?: number;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  /** Strip every image: no pixel leaves the page. */
  textOnly?: boolean;
}

export interface Usage {
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
}

export type DroppedParameter = 'response_format' | 'logprobs' | 'stream_options';

export interface AskRun {
  order: string[];
  kind: 'parsed' | 'unparsed';
  label: string | null;
  scores: Record<string, number> | null;
  probabilities: Record<string, number> | null;
  rationale: string | null;
  raw: string;
  attempts: number;
  dropped_parameters: DroppedParameter[];
  usage: Usage | null;
  finish_reason: string | null;
  model: string | null;
}

/** `askRemote`'s result: the JSON of `emolens ask --json`. */
export interface AskResult {
  label: string | null;
  scores: Record<string, number> | null;
  probabilities: Record<string, number> | null;
  rationale: string | null;
  usage: Usage | null;
  dropped_parameters: DroppedParameter[];
  /** Runs whose answer could not be read. */
  unparsed: number;
  raw: string | string[];
  orders: string[][];
  runs: AskRun[];
}

/** The clip question of `askClip`, asked of a server (`endpoint`, `model`) or of `vlm`. */
export interface AskClipOptions extends Partial<AskRemoteOptions> {
  /** A loaded local VLM (`emolens/vlm`): the whole flow runs in the page (then `endpoint` and `model` are not used). */
  vlm?: LocalVlm;
  mode?: PromptMode;
  detail?: 'low' | 'high';
  /** First one description per stretch between keyframes, carried into the final question. */
  stage1?: boolean;
  /** Prior correction: one prior per label, in the label set's order. */
  priors?: number[];
  tau?: number;
  /** Contextual calibration: the content-free question's answer is divided out. */
  contentFree?: boolean;
  /** After each answer: answered queries and all the flow sends. */
  onProgress?: (answered: number, total: number) => void;
}

/** `askClip`'s result: `emolens ask VIDEO --json`. */
export interface AskClipResult extends AskResult {
  /** Stage 1's descriptions, when it ran. */
  stage1?: { segment: number; description: string }[];
  /** The corrected decision, with `priors` or `contentFree`. */
  corrected?: {
    method: 'priors' | 'content_free';
    label: string;
    adjusted_scores: Record<string, number>;
    content_free_scores: Record<string, number> | null;
  };
  /** A correction that could not be made, and why. */
  notes?: string[];
}

/** `previewRemote`'s result: exactly what would be POSTed, the key redacted. */
export interface RemotePreview {
  url: string;
  textOnly: boolean;
  images: number;
  requests: { order: string[]; method: 'POST'; url: string; headers: Record<string, string>; body: string }[];
}

// ------------------------------------------------------------------ functions
/** The VLM request for a video report: the same JSON as `emolens prompt`. */
export declare function buildPrompt(report: VideoReport, options?: BuildPromptOptions): Prompt;
/** Asks an OpenAI-compatible server which emotion the clip shows. */
export declare function askRemote(messages: RemoteMessages, options: AskRemoteOptions): Promise<AskResult>;
/** The whole multi-stage ask about an analysed clip, with a server or `options.vlm`. */
export declare function askClip(report: VideoReport, options: AskClipOptions): Promise<AskClipResult>;
/** What `askRemote` would send, sending nothing. */
export declare function previewRemote(messages: RemoteMessages, options: AskRemoteOptions): RemotePreview;
/** Where the chunks of `count` frames start (every `redetectEvery` frames), for `analyzeChunk`. */
export declare function frameChunks(count: number, options?: AnalyzeFramesOptions): Uint32Array;
/** The report of `analyzeFrames` from the chunks of every frame (in any order); `elapsed_ms`: the time they took. */
export declare function framesReport(frames: ImageData[], times: Float64Array | number[], chunks: FrameChunk[], options: AnalyzeFramesOptions | undefined, elapsed_ms: number): VideoReport;
/** The 7 expression names, in the order of a frame record's `expressions`. */
export declare function expressionNames(): string[];
/** The action feature names, in the order of a frame record's `features`. */
export declare function featureNames(): string[];
/** `buildPrompt`'s modes, the default first. */
export declare function promptModes(): PromptMode[];
/** The names of a label set (`'dfew'`, `'mafw'`, `'faceapi'`, `'a,b,c'`), in its order. */
export declare function labelNames(spec: string): string[];
/** Runs once when the module is initialised (wasm-bindgen start); calling it again does nothing new. */
export declare function start(): void;
