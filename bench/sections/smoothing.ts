/**
 * `smoothing` section: how well each trajectory filter (streams/smoothing.ts, default options) tracks
 * a known trajectory and its velocity, the points arriving at the default hop with per-window noise.
 *
 * Ground truth per trial: 10 minutes of one axis made of segments of 3–15 s, each either a hold at a
 * new level or a linear ramp to it (levels uniform in [-0.8, 0.8]), so it has steps, ramps and rests.
 * The measurements are the truth plus Gaussian noise of sd σ (clipped to [-1, 1]), one per hop, at
 * confidence 1. Per filter and time constant: RMSE of the smoothed position against the truth, and of
 * the velocity a frame carries (the filter's own for kalman-cv, else the change of the smoothed point
 * since the previous frame over the hop, as the pipeline computes it) against the true slope; the
 * first 5 s are skipped. Mean over `trials` seeded trials. Pure computation, no models: about 1 s, and
 * about 15 s more for the escalation rows below (`--quick`: a fraction of that).
 *
 * Escalation alerts through the pipeline's own stages (smoothAffect → labelAffect → deriveStreamEvents):
 * per detector (streams/escalation.ts: 'shift', the default, and the earlier 'velocity'), filter, time
 * constant and noise (independent per hop at σ 0.1/0.2/0.3, and correlated as overlapping windows'
 * outputs are at σ 0.3/0.5, see {@link NoiseKind}), the share of synthetic escalations detected (40 s
 * at rest, then arousal +0.6 and valence −0.6 over 6 s, then 10 s held; an alert between the ramp's
 * start and 12 s after it counts) with the mean delay from the ramp's start, false alarms per hour on
 * constant affect with the same noise, and alerts in the first minute of constant-affect streams.
 * Onset rows: the default detector and filter on the same escalations starting 10, 15, 20, 30 or 40 s
 * into the stream, where its history is short (it raises nothing before `minBlocks` sustain spans).
 *
 * This is what the default filter was chosen on (session 10): no model or human data is involved, so
 * the choice is not fitted to any corpus.
 */
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { gaussianFrom, seededRandom } from '../../core/seeded-random.js';
import type { AffectEstimate, PipelineEvent } from '../../core/types.js';
import { labelAffect } from '../../streams/operators/label-affect.js';
import { smoothAffect } from '../../streams/operators/smooth-affect.js';
import { DEFAULT_SMOOTHING, type SmoothingFilter } from '../../streams/smoothing.js';
import { DEFAULT_ESCALATION, type EscalationMethod, type EscalationOptions } from '../../streams/escalation.js';
import { deriveStreamEvents } from '../../streams/turns.js';
import { round } from '../lib/common.js';

export interface SmoothingRow {
  filter: SmoothingFilter;
  tauMs: number;
  /** Per-window noise sd of the measurements. */
  noiseSd: number;
  positionRmse: number;
  velocityRmse: number;
}

export interface EscalationRow {
  method: EscalationMethod;
  filter: SmoothingFilter;
  tauMs: number;
  noise: NoiseKind;
  noiseSd: number;
  /** Synthetic escalations alerted within 12 s of the ramp's start, of `episodes`. */
  detected: number;
  episodes: number;
  /** Mean ms from the ramp's start to the alert (detected episodes). */
  meanDelayMs: number | null;
  falseAlarmsPerHour: number;
  /** Alerts in the first minute of `startStreams` streams of constant affect (the detectors' history is shortest there). */
  startAlarms: number;
  startStreams: number;
}

/** How soon into a stream the default detector can catch an escalation: the ramp starts `restS` s into the stream. */
export interface EscalationOnsetRow {
  method: EscalationMethod;
  filter: SmoothingFilter;
  tauMs: number;
  noise: NoiseKind;
  noiseSd: number;
  /** Seconds of rest (constant affect, all voiced) before the ramp. */
  restS: number;
  detected: number;
  episodes: number;
  meanDelayMs: number | null;
}

