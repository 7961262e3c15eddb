import { describe, expect, it } from 'vitest';
import { GO_EMOTIONS_LABELS } from '../../models/manifest.js';
import { GO_EMOTIONS_TO_RUSSELL, goEmotionsPoint } from '../../models/text-lexicon.js';
import { applyZeroShot, fitZeroShot, logitsToProbabilities, projectLabels } from '../../models/text-projection.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { configureHfEnv } from '../../models/hf-env.js';
import { seededRandom } from '../../models/onnx/builder.js';

describe('GoEmotions → circumplex coordinates', () => {
  it('maps every GoEmotions label to a Russell term (or the centre for neutral)', () => {
    for (const label of GO_EMOTIONS_LABELS) {
      const m = GO_EMOTIONS_TO_RUSSELL[label];
      if (label === 'neutral') expect(m).toBeNull();
      else expect(RUSSELL_1980_TERMS.map((t) => t.term)).toContain(m?.[0]);
    }
    expect(goEmotionsPoint('joy').valence).toBeGreaterThan(0.9);
    expect(goEmotionsPoint('fear').arousal).toBeGreaterThan(0.8);
    expect(goEmotionsPoint('sadness').valence).toBeLessThan(-0.8);
    expect(goEmotionsPoint('neutral')).toEqual({ valence: 0, arousal: 0 });
  });
});

describe('classifier projection (path a)', () => {
  it('is the probability-weighted mean of label coordinates; confidence = strongest emotion', () => {
    const joy = goEmotionsPoint('joy');
    const anger = goEmotionsPoint('anger');
    const e = projectLabels([
      { label: 'joy', score: 0.6 },
      { label: 'anger', score: 0.2 },
      { label: 'neutral', score: 0.2 },
    ]);
    expect(e.valence).toBeCloseTo(0.6 * joy.valence + 0.2 * anger.valence, 9);
    expect(e.arousal).toBeCloseTo(0.6 * joy.arousal + 0.2 * anger.arousal, 9);
    expect(e.confidence).toBeCloseTo(0.6, 9);
  });

  it('neutral-only or empty gives the centre; NaN scores are ignored', () => {
    expect(projectLabels([{ label: 'neutral', score: 0.9 }])).toEqual({ valence: 0, arousal: 0, confidence: 0 });
    expect(projectLabels([])).toEqual({ valence: 0, arousal: 0, confidence: 0 });
    const e = projectLabels([
      { label: 'fear', score: Number.NaN },
      { label: 'sadness', score: 0.5 },
    ]);
    expect(Number.isFinite(e.valence)).toBe(true);
    expect(e.valence).toBeLessThan(-0.8);
  });

  it('sigmoid for multi-label, softmax otherwise', () => {
    expect(logitsToProbabilities([0, 2], true)[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 9);
    const sm = logitsToProbabilities([1, 2, 3], false);
    expect(sm.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(sm[2]).toBeGreaterThan(sm[1]!);
  });
});

describe('zero-shot ridge map (path b)', () => {
  // embeddings that are a hidden linear function of (valence, arousal) plus seeded noise
  const rand = seededRandom(42);
  const D = 64;
  const U = Array.from({ length: D }, () => rand() * 2 - 1);
  const A = Array.from({ length: D }, () => rand() * 2 - 1);
  const embed = (v: number, a: number, noise = 0.05): Float32Array =>
    Float32Array.from({ length: D }, (_, d) => v * U[d]! + a * A[d]! + noise * (rand() * 2 - 1));

  it('recovers rated coordinates of unseen points from Russell anchors', () => {
    const map = fitZeroShot(RUSSELL_1980_TERMS.map((t) => ({ embedding: embed(t.valence, t.arousal), point: t })));
    for (const [v, a] of [
      [0.7, 0.1],
      [-0.5, 0.6],
      [0.1, -0.8],
    ] as const) {
      const e = applyZeroShot(map, embed(v, a, 0));
      expect(e.valence).toBeCloseTo(v, 1);
      expect(e.arousal).toBeCloseTo(a, 1);
      expect(e.confidence).toBeGreaterThanOrEqual(0);
      expect(e.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('rejects too few anchors and mismatched widths', () => {
    expect(() => fitZeroShot([])).toThrow(RangeError);
    const map = fitZeroShot(RUSSELL_1980_TERMS.map((t) => ({ embedding: embed(t.valence, t.arousal), point: t })));
    expect(() => applyZeroShot(map, new Float32Array(3))).toThrow(/3 dims/);
  });
});

describe('hf-env', () => {
  it('sets transformers.js offline with an explicit local path and cache, never in node_modules', () => {
    const env = { allowRemoteModels: true, allowLocalModels: false, localModelPath: '', cacheDir: '', useFSCache: true, useBrowserCache: true };
    configureHfEnv(env as never, { localModelPath: '/m', cacheDir: '/c' });
    expect(env).toMatchObject({ allowRemoteModels: false, allowLocalModels: true, localModelPath: '/m/', cacheDir: '/c' });
    expect(() => configureHfEnv(env as never, { localModelPath: '/m', cacheDir: '/x/node_modules/.cache' })).toThrow(/node_modules/);
  });
});
