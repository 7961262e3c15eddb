import { describe, expect, it } from 'vitest';
import { createFilter, resolveSmoothingOptions, type SmoothingFilter, type VaSample } from '../../streams/smoothing.js';

const step = (n: number, hopMs: number, v: number, a: number, confidence = 1): VaSample[] =>
  Array.from({ length: n }, (_, i) => ({ tMs: (i + 1) * hopMs, valence: v, arousal: a, confidence }));
const run = (filter: SmoothingFilter, samples: VaSample[], extra = {}) => {
  const f = createFilter({ filter, tauMs: 1000, ...extra });
  return samples.map((s) => f.update(s));
};

describe('smoothing filters', () => {
  it('EMA reaches 1 - 1/e of a step after one time constant of audio, whatever the hop', () => {
    for (const hop of [50, 250, 500]) {
      const f = createFilter({ filter: 'ema', tauMs: 1000 });
      f.update({ tMs: 0, valence: 0, arousal: 0, confidence: 1 });
      let last = { valence: 0, arousal: 0 };
      for (let t = hop; t <= 1000; t += hop) last = f.update({ tMs: t, valence: 1, arousal: -1, confidence: 1 });
      expect(last.valence).toBeCloseTo(1 - Math.exp(-1), 5);
      expect(last.arousal).toBeCloseTo(-(1 - Math.exp(-1)), 5);
    }
  });

  it('every filter converges to a constant input and smooths a jump', () => {
    for (const filter of ['ema', 'one-euro', 'kalman'] as const) {
      const out = run(filter, [{ tMs: 0, valence: 0, arousal: 0, confidence: 1 }, ...step(40, 250, 0.8, 0.4)]);
      const first = out[1];
      const last = out[out.length - 1];
      expect(first && first.valence).toBeGreaterThan(0);
      expect(first && first.valence).toBeLessThan(0.8); // did not jump straight to the new value
      expect(last?.valence).toBeCloseTo(0.8, 2);
      expect(last?.arousal).toBeCloseTo(0.4, 2);
    }
  });

  it('One-Euro and Kalman move less for low-confidence points, and not at all at confidence 0', () => {
    for (const filter of ['one-euro', 'kalman'] as const) {
      const start = { tMs: 0, valence: 0, arousal: 0, confidence: 1 };
      const hi = run(filter, [start, { tMs: 250, valence: 1, arousal: 1, confidence: 1 }])[1];
      const lo = run(filter, [start, { tMs: 250, valence: 1, arousal: 1, confidence: 0.1 }])[1];
      const zero = run(filter, [start, { tMs: 250, valence: 1, arousal: 1, confidence: 0 }])[1];
      expect(hi?.valence).toBeGreaterThan((lo?.valence ?? 1) * 2);
      expect(lo?.valence).toBeGreaterThan(0);
      expect(zero?.valence).toBeCloseTo(0, 2);
    }
  });

  it('One-Euro follows fast moves faster than slow ones (speed-adaptive cutoff)', () => {
    const lag = (beta: number) => {
      const f = createFilter({ filter: 'one-euro', tauMs: 1000, beta });
      f.update({ tMs: 0, valence: 0, arousal: 0, confidence: 1 });
      return f.update({ tMs: 100, valence: 1, arousal: 0, confidence: 1 }).valence;
    };
    expect(lag(2)).toBeGreaterThan(lag(0));
  });

  it('longer time constants smooth more', () => {
    for (const filter of ['ema', 'one-euro', 'kalman'] as const) {
      const fast = run(filter, [{ tMs: 0, valence: 0, arousal: 0, confidence: 1 }, ...step(2, 250, 1, 0)], { tauMs: 250 });
      const slow = run(filter, [{ tMs: 0, valence: 0, arousal: 0, confidence: 1 }, ...step(2, 250, 1, 0)], { tauMs: 4000 });
      expect(fast[2]?.valence).toBeGreaterThan(slow[2]?.valence ?? 1);
    }
  });

  it('keeps the Kalman state inside [-1, 1] and finite on a noisy input', () => {
    const f = createFilter({ filter: 'kalman', tauMs: 200 });
    for (let i = 0; i < 500; i++) {
      const x = Math.sin(i * 1.7) * 1.5;
      const o = f.update({ tMs: i * 250, valence: Math.max(-1, Math.min(1, x)), arousal: Math.max(-1, Math.min(1, -x)), confidence: (i % 7) / 6 });
      expect(Number.isFinite(o.valence) && Number.isFinite(o.arousal) && Number.isFinite(o.confidence)).toBe(true);
      expect(Math.abs(o.valence)).toBeLessThanOrEqual(1);
    }
  });

  it('rejects bad options with a RangeError naming the option', () => {
    expect(() => resolveSmoothingOptions({ tauMs: 0 })).toThrow('smoothAffect: tauMs must be > 0, got 0');
    expect(() => resolveSmoothingOptions({ filter: 'median' as never })).toThrow(/filter/);
    expect(() => resolveSmoothingOptions({ beta: -1 })).toThrow(/beta/);
    expect(() => resolveSmoothingOptions({ measurementNoise: 0 })).toThrow(/measurementNoise/);
  });
});
