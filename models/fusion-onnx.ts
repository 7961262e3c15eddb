/**
 * A learned ONNX fusion model behind the FusionModel port (contract in docs/models.md "Learned
 * fusion contract" and models/fixtures/fusion-graph.ts): embeddings + presence masks in,
 * (valence, arousal) and log variance out. Runs in a worker thread, batched across streams.
 */
import type { ModalityEstimate } from '../core/types.js';
import { AffectError } from '../core/errors.js';
import { DynamicBatcher } from './batcher.js';
import { precisionToConfidence } from './fusion-late.js';
import type { LoadModelOptions } from './load-options.js';
import type { ModelSpec } from './manifest.js';
import { openOnnxModel } from './onnx-session.js';
import type { FusionInput, FusionModel } from './ports.js';
import type { OrtWorkerSession } from './worker/host.js';

function dimOf(spec: ModelSpec, input: string): number {
  const d = spec.inputs.find((t) => t.name === input)?.dims[1];
  if (typeof d !== 'number') throw new RangeError(`fusion model ${spec.id}: input ${input} needs a fixed width in the manifest`);
  return d;
}

/** The ONNX fusion adapter. */
export class OnnxFusionModel implements FusionModel {
  readonly id: string;
  readonly provider: string;
  readonly batcher: DynamicBatcher<FusionInput, ModalityEstimate>;
  private readonly speechDim: number;
  private readonly textDim: number;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly session: OrtWorkerSession,
    opts: LoadModelOptions,
  ) {
    this.id = spec.id;
    this.provider = session.provider;
    this.speechDim = dimOf(spec, 'speech_emb');
    this.textDim = dimOf(spec, 'text_emb');
    this.batcher = new DynamicBatcher((items) => this.runBatch(items), {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs ?? 2,
      maxQueue: opts.maxQueue,
      stage: spec.id,
    });
  }

  /** Loads the model (files, device, signature). */
  static async load(spec: ModelSpec, opts: LoadModelOptions = {}): Promise<OnnxFusionModel> {
    if (spec.role !== 'fusion') throw new RangeError(`model ${spec.id} has role ${spec.role}, not fusion`);
    return new OnnxFusionModel(spec, await openOnnxModel(spec, opts), opts);
  }

  /**
   * Fuses one window's modalities. A modality without an embedding counts as missing (mask 0);
   * an embedding of the wrong width is a configuration error (the fusion was trained for other
   * encoders).
   */
  fuse(input: FusionInput): Promise<ModalityEstimate> {
    for (const [name, emb, want] of [
      ['speech', input.speech?.embedding, this.speechDim],
      ['text', input.text?.embedding, this.textDim],
    ] as const) {
      if (emb && emb.length !== want) {
        return Promise.reject(
          new AffectError('AFFECT_ERR_MODEL_SIGNATURE', `fusion model ${this.id} expects ${name} embeddings of ${want} values, got ${emb.length}`, {
            stage: this.id,
            hint: `use the ${name} encoder this fusion was trained with, or --fusion late`,
          }),
        );
      }
    }
    if (!input.speech?.embedding && !input.text?.embedding) return Promise.resolve({ valence: 0, arousal: 0, confidence: 0 });
    return this.batcher.submit(input);
  }

  private async runBatch(items: readonly FusionInput[]): Promise<ModalityEstimate[]> {
    const B = items.length;
    const se = new Float32Array(B * this.speechDim);
    const te = new Float32Array(B * this.textDim);
    const sm = new Float32Array(B);
    const tm = new Float32Array(B);
    items.forEach((it, i) => {
      const s = it.speech?.embedding;
      const t = it.text?.embedding;
      if (s) {
        se.set(s, i * this.speechDim);
        sm[i] = 1;
      }
      if (t) {
        te.set(t, i * this.textDim);
        tm[i] = 1;
      }
    });
    const out = await this.session.run({
      speech_emb: { type: 'float32', data: se, dims: [B, this.speechDim] },
      text_emb: { type: 'float32', data: te, dims: [B, this.textDim] },
      speech_mask: { type: 'float32', data: sm, dims: [B, 1] },
      text_mask: { type: 'float32', data: tm, dims: [B, 1] },
    });
    const va = out['va']?.data as Float32Array | undefined;
    const lv = out['log_var']?.data as Float32Array | undefined;
    if (!va || !lv) throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: outputs va/log_var missing`, { recoverable: true, stage: this.id });
    return items.map((_, i) => {
      const v = va[i * 2] ?? Number.NaN;
      const a = va[i * 2 + 1] ?? Number.NaN;
      const variance = (Math.exp(lv[i * 2] ?? Number.NaN) + Math.exp(lv[i * 2 + 1] ?? Number.NaN)) / 2;
      if (!Number.isFinite(v) || !Number.isFinite(a) || !Number.isFinite(variance)) {
        throw new AffectError('AFFECT_ERR_INFERENCE', `${this.id}: model returned a non-finite value`, { recoverable: true, stage: this.id });
      }
      return {
        valence: Math.max(-1, Math.min(1, v)),
        arousal: Math.max(-1, Math.min(1, a)),
        confidence: precisionToConfidence(1 / Math.max(variance, 1e-9)),
      };
    });
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.batcher.close();
      await this.session.close();
    })();
    return this.closing;
  }
}
