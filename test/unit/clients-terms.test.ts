/** The dashboard's terms.json must be what clients/build-terms.ts makes from core/emotion-terms.ts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TERMS_JSON_PATH, termsJson } from '../../clients/build-terms.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';

describe('clients/dashboard/terms.json', () => {
  it('matches the generator output byte for byte (run `npx tsx clients/build-terms.ts` if not)', () => {
    expect(readFileSync(TERMS_JSON_PATH, 'utf8')).toBe(termsJson());
  });

  it('has every Russell term at its coordinates', () => {
    const doc = JSON.parse(readFileSync(TERMS_JSON_PATH, 'utf8')) as { terms: { term: string; angleDeg: number; valence: number; arousal: number }[] };
    expect(doc.terms).toHaveLength(28);
    for (const [i, t] of RUSSELL_1980_TERMS.entries()) {
      const j = doc.terms[i];
      expect(j?.term).toBe(t.term);
      expect(j?.angleDeg).toBe(t.angleDeg);
      expect(j?.valence).toBeCloseTo(t.valence, 4);
      expect(j?.arousal).toBeCloseTo(t.arousal, 4);
    }
  });
});
