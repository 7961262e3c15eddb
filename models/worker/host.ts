/**
 * Main-thread handle on an ONNX Runtime session that lives in a worker thread
 * (models/worker/ort-worker.ts). One worker per model; the session is created once there and
 * released by `close()`. Under tsx/vitest the worker is a .ts file and is started with
 * `--import tsx`; from compiled JS it is the sibling .js file.
 */
import { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import type { FromWorker, OrtWorkerData, ToWorker, WireTensor } from './messages.js';
import { firstMessage, providerLoadError, WorkerClient } from './worker-client.js';
import { resolveIntraOpThreads, type IntraOpThreads, type ResolvedThreads } from '../threads.js';

export type { WireTensor } from './messages.js';

/** Options for {@link OrtWorkerSession.open}. */
export interface OrtWorkerOptions {
  /** Execution providers to try in order (`cpu`, `cuda`, `webgpu`). */
  readonly providers: readonly string[];
  /** ORT intra-op threads (models/threads.ts): a count, 0 for ORT's default, or auto (default: by the file's size). */
  readonly intraOpThreads?: IntraOpThreads;
  /** Stage name used in errors, e.g. `speech-model`. */
  readonly stage?: string;
  /** The worker module beside this file that serves the session. Default 'ort-worker'; the Silero VAD uses 'vad-worker'. */
  readonly worker?: 'ort-worker' | 'vad-worker';
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
export class OrtWorkerSession extends WorkerClient<FromWorker> {
  private constructor(
    worker: Worker,
    /** Provider the session actually runs on. */
    readonly provider: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    /** Providers that were tried first and failed, with the reason. */
    readonly failedProviders: ReadonlyArray<{ readonly provider: string; readonly error: string }>,
    /** The intra-op threads the session was created with (0: ORT's default), and why. */
    readonly threads: ResolvedThreads,
    stage: string,
  ) {
    super(worker, 'inference worker', stage);
  }

  /** Starts the worker and creates the session; rejects with AFFECT_ERR_MODEL_LOAD or AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(modelPath: string, opts: OrtWorkerOptions): Promise<OrtWorkerSession> {
    const threads = resolveIntraOpThreads(opts.intraOpThreads, modelPath);
    const data: OrtWorkerData = { modelPath, providers: [...opts.providers], intraOpThreads: threads.threads };
    const worker = spawnWorker(opts.worker ?? 'ort-worker', data);
    const stage = opts.stage ?? 'model';
    const first = await firstMessage<FromWorker>(
      worker,
      (err) =>
        new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the inference worker for ${modelPath}: ${String(err)}`, {
          cause: err,
          stage,
          hint: 'check that onnxruntime-node is installed (npm ci) and the file is a valid ONNX model',
        }),
    );
    if (first.type === 'load-error') {
      await worker.terminate();
      throw providerLoadError(modelPath, first.failed, stage, 'the file may be corrupt or not ONNX; re-create or re-download it (circumplex models verify)');
    }
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `inference worker for ${modelPath} sent ${first.type} before ready`, { stage });
    }
    return new OrtWorkerSession(worker, first.provider, first.inputNames, first.outputNames, first.failed, threads, stage);
  }

  /**
   * Runs the session on `feeds`. The feeds' buffers are transferred to the worker (they are
   * unusable here afterwards), so pass buffers you own.
   */
  async run(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    const transfer = new Set<ArrayBuffer>();
    for (const t of Object.values(feeds)) transfer.add(t.data.buffer as ArrayBuffer);
    const msg = await this.request((id): ToWorker => ({ type: 'run', id, feeds }), [...transfer]);
    if (msg.type !== 'result') throw this.error(`inference worker answered ${msg.type}`);
    return msg.outputs;
  }
}
