/**
 * Compute-once streaming for frame-level speech encoders (wav2vec 2.0 family), issue 14.
 *
 * The full-window path runs the whole encoder on every 1 s window, and at a 250 ms hop every
 * sample goes through it four times. This adapter runs a model split into three ONNX graphs
 * (written by `training/encoders/export_standins.py` next to the full `model.onnx`, under
 * `<model folder>/streaming/`):
 *
 * - `frontend.onnx`  signal [b, samples] → features [b, frames, C]: the convolutional feature
 *   encoder (stride 320 samples, receptive field 400);
 * - `encoder.onnx`   features [b, frames, C] → frame_hidden [b, frames, D]: projection + transformer;
 * - `head.onnx`      pooled [b, D] → logits [b, 3]: the regression head on the mean-pooled state.
 *
 * Per stream it keeps the last window and the conv frames (and, in `chunked` mode, the
 * transformer's output frames) by absolute sample position, so the overlap of consecutive windows
 * is not recomputed:
 *
 * - `frames`: the conv front end runs once per new hop of audio (per frame-grid phase: a 4000-sample
 *   hop is 12.5 frames, so windows alternate between two grids and each grid's frames are computed
 *   once), its frames are cached, and the transformer runs on the window's cached frames. Exact
 *   (float tolerance) for layer-norm front ends on un-normalised input; a group-norm front end
 *   (wav2vec2-base) normalises over the whole segment, so cached frames differ from the window's.
 * - `chunked`: frames on one grid; per hop only the new frames go through the transformer, with
 *   `leftContextFrames` cached frames of left context, and the window's state is the mean of the
 *   cached output frames inside it. Approximate (each frame sees its left context and the hop, not
 *   the whole window); the encoder's redundancy is (context + new) / new instead of window / hop.
 *
 * Stream positions come from the audio itself: a window continues the stream's previous window when
 * its first samples equal the previous window's samples `k × hopSamples` later (k ≥ 0), so the cache
 * is only ever reused for identical audio; anything else (a restart, a gap after dropped windows, a
 * different length) starts the stream's cache afresh. With `zero-mean-unit-var` input
 * normalisation, new audio is normalised with the current window's statistics and cached frames keep
 * the statistics of the window that computed them (not exact; the bench measures the deviation).
 *
 * Caches are bounded (frames older than the current window, plus the left context, are evicted on
 * every call) and freed by the stream's `close()`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AffectError } from '../core/errors.js';
import { getLogger } from '../core/log.js';
import { DynamicBatcher } from './batcher.js';
import { CACHED_HEAD_SETTINGS, MAX_SPANS, resolveCachedHead, type CachedHeadSetting } from './cached-head.js';
import { assertDeviceAvailable, providersFor } from './device.js';
import { modelRoot } from './files.js';
import type { LoadModelOptions } from './load-options.js';
import type { AffectOutputMapping, ModelSpec } from './manifest.js';
import type { SpeechAffectModel, SpeechAffectOutput } from './ports.js';
import { decodeSpeechRow, normalizeWindow } from './speech-onnx.js';
import { resolveIntraOpThreads, threadsText, type IntraOpThreads } from './threads.js';
import { OrtWorkerSession, type WireTensor } from './worker/host.js';
import { StepWorkerSession, type StepRow } from './worker/step-host.js';

/** Which compute-once strategy to run. */
export type StreamingMode = 'cached' | 'frames' | 'chunked';

/** The modes, for validation and help text. */
export const STREAMING_MODES: readonly StreamingMode[] = ['cached', 'frames', 'chunked'];

/** Options of {@link StreamingSpeechModel}. */
export interface StreamingSpeechOptions {
  /**
   * `cached` (each sample through the whole model once: conv frames and every layer's keys/values
   * cached per stream, one `step.onnx` call per hop), `frames` (conv cache, transformer per window;
   * exact for layer-norm front ends) or `chunked` (transformer per hop with left context). Default `cached`.
   */
  mode: StreamingMode;
  /** `chunked`: cached frames (20 ms each) of left context the new frames of a hop attend to. Default 6. */
  leftContextFrames: number;
  /** The pipeline's hop in samples (windows are matched to the previous one at multiples of it). Default 4000 (250 ms). */
  hopSamples: number;
  /**
   * `cached`: the stream's last cached frames (20 ms each) recomputed with every hop, so their
   * keys/values and hidden states see one more hop of right context: a middle setting between
   * compute-once (0, the default) and the full window (a whole window, about 49). Work grows by
   * about this many frames per hop (redundancy ≈ 1 + n / 12.5 at a 250 ms hop).
   */
  recomputeFrames: number;
  /** `cached`: streams whose caches the step worker keeps at most (least recently used evicted; its next window starts afresh). Default 1024. */
  maxCachedStreams: number;
  /**
   * `cached`: step workers, each with its own session and a share of the streams (a stream's caches
   * live in one worker; every batch runs on all of them at once). `auto` (default): on the CPU
   * provider one worker per intra-op thread the model would get (at most {@link MAX_STEP_WORKERS}),
   * each with one thread (more CPU-efficient than one session's threads: docs/bench.md); one worker on
   * a GPU. The automatic thread count is shared out between the workers; a count set in
   * `intraOpThreads` applies to each. Each worker holds a copy of the weights.
   */
  stepWorkers: number | 'auto';
  /**
   * `cached`: the head refitted for the cached pooled states (`streaming/cached-head.onnx`,
   * models/cached-head.ts): `auto` (default) uses it when it was fitted for this hop and
   * recomputeFrames, `on` requires it, `off` keeps the model's head everywhere.
   */
  cachedHead: CachedHeadSetting;
  /**
   * `cached`: return each window's span means (the window split into this many equal spans, each
   * span's mean last hidden state) with its output as `spanMeans`: the pairs a cached head is fitted
   * on (bench/encoders-tolerance.ts --dump). 0 (default): none.
   */
  returnSpanMeans: number;
}

/** The most step workers `auto` opens. */
export const MAX_STEP_WORKERS = 4;

export const DEFAULT_STREAMING_SPEECH: StreamingSpeechOptions = {
  mode: 'cached',
  leftContextFrames: 6,
  hopSamples: 4000,
  recomputeFrames: 0,
  maxCachedStreams: 1024,
  stepWorkers: 'auto',
  cachedHead: 'auto',
  returnSpanMeans: 0,
};

/** `streaming/streaming.json`, written by the export script. */
export interface StreamingGraphInfo {
  readonly frameStrideSamples: number;
  readonly receptiveFieldSamples: number;
  /** `layer_norm` (frames mode exact) or `group_norm` (not exact). */
  readonly frontEnd: string;
  readonly featureDim: number;
  readonly hiddenDim: number;
  /** Architecture, for counting multiply-accumulates (absent in hand-made exports: no MAC counts then). */
  readonly layers?: number;
  readonly heads?: number;
  readonly ffDim?: number;
  readonly posConvKernelFrames?: number;
  readonly posConvGroups?: number;
  /** Conv layers as [channels, kernel, stride]. */
  readonly convLayers?: ReadonlyArray<readonly [number, number, number]>;
  /** `cached` mode: frames of positional-conv left context `step.onnx` takes (K // 2). */
  readonly posContextFrames?: number;
  /** `cached` mode: the step graph's file name (present when the export wrote one). */
  readonly stepGraph?: string;
}

