/**
 * Circumplex geometry: a valence/arousal point to an angle, an intensity and the nearest emotion
 * term with human-rated coordinates (Russell 1980, see emotion-terms.ts).
 */
import { RUSSELL_1980_TERMS, type EmotionTerm } from './emotion-terms.js';

/** Where a valence/arousal point sits on the circumplex. */
export interface CircumplexPosition {
  /** Direction in degrees in [0, 360): 0 = pleasant, 90 = aroused, counter-clockwise. */
  readonly angleDeg: number;
  /** Distance from the centre, clamped to [0, 1]. */
  readonly intensity: number;
  /** The nearest emotion term by angle, or {@link NEUTRAL_LABEL} near the centre. */
  readonly label: string;
}

/** Label of points too close to the centre for a direction to mean anything. */
export const NEUTRAL_LABEL = 'neutral';

/**
 * Below this intensity a point gets {@link NEUTRAL_LABEL}: at the centre the angle is arbitrary
 * (silence would otherwise read "pleased", the term at 0°).
 */
export const DEFAULT_NEUTRAL_INTENSITY = 0.1;

/** Clamps a number to [-1, 1]; non-finite values become 0 so no NaN ever leaves the geometry. */
export function clampUnit(v: number): number {
  if (!Number.isFinite(v)) return 0;
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/** The angle of a point in degrees, in [0, 360). The centre (0, 0) maps to 0. */
export function angleOf(valence: number, arousal: number): number {
  const deg = (Math.atan2(clampUnit(arousal), clampUnit(valence)) * 180) / Math.PI;
  // atan2 gives (-180, 180]; fold into [0, 360) and turn -0 into 0.
  const folded = deg < 0 ? deg + 360 : deg;
  return folded >= 360 || Object.is(folded, -0) ? 0 : folded;
}

/** Distance from the centre, clamped to [0, 1] (corners of the square would otherwise reach √2). */
export function intensityOf(valence: number, arousal: number): number {
  return Math.min(1, Math.hypot(clampUnit(valence), clampUnit(arousal)));
}

/** Smallest absolute difference between two angles in degrees, in [0, 180]. */
export function angularDistance(a: number, b: number): number {
  const d = Math.abs((((a - b) % 360) + 360) % 360);
  return d > 180 ? 360 - d : d;
}

/** The term whose direction is closest to `angleDeg` (ties: the first in the list). */
export function nearestTerm(angleDeg: number, terms: readonly EmotionTerm[] = RUSSELL_1980_TERMS): EmotionTerm {
  let best: EmotionTerm | undefined;
  let bestD = Infinity;
  for (const t of terms) {
    const d = angularDistance(angleDeg, t.angleDeg);
    if (d < bestD) {
      bestD = d;
      best = t;
    }
  }
  if (!best) throw new RangeError('nearestTerm: terms must not be empty');
  return best;
}

/** Angle, intensity and nearest term (or `neutral` when intensity < `neutralBelow`) of a valence/arousal point. */
export function locate(
  valence: number,
  arousal: number,
  terms: readonly EmotionTerm[] = RUSSELL_1980_TERMS,
  neutralBelow = DEFAULT_NEUTRAL_INTENSITY,
): CircumplexPosition {
  const angleDeg = angleOf(valence, arousal);
  const intensity = intensityOf(valence, arousal);
  const label = intensity < neutralBelow ? NEUTRAL_LABEL : nearestTerm(angleDeg, terms).term;
  return { angleDeg, intensity, label };
}
