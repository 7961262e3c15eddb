/**
 * A speech affect model (the trained speech-va, wav2vec 2.0 family, or the fixture) behind the SpeechAffectModel port:
 * an ONNX session in a worker thread, fed by the cross-stream dynamic batcher.
 */
import { AffectError } from '../core/errors.js';
import { DynamicBatcher } from './batcher.js';
import type { LoadModelOptions } from './load-options.js';
import type { AffectOutputMapping, ModelSpec } from './manifest.js';
import { openOnnxModel } from './onnx-session.js';
import type { AffectSigma, SpeechAffectModel, SpeechAffectOutput } from './ports.js';
import type { OrtWorkerSession, WireTensor } from './worker/host.js';

/**
 * For speech models that give no uncertainty of their own (no `sigma` in the mapping), confidence says how much voice-level signal
 * the window holds: 0 at or below −50 dBFS RMS (silence, room noise), 1 at −20 dBFS and above
 * (ordinary speech), linear in dB between. Late fusion then trusts text over a silent window.
 */
export function signalConfidence(samples: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] ?? 0;
    sum += s * s;
  }
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  const db = 20 * Math.log10(rms + 1e-12);
  return Math.min(1, Math.max(0, (db + 50) / 30));
}

/** Maps a model's native range linearly onto [-1, 1] (clamped). */
export function toUnitRange(v: number, range: readonly [number, number]): number {
  const [lo, hi] = range;
  return Math.min(1, Math.max(-1, (2 * (v - lo)) / (hi - lo) - 1));
}

/** Copies a window into `dst`, cropping to its last samples or zero-padding the end; non-finite samples become 0. */
function fitWindow(src: Float32Array, dst: Float32Array): void {
  const n = dst.length;
  const from = src.length > n ? src.length - n : 0; // keep the most recent audio
  const len = Math.min(n, src.length);
  for (let i = 0; i < len; i++) {
    const s = src[from + i] ?? 0;
    dst[i] = Number.isFinite(s) ? s : 0;
  }
}

/**
 * Zero mean, unit variance over one window, in place (what Wav2Vec2FeatureExtractor does with
 * do_normalize=True; the 1e-7 matches its epsilon).
 */
export function normalizeWindow(x: Float32Array): void {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] ?? 0;
  mean /= Math.max(1, x.length);
  let v = 0;
  for (let i = 0; i < x.length; i++) v += ((x[i] ?? 0) - mean) ** 2;
  const sd = Math.sqrt(v / Math.max(1, x.length) + 1e-7);
  for (let i = 0; i < x.length; i++) x[i] = ((x[i] ?? 0) - mean) / sd;
}

/**
 * The prior spread of affect on the [-1, 1] scale: a model reporting this sigma knows no more than
 * "somewhere in the middle of the circumplex" and gets confidence 0.5 (precision 1 in late fusion).
 */
export const SIGMA_PRIOR = 0.5;

/** Voiced fraction from which a window counts as fully voiced speech for confidence. */
export const VOICED_FULL = 0.3;

/**
 * Confidence from a model's own uncertainty: c = s0^2 / (s0^2 + mean sigma^2) with s0 = SIGMA_PRIOR,
 * so late fusion's precision c / (1 - c) is (s0 / sigma)^2, the Gaussian precision relative to the
 * prior; scaled down linearly when less than VOICED_FULL of the window is voiced (0 when nothing is:
 * silence or noise carries no affect, however sure the model sounds).
 */
export function sigmaConfidence(sigma: AffectSigma, voiced?: number): number {
  const dims = [sigma.valence, sigma.arousal, ...(sigma.dominance === undefined ? [] : [sigma.dominance])];
  const meanVar = dims.reduce((a, s) => a + s * s, 0) / dims.length;
  const c = (SIGMA_PRIOR * SIGMA_PRIOR) / (SIGMA_PRIOR * SIGMA_PRIOR + meanVar);
  const gate = voiced === undefined ? 1 : Math.min(1, Math.max(0, voiced / VOICED_FULL));
  return c * gate;
}

