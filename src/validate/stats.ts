/**
 * Statistics for `circumplex validate`: linear and rank correlation per dimension, circular
 * (angular) correlation, circular rank correlation, and measures of whether the order of terms
 * around the circle is preserved. Pure functions, no dependencies.
 *
 * Every function that can be undefined for its input (a constant series, a degenerate angle set)
 * returns `null` instead of NaN, so reports say "undefined" rather than carrying a silent NaN.
 * Invalid input (length mismatch, too few points, non-finite numbers) throws a RangeError.
 */

const TWO_PI = 2 * Math.PI;

/** Degrees to radians. */
export function toRad(deg: number): number {
  return (deg * Math.PI) / 180;
}

/** Radians to degrees. */
export function toDeg(rad: number): number {
  return (rad * 180) / Math.PI;
}

/** Wraps an angle in degrees to [0, 360). */
export function wrapDeg360(deg: number): number {
  const r = deg % 360;
  return r < 0 ? r + 360 : r;
}

/** Wraps an angle difference in degrees to (-180, 180]. */
export function wrapDeg180(deg: number): number {
  const r = wrapDeg360(deg);
  return r > 180 ? r - 360 : r;
}

/** The circumplex angle of a (valence, arousal) point: 0° = pleasant, 90° = aroused, counter-clockwise, in [0, 360). */
export function angleDegOf(valence: number, arousal: number): number {
  return wrapDeg360(toDeg(Math.atan2(arousal, valence)));
}

