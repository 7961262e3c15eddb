import { describe, expect, it } from 'vitest';
import { map } from 'rxjs';
import { smoothAffect } from '../../streams/operators/smooth-affect.js';
import { labelAffect } from '../../streams/operators/label-affect.js';
import type { AffectEstimate } from '../../core/types.js';
import { createTestScheduler } from './core-helpers.js';

const est = (tMs: number, valence: number, arousal: number, confidence = 1, droppedWindows = 0): AffectEstimate => ({
  streamId: 's',
  tMs,
  windowIndex: tMs / 250,
  valence,
  arousal,
  confidence,
  speech: { valence, arousal, confidence },
  droppedWindows,
});

describe('smoothAffect + labelAffect (marble)', () => {
  it('smooths in audio time with no delay of its own: frames leave when they arrive', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const src = cold('a 249ms b 249ms c|', { a: est(0, 0, 0), b: est(250, 1, 1), c: est(500, 1, 1) });
      const alpha = 1 - Math.exp(-250 / 500);
      const v1 = alpha;
      const v2 = v1 + alpha * (1 - v1);
      expectObservable(
        src.pipe(
          smoothAffect({ filter: 'ema', tauMs: 500 }),
          map((e) => [e.tMs, +e.valence.toFixed(6)]),
        ),
      ).toBe('a 249ms b 249ms c|', {
        a: [0, 0],
        b: [250, +v1.toFixed(6)],
        c: [500, +v2.toFixed(6)],
      });
    });
  });

  it('drops non-finite estimates and counts them (with their own drops) on the next frame: no NaN ever', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const src = cold('a b c d|', {
        a: est(0, 0.5, 0.5),
        b: est(250, Number.NaN, 0.2, 1, 2),
        c: est(500, 0.1, Number.POSITIVE_INFINITY),
        d: est(750, 0.5, 0.5),
      });
      expectObservable(
        src.pipe(
          smoothAffect({ filter: 'kalman' }),
          map((e) => [e.tMs, e.droppedWindows, Number.isFinite(e.valence) && Number.isFinite(e.arousal)]),
        ),
      ).toBe('a--d|', {
        a: [0, 0, true],
        d: [750, 4, true],
      });
    });
  });

  it('labels smoothed points with angle, intensity and the nearest term; modalities follow the inputs', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const withText: AffectEstimate = { ...est(0, -0.6, -0.3), text: { valence: -0.6, arousal: -0.3, confidence: 0.5 } };
      const src = cold('a b|', { a: withText, b: { ...est(250, 2, 0), speech: undefined } });
      expectObservable(
        src.pipe(
          labelAffect(),
          map((p) => [p.label, +p.intensity.toFixed(3), Math.round(p.angleDeg), p.modalities]),
        ),
      ).toBe('a b|', {
        a: ['sad', +Math.hypot(0.6, 0.3).toFixed(3), 207, ['speech', 'text']],
        b: ['pleased', 1, 0, []], // 0° is 6.8° from pleased (353.2°), 7.8° from happy
      });
    });
  });

  it('keeps every smoothed value in range even for out-of-range model output', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const src = cold('a|', { a: est(0, 3, -5, 7) });
      expectObservable(
        src.pipe(
          smoothAffect({ filter: 'one-euro' }),
          map((e) => [e.valence, e.arousal, e.confidence]),
        ),
      ).toBe('a|', { a: [1, -1, 1] });
    });
  });

  it('rejects a bad time constant', () => {
    expect(() => smoothAffect({ tauMs: 0 })).toThrow('smoothAffect: tauMs must be > 0, got 0');
  });
});
