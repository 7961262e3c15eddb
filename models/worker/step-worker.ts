/**
 * The worker_threads side of the `cached` streaming mode (models/streaming-speech.ts): one ORT
 * session on `step.onnx`, and every stream's caches — each layer's keys/values of the window's
 * frames, their last hidden states and projected features — resident here, so a step's message
 * carries only the new audio of each stream and its cache identity (stream number + generation),
 * and the reply only the window's logits and pooled state. Before the key/value caches lived on
 * the main thread and about 150 MB crossed the thread boundary per batch of 32 large streams.
 *
 * Safety: a row names the cached positions the main thread expects (`mem`); if the worker's cache
 * for that stream is missing (a new worker, an evicted stream) or differs, the whole step is
 * refused (`step-lost`, nothing runs, nothing changes) and the main thread restarts those streams'
 * caches, so caches are never silently mixed. Caches are bounded per stream (the window's frames
 * plus one hop) and in number (`maxStreams`, least recently used evicted), and freed by `free`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOnFirstProvider, openOrReport, runAndReply, type ProviderFailure } from './open-session.js';
import { serveRunsUntilClose } from './serve-runs.js';
import type { FromStepWorker, StepRow, StepRowCache, StepWorkerData, ToStepWorker } from './step-messages.js';

const data = workerData as StepWorkerData;
const port = parentPort;
if (!port) throw new Error('step-worker must run in a worker thread');

function post(msg: FromStepWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/** One stream's caches. */
interface Cache {
  gen: number;
  /**
   * Keys/values [layers][2][kvCap][D] as a ring: frame i of `kvPos` (oldest first) sits in slot
   * (kvHead + i) % kvCap, so evicting old frames moves nothing (a hop used to shift 36 of 49
   * frames of every layer: ≈ 116 MB per batch of 32 large streams).
   */
  kvBlock: Float32Array | undefined;
  kvCap: number;
  kvHead: number;
  readonly kvPos: number[];
  /** Last hidden state and projected features by frame position. */
  readonly hidden: Map<number, Float32Array>;
  readonly proj: Map<number, Float32Array>;
}

const L = data.layers;
const D = data.hiddenDim;
const P = data.posContext;
const stride = data.stride;
const caches = new Map<number, Cache>();
/** The cached head (`cached-head.onnx`, models/cached-head.ts): reads the pooled state of windows that used cached frames. */
let cachedHead: ort.InferenceSession | undefined;
/** Streams of the step in flight, and those freed meanwhile (dropped once it ends, not re-added). */
const inStep = new Set<number>();
const freedInStep = new Set<number>();
let scratch = new Float32Array(0);

function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.ceil(n * 1.25));
  return new Float32Array(scratch.buffer, 0, n);
}

/** Index range [a, b) of `kvPos` inside [first, from) (positions ascend). */
function keptRange(c: Cache, first: number, from: number): [number, number] {
  let a = 0;
  while (a < c.kvPos.length && (c.kvPos[a] as number) < first) a++;
  let b = a;
  while (b < c.kvPos.length && (c.kvPos[b] as number) < from) b++;
  return [a, b];
}

/** The row's cache if it holds exactly what the main thread expects (after the drop), a fresh one if nothing is expected, else null. */
function check(row: StepRow): Cache | null | 'fresh' {
  const c = caches.get(row.stream);
  if (!c || c.gen !== row.gen) return row.mem.length === 0 ? 'fresh' : null;
  const [a, b] = keptRange(c, row.first, row.from);
  if (b - a !== row.mem.length) return null;
  for (let i = 0; i < row.mem.length; i++) if (c.kvPos[a + i] !== row.mem[i]) return null;
  return c;
}

function touch(stream: number, c: Cache): void {
  caches.delete(stream);
  caches.set(stream, c);
  while (caches.size > data.maxStreams) {
    const oldest = caches.keys().next().value as number;
    caches.delete(oldest);
  }
}

function rowCache(c: Cache | undefined): StepRowCache {
  if (!c) return { frames: 0, bytes: 0 };
  return { frames: c.kvPos.length + c.hidden.size, bytes: 4 * ((c.kvBlock?.length ?? 0) + (c.hidden.size + c.proj.size) * D) };
}

