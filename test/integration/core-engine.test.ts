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

  it('rejects every bad engine or pipeline option at createEngine, naming it (not at the first stream)', async () => {
    // These used to load the models and then fail each stream's frames (maxInFlight, whenBusy,
    // textMaxAgeMs), fail inside the loader ("opts.providers is not iterable"), or name no option.
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ maxInFlight: 0 }, /maxInFlight must be an integer >= 1, got 0/],
      [{ maxInFlight: 1.5 }, /maxInFlight must be an integer >= 1, got 1.5/],
      [{ whenBusy: 'skip' }, /whenBusy must be 'drop', 'latest' or 'queue', got skip/],
      [{ textMaxAgeMs: -5 }, /textMaxAgeMs must be >= 0, got -5/],
      [{ textMaxAgeMs: Number.NaN }, /textMaxAgeMs must be >= 0, got NaN/],
      [{ device: 'gpu' }, /Unsupported device "gpu"\. Should be one of: auto, cuda, webgpu, cpu/],
      [{ speechModel: 5 }, /speechModel must be a model id \(a non-empty string\), got 5/],
      [{ fusion: '' }, /fusion must be a model id/],
      [{ asrModel: 7 }, /asrModel must be a string when given, got 7/],
      [{ vad: 'yes' }, /vad must be true or false, got yes/],
    ];
    for (const [opts, message] of bad) await expect(createEngine({ device: 'cpu', ...opts } as never), JSON.stringify(opts)).rejects.toThrow(message);
  });

  it('after close, pipeline() throws naming the closed engine; a stream running at close ends with an error that says so', async () => {
    const silent = (await import('pino')).pino({ level: 'silent' });
    const e3 = await createEngine({ device: 'cpu', logger: silent });
    const events: PipelineEvent[] = [];
    let failure: unknown;
    const running = new Promise<void>((resolve) => {
      const flow = new FlowControl();
      wavFileSource(SPEECH, { streamId: 'mid', flow })
        .pipe(e3.pipeline('mid', { whenBusy: 'queue', flow }))
        .subscribe({
          next: (e) => {
            events.push(e);
            // Close while the stream is mid-file: windows are in the models.
            if (events.length === 3) void e3.close();
          },
          error: (err: unknown) => {
            failure = err;
            resolve();
          },
          complete: resolve,
        });
    });
    await running;
    expect(failure, 'the stream must fail, not complete as if the file had ended').toBeDefined();
    expect((failure as Error).message).toBe('stream "mid": the engine was closed while the stream was running');
    expect((failure as { code?: string }).code).toBe('AFFECT_ERR_INFERENCE');
    expect(() => e3.pipeline('after')).toThrow(/engine\.pipeline\("after"\): the engine is closed/);
  });
});
