/** Main-thread handle on a transformers.js text model running in a worker thread. */
import type { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { spawnWorker } from './host.js';
import type { FromTextWorker, TextWorkerData, ToTextWorker } from './text-messages.js';
import { firstMessage, WorkerClient, type WorkerErrorText } from './worker-client.js';

const TEXT_ERROR_TEXT: WorkerErrorText = {
  failed: 'text inference failed',
  died: 'the text worker died; restart circumplex',
  dropped: 'this text window is dropped; the stream goes on',
};

/** A text model in a worker. Create with {@link TextWorkerSession.open}. */
export class TextWorkerSession extends WorkerClient<FromTextWorker> {
  private constructor(
    worker: Worker,
    readonly ready: Extract<FromTextWorker, { type: 'ready' }>,
    stage: string,
  ) {
    super(worker, 'text worker', stage, TEXT_ERROR_TEXT);
  }

  /** Starts the worker and loads tokenizer + model; rejects with AFFECT_ERR_MODEL_LOAD / AFFECT_ERR_DEVICE_UNAVAILABLE. */
  static async open(data: TextWorkerData, stage: string): Promise<TextWorkerSession> {
    const worker = spawnWorker('text-worker', data);
    const first = await firstMessage<FromTextWorker>(
      worker,
      (err) => new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start the text worker for ${data.modelId}: ${String(err)}`, { cause: err, stage }),
    );
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
  async run(texts: readonly string[]): Promise<{ data: Float32Array; width: number }> {
    const msg = await this.request((id): ToTextWorker => ({ type: 'run', id, texts }));
    if (msg.type !== 'result') throw this.error(`text worker answered ${msg.type}`);
    return { data: msg.data, width: msg.width };
  }
}