async function step(s: ort.InferenceSession, msg: Extract<ToStepWorker, { type: 'step' }>): Promise<void> {
  const t0 = performance.now();
  const { rows, T, S } = msg;
  const B = rows.length;
  // 1. Check every row before changing anything.
  const checked = rows.map(check);
  const lost = rows.filter((_, i) => checked[i] === null).map((r) => r.stream);
  if (lost.length > 0) {
    for (const id of lost) caches.delete(id);
    post({ type: 'step-lost', id: msg.id, streams: lost });
    return;
  }
  // 2. Drop frames outside [first, from) and build the inputs.
  const cs = rows.map((row, i) => {
    let c = checked[i] as Cache | 'fresh';
    if (c === 'fresh') c = { gen: row.gen, kvBlock: undefined, kvCap: 0, kvHead: 0, kvPos: [], hidden: new Map(), proj: new Map() };
    const [a, b] = keptRange(c, row.first, row.from);
    if (a > 0 || b < c.kvPos.length) {
      if (c.kvCap > 0) c.kvHead = (c.kvHead + a) % c.kvCap;
      c.kvPos.splice(b);
      c.kvPos.splice(0, a);
    }
    return c;
  });
  const M = Math.max(1, ...cs.map((c) => c.kvPos.length));
  const frameMask = new Float32Array(B * T);
  const posCtx = new Float32Array(B * P * D);
  const kvMem = scratchOf(B * L * 2 * M * D);
  const memMask = new Float32Array(B * M);
  const hSum = new Float32Array(B * D);
  const hCount = new Float32Array(B);
  rows.forEach((row, b) => {
    const c = cs[b] as Cache;
    for (let j = 0; j < row.newCount; j++) frameMask[b * T + j] = 1;
    for (let j = 0; j < P; j++) {
      const p = row.ctxEnd - (P - j) * stride;
      const v = p >= row.first ? c.proj.get(p) : undefined; // the window's own frames only, as the full-window path sees them
      if (v) posCtx.set(v, (b * P + j) * D);
    }
    const nMem = c.kvPos.length;
    const first = Math.min(nMem, c.kvCap - c.kvHead); // frames before the ring wraps
    for (let ls = 0; ls < 2 * L; ls++) {
      const o = (b * 2 * L + ls) * M * D;
      if (c.kvBlock && nMem > 0) {
        const base = ls * c.kvCap;
        kvMem.set(c.kvBlock.subarray((base + c.kvHead) * D, (base + c.kvHead + first) * D), o);
        if (first < nMem) kvMem.set(c.kvBlock.subarray(base * D, (base + nMem - first) * D), o + first * D);
      }
      if (nMem < M) kvMem.fill(0, o + nMem * D, o + M * D);
    }
    c.kvPos.forEach((p, m) => {
      memMask[b * M + m] = 1;
      const h = c.hidden.get(p);
      if (h) {
        for (let k = 0; k < D; k++) hSum[b * D + k] = (hSum[b * D + k] as number) + (h[k] as number);
        hCount[b] = (hCount[b] as number) + 1;
      }
    });
  });
  for (const r of rows) inStep.add(r.stream);
  let ok = false;
  try {
    const ts = performance.now();
    const res = await s.run({
      signal: new ort.Tensor('float32', msg.signal, [B, S]),
      frame_mask: new ort.Tensor('float32', frameMask, [B, T]),
      pos_ctx: new ort.Tensor('float32', posCtx, [B, P, D]),
      kv_mem: new ort.Tensor('float32', kvMem, [B, L, 2, M, D]),
      mem_mask: new ort.Tensor('float32', memMask, [B, M]),
      hidden_sum: new ort.Tensor('float32', hSum, [B, D]),
      hidden_count: new ort.Tensor('float32', hCount, [B, 1]),
    });
    await finish(msg, res, cs, M, t0, performance.now() - ts);
    ok = true;
  } finally {
    // A failed step leaves no half-updated cache behind: those streams start afresh (the main thread restarts them too).
    if (!ok) for (const r of rows) caches.delete(r.stream);
    for (const id of freedInStep) caches.delete(id);
    inStep.clear();
    freedInStep.clear();
  }
}

/**
 * Each row's span means: the window [start, end) split into `data.spans` equal spans, and per span the
 * mean last hidden state of the frames the pooled state averages (the stream's cached frames after
 * this step, which include the new ones). [rows, spans, D]; a span without frames, or a one-off
 * window's row (nothing kept), stays zero.
 */
