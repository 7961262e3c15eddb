/**
 * Text affect models through transformers.js (tokenizer + ONNX model), offline from a local
 * folder, in a worker thread, cross-stream batched:
 * - role `text-classifier` (e.g. RoBERTa GoEmotions): label probabilities → circumplex (path a);
 * - role `text-embed` (e.g. all-MiniLM-L6-v2): zero-shot map fitted on Russell's anchor terms (path b);
 * - role `text-regression` (e.g. the bundled `text-emobank`): valence, arousal and dominance read
 *   directly from the model's `vad` output, confidence from its `known` output (path c).
 */
import { loadConfig } from '../core/config.js';
import { getLogger } from '../core/log.js';
import { RUSSELL_1980_TERMS } from '../core/emotion-terms.js';
import { DynamicBatcher } from './batcher.js';
import { assertDeviceAvailable, providersFor } from './device.js';
import { AffectError } from '../core/errors.js';
import { BUNDLED_DIR, FIXTURES_DIR, assertModelFiles, modelFilePath, resolveModelsDir } from './files.js';
import type { LoadModelOptions } from './load-options.js';
import type { ModelSpec } from './manifest.js';
import type { TextAffectModel, TextAffectOutput } from './ports.js';
import { assertSignature } from './signature.js';
import { applyZeroShot, fitZeroShot, logitsToProbabilities, projectLabels, type ZeroShotMap } from './text-projection.js';
import { TextWorkerSession } from './worker/text-host.js';

/** Extra options for text models. */
export interface TextModelOptions extends LoadModelOptions {
  /** transformers.js cache folder (default: CIRCUMPLEX_CACHE_DIR or .cache/transformers). */
  cacheDir?: string;
  /** Longest text in tokens; longer is truncated. Default 128. */
  maxTokens?: number;
  /** Template turning an anchor term into a sentence for the zero-shot fit. Default `I feel {term}.` */
  anchorTemplate?: string;
}

/** The sentence each Russell term is embedded as, for the zero-shot anchors. */
export const DEFAULT_ANCHOR_TEMPLATE = 'I feel {term}.';

