/**
 * Escalation detectors: arousal rising while valence falls, sustained. Two methods, both pure
 * functions of the frames in audio time (an offline run gives the same alerts every time):
 *
 * - `shift` (default): the mean of the last `sustainMs` of voiced frames against the mean of the
 *   `baselineMs` before it. The shift must be at least `minChange` on both axes (arousal up, valence
 *   down) and stand out from the stream's own variability: z = the two axes' shifts in units of
 *   their standard errors, combined along the escalation direction ((Δa/se_a − Δv/se_v) / √2) ≥
 *   `minZ`. The standard errors come from the stream itself by batch means: the history before the
 *   recent span is cut into blocks `sustainMs` long and the spread of successive block means (half
 *   their squared differences, so a slow drift does not count as noise) is what one recent span's
 *   mean would scatter by with no change. Successive frames of overlapping windows are correlated,
 *   which a per-frame variance would ignore; block means carry that correlation in. No alert before
 *   `minBlocks` blocks of history (about `minBlocks × sustainMs + sustainMs` of voiced audio).
 * - `velocity` (the earlier default): every frame for `sustainMs` carries an arousal
 *   velocity ≥ `minRatePerS` and a valence velocity ≤ −`minRatePerS` (the smoother's), and over the
 *   span arousal rose and valence fell by ≥ `minChange`. Cheap, immediate, but a single frame whose
 *   velocity dips resets it, so on noisy model output it seldom fires (docs/bench.md, `smoothing`).
 *
 * Frames whose `voiced` is below the minimum voiced fraction are not used (held frames do not move).
 * One alert per episode: after an alert the detector re-arms when the condition has lapsed.
 */
import type { AffectPoint, AffectVelocity, AlertEvent } from '../core/types.js';

/** How escalation is detected (see the module comment). */
export const ESCALATION_METHODS = ['shift', 'velocity'] as const;
export type EscalationMethod = (typeof ESCALATION_METHODS)[number];

/** Options for escalation alerts. */
export interface EscalationOptions {
  /** Raise alerts at all. Default true. */
  enabled: boolean;
  /** 'shift' (default) or 'velocity', see the module comment. */
  method: EscalationMethod;
  /** How long (ms of audio) the raised arousal and lowered valence must hold (shift: the recent span; velocity: the run of frames). Default 3000 (velocity: 2000). */
  sustainMs: number;
  /** velocity: each frame in the span must have arousal velocity >= this and valence velocity <= -this (per second). Default 0.02. Not used by 'shift'. */
  minRatePerS: number;
  /** Arousal must rise and valence fall by at least this much (shift: recent mean against the baseline; velocity: over the span). Default 0.1. */
  minChange: number;
  /** shift: the span (ms of audio) just before the recent one that the shift is measured from. Default 20000. */
  baselineMs: number;
  /** shift: the history (ms of audio) before the recent span whose block means give the noise scale. Default 120000, or 2 × minBlocks × sustainMs when that is longer. */
  historyMs: number;
  /**
   * shift: blocks of history needed before any alert (the oldest may be half full). Default 6 (with sustainMs 3000: about
   * 17 s of voiced audio before the recent span, so the first alert can come about 20 s into a stream's speech; 8 until
   * session 12, about 26 s: the same false alarms, docs/bench.md).
   */
  minBlocks: number;
  /** shift: how many standard errors the shift must stand out by, along the escalation direction. Default 5. */
  minZ: number;
  /**
   * shift: the scatter (sd) a `sustainMs` mean is assumed to have before the stream has shown its own,
   * per axis; it weighs as `priorBlocks` blocks of history, so the first minutes of a stream cannot
   * look quieter than they are. Default 0.2 (the default speech model's 3 s means on the shipped WAV
   * scatter by 0.24 in valence and 0.54 in arousal).
   */
  priorSd: number;
  /** shift: how many blocks of history the prior scatter weighs as. Default 5. */
  priorBlocks: number;
}

export const DEFAULT_ESCALATION: EscalationOptions = {
  enabled: true,
  method: 'shift',
  sustainMs: 3000,
  minRatePerS: 0.02,
  minChange: 0.1,
  baselineMs: 20_000,
  historyMs: 120_000,
  minBlocks: 6,
  minZ: 5,
  priorSd: 0.2,
  priorBlocks: 5,
};

