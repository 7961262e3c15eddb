import { describe, expect, it } from 'vitest';
import { LateFusion, confidenceToPrecision, lateFuse, precisionToConfidence } from '../../models/fusion-late.js';

describe('precision-weighted late fusion', () => {
  it('weights each modality by its precision', () => {
    const speech = { valence: -0.5, arousal: 0.8, confidence: 0.5 }; // precision 1
    const text = { valence: 0.7, arousal: 0.2, confidence: 0.75 }; // precision 3
    const f = lateFuse([speech, text]);
    expect(f.valence).toBeCloseTo((1 * -0.5 + 3 * 0.7) / 4, 6);
    expect(f.arousal).toBeCloseTo((1 * 0.8 + 3 * 0.2) / 4, 6);
    expect(f.confidence).toBeCloseTo(4 / 5, 6); // precisions add: 4 → 0.8
    expect(f.confidence).toBeGreaterThan(Math.max(speech.confidence, text.confidence));
  });

  it('uses the other modality when one is missing, and the centre with 0 confidence when both are', async () => {
    const speech = { valence: 0.3, arousal: -0.4, confidence: 0.6 };
    expect(lateFuse([speech, undefined])).toEqual({ valence: 0.3, arousal: -0.4, confidence: expect.closeTo(0.6, 6) });
    const fusion = new LateFusion();
    expect(await fusion.fuse({ text: speech })).toMatchObject({ valence: 0.3, arousal: -0.4 });
    expect(await fusion.fuse({})).toEqual({ valence: 0, arousal: 0, confidence: 0 });
  });

  it('never returns NaN: non-finite or zero-confidence inputs count as missing', () => {
    const bad = { valence: Number.NaN, arousal: 0.2, confidence: 0.9 };
    const zero = { valence: 1, arousal: 1, confidence: 0 };
    const inf = { valence: 0.1, arousal: 0.1, confidence: Number.POSITIVE_INFINITY };
    const good = { valence: -0.2, arousal: 0.1, confidence: 1 }; // confidence 1 is capped, not infinite
    expect(lateFuse([bad, zero, inf])).toEqual({ valence: 0, arousal: 0, confidence: 0 });
    const f = lateFuse([good, bad]);
    expect(Number.isFinite(f.valence) && Number.isFinite(f.arousal) && Number.isFinite(f.confidence)).toBe(true);
    expect(f.valence).toBeCloseTo(-0.2, 6);
  });

  it('confidence ↔ precision round-trips', () => {
    for (const c of [0.1, 0.5, 0.9]) expect(precisionToConfidence(confidenceToPrecision(c))).toBeCloseTo(c, 9);
  });
});
