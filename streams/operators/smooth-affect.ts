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
import type { AffectEstimate } from '../../core/types.js';
import { createFilter, resolveSmoothingOptions, type SmoothingOptions } from '../smoothing.js';

export type { SmoothingOptions } from '../smoothing.js';
export { DEFAULT_SMOOTHING } from '../smoothing.js';

/** Options for {@link smoothAffect}: the smoothing options plus a callback for dropped points. */
export interface SmoothAffectOptions extends SmoothingOptions {
  /** Called when a non-finite estimate is dropped. */
  onInvalid?: (e: AffectEstimate) => void;
  /**
   * Voice activity hold: an estimate whose `voiced` is below this fraction does not move the
   * trajectory; its frame repeats the last smoothed point (neutral 0, 0 before any speech) with
   * velocity 0 and the confidence decaying with holdTauMs. Undefined (default): no hold, `voiced`
   * is only passed on.
   */
  holdBelowVoiced?: number;
  /** Time constant (ms of audio) of the confidence decay while holding. Default 2000. */
  holdTauMs?: number;
}

const finite = (e: AffectEstimate): boolean =>
  Number.isFinite(e.valence) && Number.isFinite(e.arousal) && Number.isFinite(e.confidence) && Number.isFinite(e.tMs);
const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/** AffectEstimate → smoothed AffectEstimate (values clamped: valence/arousal to [-1, 1], confidence to [0, 1]). */
export function smoothAffect(opts: Partial<SmoothAffectOptions> = {}): OperatorFunction<AffectEstimate, AffectEstimate> {
  const o = resolveSmoothingOptions(opts);
  const holdBelow = opts.holdBelowVoiced;
  const holdTauMs = opts.holdTauMs ?? 2000;
  if (holdBelow !== undefined && !(holdBelow >= 0 && holdBelow <= 1)) throw new RangeError(`smoothAffect: holdBelowVoiced must be in [0, 1], got ${holdBelow}`);
  if (!(holdTauMs > 0) || !Number.isFinite(holdTauMs)) throw new RangeError(`smoothAffect: holdTauMs must be > 0, got ${holdTauMs}`);
  return (source) =>
    new Observable<AffectEstimate>((sub) => {
      // One filter per subscription (per stream).
      const filter = createFilter(o);
      // Dominance rides on the valence axis of its own filter (every filter treats the axes independently).
      const dominanceFilter = createFilter(o);
      let invalid = 0;
      let lastT = -Infinity;
      // The last emitted point (for holds and finite-difference velocity).
      let last: { tMs: number; valence: number; arousal: number; confidence: number; dominance?: number } | undefined;
      let held = false;
      return source.subscribe({
        next: (e) => {
          // Non-finite values, and points that would go back in audio time, are dropped and counted.
          if (!finite(e) || e.tMs < lastT) {
            invalid += 1 + e.droppedWindows;
            opts.onInvalid?.(e);
            return;
          }
          const dtMs = lastT === -Infinity ? 0 : e.tMs - lastT;
          lastT = e.tMs;
          if (holdBelow !== undefined && e.voiced !== undefined && e.voiced < holdBelow) {
            // Not speech: the trajectory stays put, its confidence decays, the filters' clocks move on.
            filter.coast(e.tMs);
            dominanceFilter.coast(e.tMs);
            held = true;
            const { dominance: _d, speech: _s, text: _t, ...base } = e;
            const c = last ? last.confidence * Math.exp(-Math.max(0, dtMs) / holdTauMs) : 0;
            last = {
              tMs: e.tMs,
              valence: last?.valence ?? 0,
              arousal: last?.arousal ?? 0,
              confidence: c,
              ...(last?.dominance !== undefined ? { dominance: last.dominance } : {}),
            };
            sub.next({
              ...base,
              valence: last.valence,
              arousal: last.arousal,
              confidence: clamp(c, 0, 1),
              ...(last.dominance !== undefined ? { dominance: last.dominance } : {}),
              ...(e.speech ? { speech: e.speech } : {}),
              ...(e.text ? { text: e.text } : {}),
              velocity: { valence: 0, arousal: 0 },
              droppedWindows: e.droppedWindows + invalid,
            });
            invalid = 0;
            return;
          }
          const confidence = clamp(e.confidence, 0, 1);
          const s = filter.update({ tMs: e.tMs, valence: clamp(e.valence, -1, 1), arousal: clamp(e.arousal, -1, 1), confidence });
          const { dominance: rawDominance, ...rest } = e;
          const dominance =
            rawDominance !== undefined && Number.isFinite(rawDominance)
              ? clamp(dominanceFilter.update({ tMs: e.tMs, valence: clamp(rawDominance, -1, 1), arousal: 0, confidence }).valence, -1, 1)
              : undefined;
          const valence = clamp(s.valence, -1, 1);
          const arousal = clamp(s.arousal, -1, 1);
          // The filter's own velocity (kalman-cv), else the finite difference of the smoothed points
          // (0 on the first point and on the first point after a hold).
          const dtS = last && !held ? (e.tMs - last.tMs) / 1000 : 0;
          const velocity =
            s.velocity && Number.isFinite(s.velocity.valence) && Number.isFinite(s.velocity.arousal)
              ? { valence: s.velocity.valence, arousal: s.velocity.arousal }
              : last && dtS > 0
                ? { valence: (valence - last.valence) / dtS, arousal: (arousal - last.arousal) / dtS }
                : { valence: 0, arousal: 0 };
          held = false;
          last = { tMs: e.tMs, valence, arousal, confidence: clamp(s.confidence, 0, 1), ...(dominance !== undefined ? { dominance } : {}) };
          sub.next({
            ...rest,
            valence,
            arousal,
            confidence: clamp(s.confidence, 0, 1),
            ...(dominance !== undefined ? { dominance } : {}),
            velocity,
            droppedWindows: e.droppedWindows + invalid,
          });
          invalid = 0;
        },
        error: (err: unknown) => sub.error(err),
        complete: () => sub.complete(),
      });
    });
}