/** The velocity method's default `sustainMs` (the earlier default detector's). */
export const VELOCITY_SUSTAIN_MS = 2000;

/** Validates and completes escalation options (RangeError naming the option). */
export function resolveEscalationOptions(opts: Partial<EscalationOptions> = {}): EscalationOptions {
  const o = { ...DEFAULT_ESCALATION, ...opts };
  // The velocity detector keeps its own default span, so choosing it restores the earlier alerts exactly.
  if (opts.sustainMs === undefined && o.method === 'velocity') o.sustainMs = VELOCITY_SUSTAIN_MS;
  // A long sustain span gets a history long enough for its blocks unless the history was given.
  if (opts.historyMs === undefined && Number.isFinite(o.sustainMs) && Number.isInteger(o.minBlocks))
    o.historyMs = Math.max(DEFAULT_ESCALATION.historyMs, 2 * o.minBlocks * o.sustainMs);
  if (!ESCALATION_METHODS.includes(o.method))
    throw new RangeError(`escalation: method must be one of ${ESCALATION_METHODS.join(', ')}, got ${String(o.method)}`);
  const positive = (k: 'sustainMs' | 'baselineMs' | 'historyMs' | 'minZ'): void => {
    if (!(o[k] > 0) || !Number.isFinite(o[k])) throw new RangeError(`escalation: ${k} must be > 0, got ${o[k]}`);
  };
  positive('sustainMs');
  positive('baselineMs');
  positive('historyMs');
  positive('minZ');
  if (!(o.minRatePerS >= 0) || !Number.isFinite(o.minRatePerS)) throw new RangeError(`escalation: minRatePerS must be >= 0, got ${o.minRatePerS}`);
  if (!(o.minChange >= 0) || !Number.isFinite(o.minChange)) throw new RangeError(`escalation: minChange must be >= 0, got ${o.minChange}`);
  if (!(o.priorSd >= 0) || !Number.isFinite(o.priorSd)) throw new RangeError(`escalation: priorSd must be >= 0, got ${o.priorSd}`);
  if (!Number.isInteger(o.priorBlocks) || o.priorBlocks < 0) throw new RangeError(`escalation: priorBlocks must be an integer >= 0, got ${o.priorBlocks}`);
  if (!Number.isInteger(o.minBlocks) || o.minBlocks < 2) throw new RangeError(`escalation: minBlocks must be an integer >= 2, got ${o.minBlocks}`);
  if (o.historyMs < o.minBlocks * o.sustainMs)
    throw new RangeError(`escalation: historyMs (${o.historyMs}) must hold minBlocks (${o.minBlocks}) blocks of sustainMs (${o.sustainMs})`);
  return o;
}

/**
 * What the detector reads from a frame: a pipeline {@link AffectPoint}, or an `affect` message
 * received from a server (`circumplex/client`), whose optional fields may be present as undefined.
 */
export type EscalationFrame = Pick<AffectPoint, 'streamId' | 'tMs' | 'valence' | 'arousal'> & {
  readonly voiced?: number | undefined;
  readonly velocity?: AffectVelocity | undefined;
};

/** Feeds voiced frames one by one; returns an alert when one is raised. */
export interface EscalationDetector {
  push(p: EscalationFrame): AlertEvent | undefined;
}

/**
 * A detector for `opts.method`; frames with `voiced` below `minVoicedFraction` are skipped, and so
 * are frames with a non-finite time, valence or arousal and frames older than the last one taken
 * (frames from elsewhere, e.g. a subscriber's, may repeat or reorder; the pipeline's never do).
 */
