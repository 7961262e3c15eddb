/**
 * Statistics of `circumplex validate` on small cases worked out by hand (the arithmetic is in the
 * comments), so a wrong formula fails here rather than quietly skewing a report.
 */
import { describe, expect, it } from 'vitest';
import {
  angleDegOf,
  averageRanks,
  circularCorrelation,
  circularRankCorrelation,
  cyclicOrientation,
  meanAbsAngularErrorDeg,
  orderingAgreement,
  pearson,
  percentile,
  spearman,
  toRad,
  wrapDeg180,
} from '../../src/validate/stats.js';
import { fitRidge, fitRidgeCv, seededPermutation } from '../../src/validate/ridge.js';
import { NRC_VAD_TERMS, RUSSELL_TERMS, nrcToCircumplex, selectTerms } from '../../src/validate/terms.js';

const rad = (degs: number[]): number[] => degs.map(toRad);

describe('pearson / spearman', () => {
  it('is ±1 on exact linear relations', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
  });

  it('matches a hand-computed value', () => {
    // x̄ = ȳ = 2.5; dx = [-1.5,-.5,.5,1.5], dy = [-1.5,.5,-.5,1.5]; Σdxdy = 4, Σdx² = Σdy² = 5 → 0.8
    expect(pearson([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12);
  });

  it('is undefined (null), not NaN, for a constant series', () => {
    expect(pearson([1, 2, 3], [5, 5, 5])).toBeNull();
    expect(spearman([0.3, 0.3, 0.3], [1, 2, 3])).toBeNull();
  });

  it('gives tied values the mean of their ranks', () => {
    expect(averageRanks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4]);
    expect(averageRanks([3, 1, 3, 3])).toEqual([3, 1, 3, 3]);
  });

  it('handles ties in Spearman by average ranks', () => {
    // ranks x = [1,2.5,2.5,4], y = [1,2,3,4]; Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → 4.5/√22.5 = 0.948683
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(4.5 / Math.sqrt(22.5), 12);
    // Monotone but non-linear: rho = 1 while Pearson < 1.
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 100])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3, 4], [1, 4, 9, 100])!).toBeLessThan(0.9);
  });

  it('rejects mismatched, short or non-finite input with a RangeError', () => {
    expect(() => pearson([1, 2], [1])).toThrow(RangeError);
    expect(() => pearson([1], [1])).toThrow(/at least 2/);
    expect(() => spearman([1, Number.NaN], [1, 2])).toThrow(/not a finite number/);
  });
});

describe('circular correlation (Jammalamadaka–SenGupta)', () => {
  it('is 1 under a rotation and -1 under a reflection', () => {
    const a = rad([10, 50, 120, 200, 300]);
    expect(
      circularCorrelation(
        a,
        a.map((x) => x + 1.3),
      ),
    ).toBeCloseTo(1, 12);
    // α = [0,90,180]: ᾱ = 90°, sin(α−ᾱ) = [-1,0,1]; β = −α: β̄ = −90°, sin(β−β̄) = [1,0,-1] → −2/√(2·2) = −1
    expect(circularCorrelation(rad([0, 90, 180]), rad([0, -90, -180]))).toBeCloseTo(-1, 12);
  });

  it('matches a hand-computed value', () => {
    // α = [0,90,180] → ᾱ = 90°, sα = [-1,0,1].  β = [0,90,90] → β̄ = atan2(2,1) = 63.435°,
    // sβ = [-2/√5, 1/√5, 1/√5]. Σ sαsβ = 3/√5, Σsα² = 2, Σsβ² = 6/5 → (3/√5)/√(12/5) = 3/√12 = 0.866025
    expect(circularCorrelation(rad([0, 90, 180]), rad([0, 90, 90]))).toBeCloseTo(3 / Math.sqrt(12), 10);
  });

  it('is undefined when there is no mean direction', () => {
    expect(circularCorrelation(rad([0, 120, 240]), rad([10, 20, 30]))).toBeNull();
  });
});

