/**
 * Intra-op threads on real sessions: `auto` opens the small default speech model on one thread and
 * says so in its load line, a set count reaches onnxruntime, and the thread count does not change
 * what the model computes.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { findModelSpec, type ModelSpec } from '../../models/manifest.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { createEngine } from '../../src/engine.js';

const SPEECH_WAV = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');

describe('ONNX intra-op threads on real sessions', () => {
  it('auto opens speech-va on one thread; two threads give the same outputs', async () => {
    const spec = findModelSpec('speech-va') as ModelSpec;
    const one = await OnnxSpeechModel.load(spec, { device: 'cpu' });
    const two = await OnnxSpeechModel.load(spec, { device: 'cpu', intraOpThreads: 2 });
    try {
      expect(one.intraOpThreads).toBe(1);
      expect(two.intraOpThreads).toBe(2);
      // eight different 1 s windows: tones of rising pitch and loudness over a little seeded noise
      let seed = 7;
      const noise = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.02;
      const windows = Array.from({ length: 8 }, (_, w) =>
        Float32Array.from({ length: 16000 }, (_, i) => (0.05 + 0.08 * w) * Math.sin((2 * Math.PI * (150 + 90 * w) * i) / 16000) + noise()),
      );
      const a = await one.runBatch(windows);
      const b = await two.runBatch(windows);
      expect(a).toHaveLength(8);
      for (let i = 0; i < a.length; i++) {
        expect(Math.abs(a[i]!.valence - b[i]!.valence)).toBeLessThan(1e-5);
        expect(Math.abs(a[i]!.arousal - b[i]!.arousal)).toBeLessThan(1e-5);
      }
      // the windows differ, so equal outputs are not a constant model
      expect(new Set(a.map((o) => o.arousal.toFixed(4))).size).toBeGreaterThan(1);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('createEngine refuses a bad intraOpThreads before loading anything, naming it', async () => {
    await expect(createEngine({ device: 'cpu', vad: false, intraOpThreads: -1 })).rejects.toThrow(/^intraOpThreads must be auto or an integer in \[0, 256\]/);
  });

  it('run --threads 2 logs the count on the model line and still analyses the file', () => {
    const r = spawnSync(process.execPath, ['bin/circumplex.mjs', 'run', '--input', SPEECH_WAV, '--device', 'cpu', '--threads', '2', '--json'], {
      cwd: REPO_ROOT,
      timeout: 90_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const err = r.stderr.toString();
    expect(r.status, err).toBe(0);
    expect(err).toMatch(/"msg":"model speech-va runs on cpu, 2 intra-op threads \(set\)"/);
    const frames = r.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string })
      .filter((m) => m.type === 'affect');
    expect(frames.length).toBeGreaterThan(10);
  });
});