export function createEscalationDetector(opts: Partial<EscalationOptions>, minVoicedFraction: number): EscalationDetector {
  const o = resolveEscalationOptions(opts);
  // Out of range, every frame counts as unvoiced (2: never an alert) or as voiced (NaN: silence too), silently.
  if (!(minVoicedFraction >= 0 && minVoicedFraction <= 1))
    throw new RangeError(`createEscalationDetector: minVoicedFraction must be in [0, 1] (the VAD's, e.g. 0.2), got ${minVoicedFraction}`);
  const unvoiced = (p: EscalationFrame): boolean => p.voiced !== undefined && p.voiced < minVoicedFraction;
  if (!o.enabled) return { push: () => undefined };
  const inner = o.method === 'velocity' ? velocityDetector(o, unvoiced) : shiftDetector(o, unvoiced);
  let lastT = -Infinity;
  return {
    push(p) {
      if (!Number.isFinite(p.tMs) || !Number.isFinite(p.valence) || !Number.isFinite(p.arousal) || p.tMs <= lastT) return undefined;
      lastT = p.tMs;
      return inner.push(p);
    },
  };
}

const fmt = (x: number): string => x.toFixed(2);

function velocityDetector(o: EscalationOptions, unvoiced: (p: EscalationFrame) => boolean): EscalationDetector {
  // The first frame of the current run of frames that satisfy the condition.
  let first: EscalationFrame | undefined;
  let alerted = false;
  return {
    push(p) {
      const vel = p.velocity;
      const ok = vel !== undefined && !unvoiced(p) && vel.arousal >= o.minRatePerS && vel.valence <= -o.minRatePerS;
      if (!ok) {
        first = undefined;
        alerted = false;
        return undefined;
      }
      first ??= p;
      const span = p.tMs - first.tMs;
      if (alerted || span < o.sustainMs) return undefined;
      const dA = p.arousal - first.arousal;
      const dV = p.valence - first.valence;
      if (dA < o.minChange || dV > -o.minChange) return undefined;
      alerted = true;
      const velocity = { valence: (dV * 1000) / span, arousal: (dA * 1000) / span };
      return {
        streamId: p.streamId,
        tMs: p.tMs,
        alert: 'escalation',
        reason: `arousal rising ${fmt(velocity.arousal)}/s while valence falls ${fmt(-velocity.valence)}/s for ${(span / 1000).toFixed(1)} s (arousal ${fmt(first.arousal)} → ${fmt(p.arousal)}, valence ${fmt(first.valence)} → ${fmt(p.valence)})`,
        sustainedMs: span,
        velocity,
      };
    },
  };
}

/** Smallest noise scale used (per axis, in units of a recent span's mean): clean input still needs minChange, not an infinite z. */
const MIN_BLOCK_SD = 0.01;

/**
 * Voiced frames of one stream in time order with running sums, so any span's mean is two lookups and
 * a binary search (the detector runs on every frame of every stream on the main thread).
 */
class FrameHistory {
  private t: number[] = [];
  /** Sums of arousal / valence / time over frames [0, i), so sumA[j] - sumA[i] is frames i..j-1. */
  private sumA: number[] = [0];
  private sumV: number[] = [0];
  private sumT: number[] = [0];
  private start = 0;

  push(t: number, a: number, v: number): void {
    const n = this.t.length;
    this.t.push(t);
    this.sumA.push(this.sumA[n]! + a);
    this.sumV.push(this.sumV[n]! + v);
    this.sumT.push(this.sumT[n]! + t);
  }

  /** Forgets frames at or before `t`; compacts now and then (the sums are rebased, so they stay small). */
  dropThrough(t: number): void {
    while (this.start < this.t.length && this.t[this.start]! <= t) this.start++;
    if (this.start < 1024) return;
    const s = this.start;
    const [a0, v0, t0] = [this.sumA[s]!, this.sumV[s]!, this.sumT[s]!];
    this.t = this.t.slice(s);
    this.sumA = this.sumA.slice(s).map((x) => x - a0);
    this.sumV = this.sumV.slice(s).map((x) => x - v0);
    this.sumT = this.sumT.slice(s).map((x) => x - t0);
    this.start = 0;
  }

