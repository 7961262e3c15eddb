/**
 * Writes clients/dashboard/terms.json from core/emotion-terms.ts, so the browser dashboard (plain
 * static files, no bundler) draws exactly the terms the pipeline labels with. Run it after changing
 * the terms: `npx tsx clients/build-terms.ts`. A unit test (test/unit/clients-terms.test.ts) fails
 * when the committed file and the source disagree.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUSSELL_1980_TERMS } from '../core/emotion-terms.js';

/** Where the generated file lives. */
export const TERMS_JSON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboard', 'terms.json');

/** The file's content: the terms with coordinates rounded to 4 decimals (plenty for drawing). */
export function termsJson(): string {
  const round = (v: number) => Math.round(v * 1e4) / 1e4;
  const doc = {
    source:
      'Russell, J. A. (1980). A circumplex model of affect. JPSP 39(6), 1161-1178. Generated from core/emotion-terms.ts by clients/build-terms.ts; do not edit.',
    terms: RUSSELL_1980_TERMS.map((t) => ({ term: t.term, angleDeg: t.angleDeg, valence: round(t.valence), arousal: round(t.arousal) })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

// Only write when run as a script, not when imported by the test.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(TERMS_JSON_PATH, termsJson());
  process.stdout.write(`wrote ${path.relative(process.cwd(), TERMS_JSON_PATH)} (${RUSSELL_1980_TERMS.length} terms)\n`);
}