describe('circular rank correlation (Fisher–Lee Πₙ)', () => {
  it('is 1 for the same circular order (any rotation) and -1 for the mirror order', () => {
    const a = rad([10, 80, 150, 220, 290, 330]);
    expect(
      circularRankCorrelation(
        a,
        a.map((x) => x + 2.0),
      ),
    ).toBeCloseTo(1, 12);
    expect(
      circularRankCorrelation(
        a,
        a.map((x) => -x),
      ),
    ).toBeCloseTo(-1, 12);
  });

  it('matches a hand-computed value with one swapped pair', () => {
    // n = 5, ranks α = [1..5], β = [2,1,3,4,5]; scores 72°·rank.
    // γ−δ = 72°·[-1,1,0,0,0] → Σe^{i·} = 3 + 2cos72° → r₁² = ((3+2cos72°)/5)² = 0.523607
    // γ+δ = 72°·[3,3,6,8,10] ≡ [216,216,72,216,0]° → Σ = (3cos216°+cos72°+1, 3sin216°+sin72°) → r₂² = 0.076393
    // Πₙ = 0.447214 (= 1/√5)
    const a = rad([10, 80, 150, 220, 290]);
    const b = rad([80, 10, 150, 220, 290]);
    expect(circularRankCorrelation(a, b)).toBeCloseTo(1 / Math.sqrt(5), 10);
  });

  it('needs at least three points', () => {
    expect(() => circularRankCorrelation(rad([0, 90]), rad([0, 90]))).toThrow(/at least 3/);
  });
});

describe('ordering agreement', () => {
  it('orients triples on the circle', () => {
    expect(cyclicOrientation(toRad(0), toRad(90), toRad(180))).toBe(1);
    expect(cyclicOrientation(toRad(0), toRad(180), toRad(90))).toBe(-1);
    expect(cyclicOrientation(toRad(0), toRad(0), toRad(90))).toBe(0);
  });

  it('is 1 for the same order and 0 for the mirror', () => {
    const h = rad([0, 90, 180, 270]);
    expect(orderingAgreement(h, h)).toMatchObject({ adjacentPairsPreserved: 1, adjacentPairs: 4, tripletConcordance: 1, triplets: 4 });
    expect(
      orderingAgreement(
        h,
        h.map((x) => -x),
      ),
    ).toMatchObject({ adjacentPairsPreserved: 0, tripletConcordance: 0 });
  });

  it('matches a hand-worked case', () => {
    // human 0,90,180,270 (already in order); predicted 100,10,170,260.
    // adjacent: 100→10 (−90 ✗), 10→170 (+160 ✓), 170→260 (+90 ✓), 260→100 (−160 ✗) → 2/4
    // triples: (100,10,170) cw ✗, (100,10,260) cw ✗, (100,170,260) ccw ✓, (10,170,260) ccw ✓ → 2/4
    const r = orderingAgreement(rad([0, 90, 180, 270]), rad([100, 10, 170, 260]));
    expect(r.adjacentPairsPreserved).toBe(0.5);
    expect(r.tripletConcordance).toBe(0.5);
  });

  it('does not depend on the order the terms are listed in', () => {
    const h = rad([270, 0, 180, 90]);
    const p = rad([260, 100, 170, 10]);
    expect(orderingAgreement(h, p)).toMatchObject({ adjacentPairsPreserved: 0.5, tripletConcordance: 0.5 });
  });
});