export interface SmoothingSection {
  hopMs: number;
  trials: number;
  seconds: number;
  rows: SmoothingRow[];
  escalation: EscalationRow[];
  /** The default detector on escalations that start 10–40 s into a stream (its history is short there). */
  escalationOnset: EscalationOnsetRow[];
  note: string;
}

export interface SmoothingBenchOptions {
  hopMs: number;
  trials: number;
  seconds: number;
  noiseSds: readonly number[];
  filters: readonly SmoothingFilter[];
  tausMs: readonly number[];
  /** Escalation episodes per row, hours of constant affect for the false alarms, and streams whose first minute is checked. */
  episodes: number;
  noiseHours: number;
  startStreams: number;
}

const DEFAULTS: SmoothingBenchOptions = {
  hopMs: 250,
  trials: 20,
  seconds: 600,
  noiseSds: [0.1, 0.2, 0.3],
  filters: ['one-euro', 'kalman-cv', 'kalman', 'ema'],
  tausMs: [500, 1000, 2000],
  episodes: 100,
  noiseHours: 2,
  startStreams: 200,
};

/** The project's seeded uniform generator (core/seeded-random.ts) and a Gaussian from it (Box–Muller). */
function generator(seed: number): { uniform: () => number; gauss: () => number } {
  const uniform = seededRandom(seed);
  return { uniform, gauss: () => gaussianFrom(uniform) };
}

/** One trial's truth (position per hop) and true slope (units per second). */
export function syntheticTrajectory(n: number, hopMs: number, uniform: () => number): { truth: number[]; slope: number[] } {
  const truth: number[] = [];
  const slope: number[] = [];
  const perSecond = 1000 / hopMs;
  let v = 0;
  while (truth.length < n) {
    const len = Math.round(perSecond * (3 + 12 * uniform()));
    const target = (uniform() * 2 - 1) * 0.8;
    const ramp = uniform() < 0.5;
    for (let i = 0; i < len && truth.length < n; i++) {
      if (ramp) {
        const d = (target - v) / len;
        v += d;
        slope.push(d * perSecond);
      } else {
        if (i === 0) v = target;
        slope.push(0);
      }
      truth.push(v);
    }
  }
  return { truth, slope };
}

/** One stream of points, one per hop at confidence 1, as the fusion stage would hand them to the smoother. */
const estimatesOf = (valence: readonly number[], arousal: readonly number[], hopMs: number) =>
  from(
    valence.map((v, i): AffectEstimate => ({
      streamId: 'bench',
      tMs: i * hopMs,
      windowIndex: i,
      valence: v,
      arousal: arousal[i] as number,
      confidence: 1,
      droppedWindows: 0,
    })),
  );

/** The pipeline's smoothing stage over the points: positions and the velocity each frame carries. */
function smoothed(valence: readonly number[], arousal: readonly number[], hopMs: number, filter: SmoothingFilter, tauMs: number): Promise<AffectEstimate[]> {
  return lastValueFrom(estimatesOf(valence, arousal, hopMs).pipe(smoothAffect({ filter, tauMs }), toArray()));
}

/** Alert times (ms) of one stream of noisy points through the pipeline's smoothing, labelling and escalation stages. */
export async function alertTimes(
  valence: number[],
  arousal: number[],
  hopMs: number,
  filter: SmoothingFilter,
  tauMs: number,
  escalation: Partial<EscalationOptions> = {},
): Promise<number[]> {
  const events = await lastValueFrom(
    estimatesOf(valence, arousal, hopMs).pipe(
      smoothAffect({ filter, tauMs }),
      labelAffect({ terms: RUSSELL_1980_TERMS }),
      map((point): PipelineEvent => ({ kind: 'affect', point })),
      deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation, minVoicedFraction: 0, windowMs: 1000 }),
      toArray(),
    ),
  );
  return events.flatMap((e) => (e.kind === 'alert' ? [e.alert.tMs] : []));
}

