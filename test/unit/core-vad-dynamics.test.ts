/**
 * Voice activity (detectVoice with a fake detector), the smoother's hold on unvoiced windows, the
 * constant-velocity Kalman filter's velocity, turns and escalation alerts, on synthetic sequences
 * with known answers.
 */
import { describe, expect, it } from 'vitest';
import { from, lastValueFrom, of, toArray } from 'rxjs';
import { detectVoice, FrameLabeller, resolveVadOptions, type VoiceSegment } from '../../streams/vad.js';
import { smoothAffect } from '../../streams/operators/smooth-affect.js';
import { createFilter } from '../../streams/smoothing.js';
import { DEFAULT_ESCALATION, deriveStreamEvents, resolveEscalationOptions, type EscalationOptions } from '../../streams/turns.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { gaussianFrom, seededRandom } from '../../core/seeded-random.js';
import { noiseSeries } from '../../bench/sections/smoothing.js';
import type { AffectEstimate, AlertEvent, AudioWindow, PipelineEvent } from '../../core/types.js';
import { affectFrame, affectPoint } from '../helpers/affect-frame.js';
import type { VoiceDetector } from '../../models/ports.js';

/** A detector whose probability is the frame's mean absolute sample (so the test writes p into the audio). */
const FRAME = 512;
const fakeDetector = (): VoiceDetector & { calls: number } => {
  const d = {
    frameSamples: FRAME,
    calls: 0,
    stream() {
      return {
        probabilities(frames: Float32Array) {
          d.calls++;
          const out = new Float32Array(frames.length / FRAME);
          for (let k = 0; k < out.length; k++) {
            let s = 0;
            for (let i = 0; i < FRAME; i++) s += Math.abs(frames[k * FRAME + i] ?? 0);
            out[k] = s / FRAME;
          }
          return Promise.resolve(out);
        },
      };
    },
  };
  return d;
};

/** 16 kHz audio made of [seconds, p] runs; windows of 1 s every 250 ms over it. */
function windowsOver(runs: ReadonlyArray<readonly [number, number]>, windowMs = 1000, hopMs = 250): AudioWindow[] {
  const total = runs.reduce((a, [s]) => a + Math.round(s * 16000), 0);
  const audio = new Float32Array(total);
  let at = 0;
  for (const [s, p] of runs) {
    const n = Math.round(s * 16000);
    audio.fill(p, at, at + n);
    at += n;
  }
  const W = (windowMs * 16000) / 1000;
  const H = (hopMs * 16000) / 1000;
  const out: AudioWindow[] = [];
  for (let end = W, i = 0; end <= total; end += H, i++) {
    out.push({ streamId: 's', index: i, startSample: end - W, endSample: end, tMs: (end * 1000) / 16000, samples: audio.slice(end - W, end) });
  }
  return out;
}