function spanMeans(rows: readonly StepRow[], cs: readonly Cache[]): Float32Array {
  const K = data.spans;
  const out = new Float32Array(rows.length * K * D);
  const count = new Array<number>(K);
  rows.forEach((row, b) => {
    const c = cs[b]; // the row's cache even if the step's LRU eviction already dropped it from `caches`
    if (!c || !row.keep) return;
    count.fill(0);
    const width = (row.end - row.start) / K;
    for (const p of c.kvPos) {
      const h = c.hidden.get(p);
      if (!h) continue;
      const q = Math.min(K - 1, Math.max(0, Math.floor((p - row.start) / width)));
      const o = (b * K + q) * D;
      for (let k = 0; k < D; k++) out[o + k] = (out[o + k] as number) + (h[k] as number);
      count[q] = (count[q] as number) + 1;
    }
    for (let q = 0; q < K; q++) {
      const n = count[q] as number;
      if (n > 1) for (let k = (b * K + q) * D, e = k + D; k < e; k++) out[k] = (out[k] as number) / n;
    }
  });
  return out;
}

/**
 * The rows that attended to cached frames re-read by the cached head (in place in `logits`, and in
 * `pooled` when the head also gives the corrected pooled state); a row with no cached frames is the
 * full model exactly and keeps the model's head.
 */
async function applyCachedHead(
  head: ort.InferenceSession,
  rows: readonly StepRow[],
  logits: Float32Array,
  pooled: Float32Array,
  spans: Float32Array | undefined,
): Promise<void> {
  const pick = rows.flatMap((row, b) => (row.mem.length > 0 ? [b] : []));
  if (pick.length === 0) return;
  const K = data.spans;
  const p = new Float32Array(pick.length * D);
  const sp = new Float32Array(pick.length * K * D);
  pick.forEach((b, i) => {
    p.set(pooled.subarray(b * D, (b + 1) * D), i * D);
    if (spans) sp.set(spans.subarray(b * K * D, (b + 1) * K * D), i * K * D);
  });
  const feeds: Record<string, ort.Tensor> = { pooled: new ort.Tensor('float32', p, [pick.length, D]) };
  if (K > 0) feeds['span_means'] = new ort.Tensor('float32', sp, [pick.length, K, D]);
  const res = await head.run(feeds);
  const out = res['logits'];
  if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== pick.length || out.dims[1] !== 3)
    throw new Error(`cached head output logits is not float32 [${pick.length}, 3]`);
  pick.forEach((b, i) => logits.set((out.data as Float32Array).subarray(i * 3, i * 3 + 3), b * 3));
  // A head that also gives the corrected pooled state: it replaces the row's pooled state (the embedding the fusion reads).
  const hs = res['hidden_states'];
  if (!hs) return;
  if (hs.type !== 'float32' || hs.dims.length !== 2 || hs.dims[0] !== pick.length || hs.dims[1] !== D)
    throw new Error(`cached head output hidden_states is not float32 [${pick.length}, ${D}]`);
  pick.forEach((b, i) => pooled.set((hs.data as Float32Array).subarray(i * D, (i + 1) * D), b * D));
}