function checkPaired(name: string, x: readonly number[], y: readonly number[], minN: number): void {
  if (x.length !== y.length) throw new RangeError(`${name}: series lengths differ (${x.length} vs ${y.length})`);
  if (x.length < minN) throw new RangeError(`${name}: needs at least ${minN} pairs, got ${x.length}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) {
      throw new RangeError(`${name}: value ${i} is not a finite number (${String(x[i])}, ${String(y[i])})`);
    }
  }
}

/** Arithmetic mean. */
export function mean(x: readonly number[]): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

/**
 * Pearson's product-moment correlation. `null` when either series is constant (the correlation is
 * undefined, not zero).
 */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  checkPaired('pearson', x, y, 2);
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = (x[i] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  // Relative threshold: float noise on a constant series must not pass as variance.
  const eps = 1e-24 * Math.max(1, mx * mx, my * my) * x.length;
  if (sxx <= eps || syy <= eps) return null;
  return clamp1(sxy / Math.sqrt(sxx * syy));
}

/**
 * Ranks starting at 1; tied values get the mean of the ranks they span (fractional ranking),
 * which is what makes Spearman's rho correct with ties.
 */
export function averageRanks(x: readonly number[]): number[] {
  const idx = x.map((_, i) => i).sort((a, b) => (x[a] as number) - (x[b] as number));
  const ranks = new Array<number>(x.length).fill(0);
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1] as number] === x[idx[i] as number]) j++;
    const r = (i + j) / 2 + 1; // mean of ranks i+1 .. j+1
    for (let k = i; k <= j; k++) ranks[idx[k] as number] = r;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's rank correlation: Pearson on average ranks (handles ties). `null` when either series is constant. */
export function spearman(x: readonly number[], y: readonly number[]): number | null {
  checkPaired('spearman', x, y, 2);
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Circular mean direction in radians, or `null` when the mean resultant length is ~0 (angles
 * spread evenly: no mean direction).
 */
export function circularMean(anglesRad: readonly number[]): number | null {
  let c = 0;
  let s = 0;
  for (const a of anglesRad) {
    c += Math.cos(a);
    s += Math.sin(a);
  }
  if (Math.hypot(c, s) / anglesRad.length < 1e-12) return null;
  return Math.atan2(s, c);
}

/**
 * Jammalamadaka & SenGupta (1988; "Topics in Circular Statistics", 2001, §8.2) circular–circular
 * correlation:
 *
 *   r = Σ sin(αᵢ − ᾱ) sin(βᵢ − β̄) / √(Σ sin²(αᵢ − ᾱ) · Σ sin²(βᵢ − β̄))
 *
 * with ᾱ, β̄ the circular means. In [-1, 1]; `null` when a mean direction is undefined or a series
 * has no spread about its mean.
 */
export function circularCorrelation(alphaRad: readonly number[], betaRad: readonly number[]): number | null {
  checkPaired('circularCorrelation', alphaRad, betaRad, 2);
  const ma = circularMean(alphaRad);
  const mb = circularMean(betaRad);
  if (ma === null || mb === null) return null;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < alphaRad.length; i++) {
    const sa = Math.sin((alphaRad[i] as number) - ma);
    const sb = Math.sin((betaRad[i] as number) - mb);
    num += sa * sb;
    da += sa * sa;
    db += sb * sb;
  }
  if (da < 1e-18 || db < 1e-18) return null;
  return clamp1(num / Math.sqrt(da * db));
}

/**
 * Circular ranks as uniform scores: the angles are ranked around the circle (average ranks for
 * ties) and mapped to γᵢ = 2π·rankᵢ/n. The starting point of the ranking is arbitrary; the rank
 * correlation below is invariant to it (a different start is a rotation of the scores).
 */
export function circularUniformScores(anglesRad: readonly number[]): number[] {
  const wrapped = anglesRad.map((a) => ((a % TWO_PI) + TWO_PI) % TWO_PI);
  const n = wrapped.length;
  return averageRanks(wrapped).map((r) => (TWO_PI * r) / n);
}

/**
 * Fisher & Lee (1982, Biometrika 69:315–321) circular rank correlation, as given in Fisher (1993,
 * "Statistical Analysis of Circular Data", §6.3.3):
 *
 *   Πₙ = r₁² − r₂²,   r₁ = |1/n Σ e^{i(γᵢ − δᵢ)}|,   r₂ = |1/n Σ e^{i(γᵢ + δᵢ)}|
 *
 * where γ, δ are the circular uniform scores of the two samples. +1: the predicted circular order
 * is the human order up to a rotation; −1: it is a mirror image (reflection); ~0: unrelated.
 * Needs n ≥ 3 (with two points every order is both a rotation and a reflection).
 */
export function circularRankCorrelation(alphaRad: readonly number[], betaRad: readonly number[]): number {
  checkPaired('circularRankCorrelation', alphaRad, betaRad, 3);
  const g = circularUniformScores(alphaRad);
  const d = circularUniformScores(betaRad);
  let c1 = 0;
  let s1 = 0;
  let c2 = 0;
  let s2 = 0;
  for (let i = 0; i < g.length; i++) {
    const gi = g[i] as number;
    const di = d[i] as number;
    c1 += Math.cos(gi - di);
    s1 += Math.sin(gi - di);
    c2 += Math.cos(gi + di);
    s2 += Math.sin(gi + di);
  }
  const n = g.length;
  return clamp1((c1 * c1 + s1 * s1 - (c2 * c2 + s2 * s2)) / (n * n));
}

/** Mean absolute angular error in degrees (each difference wrapped to (-180, 180]). */
export function meanAbsAngularErrorDeg(humanDeg: readonly number[], predDeg: readonly number[]): number {
  checkPaired('meanAbsAngularErrorDeg', humanDeg, predDeg, 1);
  let s = 0;
  for (let i = 0; i < humanDeg.length; i++) s += Math.abs(wrapDeg180((predDeg[i] as number) - (humanDeg[i] as number)));
  return s / humanDeg.length;
}

/** How well the human order of terms around the circle survives in the predictions. */
export interface OrderingAgreement {
  /**
   * Sort the terms by human angle (counter-clockwise) and walk the n cyclically adjacent pairs
   * (last → first included). A pair is preserved when the predicted angle of the second term lies
   * counter-clockwise of the first, i.e. its signed difference wrapped to (-180°, 180°] is > 0.
   * This is the fraction of preserved pairs: 1 = every neighbour keeps its side. Pairs of terms at
   * the same human angle are left out (`null` if no pair is left).
   */
  readonly adjacentPairsPreserved: number | null;
  readonly adjacentPairs: number;
  /**
   * Kendall-like circular concordance: over all triples of terms, the fraction whose cyclic
   * orientation (clockwise vs counter-clockwise) is the same in the predictions as in the human
   * positions. 1 = same circular order, 0 = mirror image, ~0.5 = unrelated. Triples that are
   * degenerate (two coincident angles) in either set are left out.
   */
  readonly tripletConcordance: number | null;
  readonly triplets: number;
}

/** Orientation of three angles on the circle: +1 counter-clockwise, −1 clockwise, 0 degenerate. */
export function cyclicOrientation(a: number, b: number, c: number): -1 | 0 | 1 {
  // For points on the unit circle, sin(b−a) + sin(c−b) + sin(a−c) = 4·sin((b−a)/2)·sin((c−b)/2)·sin((a−c)/2)
  // has the sign of the triangle's signed area: positive when a → b → c runs counter-clockwise.
  const v = Math.sin(b - a) + Math.sin(c - b) + Math.sin(a - c);
  if (Math.abs(v) < 1e-12) return 0;
  return v > 0 ? 1 : -1;
}

/** Ordering agreement between human and predicted angles (radians), see {@link OrderingAgreement}. */
export function orderingAgreement(humanRad: readonly number[], predRad: readonly number[]): OrderingAgreement {
  checkPaired('orderingAgreement', humanRad, predRad, 3);
  const n = humanRad.length;
  const order = humanRad.map((_, i) => i).sort((i, j) => wrapRad(humanRad[i] as number) - wrapRad(humanRad[j] as number));
  let kept = 0;
  let pairs = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const j = order[(k + 1) % n] as number;
    // Terms humans put at the same angle have no order between them: leave the pair out.
    if (Math.abs(wrapDeg180(toDeg((humanRad[j] as number) - (humanRad[i] as number)))) < 1e-9) continue;
    pairs++;
    if (wrapDeg180(toDeg((predRad[j] as number) - (predRad[i] as number))) > 0) kept++;
  }
  let concordant = 0;
  let counted = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      for (let k = j + 1; k < n; k++) {
        const h = cyclicOrientation(humanRad[i] as number, humanRad[j] as number, humanRad[k] as number);
        const p = cyclicOrientation(predRad[i] as number, predRad[j] as number, predRad[k] as number);
        if (h === 0 || p === 0) continue;
        counted++;
        if (h === p) concordant++;
      }
    }
  }
  return {
    adjacentPairsPreserved: pairs === 0 ? null : kept / pairs,
    adjacentPairs: pairs,
    tripletConcordance: counted === 0 ? null : concordant / counted,
    triplets: counted,
  };
}

function wrapRad(a: number): number {
  return ((a % TWO_PI) + TWO_PI) % TWO_PI;
}

function clamp1(v: number): number {
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/** Percentile by linear interpolation between closest ranks (p in [0, 100]); `null` for an empty sample. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * Lin's concordance correlation coefficient with population moments (divide by n), exactly as
 * training/common/metrics.py `ccc`: 2·cov / (var_t + var_p + (mean_t − mean_p)²); 0 when the
 * denominator is 0 (both series constant and equal). Penalises bias and scale, unlike Pearson.
 */
export function ccc(truth: readonly number[], pred: readonly number[]): number {
  checkPaired('ccc', truth, pred, 1);
  const mt = mean(truth);
  const mp = mean(pred);
  let vt = 0;
  let vp = 0;
  let cov = 0;
  for (let i = 0; i < truth.length; i++) {
    const dt = (truth[i] as number) - mt;
    const dp = (pred[i] as number) - mp;
    vt += dt * dt;
    vp += dp * dp;
    cov += dt * dp;
  }
  const n = truth.length;
  const den = vt / n + vp / n + (mt - mp) ** 2;
  return den > 0 ? (2 * cov) / n / den : 0;
}

/** Root mean squared error, as training/common/metrics.py `rmse`. */
export function rmse(truth: readonly number[], pred: readonly number[]): number {
  checkPaired('rmse', truth, pred, 1);
  let s = 0;
  for (let i = 0; i < truth.length; i++) s += ((truth[i] as number) - (pred[i] as number)) ** 2;
  return Math.sqrt(s / truth.length);
}

/** Mean absolute error, as training/common/metrics.py `mae`. */
export function mae(truth: readonly number[], pred: readonly number[]): number {
  checkPaired('mae', truth, pred, 1);
  let s = 0;
  for (let i = 0; i < truth.length; i++) s += Math.abs((truth[i] as number) - (pred[i] as number));
  return s / truth.length;
}

/**
 * Fraction of targets within ±k reported σ of the prediction (0.683 for a calibrated Gaussian at
 * k = 1), as training/common/metrics.py `coverage`.
 */
export function coverage(truth: readonly number[], pred: readonly number[], sigma: readonly number[], k = 1): number {
  checkPaired('coverage', truth, pred, 1);
  checkPaired('coverage', truth, sigma, 1);
  let inside = 0;
  for (let i = 0; i < truth.length; i++) if (Math.abs((truth[i] as number) - (pred[i] as number)) <= k * (sigma[i] as number)) inside++;
  return inside / truth.length;
}

/** Agreement of one dimension, as training/common/metrics.py `summary` (pearson is null where it returns 0.0: a constant series). */
export interface AgreementSummary {
  readonly n: number;
  /** Pearson r; null when either series is constant (undefined, not 0). */
  readonly pearson: number | null;
  readonly ccc: number;
  readonly rmse: number;
  readonly mae: number;
  /** Coverage of ±1 reported σ, when σ was given. */
  readonly coverage1sigma?: number;
}

/** n, Pearson r, CCC, RMSE, MAE (and coverage of ±1σ when `sigma` is given) of one dimension. */
export function agreementSummary(truth: readonly number[], pred: readonly number[], sigma?: readonly number[]): AgreementSummary {
  checkPaired('agreementSummary', truth, pred, 2);
  const out = { n: truth.length, pearson: pearson(truth, pred), ccc: ccc(truth, pred), rmse: rmse(truth, pred), mae: mae(truth, pred) };
  return sigma ? { ...out, coverage1sigma: coverage(truth, pred, sigma) } : out;
}
