/**
 * Orderly shutdown of a model worker, shared by the ONNX and transformers.js hosts: ask the worker
 * to release its session (`{ type: 'close' }`), wait for its `closed` reply or its exit, and
 * terminate it regardless after `graceMs`, because a wedged native call must not hang shutdown.
 */
import type { Worker } from 'node:worker_threads';

/** Default time a worker gets to release its session before it is terminated. */
export const DEFAULT_CLOSE_GRACE_MS = 5000;

/** Closes `worker` as described above; resolves once it is gone. */
export async function closeWorker(worker: Worker, graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
  worker.ref();
  const done = new Promise<void>((resolve) => {
    worker.once('exit', () => resolve());
    worker.on('message', (m: { type?: unknown }) => {
      if (m.type === 'closed') resolve();
    });
  });
  worker.postMessage({ type: 'close' });
  await Promise.race([done, new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
  await worker.terminate();
}
