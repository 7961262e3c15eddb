/** Main-thread handle on a transformers.js text model running in a worker thread. */
import type { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { spawnWorker } from './host.js';
import type { FromTextWorker, TextWorkerData, ToTextWorker } from './text-messages.js';
import { closeWorker } from './close-worker.js';

interface Pending {
  resolve(out: { data: Float32Array; width: number }): void;
  reject(err: Error): void;
}

/** A text model in a worker. Create with {@link TextWorkerSession.open}. */
export class TextWorkerSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed: Promise<void> | undefined;
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly ready: Extract<FromTextWorker, { type: 'ready' }>,
    private readonly stage: string,
  ) {
    worker.on('message', (msg: FromTextWorker) => {
      if (msg.type !== 'result' && msg.type !== 'run-error') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      // Not while closing: closeWorker() holds a ref until the worker is gone, or the process could
      // exit mid-close (the grace timer is unref'd).
      if (this.pending.size === 0 && !this.closed) this.worker.unref();
      if (msg.type === 'result') p.resolve({ data: msg.data, width: msg.width });
      else p.reject(this.error(msg.message));
    });
    const fail = (err: Error): void => {
      if (this.closed && this.pending.size === 0) return;
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(this.error(err.message));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`text worker exited with code ${code}`)));
    worker.unref();
  }

  /** Starts the worker and loads tokenizer + model; rejects with AFFECT_ERR_MODEL_LOAD / AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(data: TextWorkerData, stage: string): Promise<TextWorkerSession> {
    const worker = spawnWorker('text-worker', data);
    const first = await new Promise<FromTextWorker>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (m: FromTextWorker) => resolve(m));
    }).catch((err: unknown) => {
      void worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the text worker for ${data.modelId}: ${String(err)}`, { cause: err, stage });
    });
    if (first.type === 'load-error') {
      await worker.terminate();
      const onlyDevice = first.failed.length > 0 && first.failed.every((f) => f.device !== 'cpu');
      throw new AffectError(
        onlyDevice ? 'AFFECT_ERR_DEVICE_UNAVAILABLE' : 'AFFECT_ERR_MODEL_LOAD',
        `could not load text model ${data.modelId} from ${data.localModelPath}: ${first.message}`,
        { stage, hint: onlyDevice ? 'use --device auto or --device cpu' : 'check the model folder (circumplex models verify)' },
      );
    }
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `text worker for ${data.modelId} sent ${first.type} before ready`, { stage });
    }
    return new TextWorkerSession(worker, first, stage);
  }

  /** Runs a batch of texts: rows of logits or embeddings. */
  run(texts: readonly string[]): Promise<{ data: Float32Array; width: number }> {
    if (this.dead) return Promise.reject(this.error(this.dead.message));
    if (this.closed) return Promise.reject(this.error('model is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      const msg: ToTextWorker = { type: 'run', id, texts };
      this.worker.postMessage(msg);
    });
  }

  /** Disposes the model and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.dead) return;
      await closeWorker(this.worker);
    })();
    return this.closed;
  }

  private error(message: string): AffectError {
    return new AffectError('AFFECT_ERR_INFERENCE', `text inference failed: ${message}`, {
      recoverable: !this.dead,
      stage: this.stage,
      hint: this.dead ? 'the text worker died; restart circumplex' : 'this text window is dropped; the stream goes on',
    });
  }
}
