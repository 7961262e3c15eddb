/**
 * The `encoders` section (issue 14): what real-size speech encoders cost, and what the
 * compute-once streaming path (models/streaming-speech.ts) saves.
 *
 * For each requested stand-in (`base` → wav2vec2-base-dim layout, `large` → the 12-layer
 * wav2vec2-large-robust layout of wav2vec2-msp-dim; random weights, exported by
 * training/encoders/export_standins.py into models/weights/standins/, built here when missing) and
 * for the trained default speech model, on one device:
 *
 * - memory per session (RSS growth from loading the session and one warm-up window);
 * - latency of one 1 s window at batch 1 (bare session, median);
 * - throughput at batch 1..32 (bare session, windows/s);
 * - one pass over 4 s of audio (ms per audio second): the cost of computing each sample once;
 * - the full-window path at the default 1 s window / 250 ms hop, one stream: real-time factor,
 *   CPU core-seconds per audio second, real-time streams per core and on this machine;
 * - the streaming path (chunked and frames modes) on the same windows: the same figures, plus the
 *   deviation of its outputs from the full-window path and the redundancy factor (time per audio
 *   second ÷ the one-pass time per audio second; and in frames of work);
 * - concurrent streams: N streams batched through each path (audio seconds per wall second).
 *
 * Every figure carries the 1-minute load average when it was taken (the machine may be shared).
 * CUDA rows run only with `--device cuda` on a machine with onnxruntime-node's CUDA provider;
 * otherwise they are a `skipped` note.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { cudaProviderInstalled } from '../../models/device.js';
import { modelFilePath } from '../../models/files.js';
import { findModelSpec, MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import type { Device, SpeechAffectOutput } from '../../models/ports.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { threadCountText, type IntraOpThreads } from '../../models/threads.js';
import {
  encoderMacs,
  frontendMacs,
  hasStreamingGraphs,
  headMacs,
  StreamingSpeechModel,
  type StreamingMode,
  type StreamingSpeechStream,
} from '../../models/streaming-speech.js';
import { round } from '../lib/common.js';

/** Stand-ins the section knows: name → the manifest spec whose contract it has. */
export const STANDINS = { base: 'wav2vec2-base-dim', large: 'wav2vec2-msp-dim' } as const;
export type StandinName = keyof typeof STANDINS;

/** Where the stand-ins live (a models folder: `<dir>/<spec id>/model.onnx`). */
export const STANDINS_DIR = path.join(REPO_ROOT, 'models', 'weights', 'standins');
/** Their int8 weight-quantised variants (same layout). */
export const STANDINS_INT8_DIR = path.join(REPO_ROOT, 'models', 'weights', 'standins-int8');

/** Builds the int8 variants that are missing or older than their fp32 source. */
export function ensureInt8(specIds: readonly string[], log: (l: string) => void): { error?: string } {
  const missing = specIds.filter(
    (id) =>
      !existsSync(path.join(STANDINS_INT8_DIR, id, 'model.onnx')) ||
      statSync(path.join(STANDINS_INT8_DIR, id, 'model.onnx')).mtimeMs < statSync(path.join(STANDINS_DIR, id, 'model.onnx')).mtimeMs,
  );
  if (missing.length === 0) return {};
  const python = process.env['CIRCUMPLEX_PYTHON'] ?? '/usr/bin/python3';
  log(`[bench] encoders: int8 variants of ${missing.join(', ')} (${python} -m training.encoders.quantize_int8, nice 10)`);
  const r = spawnSync(
    'nice',
    ['-n', '10', python, '-m', 'training.encoders.quantize_int8', '--src', STANDINS_DIR, '--dst', STANDINS_INT8_DIR, '--ids', missing.join(',')],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 15 * 60_000 },
  );
  if (r.status !== 0)
    return { error: `quantize_int8 failed (exit ${String(r.status)}): ${(r.stderr || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}` };
  return {};
}

/** Sizes of the section. */
export interface EncodersPlan {
  /** Audio for the one-stream RTF runs, seconds. */
  audioSeconds: number;
  batchSizes: number[];
  /** Per batch size, ms (at least 2 calls). */
  batchTargetMs: number;
  latencyRuns: number;
  /** Concurrent streams for the batched comparison (0: skip). */
  concurrentStreams: number;
  concurrentAudioSeconds: number;
  /** Left context (frames) of the chunked streaming mode used for the concurrent run. */
  leftContextFrames: number;
  /** Left contexts tried in the one-stream chunked runs. */
  leftContextSweep: number[];
  /** Check frames mode against the full-window path with input normalisation off (exactness), windows (0: skip). */
  exactnessWindows: number;
  /** Build and time the int8 weight-quantised variants (on with the full plan; `--encoder-int8` adds them to --quick). */
  int8: boolean;
  /** Time the frames mode (conv cache only; 3× work) too. */
  framesMode: boolean;
  /** `cached` with this many frames recomputed per hop (the middle settings between compute-once and the full window). */
  recomputeSweep: number[];
  /** ONNX intra-op threads of every session (models/threads.ts; `--threads`). Default auto. */
  intraOpThreads: IntraOpThreads;
  /** Step workers of the cached mode (`--encoder-step-workers`). Default auto. */
  stepWorkers: number | 'auto';
}

export function encodersPlan(quick: boolean): EncodersPlan {
  return quick
    ? {
        audioSeconds: 3,
        batchSizes: [1, 4],
        batchTargetMs: 200,
        latencyRuns: 3,
        concurrentStreams: 0,
        concurrentAudioSeconds: 0,
        leftContextFrames: 6,
        leftContextSweep: [6],
        exactnessWindows: 0,
        int8: false,
        framesMode: false,
        recomputeSweep: [13, 25],
        intraOpThreads: 'auto',
        stepWorkers: 'auto',
      }
    : {
        audioSeconds: 8,
        batchSizes: [1, 2, 4, 8, 16, 32],
        batchTargetMs: 1500,
        latencyRuns: 9,
        concurrentStreams: 32,
        concurrentAudioSeconds: 2,
        leftContextFrames: 6,
        leftContextSweep: [0, 6, 12],
        exactnessWindows: 8,
        int8: true,
        framesMode: true,
        recomputeSweep: [6, 13, 25],
        intraOpThreads: 'auto',
        stepWorkers: 'auto',
      };
}

/** A figure with the load average when it was measured. */
export interface Loaded<T> {
  readonly value: T;
  readonly loadAvg1: number;
}

const load1 = (): number => round(os.loadavg()[0] ?? 0, 2);
const at = <T>(value: T): Loaded<T> => ({ value, loadAvg1: load1() });

