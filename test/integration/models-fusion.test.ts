import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadFusion } from '../../models/registry.js';
import type { FusionModel } from '../../models/ports.js';
import type { OnnxFusionModel } from '../../models/fusion-onnx.js';
import { seededRandom } from '../../models/onnx/builder.js';

const silent = pino({ level: 'silent' });
const open: FusionModel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});
async function load(opts: Parameters<typeof loadFusion>[1] = {}) {
  const m = await loadFusion('fusion-fixture', { device: 'cpu', logger: silent, ...opts });
  open.push(m);
  return m;
}
const rand = seededRandom(7);
const emb = (n = 32): Float32Array => Float32Array.from({ length: n }, () => rand() * 2 - 1);
const est = (e: Float32Array) => ({ valence: 0, arousal: 0, confidence: 0.5, embedding: e });

describe('learned ONNX fusion (fixture)', () => {
  it('uses both modalities, each alone, and neither (centre, confidence 0)', async () => {
    const f = await load();
    expect(f.provider).toBe('cpu');
    const s = emb();
    const t = emb();
    const both = await f.fuse({ speech: est(s), text: est(t) });
    const speechOnly = await f.fuse({ speech: est(s) });
    const textOnly = await f.fuse({ text: est(t) });
    const none = await f.fuse({});
    expect(none).toEqual({ valence: 0, arousal: 0, confidence: 0 });
    // the graph's precision: speech 1.5, text 2.5, both 4 → confidence p / (1 + p)
    expect(speechOnly.confidence).toBeCloseTo(1.5 / 2.5, 3);
    expect(textOnly.confidence).toBeCloseTo(2.5 / 3.5, 3);
    expect(both.confidence).toBeCloseTo(4 / 5, 3);
    expect(both.valence).not.toBeCloseTo(speechOnly.valence, 3);
    for (const r of [both, speechOnly, textOnly]) for (const v of [r.valence, r.arousal]) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    // a text estimate without an embedding (e.g. a classifier) counts as a missing modality
    const noEmb = await f.fuse({ speech: est(s), text: { valence: 0.9, arousal: 0.1, confidence: 0.9 } });
    expect(noEmb.valence).toBeCloseTo(speechOnly.valence, 5);
  });

  it('batched outputs equal unbatched outputs', async () => {
    const batched = await load({ maxBatch: 8, maxWaitMs: 50 });
    const single = await load({ maxBatch: 1, maxWaitMs: 0 });
    const inputs = Array.from({ length: 8 }, (_, i) => (i % 3 === 0 ? { speech: est(emb()) } : { speech: est(emb()), text: est(emb()) }));
    const a = await Promise.all(inputs.map((x) => batched.fuse(x)));
    for (let i = 0; i < inputs.length; i++) {
      const b = await single.fuse(inputs[i]!);
      expect(a[i]!.valence).toBeCloseTo(b.valence, 5);
      expect(a[i]!.arousal).toBeCloseTo(b.arousal, 5);
      expect(a[i]!.confidence).toBeCloseTo(b.confidence, 5);
    }
    expect((batched as OnnxFusionModel).batcher.stats.maxBatchSeen).toBe(8);
  });

  it('an embedding of the wrong width is AFFECT_ERR_MODEL_SIGNATURE naming both widths', async () => {
    const f = await load();
    await expect(f.fuse({ speech: est(emb(1024)) })).rejects.toMatchObject({
      code: 'AFFECT_ERR_MODEL_SIGNATURE',
      message: expect.stringMatching(/32 values, got 1024/),
    });
  });

  it("'late' is the training-free default and needs no files", async () => {
    const late = await loadFusion('late');
    expect(late.id).toBe('late');
    expect(await late.fuse({ speech: { valence: 0.5, arousal: 0.5, confidence: 0.5 } })).toMatchObject({ valence: 0.5, arousal: 0.5 });
  });
});