/** Multiply-accumulates of the conv front end on a segment of `samples` samples (null without convLayers). */
export function frontendMacs(info: StreamingGraphInfo, samples: number): number | null {
  if (!info.convLayers) return null;
  let len = samples;
  let cin = 1;
  let macs = 0;
  for (const [c, k, s] of info.convLayers) {
    const out = Math.floor((len - k) / s) + 1;
    if (out <= 0) break;
    macs += out * c * cin * k;
    len = out;
    cin = c;
  }
  return macs;
}

/** Multiply-accumulates of projection + positional conv + transformer on `frames` frames (attention included). */
export function encoderMacs(info: StreamingGraphInfo, frames: number): number | null {
  const { layers: L, ffDim: F, posConvKernelFrames: K, posConvGroups: G } = info;
  if (L === undefined || F === undefined || K === undefined || G === undefined) return null;
  const T = frames;
  const D = info.hiddenDim;
  return T * info.featureDim * D + T * D * (D / G) * K + L * (4 * T * D * D + 2 * T * T * D + 2 * T * D * F);
}

/** Multiply-accumulates of the regression head per window (dense D×D, out D×3). */
export function headMacs(info: StreamingGraphInfo): number {
  return info.hiddenDim * info.hiddenDim + 3 * info.hiddenDim;
}

/** Work counters (for the redundancy factor and the tests). */
export interface StreamingStats {
  /** Windows served. */
  windows: number;
  /** New audio the windows brought, samples (a fresh window counts whole). */
  advancedSamples: number;
  /** Conv frames computed. */
  frontendFrames: number;
  /** Samples fed to the conv front end. */
  frontendSamples: number;
  /** Frames fed to the transformer (context included). */
  encoderFrames: number;
  /** Windows that could not reuse the stream's cache (fresh stream, restart, gap). */
  cacheResets: number;
  /** Multiply-accumulates spent (front end + transformer + head), when streaming.json describes the architecture. */
  macs: number;
  /** Wall ms inside session calls (worker round trips included). */
  sessionMs: number;
  /** Wall ms of the batch functions outside session calls (placing, packing caches, unpacking, decoding). */
  hostMs: number;
  /** cached: ms the step worker spent packing and unpacking caches around its session calls (part of `sessionMs`). */
  workerPackMs: number;
  /** cached: steps the worker refused because a stream's cache was not there as expected (those streams restarted). */
  cacheLost: number;
  /** cached: windows read by the cached head (`cached-head.onnx`) instead of the model's. */
  cachedHeadWindows: number;
}

/** One stream's state. */
interface StreamState {
  readonly id: string;
  prev: Float32Array | undefined;
  /** Absolute end (exclusive) of `prev`, samples. */
  endPos: number;
  /** Conv features by absolute frame start sample. */
  readonly feats: Map<number, Float32Array>;
  /** chunked: transformer output frames by absolute frame start sample. */
  readonly hidden: Map<number, Float32Array>;
  /** chunked / cached: next frame start (grid position) not yet through the transformer. */
  nextPos: number;
  /** chunked: unused; kept for the cache-size figures. */
  readonly proj: Map<number, Float32Array>;
  /** cached: the stream's number in the step worker, which holds its keys/values, hidden states and projections. */
  readonly serial: number;
  /** cached: cache generation; a restart starts a new one, so the worker never reuses an old cache for new audio. */
  gen: number;
  /** cached: positions of the frames the worker caches for this stream (a mirror; the data stay in the worker). */
  readonly kvPos: number[];
  /** cached: the worker's cache size for this stream after its last step. */
  workerFrames: number;
  workerBytes: number;
  closed: boolean;
  tail: Promise<unknown>;
}

interface Job {
  readonly state: StreamState;
  readonly samples: Float32Array;
  /** Stateless one-off window (the port's plain `infer`). */
  readonly oneOff: boolean;
}

/** A window's output from the streaming model: the port's, plus the span means when asked for (`returnSpanMeans`). */
export interface StreamedSpeechOutput extends SpeechAffectOutput {
  /** [spans × D] (`returnSpanMeans`, cached mode): each span's mean last hidden state (a span without frames is zeros). */
  readonly spanMeans?: Float32Array;
}

/** A per-stream handle with the same `infer` shape as the model port. */
export interface StreamingSpeechStream {
  readonly streamId: string;
  readonly windowSamples: number | null;
  infer(samples: Float32Array): Promise<StreamedSpeechOutput>;
  /** Frees the stream's cache. Idempotent. */
  close(): void;
}

const GRAPHS = {
  frontend: { file: 'frontend.onnx', inputs: ['signal'], outputs: ['features'] },
  encoder: { file: 'encoder.onnx', inputs: ['features'], outputs: ['frame_hidden'] },
  head: { file: 'head.onnx', inputs: ['pooled'], outputs: ['logits'] },
} as const;

const STEP_GRAPH = {
  file: 'step.onnx',
  inputs: ['signal', 'frame_mask', 'pos_ctx', 'kv_mem', 'mem_mask', 'hidden_sum', 'hidden_count'],
  outputs: ['frame_hidden', 'proj', 'kv_new', 'hidden_states', 'logits'],
} as const;

/** Folder of a spec's split graphs. */
export function streamingDir(spec: ModelSpec, modelsDir?: string): string {
  return path.join(modelRoot(spec, modelsDir), 'streaming');
}

/** True when the graphs a mode needs (default: the split graphs of `frames` / `chunked`) are present. */
export function hasStreamingGraphs(spec: ModelSpec, modelsDir?: string, mode: StreamingMode = 'chunked'): boolean {
  const dir = streamingDir(spec, modelsDir);
  const files = mode === 'cached' ? [STEP_GRAPH.file] : Object.values(GRAPHS).map((g) => g.file);
  return ['streaming.json', ...files].every((f) => existsSync(path.join(dir, f)));
}