/** One path (full-window or streaming) over one stream at the default window/hop. */
export interface PathRun {
  readonly windows: number;
  readonly audioSeconds: number;
  readonly wallMs: number;
  /** wall ÷ audio. */
  readonly rtf: number;
  /** CPU core-seconds (all threads) per audio second. */
  readonly cpuCoresPerStream: number;
  /** 1 ÷ cpuCoresPerStream. */
  readonly streamsPerCore: number;
  /** 1 ÷ rtf: streams this machine holds one call at a time (each call may use every core). */
  readonly streamsThisMachine: number;
  /** Encoder time per audio second ÷ one pass per audio second (batch 1). */
  readonly redundancyTime: number | null;
  /** Multiply-accumulates per audio second ÷ those of one pass over that second. */
  readonly redundancyMacs: number | null;
  readonly loadAvg1: number;
}

export interface StreamingRun extends PathRun {
  readonly mode: StreamingMode;
  readonly leftContextFrames: number;
  /** cached: frames recomputed per hop (0: compute-once). */
  readonly recomputeFrames?: number;
  /** Max |Δ| of valence/arousal/dominance against the full-window path ([-1, 1] units). */
  readonly maxAbsDiff: number;
  readonly meanAbsDiff: number;
  /** Standard deviation of the full-window outputs across the same windows (scale of the deviation). */
  readonly outputSd: number;
  /** Min cosine similarity of the pooled hidden state against the full-window one. */
  readonly minEmbeddingCosine: number;
  /** Conv samples and transformer frames computed ÷ what one pass needs. */
  readonly redundancyFrontend: number;
  readonly redundancyEncoder: number;
  /** Cache per stream, bytes. */
  readonly cacheBytesPerStream: number;
  /** cached: the cached head's file name when one was used (fitted for this hop and recomputeFrames), else null; and the windows it read. */
  readonly cachedHead?: string | null;
  readonly cachedHeadWindows?: number;
}

export interface ConcurrentRun {
  readonly streams: number;
  readonly audioSecondsPerStream: number;
  readonly wallMs: number;
  /** Audio seconds processed per wall second, all streams together (= real-time streams held). */
  readonly realtimeStreams: number;
  /** Wall time per audio second over all streams ÷ the one-pass time per audio second (batch 1). */
  readonly redundancyTime: number | null;
  /** The same in CPU time of this process (less sensitive to other processes on a shared box than wall time). */
  readonly redundancyCpu: number | null;
  readonly meanBatch: number;
  /** CPU core-seconds of this process (all threads) per audio second, and 1 ÷ that. */
  readonly cpuCoresPerStream: number;
  readonly streamsPerCore: number;
  readonly loadAvg1: number;
}

export interface EncoderRow {
  readonly name: string;
  readonly specId: string;
  readonly file: string;
  readonly note?: string;
  readonly device: string;
  readonly provider: string;
  /** ONNX intra-op threads of the full-window session (0: onnxruntime's default; models/threads.ts). */
  readonly intraOpThreads: number;
  readonly parameters?: number;
  readonly sessionMiB: Loaded<number>;
  /** The streaming path's three sessions (chunked), same measure. */
  readonly streamingSessionMiB?: number;
  readonly latencyMsBatch1: Loaded<number>;
  readonly throughput: ReadonlyArray<{ batch: number; windowsPerSec: number; msPerCall: number; loadAvg1: number }>;
  readonly onePassMsPerAudioSecond: Loaded<number> | null;
  /** The same pass in CPU ms of this process (all threads) per audio second. */
  readonly onePassCpuMsPerAudioSecond?: number;
  readonly fullWindow: PathRun;
  readonly streaming: ReadonlyArray<StreamingRun | { mode: StreamingMode; skipped: string }>;
  readonly concurrent?: {
    fullWindow: ConcurrentRun;
    streaming: ConcurrentRun | { skipped: string };
    /** Bare session windows per second at batch `bareBatch` (every stream's window at once): median of `bareCalls` calls, half before and half after the concurrent run; best call too. */
    bareAtSameBatch: number;
    bareBestAtSameBatch?: number;
    bareBatch?: number;
    bareCalls?: number;
    /** The concurrent full-window run's windows per second ÷ the bare median (the issue's ≥ 0.8 target); ÷ the best call; and by CPU time of this process (bare CPU ms per window ÷ the run's). */
    batchingEfficiency: number;
    batchingEfficiencyBest?: number;
    batchingEfficiencyCpu?: number;
    /** The streaming path's mode in the concurrent run (`cached` when the model has step.onnx). */
    streamingMode?: StreamingMode;
    /** cached mode: step workers of the concurrent run (streams sharded between them) and each one's intra-op threads. */
    streamingStepWorkers?: number;
    streamingThreadsPerWorker?: number;
    /** cached: stream-hops per second of the bare step session at the same batch and steady-state shape (median of `streamingBareCalls` calls; best call too). */
    streamingBareHopsPerSec?: number;
    streamingBareBestHopsPerSec?: number;
    streamingBareCalls?: number;
    /** cached: the concurrent streaming run's stream-hops per second ÷ the bare median. */
    streamingBatchingEfficiency?: number;
    /** cached: the same by CPU time of this process: bare CPU ms per stream-hop ÷ the run's (less sensitive to other load). */
    streamingBatchingEfficiencyCpu?: number;
    /** cached: where the concurrent streaming run's wall time went, ms: step round trips (ORT call + the worker packing caches) and the main thread's share. */
    streamingTimeSplit?: { stepMs: number; workerPackMs: number; mainThreadMs: number };
  };
  /** Frames mode vs the full-window path with input normalisation off: the exactness check. */
  readonly framesExactness?: { windows: number; maxAbsDiff: number; maxEmbeddingAbsDiff: number; loadAvg1: number } | { skipped: string };
  /** The int8 weight-quantised variant (training/encoders/quantize_int8.py) against this fp32 model. */
  readonly int8?: Int8Row | { skipped: string };
  /** Multiply-accumulates of one pass over one second of audio (front end + transformer on 50 frames + head). */
  readonly onePassMacsPerSecond?: number;
}

export interface Int8Row {
  readonly file: string;
  readonly sessionMiB: number;
  readonly latencyMsBatch1: Loaded<number>;
  /** fp32 latency ÷ int8 latency at batch 1. */
  readonly speedupBatch1: number;
  readonly fullWindow: PathRun;
  readonly streamingChunked: PathRun | { skipped: string };
  /** Full-window outputs of int8 vs fp32 on the same windows. */
  readonly maxAbsDiff: number;
  readonly meanAbsDiff: number;
  readonly outputSd: number;
  readonly minEmbeddingCosine: number;
  /**
   * The compute-once path on the int8 graphs (step.onnx quantised too): one stream's deviation from
   * the fp32 full-window outputs, and N concurrent streams batched (the fp32 concurrent run's twin).
   */
  readonly streamingCached?: { oneStream: PathRun & Deviation; concurrent?: ConcurrentRun } | { skipped: string };
}

