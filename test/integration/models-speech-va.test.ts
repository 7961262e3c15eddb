/**
 * speech-va, the trained default speech model (issue 11):
 * - fidelity: a quick variant trained here by the real recipe (training/speech, /usr/bin/python3)
 *   without the first two speakers of each corpus, exported to a temp dir, loaded through the real
 *   OnnxSpeechModel and scored on those unseen speakers' clips (per clip = mean of voiced 1 s windows
 *   at 250 ms hop). The floors sit a little below what the recipe measures speaker-independently;
 *   the old speech-fixture scores far below them (see training/speech/README.md).
 * - the shipped model: signature, sha256 vs manifest and model-card.json, robustness to gain,
 *   8 kHz band-limiting and additive noise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { REPO_ROOT } from '../../core/config.js';
import { resample } from '../../streams/audio.js';
import { gaussianFrom, seededRandom } from '../../core/seeded-random.js';
import { MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import { modelRoot, sha256File } from '../../models/files.js';
import { readModelCard } from '../../models/model-card.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { allClips, arousalAuc, ccc, decodeClip, holdoutSpeakers, predictClip, speechDataRoot, type LabelledClip } from '../helpers/speech-corpus.js';

const exec = promisify(execFile);
const silent = pino({ level: 'silent' });
const SHIPPED = MODEL_SPECS['speech-va'] as ModelSpec;

/**
 * Floors for the quick variant on the 4 unseen speakers (emodb 03, 08; ravdess 01, 02; 227 clips). Measured
 * 2026-12-04: arousal CCC 0.774, valence CCC 0.367, arousal AUC 0.943; the recipe's full LOSO figures are
 * 0.79 / 0.47 / 0.98 (EmoDB) and 0.68 / 0.34 / 0.91 (RAVDESS). The old speech-fixture scores 0.07 / -0.04 / 0.56
 * on the same clips (one-off run, training/speech/README.md).
 */
const FIDELITY_FLOORS = { arousalCcc: 0.7, valenceCcc: 0.3, arousalAuc: 0.9 };

describe('speech-va fidelity: quick recipe trained without two speakers per corpus, scored on them', () => {
  let dir: string;
  let model: OnnxSpeechModel;
  let held: LabelledClip[];
  let heldSpeakers: string[];

  beforeAll(async () => {
    const clips = allClips(speechDataRoot());
    heldSpeakers = holdoutSpeakers(clips, 2);
    held = clips.filter((c) => heldSpeakers.includes(c.speaker));
    dir = mkdtempSync(path.join(os.tmpdir(), 'speech-va-quick-'));
    await exec('/usr/bin/python3', ['-m', 'training.speech.train', '--quick', '--holdout', '2', '--out', path.join(dir, 'speech-va')], {
      cwd: REPO_ROOT,
      maxBuffer: 16 << 20,
      timeout: 540_000,
    });
    const onnx = path.join(dir, 'speech-va', 'model.onnx');
    const spec: ModelSpec = {
      ...SHIPPED,
      fixture: false,
      bundled: false,
      files: [{ path: 'model.onnx', url: null, sha256: await sha256File(onnx), sizeBytes: null }],
    };
    model = await OnnxSpeechModel.load(spec, { device: 'cpu', logger: silent, modelsDir: dir });
  }, 600_000);

  afterAll(async () => {
    await model?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the recipe left exactly the test speakers out', () => {
    const run = JSON.parse(readFileSync(path.join(dir, 'speech-va', 'training-run.json'), 'utf8')) as { heldOutSpeakers: string[]; quick: boolean };
    expect(run.quick).toBe(true);
    expect([...run.heldOutSpeakers].sort()).toEqual([...heldSpeakers].sort());
    expect(heldSpeakers).toHaveLength(4);
  });

  it('clears the arousal/valence CCC and arousal AUC floors on speakers it never saw', async () => {
    const preds = [];
    for (const c of held) preds.push(await predictClip(model, await decodeClip(c.file)));
    const ta = held.map((c) => c.arousal);
    const tv = held.map((c) => c.valence);
    const pa = preds.map((p) => p.arousal);
    const pv = preds.map((p) => p.valence);
    const got = { arousalCcc: ccc(ta, pa), valenceCcc: ccc(tv, pv), arousalAuc: arousalAuc(held, pa), clips: held.length };
    console.log(`speech-va quick, unseen ${heldSpeakers.join(' ')}: ${JSON.stringify(got)}`);
    expect(got.arousalCcc).toBeGreaterThan(FIDELITY_FLOORS.arousalCcc);
    expect(got.valenceCcc).toBeGreaterThan(FIDELITY_FLOORS.valenceCcc);
    expect(got.arousalAuc).toBeGreaterThan(FIDELITY_FLOORS.arousalAuc);
    // sigma is reported and finite on every clip
    for (const p of preds) expect(p.sigmaArousal).toBeGreaterThan(0);
  });
});

