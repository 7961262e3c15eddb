/**
 * Ridge regression from a text embedding to (valence, arousal), for the held-out (zero-shot) mode
 * of `circumplex validate`: fit on some terms, score the rest.
 *
 * Embeddings are wide (hundreds of dimensions) and the rated sets are small (tens to ~200 terms),
 * so the fit uses the dual (kernel) form: W = Xcᵀ (Xc Xcᵀ + λI)⁻¹ Yc, an n×n solve instead of d×d.
 * X and Y are centred, so the intercept is not penalised. λ is chosen by k-fold cross-validation
 * on the training terms only (the held-out terms never influence the fit).
 */
import { seededRandom } from '../../core/seeded-random.js';

/** A fitted linear map x ↦ (valence, arousal). */
export interface RidgeModel {
  readonly lambda: number;
  /** d×2 weights, row-major: w[2j] for valence, w[2j+1] for arousal. */
  readonly weights: Float64Array;
  readonly intercept: readonly [number, number];
  readonly dim: number;
  predict(x: ArrayLike<number>): [number, number];
}

/** Options for {@link fitRidgeCv}. */
export interface RidgeCvOptions {
  /** Candidate penalties. Default [1e-3, 1e-2, 0.1, 1, 10, 100]. */
  lambdas: readonly number[];
  /** Folds for cross-validation (capped at the number of training rows). Default 5. */
  folds: number;
}

export const DEFAULT_RIDGE_CV: RidgeCvOptions = { lambdas: [1e-3, 1e-2, 0.1, 1, 10, 100], folds: 5 };

function checkRows(x: readonly ArrayLike<number>[], y: readonly (readonly [number, number])[]): number {
  if (x.length !== y.length) throw new RangeError(`ridge: ${x.length} embeddings but ${y.length} targets`);
  if (x.length < 2) throw new RangeError(`ridge: needs at least 2 training rows, got ${x.length}`);
  const d = x[0]?.length ?? 0;
  if (d === 0) throw new RangeError('ridge: embeddings are empty');
  x.forEach((row, i) => {
    if (row.length !== d) throw new RangeError(`ridge: embedding ${i} has ${row.length} dimensions, expected ${d}`);
    for (let j = 0; j < d; j++) if (!Number.isFinite(row[j])) throw new RangeError(`ridge: embedding ${i} has a non-finite value at ${j}`);
  });
  return d;
}

/** Solves A z = b for symmetric positive-definite A (n×n, row-major) by Cholesky; b has `m` columns. */
function choleskySolve(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j] as number;
      for (let k = 0; k < j; k++) s -= (l[i * n + k] as number) * (l[j * n + k] as number);
      if (i === j) {
        // λ > 0 keeps the matrix positive-definite; guard anyway against round-off.
        l[i * n + i] = Math.sqrt(Math.max(s, 1e-300));
      } else {
        l[i * n + j] = s / (l[j * n + j] as number);
      }
    }
  }
  const z = new Float64Array(n * m);
  for (let c = 0; c < m; c++) {
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = b[i * m + c] as number;
      for (let k = 0; k < i; k++) s -= (l[i * n + k] as number) * (t[k] as number);
      t[i] = s / (l[i * n + i] as number);
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = t[i] as number;
      for (let k = i + 1; k < n; k++) s -= (l[k * n + i] as number) * (z[k * m + c] as number);
      z[i * m + c] = s / (l[i * n + i] as number);
    }
  }
  return z;
}

