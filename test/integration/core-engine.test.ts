/**
 * The engine as `serve` uses it: models loaded once, one pipeline per stream, streams running at
 * the same time on the shared (cross-stream batched) ONNX speech model, idempotent close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { createEngine, type Engine } from '../../src/engine.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import { FlowControl } from '../../streams/flow.js';
import type { AffectPoint, PipelineEvent } from '../../core/types.js';

const SPEECH = 'test/fixtures/audio/speech.wav';
let engine: Engine;
beforeAll(async () => {
  engine = await createEngine({ device: 'cpu', logger: (await import('pino')).pino({ level: 'silent' }) });
});
afterAll(async () => {
  await engine.close();
});

const points = (events: PipelineEvent[]): AffectPoint[] => events.flatMap((e) => (e.kind === 'affect' ? [e.point] : []));
const offline = (streamId: string) => {
  const flow = new FlowControl();
  return lastValueFrom(wavFileSource(SPEECH, { streamId, flow }).pipe(engine.pipeline(streamId, { whenBusy: 'queue', flow }), toArray()));
};

describe('createEngine', () => {
  it('loads the default speech model (speech-va) once and reports its provider', () => {
    expect(engine.speech.id).toBe('speech-va');
    expect(engine.speech.provider).toBe('cpu');
    expect(engine.fusion.id).toBe('late');
    expect(engine.hasTextPath).toBe(false);
  });

  it('runs two streams at once on the shared model; each gets its own complete, identical trajectory', async () => {
    const [a, b] = await Promise.all([offline('a'), offline('b')]);
    const pa = points(a);
    const pb = points(b);
    expect(pa).toHaveLength(74);
    expect(pb).toHaveLength(74);
    expect(pa.every((p) => p.streamId === 'a')).toBe(true);
    expect(pb.every((p) => p.streamId === 'b')).toBe(true);
    pa.forEach((p, i) => {
      expect(pb[i]?.tMs).toBe(p.tMs);
      // Batching with another stream must not change a stream's numbers.
      expect(pb[i]?.valence).toBeCloseTo(p.valence, 5);
      expect(pb[i]?.arousal).toBeCloseTo(p.arousal, 5);
    });
  });

  it('applies per-stream smoothing overrides', async () => {
    const flow = new FlowControl();
    const none = points(
      await lastValueFrom(
        wavFileSource(SPEECH, { streamId: 'n', flow }).pipe(engine.pipeline('n', { whenBusy: 'queue', flow, smoothing: { filter: 'none' } }), toArray()),
      ),
    );
    // Unsmoothed, a frame is the late fusion of its speech estimate alone: the same point, or the
    // centre when the window carried no voice (confidence 0). Windows the VAD (on by default) finds
    // unvoiced hold the previous point instead, so only the VAD-voiced ones are compared.
    const speaking = none.filter((p) => p.voiced !== undefined && p.voiced >= 0.2);
    const voiced = speaking.filter((p) => (p.speech?.confidence ?? 0) > 0);
    expect(voiced.length).toBeGreaterThan(30);
    for (const p of voiced) expect(p.valence).toBeCloseTo(p.speech?.valence ?? Number.NaN, 6);
    for (const p of speaking.filter((q) => q.speech?.confidence === 0)) expect([p.valence, p.arousal, p.confidence]).toEqual([0, 0, 0]);
  });

  it('rejects bad options before loading anything, and close() is idempotent', async () => {
    await expect(createEngine({ device: 'cpu', windowMs: 100, hopMs: 250 })).rejects.toThrow(/hopMs must be <= windowMs/);
    const e2 = await createEngine({ device: 'cpu', logger: (await import('pino')).pino({ level: 'silent' }) });
    await e2.close();
    await e2.close();
  });
});