describe('detectVoice', () => {
  it('stamps each window with its speech fraction and reports segments with their boundaries', async () => {
    const segs: VoiceSegment[] = [];
    const det = fakeDetector();
    // 2 s silence, 1.5 s speech, 1 s silence, 0.1 s blip (too short), 2 s silence, speech to the end.
    const ws = windowsOver([
      [2, 0.02],
      [1.5, 0.9],
      [1, 0.02],
      [0.1, 0.9],
      [2, 0.02],
      [1, 0.9],
    ]);
    // The windows arrive as one synchronous burst: let them all wait (a live stream drops past 8).
    const out = await lastValueFrom(from(ws).pipe(detectVoice(det, { onSegment: (s) => segs.push(s), maxPendingWindows: ws.length }), toArray()));
    expect(out).toHaveLength(ws.length);
    const at = (tMs: number) => out.find((w) => w.tMs === tMs)?.voiced;
    expect(at(1000)).toBe(0);
    expect(at(2000)).toBe(0);
    expect(at(3500)).toBe(1);
    // Half speech, half silence: 2.5..3.5 s is speech, window 2.75..3.75 → 0.75 (frame-quantised).
    expect(at(3750)).toBeGreaterThan(0.6);
    expect(at(3750)).toBeLessThan(0.9);
    expect(at(4500)).toBe(0); // the 1 s gap (the hysteresis hangover counts as silence)
    // The 100 ms blip at 4.5 s is shorter than minSpeechMs: not speech in any window.
    expect(at(5000)).toBe(0);
    expect(at(5500)).toBe(0);
    // One detector call per window with new samples, never a frame twice.
    expect(det.calls).toBeLessThanOrEqual(ws.length);
    // Segments: [2.0, 3.5] and the final one closed at the end; the 100 ms blip is too short.
    expect(segs).toHaveLength(2);
    expect(segs[0]!.startMs).toBeGreaterThanOrEqual(2000 - 32);
    expect(segs[0]!.startMs).toBeLessThanOrEqual(2000 + 32);
    expect(Math.abs(segs[0]!.endMs - 3500)).toBeLessThanOrEqual(32);
    expect(segs[0]!.detectedAtMs).toBeGreaterThanOrEqual(segs[0]!.endMs + 300);
    expect(Math.abs(segs[1]!.startMs - 6600)).toBeLessThanOrEqual(32);
  });

  it('a gap before a window (a track silent for minutes) is silence: labels as if fed zeros, but only the frames around it reach the detector', async () => {
    /** Windows over `runs` placed at sample `offset` (a source whose clock jumped there). */
    const shifted = (runs: ReadonlyArray<readonly [number, number]>, offset: number): AudioWindow[] =>
      windowsOver(runs).map((w, i) => ({
        ...w,
        index: 1000 + i,
        startSample: w.startSample + offset,
        endSample: w.endSample + offset,
        tMs: w.tMs + offset / 16,
      }));
    const before = windowsOver([
      [1, 0.02],
      [1.5, 0.9],
      [0.5, 0.02],
    ]);
    const after = (offset: number) =>
      shifted(
        [
          [0.5, 0.02],
          [1.5, 0.9],
          [0.5, 0.02],
        ],
        offset,
      );
    const run = async (ws: AudioWindow[]) => {
      const segs: VoiceSegment[] = [];
      let frames = 0;
      const det = fakeDetector();
      const counting: VoiceDetector = {
        frameSamples: FRAME,
        stream: () => {
          const s = det.stream();
          return { probabilities: (x: Float32Array) => ((frames += x.length / FRAME), s.probabilities(x)) };
        },
      };
      const out = await lastValueFrom(from(ws).pipe(detectVoice(counting, { onSegment: (s) => segs.push(s), maxPendingWindows: ws.length }), toArray()));
      return { out, segs, frames };
    };
    // 7.3 s of gap, not a whole number of frames, against the same audio with the gap as zero samples
    // (one window holding them): every label and segment is the same.
    const end = 48000;
    const gap = Math.round(7.3 * 16000) + 77;
    const zeros: AudioWindow = { streamId: 's', index: 999, startSample: end, endSample: end + gap, tMs: (end + gap) / 16, samples: new Float32Array(gap) };
    const skipped = await run([...before, ...after(end + gap)]);
    const fedZeros = await run([...before, zeros, ...after(end + gap)]);
    expect(skipped.out.map((w) => w.voiced)).toEqual(fedZeros.out.filter((w) => w.index !== 999).map((w) => w.voiced));
    expect(skipped.segs.map((s) => [s.startMs, s.endMs])).toEqual(fedZeros.segs.map((s) => [s.startMs, s.endMs]));
    expect(skipped.segs).toHaveLength(2);
    expect(Math.abs(skipped.segs[1]!.startMs - (end + gap + 8000) / 16)).toBeLessThanOrEqual(32);
    expect(fedZeros.frames - skipped.frames).toBeGreaterThanOrEqual(Math.floor(gap / FRAME) - 1);
    // Ten minutes of gap: the detector sees the same frames as after a gap of seconds, not 18,750 more.
    const long = await run([...before, ...after(end + 600 * 16000 + 77)]);
    expect(long.frames).toBeLessThanOrEqual(skipped.frames + 1);
    expect(long.segs).toHaveLength(2);
    expect(Math.abs(long.segs[1]!.startMs - (end + 600 * 16000 + 77 + 8000) / 16)).toBeLessThanOrEqual(32);
    expect(long.out.at(-3)!.voiced).toBe(1);
  });

  it('FrameLabeller (the stage hysteresis, exported for benches): segments, minSpeechMs, dips inside a segment, the open segment at the end', () => {
    // Defaults: threshold 0.5, negThreshold 0.35, 300 ms = 10 frames of 32 ms for both minSilence and minSpeech.
    const L = new FrameLabeller(resolveVadOptions(), FRAME, Infinity);
    const p = (v: number, n: number): number[] => new Array<number>(n).fill(v);
    // 5 quiet frames, a 6-frame blip (too short), 12 quiet, 20 speech with a 3-frame dip to 0.4 and a
    // 4-frame dip to 0.1 (shorter than the closing silence), then 10 quiet frames that close it.
    const closed = L.push([...p(0.1, 5), ...p(0.9, 6), ...p(0.1, 12), ...p(0.9, 8), ...p(0.4, 3), ...p(0.9, 4), ...p(0.1, 4), ...p(0.9, 5), ...p(0.1, 10)]);
    expect(closed).toEqual([[23, 47]]); // the blip is not a segment; the end is where the closing silence began
    expect(L.frames).toBe(57);
    const speech = Array.from({ length: 57 }, (_, k) => L.isSpeech(k));
    expect(speech.slice(5, 11)).toEqual(p(0, 6).map(() => false)); // the blip's frames never count
    expect(speech.slice(23, 38).every(Boolean)).toBe(true); // 0.4 is above negThreshold: still speech
    expect(speech.slice(38, 42).some(Boolean)).toBe(false); // the 0.1 dip is not speech, but does not end it
    expect(speech.slice(42, 47).every(Boolean)).toBe(true);
    expect(L.voicedFraction(23 * FRAME, 47 * FRAME)).toBeCloseTo(20 / 24, 10);
    // An open segment: its frames count once it lasts 10 frames; finish() closes it at the audio's end.
    expect(L.push(p(0.9, 9))).toEqual([]);
    expect(L.isSpeech(57)).toBe(false);
    L.push(p(0.9, 2));
    expect(L.isSpeech(57) && L.isSpeech(67)).toBe(true);
    expect(L.finish()).toEqual([57, 68]);
    // A stage-sized labeller keeps only its last maxKept frames.
    const small = new FrameLabeller(resolveVadOptions(), FRAME, 8);
    small.push(p(0.9, 30));
    expect(small.isSpeech(29)).toBe(true);
    expect(small.isSpeech(5)).toBe(false);
    expect(small.voicedFraction(0, 30 * FRAME)).toBe(1); // over the frames it still holds
  });

  it('rejects bad options with a RangeError naming them', () => {
    expect(() => resolveVadOptions({ threshold: 1.2 })).toThrow(/threshold/);
    expect(() => resolveVadOptions({ minVoicedFraction: -0.1 })).toThrow(/minVoicedFraction/);
    expect(() => resolveVadOptions({ holdTauMs: 0 })).toThrow(/holdTauMs/);
  });
});