/**
 * Per-window noise: 'iid' independent per hop; 'overlap' the noise of 1 s windows at a 250 ms hop,
 * each the mean of four independent quarter-window draws of which three are shared with the previous
 * window (lag correlations 0.75 / 0.5 / 0.25), scaled to the same sd. The default speech model's
 * successive outputs on the shipped WAV correlate 0.54 (valence) and 0.71 (arousal) at lag 1.
 */
export type NoiseKind = 'iid' | 'overlap';

/** A noise generator of sd `sd` and kind `kind` from Gaussian draws. */
export function noiseSeries(kind: NoiseKind, sd: number, gauss: () => number): () => number {
  if (kind === 'iid') return () => sd * gauss();
  const q = [gauss(), gauss(), gauss()];
  return () => {
    q.push(gauss());
    const x = (q[0]! + q[1]! + q[2]! + q[3]!) / 2;
    q.shift();
    return sd * x;
  };
}

/** One escalation configuration the bench measures. */
export interface EscalationCase {
  method: EscalationMethod;
  filter: SmoothingFilter;
  tauMs: number;
  noise: NoiseKind;
  noiseSd: number;
  /** Options beyond the method (defaults otherwise). */
  options?: Partial<EscalationOptions>;
}

/**
 * Synthetic escalations of one case: per episode `restS` s at rest, then arousal +0.6 and valence −0.6
 * over 6 s, then 10 s held; an alert between the ramp's start and 12 s after it counts. Returns how
 * many were alerted and the summed delay (ms from the ramp's start).
 */
export async function detectEscalations(c: EscalationCase, hopMs: number, episodes: number, restS: number): Promise<{ detected: number; delayMs: number }> {
  const perSecond = 1000 / hopMs;
  const rest = restS * perSecond;
  const ramp = 6 * perSecond;
  const n = rest + 16 * perSecond;
  const escalation = { ...c.options, method: c.method };
  let detected = 0;
  let delayMs = 0;
  for (let e = 0; e < episodes; e++) {
    const g = generator(1000 + e);
    const nv = noiseSeries(c.noise, c.noiseSd, g.gauss);
    const na = noiseSeries(c.noise, c.noiseSd, g.gauss);
    const v: number[] = [];
    const a: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = i < rest ? 0 : Math.min(1, (i - rest) / ramp);
      v.push(0.2 - 0.6 * r + nv());
      a.push(-0.3 + 0.6 * r + na());
    }
    const start = rest * hopMs;
    const hit = (await alertTimes(v, a, hopMs, c.filter, c.tauMs, escalation)).find((t) => t >= start && t <= start + 12_000);
    if (hit !== undefined) {
      detected++;
      delayMs += hit - start;
    }
  }
  return { detected, delayMs };
}

/** Alerts of one case on `seconds` of constant affect (valence 0.1, arousal −0.1) with its noise, drawn from seed `seed`. */
export async function alarmsOnConstant(c: EscalationCase, hopMs: number, seed: number, seconds: number): Promise<number> {
  const g = generator(seed);
  const nv = noiseSeries(c.noise, c.noiseSd, g.gauss);
  const na = noiseSeries(c.noise, c.noiseSd, g.gauss);
  const m = Math.round((seconds * 1000) / hopMs);
  const v = Array.from({ length: m }, () => 0.1 + nv());
  const a = Array.from({ length: m }, () => -0.1 + na());
  return (await alertTimes(v, a, hopMs, c.filter, c.tauMs, { ...c.options, method: c.method })).length;
}

/** Seed of constant-affect stream `k` whose start is checked for alerts (the first minute in the report). */
export const START_STREAM_SEED = 90_000;

