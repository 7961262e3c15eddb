/**
 * Main-thread handle on the cached-step worker (models/worker/step-worker.ts): the `cached`
 * streaming mode's `step.onnx` session with every stream's key/value cache resident in the worker.
 * A step sends each stream's new audio and cache identity; the reply carries the windows' logits
 * and pooled states, or `lost` with the streams whose caches the worker does not hold as expected.
 */
import type { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { closeWorker } from './close-worker.js';
import { spawnWorker } from './host.js';
import type { WireTensor } from './messages.js';
import type { FromStepWorker, StepRow, StepRowCache, StepWorkerData, ToStepWorker } from './step-messages.js';

export type { StepRow, StepRowCache } from './step-messages.js';

/** What {@link StepWorkerSession.step} resolves to. */
export type StepOutcome =
  | {
      readonly lost: false;
      readonly logits: Float32Array;
      readonly hidden: Float32Array;
      readonly M: number;
      readonly caches: readonly StepRowCache[];
      readonly sessionMs: number;
      readonly packMs: number;
    }
  | { readonly lost: true; readonly streams: readonly number[] };

interface Pending {
  resolve(msg: FromStepWorker): void;
  reject(err: Error): void;
}

/** The step session in its worker. Create with {@link StepWorkerSession.open}. */
export class StepWorkerSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed: Promise<void> | undefined;
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly provider: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    private readonly stage: string,
  ) {
    worker.on('message', (msg: FromStepWorker) => this.onMessage(msg));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`step worker exited with code ${code}`)));
    worker.unref();
  }

  /** Starts the worker and creates the session; rejects with AFFECT_ERR_MODEL_LOAD or AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(data: StepWorkerData, stage: string): Promise<StepWorkerSession> {
    const worker = spawnWorker('step-worker', data);
    const first = await new Promise<FromStepWorker>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      worker.once('error', onError);
      worker.once('message', (msg: FromStepWorker) => {
        worker.off('error', onError);
        resolve(msg);
      });
    }).catch((err: unknown) => {
      void worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the step worker for ${data.modelPath}: ${String(err)}`, {
        cause: err,
        stage,
        hint: 'check that onnxruntime-node is installed (npm ci) and the file is a valid ONNX model',
      });
    });
    if (first.type === 'load-error') {
      await worker.terminate();
      const reasons = first.failed.map((f) => `${f.provider}: ${f.error}`).join('; ');
      const onlyDevice = first.failed.length > 0 && first.failed.every((f) => f.provider !== 'cpu');
      throw new AffectError(
        onlyDevice ? 'AFFECT_ERR_DEVICE_UNAVAILABLE' : 'AFFECT_ERR_MODEL_LOAD',
        `could not create an ONNX Runtime session for ${data.modelPath} (${reasons})`,
        {
          stage,
          hint: onlyDevice
            ? 'use --device auto or --device cpu, or install the provider (docs/models.md "Devices")'
            : 're-export the split graphs (/usr/bin/python3 -m training.encoders.export_standins)',
        },
      );
    }
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `step worker for ${data.modelPath} sent ${first.type} before ready`, { stage });
    }
    return new StepWorkerSession(worker, first.provider, first.inputNames, first.outputNames, stage);
  }

  /** One step over `rows` (their new audio in `signal`, [rows, S], transferred). */
  async step(rows: readonly StepRow[], T: number, S: number, signal: Float32Array): Promise<StepOutcome> {
    const msg = await this.request((id) => ({ type: 'step', id, rows, T, S, signal }), [signal.buffer as ArrayBuffer]);
    if (msg.type === 'step-lost') return { lost: true, streams: msg.streams };
    if (msg.type !== 'step-result') throw this.inferenceError(`step worker answered ${msg.type}`);
    return { lost: false, logits: msg.logits, hidden: msg.hidden, M: msg.M, caches: msg.caches, sessionMs: msg.sessionMs, packMs: msg.packMs };
  }

  /** A plain session run (the bench's bare reference); buffers are transferred. */
  async run(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    const msg = await this.request(
      (id) => ({ type: 'run', id, feeds }),
      Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer),
    );
    if (msg.type !== 'result') throw this.inferenceError(`step worker answered ${msg.type}`);
    return msg.outputs;
  }

  /** What the worker holds: streams with a cache, and their bytes. */
  async cacheStats(): Promise<{ streams: number; bytes: number }> {
    const msg = await this.request((id) => ({ type: 'stats', id }), []);
    if (msg.type !== 'stats') throw this.inferenceError(`step worker answered ${msg.type}`);
    return { streams: msg.streams, bytes: msg.bytes };
  }

  /** Frees streams' caches in the worker (fire and forget; a no-op once closed). */
  free(streams: readonly number[]): void {
    if (this.dead || this.closed || streams.length === 0) return;
    const msg: ToStepWorker = { type: 'free', streams };
    this.worker.postMessage(msg);
  }

  /** Releases the session (and every cache) and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.dead) return;
      await closeWorker(this.worker);
    })();
    return this.closed;
  }

  private request(make: (id: number) => ToStepWorker, transfer: ArrayBuffer[]): Promise<FromStepWorker> {
    if (this.dead) return Promise.reject(this.inferenceError(this.dead.message, this.dead));
    if (this.closed) return Promise.reject(this.inferenceError('model is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(make(id), transfer);
    });
  }

  private onMessage(msg: FromStepWorker): void {
    if (msg.type === 'ready' || msg.type === 'load-error' || msg.type === 'closed') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (this.pending.size === 0 && !this.closed) this.worker.unref();
    if (msg.type === 'run-error') p.reject(this.inferenceError(msg.message));
    else p.resolve(msg);
  }

  private fail(err: Error): void {
    if (this.closed && this.pending.size === 0) return;
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(this.inferenceError(err.message, err));
    this.pending.clear();
  }

  private inferenceError(message: string, cause?: unknown): AffectError {
    return new AffectError('AFFECT_ERR_INFERENCE', `inference failed: ${message}`, {
      recoverable: !this.dead,
      stage: this.stage,
      ...(cause === undefined ? {} : { cause }),
      hint: this.dead ? 'the inference worker died; restart circumplex' : 'this window is dropped; the stream goes on',
    });
  }
}
