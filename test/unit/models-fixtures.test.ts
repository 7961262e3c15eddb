import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildAllFixtures, manifestShaFor, sha256 } from '../../models/fixtures/build-fixtures.js';
import { FIXTURES_DIR } from '../../models/files.js';

describe('fixture models', () => {
  it('rebuild byte-for-byte: sha256 equals the manifest and the committed files', () => {
    const built = buildAllFixtures();
    expect(built.length).toBeGreaterThan(0);
    for (const f of built) {
      const sha = sha256(f.bytes);
      expect(sha, f.path).toBe(manifestShaFor(f.path));
      expect(sha256(readFileSync(path.join(FIXTURES_DIR, f.path))), `committed ${f.path}`).toBe(sha);
      expect(f.bytes.length).toBeLessThan(2 * 1024 * 1024);
    }
  });
});
