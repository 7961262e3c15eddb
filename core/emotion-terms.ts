/**
 * Emotion terms with human-derived positions on the circumplex.
 *
 * Source: Russell, J. A. (1980). A circumplex model of affect. Journal of Personality and Social
 * Psychology, 39(6), 1161–1178. The angles are the directions of the 28 affect words in Russell's
 * scaling of human similarity sorts (pleasure = 0°, arousal = 90°, counter-clockwise), as commonly
 * reproduced in affective-computing work (secondary sources differ by a few degrees for some words;
 * these are the values we use and test against). Russell reports directions, not distances, so
 * every term sits on the unit circle: valence = cos(angle), arousal = sin(angle).
 */

/** An emotion term and where humans place it. */
export interface EmotionTerm {
  readonly term: string;
  /** Direction on the circumplex in degrees: 0 = pleasant, 90 = aroused, 180 = unpleasant, 270 = sleepy. */
  readonly angleDeg: number;
  /** cos(angle): unpleasant (-1) to pleasant (+1). */
  readonly valence: number;
  /** sin(angle): calm/sleepy (-1) to excited (+1). */
  readonly arousal: number;
}

const RUSSELL_1980_ANGLES: ReadonlyArray<readonly [string, number]> = [
  ['happy', 7.8],
  ['delighted', 24.9],
  ['excited', 48.6],
  ['astonished', 69.8],
  ['aroused', 73.8],
  ['tense', 92.8],
  ['alarmed', 96.5],
  ['angry', 99.1],
  ['afraid', 116.8],
  ['annoyed', 123.0],
  ['distressed', 138.0],
  ['frustrated', 141.0],
  ['miserable', 188.7],
  ['sad', 207.5],
  ['gloomy', 209.0],
  ['depressed', 211.5],
  ['bored', 241.9],
  ['droopy', 256.6],
  ['tired', 267.7],
  ['sleepy', 271.9],
  ['calm', 316.2],
  ['relaxed', 318.0],
  ['satisfied', 319.2],
  ['at ease', 321.0],
  ['content', 323.8],
  ['serene', 328.6],
  ['glad', 346.7],
  ['pleased', 353.2],
];

/** Russell's (1980) 28 circumplex terms, in order around the circle. */
export const RUSSELL_1980_TERMS: readonly EmotionTerm[] = RUSSELL_1980_ANGLES.map(([term, angleDeg]) => {
  const rad = (angleDeg * Math.PI) / 180;
  return { term, angleDeg, valence: Math.cos(rad), arousal: Math.sin(rad) };
});
