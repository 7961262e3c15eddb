import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { prefixGraph } from '../../bench/lib/onnx-prefix.js';
import { SILERO_SEQ_FILE } from '../../models/silero-vad.js';

// The bench's `vad` section times Silero's sequence graph stage by stage through front parts of the
// shipped file: the STFT part must be the STFT, and the summed form must sum the same tensor.
const bytes = readFileSync(SILERO_SEQ_FILE);
const F = 512;

function tone(frames: number, hz: number): Float32Array {
  return Float32Array.from({ length: frames * F }, (_, i) => 0.3 * Math.sin((2 * Math.PI * hz * i) / 16000));
}

describe('prefixGraph (bench/lib/onnx-prefix.ts)', () => {
  it("Silero's STFT part maps a 1 kHz tone to bin 16 (62.5 Hz bins), with only the graph input it reads", async () => {
    const s = await ort.InferenceSession.create(prefixGraph(bytes, ['re_36', 'im_39'], false));
    try {
      expect(s.inputNames).toEqual(['frames']);
      const out = await s.run({ frames: new ort.Tensor('float32', tone(3, 1000), [3, F]) });
      const re = out['re_36']!;
      const im = out['im_39']!.data as Float32Array;
      expect(re.dims).toEqual([3, 8, 129]);
      const r = re.data as Float32Array;
      // The middle column of the middle frame, away from the padded edges.
      const col = (1 * 8 + 4) * 129;
      const mag = Array.from({ length: 129 }, (_, k) => Math.hypot(r[col + k]!, im[col + k]!));
      expect(mag.indexOf(Math.max(...mag))).toBe(16);
      expect(mag[16]!).toBeGreaterThan(20 * mag[40]!);
    } finally {
      await s.release();
    }
  });

  it('the summed form gives the sum of the tensor; the encoder part leaves the LSTMs out', async () => {
    const x = new ort.Tensor('float32', tone(4, 440), [4, F]);
    const full = await ort.InferenceSession.create(prefixGraph(bytes, ['relu_172'], false));
    const sum = await ort.InferenceSession.create(prefixGraph(bytes, ['relu_172']));
    try {
      const t = (await full.run({ frames: x }))['relu_172']!.data as Float32Array;
      let want = 0;
      for (const v of t) want += v;
      const got = (await sum.run({ frames: x }))['relu_172_sum']!.data as Float32Array;
      expect(got.length).toBe(1);
      expect(want).toBeGreaterThan(0);
      expect(Math.abs(got[0]! - want) / want).toBeLessThan(1e-4);
      expect(sum.inputNames).toEqual(['frames']); // no index/lengths/h/c: nothing past the encoder
    } finally {
      await full.release();
      await sum.release();
    }
  });

  it('names a tensor that no node produces', () => {
    expect(() => prefixGraph(bytes, ['no_such_tensor'])).toThrow(/no node produces tensor 'no_such_tensor'/);
  });
});
