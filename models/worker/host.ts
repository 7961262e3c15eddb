/**
 * Main-thread handle on an ONNX Runtime session that lives in a worker thread
 * (models/worker/ort-worker.ts). One worker per model; the session is created once there and
 * released by `close()`. Under tsx/vitest the worker is a .ts file and is started with
 * `--import tsx`; from compiled JS it is the sibling .js file.
 */
import { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import type { FromWorker, OrtWorkerData, ToWorker, WireTensor } from './messages.js';
import { closeWorker } from './close-worker.js';

export type { WireTensor } from './messages.js';

/** Options for {@link OrtWorkerSession.open}. */
export interface OrtWorkerOptions {
  /** Execution providers to try in order (`cpu`, `cuda`, `webgpu`). */
  readonly providers: readonly string[];
  /** ORT intra-op threads per session; 0 leaves ORT's default. Default 0. */
  readonly intraOpThreads?: number;
  /** Stage name used in errors, e.g. `speech-model`. */
  readonly stage?: string;
  /** The worker module beside this file that serves the session. Default 'ort-worker'; the Silero VAD uses 'vad-worker'. */
  readonly worker?: 'ort-worker' | 'vad-worker';
}

interface Pending {
  resolve(out: Record<string, WireTensor>): void;
  reject(err: Error): void;
}

/** True when this module runs as TypeScript source (tsx, vitest), so the worker is .ts too. */
const RUNNING_TS = import.meta.url.endsWith('.ts');

/**
 * Starts `./<name>.ts` under tsx/vitest or `./<name>.js` when compiled. Node 20 does not apply
 * `--import tsx` to workers reliably, so a .ts worker registers tsx's ESM hooks itself first.
 */
export function spawnWorker(name: string, workerData: unknown): Worker {
  const url = new URL(RUNNING_TS ? `./${name}.ts` : `./${name}.js`, import.meta.url);
  return RUNNING_TS
    ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, {
        eval: true,
        workerData,
      })
    : new Worker(url, { workerData });
}

/** An ORT session in a worker thread. Create with {@link OrtWorkerSession.open}. */
export class OrtWorkerSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed: Promise<void> | undefined;
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** Provider the session actually runs on. */
    readonly provider: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    /** Providers that were tried first and failed, with the reason. */
    readonly failedProviders: ReadonlyArray<{ readonly provider: string; readonly error: string }>,
    private readonly stage: string,
  ) {
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`inference worker exited with code ${code}`)));
    // Idle workers must not keep the process alive; a pending run re-refs it.
    worker.unref();
  }

  /** Starts the worker and creates the session; rejects with AFFECT_ERR_MODEL_LOAD or AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(modelPath: string, opts: OrtWorkerOptions): Promise<OrtWorkerSession> {
    const data: OrtWorkerData = { modelPath, providers: [...opts.providers], intraOpThreads: opts.intraOpThreads ?? 0 };
    const worker = spawnWorker(opts.worker ?? 'ort-worker', data);
    const stage = opts.stage ?? 'model';
    const first = await new Promise<FromWorker>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      worker.once('error', onError);
      worker.once('message', (msg: FromWorker) => {
        worker.off('error', onError);
        resolve(msg);
      });
    }).catch((err: unknown) => {
      void worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the inference worker for ${modelPath}: ${String(err)}`, {
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
        `could not create an ONNX Runtime session for ${modelPath} (${reasons})`,
        {
          stage,
          hint: onlyDevice
            ? 'use --device auto or --device cpu, or install the provider (docs/models.md "Devices")'
            : `the file may be corrupt or not ONNX; re-create or re-download it (circumplex models verify)`,
        },
      );
    }
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `inference worker for ${modelPath} sent ${first.type} before ready`, { stage });
    }
    return new OrtWorkerSession(worker, first.provider, first.inputNames, first.outputNames, first.failed, stage);
  }

  /**
   * Runs the session on `feeds`. The feeds' buffers are transferred to the worker (they are
   * unusable here afterwards), so pass buffers you own.
   */
  run(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    if (this.dead) return Promise.reject(this.inferenceError(this.dead.message, this.dead));
    if (this.closed) return Promise.reject(this.inferenceError('model is closed'));
    const id = this.nextId++;
    const transfer = new Set<ArrayBuffer>();
    for (const t of Object.values(feeds)) transfer.add(t.data.buffer as ArrayBuffer);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      const msg: ToWorker = { type: 'run', id, feeds };
      this.worker.postMessage(msg, [...transfer]);
    });
  }

  /** Releases the session and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.dead) return;
      await closeWorker(this.worker);
    })();
    return this.closed;
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type !== 'result' && msg.type !== 'run-error') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    // Not while closing: closeWorker() holds a ref until the worker is gone, or the process could
    // exit mid-close (the grace timer is unref'd).
    if (this.pending.size === 0 && !this.closed) this.worker.unref();
    if (msg.type === 'result') p.resolve(msg.outputs);
    else p.reject(this.inferenceError(msg.message));
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