/** Detection and false alarms of one case: `episodes` synthetic escalations and `noiseHours` of constant affect. */
export async function escalationCase(c: EscalationCase, hopMs: number, episodes: number, noiseHours: number, startStreams = 0): Promise<EscalationRow> {
  const { detected, delayMs: delay } = await detectEscalations(c, hopMs, episodes, 40);
  // Hour by hour (a fraction of an hour last), so the rate is over the audio actually run.
  let alarms = 0;
  for (let h = 0; h < noiseHours; h++) alarms += await alarmsOnConstant(c, hopMs, 5000 + h, 3600 * Math.min(1, noiseHours - h));
  let startAlarms = 0;
  for (let k = 0; k < startStreams; k++) startAlarms += await alarmsOnConstant(c, hopMs, START_STREAM_SEED + k, 60);
  return {
    method: c.method,
    filter: c.filter,
    tauMs: c.tauMs,
    noise: c.noise,
    noiseSd: c.noiseSd,
    detected,
    episodes,
    meanDelayMs: detected ? Math.round(delay / detected) : null,
    falseAlarmsPerHour: round(alarms / noiseHours, 2),
    startAlarms,
    startStreams,
  };
}

/** The escalation rows' noise levels: independent at each of `noiseSds`, then overlapping windows' at σ 0.3 and 0.5. */
export function escalationNoises(noiseSds: readonly number[] = DEFAULTS.noiseSds): Array<[NoiseKind, number]> {
  return [...noiseSds.map((sd): [NoiseKind, number] => ['iid', sd]), ['overlap', 0.3], ['overlap', 0.5]];
}

/** The cases of the report: the velocity detector on the old and new default filters, the shift detector (default) on the default filter and on raw points. */
function escalationCases(p: SmoothingBenchOptions): EscalationCase[] {
  const cases: EscalationCase[] = [];
  for (const [noise, noiseSd] of escalationNoises(p.noiseSds)) {
    cases.push({ method: 'velocity', filter: 'one-euro', tauMs: 1000, noise, noiseSd });
    cases.push({ method: 'velocity', filter: 'kalman-cv', tauMs: 1000, noise, noiseSd });
    cases.push({ method: 'velocity', filter: 'kalman-cv', tauMs: 2000, noise, noiseSd });
    cases.push({ method: 'shift', filter: 'kalman-cv', tauMs: 1000, noise, noiseSd });
    cases.push({ method: 'shift', filter: 'none', tauMs: 1000, noise, noiseSd });
  }
  return cases;
}

/** Rest lengths (s) before the ramp for the onset rows: the default detector needs minBlocks + 1 sustain spans of history. */
export const ONSET_REST_S = [10, 15, 20, 30, 40] as const;

async function benchEscalationOnset(p: SmoothingBenchOptions): Promise<EscalationOnsetRow[]> {
  const rows: EscalationOnsetRow[] = [];
  for (const [noise, noiseSd] of escalationNoises(p.noiseSds)) {
    const c: EscalationCase = { method: DEFAULT_ESCALATION.method, filter: DEFAULT_SMOOTHING.filter, tauMs: DEFAULT_SMOOTHING.tauMs, noise, noiseSd };
    for (const restS of ONSET_REST_S) {
      const { detected, delayMs } = await detectEscalations(c, p.hopMs, p.episodes, restS);
      rows.push({ ...c, restS, detected, episodes: p.episodes, meanDelayMs: detected ? Math.round(delayMs / detected) : null });
    }
  }
  return rows;
}

async function benchEscalation(p: SmoothingBenchOptions): Promise<EscalationRow[]> {
  const rows: EscalationRow[] = [];
  for (const c of escalationCases(p)) rows.push(await escalationCase(c, p.hopMs, p.episodes, p.noiseHours, p.startStreams));
  return rows;
}

