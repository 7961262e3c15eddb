/**
 * Calibration of the speech fixture's read-out on speech the test makes itself (espeak-ng + sox),
 * with sentences that are not in the shipped demo WAV: general acoustic behaviour, not one file.
 *
 * - quiet (−a 40), slow (110 wpm), low-pitched delivery must sit in negative arousal;
 * - loud (−a 190), fast (220 wpm), high-pitched delivery must be clearly more aroused (> 0.3 apart)
 *   and positive;
 * - the same text at espeak-ng's defaults (ordinary level and rate) lies between the two;
 * - loudness alone (same sentence, rate and pitch; only −a) and rate alone (same level) each raise
 *   arousal.
 *
 * Means are over every 1 s window (250 ms hop, as the pipeline slides) that holds voice
 * (confidence > 0), so pauses at the ends do not count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadSpeechModel } from '../../models/registry.js';
import type { SpeechAffectModel } from '../../models/ports.js';

const QUIET_TEXT = 'The library closes at nine tonight, so please return your books before then.';
const LOUD_TEXT = 'Quick, grab the ball, we scored a goal, this is unbelievable, go go go!';
const PLAIN_TEXT = 'My brother drove to the market on Tuesday and bought some bread and apples.';

const WINDOW = 16_000;
const HOP = 4_000;

let dir = '';
let model: SpeechAffectModel;

/** espeak-ng with the given flags → 16 kHz mono s16le samples in [-1, 1). */
function synth(name: string, text: string, flags: readonly string[]): Float32Array {
  const wav = path.join(dir, `${name}.wav`);
  const raw = path.join(dir, `${name}.raw`);
  execFileSync('espeak-ng', [...flags, '-w', wav, text]);
  // -G guards against clipping in the resampler at high espeak amplitudes
  execFileSync('sox', ['-R', '-q', '-G', wav, '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', raw]);
  const buf = readFileSync(raw);
  const out = new Float32Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(2 * i) / 32768;
  return out;
}

interface Summary {
  readonly arousal: number;
  readonly valence: number;
  readonly windows: number;
}

/** Mean arousal/valence over the voiced 1 s windows of `samples`. */
async function meanAffect(samples: Float32Array): Promise<Summary> {
  const jobs = [];
  for (let end = WINDOW; end <= samples.length; end += HOP) jobs.push(model.infer(samples.slice(end - WINDOW, end)));
  const outs = (await Promise.all(jobs)).filter((o) => o.confidence > 0);
  const mean = (f: (o: (typeof outs)[number]) => number): number => outs.reduce((s, o) => s + f(o), 0) / outs.length;
  return { arousal: mean((o) => o.arousal), valence: mean((o) => o.valence), windows: outs.length };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cx-calib-'));
  model = await loadSpeechModel('speech-fixture', { device: 'cpu', logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await model?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('speech fixture calibration (espeak-ng speech made here)', () => {
  for (const voice of ['en-us', 'en+f3']) {
    it(`${voice}: quiet/slow/low speech is low-arousal, loud/fast/high speech clearly higher, ordinary speech between`, async () => {
      const quiet = await meanAffect(synth(`quiet-${voice}`, QUIET_TEXT, ['-v', voice, '-a', '40', '-s', '110', '-p', '25']));
      const loud = await meanAffect(synth(`loud-${voice}`, LOUD_TEXT, ['-v', voice, '-a', '190', '-s', '220', '-p', '80']));
      const plain = await meanAffect(synth(`plain-${voice}`, PLAIN_TEXT, ['-v', voice]));
      for (const s of [quiet, loud, plain]) {
        expect(s.windows).toBeGreaterThanOrEqual(3);
        expect(Number.isFinite(s.arousal) && Number.isFinite(s.valence)).toBe(true);
      }
      expect(quiet.arousal).toBeLessThan(0);
      expect(loud.arousal).toBeGreaterThan(0);
      expect(loud.arousal - quiet.arousal).toBeGreaterThan(0.3);
      expect(plain.arousal).toBeGreaterThan(quiet.arousal);
      expect(plain.arousal).toBeLessThan(loud.arousal);
      // acoustic valence is weak by design: no delivery here should look strongly (un)pleasant
      for (const s of [quiet, loud, plain]) expect(Math.abs(s.valence)).toBeLessThan(0.5);
    });
  }

  it('loudness alone raises arousal (same sentence, rate and pitch)', async () => {
    const soft = await meanAffect(synth('level-30', PLAIN_TEXT, ['-v', 'en-us', '-a', '30']));
    const mid = await meanAffect(synth('level-100', PLAIN_TEXT, ['-v', 'en-us', '-a', '100']));
    const hard = await meanAffect(synth('level-190', PLAIN_TEXT, ['-v', 'en-us', '-a', '190']));
    expect(mid.arousal).toBeGreaterThan(soft.arousal + 0.2);
    expect(hard.arousal).toBeGreaterThan(mid.arousal + 0.1);
  });

  it('speaking rate alone raises arousal (same sentence, level and pitch)', async () => {
    const slow = await meanAffect(synth('rate-110', QUIET_TEXT, ['-v', 'en-us', '-s', '110']));
    const fast = await meanAffect(synth('rate-230', QUIET_TEXT, ['-v', 'en-us', '-s', '230']));
    expect(fast.arousal).toBeGreaterThan(slow.arousal + 0.2);
  });
});