type Deviation = ReturnType<typeof deviation>;

export interface EncodersSection {
  readonly windowMs: 1000;
  readonly hopMs: 250;
  readonly device: Device;
  readonly rows: ReadonlyArray<EncoderRow | { name: string; skipped: string }>;
  readonly cuda?: { skipped: string };
  readonly notes: readonly string[];
}

/** Builds the stand-ins that are missing (python3 + torch, seconds to a minute each). */
export function ensureStandins(names: readonly StandinName[], log: (l: string) => void): { built: string[]; error?: string } {
  const missing = names.filter((n) => {
    const spec = findModelSpec(STANDINS[n]) as ModelSpec;
    return !existsSync(path.join(STANDINS_DIR, spec.id, 'model.onnx')) || !hasStreamingGraphs(spec, STANDINS_DIR);
  });
  if (missing.length === 0) return { built: [] };
  const python = process.env['CIRCUMPLEX_PYTHON'] ?? '/usr/bin/python3';
  log(`[bench] encoders: building stand-ins ${missing.join(', ')} (${python} -m training.encoders.export_standins, nice 10; about a minute)`);
  const r = spawnSync('nice', ['-n', '10', python, '-m', 'training.encoders.export_standins', '--encoders', missing.join(','), '--out', STANDINS_DIR], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  if (r.status !== 0)
    return {
      built: [],
      error: `export_standins failed (exit ${String(r.status)}): ${(r.stderr || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}`,
    };
  return { built: missing };
}

function windowsOf(samples: Float32Array, seconds: number): Float32Array[] {
  const out: Float32Array[] = [];
  const total = Math.min(samples.length, Math.round(seconds * 16_000));
  for (let s = 0; s + 16_000 <= total; s += 4000) out.push(samples.slice(s, s + 16_000));
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** RSS growth (MiB) of a fresh child process loading the model and running one window; NaN if it fails. */
export function sessionMemory(spec: ModelSpec, modelsDir: string | undefined, mode?: StreamingMode): number {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'lib', 'session-memory.ts'), JSON.stringify(spec), modelsDir ?? '-', ...(mode ? [mode] : [])],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  try {
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const j = JSON.parse(line) as { before: number; loaded: number };
    return round(j.loaded - j.before, 1);
  } catch {
    return NaN;
  }
}

/** Wall and CPU time of this process (all threads), ms, of one awaited piece of work. */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await work();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wallMs, cpuMs: (c.user + c.system) / 1000 };
}

async function timePath(
  windows: Float32Array[],
  infer: (w: Float32Array) => Promise<SpeechAffectOutput>,
): Promise<{ outs: SpeechAffectOutput[]; wallMs: number; cpuMs: number; loadAvg1: number }> {
  const outs: SpeechAffectOutput[] = [];
  const { wallMs, cpuMs } = await timed(async () => {
    for (const w of windows) outs.push(await infer(w));
  });
  return { outs, wallMs, cpuMs, loadAvg1: load1() };
}

/** A concurrent run's CPU ms (this process, all threads) per window of one stream, i.e. per 250 ms hop of new audio. */
function cpuMsPerHop(run: ConcurrentRun): number {
  return run.cpuCoresPerStream * 0.25 * 1000;
}

function pathRun(windows: number, wallMs: number, cpuMs: number, onePass: number | null, loadAvg1: number, redundancyMacs: number | null = null): PathRun {
  const audioSeconds = windows * 0.25; // new audio per window at a 250 ms hop
  const rtf = wallMs / 1000 / audioSeconds;
  const cpu = cpuMs / 1000 / audioSeconds;
  return {
    windows,
    audioSeconds,
    wallMs: round(wallMs, 1),
    rtf: round(rtf, 4),
    cpuCoresPerStream: round(cpu, 4),
    streamsPerCore: round(1 / cpu, 2),
    streamsThisMachine: round(1 / rtf, 2),
    redundancyTime: onePass ? round(wallMs / audioSeconds / onePass, 2) : null,
    redundancyMacs: redundancyMacs === null ? null : round(redundancyMacs, 3),
    loadAvg1,
  };
}

function deviation(
  ref: SpeechAffectOutput[],
  got: SpeechAffectOutput[],
): { maxAbsDiff: number; meanAbsDiff: number; outputSd: number; minEmbeddingCosine: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  const vals: number[] = [];
  let minCos = 1;
  ref.forEach((a, i) => {
    const b = got[i] as SpeechAffectOutput;
    for (const k of ['valence', 'arousal', 'dominance'] as const) {
      const x = a[k];
      const y = b[k];
      if (x === undefined || y === undefined) continue;
      const d = Math.abs(x - y);
      max = Math.max(max, d);
      sum += d;
      n++;
      vals.push(x);
    }
    if (a.embedding && b.embedding) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = 0; j < a.embedding.length; j++) {
        const p = a.embedding[j] as number;
        const q = b.embedding[j] as number;
        dot += p * q;
        na += p * p;
        nb += q * q;
      }
      minCos = Math.min(minCos, dot / Math.sqrt(na * nb + 1e-30));
    }
  });
  const mean = vals.reduce((s, v) => s + v, 0) / Math.max(1, vals.length);
  const sd = Math.sqrt(vals.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, vals.length));
  return { maxAbsDiff: round(max, 6), meanAbsDiff: round(sum / Math.max(1, n), 6), outputSd: round(sd, 4), minEmbeddingCosine: round(minCos, 5) };
}

/** MACs of one pass over one second of audio. */
function onePassMacsPerSecond(sm: StreamingSpeechModel): number | null {
  const fe = frontendMacs(sm.info, 16_000);
  const en = encoderMacs(sm.info, 50);
  return fe === null || en === null ? null : fe + en + headMacs(sm.info);
}

/** MACs of the full model on one 1 s window (49 frames). */
function windowMacs(sm: StreamingSpeechModel): number {
  return (frontendMacs(sm.info, 16_000) ?? 0) + (encoderMacs(sm.info, 49) ?? 0) + headMacs(sm.info);
}

