/**
 * The worker_threads side of the Silero VAD (models/silero-vad.ts): one ORT session, and a batched
 * run over many streams at once. One request carries the new frames of B streams (each stream's
 * frames in order, stream after stream) and their recurrent states. It speaks the ONNX worker's
 * message protocol (models/worker/messages.ts), so OrtWorkerSession is its host:
 *
 *   feeds  { frames: float32 [Σnᵢ, F], counts: float32 [B] (nᵢ), h: float32 [2, B, 64], c: float32 [2, B, 64] }
 *   result { probs: float32 [Σnᵢ], hn: float32 [2, B, 64], cn: float32 [2, B, 64] }
 *
 * F (samples per frame at 16 kHz) is 512, 1024 or 1536, read from the frames' dims. Two graphs:
 *
 * - the sequence form (models/silero-vad/silero-vad-seq.onnx, derived from the packaged file by
 *   training/vad/derive_silero.py; inputs frames/index/lengths/h/c): the whole request is ONE ONNX
 *   call — the stateless encoder over all Σnᵢ frames, the LSTMs over the streams' frame sequences;
 * - the packaged graph (inputs input/sr/h/c): step k runs one Silero call with batch = the streams
 *   that still have a k-th frame, so a request costs max(nᵢ) ONNX calls.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { FromWorker, OrtWorkerData, ToWorker, WireTensor } from './messages.js';
import { createOnFirstProvider } from './open-session.js';
import { serveRunsUntilClose } from './serve-runs.js';

/** Floats of one stream's state per layer (Silero v4: 2 layers × 64). */
const H = 64;
const data = workerData as OrtWorkerData;
const port = parentPort;
if (!port) throw new Error('vad-worker must run in a worker thread');

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/** Steps B streams' frames through the model; see the module comment. */
async function runBatched(s: ort.InferenceSession, sr: ort.Tensor, frames: Float32Array, F: number, counts: Float32Array, h0: Float32Array, c0: Float32Array) {
  const B = counts.length;
  if (h0.length !== 2 * B * H || c0.length !== 2 * B * H) throw new Error(`vad: h and c must be [2, ${B}, ${H}]`);
  const n = counts.map((x) => Math.max(0, Math.floor(x)));
  const offset = new Int32Array(B); // first frame of stream i in `frames`
  let total = 0;
  let steps = 0;
  for (let i = 0; i < B; i++) {
    offset[i] = total;
    total += n[i]!;
    steps = Math.max(steps, n[i]!);
  }
  if (total * F !== frames.length) throw new Error(`vad: frames hold ${frames.length} samples, counts say ${total} × ${F}`);
  const probs = new Float32Array(total);
  const h = Float32Array.from(h0);
  const c = Float32Array.from(c0);
  const active: number[] = [];
  for (let k = 0; k < steps; k++) {
    active.length = 0;
    for (let i = 0; i < B; i++) if (n[i]! > k) active.push(i);
    const b = active.length;
    const x = new Float32Array(b * F);
    const hs = new Float32Array(2 * b * H);
    const cs = new Float32Array(2 * b * H);
    for (let j = 0; j < b; j++) {
      const i = active[j]!;
      const f = offset[i]! + k;
      x.set(frames.subarray(f * F, (f + 1) * F), j * F);
      for (let l = 0; l < 2; l++) {
        hs.set(h.subarray((l * B + i) * H, (l * B + i + 1) * H), (l * b + j) * H);
        cs.set(c.subarray((l * B + i) * H, (l * B + i + 1) * H), (l * b + j) * H);
      }
    }
    const res = await s.run({
      input: new ort.Tensor('float32', x, [b, F]),
      sr,
      h: new ort.Tensor('float32', hs, [2, b, H]),
      c: new ort.Tensor('float32', cs, [2, b, H]),
    });
    const out = res['output']?.data as Float32Array | undefined;
    const hn = res['hn']?.data as Float32Array | undefined;
    const cn = res['cn']?.data as Float32Array | undefined;
    if (!out || !hn || !cn) throw new Error('vad: the model returned no output/hn/cn');
    for (let j = 0; j < b; j++) {
      const i = active[j]!;
      const p = out[j];
      probs[offset[i]! + k] = p !== undefined && Number.isFinite(p) ? p : 0;
      for (let l = 0; l < 2; l++) {
        h.set(hn.subarray((l * b + j) * H, (l * b + j + 1) * H), (l * B + i) * H);
        c.set(cn.subarray((l * b + j) * H, (l * b + j + 1) * H), (l * B + i) * H);
      }
    }
  }
  return { probs, h, c };
}