const est = (tMs: number, valence: number, arousal: number, voiced?: number, confidence = 1): AffectEstimate => ({
  streamId: 's',
  tMs,
  windowIndex: tMs / 250,
  valence,
  arousal,
  confidence,
  droppedWindows: 0,
  ...(voiced !== undefined ? { voiced } : {}),
});

describe('smoothAffect hold on unvoiced windows', () => {
  it('unvoiced windows do not move the point; confidence decays; velocity is 0; voiced windows move it again', async () => {
    const seq = [
      est(250, 0.5, 0.5, 1),
      est(500, 0.5, 0.5, 1),
      est(750, -0.9, 0.9, 0),
      est(1000, -0.9, 0.9, 0.1),
      est(3000, -0.9, 0.9, 0),
      est(3250, -0.5, -0.5, 1),
    ];
    const out = await lastValueFrom(of(...seq).pipe(smoothAffect({ filter: 'one-euro', holdBelowVoiced: 0.2, holdTauMs: 1000 }), toArray()));
    const [a, b, c, d, e, f] = out as [AffectEstimate, AffectEstimate, AffectEstimate, AffectEstimate, AffectEstimate, AffectEstimate];
    expect(c.valence).toBe(b.valence);
    expect(c.arousal).toBe(b.arousal);
    expect(e.valence).toBe(b.valence);
    expect(c.velocity).toEqual({ valence: 0, arousal: 0 });
    expect(c.confidence).toBeCloseTo(b.confidence * Math.exp(-0.25), 6);
    expect(e.confidence).toBeCloseTo(d.confidence * Math.exp(-2), 6);
    expect(e.voiced).toBe(0);
    expect(f.valence).toBeLessThan(b.valence); // speech again: moves
    expect(a.valence).toBe(0.5);
  });

  it('holds at the neutral point with confidence 0 before any speech, and without holdBelowVoiced nothing holds', async () => {
    const seq = [est(250, 0.8, 0.8, 0), est(500, 0.8, 0.8, 0)];
    const held = await lastValueFrom(of(...seq).pipe(smoothAffect({ holdBelowVoiced: 0.2 }), toArray()));
    expect(held.map((p) => [p.valence, p.arousal, p.confidence])).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    const moved = await lastValueFrom(of(...seq).pipe(smoothAffect({}), toArray()));
    expect(moved[0]!.valence).toBe(0.8);
  });
});