/** Frames mode against the full-window path, both with input normalisation off: exact up to float rounding for layer-norm front ends. */
async function exactness(
  spec: ModelSpec,
  loadOpts: object,
  samples: Float32Array,
  n: number,
  log: (l: string) => void,
  name: string,
): Promise<EncoderRow['framesExactness']> {
  log(`[bench] encoders: ${name}: frames-mode exactness check (input normalisation off, ${n} windows)`);
  const raw: ModelSpec = { ...spec, inputNormalization: 'none' };
  const full = await OnnxSpeechModel.load(raw, loadOpts);
  const sm = await StreamingSpeechModel.load(raw, { ...loadOpts, streaming: { mode: 'frames' } });
  try {
    const st = sm.forStream('exact');
    let max = 0;
    let maxE = 0;
    for (const w of windowsOf(samples, 0.75 + n * 0.25).slice(0, n)) {
      const a = await full.infer(w);
      const b = await st.infer(w);
      for (const k of ['valence', 'arousal', 'dominance'] as const) max = Math.max(max, Math.abs((a[k] ?? 0) - (b[k] ?? 0)));
      if (a.embedding && b.embedding)
        for (let i = 0; i < a.embedding.length; i++) maxE = Math.max(maxE, Math.abs((a.embedding[i] as number) - (b.embedding[i] as number)));
    }
    st.close();
    return { windows: n, maxAbsDiff: max, maxEmbeddingAbsDiff: maxE, loadAvg1: load1() };
  } finally {
    await sm.close();
    await full.close();
  }
}

/** The int8 variant: latency, full-window and chunked RTF, and its deviation from the fp32 outputs. */
async function measureInt8(
  spec: ModelSpec,
  loadOpts: object,
  plan: EncodersPlan,
  samples: Float32Array,
  fp32: { latency: number; outs: SpeechAffectOutput[]; windows: Float32Array[] },
  log: (l: string) => void,
  name: string,
): Promise<Int8Row> {
  log(`[bench] encoders: ${name}: int8 weight-quantised variant`);
  const opts = { ...loadOpts, modelsDir: STANDINS_INT8_DIR };
  const one = samples.slice(0, 16_000);
  const mib = sessionMemory(spec, STANDINS_INT8_DIR);
  const m = await OnnxSpeechModel.load(spec, opts);
  await m.runBatch([one]);
  try {
    const lat: number[] = [];
    for (let i = 0; i < plan.latencyRuns; i++) {
      const t0 = performance.now();
      await m.runBatch([one]);
      lat.push(performance.now() - t0);
    }
    const latency = at(round(median(lat), 2));
    const full = await timePath(fp32.windows, (w) => m.infer(w));
    let streamingChunked: PathRun | { skipped: string } = { skipped: 'no split graphs' };
    if (hasStreamingGraphs(spec, STANDINS_INT8_DIR)) {
      const sm = await StreamingSpeechModel.load(spec, { ...opts, streaming: { mode: 'chunked', leftContextFrames: plan.leftContextFrames } });
      try {
        await sm.infer(one);
        const st = sm.forStream('int8');
        const r = await timePath(fp32.windows, (w) => st.infer(w));
        streamingChunked = pathRun(fp32.windows.length, r.wallMs, r.cpuMs, null, r.loadAvg1);
        st.close();
      } finally {
        await sm.close();
      }
    }
    let streamingCached: Int8Row['streamingCached'] = { skipped: 'no step.onnx among the int8 graphs' };
    if (hasStreamingGraphs(spec, STANDINS_INT8_DIR, 'cached')) {
      const sm = await StreamingSpeechModel.load(spec, { ...opts, streaming: { mode: 'cached', stepWorkers: plan.stepWorkers } });
      try {
        await sm.infer(one);
        const st = sm.forStream('int8-cached');
        const r = await timePath(fp32.windows, (w) => st.infer(w));
        st.close();
        const oneStream = { ...pathRun(fp32.windows.length, r.wallMs, r.cpuMs, null, r.loadAvg1), ...deviation(fp32.outs, r.outs) };
        let conc: ConcurrentRun | undefined;
        if (plan.concurrentStreams > 0) {
          log(`[bench] encoders: ${name}: int8, ${plan.concurrentStreams} concurrent streams × ${plan.concurrentAudioSeconds} s, cached streaming`);
          const cw = windowsOf(samples, plan.concurrentAudioSeconds + 0.75);
          const handles = Array.from({ length: plan.concurrentStreams }, (_, i) => sm.forStream(`int8-conc-${i}`));
          await Promise.all(handles.map((h) => h.infer(cw[0] as Float32Array)));
          conc = await concurrent(
            plan.concurrentStreams,
            cw.slice(1),
            (i) => (w) => (handles[i] as StreamingSpeechStream).infer(w),
            () => sm.batcher.stats,
            null,
          );
          for (const h of handles) h.close();
        }
        streamingCached = { oneStream, ...(conc ? { concurrent: conc } : {}) };
      } finally {
        await sm.close();
      }
    }
    const onnx = spec.files.find((f) => f.path === spec.onnxFile);
    return {
      file: onnx ? path.relative(REPO_ROOT, modelFilePath(spec, onnx, STANDINS_INT8_DIR)) : '?',
      streamingCached,
      sessionMiB: round(mib, 1),
      latencyMsBatch1: latency,
      speedupBatch1: round(fp32.latency / latency.value, 2),
      fullWindow: pathRun(fp32.windows.length, full.wallMs, full.cpuMs, null, full.loadAvg1),
      streamingChunked,
      ...deviation(fp32.outs, full.outs),
    };
  } finally {
    await m.close();
  }
}

/** N streams, each sequential over its windows, all at once (batched by the model's batcher). */
async function concurrent(
  streams: number,
  windows: Float32Array[],
  inferFor: (i: number) => (w: Float32Array) => Promise<SpeechAffectOutput>,
  batchStats: () => { batches: number; batchedItems: number },
  onePass: number | null,
  onePassCpu: number | null = null,
): Promise<ConcurrentRun> {
  const s0 = { ...batchStats() };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const infer = inferFor(i);
      for (const w of windows) await infer(w);
    }),
  );
  const wallMs = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const s1 = batchStats();
  const audioSecondsPerStream = windows.length * 0.25;
  const cpuPerAudioS = (cu.user + cu.system) / 1e6 / (streams * audioSecondsPerStream);
  return {
    streams,
    audioSecondsPerStream,
    wallMs: round(wallMs, 1),
    realtimeStreams: round((streams * audioSecondsPerStream) / (wallMs / 1000), 2),
    redundancyTime: onePass ? round(wallMs / (streams * audioSecondsPerStream) / onePass, 2) : null,
    redundancyCpu: onePassCpu ? round((cpuPerAudioS * 1000) / onePassCpu, 2) : null,
    meanBatch: round((s1.batchedItems - s0.batchedItems) / Math.max(1, s1.batches - s0.batches), 2),
    cpuCoresPerStream: round(cpuPerAudioS, 4),
    streamsPerCore: round(1 / cpuPerAudioS, 2),
    loadAvg1: load1(),
  };
}