/**
 * Decodes one batch row of a speech model's outputs through its affect mapping: valence/arousal
 * (/dominance) mapped to [-1, 1], and when the mapping names them, sigma (already in [-1, 1] units)
 * and the voiced fraction. Confidence is sigmaConfidence when the model reports sigma, else the
 * window's signalConfidence. Missing tensors and non-finite values are AFFECT_ERR_INFERENCE.
 */
export function decodeSpeechRow(id: string, m: AffectOutputMapping, res: Record<string, WireTensor>, row: number, window: Float32Array): SpeechAffectOutput {
  const fail = (msg: string): AffectError => new AffectError('AFFECT_ERR_INFERENCE', `${id}: ${msg}`, { recoverable: true, stage: id });
  const column = (name: string): ((col: number) => number) => {
    const t = res[name];
    if (!t) throw fail(`output ${name} missing`);
    const width = t.dims[t.dims.length - 1] ?? 0;
    return (col: number) => {
      if (col >= width) throw fail(`output ${name} has ${width} columns, the mapping needs column ${col}`);
      return Number((t.data as Float32Array)[row * width + col]);
    };
  };
  const get = column(m.output);
  const arousal = toUnitRange(get(m.arousal), m.range);
  const valence = toUnitRange(get(m.valence), m.range);
  const dominance = m.dominance === undefined ? undefined : toUnitRange(get(m.dominance), m.range);
  if (!Number.isFinite(arousal) || !Number.isFinite(valence) || (dominance !== undefined && !Number.isFinite(dominance))) {
    throw fail('model returned a non-finite value');
  }
  let sigma: AffectSigma | undefined;
  if (m.sigma) {
    const s = column(m.sigma);
    const sv = s(m.valence);
    const sa = s(m.arousal);
    const sd = m.dominance === undefined ? undefined : s(m.dominance);
    for (const x of [sv, sa, ...(sd === undefined ? [] : [sd])]) {
      if (!Number.isFinite(x) || x < 0) throw fail(`output ${m.sigma} holds ${x}, not a standard deviation`);
    }
    sigma = { valence: sv, arousal: sa, ...(sd === undefined ? {} : { dominance: sd }) };
  }
  let voiced: number | undefined;
  if (m.voiced) {
    const v = column(m.voiced)(0);
    if (!Number.isFinite(v)) throw fail(`output ${m.voiced} holds ${v}, not a voiced fraction`);
    voiced = Math.min(1, Math.max(0, v));
  }
  let embedding: Float32Array | undefined;
  const e = m.embedding ? res[m.embedding] : undefined;
  if (e) {
    const d = e.dims[e.dims.length - 1] ?? 0;
    embedding = (e.data as Float32Array).slice(row * d, (row + 1) * d);
  }
  return {
    valence,
    arousal,
    confidence: sigma ? sigmaConfidence(sigma, voiced) : signalConfidence(window),
    ...(dominance === undefined ? {} : { dominance }),
    ...(embedding ? { embedding } : {}),
    ...(sigma ? { sigma } : {}),
    ...(voiced === undefined ? {} : { voiced }),
  };
}

/**
 * The speech model's batching defaults (where {@link LoadModelOptions} leave them unset). Sized for
 * many live streams on one model (issue 13: 400 Twilio tracks on 2 cores): each stream has at most
 * one window at the model (the live policy, streams/operators/infer-speech.ts), so a queue bound
 * below the number of live streams only turns a momentary backlog (a busy event loop catching up on
 * its sockets) into rejected windows (`queue full`), and a second batch in flight keeps the worker
 * busy while the event loop has not yet collected the previous batch's results. Measured in
 * docs/bench.md (Twilio, "the speech-stage drops"). A single stream sees no change (batches of one).
 */
export const DEFAULT_SPEECH_BATCHER = { maxBatch: 32, maxQueue: 512, maxInFlight: 2 } as const;

