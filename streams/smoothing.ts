/**
 * Filters that smooth a valence/arousal trajectory in audio time. Time constants are in ms of audio.
 * The default is the constant-velocity Kalman filter ('kalman-cv'): a state estimate with momentum whose
 * velocity the frames carry. The One-Euro and Kalman filters use each point's confidence: a low-confidence point moves the
 * trajectory less (confidence 0 does not move it at all).
 */

/** A 2-D point with a confidence, at an audio time. */
export interface VaSample {
  readonly tMs: number;
  readonly valence: number;
  readonly arousal: number;
  readonly confidence: number;
}

/** A smoothed point, with the filter's own velocity estimate (units per second) when it has one. */
export interface VaEstimate extends VaSample {
  readonly velocity?: { readonly valence: number; readonly arousal: number };
}

/** A smoothing filter; `update` returns the smoothed point. */
export interface VaFilter {
  update(s: VaSample): VaEstimate;
  /**
   * Audio time passed without a measurement that may move the state (voice activity hold): the
   * state stays where it is, the clock moves to tMs and any velocity is set to 0, so the next
   * update neither extrapolates across the gap nor treats it as one long step.
   */
  coast(tMs: number): void;
  reset(): void;
}

/** The filters on offer. 'kalman-cv': constant-velocity Kalman filter (state: position and velocity per axis). */
export const SMOOTHING_FILTERS = ['ema', 'one-euro', 'kalman', 'kalman-cv', 'none'] as const;
export type SmoothingFilter = (typeof SMOOTHING_FILTERS)[number];

/** Options for {@link createFilter}. */
export interface SmoothingOptions {
  /** Which filter. Default 'kalman-cv' (a state with momentum; frames carry its velocity; bench/sections/smoothing.ts). */
  filter: SmoothingFilter;
  /** Main time constant in ms of audio: EMA time constant, One-Euro minimum-cutoff period, Kalman response time. Default 1000. */
  tauMs: number;
  /** One-Euro speed coefficient: how much faster the filter follows quick moves (per unit/s). Default 0.5. */
  beta: number;
  /** One-Euro derivative low-pass cutoff in Hz. Default 1. */
  dCutoffHz: number;
  /** Kalman measurement noise variance at confidence 1 (scaled by 1/confidence). Default 0.05. */
  measurementNoise: number;
  /** Confidence floor used for weighting (so the Kalman noise stays finite). Default 0.001. */
  minConfidence: number;
  /** Time constant for the output confidence, ms. Default: tauMs. */
  confidenceTauMs?: number;
  /**
   * 'kalman-cv' only: white-acceleration process noise spectral density (units²/s³). Default
   * measurementNoise / (tauMs/1000)³, which gives a response time of about tauMs.
   */
  accelerationNoise?: number;
}

export const DEFAULT_SMOOTHING: SmoothingOptions = {
  filter: 'kalman-cv',
  tauMs: 1000,
  beta: 0.5,
  dCutoffHz: 1,
  measurementNoise: 0.05,
  minConfidence: 0.001,
};