/** The same request through the sequence graph, in one call (see the module comment). */
async function runSequence(s: ort.InferenceSession, frames: Float32Array, F: number, counts: Float32Array, h0: Float32Array, c0: Float32Array) {
  const B = counts.length;
  if (h0.length !== 2 * B * H || c0.length !== 2 * B * H) throw new Error(`vad: h and c must be [2, ${B}, ${H}]`);
  const n = counts.map((x) => Math.max(0, Math.floor(x)));
  const offset = new Int32Array(B);
  let total = 0;
  let steps = 0;
  // Streams with frames (a stream with none keeps its state).
  const active: number[] = [];
  for (let i = 0; i < B; i++) {
    offset[i] = total;
    total += n[i]!;
    steps = Math.max(steps, n[i]!);
    if (n[i]! > 0) active.push(i);
  }
  if (total * F !== frames.length) throw new Error(`vad: frames hold ${frames.length} samples, counts say ${total} × ${F}`);
  const probs = new Float32Array(total);
  const h = Float32Array.from(h0);
  const c = Float32Array.from(c0);
  const b = active.length;
  if (b === 0) return { probs, h, c };
  // index[k, j]: row of frame k of active stream j (steps past its last frame repeat it: padding, masked by lengths).
  const index = new BigInt64Array(steps * b);
  const lengths = new Int32Array(b);
  const hs = b === B ? h : new Float32Array(2 * b * H);
  const cs = b === B ? c : new Float32Array(2 * b * H);
  for (let j = 0; j < b; j++) {
    const i = active[j]!;
    lengths[j] = n[i]!;
    for (let k = 0; k < steps; k++) index[k * b + j] = BigInt(offset[i]! + Math.min(k, n[i]! - 1));
    if (b !== B) {
      for (let l = 0; l < 2; l++) {
        hs.set(h.subarray((l * B + i) * H, (l * B + i + 1) * H), (l * b + j) * H);
        cs.set(c.subarray((l * B + i) * H, (l * B + i + 1) * H), (l * b + j) * H);
      }
    }
  }
  const res = await s.run({
    frames: new ort.Tensor('float32', frames, [total, F]),
    index: new ort.Tensor('int64', index, [steps, b]),
    lengths: new ort.Tensor('int32', lengths, [b]),
    h: new ort.Tensor('float32', hs, [2, b, H]),
    c: new ort.Tensor('float32', cs, [2, b, H]),
  });
  const out = res['probs']?.data as Float32Array | undefined;
  const hn = res['hn']?.data as Float32Array | undefined;
  const cn = res['cn']?.data as Float32Array | undefined;
  if (!out || !hn || !cn || out.length !== steps * b || hn.length !== 2 * b * H) throw new Error('vad: the model returned no probs/hn/cn');
  for (let j = 0; j < b; j++) {
    const i = active[j]!;
    for (let k = 0; k < n[i]!; k++) {
      const p = out[k * b + j];
      probs[offset[i]! + k] = p !== undefined && Number.isFinite(p) ? p : 0;
    }
    for (let l = 0; l < 2; l++) {
      h.set(hn.subarray((l * b + j) * H, (l * b + j + 1) * H), (l * B + i) * H);
      c.set(cn.subarray((l * b + j) * H, (l * b + j + 1) * H), (l * B + i) * H);
    }
  }
  return { probs, h, c };
}

async function main(): Promise<void> {
  const { session, failed } = await createOnFirstProvider(data.modelPath, ['cpu'], data.intraOpThreads);
  if (!session) {
    post({ type: 'load-error', failed });
    port!.close();
    return;
  }
  const s = session;
  const packaged = ['input', 'sr', 'h', 'c'].every((n) => s.inputNames.includes(n)) && ['output', 'hn', 'cn'].every((n) => s.outputNames.includes(n));
  const sequence =
    ['frames', 'index', 'lengths', 'h', 'c'].every((n) => s.inputNames.includes(n)) && ['probs', 'hn', 'cn'].every((n) => s.outputNames.includes(n));
  const names = packaged || sequence;
  // Report the graph's own names when they are neither Silero v4's nor the sequence form's, so the host's check names them.
  post({
    type: 'ready',
    provider: 'cpu',
    inputNames: names ? ['frames', 'counts', 'h', 'c'] : [...s.inputNames],
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
        const frames = msg.feeds['frames'];
        const counts = msg.feeds['counts']?.data;
        const h0 = msg.feeds['h']?.data;
        const c0 = msg.feeds['c']?.data;
        if (
          !frames ||
          !(frames.data instanceof Float32Array) ||
          !(counts instanceof Float32Array) ||
          !(h0 instanceof Float32Array) ||
          !(c0 instanceof Float32Array)
        ) {
          throw new Error('vad: frames, counts, h and c must be float32');
        }
        const F = frames.dims[1] ?? 0;
        if (![512, 1024, 1536].includes(F)) throw new Error(`vad: frames must be [n, 512 | 1024 | 1536], got [${frames.dims.join(', ')}]`);
        const { probs, h, c } = sequence ? await runSequence(s, frames.data, F, counts, h0, c0) : await runBatched(s, sr, frames.data, F, counts, h0, c0);
        const B = counts.length;
        const outputs: Record<string, WireTensor> = {
          probs: { type: 'float32', data: probs, dims: [probs.length] },
          hn: { type: 'float32', data: h, dims: [2, B, H] },
          cn: { type: 'float32', data: c, dims: [2, B, H] },
        };
        post({ type: 'result', id: msg.id, outputs }, [probs.buffer, h.buffer, c.buffer]);
      } catch (err) {
        post({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
      }
    },
  });
}

void main();