describe('constant-velocity Kalman filter', () => {
  it.each([0.2, -0.3, 0])('a ramp of slope %f per second gives that velocity', (slope) => {
    const f = createFilter({ filter: 'kalman-cv' });
    let last: ReturnType<typeof f.update> | undefined;
    // 6 s inside [-1, 1]: valence -3 slope .. +3 slope, arousal the other way at half the rate.
    for (let i = 0; i <= 24; i++) {
      const t = i * 250;
      last = f.update({ tMs: t, valence: slope * (t / 1000 - 3), arousal: (-slope / 2) * (t / 1000 - 3), confidence: 1 });
    }
    expect(last!.velocity!.valence).toBeCloseTo(slope, 2);
    expect(last!.velocity!.arousal).toBeCloseTo(-slope / 2, 2);
    expect(last!.valence).toBeCloseTo(slope * 3, 2);
  });

  it('smoothAffect puts the filter velocity on frames; other filters get the finite difference', async () => {
    const seq = Array.from({ length: 20 }, (_, i) => est(250 * (i + 1), 0.1 * i * 0.25, 0));
    const cv = await lastValueFrom(of(...seq).pipe(smoothAffect({ filter: 'kalman-cv' }), toArray()));
    expect(cv.at(-1)!.velocity!.valence).toBeCloseTo(0.1, 2);
    const none = await lastValueFrom(of(...seq).pipe(smoothAffect({ filter: 'none' }), toArray()));
    expect(none.at(-1)!.velocity!.valence).toBeCloseTo(0.1, 6);
  });
});

const point = (tMs: number, valence: number, arousal: number, vel: { valence: number; arousal: number }, voiced = 1): PipelineEvent =>
  affectFrame({ tMs, valence, arousal, velocity: vel, voiced });

