/**
 * Turning text-model outputs into valence/arousal — the two real, general paths:
 *
 * (a) classifier: label probabilities weight each label's human-rated circumplex coordinates
 *     (models/text-lexicon.ts); confidence is the probability of the strongest non-neutral label.
 * (b) zero-shot: sentence embeddings of Russell's (1980) anchor terms with their rated coordinates
 *     fit a ridge regression embedding → (valence, arousal); a text's embedding goes through it.
 *     Confidence grows with how much closer the text is to its nearest anchor than anchors
 *     typically are to each other.
 */
import type { ModalityEstimate } from '../core/types.js';
import { goEmotionsPoint, type VaPoint } from './text-lexicon.js';

/** A label with its probability. */
export interface LabelScore {
  readonly label: string;
  readonly score: number;
}

/** Logits → probabilities: sigmoid for multi-label models, softmax otherwise. */
export function logitsToProbabilities(logits: ArrayLike<number>, multiLabel: boolean): number[] {
  const xs = Array.from(logits, (x) => (Number.isFinite(x) ? x : 0));
  if (multiLabel) return xs.map((x) => 1 / (1 + Math.exp(-x)));
  const max = Math.max(...xs);
  const ex = xs.map((x) => Math.exp(x - max));
  const sum = ex.reduce((a, b) => a + b, 0);
  return ex.map((e) => e / sum);
}

/** Keeps a point inside the unit disk. */
function clampDisk(p: VaPoint): VaPoint {
  const r = Math.hypot(p.valence, p.arousal);
  return r > 1 ? { valence: p.valence / r, arousal: p.arousal / r } : p;
}

/**
 * (a) Projects label probabilities onto the circumplex: the probability-weighted mean of the
 * labels' coordinates (`neutral` sits at the centre and so pulls towards it).
 */
export function projectLabels(scores: readonly LabelScore[], pointOf: (label: string) => VaPoint = goEmotionsPoint): ModalityEstimate {
  let sum = 0;
  let v = 0;
  let a = 0;
  let strongest = 0;
  for (const { label, score } of scores) {
    if (!Number.isFinite(score) || score <= 0) continue;
    const p = pointOf(label);
    sum += score;
    v += score * p.valence;
    a += score * p.arousal;
    if (label !== 'neutral') strongest = Math.max(strongest, score);
  }
  if (sum <= 0) return { valence: 0, arousal: 0, confidence: 0 };
  const pt = clampDisk({ valence: v / sum, arousal: a / sum });
  return { ...pt, confidence: Math.min(1, strongest) };
}

/** An anchor: an embedding and its rated coordinates. */
export interface Anchor {
  readonly embedding: Float32Array;
  readonly point: VaPoint;
}

/** A fitted zero-shot map. */
export interface ZeroShotMap {
  /** Embedding width. */
  readonly dim: number;
  /** Anchor mean (centring). */
  readonly mean: Float64Array;
  /** Weights [dim × 2]: column 0 valence, 1 arousal. */
  readonly weights: Float64Array;
  readonly intercept: VaPoint;
  /** Unit-normalised anchors, for the similarity confidence. */
  readonly anchors: readonly Float64Array[];
  /** Mean cosine similarity between distinct anchors: the "typical" closeness. */
  readonly baselineCos: number;
}

/** Solves A x = b for a small symmetric positive-definite A (n × n, row-major) by Cholesky. */
function solveSpd(A: Float64Array, n: number, b: Float64Array): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j] ?? 0;
      for (let k = 0; k < j; k++) s -= (L[i * n + k] ?? 0) * (L[j * n + k] ?? 0);
      L[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / (L[j * n + j] ?? 1);
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i] ?? 0;
    for (let k = 0; k < i; k++) s -= (L[i * n + k] ?? 0) * (y[k] ?? 0);
    y[i] = s / (L[i * n + i] ?? 1);
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i] ?? 0;
    for (let k = i + 1; k < n; k++) s -= (L[k * n + i] ?? 0) * (x[k] ?? 0);
    x[i] = s / (L[i * n + i] ?? 1);
  }
  return x;
}