describe('angles and helpers', () => {
  it('puts pleasant at 0°, aroused at 90°, counter-clockwise', () => {
    expect(angleDegOf(1, 0)).toBeCloseTo(0, 12);
    expect(angleDegOf(0, 1)).toBeCloseTo(90, 12);
    expect(angleDegOf(-1, 0)).toBeCloseTo(180, 12);
    expect(angleDegOf(0, -1)).toBeCloseTo(270, 12);
    expect(wrapDeg180(350)).toBeCloseTo(-10, 12);
  });

  it('measures angular error the short way round', () => {
    expect(meanAbsAngularErrorDeg([350, 10], [10, 350])).toBeCloseTo(20, 12);
  });

  it('interpolates percentiles', () => {
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3);
    expect(percentile([0, 10], 95)).toBeCloseTo(9.5, 12);
    expect(percentile([], 50)).toBeNull();
  });
});

describe('ridge regression', () => {
  it('recovers an exact linear map with a small penalty', () => {
    const x: number[][] = [];
    const y: [number, number][] = [];
    for (let i = 0; i < 12; i++) {
      const v = [Math.sin(i), Math.cos(i * 0.7), (i % 3) - 1];
      x.push(v);
      y.push([2 * (v[0] as number) - (v[1] as number) + 0.5, (v[2] as number) + 1]);
    }
    const m = fitRidge(x, y, 1e-8);
    const [a, b] = m.predict([0.3, -0.2, 0.4]);
    expect(a).toBeCloseTo(2 * 0.3 + 0.2 + 0.5, 4);
    expect(b).toBeCloseTo(1.4, 4);
    // Noise-free data: cross-validation picks the smallest penalty.
    expect(fitRidgeCv(x, y, { lambdas: [1e-6, 1, 100] }).model.lambda).toBe(1e-6);
  });

  it('shrinks towards the mean with a huge penalty', () => {
    const m = fitRidge(
      [[0], [1], [2]],
      [
        [0, 0],
        [1, 1],
        [2, 2],
      ],
      1e9,
    );
    expect(m.predict([10])[0]).toBeCloseTo(1, 3);
  });

  it('rejects bad input', () => {
    expect(() => fitRidge([[1]], [[1, 1]], 1)).toThrow(/at least 2/);
    expect(() =>
      fitRidge(
        [[1], [2]],
        [
          [1, 1],
          [2, 2],
        ],
        0,
      ),
    ).toThrow(/lambda/);
    expect(() =>
      fitRidge(
        [[1], [2, 3]],
        [
          [1, 1],
          [2, 2],
        ],
        1,
      ),
    ).toThrow(/dimensions/);
  });

  it('shuffles reproducibly', () => {
    expect(seededPermutation(10, 7)).toEqual(seededPermutation(10, 7));
    expect(seededPermutation(10, 7)).not.toEqual(seededPermutation(10, 8));
    expect([...seededPermutation(10, 7)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('rated terms', () => {
  it("has Russell's 28 on the unit circle and the NRC words mapped to [-1, 1]", () => {
    expect(RUSSELL_TERMS).toHaveLength(28);
    for (const t of RUSSELL_TERMS) expect(Math.hypot(t.valence, t.arousal)).toBeCloseTo(1, 12);
    expect(NRC_VAD_TERMS.length).toBeGreaterThanOrEqual(150);
    expect(nrcToCircumplex(0.5)).toBe(0);
    const happy = NRC_VAD_TERMS.find((t) => t.term === 'happy');
    expect(happy).toMatchObject({ valence: 1, arousal: nrcToCircumplex(0.735) });
    for (const t of NRC_VAD_TERMS) {
      expect(Math.abs(t.valence)).toBeLessThanOrEqual(1);
      expect(Math.abs(t.arousal)).toBeLessThanOrEqual(1);
    }
    // Every quadrant is covered.
    const quads = new Set(NRC_VAD_TERMS.map((t) => `${t.valence >= 0 ? '+' : '-'}${t.arousal >= 0 ? '+' : '-'}`));
    expect(quads.size).toBe(4);
  });

  it('does not repeat a word in the combined set', () => {
    const all = selectTerms('all');
    expect(new Set(all.map((t) => t.term)).size).toBe(all.length);
    expect(all.filter((t) => t.source === 'russell-1980')).toHaveLength(28);
  });
});
