/**
 * Human-rated positions of emotion words on the circumplex, used to turn text-model outputs into
 * valence/arousal:
 *
 * - GoEmotions labels (Demszky et al., 2020, "GoEmotions: A Dataset of Fine-Grained Emotions",
 *   ACL) have no circumplex coordinates of their own, so each is mapped to the nearest of Russell's
 *   (1980) 28 terms (core/emotion-terms.ts), whose directions come from human similarity sorts.
 *   Labels with no close Russell term (confusion, curiosity, realization, disapproval, ...) take the
 *   closest direction at reduced intensity (< 1) to say they are milder or more ambiguous; `neutral`
 *   sits at the centre. The intensities are this project's choice and are documented here and in
 *   docs/models.md ("GoEmotions → circumplex").
 * - The zero-shot path uses RUSSELL_1980_TERMS themselves as anchors.
 */
import { RUSSELL_1980_TERMS } from '../core/emotion-terms.js';
import { GO_EMOTIONS_LABELS } from './manifest.js';

/** A point on the circumplex. */
export interface VaPoint {
  readonly valence: number;
  readonly arousal: number;
}

/** Each GoEmotions label → [nearest Russell term, intensity 0..1]; `neutral` → centre. */
export const GO_EMOTIONS_TO_RUSSELL: Readonly<Record<(typeof GO_EMOTIONS_LABELS)[number], readonly [string, number] | null>> = {
  admiration: ['pleased', 0.8],
  amusement: ['delighted', 1],
  anger: ['angry', 1],
  annoyance: ['annoyed', 0.8],
  approval: ['satisfied', 0.6],
  caring: ['content', 0.7],
  confusion: ['frustrated', 0.4],
  curiosity: ['astonished', 0.5],
  desire: ['aroused', 0.8],
  disappointment: ['sad', 0.7],
  disapproval: ['annoyed', 0.5],
  disgust: ['distressed', 0.9],
  embarrassment: ['distressed', 0.6],
  excitement: ['excited', 1],
  fear: ['afraid', 1],
  gratitude: ['glad', 0.9],
  grief: ['miserable', 1],
  joy: ['happy', 1],
  love: ['delighted', 0.9],
  nervousness: ['tense', 0.8],
  optimism: ['pleased', 0.7],
  pride: ['excited', 0.7],
  realization: ['astonished', 0.3],
  relief: ['relaxed', 0.8],
  remorse: ['sad', 0.8],
  sadness: ['sad', 1],
  surprise: ['astonished', 1],
  neutral: null,
};

/** Coordinates of a Russell term scaled by an intensity. */
export function russellPoint(term: string, intensity = 1): VaPoint {
  const t = RUSSELL_1980_TERMS.find((x) => x.term === term);
  if (!t) throw new RangeError(`unknown Russell (1980) term "${term}"`);
  return { valence: intensity * t.valence, arousal: intensity * t.arousal };
}

/** Circumplex coordinates of a GoEmotions label (unknown labels → centre). */
export function goEmotionsPoint(label: string): VaPoint {
  const m = (GO_EMOTIONS_TO_RUSSELL as Record<string, readonly [string, number] | null>)[label];
  return m ? russellPoint(m[0], m[1]) : { valence: 0, arousal: 0 };
}