async function finish(
  msg: Extract<ToStepWorker, { type: 'step' }>,
  res: ort.InferenceSession.ReturnType,
  cs: Cache[],
  M: number,
  t0: number,
  sessionMs: number,
): Promise<void> {
  const { rows, T } = msg;
  const B = rows.length;
  const out = (name: string, want: number[]): Float32Array => {
    const t = res[name];
    if (!t || t.type !== 'float32') throw new Error(`step output ${name} missing or not float32`);
    if (t.dims.length !== want.length || want.some((w, i) => w >= 0 && t.dims[i] !== w))
      throw new Error(`step output ${name} has shape [${t.dims.join(', ')}], expected [${want.map((w) => (w < 0 ? '?' : w)).join(', ')}]`);
    return t.data as Float32Array;
  };
  const fh = out('frame_hidden', [B, T, D]);
  const pj = out('proj', [B, T, D]);
  const kvd = out('kv_new', [B, L, 2, T, D]);
  const hs = out('hidden_states', [B, D]);
  const logits = out('logits', [B, 3]).slice(0, B * 3);
  // 3. Append the new frames to each stream's caches; evict what no later window can use.
  const caches_: StepRowCache[] = rows.map((row, b) => {
    const c = cs[b] as Cache;
    if (!row.keep) {
      caches.delete(row.stream);
      return { frames: 0, bytes: 0 };
    }
    const n = row.newCount;
    for (let j = 0; j < n; j++) {
      const p = row.newFirst + j * stride;
      c.hidden.set(p, fh.slice((b * T + j) * D, (b * T + j + 1) * D));
      c.proj.set(p, pj.slice((b * T + j) * D, (b * T + j + 1) * D));
    }
    if (n > 0) {
      const have = c.kvPos.length;
      if (!c.kvBlock || have + n > c.kvCap) {
        // (Re)allocate, oldest frame in slot 0: room for a window plus a hop, so the steady state never reallocates.
        const cap = Math.max(have + n, row.capHint);
        const nb = new Float32Array(2 * L * cap * D);
        if (c.kvBlock && have > 0)
          for (let ls = 0; ls < 2 * L; ls++)
            for (let i = 0; i < have; i++) {
              const slot = (c.kvHead + i) % c.kvCap;
              nb.set(c.kvBlock.subarray((ls * c.kvCap + slot) * D, (ls * c.kvCap + slot + 1) * D), (ls * cap + i) * D);
            }
        c.kvBlock = nb;
        c.kvCap = cap;
        c.kvHead = 0;
      }
      const blk = c.kvBlock;
      const cap = c.kvCap;
      for (let ls = 0; ls < 2 * L; ls++) {
        const o = (b * 2 * L + ls) * T * D;
        const slot = (c.kvHead + have) % cap;
        const firstPart = Math.min(n, cap - slot);
        blk.set(kvd.subarray(o, o + firstPart * D), (ls * cap + slot) * D);
        if (firstPart < n) blk.set(kvd.subarray(o + firstPart * D, o + n * D), ls * cap * D);
      }
      for (let j = 0; j < n; j++) c.kvPos.push(row.newFirst + j * stride);
    }
    for (const p of c.hidden.keys()) if (p < row.start) c.hidden.delete(p);
    for (const p of c.proj.keys()) if (p < row.start) c.proj.delete(p);
    touch(row.stream, c);
    return rowCache(c);
  });
  const hidden = hs.slice(0, B * D);
  // 4. The span means and the cached head, once the caches hold the window's frames.
  const spans = data.spans > 0 && (cachedHead || data.returnSpans) ? spanMeans(rows, cs) : undefined;
  if (cachedHead) await applyCachedHead(cachedHead, rows, logits, hidden, spans);
  const back = data.returnSpans ? spans : undefined;
  post(
    {
      type: 'step-result',
      id: msg.id,
      logits,
      hidden,
      ...(back ? { spans: back } : {}),
      M,
      caches: caches_,
      sessionMs,
      packMs: performance.now() - t0 - sessionMs,
    },
    [logits.buffer, hidden.buffer, ...(back ? [back.buffer as ArrayBuffer] : [])],
  );
}

/** Opens the cached head on the step session's provider (`cachedHead`); the failures when it cannot be opened or is not a cached head. */
async function openCachedHead(provider: string): Promise<ProviderFailure[] | undefined> {
  const file = data.cachedHeadPath;
  if (!file) return undefined;
  const h = await createOnFirstProvider(file, [provider], 1);
  if (!h.session) return h.failed.map((f) => ({ provider: f.provider, error: `${file}: ${f.error}` }));
  const want = data.spans > 0 ? 'pooled,span_means' : 'pooled';
  if ([...h.session.inputNames].sort().join() !== want || !h.session.outputNames.includes('logits')) {
    const error = `${file} has inputs [${h.session.inputNames.join(', ')}] and outputs [${h.session.outputNames.join(', ')}]; a cached head with ${data.spans} spans takes [${want}] and gives logits`;
    await h.session.release();
    return [{ provider, error }];
  }
  cachedHead = h.session;
  return undefined;
}

async function main(): Promise<void> {
  const s = await openOrReport(data, post, port!, openCachedHead);
  if (!s) return;

  serveRunsUntilClose<ToStepWorker>(port!, {
    release: async () => {
      caches.clear();
      await cachedHead?.release();
      return s.release();
    },
    refuse: (msg) => {
      if (msg.type === 'step' || msg.type === 'run' || msg.type === 'stats') post({ type: 'run-error', id: msg.id, message: 'model is closing' });
    },
    run: async (msg) => {
      if (msg.type === 'free') {
        for (const id of msg.streams) {
          caches.delete(id);
          if (inStep.has(id)) freedInStep.add(id);
        }
        return;
      }
      if (msg.type === 'stats') {
        let bytes = 0;
        for (const c of caches.values()) bytes += rowCache(c).bytes;
        post({ type: 'stats', id: msg.id, streams: caches.size, bytes });
        return;
      }
      if (msg.type !== 'step' && msg.type !== 'run') return;
      try {
        if (msg.type === 'step') {
          await step(s, msg);
          return;
        }
        await runAndReply(s, msg.id, msg.feeds, post);
      } catch (err) {
        post({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
      }
    },
  });
}

void main();