/** Measures one model (full-window path, and the streaming path when its split graphs exist). */
async function measure(
  name: string,
  spec: ModelSpec,
  modelsDir: string | undefined,
  device: Device,
  plan: EncodersPlan,
  samples: Float32Array,
  log: (l: string) => void,
  note?: string,
  parameters?: number,
): Promise<EncoderRow> {
  const onnx = spec.files.find((f) => f.path === spec.onnxFile);
  const file = onnx ? path.relative(REPO_ROOT, modelFilePath(spec, onnx, modelsDir)) : '?';
  // Bench calls go one at a time here; a wide batcher lets the concurrent run batch up to 32.
  const loadOpts = { device, ...(modelsDir ? { modelsDir } : {}), maxBatch: 32, maxQueue: 256, maxWaitMs: 10, intraOpThreads: plan.intraOpThreads };
  const fixedLen = spec.windowSamples ?? null;
  const win = fixedLen ?? 16_000;
  const one = samples.slice(0, win);
  const sessionMiB = at(sessionMemory(spec, modelsDir));
  const streamingSessionMiB = hasStreamingGraphs(spec, modelsDir) ? sessionMemory(spec, modelsDir, 'chunked') : undefined;
  const m = await OnnxSpeechModel.load(spec, loadOpts);
  await m.runBatch([one]);
  try {
    log(`[bench] encoders: ${name} (${spec.id}) on ${m.provider}: latency, throughput`);
    const lat: number[] = [];
    for (let i = 0; i < plan.latencyRuns; i++) {
      const t0 = performance.now();
      await m.runBatch([one]);
      lat.push(performance.now() - t0);
    }
    const latencyMsBatch1 = at(round(median(lat), 2));
    const pool = windowsOf(samples, 19);
    const throughput: Array<{ batch: number; windowsPerSec: number; msPerCall: number; loadAvg1: number }> = [];
    for (const b of plan.batchSizes) {
      const calls: number[] = [];
      const t0 = performance.now();
      while (calls.length < 2 || performance.now() - t0 < plan.batchTargetMs) {
        const batch = Array.from({ length: b }, (_, i) => pool[(calls.length * b + i) % pool.length] as Float32Array);
        const c0 = performance.now();
        await m.runBatch(batch);
        calls.push(performance.now() - c0);
      }
      const ms = median(calls);
      throughput.push({ batch: b, windowsPerSec: round((b * 1000) / ms, 2), msPerCall: round(ms, 2), loadAvg1: load1() });
    }
    let onePass: Loaded<number> | null = null;
    let onePassCpu: number | null = null;
    const seg = samples.slice(0, 4 * 16_000);
    /** One 4 s pass, CPU ms of this process per audio second (for the CPU-time redundancy, taken next to each run). */
    const onePassCpuNow = async (): Promise<number> => (await timed(() => m.runBatch([seg]))).cpuMs / 4;
    if (fixedLen === null) {
      await m.runBatch([seg]);
      const t: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { wallMs, cpuMs } = await timed(() => m.runBatch([seg]));
        t.push(wallMs);
        cpu.push(cpuMs / 4);
      }
      onePass = at(round(median(t) / 4, 2));
      onePassCpu = round(median(cpu), 2);
    }
    log(`[bench] encoders: ${name}: full-window path, one stream, ${plan.audioSeconds} s at 1 s / 250 ms`);
    const windows = windowsOf(samples, plan.audioSeconds);
    const full = await timePath(windows, (w) => m.infer(w));
    const fullWindow = pathRun(windows.length, full.wallMs, full.cpuMs, onePass?.value ?? null, full.loadAvg1);

    const streaming: Array<StreamingRun | { mode: StreamingMode; skipped: string }> = [];
    const streamModels: StreamingSpeechModel[] = [];
    let concurrentModel: StreamingSpeechModel | undefined;
    let onePassMacs: number | null = null;
    let framesExactness: EncoderRow['framesExactness'];
    let concurrentRow: EncoderRow['concurrent'];
    try {
      if (!hasStreamingGraphs(spec, modelsDir)) {
        streaming.push({
          mode: 'chunked',
          skipped: `no split graphs (streaming/) for ${spec.id}: the streaming path needs a frame-level encoder exported as frontend/encoder/head`,
        });
      } else {
        const hasStep = hasStreamingGraphs(spec, modelsDir, 'cached');
        if (!hasStep) streaming.push({ mode: 'cached', skipped: `no step.onnx for ${spec.id}: re-export with training/encoders/export_standins.py` });
        const configs: Array<{ mode: StreamingMode; ctx: number; recompute: number }> = [
          ...(hasStep ? [0, ...plan.recomputeSweep].map((recompute) => ({ mode: 'cached' as const, ctx: 0, recompute })) : []),
          ...plan.leftContextSweep.map((ctx) => ({ mode: 'chunked' as const, ctx, recompute: 0 })),
          ...(plan.framesMode ? [{ mode: 'frames' as const, ctx: 0, recompute: 0 }] : []),
        ];
        for (const { mode, ctx, recompute } of configs) {
          log(
            `[bench] encoders: ${name}: streaming path (${mode}${mode === 'chunked' ? `, ${ctx} frames left context` : ''}${recompute ? `, ${recompute} frames recomputed per hop` : ''}), one stream`,
          );
          const sm = await StreamingSpeechModel.load(spec, {
            ...loadOpts,
            streaming: { mode, leftContextFrames: ctx, recomputeFrames: recompute, stepWorkers: plan.stepWorkers },
          });
          // The concurrent run streams with the compute-once mode: cached when there is a step graph.
          if (hasStep ? mode === 'cached' && recompute === 0 : mode === 'chunked' && ctx === plan.leftContextFrames) concurrentModel = sm;
          else streamModels.push(sm);
          await sm.infer(one);
          onePassMacs ??= onePassMacsPerSecond(sm);
          const st: StreamingSpeechStream = sm.forStream(`bench-${mode}`);
          const before = { ...sm.stats };
          const r = await timePath(windows, (w) => st.infer(w));
          const adv = sm.stats.advancedSamples - before.advancedSamples;
          const frames = adv / sm.info.frameStrideSamples;
          const macs = sm.stats.macs - before.macs;
          const run = pathRun(windows.length, r.wallMs, r.cpuMs, onePass?.value ?? null, r.loadAvg1, onePassMacs ? macs / (adv / 16_000) / onePassMacs : null);
          streaming.push({
            ...run,
            mode,
            leftContextFrames: ctx,
            ...(mode === 'cached' ? { recomputeFrames: recompute } : {}),
            ...deviation(full.outs, r.outs),
            redundancyFrontend: round((sm.stats.frontendSamples - before.frontendSamples) / adv, 3),
            redundancyEncoder: round((sm.stats.encoderFrames - before.encoderFrames) / frames, 3),
            cacheBytesPerStream: sm.cacheBytes,
            // the model's cached head (models/cached-head.ts) when it was fitted for this setting, and the windows it read
            ...(mode === 'cached'
              ? { cachedHead: sm.cachedHead ? path.basename(sm.cachedHead) : null, cachedHeadWindows: sm.stats.cachedHeadWindows - before.cachedHeadWindows }
              : {}),
          });
          st.close();
          if (sm !== concurrentModel) {
            streamModels.splice(streamModels.indexOf(sm), 1);
            await sm.close();
          }
        }
        if (concurrentModel) streamModels.push(concurrentModel);
        if (plan.exactnessWindows > 0) framesExactness = await exactness(spec, loadOpts, samples, plan.exactnessWindows, log, name);
      }
      if (plan.concurrentStreams > 0) {
        log(
          `[bench] encoders: ${name}: ${plan.concurrentStreams} concurrent streams × ${plan.concurrentAudioSeconds} s, full-window vs streaming (batched across streams)`,
        );
        const cw = windowsOf(samples, plan.concurrentAudioSeconds + 0.75);
        const cpuRef =
          fixedLen === null ? async (): Promise<number> => ((await onePassCpuNow()) + (await onePassCpuNow())) / 2 : (): Promise<null> => Promise.resolve(null);
        // The bare session at the batch the run will form (every stream's window at once: 32 here, at most maxBatch),
        // timed before and after the concurrent run, so the reference samples the box's speed on both sides of it.
        const bareB = Math.min(plan.concurrentStreams, loadOpts.maxBatch);
        const bareCalls = Math.max(2, Math.min(4, Math.ceil((plan.concurrentStreams * cw.length) / bareB / 2)));
        const bareFull: Array<{ wallMs: number; cpuMs: number }> = [];
        const timeBareFull = async (): Promise<void> => {
          for (let i = 0; i < bareCalls; i++) {
            const batch = Array.from({ length: bareB }, (_, j) => cw[(bareFull.length * bareB + j) % cw.length] as Float32Array);
            const { wallMs, cpuMs } = await timed(() => m.runBatch(batch));
            bareFull.push({ wallMs, cpuMs });
          }
        };
        await timeBareFull();
        const fullC = await concurrent(
          plan.concurrentStreams,
          cw,
          () => (w) => m.infer(w),
          () => m.batcher.stats,
          onePass?.value ?? null,
          await cpuRef(),
        );
        await timeBareFull();
        const sm = concurrentModel;
        let streamC: ConcurrentRun | { skipped: string } = { skipped: 'no streaming path' };
        let streamingBare: { hopsPerSec: number; efficiency: number; bestHopsPerSec: number; efficiencyCpu: number; calls: number } | undefined;
        let streamingTimeSplit: { stepMs: number; workerPackMs: number; mainThreadMs: number } | undefined;
        if (sm) {
          const handles = Array.from({ length: plan.concurrentStreams }, (_, i) => sm.forStream(`conc-${i}`));
          // Each stream's first window is computed whole (a fresh cache); time the steady state after it.
          await Promise.all(handles.map((h) => h.infer(cw[0] as Float32Array)));
          const t0 = { ...sm.stats };
          streamC = await concurrent(
            plan.concurrentStreams,
            cw.slice(1),
            (i) => (w) => (handles[i] as StreamingSpeechStream).infer(w),
            () => sm.batcher.stats,
            onePass?.value ?? null,
            await cpuRef(),
          );
          streamingTimeSplit = {
            stepMs: round(sm.stats.sessionMs - t0.sessionMs, 1),
            workerPackMs: round(sm.stats.workerPackMs - t0.workerPackMs, 1),
            mainThreadMs: round(sm.stats.hostMs - t0.hostMs, 1),
          };
          for (const h of handles) h.close();
          if (sm.options.mode === 'cached' && !('skipped' in streamC)) {
            // The bare step session at the batch the run formed and the steady-state shape (13 new, 37 cached frames), right after it:
            // as many calls as the run had batches (at least 3), median wall and mean CPU per call, so both sides are sampled alike.
            const b = Math.max(1, Math.round(streamC.meanBatch));
            const calls = Math.max(3, Math.min(8, Math.round((plan.concurrentStreams * (cw.length - 1)) / b)));
            const t: Array<{ wallMs: number; cpuMs: number }> = [];
            for (let i = 0; i < calls; i++) t.push(await sm.timeBareStep(b, 13, 37));
            const hopsPerSec = (b * 1000) / median(t.map((x) => x.wallMs));
            const runHops = (streamC.streams * (cw.length - 1)) / (streamC.wallMs / 1000);
            const bareCpuPerHop = t.reduce((a, x) => a + x.cpuMs, 0) / (calls * b);
            const runCpuPerHop = cpuMsPerHop(streamC);
            streamingBare = {
              hopsPerSec: round(hopsPerSec, 2),
              efficiency: round(runHops / hopsPerSec, 3),
              bestHopsPerSec: round((b * 1000) / Math.min(...t.map((x) => x.wallMs)), 2),
              efficiencyCpu: round(bareCpuPerHop / runCpuPerHop, 3),
              calls,
            };
          }
        }
        // Median of the calls before and after (the cached path's reference is a median too); best call reported beside it.
        const bareWps = (bareB * 1000) / median(bareFull.map((x) => x.wallMs));
        const bareBestWps = (bareB * 1000) / Math.min(...bareFull.map((x) => x.wallMs));
        const bareCpuPerWindow = bareFull.reduce((a, x) => a + x.cpuMs, 0) / (bareFull.length * bareB);
        const fullWps = (fullC.streams * cw.length) / (fullC.wallMs / 1000);
        concurrentRow = {
          fullWindow: fullC,
          streaming: streamC,
          bareAtSameBatch: round(bareWps, 2),
          bareBestAtSameBatch: round(bareBestWps, 2),
          bareBatch: bareB,
          bareCalls: bareFull.length,
          batchingEfficiency: round(fullWps / bareWps, 3),
          batchingEfficiencyBest: round(fullWps / bareBestWps, 3),
          batchingEfficiencyCpu: round(bareCpuPerWindow / cpuMsPerHop(fullC), 3),
          ...(sm ? { streamingMode: sm.options.mode } : {}),
          ...(sm && sm.stepWorkers > 0 ? { streamingStepWorkers: sm.stepWorkers, streamingThreadsPerWorker: sm.intraOpThreads } : {}),
          ...(streamingBare
            ? {
                streamingBareHopsPerSec: streamingBare.hopsPerSec,
                streamingBareBestHopsPerSec: streamingBare.bestHopsPerSec,
                streamingBareCalls: streamingBare.calls,
                streamingBatchingEfficiency: streamingBare.efficiency,
                streamingBatchingEfficiencyCpu: streamingBare.efficiencyCpu,
              }
            : {}),
          ...(streamingTimeSplit ? { streamingTimeSplit } : {}),
        };
      }
    } finally {
      for (const sm of streamModels) await sm.close();
    }
    let int8: EncoderRow['int8'];
    if (plan.int8 && modelsDir === STANDINS_DIR) {
      const q = ensureInt8([spec.id], log);
      int8 = q.error
        ? { skipped: q.error }
        : await measureInt8(spec, loadOpts, plan, samples, { latency: latencyMsBatch1.value, outs: full.outs, windows }, log, name).catch((err: unknown) => ({
            skipped: String(err),
          }));
    }
    const fullMacsRedundancy = onePassMacs && streamModels[0] ? (4 * windowMacs(streamModels[0])) / onePassMacs : null;
    return {
      name,
      specId: spec.id,
      file,
      ...(note ? { note } : {}),
      device,
      provider: m.provider,
      intraOpThreads: m.intraOpThreads,
      ...(parameters ? { parameters } : {}),
      sessionMiB,
      ...(streamingSessionMiB === undefined ? {} : { streamingSessionMiB }),
      latencyMsBatch1,
      throughput,
      onePassMsPerAudioSecond: onePass,
      ...(onePassCpu !== null ? { onePassCpuMsPerAudioSecond: onePassCpu } : {}),
      fullWindow: { ...fullWindow, redundancyMacs: fullMacsRedundancy === null ? null : round(fullMacsRedundancy, 3) },
      streaming,
      ...(concurrentRow ? { concurrent: concurrentRow } : {}),
      ...(framesExactness ? { framesExactness } : {}),
      ...(int8 ? { int8 } : {}),
      ...(onePassMacs ? { onePassMacsPerSecond: onePassMacs } : {}),
    };
  } finally {
    await m.close();
  }
}

