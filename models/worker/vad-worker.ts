/**
 * The worker_threads side of the Silero VAD (models/silero-vad.ts): one ORT session, and a run that
 * steps the recurrent model through all the frames of one request inside the worker, so a stream's
 * hop costs one message round trip instead of one per 32 ms frame. It speaks the ONNX worker's
 * message protocol (models/worker/messages.ts), so OrtWorkerSession is its host:
 *
 *   feeds  { frames: float32 [n * frameSamples], h: float32 [2, 1, 64], c: float32 [2, 1, 64] }
 *   result { probs: float32 [n], hn: float32 [2, 1, 64], cn: float32 [2, 1, 64] }
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { FromWorker, OrtWorkerData, ToWorker, WireTensor } from './messages.js';
import { serveRunsUntilClose } from './serve-runs.js';

/** Samples per Silero call at 16 kHz. */
const FRAME = 512;
const data = workerData as OrtWorkerData;
const port = parentPort;
if (!port) throw new Error('vad-worker must run in a worker thread');

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(data.modelPath, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      ...(data.intraOpThreads > 0 ? { intraOpNumThreads: data.intraOpThreads } : {}),
    });
  } catch (err) {
    post({ type: 'load-error', failed: [{ provider: 'cpu', error: err instanceof Error ? err.message : String(err) }] });
    port!.close();
    return;
  }
  const s = session;
  const names = ['input', 'sr', 'h', 'c'].every((n) => s.inputNames.includes(n)) && ['output', 'hn', 'cn'].every((n) => s.outputNames.includes(n));
  // Report the graph's own names when they are not Silero v4's, so the host's check names them.
  post({
    type: 'ready',
    provider: 'cpu',
    inputNames: names ? ['frames', 'h', 'c'] : [...s.inputNames],
    outputNames: names ? ['probs', 'hn', 'cn'] : [...s.outputNames],
    failed: [],
  });
  const sr = new ort.Tensor('int64', BigInt64Array.of(16000n), []);

  serveRunsUntilClose<ToWorker>(port!, {
    release: () => s.release(),
    refuse: (msg) => {
      if (msg.type === 'run') post({ type: 'run-error', id: msg.id, message: 'model is closing' });
    },
    run: async (msg) => {
      if (msg.type !== 'run') return;
      try {
        const frames = msg.feeds['frames']?.data;
        const h0 = msg.feeds['h']?.data;
        const c0 = msg.feeds['c']?.data;
        if (!(frames instanceof Float32Array) || !(h0 instanceof Float32Array) || !(c0 instanceof Float32Array)) throw new Error('vad: frames, h and c must be float32');
        let h: Float32Array = h0;
        let c: Float32Array = c0;
        const n = Math.floor(frames.length / FRAME);
        const probs = new Float32Array(n);
        for (let k = 0; k < n; k++) {
          const res: ort.InferenceSession.OnnxValueMapType = await s.run({
            input: new ort.Tensor('float32', frames.subarray(k * FRAME, (k + 1) * FRAME), [1, FRAME]),
            sr,
            h: new ort.Tensor('float32', h, [2, 1, 64]),
            c: new ort.Tensor('float32', c, [2, 1, 64]),
          });
          const p = (res['output']?.data as Float32Array | undefined)?.[0];
          probs[k] = p !== undefined && Number.isFinite(p) ? p : 0;
          h = Float32Array.from(res['hn']!.data as Float32Array);
          c = Float32Array.from(res['cn']!.data as Float32Array);
        }
        const outputs: Record<string, WireTensor> = {
          probs: { type: 'float32', data: probs, dims: [n] },
          hn: { type: 'float32', data: h, dims: [2, 1, 64] },
          cn: { type: 'float32', data: c, dims: [2, 1, 64] },
        };
        post({ type: 'result', id: msg.id, outputs }, [probs.buffer, h.buffer as ArrayBuffer, c.buffer as ArrayBuffer]);
      } catch (err) {
        post({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
      }
    },
  });
}

void main();
