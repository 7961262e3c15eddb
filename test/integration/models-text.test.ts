import { afterEach, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadTextModel } from '../../models/registry.js';
import { MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import { FIXTURES_DIR } from '../../models/files.js';
import type { TextAffectModel } from '../../models/ports.js';
import { TransformersTextModel } from '../../models/text-model.js';
import { AffectError } from '../../core/errors.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';

const silent = pino({ level: 'silent' });
const open: TextAffectModel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});
async function load(id: string | ModelSpec, opts: Parameters<typeof loadTextModel>[1] = {}) {
  const m = await loadTextModel(id, { device: 'cpu', logger: silent, cacheDir: path.join(os.tmpdir(), 'cx-hf-cache'), ...opts });
  open.push(m);
  return m;
}

/** A non-fixture copy of a fixture's folder in a temp models dir. */
function copyOf(id: 'text-classifier-fixture' | 'text-embed-fixture', overrides: Partial<ModelSpec> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-text-'));
  cpSync(path.join(FIXTURES_DIR, id), path.join(dir, 'copy'), { recursive: true });
  const base = MODEL_SPECS[id] as ModelSpec;
  const spec: ModelSpec = {
    ...base,
    id: 'copy',
    fixture: false,
    files: base.files.map((f) => ({ ...f, path: f.path.replace(`${id}/`, '') })),
    onnxFile: 'onnx/model.onnx',
    ...overrides,
  };
  return { dir, spec };
}

describe('text classifier (transformers.js, offline, worker) → GoEmotions → circumplex', () => {
  it('puts joyful text pleasant, hateful text unpleasant, fearful text aroused, plain text near the centre', async () => {
    const m = await load('text-classifier-fixture');
    expect(m.provider).toBe('cpu');
    const happy = await m.infer('I am so happy today!');
    const hate = await m.infer('this is terrible and I hate it');
    const fear = await m.infer('I am scared and nervous');
    const plain = await m.infer('the weather report for tomorrow');
    expect(happy.labels?.[0]?.label).toBe('joy');
    expect(happy.valence).toBeGreaterThan(0.4);
    expect(hate.valence).toBeLessThan(-0.2);
    expect(fear.arousal).toBeGreaterThan(0.4);
    expect(plain.labels?.[0]?.label).toBe('neutral');
    expect(plain.confidence).toBeLessThan(0.2);
    expect(happy.confidence).toBeGreaterThan(0.8);
    expect(happy.labels).toHaveLength(28);
  });

  it('empty text is the centre with confidence 0 (no words yet)', async () => {
    const m = await load('text-classifier-fixture');
    expect(await m.infer('   ')).toEqual({ valence: 0, arousal: 0, confidence: 0 });
  });

  it('batched outputs equal unbatched outputs (different lengths, padded together)', async () => {
    const batched = await load('text-classifier-fixture', { maxBatch: 8, maxWaitMs: 50 });
    const single = await load('text-classifier-fixture', { maxBatch: 1, maxWaitMs: 0 });
    const texts = ['happy', 'I hate this so much it is awful', 'calm', 'I am scared', 'wow', 'thanks a lot', 'the report', 'sad and tired today'];
    const a = await Promise.all(texts.map((t) => batched.infer(t)));
    for (let i = 0; i < texts.length; i++) {
      const b = await single.infer(texts[i]!);
      expect(a[i]!.valence).toBeCloseTo(b.valence, 4);
      expect(a[i]!.arousal).toBeCloseTo(b.arousal, 4);
    }
    expect((batched as TransformersTextModel).batcher.stats.maxBatchSeen).toBe(8);
  });
});

describe('zero-shot sentence-embedding path', () => {
  it('fits on Russell anchors and places unseen emotion words by their meaning', async () => {
    const m = await load('text-embed-fixture');
    const zs = (m as TransformersTextModel).zeroShot;
    expect(zs?.anchors).toHaveLength(RUSSELL_1980_TERMS.length);
    const furious = await m.infer('furious'); // not an anchor
    const wonderful = await m.infer('wonderful');
    const relaxed = await m.infer('I feel calm and relaxed');
    const plain = await m.infer('the weather report for tomorrow');
    expect(furious.arousal).toBeGreaterThan(0.5);
    expect(wonderful.valence).toBeGreaterThan(0.5);
    expect(relaxed.arousal).toBeLessThan(-0.3);
    expect(relaxed.valence).toBeGreaterThan(0.3);
    expect(plain.confidence).toBeLessThan(furious.confidence);
    expect(furious.embedding?.length).toBe(32);
  });
});

describe('text model load errors', () => {
  it('missing tokenizer → AFFECT_ERR_MODEL_MISSING naming the file', async () => {
    const { dir, spec } = copyOf('text-classifier-fixture');
    rmSync(path.join(dir, 'copy', 'tokenizer.json'));
    const err = (await loadTextModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err).toBeInstanceOf(AffectError);
    expect(err.code).toBe('AFFECT_ERR_MODEL_MISSING');
    expect(err.message).toContain(path.join(dir, 'copy', 'tokenizer.json'));
  });

  it('a copy with the right hashes loads from modelsDir', async () => {
    const { dir, spec } = copyOf('text-embed-fixture');
    const m = await load(spec, { modelsDir: dir });
    expect((await m.infer('happy')).valence).toBeGreaterThan(0.3);
  });

  it('wrong output names → AFFECT_ERR_MODEL_SIGNATURE', async () => {
    const { dir, spec } = copyOf('text-embed-fixture', { outputs: [{ name: 'sentence_embedding', type: 'float32', dims: ['batch', 32] }] });
    const err = (await loadTextModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_SIGNATURE');
    expect(err.message).toContain('sentence_embedding');
    expect(err.message).toContain('last_hidden_state');
  });
});
