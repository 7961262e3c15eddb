import { describe, expect, it } from 'vitest';
import { AffectError } from '../../core/errors.js';
import type { AffectOutputMapping } from '../../models/manifest.js';
import { decodeSpeechRow, SIGMA_PRIOR, sigmaConfidence, signalConfidence, VOICED_FULL } from '../../models/speech-onnx.js';
import type { WireTensor } from '../../models/worker/host.js';

const t = (data: number[], dims: number[]): WireTensor => ({ type: 'float32', data: Float32Array.from(data), dims });
const loud = Float32Array.from({ length: 1600 }, (_, i) => 0.3 * Math.sin(i));
const VA: AffectOutputMapping = { output: 'va', valence: 0, arousal: 1, range: [-1, 1], sigma: 'sigma', voiced: 'voiced', embedding: 'embedding' };

describe('speech output decoding with sigma and voiced (speech-va contract)', () => {
  it('decodes each batch row: va, sigma, voiced, embedding; confidence from sigma and voicing', () => {
    const res = {
      va: t([0.2, -0.4, -0.5, 0.7], [2, 2]),
      sigma: t([0.1, 0.2, 0.5, 0.5], [2, 2]),
      voiced: t([0.9, 0.1], [2, 1]),
      embedding: t([1, 2, 3, 4, 5, 6], [2, 3]),
    };
    const a = decodeSpeechRow('m', VA, res, 0, loud);
    expect(a.valence).toBeCloseTo(0.2, 6);
    expect(a.arousal).toBeCloseTo(-0.4, 6);
    expect(a.sigma?.valence).toBeCloseTo(0.1, 6);
    expect(a.sigma?.arousal).toBeCloseTo(0.2, 6);
    expect(a.voiced).toBeCloseTo(0.9, 6);
    expect(Array.from(a.embedding ?? [])).toEqual([1, 2, 3]);
    // c = s0² / (s0² + mean σ²) = 0.25 / (0.25 + 0.025)
    expect(a.confidence).toBeCloseTo(0.25 / 0.275, 5);
    const b = decodeSpeechRow('m', VA, res, 1, loud);
    expect(b.valence).toBeCloseTo(-0.5, 6);
    expect(Array.from(b.embedding ?? [])).toEqual([4, 5, 6]);
    // σ = the prior spread -> 0.5, then scaled by voicing 0.1 / VOICED_FULL
    expect(b.confidence).toBeCloseTo(0.5 * (0.1 / VOICED_FULL), 5);
  });

  it('confidence falls as sigma grows, is 0 for an unvoiced window however small sigma is, and ignores loudness', () => {
    expect(sigmaConfidence({ valence: 0.05, arousal: 0.05 })).toBeGreaterThan(sigmaConfidence({ valence: 0.3, arousal: 0.3 }));
    expect(sigmaConfidence({ valence: SIGMA_PRIOR, arousal: SIGMA_PRIOR })).toBeCloseTo(0.5, 9);
    expect(sigmaConfidence({ valence: 0.01, arousal: 0.01 }, 0)).toBe(0);
    const res = { va: t([0.1, 0.1], [1, 2]), sigma: t([0.2, 0.2], [1, 2]), voiced: t([0.8], [1, 1]) };
    const quiet = Float32Array.from({ length: 1600 }, (_, i) => 0.001 * Math.sin(i)); // −63 dBFS: signalConfidence 0
    expect(signalConfidence(quiet)).toBe(0);
    expect(decodeSpeechRow('m', VA, res, 0, quiet).confidence).toBeCloseTo(decodeSpeechRow('m', VA, res, 0, loud).confidence, 9);
  });

  it('a mapping without sigma keeps the signal-level confidence and reports neither sigma nor voiced', () => {
    const m: AffectOutputMapping = { output: 'va', arousal: 0, dominance: 1, valence: 2, range: [-1, 1] };
    const out = decodeSpeechRow('fixture', m, { va: t([0.1, 0.2, 0.3], [1, 3]) }, 0, loud);
    expect(out.confidence).toBe(signalConfidence(loud));
    expect(out.sigma).toBeUndefined();
    expect(out.voiced).toBeUndefined();
    expect(out.dominance).toBeCloseTo(0.2, 6);
  });

  it('a missing sigma tensor, a negative or NaN sigma, or a NaN voiced fraction is AFFECT_ERR_INFERENCE naming the output', () => {
    const base = { va: t([0.1, 0.1], [1, 2]), voiced: t([0.5], [1, 1]) };
    const expectErr = (res: Record<string, WireTensor>, text: RegExp) => {
      try {
        decodeSpeechRow('speech-va', VA, res, 0, loud);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(AffectError);
        expect((err as AffectError).code).toBe('AFFECT_ERR_INFERENCE');
        expect((err as Error).message).toMatch(text);
      }
    };
    expectErr(base, /output sigma missing/);
    expectErr({ ...base, sigma: t([-0.1, 0.2], [1, 2]) }, /sigma holds -0\.1/);
    expectErr({ ...base, sigma: t([Number.NaN, 0.2], [1, 2]) }, /sigma holds NaN/);
    expectErr({ ...base, sigma: t([0.1], [1, 1]) }, /sigma has 1 columns/);
    expectErr({ ...base, sigma: t([0.1, 0.1], [1, 2]), voiced: t([Number.NaN], [1, 1]) }, /voiced holds NaN/);
  });
});
