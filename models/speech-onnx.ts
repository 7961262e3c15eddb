/**
 * A speech affect model (wav2vec 2.0 family, or the fixture) behind the SpeechAffectModel port:
 * an ONNX session in a worker thread, fed by the cross-stream dynamic batcher.
 */
import { AffectError } from '../src/errors.js';
import { DynamicBatcher } from './batcher.js';
import type { LoadModelOptions } from './load-options.js';
import type { AffectOutputMapping, ModelSpec } from './manifest.js';
import { openOnnxModel } from './onnx-session.js';
import type { SpeechAffectModel, SpeechAffectOutput } from './ports.js';
import type { OrtWorkerSession, WireTensor } from './worker/host.js';

/**
 * Speech models give no uncertainty of their own, so confidence says how much voice-level signal
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

/** The ONNX speech adapter. */
export class OnnxSpeechModel implements SpeechAffectModel {
  readonly id: string;
  readonly provider: string;
  readonly windowSamples: number | null;
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
    this.windowSamples = spec.windowSamples ?? null;
    this.mapping = spec.affect;
    this.inputName = spec.inputs[0]?.name ?? 'audio';
    this.batcher = new DynamicBatcher((items) => this.runBatch(items), {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs,
      maxQueue: opts.maxQueue,
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
    const m = this.mapping;
    const t = res[m.output];
    if (!t) throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: output ${m.output} missing`, { recoverable: true, stage: this.id });
    const width = t.dims[t.dims.length - 1] ?? 0;
    const get = (col: number): number => Number((t.data as Float32Array)[row * width + col]);
    const arousal = toUnitRange(get(m.arousal), m.range);
    const valence = toUnitRange(get(m.valence), m.range);
    const dominance = m.dominance === undefined ? undefined : toUnitRange(get(m.dominance), m.range);
    if (!Number.isFinite(arousal) || !Number.isFinite(valence) || (dominance !== undefined && !Number.isFinite(dominance))) {
      throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: model returned a non-finite value`, { recoverable: true, stage: this.id });
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
      confidence: signalConfidence(window),
      ...(dominance === undefined ? {} : { dominance }),
      ...(embedding ? { embedding } : {}),
    };
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