/** A transformers.js text model behind the TextAffectModel port. */
export class TransformersTextModel implements TextAffectModel {
  readonly id: string;
  readonly provider: string;
  /** The batcher (exposed for metrics). */
  readonly batcher: DynamicBatcher<string, TextAffectOutput>;
  /** The fitted zero-shot map (text-embed models). */
  zeroShot: ZeroShotMap | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly session: TextWorkerSession,
    opts: TextModelOptions,
  ) {
    this.id = spec.id;
    this.provider = session.ready.device;
    this.batcher = new DynamicBatcher((texts) => this.runBatch(texts), {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs ?? 5,
      maxQueue: opts.maxQueue,
      stage: spec.id,
    });
  }

  /** Loads tokenizer + model in a worker; checks files, device and signature. */
  static async load(spec: ModelSpec, opts: TextModelOptions = {}): Promise<TransformersTextModel> {
    if (spec.role !== 'text-classifier' && spec.role !== 'text-embed' && spec.role !== 'text-regression') {
      throw new RangeError(`model ${spec.id} has role ${spec.role}, not a text role`);
    }
    const logger = opts.logger ?? getLogger();
    const device = opts.device ?? 'auto';
    await assertModelFiles(spec, opts.modelsDir);
    assertDeviceAvailable(device, spec.id);
    // transformers.js resolves `<localModelPath>/<id>/...`: bundled models live in models/<id>/
    const localModelPath = spec.fixture ? FIXTURES_DIR : spec.bundled ? BUNDLED_DIR : resolveModelsDir(opts.modelsDir);
    const session = await TextWorkerSession.open(
      {
        modelId: spec.id,
        kind: spec.role === 'text-classifier' ? 'classifier' : spec.role === 'text-regression' ? 'regression' : 'embed',
        localModelPath,
        cacheDir: opts.cacheDir ?? loadConfig().cacheDir,
        devices: providersFor(device),
        maxTokens: opts.maxTokens ?? 128,
      },
      spec.id,
    );
    const onnx = spec.files.find((f) => f.path === spec.onnxFile);
    try {
      assertSignature(spec, onnx ? modelFilePath(spec, onnx, opts.modelsDir) : spec.id, session.ready.inputNames, session.ready.outputNames, true);
    } catch (err) {
      await session.close();
      throw err;
    }
    const fellBack = session.ready.failed.map((f) => f.device);
    logger.info(
      { model: spec.id, device, provider: session.ready.device, ...(fellBack.length ? { unavailable: fellBack } : {}) },
      `model ${spec.id} runs on ${session.ready.device}${fellBack.length ? ` (${fellBack.join(', ')} unavailable)` : ''}`,
    );
    const model = new TransformersTextModel(spec, session, opts);
    if (spec.role === 'text-embed') {
      const template = opts.anchorTemplate ?? DEFAULT_ANCHOR_TEMPLATE;
      const sentences = RUSSELL_1980_TERMS.map((t) => template.replace('{term}', t.term));
      const { data, width } = await session.run(sentences);
      model.zeroShot = fitZeroShot(RUSSELL_1980_TERMS.map((t, i) => ({ embedding: data.slice(i * width, (i + 1) * width), point: t })));
    }
    return model;
  }

  /**
   * One text window in; valence/arousal (and dominance, for `text-regression` models) out. Empty
   * text gives the centre with confidence 0.
   */
  infer(text: string): Promise<TextAffectOutput> {
    const t = text.trim();
    if (t.length === 0) {
      return Promise.resolve(
        this.spec.role === 'text-regression' ? { valence: 0, arousal: 0, dominance: 0, confidence: 0 } : { valence: 0, arousal: 0, confidence: 0 },
      );
    }
    return this.batcher.submit(t);
  }

  private async runBatch(texts: readonly string[]): Promise<TextAffectOutput[]> {
    const { data, width } = await this.session.run(texts);
    return texts.map((_, i) => {
      const row = data.slice(i * width, (i + 1) * width);
      if (this.spec.role === 'text-regression') return regressionOutput(this.spec.id, row);
      if (this.spec.role === 'text-classifier') {
        const probs = logitsToProbabilities(row, this.session.ready.multiLabel);
        const names = this.session.ready.labels.length === width ? this.session.ready.labels : (this.spec.labels ?? []);
        const labels = probs.map((score, k) => ({ label: names[k] ?? String(k), score })).sort((a, b) => b.score - a.score);
        return { ...projectLabels(labels), labels };
      }
      if (!this.zeroShot) throw new Error('zero-shot map not fitted');
      return { ...applyZeroShot(this.zeroShot, row), embedding: row };
    });
  }

  /** Rejects waiting texts, disposes the model and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.batcher.close();
      await this.session.close();
    })();
    return this.closing;
  }
}

/**
 * A `text-regression` row (valence, arousal, dominance, known) → TextAffectOutput. The values are
 * clipped to [-1, 1]; `confidence` is the fraction of the text's words the model knows (its
 * vocabulary covers them), so a sentence of unknown words or symbols reads as the centre with
 * little weight. A non-finite value is a broken model: AFFECT_ERR_INFERENCE, never a NaN frame.
 */
export function regressionOutput(modelId: string, row: Float32Array): TextAffectOutput {
  const [v = Number.NaN, a = Number.NaN, d = Number.NaN, known = Number.NaN] = row;
  if (![v, a, d, known].every(Number.isFinite)) {
    throw new AffectError('AFFECT_ERR_INFERENCE', `model ${modelId} returned a non-finite value (vad ${v}, ${a}, ${d}; known ${known})`, {
      stage: modelId,
      hint: 'the model file is damaged or not a text-regression model: restore it (git checkout) or retrain it (npm run train:text)',
    });
  }
  const clip = (x: number): number => Math.max(-1, Math.min(1, x));
  return { valence: clip(v), arousal: clip(a), dominance: clip(d), confidence: Math.max(0, Math.min(1, known)) };
}