/** The trained default speech model: `speech-va` when its files are present, else `speech-fixture`. */
export function defaultSpeechModel(): { spec: ModelSpec; note: string } {
  const va = findModelSpec('speech-va');
  if (va && va.files.every((f) => existsSync(modelFilePath(va, f)))) return { spec: va, note: 'the trained default speech model (speech-va)' };
  return {
    spec: MODEL_SPECS['speech-fixture'],
    note: va
      ? 'speech-va files not found; timed speech-fixture instead'
      : 'speech-va is not in the manifest yet; timed speech-fixture (the current default) instead',
  };
}

/** Runs the section. */
export async function benchEncoders(o: {
  encoders: readonly StandinName[];
  device: Device;
  quick: boolean;
  samples: Float32Array;
  log: (l: string) => void;
  plan?: EncodersPlan;
}): Promise<EncodersSection> {
  const plan = o.plan ?? encodersPlan(o.quick);
  const notes: string[] = [
    "Stand-ins have random weights: their speed is the real architecture's, their outputs mean nothing; deviations are relative to their own full-window outputs.",
    'Real-time streams per core = audio seconds per CPU core-second of the whole process (ORT intra-op threads included); one stream "on this machine" = 1 ÷ RTF (one call at a time, each using every core); the concurrent run batches N streams.',
    'Session memory: RSS growth of a fresh child process that loads the model and runs one window (and a batch of 8), so earlier sessions cannot hide it.',
  ];
  const rows: Array<EncoderRow | { name: string; skipped: string }> = [];
  const device: Device = o.device === 'cuda' && !cudaProviderInstalled() ? 'cpu' : o.device;
  let cuda: { skipped: string } | undefined;
  if (!cudaProviderInstalled()) {
    cuda = {
      skipped: `${o.device === 'cuda' ? '--device cuda was asked, but ' : ''}no CUDA provider on this machine (no GPU, or onnxruntime-node installed without libonnxruntime_providers_cuda): CUDA rows not measured, CPU rows only. On a GPU machine: npm ci --onnxruntime-node-install=cuda12, then npm run bench -- --sections encoders --encoders base,large --device cuda`,
    };
  }
  const build = ensureStandins(o.encoders, o.log);
  for (const name of o.encoders) {
    const spec = findModelSpec(STANDINS[name]) as ModelSpec;
    if (build.error && !existsSync(path.join(STANDINS_DIR, spec.id, 'model.onnx'))) {
      rows.push({ name, skipped: build.error });
      continue;
    }
    try {
      let parameters: number | undefined;
      try {
        const info = JSON.parse(readFileSync(path.join(STANDINS_DIR, spec.id, 'standin.json'), 'utf8')) as { parameters?: number };
        parameters = info.parameters;
      } catch {
        parameters = undefined;
      }
      rows.push(await measure(name, spec, STANDINS_DIR, device, plan, o.samples, o.log, `stand-in for ${spec.id} (random weights)`, parameters));
    } catch (err) {
      rows.push({ name, skipped: `${err instanceof AffectError ? err.describe() : String(err)}` });
    }
  }
  const def = defaultSpeechModel();
  try {
    rows.push(await measure('default', def.spec, undefined, device, plan, o.samples, o.log, def.note));
  } catch (err) {
    const why = `${def.spec.id}: ${err instanceof AffectError ? err.describe() : String(err)}`;
    if (def.spec.id === 'speech-fixture') rows.push({ name: 'default', skipped: why });
    else {
      // The trained model could not be loaded (e.g. being retrained): time the fixture and say why.
      try {
        rows.push(
          await measure(
            'default',
            MODEL_SPECS['speech-fixture'],
            undefined,
            device,
            plan,
            o.samples,
            o.log,
            `${def.spec.id} could not be loaded (${why.split('\n')[0] ?? why}); timed speech-fixture instead`,
          ),
        );
      } catch (err2) {
        rows.push({ name: 'default', skipped: `${why}; speech-fixture: ${String(err2)}` });
      }
    }
  }
  return { windowMs: 1000, hopMs: 250, device, rows, ...(cuda ? { cuda } : {}), notes };
}