describe('speech-va shipped model: files, signature, card', () => {
  it('the bundled file matches the manifest and model-card.json (sha256, size) and loads with the manifest signature', async () => {
    const dir = modelRoot(SHIPPED);
    expect(SHIPPED.bundled).toBe(true);
    const card = readModelCard(dir);
    expect(card?.id).toBe('speech-va');
    expect(card?.role).toBe('speech');
    expect(card?.license).toBe(SHIPPED.license);
    for (const f of SHIPPED.files) {
      const p = path.join(dir, f.path);
      const sha = await sha256File(p);
      expect(sha, f.path).toBe(f.sha256);
      expect(readFileSync(p).length, f.path).toBe(f.sizeBytes);
      const inCard = card?.files.find((c) => c.path === f.path);
      expect(inCard?.sha256, `model-card.json ${f.path}`).toBe(sha);
      expect(inCard?.sizeBytes).toBe(f.sizeBytes);
    }
    const m = await OnnxSpeechModel.load(SHIPPED, { device: 'cpu', logger: silent }); // asserts the input/output names
    try {
      const t = Float32Array.from({ length: 16000 }, (_, i) => 0.2 * Math.sin((2 * Math.PI * 150 * i) / 16000) * (1 + Math.sin((2 * Math.PI * 4 * i) / 16000)));
      const out = await m.infer(t);
      expect(Math.abs(out.valence)).toBeLessThanOrEqual(1);
      expect(Math.abs(out.arousal)).toBeLessThanOrEqual(1);
      expect(out.sigma?.valence).toBeGreaterThan(0);
      expect(out.voiced).toBeGreaterThan(0.5);
      const embDims = SHIPPED.outputs.find((o) => o.name === 'embedding')?.dims[1];
      expect(out.embedding?.length).toBe(embDims);
      const quiet = await m.infer(new Float32Array(16000));
      expect(quiet.voiced).toBe(0);
      expect(quiet.confidence).toBe(0); // digital silence: no voiced frame, no confidence
      const shorter = await m.infer(t.subarray(0, 8000)); // padded to the 1 s window, still finite
      expect(Number.isFinite(shorter.arousal)).toBe(true);
    } finally {
      await m.close();
    }
  });
});

/** Mean square over the 10 ms frames within 40 dB of the loudest (as training/speech/train.py active_power). */
function activePower(x: Float32Array): number {
  const n = Math.floor(x.length / 160);
  const fp: number[] = [];
  for (let f = 0; f < n; f++) {
    let s = 0;
    for (let i = f * 160; i < (f + 1) * 160; i++) s += (x[i] as number) ** 2;
    fp.push(s / 160);
  }
  const max = Math.max(...fp);
  const act = fp.filter((p) => p > max * 1e-4);
  return act.reduce((a, b) => a + b, 0) / Math.max(1, act.length) + 1e-12;
}

