/**
 * The cached mode's own head (models/cached-head.ts, issue 14), end to end on a tiny wav2vec2-shaped
 * model built here: the tolerance bench dumps full-window / cached pooled-state pairs of real audio,
 * training/encoders/calibrate_cached_head.py fits the head on them, and the runtime reads cached
 * windows with it — only at the hop and recomputeFrames it was fitted for, never on a stream's first
 * (exact) window, and a broken or foreign head is an error naming the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { resolveStreamingOptions, StreamingSpeechModel, type StreamingSpeechOptions } from '../../models/streaming-speech.js';
import { parseCachedHead } from '../../models/cached-head.js';
import type { SpeechAffectOutput } from '../../models/ports.js';
import { loadSamples } from '../../bench/lib/common.js';
import { consecutiveWindows, inferInOrder } from '../helpers/stream-windows.js';

const silent = pino({ level: 'silent' });
const PYTHON = process.env['CIRCUMPLEX_PYTHON'] ?? '/usr/bin/python3';
const HOP = 1600; // 100 ms, on the 20 ms frame grid: about 175 windows in the 19 s fixture
let dir = '';
let audio: Float32Array;
let fitted: Record<string, unknown>;

function spawnOk(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}, exit ${String(r.status)}): ${r.stderr || String(r.error)}`);
  return r.stdout;
}

const spec: ModelSpec = { ...(MODEL_SPECS['wav2vec2-msp-dim'] as ModelSpec), id: 'tiny-wav2vec2', inputNormalization: 'none' };
const modelDir = (): string => path.join(dir, 'tiny-wav2vec2');
const fitAudio = (): string => path.join(dir, 'fit.wav');

/** The documented recipe: dump the pairs with the tolerance bench (`spans` span means), fit with calibrate_cached_head. */
function fitHead(modelsDir: string, spans: number, pairs: string): void {
  spawnOk(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'bench', 'encoders-tolerance.ts'),
      ...['--models-dir', modelsDir, '--id', 'tiny-wav2vec2', '--norm', 'none', '--audio', fitAudio(), '--hop', String(HOP)],
      ...['--windows', '0', '--recompute', '0', '--spans', String(spans), '--dump', pairs],
    ],
    'dumping the pooled-state pairs (bench/encoders-tolerance.ts --dump)',
  );
  spawnOk(
    PYTHON,
    ['-m', 'training.encoders.calibrate_cached_head', '--pairs', pairs, '--model', path.join(modelsDir, 'tiny-wav2vec2'), '--epochs', '200', '--block', '10'],
    'fitting the cached head',
  );
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-cached-head-'));
  spawnOk(PYTHON, ['-m', 'training.encoders.export_standins', '--encoders', 'tiny', '--out', dir], 'building the tiny wav2vec2 model');
  audio = await loadSamples();
  // Fit on the fixture's first 12 s; the rest is the held-back audio the tests measure on.
  spawnOk(
    PYTHON,
    [
      '-c',
      `import soundfile as sf; x, r = sf.read(${JSON.stringify(path.join(REPO_ROOT, 'test/fixtures/audio/speech.wav'))}, dtype='float32'); sf.write(${JSON.stringify(fitAudio())}, x[: 12 * r], r, subtype='FLOAT')`,
    ],
    'cutting the fit audio',
  );
  fitHead(dir, 4, path.join(dir, 'pairs.jsonl'));
  fitted = JSON.parse(readFileSync(path.join(modelDir(), 'streaming', 'cached-head.json'), 'utf8')) as Record<string, unknown>;
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function load(streaming: Partial<StreamingSpeechOptions>, modelsDir = dir): Promise<StreamingSpeechModel> {
  return StreamingSpeechModel.load(spec, { modelsDir, device: 'cpu', logger: silent, streaming: { mode: 'cached', hopSamples: HOP, ...streaming } });
}

/** Consecutive windows from sample `from`, one stream. */
const windows = (from: number, count: number, hop = HOP): Float32Array[] => consecutiveWindows(audio, hop, count, from);

async function streamed(sm: StreamingSpeechModel, ws: Float32Array[]): Promise<SpeechAffectOutput[]> {
  const s = sm.forStream('x');
  try {
    return await inferInOrder(s, ws);
  } finally {
    s.close();
  }
}