/** Summary lines for the bench's printed table. */
export function formatEncoders(s: EncodersSection): string[] {
  const L: string[] = ['', `encoders (window ${s.windowMs} ms, hop ${s.hopMs} ms, ${s.device}; load average in brackets)`];
  for (const r of s.rows) {
    if ('skipped' in r) {
      L.push(`  ${r.name}: skipped — ${r.skipped}`);
      continue;
    }
    L.push(
      `  ${r.name} = ${r.specId}${r.parameters ? ` (${(r.parameters / 1e6).toFixed(1)} M params)` : ''} on ${r.provider} (${r.intraOpThreads === undefined ? 'intra-op threads not recorded' : threadCountText(r.intraOpThreads)}): session ${r.sessionMiB.value} MiB${r.streamingSessionMiB === undefined ? '' : ` (streaming ${r.streamingSessionMiB} MiB)`}, 1 s window at batch 1 ${r.latencyMsBatch1.value} ms [${r.latencyMsBatch1.loadAvg1}]${r.onePassMsPerAudioSecond ? `, one pass ${r.onePassMsPerAudioSecond.value} ms per audio s` : ''}`,
    );
    L.push(`    windows/s by batch: ${r.throughput.map((p) => `${p.batch}: ${p.windowsPerSec}`).join('   ')}`);
    const f = r.fullWindow;
    L.push(
      `    full-window path: rtf ${f.rtf}, ${f.cpuCoresPerStream} cores/stream, ${f.streamsPerCore} streams/core, ${f.streamsThisMachine} on this machine, redundancy ${f.redundancyTime ?? 'n/a'} by time, ${f.redundancyMacs ?? 'n/a'} by MACs [${f.loadAvg1}]`,
    );
    for (const st of r.streaming) {
      if ('skipped' in st) L.push(`    streaming (${st.mode}): skipped — ${st.skipped}`);
      else
        L.push(
          `    streaming (${st.mode}${st.mode === 'chunked' ? `, ${st.leftContextFrames} frames left context` : ''}${st.recomputeFrames ? `, ${st.recomputeFrames} frames recomputed per hop` : ''}${st.cachedHead ? `, cached head: ${st.cachedHeadWindows ?? 0} windows` : ''}): rtf ${st.rtf}, ${st.streamsPerCore} streams/core, ${st.streamsThisMachine} on this machine, redundancy ${st.redundancyTime ?? 'n/a'} by time, ${st.redundancyMacs ?? 'n/a'} by MACs (frames: conv ${st.redundancyFrontend}, transformer ${st.redundancyEncoder}), max |Δ| ${st.maxAbsDiff} (output sd ${st.outputSd}), min cos ${st.minEmbeddingCosine} [${st.loadAvg1}]`,
        );
    }
    if (r.framesExactness)
      L.push(
        'skipped' in r.framesExactness
          ? `    frames-mode exactness: skipped — ${r.framesExactness.skipped}`
          : `    frames-mode exactness (normalisation off, ${r.framesExactness.windows} windows): max |Δ| ${r.framesExactness.maxAbsDiff.toExponential(2)}, embedding ${r.framesExactness.maxEmbeddingAbsDiff.toExponential(2)}`,
      );
    if (r.int8) {
      const q = r.int8;
      L.push(
        'skipped' in q
          ? `    int8: skipped — ${q.skipped}`
          : `    int8 (weights of every MatMul, per-column scales; conv front end fp32): batch 1 ${q.latencyMsBatch1.value} ms (×${q.speedupBatch1} vs fp32), full-window rtf ${q.fullWindow.rtf}, ${q.fullWindow.streamsPerCore} streams/core${'skipped' in q.streamingChunked ? '' : `, chunked streaming rtf ${q.streamingChunked.rtf}, ${q.streamingChunked.streamsPerCore} streams/core`}; vs fp32 max |Δ| ${q.maxAbsDiff} (output sd ${q.outputSd}), min cos ${q.minEmbeddingCosine} [${q.latencyMsBatch1.loadAvg1}]`,
      );
      const c = 'skipped' in q ? undefined : q.streamingCached;
      if (c)
        L.push(
          'skipped' in c
            ? `    int8 cached streaming: skipped — ${c.skipped}`
            : `    int8 cached streaming: one stream rtf ${c.oneStream.rtf}, ${c.oneStream.streamsPerCore} streams/core, vs fp32 full window max |Δ| ${c.oneStream.maxAbsDiff} (mean ${c.oneStream.meanAbsDiff}, output sd ${c.oneStream.outputSd}), min cos ${c.oneStream.minEmbeddingCosine} [${c.oneStream.loadAvg1}]${c.concurrent ? `; ${c.concurrent.streams} concurrent streams: ${c.concurrent.realtimeStreams} real-time streams, ${c.concurrent.streamsPerCore} streams/core by CPU time (mean batch ${c.concurrent.meanBatch}) [${c.concurrent.loadAvg1}]` : ''}`,
        );
    }
    if (r.concurrent) {
      const c = r.concurrent;
      const sc =
        'skipped' in c.streaming
          ? `skipped — ${c.streaming.skipped}`
          : `${c.streaming.realtimeStreams} real-time streams, ${c.streaming.streamsPerCore} streams/core by CPU time (mean batch ${c.streaming.meanBatch}${c.streamingBatchingEfficiency !== undefined ? `, batching efficiency ${c.streamingBatchingEfficiency} by wall, ${c.streamingBatchingEfficiencyCpu ?? 'n/a'} by CPU time vs the bare step session` : ''}${c.streamingTimeSplit ? `; wall in step calls ${c.streamingTimeSplit.stepMs} ms (worker packing caches ${c.streamingTimeSplit.workerPackMs} ms), main thread ${c.streamingTimeSplit.mainThreadMs} ms` : ''}) [${c.streaming.loadAvg1}]`;
      L.push(
        `    ${c.fullWindow.streams} concurrent streams: full-window ${c.fullWindow.realtimeStreams} real-time streams, ${c.fullWindow.streamsPerCore} streams/core by CPU time (mean batch ${c.fullWindow.meanBatch}, batching efficiency ${c.batchingEfficiency} by wall vs the bare median${c.batchingEfficiencyBest !== undefined ? ` (${c.batchingEfficiencyBest} vs its best call)` : ''}, ${c.batchingEfficiencyCpu ?? 'n/a'} by CPU time) [${c.fullWindow.loadAvg1}]; streaming (${c.streamingMode ?? 'n/a'}${c.streamingStepWorkers ? `, ${c.streamingStepWorkers} step worker${c.streamingStepWorkers === 1 ? '' : 's'} × ${c.streamingThreadsPerWorker ?? '?'} thread${c.streamingThreadsPerWorker === 1 ? '' : 's'}` : ''}) ${sc}; redundancy by time ${c.fullWindow.redundancyTime ?? 'n/a'} vs ${'skipped' in c.streaming ? 'n/a' : (c.streaming.redundancyTime ?? 'n/a')}, by CPU time ${c.fullWindow.redundancyCpu ?? 'n/a'} vs ${'skipped' in c.streaming ? 'n/a' : (c.streaming.redundancyCpu ?? 'n/a')}`,
      );
    }
  }
  if (s.cuda) L.push(`  cuda: skipped — ${s.cuda.skipped}`);
  return L;
}