/** Runs frames [t, valence, arousal, voiced?] through the Kalman-CV smoother, as the pipeline does, then derives events. */
async function derive(frames: Array<[number, number, number, number?]>, escalation: Partial<EscalationOptions> = {}): Promise<PipelineEvent[]> {
  const f = createFilter({ filter: 'kalman-cv' });
  const events = frames.map(([t, v, a, voiced]) => {
    const s = f.update({ tMs: t, valence: v, arousal: a, confidence: 1 });
    return point(t, s.valence, s.arousal, s.velocity!, voiced ?? 1);
  });
  return lastValueFrom(from(events).pipe(deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation, minVoicedFraction: 0.2, windowMs: 1000 }), toArray()));
}

const alertsOf = (out: PipelineEvent[]): AlertEvent[] => out.flatMap((e) => (e.kind === 'alert' ? [e.alert] : []));

/**
 * A call at the 250 ms hop: `restS` seconds around (valence 0.2, arousal -0.3), then arousal +0.6 and
 * valence -0.6 over `rampS` seconds, then held; per-frame noise of sd `sd` (seeded), correlated as
 * overlapping 1 s windows' outputs are (each frame the mean of four quarter-window draws, three shared
 * with the frame before) when `overlap`.
 */
function escalatingCall(o: {
  restS: number;
  rampS?: number;
  afterS?: number;
  sd: number;
  overlap?: boolean;
  seed?: number;
  rise?: number;
}): Array<[number, number, number]> {
  const rand = seededRandom(o.seed ?? 11);
  const gauss = (): number => gaussianFrom(rand);
  // The smoothing bench's noise, so the tests and the bench's figures mean the same thing by 'overlap'.
  const kind = o.overlap ? 'overlap' : 'iid';
  const [nv, na] = [noiseSeries(kind, o.sd, gauss), noiseSeries(kind, o.sd, gauss)];
  const rampS = o.rampS ?? 6;
  const rise = o.rise ?? 0.6;
  const frames: Array<[number, number, number]> = [];
  for (let t = 250; t <= (o.restS + rampS + (o.afterS ?? 10)) * 1000; t += 250) {
    const r = Math.min(1, Math.max(0, t / 1000 - o.restS) / rampS);
    frames.push([t, 0.2 - rise * r + nv(), -0.3 + rise * r + na()]);
  }
  return frames;
}

