/**
 * Smoothing stage: runs a filter (EMA, One-Euro or Kalman; see streams/smoothing.ts) over the
 * fused estimates in audio time. Non-finite estimates are dropped and counted into the next
 * frame's droppedWindows, so no NaN ever reaches a subscriber.
 *
 * Dominance, when an estimate has it, is smoothed by a second filter of the same kind and time
 * constants, updated only by the estimates that carry it (its own audio-time steps); a frame whose
 * estimate has no (finite) dominance has none either.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { AffectEstimate } from '../types.js';
import { createFilter, resolveSmoothingOptions, type SmoothingOptions } from '../smoothing.js';

export type { SmoothingOptions } from '../smoothing.js';
export { DEFAULT_SMOOTHING } from '../smoothing.js';

/** Options for {@link smoothAffect}: the smoothing options plus a callback for dropped points. */
export interface SmoothAffectOptions extends SmoothingOptions {
  /** Called when a non-finite estimate is dropped. */
  onInvalid?: (e: AffectEstimate) => void;
}

const finite = (e: AffectEstimate): boolean => Number.isFinite(e.valence) && Number.isFinite(e.arousal) && Number.isFinite(e.confidence) && Number.isFinite(e.tMs);
const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/** AffectEstimate → smoothed AffectEstimate (values clamped: valence/arousal to [-1, 1], confidence to [0, 1]). */
export function smoothAffect(opts: Partial<SmoothAffectOptions> = {}): OperatorFunction<AffectEstimate, AffectEstimate> {
  const o = resolveSmoothingOptions(opts);
  return (source) =>
    new Observable<AffectEstimate>((sub) => {
      // One filter per subscription (per stream).
      const filter = createFilter(o);
      // Dominance rides on the valence axis of its own filter (every filter treats the axes independently).
      const dominanceFilter = createFilter(o);
      let invalid = 0;
      let lastT = -Infinity;
      return source.subscribe({
        next: (e) => {
          // Non-finite values, and points that would go back in audio time, are dropped and counted.
          if (!finite(e) || e.tMs < lastT) {
            invalid += 1 + e.droppedWindows;
            opts.onInvalid?.(e);
            return;
          }
          lastT = e.tMs;
          const confidence = clamp(e.confidence, 0, 1);
          const s = filter.update({ tMs: e.tMs, valence: clamp(e.valence, -1, 1), arousal: clamp(e.arousal, -1, 1), confidence });
          const { dominance: rawDominance, ...rest } = e;
          const dominance =
            rawDominance !== undefined && Number.isFinite(rawDominance)
              ? clamp(dominanceFilter.update({ tMs: e.tMs, valence: clamp(rawDominance, -1, 1), arousal: 0, confidence }).valence, -1, 1)
              : undefined;
          sub.next({
            ...rest,
            valence: clamp(s.valence, -1, 1),
            arousal: clamp(s.arousal, -1, 1),
            confidence: clamp(s.confidence, 0, 1),
            ...(dominance !== undefined ? { dominance } : {}),
            droppedWindows: e.droppedWindows + invalid,
          });
          invalid = 0;
        },
        error: (err: unknown) => sub.error(err),
        complete: () => sub.complete(),
      });
    });
}
