/**
 * The model registry: loads manifest models by id behind the ports in models/ports.ts.
 *
 * ```ts
 * const speech = await loadSpeechModel('speech-fixture', { device: 'cpu' });
 * const out = await speech.infer(new Float32Array(16000)); // { valence, arousal, dominance, confidence, embedding }
 * await speech.close();
 * ```
 */
import { AffectError } from '../core/errors.js';
import { LateFusion } from './fusion-late.js';
import { OnnxFusionModel } from './fusion-onnx.js';
import type { LoadModelOptions } from './load-options.js';
import { MODEL_SPECS, findModelSpec, type ModelRole, type ModelSpec } from './manifest.js';
import type { FusionModel, SpeechAffectModel, TextAffectModel } from './ports.js';
import { OnnxSpeechModel } from './speech-onnx.js';
import { TransformersTextModel, type TextModelOptions } from './text-model.js';

export type { LoadModelOptions } from './load-options.js';
export type { TextModelOptions } from './text-model.js';

/** The roles a text model (`--text-model`) may have. */
export const TEXT_MODEL_ROLES: readonly ModelRole[] = ['text-classifier', 'text-embed', 'text-regression'];

/** Looks a model up by id (or passes a spec through), checking its role. */
export function resolveSpec(idOrSpec: string | ModelSpec, roles: readonly ModelRole[]): ModelSpec {
  const spec = typeof idOrSpec === 'string' ? findModelSpec(idOrSpec) : idOrSpec;
  if (!spec) {
    const known = Object.values(MODEL_SPECS as Record<string, ModelSpec>)
      .filter((s) => roles.includes(s.role))
      .map((s) => s.id);
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      `unknown ${roles.join('/')} model "${typeof idOrSpec === 'string' ? idOrSpec : idOrSpec.id}". Should be one of: ${known.join(', ')}`,
      {
        hint: 'circumplex models list shows every model',
      },
    );
  }
  if (!roles.includes(spec.role)) {
    throw new AffectError('AFFECT_ERR_CONFIG', `model ${spec.id} is a ${spec.role} model, not ${roles.join('/')}`, {
      hint: "circumplex models list shows each model's role",
    });
  }
  return spec;
}

/** Loads a speech affect model (ONNX in a worker thread, cross-stream batched). */
export async function loadSpeechModel(idOrSpec: string | ModelSpec, opts: LoadModelOptions = {}): Promise<SpeechAffectModel> {
  return OnnxSpeechModel.load(resolveSpec(idOrSpec, ['speech']), opts);
}

/**
 * Loads a text affect model through transformers.js (offline, worker thread): a GoEmotions-style
 * classifier (`text-classifier-fixture`, `roberta-go-emotions`), a sentence-embedding model used
 * zero-shot (`text-embed-fixture`, `minilm-l6`) or a valence/arousal/dominance regression model
 * (the bundled `text-emobank`).
 */
export async function loadTextModel(idOrSpec: string | ModelSpec, opts: TextModelOptions = {}): Promise<TextAffectModel> {
  return TransformersTextModel.load(resolveSpec(idOrSpec, TEXT_MODEL_ROLES), opts);
}

/** Loads a fusion model: `late` (training-free precision-weighted fusion) or an ONNX fusion model. */
export async function loadFusion(idOrSpec: string | ModelSpec, opts: LoadModelOptions = {}): Promise<FusionModel> {
  if (idOrSpec === 'late') return new LateFusion();
  const spec = resolveSpec(idOrSpec, ['fusion']);
  return OnnxFusionModel.load(spec, opts);
}