describe('escalation alerts: shift (the default)', () => {
  it('raises one alert on a noisy escalation, a few seconds into the ramp, with the measured shift in its reason', async () => {
    const alerts = alertsOf(await derive(escalatingCall({ restS: 40, sd: 0.2 })));
    expect(alerts).toHaveLength(1);
    const a = alerts[0]!;
    expect(a.alert).toBe('escalation');
    expect(a.tMs).toBeGreaterThan(40_000);
    expect(a.tMs).toBeLessThan(52_000);
    expect(a.sustainedMs).toBe(3000);
    expect(a.reason).toMatch(/^arousal up 0\.\d\d and valence down 0\.\d\d over the last 3\.0 s against the 20 s before .*; z \d+\.\d\)$/);
    expect(a.velocity.arousal).toBeGreaterThan(0.02);
    expect(a.velocity.valence).toBeLessThan(-0.02);
  });

  it('catches noisy escalations the velocity detector misses, and neither alerts on 30 minutes of correlated noise', async () => {
    let shift = 0;
    let velocity = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const call = escalatingCall({ restS: 40, sd: 0.3, seed });
      if (alertsOf(await derive(call)).some((a) => a.tMs > 40_000 && a.tMs <= 52_000)) shift++;
      if (alertsOf(await derive(call, { method: 'velocity' })).some((a) => a.tMs > 40_000 && a.tMs <= 52_000)) velocity++;
    }
    expect(shift).toBeGreaterThanOrEqual(7);
    expect(velocity).toBeLessThanOrEqual(3);
    // No change at all for 30 minutes, noise correlated across frames as overlapping windows make it.
    const calm = escalatingCall({ restS: 1800, rise: 0, sd: 0.3, overlap: true, seed: 5 });
    expect(alertsOf(await derive(calm))).toEqual([]);
  });

  it('does not alert when arousal and valence rise together, nor before it has heard enough of the stream', async () => {
    const happy = escalatingCall({ restS: 40, sd: 0.05 }).map(([t, v, a]): [number, number, number] => [t, 0.4 - (v - 0.2), a]);
    expect(alertsOf(await derive(happy))).toEqual([]);
    // The same clear escalation 10 s into the stream: fewer than minBlocks (6) blocks of history, no alert...
    const early = escalatingCall({ restS: 10, sd: 0.05, afterS: 8 });
    expect(alertsOf(await derive(early))).toEqual([]);
    // ...and with 2 blocks enough (and no prior scatter to outweigh them) it is caught.
    expect(alertsOf(await derive(early, { minBlocks: 2, priorBlocks: 0 }))).toHaveLength(1);
  });

  it('unvoiced frames do not count: a wild excursion in silence raises nothing, and the escalation after it is still caught', async () => {
    const frames: Array<[number, number, number, number?]> = escalatingCall({ restS: 60, sd: 0.1 }).map(([t, v, a]) =>
      // 30..45 s: the line goes silent and the (held) frames carry whatever the model said, voiced 0.
      t > 30_000 && t <= 45_000 ? [t, -0.9, 0.9, 0] : [t, v, a],
    );
    const alerts = alertsOf(await derive(frames));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.tMs).toBeGreaterThan(60_000);
  });

  it('still alerts when the hop is widened under overload (a frame a second), and not across a pause in speech', async () => {
    const everySecond = escalatingCall({ restS: 40, sd: 0.1 }).filter(([t]) => t % 1000 === 0);
    const alerts = alertsOf(await derive(everySecond));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.tMs).toBeGreaterThan(40_000);
    // The same call at the full hop (a 2 s ramp from 40 s) with the line silent from 42 s to 48 s: the
    // frames after the pause count only once they cover a span from its first quarter (t >= 50.5 s).
    const paused = escalatingCall({ restS: 40, rampS: 2, sd: 0.05 }).map(([t, v, a]): [number, number, number, number?] =>
      t > 42_000 && t <= 48_000 ? [t, v, a, 0] : [t, v, a],
    );
    const after = alertsOf(await derive(paused));
    expect(after).toHaveLength(1);
    expect(after[0]!.tMs).toBeGreaterThanOrEqual(50_500);
  });

  it('re-arms once the shift has lapsed: a second escalation a minute after the first raises a second alert', async () => {
    // Calm (valence 0.2, arousal -0.3) until 40 s, up to (-0.4, 0.3) by 46 s, held until 66 s, back to
    // calm by 72 s, calm until 132 s, up again by 138 s, held until 150 s; noise sd 0.1.
    const knots: Array<[number, number, number]> = [
      [0, 0.2, -0.3],
      [40, 0.2, -0.3],
      [46, -0.4, 0.3],
      [66, -0.4, 0.3],
      [72, 0.2, -0.3],
      [132, 0.2, -0.3],
      [138, -0.4, 0.3],
      [150, -0.4, 0.3],
    ];
    const rand = seededRandom(3);
    const frames: Array<[number, number, number]> = [];
    for (let t = 250; t <= 150_000; t += 250) {
      const k = knots.findIndex(([s]) => s * 1000 >= t);
      const [s0, v0, a0] = knots[k - 1]!;
      const [s1, v1, a1] = knots[k]!;
      const r = (t / 1000 - s0) / (s1 - s0);
      frames.push([t, v0 + (v1 - v0) * r + 0.2 * (rand() - 0.5), a0 + (a1 - a0) * r + 0.2 * (rand() - 0.5)]);
    }
    const alerts = alertsOf(await derive(frames));
    expect(alerts).toHaveLength(2);
    expect(alerts[0]!.tMs).toBeGreaterThan(40_000);
    expect(alerts[0]!.tMs).toBeLessThan(52_000);
    expect(alerts[1]!.tMs).toBeGreaterThan(132_000);
    expect(alerts[1]!.tMs).toBeLessThan(144_000);
  });

  it('the package exports the detector for frames a subscriber receives (wire frames, seq and all)', async () => {
    const { createEscalationDetector: create, DEFAULT_ESCALATION: d } = await import('../../src/index.js');
    expect(d.method).toBe('shift');
    const det = create({}, 0.2);
    const f = createFilter({ filter: 'kalman-cv' });
    const raised = escalatingCall({ restS: 40, sd: 0.1 }).flatMap(([t, v, a], seq) => {
      const s = f.update({ tMs: t, valence: v, arousal: a, confidence: 1 });
      const wire = { type: 'affect', seq, ...affectPoint({ tMs: t, valence: s.valence, arousal: s.arousal, velocity: s.velocity! }) };
      const alert = det.push(wire);
      return alert ? [alert] : [];
    });
    expect(raised).toHaveLength(1);
    expect(raised[0]!.tMs).toBeGreaterThan(40_000);
    // Frames from elsewhere may repeat, reorder or carry NaN: they are skipped, not a crash or a NaN alert.
    const again = create({}, 0.2);
    const calls = escalatingCall({ restS: 40, sd: 0.1 });
    const odd = calls.flatMap(([t, v, a], i) => {
      const p = affectPoint({ tMs: t, valence: v, arousal: a });
      return i % 10 === 0 ? [p, p, affectPoint({ tMs: t - 5000, valence: -1, arousal: 1 }), affectPoint({ tMs: t + 1, valence: Number.NaN, arousal: 1 })] : [p];
    });
    const got = odd.flatMap((p) => {
      const alert = again.push(p);
      return alert ? [alert] : [];
    });
    expect(got).toHaveLength(1);
    expect(Number.isFinite(got[0]!.velocity.valence) && Number.isFinite(got[0]!.velocity.arousal)).toBe(true);
    // The voiced threshold is a fraction: 2 made every frame unvoiced (no alert ever), NaN every frame voiced.
    expect(() => create({}, 2)).toThrow("createEscalationDetector: minVoicedFraction must be in [0, 1] (the VAD's, e.g. 0.2), got 2");
    expect(() => create({}, Number.NaN)).toThrow(/minVoicedFraction must be in \[0, 1\].*got NaN/);
  });

  it('refuses bad options with a RangeError naming the option', () => {
    expect(() => resolveEscalationOptions({ method: 'slope' as never })).toThrow('escalation: method must be one of shift, velocity, got slope');
    expect(() => resolveEscalationOptions({ minZ: 0 })).toThrow('escalation: minZ must be > 0, got 0');
    expect(() => resolveEscalationOptions({ minBlocks: 1 })).toThrow('escalation: minBlocks must be an integer >= 2, got 1');
    expect(() => resolveEscalationOptions({ historyMs: 10_000 })).toThrow('escalation: historyMs (10000) must hold minBlocks (6) blocks of sustainMs (3000)');
    expect(() => resolveEscalationOptions({ priorSd: Number.NaN })).toThrow('escalation: priorSd must be >= 0, got NaN');
    // The velocity method keeps its 2 s span; a long sustain span brings its own history unless one is given.
    expect(resolveEscalationOptions({ method: 'velocity' }).sustainMs).toBe(2000);
    expect(resolveEscalationOptions({}).sustainMs).toBe(3000);
    expect(resolveEscalationOptions({ sustainMs: 20_000 }).historyMs).toBe(2 * DEFAULT_ESCALATION.minBlocks * 20_000);
  });
});