  /** Index of the first kept frame with time > t. */
  after(t: number): number {
    let lo = this.start;
    let hi = this.t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[mid]! > t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  get begin(): number {
    return this.start;
  }

  get end(): number {
    return this.t.length;
  }

  time(i: number): number {
    return this.t[i]!;
  }

  /** Means of frames [i, j) (j > i). */
  mean(i: number, j: number): { a: number; v: number; t: number } {
    const n = j - i;
    return { a: (this.sumA[j]! - this.sumA[i]!) / n, v: (this.sumV[j]! - this.sumV[i]!) / n, t: (this.sumT[j]! - this.sumT[i]!) / n };
  }
}

function shiftDetector(o: EscalationOptions, unvoiced: (p: EscalationFrame) => boolean): EscalationDetector {
  const h = new FrameHistory();
  let alerted = false;
  return {
    push(p) {
      if (unvoiced(p)) return undefined;
      const t = p.tMs;
      h.push(t, p.arousal, p.valence);
      const recentFrom = t - o.sustainMs;
      h.dropThrough(recentFrom - o.historyMs);
      // Recent span (recentFrom, t]; its frames must cover it: the first no later than a quarter span
      // in, or than one of its frame steps in (a hop widened under overload spaces frames further).
      const r0 = h.after(recentFrom);
      const nRecent = h.end - r0;
      if (nRecent < 3 || r0 === h.begin) return undefined;
      const step = (t - h.time(r0)) / (nRecent - 1);
      // Too little audio to judge (a pause, the start of the stream): no alert, and no re-arming.
      if (h.time(r0) - recentFrom > Math.max(o.sustainMs / 4, step)) return undefined;
      const b0 = h.after(recentFrom - o.baselineMs);
      if (r0 - b0 < 3) return undefined;
      // Block means of the history, blocks sustainMs long ending at recentFrom, newest first; a block
      // counts when at least half as full as the recent span, and successive counted blocks give the scatter.
      let end = r0;
      let prev: { a: number; v: number } | undefined;
      let blocks = 0;
      let n = 0;
      let sa = 0;
      let sv = 0;
      for (let b = 1; end > h.begin; b++) {
        const start = h.after(recentFrom - b * o.sustainMs);
        const m = (end - start) * 2 >= nRecent ? h.mean(start, end) : undefined;
        if (m) {
          blocks++;
          if (prev) {
            sa += (prev.a - m.a) ** 2;
            sv += (prev.v - m.v) ** 2;
            n++;
          }
        }
        prev = m;
        end = start;
      }
      if (blocks < o.minBlocks || n < o.minBlocks - 1) return undefined;
      // The prior counts as priorBlocks blocks of scatter priorSd, so a short history cannot make the scale small.
      const k0 = o.priorBlocks;
      const prior = k0 * o.priorSd ** 2;
      const inflate = Math.sqrt(1 + o.sustainMs / o.baselineMs);
      const seA = Math.max(MIN_BLOCK_SD, Math.sqrt((prior + sa / 2) / (k0 + n))) * inflate;
      const seV = Math.max(MIN_BLOCK_SD, Math.sqrt((prior + sv / 2) / (k0 + n))) * inflate;
      const base = h.mean(b0, r0);
      const now = h.mean(r0, h.end);
      const dA = now.a - base.a;
      const dV = now.v - base.v;
      const z = (dA / seA - dV / seV) / Math.SQRT2;
      const ok = dA >= o.minChange && dV <= -o.minChange && z >= o.minZ;
      if (!ok) {
        // Re-armed once the shift has clearly lapsed (hysteresis: half the thresholds).
        if (z < o.minZ / 2 || dA < o.minChange / 2 || dV > -o.minChange / 2) alerted = false;
        return undefined;
      }
      if (alerted) return undefined;
      alerted = true;
      // Rate: the shift over the time between the baseline's and the recent span's centres.
      const dtS = (now.t - base.t) / 1000;
      const velocity = { valence: dV / dtS, arousal: dA / dtS };
      return {
        streamId: p.streamId,
        tMs: t,
        alert: 'escalation',
        reason: `arousal up ${fmt(dA)} and valence down ${fmt(-dV)} over the last ${(o.sustainMs / 1000).toFixed(1)} s against the ${(o.baselineMs / 1000).toFixed(0)} s before (arousal ${fmt(base.a)} → ${fmt(now.a)}, valence ${fmt(base.v)} → ${fmt(now.v)}; z ${z.toFixed(1)})`,
        sustainedMs: o.sustainMs,
        velocity,
      };
    },
  };
}
