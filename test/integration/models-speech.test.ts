import { afterEach, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadSpeechModel } from '../../models/registry.js';
import { MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import { FIXTURES_DIR } from '../../models/files.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { GraphBuilder } from '../../models/onnx/builder.js';
import { AffectError } from '../../core/errors.js';
import type { SpeechAffectModel } from '../../models/ports.js';

const silent = pino({ level: 'silent' });
const open: SpeechAffectModel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

async function load(opts: Parameters<typeof loadSpeechModel>[1] = {}, spec: string | ModelSpec = 'speech-fixture') {
  const m = await loadSpeechModel(spec, { device: 'cpu', logger: silent, ...opts });
  open.push(m);
  return m;
}

/** A deterministic 1 s test window: a tone plus seeded noise at `amp`. */
function tone(freqHz: number, amp: number, seed = 1): Float32Array {
  const x = new Float32Array(16000);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    x[i] = amp * Math.sin((2 * Math.PI * freqHz * i) / 16000) + 0.05 * amp * (s / 2147483648 - 0.5);
  }
  return x;
}

function speechSpecIn(dir: string, overrides: Partial<ModelSpec> = {}): ModelSpec {
  const base = MODEL_SPECS['speech-fixture'] as ModelSpec;
  mkdirSync(path.join(dir, 'speech-copy'), { recursive: true });
  return { ...base, id: 'speech-copy', fixture: false, ...overrides };
}

describe('speech model (ONNX fixture in a worker thread)', () => {
  it('runs on cpu and returns bounded valence/arousal/dominance, confidence and embedding', async () => {
    const m = await load();
    expect(m.provider).toBe('cpu');
    expect(m.windowSamples).toBe(16000);
    const out = await m.infer(tone(300, 0.3));
    for (const v of [out.valence, out.arousal, out.dominance ?? Number.NaN]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(Math.abs(v)).toBeLessThanOrEqual(1);
    }
    expect(out.embedding?.length).toBe(32);
    expect(out.confidence).toBeCloseTo(1, 5); // −13 dBFS: clearly voiced
    const quiet = await m.infer(new Float32Array(16000));
    expect(quiet.confidence).toBe(0);
  });

  it('follows the audio: louder and brighter windows raise arousal', async () => {
    const m = await load();
    const soft = await m.infer(tone(200, 0.01));
    const loud = await m.infer(tone(200, 0.5));
    const bright = await m.infer(tone(3000, 0.5));
    expect(loud.arousal).toBeGreaterThan(soft.arousal + 0.3);
    expect(bright.arousal).toBeGreaterThan(loud.arousal);
  });

  it('batched outputs equal unbatched outputs (8 streams at once)', async () => {
    const batched = await load({ maxBatch: 8, maxWaitMs: 50 });
    const single = await load({ maxBatch: 1, maxWaitMs: 0 });
    const windows = Array.from({ length: 8 }, (_, k) => tone(150 + 400 * k, 0.05 + 0.1 * k, k + 1));
    const a = await Promise.all(windows.map((w) => batched.infer(w)));
    const b: Awaited<ReturnType<SpeechAffectModel['infer']>>[] = [];
    for (const w of windows) b.push(await single.infer(w));
    expect((batched as OnnxSpeechModel).batcher.stats.maxBatchSeen).toBe(8);
    expect((single as OnnxSpeechModel).batcher.stats.maxBatchSeen).toBe(1);
    for (let k = 0; k < 8; k++) {
      const x = a[k]!;
      const y = b[k]!;
      expect(x.valence).toBeCloseTo(y.valence, 4);
      expect(x.arousal).toBeCloseTo(y.arousal, 4);
      expect(x.dominance!).toBeCloseTo(y.dominance!, 4);
      for (let i = 0; i < 32; i++) expect(x.embedding![i]!).toBeCloseTo(y.embedding![i]!, 4);
    }
    // and the windows really differ, so the comparison means something
    expect(new Set(a.map((o) => o.arousal.toFixed(3))).size).toBeGreaterThan(4);
  });

  it('pads short and crops long windows to windowSamples; the caller keeps its buffer', async () => {
    const m = await load();
    const w = tone(500, 0.2);
    const long = new Float32Array(20000);
    long.set(w, 4000); // the last 16000 samples are `w`
    const [a, b] = await Promise.all([m.infer(w), m.infer(long)]);
    expect(b.arousal).toBeCloseTo(a.arousal, 4);
    expect(w.length).toBe(16000); // not detached by the transfer to the worker
    const short = await m.infer(w.subarray(0, 8000));
    expect(Number.isFinite(short.arousal)).toBe(true);
    await expect(m.infer(new Float32Array(0))).rejects.toMatchObject({ code: 'AFFECT_ERR_INPUT' });
  });

  it('close() is idempotent and later calls reject', async () => {
    const m = await load();
    await m.close();
    await m.close();
    await expect(m.infer(tone(200, 0.1))).rejects.toMatchObject({ code: 'AFFECT_ERR_INFERENCE' });
  });

  it('auto picks a provider that works here and logs one line naming it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const m = await load({ device: 'auto', logger });
    expect(['cpu', 'cuda', 'webgpu']).toContain(m.provider);
    const line = lines.map((l) => JSON.parse(l) as { msg: string; provider: string }).find((l) => l.msg.startsWith('model speech-fixture runs on'));
    expect(line?.provider).toBe(m.provider);
  });
});