const KEYS = ['arousal', 'valence', 'dominance'] as const;
function meanAbsDiff(a: readonly SpeechAffectOutput[], b: readonly SpeechAffectOutput[], from = 1): number {
  let sum = 0;
  let n = 0;
  for (let i = from; i < a.length; i++)
    for (const k of KEYS) {
      sum += Math.abs(((a[i] as SpeechAffectOutput)[k] ?? NaN) - ((b[i] as SpeechAffectOutput)[k] ?? NaN));
      n++;
    }
  return sum / n;
}

/** Mean |Δ| from the full window on the audio after the fit's 12 s, with the model's head and with the cached head, and the first window's. */
async function heldBackDeviation(
  modelsDir: string,
  setting: 'auto' | 'on' = 'on',
): Promise<{
  a: SpeechAffectOutput[];
  b: SpeechAffectOutput[];
  dOff: number;
  dOn: number;
  first: number;
  embOff: number;
  embOn: number;
  embFirst: number;
  windows: number;
  used: string | undefined;
}> {
  const from = 12 * 16_000;
  const ws = windows(from, Math.floor((audio.length - from - 16_000) / HOP) + 1);
  const full = await OnnxSpeechModel.load(spec, { modelsDir, device: 'cpu', logger: silent });
  let ref: SpeechAffectOutput[];
  try {
    ref = await inferInOrder(full, ws);
  } finally {
    await full.close();
  }
  const off = await load({ cachedHead: 'off' }, modelsDir);
  const on = await load({ cachedHead: setting }, modelsDir);
  try {
    expect(off.cachedHead).toBeUndefined();
    const a = await streamed(off, ws);
    const b = await streamed(on, ws);
    expect(on.stats.cachedHeadWindows).toBe(ws.length - 1);
    expect(off.stats.cachedHeadWindows).toBe(0);
    const first = Math.max(...KEYS.map((k) => Math.abs((b[0] as SpeechAffectOutput)[k]! - (ref[0] as SpeechAffectOutput)[k]!)));
    /** |x - full| / |full| of the pooled state (the output's embedding), one window. */
    const rel = (x: SpeechAffectOutput, y: SpeechAffectOutput): number => {
      const ex = x.embedding ?? new Float32Array(0);
      const ey = y.embedding ?? new Float32Array(0);
      expect(ex.length).toBe(32);
      let d = 0;
      let n = 0;
      for (let i = 0; i < ex.length; i++) {
        d += ((ex[i] as number) - (ey[i] as number)) ** 2;
        n += (ey[i] as number) ** 2;
      }
      return Math.sqrt(d / n);
    };
    const meanRel = (outs: SpeechAffectOutput[]): number =>
      outs.slice(1).reduce((acc, o, i) => acc + rel(o, ref[i + 1] as SpeechAffectOutput), 0) / (outs.length - 1);
    return {
      a,
      b,
      dOff: meanAbsDiff(ref, a),
      dOn: meanAbsDiff(ref, b),
      first,
      embOff: meanRel(a),
      embOn: meanRel(b),
      embFirst: rel(b[0] as SpeechAffectOutput, ref[0] as SpeechAffectOutput),
      windows: ws.length,
      used: on.cachedHead,
    };
  } finally {
    await off.close();
    await on.close();
  }
}

