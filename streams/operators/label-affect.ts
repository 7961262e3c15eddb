/** Labelling stage: a smoothed estimate → AffectPoint with angle, intensity and nearest term. */
import { map, type OperatorFunction } from 'rxjs';
import type { EmotionTerm } from '../../core/emotion-terms.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { locate } from '../../core/circumplex.js';
import type { AffectEstimate, AffectPoint, Modality } from '../../core/types.js';

/** Options for {@link labelAffect}. */
export interface LabelAffectOptions {
  /** Emotion terms to choose from. Default: Russell (1980), 28 terms. */
  terms: readonly EmotionTerm[];
}

export const DEFAULT_LABEL_AFFECT: LabelAffectOptions = { terms: RUSSELL_1980_TERMS };

/** Adds circumplex geometry and the nearest term. */
export function labelAffect(opts: Partial<LabelAffectOptions> = {}): OperatorFunction<AffectEstimate, AffectPoint> {
  const { terms } = { ...DEFAULT_LABEL_AFFECT, ...opts };
  if (terms.length === 0) throw new RangeError('labelAffect: terms must not be empty');
  return map((e): AffectPoint => {
    const pos = locate(e.valence, e.arousal, terms);
    const modalities: Modality[] = [];
    if (e.speech) modalities.push('speech');
    if (e.text) modalities.push('text');
    return {
      streamId: e.streamId,
      tMs: e.tMs,
      valence: e.valence,
      arousal: e.arousal,
      confidence: e.confidence,
      ...(e.dominance !== undefined ? { dominance: e.dominance } : {}),
      label: pos.label,
      intensity: pos.intensity,
      angleDeg: pos.angleDeg,
      modalities,
      ...(e.speech ? { speech: e.speech } : {}),
      ...(e.text ? { text: e.text } : {}),
      droppedWindows: e.droppedWindows,
      ...(e.voiced !== undefined ? { voiced: e.voiced } : {}),
      ...(e.velocity !== undefined ? { velocity: e.velocity } : {}),
    };
  });
}
