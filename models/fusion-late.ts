/**
 * The training-free default fusion: precision-weighted late fusion. Each modality gives a point
 * (valence, arousal) and a confidence c in [0, 1], read as a precision p = c / (1 − c) (so c = 0.5
 * is unit precision, σ² = 1/p). The fused point is the precision-weighted mean and the fused
 * precision the sum, turned back into a confidence p / (1 + p) — the Gaussian product rule under
 * independent errors. A missing modality (or one with a non-finite value) contributes nothing;
 * with none, the result is the centre with confidence 0. Never NaN.
 *
 * Dominance is fused the same way over the modalities that supply it (e.g. only text): the result
 * has `dominance` only when at least one usable modality had a finite one.
 */
import type { ModalityEstimate } from '../core/types.js';
import type { FusionInput, FusionModel } from './ports.js';

/** Confidence is capped below 1 so precision stays finite. */
const MAX_CONFIDENCE = 0.999;

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function usable(e: ModalityEstimate | undefined): e is ModalityEstimate {
  return !!e && Number.isFinite(e.valence) && Number.isFinite(e.arousal) && Number.isFinite(e.confidence) && e.confidence > 0;
}

/** Confidence → precision. */
export function confidenceToPrecision(c: number): number {
  const cc = clamp(c, 0, MAX_CONFIDENCE);
  return cc / (1 - cc);
}

/** Precision → confidence. */
export function precisionToConfidence(p: number): number {
  return p <= 0 ? 0 : clamp(p / (1 + p), 0, MAX_CONFIDENCE);
}

/** Fuses any number of modality estimates (pure). */
export function lateFuse(estimates: ReadonlyArray<ModalityEstimate | undefined>): ModalityEstimate {
  let pSum = 0;
  let v = 0;
  let a = 0;
  // Dominance has its own precision sum: only the modalities that predict it take part.
  let pDom = 0;
  let d = 0;
  for (const e of estimates) {
    if (!usable(e)) continue;
    const p = confidenceToPrecision(e.confidence);
    pSum += p;
    v += p * clamp(e.valence, -1, 1);
    a += p * clamp(e.arousal, -1, 1);
    if (e.dominance !== undefined && Number.isFinite(e.dominance)) {
      pDom += p;
      d += p * clamp(e.dominance, -1, 1);
    }
  }
  if (pSum <= 0) return { valence: 0, arousal: 0, confidence: 0 };
  const fused = { valence: v / pSum, arousal: a / pSum, confidence: precisionToConfidence(pSum) };
  return pDom > 0 ? { ...fused, dominance: d / pDom } : fused;
}

/** {@link lateFuse} behind the FusionModel port (id `late`). */
export class LateFusion implements FusionModel {
  readonly id = 'late';
  readonly provider = 'js';
  fuse(input: FusionInput): Promise<ModalityEstimate> {
    return Promise.resolve(lateFuse([input.speech, input.text]));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
