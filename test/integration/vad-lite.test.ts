/**
 * The distilled voice detector (models/vad-lite/vad-lite.onnx, training/vad/distill_lite.py; not the
 * default, `--vad lite`): it loads as `SileroVad.load({ graph: 'lite' })` (Silero's sequence
 * interface, its own checksum), finds espeak-ng speech between silences where Silero does, and stays
 * off on hold music, a tone, line noise and near-silence; the CLI's `--vad lite` runs it end to end.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { REPO_ROOT } from '../../core/config.js';
import { SileroVad, VAD_LITE_SHA256 } from '../../models/silero-vad.js';
import { serverMessages } from '../helpers/json-lines.js';
import type { FrameSegment } from '../../streams/vad.js';
import { concat, holdMusic, lineNoise, silence, speak, writeWav } from '../helpers/vad-audio.js';
import { labelFrames } from '../helpers/vad-labels.js';

const logger = pino({ level: 'silent' });
const LITE = join(REPO_ROOT, 'models', 'vad-lite', 'vad-lite.onnx');
/** sha256 of the committed file (models/vad-lite/MODEL_CARD.md). */
const LITE_SHA256 = '73d34cea5820d7acdc1b509170af4450c6ee46a43ebf19e4ef6f1687d9d02ccc';
const F = 512;

async function probs(vad: SileroVad, x: Float32Array): Promise<Float32Array> {
  const s = vad.stream();
  try {
    return Float32Array.from(await s.probabilities(x.subarray(0, Math.floor(x.length / F) * F)));
  } finally {
    s.close?.();
  }
}

const segments = (p: Float32Array): FrameSegment[] => labelFrames(p, F).segs;

const tone = (seconds: number): Float32Array => Float32Array.from({ length: seconds * 16000 }, (_, i) => 0.25 * Math.sin((2 * Math.PI * 1000 * i) / 16000));

describe('vad-lite (distilled from Silero)', () => {
  let vad: SileroVad;
  let silero: SileroVad;
  beforeAll(async () => {
    vad = await SileroVad.load({ logger, graph: 'lite', maxQueuedFrames: 1 << 20 });
    silero = await SileroVad.load({ logger, maxQueuedFrames: 1 << 20 });
    return async () => {
      await vad.close();
      await silero.close();
    };
  });

  it('is the committed file, and the checksum the detector checks is the card’s', () => {
    expect(createHash('sha256').update(readFileSync(LITE)).digest('hex')).toBe(LITE_SHA256);
    expect(VAD_LITE_SHA256).toBe(LITE_SHA256);
  });

  it('takes 512-sample frames only', async () => {
    await expect(SileroVad.load({ logger, graph: 'lite', frameSamples: 1024 })).rejects.toThrow(/lite graph takes 512-sample frames only, got 1024/);
  });

  it('finds espeak-ng speech between silences: one segment per utterance, boundaries within 200 ms of Silero’s', async () => {
    const a = speak('I would like to speak to a manager about my bill, please.');
    const b = speak('Could you tell me when the next train to the airport leaves?', 'en+f2');
    const { samples } = concat([silence(1.5, 3), a, silence(2, 4), b, silence(1.5, 5)]);
    const got = segments(await probs(vad, samples));
    const want = segments(await probs(silero, samples));
    expect(want).toHaveLength(2);
    expect(got).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      expect(Math.abs(got[i]![0] - want[i]![0]) * 32, `segment ${i} start`).toBeLessThanOrEqual(200);
      expect(Math.abs(got[i]![1] - want[i]![1]) * 32, `segment ${i} end`).toBeLessThanOrEqual(200);
    }
  });

  it.each([
    ['hold music', () => holdMusic(30)],
    ['a 1 kHz tone', () => tone(10)],
    ['line noise', () => lineNoise(20)],
    ['near-silence', () => silence(10, 9)],
  ])('stays off on %s (p < 0.5 on every frame, no segment)', async (_name, make) => {
    const p = await probs(vad, make());
    expect(Math.max(...p)).toBeLessThan(0.5);
    expect(segments(p)).toHaveLength(0);
  });

  it('`run --vad lite` end to end: the log names vad-lite, frames carry voiced, silence holds, both utterances end in a turn', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vad-lite-cli-'));
    try {
      const a = speak('I would like to speak to a manager about my bill, please.');
      const b = speak('Could you tell me when the next train to the airport leaves?', 'en+f2');
      const { samples, spans } = concat([silence(1.5, 3), a, silence(2.5, 4), b, silence(1.5, 5)]);
      const wav = join(dir, 'two.wav');
      writeWav(wav, [samples]);
      const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'info' };
      delete env.CIRCUMPLEX_VOSK_MODEL;
      const r = spawnSync(process.execPath, ['bin/circumplex.mjs', 'run', '--input', wav, '--json', '--vad', 'lite'], {
        env,
        timeout: 90_000,
        maxBuffer: 1 << 26,
      });
      const stderr = r.stderr.toString();
      expect(r.status, stderr).toBe(0);
      expect(stderr).toMatch(/voice activity detector vad-lite \(lite graph\)/);
      const msgs = serverMessages(r.stdout);
      const frames = msgs.filter((m) => m.type === 'affect');
      const turns = msgs.filter((m) => m.type === 'turn');
      expect(frames.length).toBeGreaterThan(20);
      // Inside each utterance some window is voiced; in the leading silence none is.
      const speechSpans = [spans[1]!, spans[3]!]; // audio ms
      for (const [t0, t1] of speechSpans)
        expect(frames.some((f) => f.type === 'affect' && f.tMs > t0 + 500 && f.tMs <= t1 && (f.voiced ?? 0) > 0.5)).toBe(true);
      expect(frames.filter((f) => f.type === 'affect' && f.tMs <= 1000).every((f) => f.type === 'affect' && f.voiced === 0)).toBe(true);
      expect(turns).toHaveLength(2);
      turns.forEach((t, i) => {
        if (t.type !== 'turn') return;
        // The end-pointing bound: ±200 ms of the known speech.
        expect(Math.abs(t.startMs - speechSpans[i]![0])).toBeLessThan(200);
        expect(Math.abs(t.endMs - speechSpans[i]![1])).toBeLessThan(200);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
