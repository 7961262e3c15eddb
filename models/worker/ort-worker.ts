/**
 * The worker_threads side of an ONNX model: creates the ORT session once (onnxruntime-node's
 * create()/run() are synchronous native code that would otherwise stall the event loop that
 * serves every stream), runs batches on request, and releases the session on `close`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, OrtWorkerData, ToWorker } from './messages.js';
import { openOrReport, runAndReply } from './open-session.js';
import { serveRunsUntilClose } from './serve-runs.js';

const data = workerData as OrtWorkerData;
const port = parentPort;
if (!port) throw new Error('ort-worker must run in a worker thread');

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

async function main(): Promise<void> {
  const s = await openOrReport(data, post, port!);
  if (!s) return;
  serveRunsUntilClose<ToWorker>(port!, {
    release: () => s.release(),
    refuse: (msg) => {
      if (msg.type === 'run') post({ type: 'run-error', id: msg.id, message: 'model is closing' });
    },
    run: async (msg) => {
      if (msg.type === 'run') await runAndReply(s, msg.id, msg.feeds, post);
    },
  });
}

void main();