describe('escalation alerts: velocity', () => {
  const velocity = { method: 'velocity' } as const;
  it('raises one alert when arousal rises while valence falls for the sustain time', async () => {
    // 2 s calm, then 4 s of arousal +0.2/s and valence -0.15/s.
    const frames: Array<[number, number, number]> = [];
    for (let t = 0; t <= 6000; t += 250) {
      const r = Math.max(0, t - 2000) / 1000;
      frames.push([t, 0.2 - 0.15 * r, -0.3 + 0.2 * r]);
    }
    const alerts = alertsOf(await derive(frames, velocity));
    expect(alerts).toHaveLength(1);
    const a = alerts[0]!;
    expect(a.alert).toBe('escalation');
    expect(a.reason).toMatch(/arousal rising .* while valence falls/);
    expect(a.tMs).toBeGreaterThan(4000);
    expect(a.velocity.arousal).toBeGreaterThan(0.05);
    expect(a.velocity.valence).toBeLessThan(-0.05);
  });

  it('raises none on noise around a fixed point, nor on arousal rising with valence rising', async () => {
    const rand = seededRandom(7);
    const noise: Array<[number, number, number]> = [];
    for (let t = 0; t <= 60_000; t += 250) noise.push([t, 0.1 + (rand() - 0.5) * 0.4, 0.1 + (rand() - 0.5) * 0.4]);
    expect(alertsOf(await derive(noise, velocity))).toHaveLength(0);
    const happy: Array<[number, number, number]> = [];
    for (let t = 0; t <= 6000; t += 250) happy.push([t, -0.3 + (0.15 * t) / 1000, -0.3 + (0.2 * t) / 1000]);
    expect(alertsOf(await derive(happy, velocity))).toHaveLength(0);
  });
});