/** The perturbations of the robustness test (stated here, measured in the recipe's card too). */
const NOISE_SNR_DB = 20;
const PERTURB: Record<string, (x: Float32Array) => Float32Array> = {
  'gain -20 dB': (x) => x.map((s) => s * 0.1),
  'gain +6 dB': (x) => x.map((s) => Math.max(-1, Math.min(1, s * 10 ** (6 / 20)))),
  '8 kHz band-limit': (x) => resample(resample(x, 16000, 8000), 8000, 16000).subarray(0, x.length),
  [`white noise at ${NOISE_SNR_DB} dB SNR`]: (x) => {
    const rnd = seededRandom(7);
    const amp = Math.sqrt(activePower(x) / 10 ** (NOISE_SNR_DB / 10));
    return x.map((s) => {
      return s + amp * gaussianFrom(rnd);
    });
  },
};
/**
 * Largest allowed change of a clip's prediction (mean over clips and dimensions' worse, worst clip) under each
 * perturbation, and CCC floors. Measured (2026-12-04): gain -20 dB 0.018 / 0.21, +6 dB 0.016 / 0.16,
 * band-limit 0.062 / 0.18, white noise 20 dB 0.115 / 0.44; CCC arousal >= 0.76, valence >= 0.61 under all four.
 * The subset's speakers are in the shipped model's training data (every speaker is), so these CCCs are
 * not generalisation figures: the held-out robustness figures are in models/speech-va/MODEL_CARD.md.
 */
const ROBUST: Record<string, { meanChange: number; maxChange: number }> = {
  'gain -20 dB': { meanChange: 0.05, maxChange: 0.35 },
  'gain +6 dB': { meanChange: 0.05, maxChange: 0.35 },
  '8 kHz band-limit': { meanChange: 0.1, maxChange: 0.3 },
  [`white noise at ${NOISE_SNR_DB} dB SNR`]: { meanChange: 0.18, maxChange: 0.6 },
};
const ROBUST_CCC = { arousal: 0.7, valence: 0.5 };

describe('speech-va shipped model: robustness to level, telephone band and noise', () => {
  let model: OnnxSpeechModel;
  let subset: LabelledClip[];
  let audio: Float32Array[];
  beforeAll(async () => {
    const clips = allClips(speechDataRoot());
    // 72 clips: every 17th EmoDB clip and every 25th RAVDESS clip (all emotions, many speakers)
    subset = [
      ...clips.filter((c) => c.corpus === 'emodb').filter((_, i) => i % 17 === 0),
      ...clips.filter((c) => c.corpus === 'ravdess').filter((_, i) => i % 25 === 0),
    ];
    audio = await Promise.all(subset.map((c) => decodeClip(c.file)));
    model = await OnnxSpeechModel.load(SHIPPED, { device: 'cpu', logger: silent });
  }, 120_000);
  afterAll(async () => {
    await model?.close();
  });

  it('gain -20/+6 dB, 8 kHz band-limiting and noise move per-clip predictions less than the stated bounds and keep CCC above floors', async () => {
    const predict = async (xs: Float32Array[]) => {
      const out = [];
      for (const x of xs) out.push(await predictClip(model, x));
      return out;
    };
    const clean = await predict(audio);
    const ta = subset.map((c) => c.arousal);
    const tv = subset.map((c) => c.valence);
    const report: Record<string, unknown> = {
      clean: {
        arousalCcc: ccc(
          ta,
          clean.map((p) => p.arousal),
        ),
        valenceCcc: ccc(
          tv,
          clean.map((p) => p.valence),
        ),
      },
    };
    for (const [name, f] of Object.entries(PERTURB)) {
      const got = await predict(audio.map(f));
      const dv = got.map((p, i) => Math.abs(p.valence - (clean[i] as (typeof clean)[number]).valence));
      const da = got.map((p, i) => Math.abs(p.arousal - (clean[i] as (typeof clean)[number]).arousal));
      const r = {
        meanChange: Math.max(dv.reduce((a, b) => a + b, 0) / dv.length, da.reduce((a, b) => a + b, 0) / da.length),
        maxChange: Math.max(...dv, ...da),
        arousalCcc: ccc(
          ta,
          got.map((p) => p.arousal),
        ),
        valenceCcc: ccc(
          tv,
          got.map((p) => p.valence),
        ),
      };
      report[name] = r;
      const bound = ROBUST[name];
      expect(bound, name).toBeDefined();
      expect(r.meanChange, name).toBeLessThan(bound?.meanChange ?? 0);
      expect(r.maxChange, name).toBeLessThan(bound?.maxChange ?? 0);
      expect(r.arousalCcc, name).toBeGreaterThan(ROBUST_CCC.arousal);
      expect(r.valenceCcc, name).toBeGreaterThan(ROBUST_CCC.valence);
    }
    console.log(`speech-va robustness on ${subset.length} clips: ${JSON.stringify(report)}`);
  });
});
