/**
 * The worker_threads side of an ONNX model: creates the ORT session once (onnxruntime-node's
 * create()/run() are synchronous native code that would otherwise stall the event loop that
 * serves every stream), runs batches on request, and releases the session on `close`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { FromWorker, OrtWorkerData, ToWorker, WireTensor } from './messages.js';
import { createOnFirstProvider } from './open-session.js';
import { serveRunsUntilClose } from './serve-runs.js';

const data = workerData as OrtWorkerData;
const port = parentPort;
if (!port) throw new Error('ort-worker must run in a worker thread');

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

async function main(): Promise<void> {
  const { session, provider, failed } = await createOnFirstProvider(data.modelPath, data.providers, data.intraOpThreads);
  if (!session) {
    post({ type: 'load-error', failed });
    port!.close();
    return;
  }
  const s = session;
  post({ type: 'ready', provider, inputNames: [...s.inputNames], outputNames: [...s.outputNames], failed });

  serveRunsUntilClose<ToWorker>(port!, {
    release: () => s.release(),
    refuse: (msg) => {
      if (msg.type === 'run') post({ type: 'run-error', id: msg.id, message: 'model is closing' });
    },
    run: async (msg) => {
      if (msg.type !== 'run') return;
      try {
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, [...t.dims]);
        const res = await s.run(feeds);
        const outputs: Record<string, WireTensor> = {};
        const transfer = new Set<ArrayBuffer>();
        for (const [name, t] of Object.entries(res)) {
          if (t.type !== 'float32' && t.type !== 'int64') throw new Error(`output ${name} has unsupported type ${t.type}`);
          const arr = t.data as Float32Array | BigInt64Array;
          outputs[name] = { type: t.type, data: arr, dims: [...t.dims] };
          transfer.add(arr.buffer as ArrayBuffer);
        }
        const reply: FromWorker = { type: 'result', id: msg.id, outputs };
        try {
          post(reply, [...transfer]);
        } catch {
          // a buffer ORT owns natively may not be transferable: fall back to a structured copy
          post(reply);
        }
      } catch (err) {
        post({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
      }
    },
  });
}

void main();