function unit(v: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(v);
  const n = Math.hypot(...out) || 1;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / n;
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

/**
 * (b) Fits ridge regression from anchor embeddings to their coordinates, in the dual (kernel)
 * form since there are far fewer anchors than dimensions: W = Xcᵀ (Xc Xcᵀ + λI)⁻¹ Yc, with λ
 * `ridge` × the mean squared anchor norm (scale-free).
 */
export function fitZeroShot(anchors: readonly Anchor[], ridge = 0.1): ZeroShotMap {
  const n = anchors.length;
  if (n < 3) throw new RangeError(`fitZeroShot: need at least 3 anchors, got ${n}`);
  const dim = anchors[0]?.embedding.length ?? 0;
  if (anchors.some((a) => a.embedding.length !== dim)) throw new RangeError('fitZeroShot: anchors have different embedding sizes');
  const mean = new Float64Array(dim);
  for (const a of anchors) for (let d = 0; d < dim; d++) mean[d] = (mean[d] ?? 0) + (a.embedding[d] ?? 0) / n;
  const xc = anchors.map((a) => Float64Array.from(a.embedding, (x, d) => x - (mean[d] ?? 0)));
  const yv = anchors.reduce((s, a) => s + a.point.valence, 0) / n;
  const ya = anchors.reduce((s, a) => s + a.point.arousal, 0) / n;
  const K = new Float64Array(n * n);
  let trace = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) K[i * n + j] = dot(xc[i] as Float64Array, xc[j] as Float64Array);
    trace += K[i * n + i] ?? 0;
  }
  const lambda = ridge * (trace / n || 1);
  for (let i = 0; i < n; i++) K[i * n + i] = (K[i * n + i] ?? 0) + lambda;
  const alphaV = solveSpd(
    K,
    n,
    Float64Array.from(anchors, (a) => a.point.valence - yv),
  );
  const alphaA = solveSpd(
    K,
    n,
    Float64Array.from(anchors, (a) => a.point.arousal - ya),
  );
  const weights = new Float64Array(dim * 2);
  for (let i = 0; i < n; i++) {
    const row = xc[i] as Float64Array;
    for (let d = 0; d < dim; d++) {
      weights[d * 2] = (weights[d * 2] ?? 0) + (row[d] ?? 0) * (alphaV[i] ?? 0);
      weights[d * 2 + 1] = (weights[d * 2 + 1] ?? 0) + (row[d] ?? 0) * (alphaA[i] ?? 0);
    }
  }
  const units = anchors.map((a) => unit(a.embedding));
  let cosSum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      cosSum += dot(units[i] as Float64Array, units[j] as Float64Array);
      pairs += 1;
    }
  }
  return { dim, mean, weights, intercept: { valence: yv, arousal: ya }, anchors: units, baselineCos: cosSum / pairs };
}

/** Applies a fitted zero-shot map to one embedding. */
export function applyZeroShot(map: ZeroShotMap, embedding: ArrayLike<number>): ModalityEstimate {
  if (embedding.length !== map.dim) throw new RangeError(`applyZeroShot: embedding has ${embedding.length} dims, map expects ${map.dim}`);
  let v = map.intercept.valence;
  let a = map.intercept.arousal;
  for (let d = 0; d < map.dim; d++) {
    const x = (embedding[d] ?? 0) - (map.mean[d] ?? 0);
    v += x * (map.weights[d * 2] ?? 0);
    a += x * (map.weights[d * 2 + 1] ?? 0);
  }
  const u = unit(embedding);
  let best = -1;
  for (const an of map.anchors) best = Math.max(best, dot(u, an));
  const confidence = Math.min(1, Math.max(0, (best - map.baselineCos) / (1 - map.baselineCos)));
  const pt = clampDisk({ valence: Number.isFinite(v) ? v : 0, arousal: Number.isFinite(a) ? a : 0 });
  return { ...pt, confidence: Number.isFinite(confidence) ? confidence : 0 };
}
