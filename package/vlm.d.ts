// The typed API of `emolens/vlm`: the local VLM (SmolVLM in burn), a second wasm module that a
// page fetches only when it loads a VLM. Kept by hand next to the Rust binding (src/vlm/web.rs,
// LocalVlm.askClip in src/web/ask.rs) and checked as index.d.ts is (scripts/check-types.sh).
//
//   const vlmModule = await import('emolens/vlm');
//   await vlmModule.default();                 // fetches emolens_vlm_bg.wasm
//   const vlm = await vlmModule.LocalVlm.load({ baseUrl: 'models/smolvlm/' });
//   const answer = await askClip(report, { vlm, stage1: true });   // askClip from 'emolens'

import type {
  AskClipOptions,
  AskClipResult,
  Backend,
  InitInput,
  InitOutput,
  RunningBackend,
  SyncInitInput,
  VideoReport,
} from './index';

/** Fetches and instantiates emolens_vlm_bg.wasm (by default beside this file); await it once before `LocalVlm.load`. */
export default function init(options?: { module_or_path: InitInput | Promise<InitInput> }): Promise<InitOutput>;
/** Instantiates the VLM's .wasm from bytes or a compiled module, synchronously. */
export declare function initSync(options: { module: SyncInitInput }): InitOutput;

// ------------------------------------------------------------------ local VLM
export interface LocalVlmOptions {
  /** Folder holding config.json, tokenizer.json, model.safetensors (and preprocessor_config.json). */
  baseUrl: string;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  signal?: AbortSignal;
  backend?: Backend;
  maxMemoryBytes?: number;
}

/** Images for the local VLM: decoded pixels or encoded JPEG/PNG bytes. */
export type VlmImage = ImageData | Uint8Array;
/** User text (the images go before it) or chat messages whose `{ type: 'image' }` parts take the images in order. */
export type VlmPrompt = string | { role: 'system' | 'user' | 'assistant'; content: string | ({ type: 'text'; text: string } | { type: 'image' })[] }[];

export interface GenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Returning `false` stops the generation. */
  onToken?: (textPiece: string, tokenId: number) => boolean | void;
}

export interface LabelScores {
  labels: string[];
  probabilities: number[];
}

export declare class LocalVlm {
  private constructor();
  free(): void;
  [Symbol.dispose](): void;
  static load(options: LocalVlmOptions): Promise<LocalVlm>;
  /** Deletes every stored checkpoint; resolves to whether there was any. */
  static clearCache(): Promise<boolean>;
  generate(prompt: VlmPrompt, images?: VlmImage[], options?: GenerateOptions): Promise<string>;
  scoreLabels(prompt: VlmPrompt, images: VlmImage[] | undefined, labels: string[]): Promise<LabelScores>;
  /** `askClip` with this model (options without the server's). */
  askClip(report: VideoReport, options?: AskClipOptions): Promise<AskClipResult>;
  readonly backend: RunningBackend;
  readonly fallbackReason: string | undefined;
  readonly cachedOffline: boolean;
  readonly loadedFromCache: boolean;
  readonly memoryBytes: number;
  readonly parameterCount: number;
}

export interface VlmCheckOptions {
  backend?: Backend;
}

export interface VlmCheckResult {
  backend: RunningBackend;
  maxImageFeatureDiff: number;
  maxLogitDiff: number;
  tolerance: number;
  tokens: number[];
  expectedTokens: number[];
  greedyMatches: boolean;
  passed: boolean;
}

export interface VlmBenchmarkOptions {
  backend?: Backend;
  tokens?: number;
  repeat?: number;
}

export interface VlmBenchmarkResult {
  backend: RunningBackend;
  promptTokens: number;
  images: number;
  newTokens: number;
  firstRunTtftMs: number;
  ttftMs: number;
  decodeTokensPerSecond: number;
}

// ------------------------------------------------------------------ functions
/** The browser's `emolens vlm-check DIR`. */
export declare function vlmCheck(base_url: string, options?: VlmCheckOptions): Promise<VlmCheckResult>;
/** Time to first token and decode speed on a checkpoint folder's reference inputs. */
export declare function vlmBenchmark(base_url: string, options?: VlmBenchmarkOptions): Promise<VlmBenchmarkResult>;
/** Runs once when the module is initialised (wasm-bindgen start); calling it again does nothing new. */
export declare function start(): void;
