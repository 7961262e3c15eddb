/**
 * Messages between the main thread and an ONNX Runtime worker (models/worker/ort-worker.ts).
 * Tensor data travels as transferable typed arrays, so a window is moved, not copied.
 */

/** A tensor crossing the thread boundary. */
export interface WireTensor {
  readonly type: 'float32' | 'int64';
  readonly data: Float32Array | BigInt64Array;
  readonly dims: readonly number[];
}

/** What the worker is started with (`workerData`). */
export interface OrtWorkerData {
  /** Absolute path of the .onnx file. */
  readonly modelPath: string;
  /** Execution providers to try, in order; the first that creates a session wins. */
  readonly providers: readonly string[];
  /** ORT intra-op threads (0: ORT's default). */
  readonly intraOpThreads: number;
}

/** Main → worker. */
export type ToWorker = { readonly type: 'run'; readonly id: number; readonly feeds: Record<string, WireTensor> } | { readonly type: 'close' };

/** What every ONNX worker answers: the start-up handshake, a plain run's result or error. */
export type SessionReply =
  | {
      readonly type: 'ready';
      readonly provider: string;
      readonly inputNames: readonly string[];
      readonly outputNames: readonly string[];
      /** Providers tried before the one that worked, with why they failed. */
      readonly failed: ReadonlyArray<{ readonly provider: string; readonly error: string }>;
    }
  | { readonly type: 'load-error'; readonly failed: ReadonlyArray<{ readonly provider: string; readonly error: string }> }
  | { readonly type: 'result'; readonly id: number; readonly outputs: Record<string, WireTensor> }
  | { readonly type: 'run-error'; readonly id: number; readonly message: string };

/** Worker → main. */
export type FromWorker = SessionReply | { readonly type: 'closed' };
