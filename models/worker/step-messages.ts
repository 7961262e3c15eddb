/**
 * Messages between the main thread and the cached-step worker (models/worker/step-worker.ts), which
 * keeps every stream's key/value cache of the `cached` streaming mode (models/streaming-speech.ts)
 * resident in the worker: a step carries only each stream's new audio and its cache identity.
 */
import type { SessionReply, WireTensor } from './messages.js';

/** Shape constants of the step graph, sent once as part of `workerData`. */
export interface StepWorkerData {
  /** Absolute path of `step.onnx`. */
  readonly modelPath: string;
  readonly providers: readonly string[];
  /** ORT intra-op threads (0: ORT's default). */
  readonly intraOpThreads: number;
  /** Frame stride and receptive field, samples. */
  readonly stride: number;
  readonly receptiveField: number;
  /** Transformer layers, hidden width, positional-conv context frames. */
  readonly layers: number;
  readonly hiddenDim: number;
  readonly posContext: number;
  /** Streams whose caches the worker keeps at most; the least recently used beyond it is evicted (its next window starts afresh). */
  readonly maxStreams: number;
  /** The cached head (models/cached-head.ts), run on the pooled state of rows that attended to cached frames; absent: the model's head everywhere. */
  readonly cachedHeadPath?: string;
  /**
   * Span means: the window split into this many equal spans, each span's mean last hidden state over
   * the frames the pooled state averages (0: none). The cached head's second input when it has one.
   */
  readonly spans: number;
  /** Send the span means back with each step (the tolerance bench's pairs for fitting a cached head). */
  readonly returnSpans: boolean;
}

/**
 * One stream's row of a step. Positions are absolute sample positions of frame starts (multiples of
 * the stride). The worker drops cached frames outside [`first`, `from`), checks that what remains is
 * exactly `mem` (what the main thread believes is cached), runs the new frames, and appends them.
 */
export interface StepRow {
  /** The stream's number (unique per model). */
  readonly stream: number;
  /** The stream's cache generation: a restart on the main thread starts a new one. */
  readonly gen: number;
  /** First frame position inside the window. */
  readonly first: number;
  /** First position computed in this step (cached frames at or after it are recomputed). */
  readonly from: number;
  /** The window's start sample (hidden states / projections of frames before it are evicted). */
  readonly start: number;
  /** The window's end sample (exclusive): with `start`, the spans of the span means. */
  readonly end: number;
  /** Positions of the new frames (from `from`, one stride apart). */
  readonly newFirst: number;
  readonly newCount: number;
  /** Where the positional-conv context ends (the first new frame, or the window's end when nothing is new). */
  readonly ctxEnd: number;
  /** Cached positions the main thread expects after the drop, oldest first. */
  readonly mem: readonly number[];
  /** Frames to allocate room for (a window plus a hop), so the steady state never reallocates. */
  readonly capHint: number;
  /** False for one-off windows: nothing is kept after the step. */
  readonly keep: boolean;
}

/** Main → worker. */
export type ToStepWorker =
  | {
      readonly type: 'step';
      readonly id: number;
      /** New frames per row (padded), samples per row. */
      readonly T: number;
      readonly S: number;
      readonly rows: readonly StepRow[];
      /** [rows, S] audio of each row's new frames (zero-padded). */
      readonly signal: Float32Array;
    }
  | { readonly type: 'run'; readonly id: number; readonly feeds: Record<string, WireTensor> }
  | { readonly type: 'free'; readonly streams: readonly number[] }
  | { readonly type: 'stats'; readonly id: number }
  | { readonly type: 'close' };

/** Per-row cache size after a step. */
export interface StepRowCache {
  /** Frames cached (keys/values + hidden states + projections). */
  readonly frames: number;
  readonly bytes: number;
}

/** Worker → main. */
export type FromStepWorker =
  | SessionReply
  | {
      readonly type: 'step-result';
      readonly id: number;
      /** [rows, 3] and [rows, D]. */
      readonly logits: Float32Array;
      readonly hidden: Float32Array;
      /** [rows, spans, D] span means, when `returnSpans`. */
      readonly spans?: Float32Array;
      /** Cached frames per row that the step attended to (padded width). */
      readonly M: number;
      readonly caches: readonly StepRowCache[];
      /** ms inside the ORT call, and packing/unpacking caches around it. */
      readonly sessionMs: number;
      readonly packMs: number;
    }
  /** Some rows' caches are not what the main thread expects (evicted, or a new worker): nothing ran. */
  | { readonly type: 'step-lost'; readonly id: number; readonly streams: readonly number[] }
  /** What the worker holds: streams with a cache and their bytes. */
  | { readonly type: 'stats'; readonly id: number; readonly streams: number; readonly bytes: number }
  | { readonly type: 'closed' };