/** Reads and checks `streaming.json`. */
export function readStreamingInfo(spec: ModelSpec, modelsDir?: string): StreamingGraphInfo {
  const file = path.join(streamingDir(spec, modelsDir), 'streaming.json');
  const hint = `export the split graphs: /usr/bin/python3 -m training.encoders.export_standins (stand-ins), or split your own export the same way (docs/bench.md "Compute-once streaming")`;
  if (!existsSync(file))
    throw new AffectError('AFFECT_ERR_MODEL_MISSING', `model ${spec.id}: ${file} not found (streaming needs the split graphs)`, { stage: spec.id, hint });
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', `model ${spec.id}: ${file} is not JSON`, { stage: spec.id, hint, cause: err });
  }
  const r = raw as Record<string, unknown>;
  for (const k of ['frameStrideSamples', 'receptiveFieldSamples', 'featureDim', 'hiddenDim'] as const) {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new AffectError('AFFECT_ERR_MODEL_LOAD', `model ${spec.id}: ${file}: ${k} must be a positive integer, got ${JSON.stringify(v)}`, {
        stage: spec.id,
        hint,
      });
    }
  }
  if (typeof r['frontEnd'] !== 'string')
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', `model ${spec.id}: ${file}: frontEnd must be a string`, { stage: spec.id, hint });
  return r as unknown as StreamingGraphInfo;
}

/** The `--speech-streaming` flag's values: `off` or a streaming mode. */
export type SpeechStreamingFlag = 'off' | StreamingMode;

/** Help text of `--speech-streaming` (run, serve, bench). */
export const SPEECH_STREAMING_HELP =
  "'off' (default: the whole model on every window), 'cached' (each sample through the model once: conv frames and every layer's keys/values cached per stream; needs the model's streaming/step.onnx), 'frames' (conv frames cached, transformer per window; exact for layer-norm front ends) or 'chunked' (transformer per hop with left context)";

/** Parses `--speech-streaming` (commander argParser): RangeError naming the flag and its values. */
export function parseSpeechStreaming(v: string): SpeechStreamingFlag {
  const x = v.trim().toLowerCase();
  if (x === 'off' || (STREAMING_MODES as readonly string[]).includes(x)) return x as SpeechStreamingFlag;
  throw new RangeError(`--speech-streaming must be one of off, ${STREAMING_MODES.join(', ')}; got "${v}"`);
}

/** Validates streaming options (RangeError naming the option). */
export function resolveStreamingOptions(opts: Partial<StreamingSpeechOptions> = {}): StreamingSpeechOptions {
  const set = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<StreamingSpeechOptions>;
  const o = { ...DEFAULT_STREAMING_SPEECH, ...set };
  if (!STREAMING_MODES.includes(o.mode)) throw new RangeError(`streaming speech: mode must be one of ${STREAMING_MODES.join(', ')}, got ${String(o.mode)}`);
  if (!Number.isInteger(o.leftContextFrames) || o.leftContextFrames < 0 || o.leftContextFrames > 500) {
    throw new RangeError(`streaming speech: leftContextFrames must be an integer in [0, 500], got ${o.leftContextFrames}`);
  }
  if (!Number.isInteger(o.hopSamples) || o.hopSamples < 1) throw new RangeError(`streaming speech: hopSamples must be an integer >= 1, got ${o.hopSamples}`);
  if (!Number.isInteger(o.recomputeFrames) || o.recomputeFrames < 0 || o.recomputeFrames > 500) {
    throw new RangeError(`streaming speech: recomputeFrames must be an integer in [0, 500], got ${o.recomputeFrames}`);
  }
  if (!Number.isInteger(o.maxCachedStreams) || o.maxCachedStreams < 1) {
    throw new RangeError(`streaming speech: maxCachedStreams must be an integer >= 1, got ${o.maxCachedStreams}`);
  }
  if (!Number.isInteger(o.returnSpanMeans) || o.returnSpanMeans < 0 || o.returnSpanMeans > MAX_SPANS) {
    throw new RangeError(`streaming speech: returnSpanMeans must be an integer in [0, ${MAX_SPANS}], got ${o.returnSpanMeans}`);
  }
  if (!CACHED_HEAD_SETTINGS.includes(o.cachedHead)) throw new RangeError(`streaming speech: cachedHead must be auto, on or off, got ${String(o.cachedHead)}`);
  if (o.stepWorkers !== 'auto' && (!Number.isInteger(o.stepWorkers) || o.stepWorkers < 1 || o.stepWorkers > 64)) {
    throw new RangeError(`streaming speech: stepWorkers must be auto or an integer in [1, 64], got ${String(o.stepWorkers)}`);
  }
  return o;
}

/** The shift d (k × hop, k ≥ 0) at which `next` continues `prev`, or -1. */
export function findContinuation(prev: Float32Array, next: Float32Array, hopSamples: number): number {
  const n = prev.length;
  if (next.length !== n) return -1;
  const candidates: number[] = [];
  for (let d = hopSamples; d < n; d += hopSamples) candidates.push(d);
  candidates.push(0);
  for (const d of candidates) {
    let ok = true;
    for (let i = n - d - 1; i >= 0; i--) {
      if (next[i] !== prev[i + d]) {
        ok = false;
        break;
      }
    }
    if (ok) return d;
  }
  return -1;
}

function signatureError(
  spec: ModelSpec,
  file: string,
  names: { inputNames: readonly string[]; outputNames: readonly string[] },
  want: { inputs: readonly string[]; outputs: readonly string[] },
): AffectError {
  return new AffectError(
    'AFFECT_ERR_MODEL_SIGNATURE',
    `model ${spec.id}: ${file} has inputs [${names.inputNames.join(', ')}] and outputs [${names.outputNames.join(', ')}]; streaming expects inputs [${want.inputs.join(', ')}] and outputs [${want.outputs.join(', ')}]`,
    { stage: spec.id, hint: 're-export the split graphs (training/encoders/export_standins.py shows the names)' },
  );
}