/** The ONNX speech adapter. */
export class OnnxSpeechModel implements SpeechAffectModel {
  readonly id: string;
  readonly provider: string;
  readonly windowSamples: number | null;
  /** The session's ORT intra-op threads (0: ORT's default; models/threads.ts). */
  readonly intraOpThreads: number;
  /** The batcher (exposed for metrics and the benchmark). */
  readonly batcher: DynamicBatcher<Float32Array, SpeechAffectOutput>;
  private readonly mapping: AffectOutputMapping;
  private readonly inputName: string;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly session: OrtWorkerSession,
    opts: LoadModelOptions,
  ) {
    if (!spec.affect) throw new RangeError(`model ${spec.id}: speech spec needs an affect mapping`);
    this.id = spec.id;
    this.provider = session.provider;
    this.intraOpThreads = session.threads.threads;
    this.windowSamples = spec.windowSamples ?? null;
    this.mapping = spec.affect;
    this.inputName = spec.inputs[0]?.name ?? 'audio';
    const maxBatch = opts.maxBatch ?? DEFAULT_SPEECH_BATCHER.maxBatch;
    this.batcher = new DynamicBatcher((items) => this.runBatch(items), {
      maxBatch,
      maxWaitMs: opts.maxWaitMs,
      // an explicit maxBatch without maxQueue keeps the batcher's own bound (4 × maxBatch)
      maxQueue: opts.maxQueue ?? (opts.maxBatch === undefined ? DEFAULT_SPEECH_BATCHER.maxQueue : undefined),
      maxInFlight: DEFAULT_SPEECH_BATCHER.maxInFlight,
      stage: spec.id,
    });
  }

  /** Loads the model (checks files, device, signature). */
  static async load(spec: ModelSpec, opts: LoadModelOptions = {}): Promise<OnnxSpeechModel> {
    if (spec.role !== 'speech') throw new RangeError(`model ${spec.id} has role ${spec.role}, not speech`);
    const session = await openOnnxModel(spec, opts);
    return new OnnxSpeechModel(spec, session, opts);
  }

  /** One window in, its affect out (batched with other streams' windows). */
  infer(samples: Float32Array): Promise<SpeechAffectOutput> {
    if (samples.length === 0) {
      return Promise.reject(new AffectError('AFFECT_ERR_INPUT', `${this.id}: empty audio window`, { recoverable: true, stage: this.id }));
    }
    return this.batcher.submit(samples);
  }

  /**
   * Runs a whole batch without the batcher (equal-length windows, or each padded/cropped to
   * windowSamples). Used by the batcher and by the benchmark's bare-session baseline.
   */
  async runBatch(items: readonly Float32Array[]): Promise<SpeechAffectOutput[]> {
    // Models with a free window length get one sub-batch per length: padding would change outputs.
    const groups = new Map<number, number[]>();
    items.forEach((it, i) => {
      const n = this.windowSamples ?? it.length;
      const g = groups.get(n);
      if (g) g.push(i);
      else groups.set(n, [i]);
    });
    const out = new Array<SpeechAffectOutput>(items.length);
    for (const [n, idx] of groups) {
      const batch = new Float32Array(idx.length * n);
      idx.forEach((itemIndex, row) => {
        const dst = batch.subarray(row * n, (row + 1) * n);
        fitWindow(items[itemIndex] as Float32Array, dst);
        if (this.spec.inputNormalization === 'zero-mean-unit-var') normalizeWindow(dst);
      });
      const res = await this.session.run({ [this.inputName]: { type: 'float32', data: batch, dims: [idx.length, n] } });
      idx.forEach((itemIndex, row) => {
        out[itemIndex] = this.decode(res, row, items[itemIndex] as Float32Array);
      });
    }
    return out;
  }

  private decode(res: Record<string, WireTensor>, row: number, window: Float32Array): SpeechAffectOutput {
    return decodeSpeechRow(this.id, this.mapping, res, row, window);
  }

  /** Rejects waiting windows, releases the session and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.batcher.close();
      await this.session.close();
    })();
    return this.closing;
  }
}