describe('turns', () => {
  it('summarises the voiced frames of a segment once its end is known', async () => {
    const segments: VoiceSegment[] = [{ streamId: 's', startMs: 1000, endMs: 2500, detectedAtMs: 2750 }];
    const frames: PipelineEvent[] = [];
    for (let t = 250; t <= 4000; t += 250) {
      const inSeg = t > 1000 && t <= 3000;
      frames.push(point(t, inSeg ? 0.1 * (t / 1000) : 0, inSeg ? -0.4 : 0, { valence: 0, arousal: 0 }, inSeg ? 1 : 0));
    }
    const out = await lastValueFrom(
      from(frames).pipe(deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation: {}, segments, minVoicedFraction: 0.2, windowMs: 1000 }), toArray()),
    );
    const idx = out.findIndex((e) => e.kind === 'turn');
    expect(idx).toBeGreaterThan(0);
    const prev = out[idx - 1]!;
    expect(prev.kind === 'affect' && prev.point.tMs).toBe(3000);
    const turn = out[idx]!.kind === 'turn' ? (out[idx] as Extract<PipelineEvent, { kind: 'turn' }>).turn : undefined;
    // Frames at 1.25..3.0 s (up to half a window past the end), all voiced.
    expect(turn!.frames).toBe(8);
    expect(turn!.startMs).toBe(1000);
    expect(turn!.endMs).toBe(2500);
    expect(turn!.durationMs).toBe(1500);
    expect(turn!.tMs).toBe(3000);
    expect(turn!.mean.arousal).toBeCloseTo(-0.4, 9);
    expect(turn!.mean.valence).toBeCloseTo((0.1 * (1.25 + 3.0)) / 2, 9);
    expect(turn!.peak.valence).toBeCloseTo(0.3, 9);
    expect(turn!.confidence).toBeCloseTo(0.8, 9);
    expect(typeof turn!.label).toBe('string');
    expect(out.filter((e) => e.kind === 'turn')).toHaveLength(1);
  });

  it('a segment still open at the end of the stream is emitted on completion', async () => {
    const segments: VoiceSegment[] = [{ streamId: 's', startMs: 0, endMs: 1000, detectedAtMs: 99_999 }];
    const out = await lastValueFrom(
      of(point(500, 0.2, 0.2, { valence: 0, arousal: 0 })).pipe(
        deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation: {}, segments, minVoicedFraction: 0.2, windowMs: 1000 }),
        toArray(),
      ),
    );
    expect(out.map((e) => e.kind)).toEqual(['affect', 'turn']);
  });
});