describe('speech models with free window length (the wav2vec2 contract)', () => {
  it('normalises each window (zero mean, unit variance) and batches different lengths as separate sub-batches', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-models-'));
    const spec = speechSpecIn(dir, {
      files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }],
      onnxFile: 'model.onnx',
      inputs: [{ name: 'signal', type: 'float32', dims: ['batch', 'samples'] }],
      outputs: [
        { name: 'hidden_states', type: 'float32', dims: ['batch', 1] },
        { name: 'logits', type: 'float32', dims: ['batch', 3] },
      ],
      windowSamples: null,
      inputNormalization: 'zero-mean-unit-var',
      affect: { output: 'logits', arousal: 0, dominance: 1, valence: 2, range: [0, 1], embedding: 'hidden_states' },
    });
    // logits = [mean(x), mean(x²), mean(x)], hidden_states = [len-independent mean(x)]
    const g = new GraphBuilder('free_len');
    const x = g.input('signal', ['batch', 'samples']);
    const mean = g.op('ReduceMean', [x], { axes: [1], keepdims: 1 });
    const sq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [1], keepdims: 1 });
    g.output('logits', g.op('Concat', [mean, sq, mean], { axis: 1 }), ['batch', 3]);
    g.output('hidden_states', mean, ['batch', 1]);
    writeFileSync(path.join(dir, 'speech-copy', 'model.onnx'), g.encode());
    const m = await load({ modelsDir: dir, maxBatch: 4, maxWaitMs: 50 }, spec);
    expect(m.windowSamples).toBeNull();
    const a = tone(200, 0.3)
      .subarray(0, 8000)
      .map((v) => v + 0.5); // DC offset the normalisation removes
    const b = tone(300, 0.1)
      .subarray(0, 12000)
      .map((v) => v - 0.2);
    const [ra, rb] = await Promise.all([m.infer(a), m.infer(b)]);
    for (const r of [ra, rb]) {
      expect(r.arousal).toBeCloseTo(-1, 3); // mean 0 → range [0,1] maps 0 to -1
      expect(r.dominance!).toBeCloseTo(1, 3); // unit variance → mean(x²) = 1 → +1
    }
    expect((m as OnnxSpeechModel).batcher.stats.maxBatchSeen).toBe(2);
  });
});

describe('speech model load errors', () => {
  it('missing file → AFFECT_ERR_MODEL_MISSING naming the path and the pull command', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-models-'));
    const spec = speechSpecIn(dir);
    const err = await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_MODEL_MISSING');
    expect((err as AffectError).message).toContain(path.join(dir, 'speech-copy', 'speech-fixture.onnx'));
    expect((err as AffectError).hint).toMatch(/export it|models pull/);
  });

  it('missing fixture → hint says npm run models:fixtures', async () => {
    const spec: ModelSpec = {
      ...(MODEL_SPECS['speech-fixture'] as ModelSpec),
      files: [{ path: 'nope.onnx', url: null, sha256: null, sizeBytes: null }],
      onnxFile: 'nope.onnx',
    };
    const err = (await loadSpeechModel(spec, { device: 'cpu', logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_MISSING');
    expect(err.message).toContain(path.join(FIXTURES_DIR, 'nope.onnx'));
    expect(err.hint).toContain('npm run models:fixtures');
  });

  it('bad checksum → AFFECT_ERR_MODEL_CHECKSUM naming the file and both hashes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-models-'));
    const spec = speechSpecIn(dir, {
      files: [{ path: 'speech-fixture.onnx', url: 'http://127.0.0.1:9/x.onnx', sha256: 'a'.repeat(64), sizeBytes: null }],
    });
    copyFileSync(path.join(FIXTURES_DIR, 'speech-fixture.onnx'), path.join(dir, 'speech-copy', 'speech-fixture.onnx'));
    const err = (await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_CHECKSUM');
    expect(err.message).toContain(path.join(dir, 'speech-copy', 'speech-fixture.onnx'));
    expect(err.message).toContain('a'.repeat(64));
    expect(err.hint).toContain('circumplex models pull speech-copy');
  });

  it('wrong input names → AFFECT_ERR_MODEL_SIGNATURE listing expected vs found', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-models-'));
    const spec = speechSpecIn(dir, {
      files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }],
      onnxFile: 'model.onnx',
    });
    const g = new GraphBuilder('wrong');
    const x = g.input('input_values', ['batch', 16000]);
    g.output('va', g.op('ReduceMean', [x], { axes: [1], keepdims: 1 }), ['batch', 1]);
    writeFileSync(path.join(dir, 'speech-copy', 'model.onnx'), g.encode());
    const err = (await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_SIGNATURE');
    expect(err.message).toContain('input_values');
    expect(err.message).toMatch(/expects inputs \[audio\] and outputs \[va, embedding\]/);
    expect(err.message).toContain(path.join(dir, 'speech-copy', 'model.onnx'));
  });

  it('a file that is not ONNX → AFFECT_ERR_MODEL_LOAD naming it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-models-'));
    const spec = speechSpecIn(dir, { files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }], onnxFile: 'model.onnx' });
    writeFileSync(path.join(dir, 'speech-copy', 'model.onnx'), 'this is not a model');
    const err = (await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(err.message).toContain(path.join(dir, 'speech-copy', 'model.onnx'));
  });

  it('an explicit device that is unavailable is an error, not a silent fallback', async () => {
    const { cudaProviderInstalled } = await import('../../models/device.js');
    if (cudaProviderInstalled()) return; // a CUDA build: covered by the gpu suite
    const err = (await loadSpeechModel('speech-fixture', { device: 'cuda', logger: silent }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_DEVICE_UNAVAILABLE');
    expect(err.hint).toContain('--onnxruntime-node-install=cuda12');
  });

  it('unknown ids and wrong roles are config errors listing the choices', async () => {
    await expect(loadSpeechModel('nope', { logger: silent })).rejects.toMatchObject({
      code: 'AFFECT_ERR_CONFIG',
      message: expect.stringContaining('speech-fixture'),
    });
  });
});
