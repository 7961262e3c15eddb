/**
 * What the main-thread handles on model workers (ORT session, cached-step session, text model)
 * share: the start-up handshake, and request/reply bookkeeping — numbered requests, replies
 * matched by id, the worker ref'd only while a request is pending, every pending request rejected
 * once when the worker dies, orderly close.
 */
import type { Transferable, Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { closeWorker } from './close-worker.js';

/** Wording of a handle's errors (they differ between the speech and the text workers). */
export interface WorkerErrorText {
  /** Message prefix, e.g. `inference failed`. */
  readonly failed: string;
  /** Hint once the worker is dead. */
  readonly died: string;
  /** Hint for one failed request while the worker lives. */
  readonly dropped: string;
}

/** The speech/ORT workers' wording. */
export const INFERENCE_ERROR_TEXT: WorkerErrorText = {
  failed: 'inference failed',
  died: 'the inference worker died; restart circumplex',
  dropped: 'this window is dropped; the stream goes on',
};

interface Pending<Reply> {
  resolve(msg: Reply): void;
  reject(err: Error): void;
}

/**
 * The worker's first message (its `ready` or `load-error`). A worker that fails before sending one
 * is terminated and `startError(err)` is thrown.
 */
export async function firstMessage<M>(worker: Worker, startError: (err: unknown) => AffectError): Promise<M> {
  try {
    return await new Promise<M>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      worker.once('error', onError);
      worker.once('message', (msg: M) => {
        worker.off('error', onError);
        resolve(msg);
      });
    });
  } catch (err) {
    void worker.terminate();
    throw startError(err);
  }
}

/**
 * The load failure of an ONNX session created provider by provider: a device error when only
 * accelerators failed (the CPU was not asked for), else a model error with `modelHint`.
 */
export function providerLoadError(
  modelPath: string,
  failed: ReadonlyArray<{ readonly provider: string; readonly error: string }>,
  stage: string,
  modelHint: string,
): AffectError {
  const reasons = failed.map((f) => `${f.provider}: ${f.error}`).join('; ');
  const onlyDevice = failed.length > 0 && failed.every((f) => f.provider !== 'cpu');
  return new AffectError(
    onlyDevice ? 'AFFECT_ERR_DEVICE_UNAVAILABLE' : 'AFFECT_ERR_MODEL_LOAD',
    `could not create an ONNX Runtime session for ${modelPath} (${reasons})`,
    {
      stage,
      hint: onlyDevice ? 'use --device auto or --device cpu, or install the provider (docs/models.md "Devices")' : modelHint,
    },
  );
}

/**
 * Request/reply over a worker. Replies are the worker's messages that carry a numeric `id`; a
 * `run-error` reply rejects its request, any other resolves it. Messages without an id (`ready`,
 * `closed`) answer no request and are ignored here.
 */
export abstract class WorkerClient<Reply extends { readonly type: string }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<Reply>>();
  protected closed: Promise<void> | undefined;
  protected dead: Error | undefined;

  protected constructor(
    protected readonly worker: Worker,
    /** The worker's name in exit messages, e.g. `inference worker`. */
    workerName: string,
    private readonly stage: string,
    private readonly text: WorkerErrorText = INFERENCE_ERROR_TEXT,
  ) {
    worker.on('message', (msg: Reply) => this.#onReply(msg));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => this.#fail(new Error(`${workerName} exited with code ${code}`)));
    // Idle workers must not keep the process alive; a pending request re-refs it.
    worker.unref();
  }

  /** Sends `make(id)` (transferring `transfer`) and resolves with the reply to it. */
  protected request(make: (id: number) => unknown, transfer: readonly Transferable[] = []): Promise<Reply> {
    if (this.dead) return Promise.reject(this.error(this.dead.message, this.dead));
    if (this.closed) return Promise.reject(this.error('model is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(make(id), [...transfer]);
    });
  }

  /** Releases the worker's model and stops it. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.dead) return;
      await closeWorker(this.worker);
    })();
    return this.closed;
  }

  /** The error for a failed request, or for every request once the worker is dead. */
  protected error(message: string, cause?: unknown): AffectError {
    return new AffectError('AFFECT_ERR_INFERENCE', `${this.text.failed}: ${message}`, {
      recoverable: !this.dead,
      stage: this.stage,
      ...(cause === undefined ? {} : { cause }),
      hint: this.dead ? this.text.died : this.text.dropped,
    });
  }

  #onReply(msg: Reply): void {
    const id = (msg as { id?: unknown }).id;
    if (typeof id !== 'number') return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    // Not while closing: closeWorker() holds a ref until the worker is gone, or the process could
    // exit mid-close (the grace timer is unref'd).
    if (this.pending.size === 0 && !this.closed) this.worker.unref();
    if (msg.type === 'run-error') p.reject(this.error((msg as unknown as { message: string }).message));
    else p.resolve(msg);
  }

  #fail(err: Error): void {
    if (this.closed && this.pending.size === 0) return;
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(this.error(err.message, err));
    this.pending.clear();
  }
}
