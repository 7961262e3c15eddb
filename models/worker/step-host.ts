/**
 * Main-thread handle on the cached-step worker (models/worker/step-worker.ts): the `cached`
 * streaming mode's `step.onnx` session with every stream's key/value cache resident in the worker.
 * A step sends each stream's new audio and cache identity; the reply carries the windows' logits
 * and pooled states, or `lost` with the streams whose caches the worker does not hold as expected.
 */
import type { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { spawnWorker } from './host.js';
import { firstMessage, providerLoadError, WorkerClient } from './worker-client.js';
import type { WireTensor } from './messages.js';
import type { FromStepWorker, StepRow, StepRowCache, StepWorkerData, ToStepWorker } from './step-messages.js';

export type { StepRow, StepRowCache } from './step-messages.js';

/** What {@link StepWorkerSession.step} resolves to. */
export type StepOutcome =
  | {
      readonly lost: false;
      readonly logits: Float32Array;
      readonly hidden: Float32Array;
      /** [rows, spans, D] span means, when the worker was asked to return them. */
      readonly spans: Float32Array | undefined;
      readonly M: number;
      readonly caches: readonly StepRowCache[];
      readonly sessionMs: number;
      readonly packMs: number;
    }
  | { readonly lost: true; readonly streams: readonly number[] };

/** The step session in its worker. Create with {@link StepWorkerSession.open}. */
export class StepWorkerSession extends WorkerClient<FromStepWorker> {
  private constructor(
    worker: Worker,
    readonly provider: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    stage: string,
  ) {
    super(worker, 'step worker', stage);
  }

  /** Starts the worker and creates the session; rejects with AFFECT_ERR_MODEL_LOAD or AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(data: StepWorkerData, stage: string): Promise<StepWorkerSession> {
    const worker = spawnWorker('step-worker', data);
    const first = await firstMessage<FromStepWorker>(
      worker,
      (err) =>
        new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the step worker for ${data.modelPath}: ${String(err)}`, {
          cause: err,
          stage,
          hint: 'check that onnxruntime-node is installed (npm ci) and the file is a valid ONNX model',
        }),
    );
    if (first.type === 'load-error') {
      await worker.terminate();
      throw providerLoadError(data.modelPath, first.failed, stage, 're-export the split graphs (/usr/bin/python3 -m training.encoders.export_standins)');
    }
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `step worker for ${data.modelPath} sent ${first.type} before ready`, { stage });
    }
    return new StepWorkerSession(worker, first.provider, first.inputNames, first.outputNames, stage);
  }

  /** One step over `rows` (their new audio in `signal`, [rows, S], transferred). */
  async step(rows: readonly StepRow[], T: number, S: number, signal: Float32Array): Promise<StepOutcome> {
    const msg = await this.request((id): ToStepWorker => ({ type: 'step', id, rows, T, S, signal }), [signal.buffer as ArrayBuffer]);
    if (msg.type === 'step-lost') return { lost: true, streams: msg.streams };
    if (msg.type !== 'step-result') throw this.error(`step worker answered ${msg.type}`);
    return {
      lost: false,
      logits: msg.logits,
      hidden: msg.hidden,
      spans: msg.spans,
      M: msg.M,
      caches: msg.caches,
      sessionMs: msg.sessionMs,
      packMs: msg.packMs,
    };
  }

  /** A plain session run (the bench's bare reference); buffers are transferred. */
  async run(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    const msg = await this.request(
      (id): ToStepWorker => ({ type: 'run', id, feeds }),
      Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer),
    );
    if (msg.type !== 'result') throw this.error(`step worker answered ${msg.type}`);
    return msg.outputs;
  }

  /** What the worker holds: streams with a cache, and their bytes. */
  async cacheStats(): Promise<{ streams: number; bytes: number }> {
    const msg = await this.request((id): ToStepWorker => ({ type: 'stats', id }));
    if (msg.type !== 'stats') throw this.error(`step worker answered ${msg.type}`);
    return { streams: msg.streams, bytes: msg.bytes };
  }

  /** Frees streams' caches in the worker (fire and forget; a no-op once closed). */
  free(streams: readonly number[]): void {
    if (this.dead || this.closed || streams.length === 0) return;
    const msg: ToStepWorker = { type: 'free', streams };
    this.worker.postMessage(msg);
  }
}