/** Validates and completes smoothing options (RangeError naming the option). */
export function resolveSmoothingOptions(opts: Partial<SmoothingOptions> = {}): SmoothingOptions {
  const o = { ...DEFAULT_SMOOTHING, ...opts };
  if (!(SMOOTHING_FILTERS as readonly string[]).includes(o.filter))
    throw new RangeError(`smoothAffect: filter must be one of ${SMOOTHING_FILTERS.join(', ')}, got ${String(o.filter)}`);
  if (o.accelerationNoise !== undefined && !(o.accelerationNoise > 0 && Number.isFinite(o.accelerationNoise)))
    throw new RangeError(`smoothAffect: accelerationNoise must be > 0, got ${o.accelerationNoise}`);
  if (!(o.tauMs > 0) || !Number.isFinite(o.tauMs)) throw new RangeError(`smoothAffect: tauMs must be > 0, got ${o.tauMs}`);
  if (!(o.beta >= 0) || !Number.isFinite(o.beta)) throw new RangeError(`smoothAffect: beta must be >= 0, got ${o.beta}`);
  if (!(o.dCutoffHz > 0) || !Number.isFinite(o.dCutoffHz)) throw new RangeError(`smoothAffect: dCutoffHz must be > 0, got ${o.dCutoffHz}`);
  if (!(o.measurementNoise > 0) || !Number.isFinite(o.measurementNoise))
    throw new RangeError(`smoothAffect: measurementNoise must be > 0, got ${o.measurementNoise}`);
  if (!(o.minConfidence > 0 && o.minConfidence <= 1)) throw new RangeError(`smoothAffect: minConfidence must be in (0, 1], got ${o.minConfidence}`);
  if (o.confidenceTauMs !== undefined && !(o.confidenceTauMs > 0)) throw new RangeError(`smoothAffect: confidenceTauMs must be > 0, got ${o.confidenceTauMs}`);
  return o;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
/** Exponential smoothing factor for a step of dtMs with time constant tauMs. */
export const emaAlpha = (dtMs: number, tauMs: number): number => (dtMs <= 0 ? 0 : 1 - Math.exp(-dtMs / tauMs));

/** Smooths the confidence itself (EMA), shared by every filter. */
class ConfidenceTrack {
  private c: number | undefined;
  constructor(private readonly tauMs: number) {}
  update(c: number, dtMs: number): number {
    this.c = this.c === undefined ? c : this.c + emaAlpha(dtMs, this.tauMs) * (c - this.c);
    return this.c;
  }
  reset(): void {
    this.c = undefined;
  }
}

/** Plain exponential smoothing with time constant tauMs (ignores confidence for the position). */
export class EmaFilter implements VaFilter {
  private last: VaSample | undefined;
  private readonly conf: ConfidenceTrack;
  constructor(private readonly o: SmoothingOptions) {
    this.conf = new ConfidenceTrack(o.confidenceTauMs ?? o.tauMs);
  }
  update(s: VaSample): VaSample {
    const dt = this.last ? s.tMs - this.last.tMs : 0;
    const confidence = this.conf.update(s.confidence, dt);
    if (!this.last) {
      this.last = { ...s, confidence };
      return this.last;
    }
    const a = emaAlpha(dt, this.o.tauMs);
    this.last = {
      tMs: s.tMs,
      valence: this.last.valence + a * (s.valence - this.last.valence),
      arousal: this.last.arousal + a * (s.arousal - this.last.arousal),
      confidence,
    };
    return this.last;
  }
  coast(tMs: number): void {
    if (this.last) this.last = { ...this.last, tMs };
  }
  reset(): void {
    this.last = undefined;
    this.conf.reset();
  }
}

/**
 * One-Euro filter (Casiez, Roussel & Vogel, CHI 2012): an adaptive low-pass whose cutoff rises with
 * the speed of the signal, so it is smooth when the affect is steady and quick when it changes. The
 * minimum cutoff is 1/(2π tauMs); the step is scaled by the point's confidence.
 */
export class OneEuroFilter implements VaFilter {
  private x: [number, number] | undefined;
  private dx: [number, number] = [0, 0];
  private lastT = 0;
  private readonly conf: ConfidenceTrack;
  constructor(private readonly o: SmoothingOptions) {
    this.conf = new ConfidenceTrack(o.confidenceTauMs ?? o.tauMs);
  }
  private static alpha(cutoffHz: number, dtS: number): number {
    const tau = 1 / (2 * Math.PI * cutoffHz);
    return 1 / (1 + tau / dtS);
  }
  update(s: VaSample): VaSample {
    const dtMs = this.x ? s.tMs - this.lastT : 0;
    const confidence = this.conf.update(s.confidence, dtMs);
    const w = clamp(s.confidence, 0, 1);
    if (!this.x) {
      this.x = [s.valence, s.arousal];
      this.lastT = s.tMs;
      return { tMs: s.tMs, valence: s.valence, arousal: s.arousal, confidence };
    }
    this.lastT = s.tMs;
    if (dtMs > 0) {
      const dtS = dtMs / 1000;
      const minCutoffHz = 1000 / (2 * Math.PI * this.o.tauMs);
      const ad = OneEuroFilter.alpha(this.o.dCutoffHz, dtS);
      const raw = [s.valence, s.arousal] as const;
      for (let k = 0; k < 2; k++) {
        const xk = this.x[k] ?? 0;
        const rk = raw[k] ?? 0;
        const d = (rk - xk) / dtS;
        const edx = (this.dx[k] ?? 0) + ad * (d - (this.dx[k] ?? 0));
        this.dx[k] = edx;
        const a = OneEuroFilter.alpha(minCutoffHz + this.o.beta * Math.abs(edx), dtS) * w;
        this.x[k] = xk + a * (rk - xk);
      }
    }
    return { tMs: s.tMs, valence: this.x[0], arousal: this.x[1], confidence };
  }
  coast(tMs: number): void {
    if (!this.x) return;
    this.lastT = tMs;
    this.dx = [0, 0];
  }
  reset(): void {
    this.x = undefined;
    this.dx = [0, 0];
    this.conf.reset();
  }
}

/**
 * Per-axis random-walk Kalman filter. Process noise grows with audio time (variance
 * measurementNoise/tau per second), measurement noise is measurementNoise/confidence, so
 * confident points pull harder and confidence-0 points barely move the state.
 */
export class KalmanFilter implements VaFilter {
  private x: [number, number] | undefined;
  private p: [number, number] = [1, 1];
  private lastT = 0;
  private readonly conf: ConfidenceTrack;
  constructor(private readonly o: SmoothingOptions) {
    this.conf = new ConfidenceTrack(o.confidenceTauMs ?? o.tauMs);
  }
  update(s: VaSample): VaSample {
    const dtMs = this.x ? Math.max(0, s.tMs - this.lastT) : 0;
    const confidence = this.conf.update(s.confidence, dtMs);
    const r = this.o.measurementNoise / Math.max(this.o.minConfidence, clamp(s.confidence, 0, 1));
    if (!this.x) {
      // Start at the first point, with its measurement uncertainty.
      this.x = [s.valence, s.arousal];
      this.p = [r, r];
      this.lastT = s.tMs;
      return { tMs: s.tMs, valence: s.valence, arousal: s.arousal, confidence };
    }
    this.lastT = s.tMs;
    const q = (this.o.measurementNoise / (this.o.tauMs / 1000)) * (dtMs / 1000);
    const z = [s.valence, s.arousal] as const;
    for (let k = 0; k < 2; k++) {
      const pk = (this.p[k] ?? 1) + q;
      const gain = pk / (pk + r);
      const xk = this.x[k] ?? 0;
      this.x[k] = clamp(xk + gain * ((z[k] ?? 0) - xk), -1, 1);
      this.p[k] = (1 - gain) * pk;
    }
    return { tMs: s.tMs, valence: this.x[0], arousal: this.x[1], confidence };
  }
  coast(tMs: number): void {
    if (this.x) this.lastT = tMs;
  }
  reset(): void {
    this.x = undefined;
    this.p = [1, 1];
    this.conf.reset();
  }
}

/**
 * Constant-velocity Kalman filter per axis: state [position, velocity], white-acceleration process
 * noise (accelerationNoise, units²/s³), measurement noise measurementNoise/confidence. Reports its
 * velocity estimate (units per second of audio). Position is clamped to [-1, 1].
 */
export class KalmanCvFilter implements VaFilter {
  // Per axis: x, v and covariance [pxx, pxv, pvv].
  private st: Array<{ x: number; v: number; pxx: number; pxv: number; pvv: number }> | undefined;
  private lastT = 0;
  private readonly q: number;
  private readonly conf: ConfidenceTrack;
  constructor(private readonly o: SmoothingOptions) {
    this.conf = new ConfidenceTrack(o.confidenceTauMs ?? o.tauMs);
    this.q = o.accelerationNoise ?? o.measurementNoise / (o.tauMs / 1000) ** 3;
  }
  update(s: VaSample): VaEstimate {
    const dtMs = this.st ? Math.max(0, s.tMs - this.lastT) : 0;
    const confidence = this.conf.update(s.confidence, dtMs);
    const r = this.o.measurementNoise / Math.max(this.o.minConfidence, clamp(s.confidence, 0, 1));
    const z = [s.valence, s.arousal] as const;
    if (!this.st) {
      // Start at the first point with no velocity; velocity variance 1 (units/s)².
      this.st = z.map((zk) => ({ x: zk, v: 0, pxx: r, pxv: 0, pvv: 1 }));
      this.lastT = s.tMs;
      return { tMs: s.tMs, valence: s.valence, arousal: s.arousal, confidence, velocity: { valence: 0, arousal: 0 } };
    }
    this.lastT = s.tMs;
    const dt = dtMs / 1000;
    const q = this.q;
    for (let k = 0; k < 2; k++) {
      const a = this.st[k]!;
      // Predict: x += v dt; P = F P F' + Q.
      const x = a.x + a.v * dt;
      const pxx = a.pxx + 2 * dt * a.pxv + dt * dt * a.pvv + (q * dt ** 3) / 3;
      const pxv = a.pxv + dt * a.pvv + (q * dt ** 2) / 2;
      const pvv = a.pvv + q * dt;
      // Update with the position measurement.
      const sInn = pxx + r;
      const kx = pxx / sInn;
      const kv = pxv / sInn;
      const innov = (z[k] ?? 0) - x;
      const xn = x + kx * innov;
      a.x = clamp(xn, -1, 1);
      a.v = a.v + kv * innov;
      // At the edge of the plane the point cannot move further out.
      if ((xn > 1 && a.v > 0) || (xn < -1 && a.v < 0)) a.v = 0;
      a.pxx = (1 - kx) * pxx;
      a.pxv = (1 - kx) * pxv;
      a.pvv = pvv - kv * pxv;
    }
    const [va, ar] = this.st as [(typeof this.st)[number], (typeof this.st)[number]];
    return { tMs: s.tMs, valence: va.x, arousal: ar.x, confidence, velocity: { valence: va.v, arousal: ar.v } };
  }
  coast(tMs: number): void {
    if (!this.st) return;
    this.lastT = tMs;
    for (const a of this.st) {
      a.v = 0;
      a.pxv = 0;
    }
  }
  reset(): void {
    this.st = undefined;
    this.conf.reset();
  }
}

/** No smoothing (for comparisons and tests). */
export class IdentityFilter implements VaFilter {
  update(s: VaSample): VaSample {
    return s;
  }
  coast(): void {}
  reset(): void {}
}

/** Builds the filter named in the options. */
export function createFilter(opts: Partial<SmoothingOptions> = {}): VaFilter {
  const o = resolveSmoothingOptions(opts);
  switch (o.filter) {
    case 'ema':
      return new EmaFilter(o);
    case 'one-euro':
      return new OneEuroFilter(o);
    case 'kalman':
      return new KalmanFilter(o);
    case 'kalman-cv':
      return new KalmanCvFilter(o);
    case 'none':
      return new IdentityFilter();
  }
}