/** The compute-once streaming speech adapter; see the module comment. */
export class StreamingSpeechModel implements SpeechAffectModel {
  readonly id: string;
  readonly provider: string;
  readonly windowSamples: number | null;
  readonly options: Readonly<StreamingSpeechOptions>;
  readonly info: StreamingGraphInfo;
  /** Batches windows of all streams (one batch in flight; each stage batched across its windows). */
  readonly batcher: DynamicBatcher<Job, StreamedSpeechOutput>;
  readonly stats: StreamingStats = {
    windows: 0,
    advancedSamples: 0,
    frontendFrames: 0,
    frontendSamples: 0,
    encoderFrames: 0,
    cacheResets: 0,
    macs: 0,
    sessionMs: 0,
    hostMs: 0,
    workerPackMs: 0,
    cacheLost: 0,
    cachedHeadWindows: 0,
  };
  private readonly mapping: AffectOutputMapping;
  private readonly streams = new Set<StreamState>();
  private nextOneOff = 0;
  private nextSerial = 1;
  private closing: Promise<void> | undefined;
  /** `cached` mode: step workers (streams sharded between them by number); 0 in the other modes. */
  readonly stepWorkers: number;
  /** `cached` mode: the cached head's file when the cached windows use it (models/cached-head.ts), else undefined. */
  readonly cachedHead: string | undefined;
  /** Multiply-accumulates of the cached head per window it reads (0 without one). */
  private readonly cachedHeadMacs: number;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly sessions: { frontend?: OrtWorkerSession; encoder?: OrtWorkerSession; head?: OrtWorkerSession; steps?: readonly StepWorkerSession[] },
    info: StreamingGraphInfo,
    options: StreamingSpeechOptions,
    opts: LoadModelOptions,
    /** The encoder's (or each step session's) ORT intra-op threads (0: ORT's default). */
    readonly intraOpThreads: number,
    cachedHead?: { path: string; spans: number; correctsEmbedding: boolean },
  ) {
    this.cachedHead = cachedHead?.path;
    // (1 + spans)·D × D + D × 3 per window, and as much again (less the 3 outputs) for the corrected pooled state
    const D = info.hiddenDim;
    this.cachedHeadMacs = cachedHead ? (1 + cachedHead.spans) * D * D * (cachedHead.correctsEmbedding ? 2 : 1) + 3 * D : 0;
    if (!spec.affect) throw new RangeError(`model ${spec.id}: speech spec needs an affect mapping`);
    this.id = spec.id;
    this.provider = (sessions.steps?.[0] ?? sessions.encoder)?.provider ?? 'cpu';
    this.stepWorkers = sessions.steps?.length ?? 0;
    this.windowSamples = spec.windowSamples ?? null;
    this.mapping = spec.affect;
    this.info = info;
    this.options = options;
    this.batcher = new DynamicBatcher((jobs) => this.runBatch(jobs), {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs,
      maxQueue: opts.maxQueue,
      stage: `${spec.id} (streaming)`,
    });
  }

  /** Opens the three split graphs of a speech spec (files under `<model folder>/streaming/`). */
  static async load(spec: ModelSpec, opts: LoadModelOptions & { streaming?: Partial<StreamingSpeechOptions> } = {}): Promise<StreamingSpeechModel> {
    if (spec.role !== 'speech') throw new RangeError(`model ${spec.id} has role ${spec.role}, not speech`);
    const options = resolveStreamingOptions(opts.streaming);
    const info = readStreamingInfo(spec, opts.modelsDir);
    const device = opts.device ?? 'auto';
    assertDeviceAvailable(device, spec.id);
    const dir = streamingDir(spec, opts.modelsDir);
    const opened: OrtWorkerSession[] = [];
    const stepSessions: StepWorkerSession[] = [];
    try {
      const open = async (
        g: { file: string; inputs: readonly string[]; outputs: readonly string[] },
        threads: IntraOpThreads | undefined = opts.intraOpThreads,
      ): Promise<OrtWorkerSession> => {
        const file = path.join(dir, g.file);
        if (!existsSync(file))
          throw new AffectError('AFFECT_ERR_MODEL_MISSING', `model ${spec.id}: ${file} not found (streaming mode ${options.mode})`, {
            stage: spec.id,
            hint: 're-export the split graphs (/usr/bin/python3 -m training.encoders.export_standins writes step.onnx for the cached mode)',
          });
        const s = await OrtWorkerSession.open(file, {
          providers: providersFor(device),
          ...(threads !== undefined ? { intraOpThreads: threads } : {}),
          stage: spec.id,
        });
        opened.push(s);
        if (g.inputs.some((n) => !s.inputNames.includes(n)) || s.inputNames.length !== g.inputs.length || g.outputs.some((n) => !s.outputNames.includes(n))) {
          throw signatureError(spec, file, s, g);
        }
        return s;
      };
      if (options.mode === 'cached') {
        if (info.posContextFrames === undefined || !Number.isInteger(info.posContextFrames) || info.posContextFrames < 0 || info.layers === undefined) {
          throw new AffectError('AFFECT_ERR_MODEL_LOAD', `model ${spec.id}: streaming.json lacks posContextFrames / layers, which the cached mode needs`, {
            stage: spec.id,
            hint: 're-export with training/encoders/export_standins.py (it writes step.onnx and both fields)',
          });
        }
        const file = path.join(dir, STEP_GRAPH.file);
        if (!existsSync(file))
          throw new AffectError('AFFECT_ERR_MODEL_MISSING', `model ${spec.id}: ${file} not found (streaming mode cached)`, {
            stage: spec.id,
            hint: 're-export the split graphs (/usr/bin/python3 -m training.encoders.export_standins writes step.onnx for the cached mode)',
          });
        const total = resolveIntraOpThreads(opts.intraOpThreads, file);
        // auto: one single-threaded worker per thread the model would get (on the CPU provider; one on a GPU).
        const want = options.stepWorkers === 'auto' ? Math.min(MAX_STEP_WORKERS, Math.max(1, total.threads)) : options.stepWorkers;
        // A thread count the caller set applies to each worker; under auto the model's threads are shared out.
        const perWorker = typeof opts.intraOpThreads === 'number' ? total.threads : Math.max(1, Math.floor(total.threads / want));
        const layers = info.layers;
        const posContext = info.posContextFrames;
        const cachedHead = await resolveCachedHead({
          modelId: spec.id,
          streamingDir: dir,
          hiddenDim: info.hiddenDim,
          stepGraph: file,
          hopSamples: options.hopSamples,
          recomputeFrames: options.recomputeFrames,
          inputNormalization: spec.inputNormalization ?? 'none',
          setting: options.cachedHead,
          logger: opts.logger ?? getLogger(),
        });
        if (cachedHead && options.returnSpanMeans > 0 && cachedHead.spans !== options.returnSpanMeans) {
          throw new RangeError(
            `streaming speech: returnSpanMeans ${options.returnSpanMeans}, but the cached head reads ${cachedHead.spans} span means; use cachedHead 'off' to dump pairs for another span count`,
          );
        }
        const openStep = (providers: readonly string[]): Promise<StepWorkerSession> =>
          StepWorkerSession.open(
            {
              modelPath: file,
              providers: [...providers],
              intraOpThreads: perWorker,
              stride: info.frameStrideSamples,
              receptiveField: info.receptiveFieldSamples,
              layers,
              hiddenDim: info.hiddenDim,
              posContext,
              maxStreams: options.maxCachedStreams,
              ...(cachedHead ? { cachedHeadPath: cachedHead.path } : {}),
              spans: cachedHead?.spans ?? options.returnSpanMeans,
              returnSpans: options.returnSpanMeans > 0,
            },
            spec.id,
          );
        const step = await openStep(providersFor(device));
        stepSessions.push(step);
        const workers = options.stepWorkers === 'auto' && step.provider !== 'cpu' ? 1 : want;
        // The others on the provider the first one got (concurrently: each reads the file itself).
        const rest = await Promise.allSettled(Array.from({ length: workers - 1 }, () => openStep([step.provider])));
        for (const r of rest) if (r.status === 'fulfilled') stepSessions.push(r.value);
        const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        if (options.hopSamples % info.frameStrideSamples !== 0)
          (opts.logger ?? getLogger()).info(
            { model: spec.id, hopSamples: options.hopSamples, frameStrideSamples: info.frameStrideSamples },
            `model ${spec.id}: the hop (${options.hopSamples} samples) is not a multiple of the frame stride (${info.frameStrideSamples}): every other window's frames lie off its own grid, which adds to the cached mode's deviation from the full window (docs/bench.md); a hop of ${Math.round(options.hopSamples / info.frameStrideSamples) * info.frameStrideSamples} samples avoids it`,
          );
        const g = STEP_GRAPH;
        if (
          g.inputs.some((n) => !step.inputNames.includes(n)) ||
          step.inputNames.length !== g.inputs.length ||
          g.outputs.some((n) => !step.outputNames.includes(n))
        ) {
          throw signatureError(spec, file, step, g);
        }
        const threadsOf = { threads: perWorker, why: `${total.why}${workers > 1 ? `, shared by ${workers} step workers` : ''}` };
        (opts.logger ?? getLogger()).info(
          { model: spec.id, provider: step.provider, mode: options.mode, frontEnd: info.frontEnd, stepWorkers: workers, intraOpThreads: perWorker },
          `model ${spec.id} streams (cached) on ${step.provider}, ${workers} step worker${workers === 1 ? '' : 's'} × ${threadsText(threadsOf)}`,
        );
        return new StreamingSpeechModel(spec, { steps: stepSessions }, info, options, opts, perWorker, cachedHead);
      }
      const frontend = await open(GRAPHS.frontend);
      const encoder = await open(GRAPHS.encoder);
      // The head is one D×D layer per window: one thread, so no idle thread pool competes with the encoder's.
      const head = await open(GRAPHS.head, 1);
      (opts.logger ?? getLogger()).info(
        { model: spec.id, provider: encoder.provider, mode: options.mode, frontEnd: info.frontEnd, intraOpThreads: encoder.threads.threads },
        `model ${spec.id} streams (${options.mode}) on ${encoder.provider}, encoder on ${threadsText(encoder.threads)}, front end on ${threadsText(frontend.threads)}`,
      );
      return new StreamingSpeechModel(spec, { frontend, encoder, head }, info, options, opts, encoder.threads.threads);
    } catch (err) {
      for (const s of opened) await s.close();
      for (const s of stepSessions) await s.close();
      throw err;
    }
  }

  /** Streams with a live cache. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Cached frames over all open streams (conv features + transformer outputs). */
  get cachedFrames(): number {
    let n = 0;
    for (const s of this.streams) n += s.feats.size + s.hidden.size + s.workerFrames;
    return n;
  }

  /** Bytes held by the caches of all open streams (frames + last windows). */
  get cacheBytes(): number {
    let b = 0;
    for (const s of this.streams)
      b += 4 * (s.feats.size * this.info.featureDim + (s.hidden.size + s.proj.size) * this.info.hiddenDim + (s.prev?.length ?? 0)) + s.workerBytes;
    return b;
  }

  /** `cached` mode: streams whose caches the step worker holds and their bytes (null in the other modes). */
  async workerCacheStats(): Promise<{ streams: number; bytes: number } | null> {
    const steps = this.sessions.steps;
    if (!steps) return null;
    const all = await Promise.all(steps.map((s) => s.cacheStats()));
    return { streams: all.reduce((a, x) => a + x.streams, 0), bytes: all.reduce((a, x) => a + x.bytes, 0) };
  }

  /** One window without stream context: computed whole (no cache), exact. */
  infer(samples: Float32Array): Promise<StreamedSpeechOutput> {
    const state = this.newState(`one-off-${this.nextOneOff++}`);
    return this.submit({ state, samples, oneOff: true });
  }

  /** A stream with its own frame cache; windows must come in stream order. */
  forStream(streamId: string): StreamingSpeechStream {
    const state = this.newState(streamId);
    this.streams.add(state);
    return {
      streamId,
      windowSamples: this.windowSamples,
      infer: (samples) => {
        if (state.closed)
          return Promise.reject(new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: stream ${streamId} is closed`, { recoverable: false, stage: this.id }));
        // One window of a stream at a time, in order: each window builds on the cache the previous one left.
        const p = state.tail.then(() => this.submit({ state, samples, oneOff: false }));
        state.tail = p.catch(() => undefined);
        return p;
      },
      close: () => {
        if (state.closed) return;
        state.closed = true;
        this.streams.delete(state);
        this.clearState(state);
        this.stepFor(state)?.free([state.serial]);
      },
    };
  }

  private newState(id: string): StreamState {
    return {
      id,
      prev: undefined,
      endPos: 0,
      feats: new Map(),
      hidden: new Map(),
      proj: new Map(),
      serial: this.nextSerial++,
      gen: 0,
      kvPos: [],
      workerFrames: 0,
      workerBytes: 0,
      nextPos: 0,
      closed: false,
      tail: Promise.resolve(),
    };
  }

  private submit(job: Job): Promise<StreamedSpeechOutput> {
    const rf = this.info.receptiveFieldSamples;
    if (job.samples.length < rf) {
      return Promise.reject(
        new AffectError('AFFECT_ERR_INPUT', `${this.id}: window of ${job.samples.length} samples is shorter than one frame (${rf} samples)`, {
          recoverable: true,
          stage: this.id,
        }),
      );
    }
    return this.batcher.submit(job);
  }

  /** Runs a batch of windows: front end, transformer and head, each batched across the windows. */
  async runBatch(jobs: readonly Job[]): Promise<SpeechAffectOutput[]> {
    if (this.options.mode === 'cached') return this.runCachedBatch(jobs);
    const { frameStrideSamples: stride, receptiveFieldSamples: rf, featureDim: C, hiddenDim: D } = this.info;
    const chunked = this.options.mode === 'chunked';
    const ctx = this.options.leftContextFrames;

    // 1. Place each window in its stream, normalise it, and list the conv frames it still needs.
    const plans = jobs.map((job) => {
      const st = job.state;
      const W = job.samples;
      const n = W.length;
      let start: number;
      const d = st.prev ? findContinuation(st.prev, W, this.options.hopSamples) : -1;
      if (d >= 0) {
        start = st.endPos - n + d;
        this.stats.advancedSamples += d;
      } else {
        // Fresh stream, restart or gap: nothing cached applies. Positions move on so no old key matches.
        if (st.prev) this.stats.cacheResets++;
        else if (!job.oneOff) this.stats.cacheResets++;
        st.feats.clear();
        st.hidden.clear();
        start = st.endPos + (st.prev ? rf + stride : 0);
        start = Math.ceil(start / stride) * stride; // fresh windows start on the chunked grid
        st.nextPos = start;
        this.stats.advancedSamples += n;
      }
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const s = W[i] ?? 0;
        x[i] = Number.isFinite(s) ? s : 0;
      }
      if (this.spec.inputNormalization === 'zero-mean-unit-var') normalizeWindow(x);
      // Frame positions the window uses: its own grid (frames), or the global grid (chunked).
      const first = chunked ? Math.ceil(start / stride) * stride : start;
      const positions: number[] = [];
      for (let p = first; p + rf <= start + n; p += stride) positions.push(p);
      let need: number[];
      if (chunked) {
        const from = Math.max(st.nextPos, first);
        need = positions.filter((p) => p >= from && !st.feats.has(p));
      } else need = positions.filter((p) => !st.feats.has(p));
      // Contiguous runs of missing frames → one conv segment each.
      const segs: Array<{ pos: number[]; data: Float32Array }> = [];
      let run: number[] = [];
      const flush = (): void => {
        if (run.length === 0) return;
        const a = (run[0] as number) - start;
        const b = (run[run.length - 1] as number) - start + rf;
        segs.push({ pos: run, data: x.slice(a, b) });
        run = [];
      };
      for (const p of need) {
        if (run.length && p !== (run[run.length - 1] as number) + stride) flush();
        run.push(p);
      }
      flush();
      return { job, st, start, n, positions, segs, newFrames: chunked ? need : [] };
    });

    // 2. Conv front end, batched over segments of equal length.
    const segGroups = new Map<number, Array<{ pos: number[]; data: Float32Array; st: StreamState }>>();
    for (const pl of plans)
      for (const s of pl.segs) {
        const g = segGroups.get(s.data.length);
        if (g) g.push({ ...s, st: pl.st });
        else segGroups.set(s.data.length, [{ ...s, st: pl.st }]);
      }
    for (const [len, group] of segGroups) {
      const batch = new Float32Array(group.length * len);
      group.forEach((s, i) => batch.set(s.data, i * len));
      const res = await (this.sessions.frontend as OrtWorkerSession).run({ signal: { type: 'float32', data: batch, dims: [group.length, len] } });
      const t = this.output(res, 'features');
      const frames = t.dims[1] ?? 0;
      if ((t.dims[2] ?? 0) !== C) throw this.shapeError('features', t.dims, `[b, frames, ${C}]`);
      group.forEach((s, i) => {
        if (frames !== s.pos.length) throw this.shapeError('features', t.dims, `[b, ${s.pos.length}, ${C}]`);
        s.pos.forEach((p, j) => s.st.feats.set(p, (t.data as Float32Array).slice((i * frames + j) * C, (i * frames + j + 1) * C)));
      });
      this.stats.frontendFrames += group.length * frames;
      this.stats.macs += group.length * (frontendMacs(this.info, len) ?? 0);
      this.stats.frontendSamples += group.length * len;
    }

    // 3. Transformer: the window's frames (frames mode) or context + new frames (chunked).
    const encJobs: Array<{ pl: (typeof plans)[number]; rows: number[]; keep: number }> = [];
    for (const pl of plans) {
      if (!chunked) encJobs.push({ pl, rows: pl.positions, keep: pl.positions.length });
      else if (pl.newFrames.length) {
        const firstNew = pl.newFrames[0] as number;
        const rows: number[] = [];
        for (let p = firstNew - ctx * stride; p < firstNew; p += stride) if (pl.st.feats.has(p)) rows.push(p);
        encJobs.push({ pl, rows: [...rows, ...pl.newFrames], keep: pl.newFrames.length });
      }
    }
    const pooledOf = new Map<Job, Float32Array>();
    const encGroups = new Map<number, typeof encJobs>();
    for (const e of encJobs) {
      const g = encGroups.get(e.rows.length);
      if (g) g.push(e);
      else encGroups.set(e.rows.length, [e]);
    }
    for (const [T, group] of encGroups) {
      const batch = new Float32Array(group.length * T * C);
      group.forEach((e, i) => e.rows.forEach((p, j) => batch.set(e.pl.st.feats.get(p) as Float32Array, (i * T + j) * C)));
      const res = await (this.sessions.encoder as OrtWorkerSession).run({ features: { type: 'float32', data: batch, dims: [group.length, T, C] } });
      const h = this.output(res, 'frame_hidden');
      if ((h.dims[1] ?? 0) !== T || (h.dims[2] ?? 0) !== D) throw this.shapeError('frame_hidden', h.dims, `[b, ${T}, ${D}]`);
      const hd = h.data as Float32Array;
      group.forEach((e, i) => {
        if (!chunked) {
          const pooled = new Float32Array(D);
          for (let j = 0; j < T; j++) for (let k = 0; k < D; k++) pooled[k] = (pooled[k] as number) + (hd[(i * T + j) * D + k] as number);
          for (let k = 0; k < D; k++) pooled[k] = (pooled[k] as number) / T;
          pooledOf.set(e.pl.job, pooled);
        } else {
          for (let j = T - e.keep; j < T; j++) e.pl.st.hidden.set(e.rows[j] as number, hd.slice((i * T + j) * D, (i * T + j + 1) * D));
          e.pl.st.nextPos = (e.rows[T - 1] as number) + stride;
        }
      });
      this.stats.encoderFrames += group.length * T;
      this.stats.macs += group.length * (encoderMacs(this.info, T) ?? 0);
    }
    if (chunked) {
      for (const pl of plans) {
        const pooled = new Float32Array(D);
        let m = 0;
        for (const p of pl.positions) {
          const h = pl.st.hidden.get(p);
          if (!h) continue;
          for (let k = 0; k < D; k++) pooled[k] = (pooled[k] as number) + (h[k] as number);
          m++;
        }
        if (m === 0) throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: no encoded frames cover this window`, { recoverable: true, stage: this.id });
        for (let k = 0; k < D; k++) pooled[k] = (pooled[k] as number) / m;
        pooledOf.set(pl.job, pooled);
      }
    }

    // 4. Head on the pooled states, one batch.
    const B = plans.length;
    const pooledBatch = new Float32Array(B * D);
    plans.forEach((pl, i) => pooledBatch.set(pooledOf.get(pl.job) as Float32Array, i * D));
    const res = await (this.sessions.head as OrtWorkerSession).run({ pooled: { type: 'float32', data: pooledBatch, dims: [B, D] } });
    this.output(res, 'logits');
    this.stats.macs += B * headMacs(this.info);
    // The model's own decoding (mapping, range, non-finite checks); the embedding is the pooled state.
    const pooledOut = new Float32Array(B * D);
    plans.forEach((pl, i) => pooledOut.set(pooledOf.get(pl.job) as Float32Array, i * D));
    const m = this.mapping;
    const decoded: Record<string, WireTensor> = {
      [m.output]: res['logits'] as WireTensor,
      ...(m.embedding ? { [m.embedding]: { type: 'float32', data: pooledOut, dims: [B, D] } } : {}),
    };

    // 5. Bookkeeping: remember the window, evict frames no later window can use.
    const out = plans.map((pl, i) => {
      const st = pl.st;
      st.prev = pl.job.samples.slice();
      st.endPos = pl.start + pl.n;
      const keepFeatsFrom = pl.start - (chunked ? ctx * stride : 0);
      for (const p of st.feats.keys()) if (p < keepFeatsFrom) st.feats.delete(p);
      for (const p of st.hidden.keys()) if (p < pl.start) st.hidden.delete(p);
      this.stats.windows++;
      return decodeSpeechRow(this.id, m, decoded, i, pl.job.samples);
    });
    return out;
  }

  /**
   * `cached` mode, for the bench: wall ms of one bare `step.onnx` call at the steady-state shape
   * (`batch` streams, `newFrames` new frames each, `memFrames` cached frames), random inputs, no
   * stream bookkeeping — the session's own cost, to compare the pipeline's throughput with. Also the
   * process's CPU ms over the call (all threads: the session's pool included).
   */
  async timeBareStep(batch: number, newFrames: number, memFrames: number): Promise<{ wallMs: number; cpuMs: number }> {
    const steps = this.sessions.steps;
    if (!steps) throw new RangeError(`${this.id}: timeBareStep needs the cached mode`);
    // Every worker at once, each with its share of the batch, as a pipeline batch runs.
    const shares = steps.map((_, k) => Math.floor(batch / steps.length) + (k < batch % steps.length ? 1 : 0)).filter((b) => b > 0);
    const feeds = shares.map((b) => this.bareStepFeeds(b, newFrames, memFrames));
    const c0 = process.cpuUsage();
    const t0 = performance.now(); // inputs are built before the clock starts
    await Promise.all(feeds.map((f, k) => (steps[k] as StepWorkerSession).run(f)));
    const wallMs = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { wallMs, cpuMs: (c.user + c.system) / 1000 };
  }

  private bareStepFeeds(batch: number, newFrames: number, memFrames: number): Record<string, WireTensor> {
    const { frameStrideSamples: stride, receptiveFieldSamples: rf, hiddenDim: D } = this.info;
    const L = this.info.layers as number;
    const P = this.info.posContextFrames as number;
    const B = batch;
    const T = newFrames;
    const M = memFrames;
    const S = (T - 1) * stride + rf;
    const rnd = (n: number, scale: number): Float32Array => new Float32Array(n).map(() => (Math.random() - 0.5) * scale);
    const feeds: Record<string, WireTensor> = {
      signal: { type: 'float32', data: rnd(B * S, 0.2), dims: [B, S] },
      frame_mask: { type: 'float32', data: new Float32Array(B * T).fill(1), dims: [B, T] },
      pos_ctx: { type: 'float32', data: rnd(B * P * D, 1), dims: [B, P, D] },
      kv_mem: { type: 'float32', data: rnd(B * L * 2 * M * D, 1), dims: [B, L, 2, M, D] },
      mem_mask: { type: 'float32', data: new Float32Array(B * M).fill(1), dims: [B, M] },
      hidden_sum: { type: 'float32', data: new Float32Array(B * D), dims: [B, D] },
      hidden_count: { type: 'float32', data: new Float32Array(B).fill(M), dims: [B, 1] },
    };
    return feeds;
  }

  /** `cached` mode: the step worker that holds `st`'s caches (streams are sharded by number). */
  private stepFor(st: StreamState): StepWorkerSession | undefined {
    const steps = this.sessions.steps;
    return steps ? steps[st.serial % steps.length] : undefined;
  }

  /** Places a window in its stream (continuation or reset) and returns its start position and normalised samples. */
  private placeWindow(job: Job): { start: number; x: Float32Array } {
    const st = job.state;
    const W = job.samples;
    const n = W.length;
    const stride = this.info.frameStrideSamples;
    const d = st.prev ? findContinuation(st.prev, W, this.options.hopSamples) : -1;
    let start: number;
    if (d >= 0) {
      start = st.endPos - n + d;
      this.stats.advancedSamples += d;
    } else {
      if (st.prev || !job.oneOff) this.stats.cacheResets++;
      // Positions move on past the old window, so no cached key can match the new audio.
      start = st.endPos + (st.prev ? this.info.receptiveFieldSamples + stride : 0);
      start = Math.ceil(start / stride) * stride;
      this.clearState(st);
      st.nextPos = start;
      this.stats.advancedSamples += n;
    }
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = W[i] ?? 0;
      x[i] = Number.isFinite(v) ? v : 0;
    }
    if (this.spec.inputNormalization === 'zero-mean-unit-var') normalizeWindow(x);
    return { start, x };
  }

  /**
   * `cached` mode: one `step.onnx` call per batch. Per window only the frames not yet computed for
   * its stream go through the model (conv front end, projection, transformer, all at once), each
   * attending to the window's earlier frames through their cached per-layer keys and values; the
   * head runs on the mean of the window's cached and new last hidden states. Windows of similar
   * new-frame counts share a call (rows padded and masked).
   */
  private async runCachedBatch(jobs: readonly Job[]): Promise<SpeechAffectOutput[]> {
    const t0 = performance.now();
    const steps = this.sessions.steps as readonly StepWorkerSession[];
    // Each worker gets the jobs of the streams it holds; the workers run at once.
    const shards = new Map(steps.map((step) => [step, { step, jobs: [] as Job[], inSession: 0 }]));
    for (const job of jobs) shards.get(this.stepFor(job.state) as StepWorkerSession)?.jobs.push(job);
    const active = [...shards.values()].filter((sh) => sh.jobs.length > 0);
    try {
      const outs = await Promise.allSettled(active.map((sh) => this.runCachedBatchInner(sh.step, sh.jobs, (ms) => (sh.inSession += ms))));
      const failed = outs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const byJob = new Map<Job, SpeechAffectOutput>();
      active.forEach((sh, i) => {
        const r = outs[i] as PromiseFulfilledResult<SpeechAffectOutput[]>;
        sh.jobs.forEach((job, j) => byJob.set(job, r.value[j] as SpeechAffectOutput));
      });
      return jobs.map((job) => byJob.get(job) as SpeechAffectOutput);
    } finally {
      // The workers' calls overlap: the batch's time in step calls is the longest worker's.
      const inSession = Math.max(0, ...active.map((sh) => sh.inSession));
      this.stats.sessionMs += inSession;
      this.stats.hostMs += performance.now() - t0 - inSession;
    }
  }

  private async runCachedBatchInner(step: StepWorkerSession, jobs: readonly Job[], addSessionMs: (ms: number) => void): Promise<SpeechAffectOutput[]> {
    const { frameStrideSamples: stride, receptiveFieldSamples: rf, hiddenDim: D } = this.info;
    const L = this.info.layers as number;
    const R = this.options.recomputeFrames;
    const hopFrames = Math.ceil(this.options.hopSamples / stride);
    type Plan = ReturnType<typeof plan>;
    /** Which frames of the window are new (or recomputed) and which the worker should still hold. */
    const plan = (job: Job, start: number, x: Float32Array) => {
      const st = job.state;
      const n = x.length;
      const first = Math.ceil(start / stride) * stride;
      const positions: number[] = [];
      for (let p = first; p + rf <= start + n; p += stride) positions.push(p);
      const from = Math.max(st.nextPos - R * stride, first);
      const newPos = positions.filter((p) => p >= from);
      // The worker keeps the cached frames inside [first, from) and drops the rest; mirror that.
      const kept = st.kvPos.filter((p) => p >= first && p < from);
      st.kvPos.length = 0;
      st.kvPos.push(...kept);
      return { job, st, start, n, x, first, from, positions, newPos, memPos: kept };
    };
    const plans: Plan[] = jobs.map((job) => {
      const { start, x } = this.placeWindow(job);
      return plan(job, start, x);
    });
    const out = new Array<StreamedSpeechOutput | undefined>(plans.length);
    // Windows of similar new-frame counts share a call (rows padded and masked).
    const groups: Plan[][] = [];
    const sorted = [...plans].sort((a, b) => b.newPos.length - a.newPos.length);
    for (const p of sorted) {
      const g = groups[groups.length - 1];
      const n0 = g?.[0]?.newPos.length ?? 0;
      if (g && p.newPos.length >= 1 && p.newPos.length >= 0.75 * n0) g.push(p);
      else groups.push([p]);
    }
    const m = this.mapping;
    for (const g of groups) {
      let group = g;
      for (let attempt = 0; ; attempt++) {
        const B = group.length;
        const T = Math.max(1, ...group.map((p) => p.newPos.length));
        const S = (T - 1) * stride + rf;
        const signal = new Float32Array(B * S);
        const rows: StepRow[] = group.map((pl, b) => {
          const nNew = pl.newPos.length;
          if (nNew > 0) {
            const a = (pl.newPos[0] as number) - pl.start;
            signal.set(pl.x.subarray(a, Math.min(pl.x.length, a + (nNew - 1) * stride + rf)), b * S);
          }
          return {
            stream: pl.st.serial,
            gen: pl.st.gen,
            first: pl.first,
            from: pl.from,
            start: pl.start,
            newFirst: pl.newPos[0] ?? pl.from,
            newCount: nNew,
            ctxEnd: pl.newPos[0] ?? pl.start + pl.n,
            end: pl.start + pl.n,
            mem: pl.memPos,
            capHint: pl.positions.length + hopFrames + 1 + R,
            keep: !pl.job.oneOff,
          };
        });
        const ts = performance.now();
        let res;
        try {
          res = await step.step(rows, T, S, signal);
        } catch (err) {
          // The worker dropped these streams' caches; so does the mirror (their next windows start afresh).
          for (const pl of group) this.clearState(pl.st);
          throw err;
        }
        addSessionMs(performance.now() - ts);
        if (res.lost) {
          // The worker does not hold these caches as expected (evicted, or a new worker): restart them, never mix.
          if (attempt >= 2)
            throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: the step worker lost stream caches twice in a row`, {
              recoverable: true,
              stage: this.id,
            });
          const lost = new Set(res.streams);
          this.stats.cacheLost += lost.size;
          group = group.map((pl) => {
            if (!lost.has(pl.st.serial)) return pl;
            this.stats.cacheResets++;
            this.clearState(pl.st);
            // Computed whole as a fresh window: on a frame grid of its own, past every old position.
            const start = Math.ceil((pl.start + pl.n) / stride) * stride;
            pl.st.nextPos = start;
            return plan(pl.job, start, pl.x);
          });
          continue;
        }
        this.stats.workerPackMs += res.packMs;
        const M = res.M;
        group.forEach((pl, b) => {
          const st = pl.st;
          st.kvPos.push(...pl.newPos);
          if (pl.newPos.length) st.nextPos = (pl.newPos[pl.newPos.length - 1] as number) + stride;
          const c = res.caches[b];
          st.workerFrames = c?.frames ?? 0;
          st.workerBytes = c?.bytes ?? 0;
          st.prev = pl.job.samples.slice();
          st.endPos = pl.start + pl.n;
          if (pl.job.oneOff) st.kvPos.length = 0;
          const decoded: Record<string, WireTensor> = {
            [m.output]: { type: 'float32', data: res.logits.slice(b * 3, b * 3 + 3), dims: [1, 3] },
            ...(m.embedding ? { [m.embedding]: { type: 'float32', data: res.hidden.slice(b * D, (b + 1) * D), dims: [1, D] } } : {}),
          };
          this.stats.windows++;
          // The worker read this window with the cached head when it had one and the window used cached frames.
          if (this.cachedHead && pl.memPos.length > 0) this.stats.cachedHeadWindows++;
          const K = this.options.returnSpanMeans;
          const row = decodeSpeechRow(this.id, m, decoded, 0, pl.job.samples);
          out[jobs.indexOf(pl.job)] = res.spans ? { ...row, spanMeans: res.spans.slice(b * K * D, (b + 1) * K * D) } : row;
        });
        this.stats.frontendSamples += B * S;
        this.stats.frontendFrames += B * T;
        this.stats.encoderFrames += B * T;
        this.stats.macs += B * ((frontendMacs(this.info, S) ?? 0) + (encoderMacs(this.info, T) ?? 0) + 2 * L * T * M * D + headMacs(this.info));
        // the cached head runs on top of the step graph's own head for the rows that used cached frames
        this.stats.macs += group.filter((pl) => pl.memPos.length > 0).length * this.cachedHeadMacs;
        break;
      }
    }
    return out as SpeechAffectOutput[];
  }

  /** Forgets a stream's cache (a new cache generation: the worker never reuses the old one). */
  private clearState(st: StreamState): void {
    st.feats.clear();
    st.hidden.clear();
    st.proj.clear();
    st.kvPos.length = 0;
    st.gen++;
    st.workerFrames = 0;
    st.workerBytes = 0;
    st.prev = undefined;
  }

  private output(res: Record<string, WireTensor>, name: string): WireTensor {
    const t = res[name];
    if (!t) throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: output ${name} missing`, { recoverable: true, stage: this.id });
    return t;
  }

  private shapeError(name: string, dims: readonly number[], want: string): AffectError {
    return new AffectError('AFFECT_ERR_MODEL_SIGNATURE', `${this.id}: streaming output ${name} has shape [${dims.join(', ')}], expected ${want}`, {
      stage: this.id,
      hint: 'streaming.json does not describe these graphs; re-export them together',
    });
  }

  /** Rejects waiting windows, frees every stream's cache and releases the three sessions. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.batcher.close();
      for (const s of this.streams) {
        s.closed = true;
        this.clearState(s);
      }
      this.streams.clear();
      const { steps, ...graphs } = this.sessions;
      await Promise.all([...Object.values(graphs), ...(steps ?? [])].map((x) => x?.close()));
    })();
    return this.closing;
  }
}

/** Loads a speech spec's split graphs for compute-once streaming. */
export async function loadStreamingSpeechModel(
  spec: ModelSpec,
  opts: LoadModelOptions & { streaming?: Partial<StreamingSpeechOptions> } = {},
): Promise<StreamingSpeechModel> {
  return StreamingSpeechModel.load(spec, opts);
}
