import { describe, expect, it } from 'vitest';
import { angleOf, angularDistance, intensityOf, locate, nearestTerm } from '../../core/circumplex.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';

describe('circumplex geometry', () => {
  it('maps the axes to their angles, counter-clockwise from pleasant', () => {
    expect(angleOf(1, 0)).toBe(0);
    expect(angleOf(0, 1)).toBeCloseTo(90);
    expect(angleOf(-1, 0)).toBeCloseTo(180);
    expect(angleOf(0, -1)).toBeCloseTo(270);
    expect(angleOf(0.5, -0.5)).toBeCloseTo(315);
    expect(angleOf(0, 0)).toBe(0);
  });

  it('clamps intensity to [0, 1] and never returns NaN', () => {
    expect(intensityOf(0.3, 0.4)).toBeCloseTo(0.5);
    expect(intensityOf(1, 1)).toBe(1);
    expect(intensityOf(0, 0)).toBe(0);
    expect(intensityOf(Number.NaN, 0.6)).toBeCloseTo(0.6);
    expect(Number.isFinite(angleOf(Number.NaN, Number.POSITIVE_INFINITY))).toBe(true);
  });

  it('measures angular distance across 0/360', () => {
    expect(angularDistance(350, 10)).toBeCloseTo(20);
    expect(angularDistance(10, 350)).toBeCloseTo(20);
    expect(angularDistance(0, 180)).toBeCloseTo(180);
  });

  it('labels each Russell term at its own angle, and quadrants with the expected words', () => {
    for (const t of RUSSELL_1980_TERMS) expect(nearestTerm(t.angleDeg).term).toBe(t.term);
    expect(locate(0.8, 0.1).label).toBe('happy');
    expect(locate(0.5, 0.55).label).toBe('excited');
    expect(locate(-0.1, 0.9).label).toBe('alarmed');
    expect(locate(-0.7, -0.4).label).toBe('gloomy'); // 209.7°
    expect(locate(-0.6, -0.4).label).toBe('depressed'); // 213.7°
    expect(locate(0.6, -0.6).label).toBe('calm'); // 315°
    expect(locate(0.7, -0.566).label).toBe('at ease'); // 321°
    expect(locate(0, -0.7).label).toBe('sleepy');
    // the centre has no direction: silence is neutral, not 'pleased' (the term at 0 degrees)
    expect(locate(0, 0).label).toBe('neutral');
    expect(locate(0.05, -0.05).label).toBe('neutral');
    expect(locate(0.1, 0).label).toBe('pleased');
    expect(locate(0.05, 0, undefined, 0).label).toBe('pleased');
    // Near 0°/360° the wrap-around must pick "happy"/"pleased", not something on the far side.
    expect(locate(0.9, 0.05).label).toBe('happy'); // 3.2°: 4.6° from happy, 10° from pleased
    expect(locate(0.9, -0.01).label).toBe('pleased'); // 359.4°: 6.2° from pleased across 0°
  });

  it('returns angle, intensity and label together', () => {
    const p = locate(-0.6, 0.8);
    expect(p.angleDeg).toBeCloseTo(126.87, 1);
    expect(p.intensity).toBeCloseTo(1);
    expect(p.label).toBe('annoyed');
  });
});
