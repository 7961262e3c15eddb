/**
 * The Twilio endpoint's per-packet fast paths give what the slow, obvious code gives:
 * - strictBase64 accepts exactly the payloads the strict regular expression (plus length % 4) accepts,
 *   and decodes them, on seeded random strings with corruptions (bad characters, '=' inside, base64url);
 * - mulawToFloat32 into a reused array writes the same samples as into a new one.
 */
import { describe, expect, it } from 'vitest';
import { strictBase64 } from '../../src/server/handlers/twilio.js';
import { mulawToFloat32 } from '../../streams/audio.js';
import { seededRandom } from '../../core/seeded-random.js';

const STRICT = /^[A-Za-z0-9+/]*={0,2}$/;

describe('strictBase64', () => {
  it('accepts and decodes exactly the strict base64 strings (seeded fuzz)', () => {
    const rnd = seededRandom(13);
    const odd = '=-_ \n\t!.é\u0000\u00ff%"\\';
    let valid = 0;
    let invalid = 0;
    for (let t = 0; t < 20_000; t++) {
      const len = [4, 8, 12, 216, 3, 5][Math.floor(rnd() * 6)]!;
      const bytes = Buffer.from(Array.from({ length: Math.ceil((len * 3) / 4) }, () => Math.floor(rnd() * 256)));
      let s = bytes.toString('base64').slice(0, len);
      for (let i = Math.floor(rnd() * 3); i > 0; i--) {
        const pos = Math.floor(rnd() * s.length);
        s = s.slice(0, pos) + odd[Math.floor(rnd() * odd.length)]! + s.slice(pos + (rnd() < 0.5 ? 1 : 0));
      }
      if (rnd() < 0.2) s = s.replace(/=+$/, '') + '='.repeat(Math.floor(rnd() * 4));
      const want = s.length > 0 && s.length % 4 === 0 && STRICT.test(s);
      const got = strictBase64(s);
      expect(got !== undefined, JSON.stringify(s)).toBe(want);
      if (got) {
        expect(got.equals(Buffer.from(s, 'base64'))).toBe(true);
        valid++;
      } else invalid++;
    }
    // Both outcomes were exercised many times.
    expect(valid).toBeGreaterThan(2000);
    expect(invalid).toBeGreaterThan(2000);
  });
});

describe('mulawToFloat32 into a reused array', () => {
  it('writes the same samples as a fresh decode and refuses a short target', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const scratch = new Float32Array(300).fill(Number.NaN);
    const into = mulawToFloat32(bytes, scratch);
    expect(into.length).toBe(256);
    expect(into.buffer).toBe(scratch.buffer);
    expect(Array.from(into)).toEqual(Array.from(mulawToFloat32(bytes)));
    expect(() => mulawToFloat32(bytes, new Float32Array(10))).toThrow(/into has 10 samples, needs 256/);
  });
});