export async function benchSmoothing(o: Partial<SmoothingBenchOptions> = {}): Promise<SmoothingSection> {
  const p = { ...DEFAULTS, ...o };
  const n = Math.round((p.seconds * 1000) / p.hopMs);
  const skip = Math.round(5000 / p.hopMs);
  const rows: SmoothingRow[] = [];
  for (const noiseSd of p.noiseSds) {
    const sums = new Map<string, { pos: number; vel: number }>();
    for (let trial = 0; trial < p.trials; trial++) {
      const g = generator(1 + 7 * trial);
      const { truth, slope } = syntheticTrajectory(n, p.hopMs, g.uniform);
      const meas = truth.map((t) => Math.max(-1, Math.min(1, t + noiseSd * g.gauss())));
      const still = meas.map(() => 0);
      for (const filter of p.filters)
        for (const tauMs of p.tausMs) {
          const frames = await smoothed(meas, still, p.hopMs, filter, tauMs);
          let se = 0;
          let sv = 0;
          for (let i = skip; i < n; i++) {
            const e = frames[i] as AffectEstimate;
            se += (e.valence - (truth[i] as number)) ** 2;
            sv += ((e.velocity?.valence ?? NaN) - (slope[i] as number)) ** 2;
          }
          const key = `${filter}:${tauMs}`;
          const acc = sums.get(key) ?? { pos: 0, vel: 0 };
          acc.pos += Math.sqrt(se / (n - skip)) / p.trials;
          acc.vel += Math.sqrt(sv / (n - skip)) / p.trials;
          sums.set(key, acc);
        }
    }
    for (const filter of p.filters)
      for (const tauMs of p.tausMs) {
        const acc = sums.get(`${filter}:${tauMs}`) as { pos: number; vel: number };
        rows.push({ filter, tauMs, noiseSd, positionRmse: round(acc.pos, 4), velocityRmse: round(acc.vel, 4) });
      }
  }
  return {
    hopMs: p.hopMs,
    trials: p.trials,
    seconds: p.seconds,
    rows,
    escalation: await benchEscalation(p),
    escalationOnset: await benchEscalationOnset(p),
    note: 'synthetic holds, ramps and steps plus per-window Gaussian noise; RMSE of the smoothed position and of the frame velocity against the truth (filter defaults, confidence 1)',
  };
}

/** The section's summary lines. */
export function formatSmoothing(s: SmoothingSection): string[] {
  return [
    `smoothing (synthetic trajectories, hop ${s.hopMs} ms, ${s.trials} trials × ${s.seconds} s; RMSE position / velocity per s):`,
    ...[...new Set(s.rows.map((r) => r.noiseSd))].map(
      (sd) =>
        `  noise sd ${sd}: ` +
        s.rows
          .filter((r) => r.noiseSd === sd)
          .map((r) => `${r.filter} τ${r.tauMs} ${r.positionRmse}/${r.velocityRmse}`)
          .join(' · '),
    ),
    `  escalation alerts (detected of ${s.escalation[0]?.episodes ?? 0} synthetic escalations, mean delay, false alarms per hour of constant affect, alerts in the first minute of ${s.escalation[0]?.startStreams ?? 0} streams):`,
    ...[...new Set(s.escalation.map((r) => `${r.noise} ${r.noiseSd}`))].map(
      (noise) =>
        `  noise ${noise}: ` +
        s.escalation
          .filter((r) => `${r.noise} ${r.noiseSd}` === noise)
          .map(
            (r) =>
              `${r.method}/${r.filter} τ${r.tauMs} ${r.detected}/${r.episodes} ${r.meanDelayMs === null ? '-' : `${(r.meanDelayMs / 1000).toFixed(1)} s`} ${r.falseAlarmsPerHour}/h ${r.startAlarms}/${r.startStreams}`,
          )
          .join(' · '),
    ),
    `  the default detector on escalations starting R s into a stream (detected of ${s.escalationOnset[0]?.episodes ?? 0}, mean delay):`,
    ...[...new Set(s.escalationOnset.map((r) => `${r.noise} ${r.noiseSd}`))].map(
      (noise) =>
        `  noise ${noise}: ` +
        s.escalationOnset
          .filter((r) => `${r.noise} ${r.noiseSd}` === noise)
          .map((r) => `R ${r.restS} s ${r.detected}/${r.episodes} ${r.meanDelayMs === null ? '-' : `${(r.meanDelayMs / 1000).toFixed(1)} s`}`)
          .join(' · '),
    ),
  ];
}