describe('cached head (the head refitted for the cached pooled states)', () => {
  it('the fit records the hop, recomputeFrames and normalisation it was fitted for, with before/after figures on held-back windows', () => {
    expect(fitted).toMatchObject({
      schema: 'circumplex.cached-head/1',
      hopSamples: HOP,
      recomputeFrames: 0,
      spans: 4,
      inputNormalization: 'none',
      hiddenDim: 32,
      heldBackImproves: true, // this fit helps on its held-back windows (so `auto` uses it below)
    });
    const fig = fitted['figures'] as { fitWindows: number; heldBackWindows: number; fit: Record<string, { meanAbsDiff: number[] }> };
    expect(fig.fitWindows).toBeGreaterThan(50);
    expect(fig.heldBackWindows).toBeGreaterThan(0);
    const sum = (x: number[]): number => x.reduce((a, b) => a + b, 0);
    // On the windows it was fitted on, the fit must have moved the logits towards the full window's.
    expect(sum(fig.fit['cachedHead']?.meanAbsDiff ?? [])).toBeLessThan(sum(fig.fit['modelHead']?.meanAbsDiff ?? []));
  });

  it('a pooled-only head (--spans 0) reads the pooled state alone and also brings the outputs nearer the full window', async () => {
    const other = path.join(dir, 'pooled-only');
    cpSync(modelDir(), path.join(other, 'tiny-wav2vec2'), { recursive: true });
    rmSync(path.join(other, 'tiny-wav2vec2', 'streaming', 'cached-head.json'));
    fitHead(other, 0, path.join(dir, 'pairs0.jsonl'));
    const rec = JSON.parse(readFileSync(path.join(other, 'tiny-wav2vec2', 'streaming', 'cached-head.json'), 'utf8')) as Record<string, unknown>;
    expect(rec['spans']).toBe(0);
    const { dOff, dOn, first } = await heldBackDeviation(other);
    console.log(`pooled-only cached head: mean |d| from the full window ${dOff.toFixed(4)} (model head) -> ${dOn.toFixed(4)} (cached head)`);
    expect(first).toBeLessThan(1e-5);
    expect(dOn).toBeLessThan(dOff);
  }, 120_000);

  it('reads every cached window (not the exact first one) and brings the outputs nearer the full window on audio it was not fitted on', async () => {
    const r = await heldBackDeviation(dir, 'auto'); // auto: fitted for this hop and recomputeFrames, so used
    expect(r.windows).toBeGreaterThan(20);
    expect(r.used).toBe(path.join(modelDir(), 'streaming', 'cached-head.onnx'));
    expect(r.first).toBeLessThan(1e-5); // the first window is the full model exactly, with the model's head
    expect(meanAbsDiff(r.a, r.b)).toBeGreaterThan(1e-4);
    // the head also corrects the pooled state passed on as the embedding (the fusion reads it): nearer the full window's
    console.log(`cached head: pooled state's mean relative error from the full window ${r.embOff.toFixed(4)} -> ${r.embOn.toFixed(4)}`);
    expect(r.embOn).toBeLessThan(r.embOff);
    expect(r.embFirst).toBeLessThan(1e-5); // the first window's pooled state is the full model's, untouched
    console.log(
      `cached head, ${r.windows} held-back windows at hop ${HOP}: mean |d| from the full window ${r.dOff.toFixed(4)} (model head) -> ${r.dOn.toFixed(4)} (cached head)`,
    );
    expect(r.dOn).toBeLessThan(r.dOff);
  });

  it('is skipped at another hop or recomputeFrames under auto, and an error naming the file under on', async () => {
    for (const streaming of [{ hopSamples: 3200 }, { recomputeFrames: 6 }]) {
      const sm = await load(streaming);
      try {
        expect(sm.cachedHead).toBeUndefined();
        await streamed(sm, windows(0, 4, streaming.hopSamples ?? HOP));
        expect(sm.stats.cachedHeadWindows).toBe(0);
      } finally {
        await sm.close();
      }
      const err = await load({ ...streaming, cachedHead: 'on' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AffectError);
      expect((err as AffectError).code).toBe('AFFECT_ERR_CONFIG');
      expect((err as AffectError).message).toMatch(/cached-head\.onnx was fitted for (hop 1600 samples \(this run: 3200\)|recomputeFrames 0 \(this run: 6\))/);
    }
  });

  it('a head that is not the one fitted, fitted on another step graph, a broken record or a missing head under on is an error naming the file, in auto too', async () => {
    const other = path.join(dir, 'other');
    const md = path.join(other, 'tiny-wav2vec2');
    cpSync(modelDir(), md, { recursive: true });
    const rec = path.join(md, 'streaming', 'cached-head.json');
    const failure = async (setting: 'auto' | 'on'): Promise<AffectError> => {
      const e = await load({ cachedHead: setting }, other).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(AffectError);
      return e as AffectError;
    };
    appendFileSync(path.join(md, 'streaming', 'cached-head.onnx'), Buffer.from([0]));
    let e = await failure('auto');
    expect(e.code).toBe('AFFECT_ERR_MODEL_CHECKSUM');
    expect(e.message).toContain(path.join(md, 'streaming', 'cached-head.onnx'));
    // a head auto will not use (fitted for another hop) is skipped before its files are hashed
    const elsewhere = await load({ hopSamples: 3200 }, other);
    expect(elsewhere.cachedHead).toBeUndefined();
    await elsewhere.close();
    cpSync(path.join(modelDir(), 'streaming', 'cached-head.onnx'), path.join(md, 'streaming', 'cached-head.onnx'));
    writeFileSync(rec, JSON.stringify({ ...fitted, hopSamples: 'fast' }));
    e = await failure('auto');
    expect(e.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(e.message).toMatch(/cached-head\.json: hopSamples must be a non-negative integer, got "fast"/);
    writeFileSync(rec, '{ not json');
    expect((await failure('auto')).message).toMatch(/cached-head\.json is not a JSON object/);
    writeFileSync(rec, JSON.stringify({ ...fitted, hiddenDim: 1024 }));
    expect((await failure('auto')).message).toMatch(/hiddenDim 1024, but the model's pooled state is 32 wide/);
    // fitted on another step graph (a re-export, a quantised copy): its states are not the ones the head was fitted on
    writeFileSync(rec, JSON.stringify({ ...fitted, stepSha256: '0'.repeat(64) }));
    e = await failure('auto');
    expect(e.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(e.message).toMatch(/was fitted on the states of a step graph with sha256 0{64}, but .*step\.onnx has [0-9a-f]{64}/);
    // a graph that is not a head (the front end), recorded with its own sha256: the step worker refuses it by name
    const fe = readFileSync(path.join(md, 'streaming', 'frontend.onnx'));
    writeFileSync(path.join(md, 'streaming', 'cached-head.onnx'), fe);
    writeFileSync(rec, JSON.stringify({ ...fitted, sha256: createHash('sha256').update(fe).digest('hex') }));
    e = await failure('auto');
    expect(e.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(e.message).toMatch(
      /cached-head\.onnx has inputs \[signal\] and outputs \[features\]; a cached head with 4 spans takes \[pooled,span_means\] and gives logits/,
    );
    // a head that did not help on the windows held back from its fit: auto leaves it, on uses it
    writeFileSync(path.join(md, 'streaming', 'cached-head.onnx'), readFileSync(path.join(modelDir(), 'streaming', 'cached-head.onnx')));
    writeFileSync(rec, JSON.stringify({ ...fitted, heldBackImproves: false }));
    const notUsed = await load({}, other);
    expect(notUsed.cachedHead).toBeUndefined();
    await notUsed.close();
    const forced = await load({ cachedHead: 'on' }, other);
    expect(forced.cachedHead).toBe(path.join(md, 'streaming', 'cached-head.onnx'));
    await forced.close();
    writeFileSync(rec, JSON.stringify({ ...fitted, heldBackImproves: 'yes' }));
    expect((await failure('auto')).message).toMatch(/heldBackImproves must be true, false or null, got "yes"/);
    rmSync(rec);
    const sm = await load({}, other); // auto without a head: the model's head, silently
    expect(sm.cachedHead).toBeUndefined();
    await sm.close();
    e = await failure('on');
    expect(e.code).toBe('AFFECT_ERR_MODEL_MISSING');
    expect(e.message).toContain(rec);
    expect(e.hint).toMatch(/calibrate_cached_head/);
  });

  it('the fit refuses bad pairs with the file, the line and what to do', () => {
    const fit = (pairs: string): { status: number | null; stderr: string } =>
      spawnSync(PYTHON, ['-m', 'training.encoders.calibrate_cached_head', '--pairs', pairs, '--model', modelDir()], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const missing = fit(path.join(dir, 'nope.jsonl'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--pairs .*nope\.jsonl: not found; write it with bench\/encoders-tolerance\.ts --dump/);
    const lines = readFileSync(path.join(dir, 'pairs.jsonl'), 'utf8').split('\n');
    const headless = path.join(dir, 'headless.jsonl');
    writeFileSync(headless, lines.slice(1).join('\n'));
    expect(fit(headless).stderr).toMatch(/headless\.jsonl:1: no header line before the windows/);
    const bad = path.join(dir, 'bad.jsonl');
    writeFileSync(bad, [lines[0], lines[1], '{"window": 2, "full": {}}'].join('\n'));
    expect(fit(bad).stderr).toMatch(/bad\.jsonl:3: field 'embedding' missing or malformed/);
    const few = path.join(dir, 'few.jsonl');
    writeFileSync(few, lines.slice(0, 20).join('\n'));
    expect(fit(few).stderr).toMatch(/few\.jsonl: 18 windows after the first; fit on at least 50/);
  });

  it('the tolerance bench compares the smoothed trajectories too (--smoothing): no filter gives the per-window figures back; with the cached head the smoothed trajectory is nearer too', () => {
    const bench = (extra: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(REPO_ROOT, 'bench', 'encoders-tolerance.ts'),
          ...['--models-dir', dir, '--id', 'tiny-wav2vec2', '--norm', 'none', '--hop', String(HOP), '--keys', 'arousal,valence'],
          ...['--windows', '60', '--recompute', '0', '--cached-head', 'off,on'],
          ...extra,
        ],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 },
      );
    const r = bench(['--smoothing', 'none,one-euro']);
    expect(r.status, String(r.stderr)).toBe(0);
    type Sm = { filter: string; meanAbsDiff: number; maxAbsDiff: number; perKey: Record<string, { sd: number; meanAbsDiff: number }> };
    const report = JSON.parse(String(r.stdout)) as {
      outputSdPerKey: Record<string, number>;
      rows: Array<{ cachedHead: string; meanAbsDiff: number; maxAbsDiff: number; perKey: Record<string, { meanAbsDiff: number }>; smoothed: Sm[] }>;
    };
    expect(report.rows.map((row) => row.cachedHead)).toEqual(['off', 'fitted']);
    for (const row of report.rows) {
      const [none, euro] = row.smoothed as [Sm, Sm];
      expect([none.filter, euro.filter]).toEqual(['none', 'one-euro']);
      // no filter: the per-window comparison exactly (both keys, so the same pooled mean and max)
      expect(none.meanAbsDiff).toBeCloseTo(row.meanAbsDiff, 3);
      expect(none.maxAbsDiff).toBeCloseTo(row.maxAbsDiff, 3);
      for (const k of ['arousal', 'valence']) {
        expect(none.perKey[k]?.sd).toBeCloseTo(report.outputSdPerKey[k] as number, 3);
        expect(none.perKey[k]?.meanAbsDiff).toBeCloseTo(row.perKey[k]?.meanAbsDiff as number, 3);
        expect(Number.isFinite(euro.perKey[k]?.meanAbsDiff)).toBe(true);
      }
      // the filter changes the trajectories (this random model's outputs barely move, so no claim on their spread)
      expect(euro.meanAbsDiff).not.toBe(none.meanAbsDiff);
    }
    // the head's smoothed trajectory is nearer the full window's as well
    expect((report.rows[1]?.smoothed[1] as Sm).meanAbsDiff).toBeLessThan((report.rows[0]?.smoothed[1] as Sm).meanAbsDiff);
    const bad = bench(['--smoothing', 'median']);
    expect(bad.status).not.toBe(0);
    expect(String(bad.stderr)).toMatch(/filter must be one of ema, one-euro, kalman, kalman-cv, none, got median/);
  }, 120_000);

  it('span means split exactly the frames the pooled state averages: weighted by their frame counts they give it back', async () => {
    const sm = await load({ cachedHead: 'off', returnSpanMeans: 4 });
    try {
      const ws = windows(0, 6);
      const s = sm.forStream('spans');
      for (const [k, w] of ws.entries()) {
        const y = await s.infer(w);
        expect(y.spanMeans?.length).toBe(4 * 32);
        // the window's frames start at a multiple of 320 samples from the stream start, 49 of them (receptive field 400)
        const start = k * HOP;
        const first = Math.ceil(start / 320) * 320;
        const count = [0, 0, 0, 0];
        for (let p = first; p + 400 <= start + 16_000; p += 320) count[Math.min(3, Math.floor((p - start) / 4000))]!++;
        const n = count.reduce((a, b) => a + b, 0);
        let worst = 0;
        for (let d = 0; d < 32; d++) {
          const back = count.reduce((acc, c, q) => acc + c * (y.spanMeans?.[q * 32 + d] as number), 0) / n;
          worst = Math.max(worst, Math.abs(back - (y.embedding?.[d] as number)));
        }
        expect(worst, `window ${k}`).toBeLessThan(1e-5);
      }
      s.close();
    } finally {
      await sm.close();
    }
    await expect(load({ returnSpanMeans: 2 })).rejects.toThrow(/returnSpanMeans 2, but the cached head reads 4 span means/);
  });

  it('bad settings are errors naming the option and its values', () => {
    expect(() => parseCachedHead('maybe')).toThrow(/--speech-cached-head must be one of auto, on, off; got "maybe"/);
    expect(parseCachedHead(' ON ')).toBe('on');
    expect(() => resolveStreamingOptions({ cachedHead: 'x' as never })).toThrow(/cachedHead must be auto, on or off/);
    expect(resolveStreamingOptions({}).cachedHead).toBe('auto');
    expect(() => resolveStreamingOptions({ returnSpanMeans: 65 })).toThrow(/returnSpanMeans must be an integer in \[0, 64\], got 65/);
  });
});