/** Fits ridge regression with a fixed penalty λ > 0. */
export function fitRidge(x: readonly ArrayLike<number>[], y: readonly (readonly [number, number])[], lambda: number): RidgeModel {
  if (!(lambda > 0) || !Number.isFinite(lambda)) throw new RangeError(`fitRidge: lambda must be a finite number > 0, got ${lambda}`);
  const d = checkRows(x, y);
  const n = x.length;
  const mx = new Float64Array(d);
  for (const row of x) for (let j = 0; j < d; j++) mx[j] = (mx[j] as number) + (row[j] as number) / n;
  const my: [number, number] = [0, 0];
  for (const t of y) {
    my[0] += t[0] / n;
    my[1] += t[1] / n;
  }
  const xc = x.map((row) => {
    const r = new Float64Array(d);
    for (let j = 0; j < d; j++) r[j] = (row[j] as number) - (mx[j] as number);
    return r;
  });
  // Gram matrix K = Xc Xcᵀ + λI.
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      const ri = xc[i] as Float64Array;
      const rj = xc[j] as Float64Array;
      for (let q = 0; q < d; q++) s += (ri[q] as number) * (rj[q] as number);
      k[i * n + j] = s;
      k[j * n + i] = s;
    }
    k[i * n + i] = (k[i * n + i] as number) + lambda;
  }
  const yc = new Float64Array(n * 2);
  y.forEach((t, i) => {
    yc[i * 2] = t[0] - my[0];
    yc[i * 2 + 1] = t[1] - my[1];
  });
  const alpha = choleskySolve(k, n, yc, 2);
  // W = Xcᵀ α (d×2).
  const w = new Float64Array(d * 2);
  for (let i = 0; i < n; i++) {
    const ri = xc[i] as Float64Array;
    const a0 = alpha[i * 2] as number;
    const a1 = alpha[i * 2 + 1] as number;
    for (let j = 0; j < d; j++) {
      w[j * 2] = (w[j * 2] as number) + (ri[j] as number) * a0;
      w[j * 2 + 1] = (w[j * 2 + 1] as number) + (ri[j] as number) * a1;
    }
  }
  // Fold the centring into the intercept: ŷ = (x − x̄)W + ȳ = xW + (ȳ − x̄W).
  let b0 = my[0];
  let b1 = my[1];
  for (let j = 0; j < d; j++) {
    b0 -= (mx[j] as number) * (w[j * 2] as number);
    b1 -= (mx[j] as number) * (w[j * 2 + 1] as number);
  }
  const intercept: [number, number] = [b0, b1];
  return {
    lambda,
    weights: w,
    intercept,
    dim: d,
    predict(v: ArrayLike<number>): [number, number] {
      if (v.length !== d) throw new RangeError(`ridge.predict: embedding has ${v.length} dimensions, expected ${d}`);
      let p0 = intercept[0];
      let p1 = intercept[1];
      for (let j = 0; j < d; j++) {
        p0 += (v[j] as number) * (w[j * 2] as number);
        p1 += (v[j] as number) * (w[j * 2 + 1] as number);
      }
      return [p0, p1];
    },
  };
}

/** The result of cross-validated fitting. */
export interface RidgeCvResult {
  readonly model: RidgeModel;
  /** Mean squared error (both outputs) per candidate λ, in the order tried. */
  readonly cvMse: ReadonlyArray<{ readonly lambda: number; readonly mse: number }>;
}

/**
 * Picks λ by k-fold cross-validation on the given rows (folds are contiguous blocks of the rows as
 * given: shuffle before calling), then refits on all rows with the best λ.
 */
export function fitRidgeCv(x: readonly ArrayLike<number>[], y: readonly (readonly [number, number])[], opts: Partial<RidgeCvOptions> = {}): RidgeCvResult {
  const o = { ...DEFAULT_RIDGE_CV, ...opts };
  if (o.lambdas.length === 0) throw new RangeError('fitRidgeCv: lambdas must not be empty');
  if (!(Number.isInteger(o.folds) && o.folds >= 2)) throw new RangeError(`fitRidgeCv: folds must be an integer >= 2, got ${o.folds}`);
  checkRows(x, y);
  const n = x.length;
  const folds = Math.min(o.folds, n);
  const cvMse: { lambda: number; mse: number }[] = [];
  for (const lambda of o.lambdas) {
    let se = 0;
    let count = 0;
    for (let f = 0; f < folds; f++) {
      const lo = Math.floor((f * n) / folds);
      const hi = Math.floor(((f + 1) * n) / folds);
      const trX = [...x.slice(0, lo), ...x.slice(hi)];
      const trY = [...y.slice(0, lo), ...y.slice(hi)];
      if (trX.length < 2 || hi <= lo) continue;
      const m = fitRidge(trX, trY, lambda);
      for (let i = lo; i < hi; i++) {
        const [p0, p1] = m.predict(x[i] as ArrayLike<number>);
        const t = y[i] as readonly [number, number];
        se += (p0 - t[0]) ** 2 + (p1 - t[1]) ** 2;
        count += 2;
      }
    }
    cvMse.push({ lambda, mse: count === 0 ? Number.POSITIVE_INFINITY : se / count });
  }
  // Ties go to the larger λ (the simpler model).
  let best = cvMse[0] as { lambda: number; mse: number };
  for (const c of cvMse) if (c.mse < best.mse || (c.mse === best.mse && c.lambda > best.lambda)) best = c;
  return { model: fitRidge(x, y, best.lambda), cvMse };
}

/** Fisher–Yates shuffle of indices 0..n-1 with a seeded PRNG. */
export function seededPermutation(n: number, seed: number): number[] {
  const rnd = seededRandom(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = p[i] as number;
    p[i] = p[j] as number;
    p[j] = t;
  }
  return p;
}
