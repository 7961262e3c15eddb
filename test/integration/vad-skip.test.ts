/**
 * Voice activity pays for itself (vad.skipSpeechModel, default on): with the real Silero VAD and the
 * default speech model on call-like audio (espeak-ng speech, silences, hold music), windows below
 * minVoicedFraction are not run through the speech model and fusion — and the trajectory subscribers
 * get is the same as when they are (the smoother holds those frames either way): same times, valence,
 * arousal, confidence, velocity, voiced and label on every frame. The held frames then carry no speech
 * part (no model ran on them); the speech model ran only on the other windows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { pino } from 'pino';
import { createEngine, type Engine } from '../../src/engine.js';
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import { FlowControl } from '../../streams/flow.js';
import type { AffectPoint, PipelineEvent } from '../../core/types.js';
import { concat, holdMusic, lineNoise, silence, speak, writeWav } from '../helpers/vad-audio.js';

const logger = pino({ level: 'silent' });
let dir: string;
let skipping: Engine;
let running: Engine;
let file: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'circumplex-vad-skip-'));
  skipping = await createEngine({ device: 'cpu', logger });
  running = await createEngine({ device: 'cpu', logger, vadOptions: { skipSpeechModel: false } });
  const a = speak('I called three times and nobody answered my question.');
  const b = speak('Thank you, that is much better now.');
  file = join(dir, 'call.wav');
  writeWav(file, [concat([silence(1.5, 3), a, lineNoise(2, 4), b, silence(1.5, 5), holdMusic(3)]).samples]);
});
afterAll(async () => {
  await skipping?.close();
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The file through an engine (offline, lossless) and how many windows its speech model ran. */
async function run(e: Engine): Promise<{ points: AffectPoint[]; modelWindows: number }> {
  const speech = e.speech;
  if (!(speech instanceof OnnxSpeechModel)) throw new Error('expected the default ONNX speech model');
  const before = speech.batcher.stats.batchedItems;
  const flow = new FlowControl();
  const ev: PipelineEvent[] = await lastValueFrom(
    wavFileSource(file, { streamId: 'call', flow }).pipe(e.pipeline('call', { whenBusy: 'queue', flow }), toArray()),
  );
  return { points: ev.flatMap((x) => (x.kind === 'affect' ? [x.point] : [])), modelWindows: speech.batcher.stats.batchedItems - before };
}

describe('voice activity skips the speech model on unvoiced windows', () => {
  it('same trajectory as running the model on every window, with the model run on the voiced windows only', async () => {
    const skip = await run(skipping);
    const all = await run(running);
    expect(skip.points.length).toBeGreaterThan(40);
    expect(skip.points.length).toBe(all.points.length);
    const held = skip.points.filter((p) => (p.voiced ?? 0) < 0.2);
    const voiced = skip.points.filter((p) => (p.voiced ?? 0) >= 0.2);
    // Call-like audio: a good share of windows are silence, noise or music.
    expect(held.length).toBeGreaterThan(skip.points.length / 3);
    expect(voiced.length).toBeGreaterThan(5);
    expect(all.modelWindows).toBe(all.points.length);
    expect(skip.modelWindows).toBe(voiced.length);
    skip.points.forEach((p, i) => {
      const q = all.points[i]!;
      const at = `frame ${i} (${p.tMs} ms)`;
      expect(p.tMs, at).toBe(q.tMs);
      expect(p.voiced, at).toBe(q.voiced);
      expect(p.valence, at).toBe(q.valence);
      expect(p.arousal, at).toBe(q.arousal);
      expect(p.confidence, at).toBe(q.confidence);
      expect(p.velocity, at).toEqual(q.velocity);
      expect(p.label, at).toBe(q.label);
      expect(p.droppedWindows, at).toBe(0);
      if ((p.voiced ?? 0) < 0.2) {
        // Held: no model ran, so no speech part; with the model on every window it carried its unused estimate.
        expect(p.speech, at).toBeUndefined();
        expect(p.modalities, at).toEqual([]);
        expect(q.speech, at).toBeDefined();
      } else {
        expect(p.speech, at).toEqual(q.speech);
        expect(p.modalities, at).toEqual(['speech']);
      }
    });
    // The point did move during speech and held (confidence decaying) in the silences after it.
    expect(voiced.some((p) => p.valence !== 0 || p.arousal !== 0)).toBe(true);
    const last = skip.points.at(-1)!;
    expect(last.voiced).toBeLessThan(0.2);
    expect(last.confidence).toBeLessThan(Math.max(...voiced.map((p) => p.confidence)));
  });

  it('vad.skipSpeechModel must be a boolean', async () => {
    await expect(createEngine({ device: 'cpu', logger, vadOptions: { skipSpeechModel: 'no' as never } })).rejects.toThrow(
      /skipSpeechModel must be true or false/,
    );
  });
});
