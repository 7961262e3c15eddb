/**
 * createAudioFeed (src/feed.ts) over a stand-in engine whose pipeline reports the audio it got:
 * option checks, input errors as AffectError, order and losslessness in offline mode (write waits
 * for room), resampling and downmixing to 16 kHz mono, end() after the last event, pipeline errors.
 */
import { concatMap, delay, map, of, throwError, type OperatorFunction } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.js';
import { AffectError } from '../../core/errors.js';
import { createAudioFeed } from '../../src/feed.js';
import type { PipelineOptions } from '../../streams/pipeline.js';
import type { AudioChunk, PipelineEvent } from '../../core/types.js';

/** A stand-in engine: each chunk becomes one status event naming its start and length. */
function fakeEngine(opts: { slowMs?: number; failAt?: number } = {}): { engine: Engine; seen: Partial<PipelineOptions>[] } {
  const seen: Partial<PipelineOptions>[] = [];
  const engine = {
    pipeline(streamId: string, o: Partial<PipelineOptions> = {}): OperatorFunction<AudioChunk, PipelineEvent> {
      seen.push(o);
      return (audio$) =>
        audio$.pipe(
          concatMap((c, i) => {
            if (opts.failAt === i) return throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'model failed'));
            // Model work holds a flow credit until it is done, like the real speech stage.
            o.flow?.acquire();
            return of(c).pipe(
              delay(opts.slowMs ?? 0),
              map((): PipelineEvent => {
                o.flow?.release();
                return { kind: 'status', streamId, tMs: c.startSample / 16, state: 'live', message: `${c.startSample}+${c.samples.length}` };
              }),
            );
          }),
        );
    },
  } as unknown as Engine;
  return { engine, seen };
}

const spans = (events: PipelineEvent[]) => events.map((e) => (e.kind === 'status' ? e.message : '')).map((m) => m.split('+').map(Number) as [number, number]);

describe('createAudioFeed', () => {
  it('rejects bad options with a RangeError naming the option', () => {
    const { engine } = fakeEngine();
    expect(() => createAudioFeed(engine, { sampleRateHz: 100 })).toThrow(/sampleRateHz must be an integer in \[1000, 768000\], got 100/);
    expect(() => createAudioFeed(engine, { channels: 0 })).toThrow(/channels must be an integer in \[1, 32\], got 0/);
    expect(() => createAudioFeed(engine, { streamId: '' })).toThrow(/streamId must not be empty/);
    expect(() => createAudioFeed(engine, { mode: 'fast' as 'live' })).toThrow(/mode must be 'live' or 'offline', got fast/);
  });

  it('reports bad writes as AffectError with a hint', async () => {
    const { engine } = fakeEngine();
    const feed = createAudioFeed(engine, { channels: 2 });
    await expect(feed.write([0.1, 0.2] as unknown as Float32Array)).rejects.toMatchObject({
      code: 'AFFECT_ERR_INPUT',
      message: expect.stringMatching(/Float32Array/),
    });
    await expect(feed.write(new Float32Array(3))).rejects.toMatchObject({
      code: 'AFFECT_ERR_AUDIO_FORMAT',
      message: expect.stringMatching(/3 samples is not a whole number of 2-channel frames/),
    });
    await feed.end();
    await expect(feed.write(new Float32Array(2))).rejects.toBeInstanceOf(AffectError);
  });

  it('offline: lossless and in order, in pieces of at most 100 ms, writes waiting for a slow model', async () => {
    const { engine, seen } = fakeEngine({ slowMs: 2 });
    const feed = createAudioFeed(engine, { streamId: 'a', mode: 'offline' });
    expect(seen[0]?.whenBusy).toBe('queue');
    expect(seen[0]?.flow).toBeDefined();
    const events: PipelineEvent[] = [];
    feed.frames$.subscribe((e) => events.push(e));
    // 1.05 s in uneven writes; the copy means reusing the array afterwards changes nothing.
    const buf = new Float32Array(5000).fill(0.25);
    await feed.write(buf);
    buf.fill(Number.NaN);
    await feed.write(new Float32Array(11_800));
    await feed.end();
    const s = spans(events);
    expect(s.every(([, n]) => n <= 1600)).toBe(true);
    // Contiguous from sample 0, every sample once.
    let next = 0;
    for (const [start, n] of s) {
      expect(start).toBe(next);
      next += n;
    }
    expect(next).toBe(16_800);
  });

  it('offline writes not awaited are bounded: past maxPendingMs waiting behind earlier writes, a write is refused (the stream goes on)', async () => {
    // Each of them used to be copied and queued: 20 min of 20 ms packets written without awaiting
    // held +73 MiB of samples (a real engine), growing with every write.
    const { engine } = fakeEngine({ slowMs: 2 });
    const feed = createAudioFeed(engine, { mode: 'offline', maxPendingMs: 1000 });
    const events: PipelineEvent[] = [];
    feed.frames$.subscribe((e) => events.push(e));
    const writes = Array.from({ length: 50 }, () => feed.write(new Float32Array(1600))); // 50 x 100 ms, none awaited
    const settled = await Promise.allSettled(writes);
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as AffectError] : []));
    // Taken while at most 1 s waited ahead of them: 11 writes (the 11th found exactly 1 s waiting).
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(11);
    expect(refused).toHaveLength(39);
    expect(refused[0]).toMatchObject({
      code: 'AFFECT_ERR_INPUT',
      recoverable: true,
      message: expect.stringMatching(/1\.1 s of audio already wait behind earlier write\(\)s \(maxPendingMs 1000\)/),
    });
    // Drained: the feed takes audio again, contiguous after what it took.
    await feed.write(new Float32Array(1600));
    await feed.end();
    expect(spans(events).reduce((a, [, n]) => a + n, 0)).toBe(12 * 1600);
    expect(() => createAudioFeed(engine, { maxPendingMs: 0 })).toThrow(/maxPendingMs must be > 0, got 0/);
  });

  it('live: never waits; resamples 8 kHz stereo to 16 kHz mono', async () => {
    const { engine, seen } = fakeEngine();
    const feed = createAudioFeed(engine, { sampleRateHz: 8000, channels: 2 });
    expect(seen[0]?.whenBusy).toBe('latest');
    const events: PipelineEvent[] = [];
    feed.frames$.subscribe((e) => events.push(e));
    await feed.write(new Float32Array(2 * 8000)); // 1 s of stereo at 8 kHz
    await feed.end();
    const total = spans(events).reduce((a, [, n]) => a + n, 0);
    expect(total).toBeGreaterThanOrEqual(15_900);
    expect(total).toBeLessThanOrEqual(16_100);
  });

  it('abort() during the flush of end() cuts it short and end() resolves; after the end abort is a no-op', async () => {
    const { engine } = fakeEngine({ slowMs: 5 });
    const feed = createAudioFeed(engine, { mode: 'offline' });
    const events: PipelineEvent[] = [];
    let completed = false;
    feed.frames$.subscribe({ next: (e) => events.push(e), complete: () => (completed = true) });
    const write = feed.write(new Float32Array(10 * 16_000)).catch((e: unknown) => e);
    const ended = feed.end();
    await new Promise((r) => setTimeout(r, 20));
    feed.abort('stop');
    expect(completed).toBe(true);
    await ended;
    // This stand-in holds one credit at a time, so the write was taken in whole; the model work queued
    // behind it is what the abort dropped.
    expect(await write).toBeUndefined();
    expect(spans(events).reduce((a, [, n]) => a + n, 0)).toBeLessThan(10 * 16_000);

    const other = createAudioFeed(engine);
    let failure: unknown;
    other.frames$.subscribe({ error: (e: unknown) => (failure = e) });
    await other.write(new Float32Array(1600));
    await other.end();
    other.abort('too late');
    expect(failure).toBeUndefined();
    await expect(other.write(new Float32Array(1600))).rejects.toThrow(/write\(\) after end\(\)/);
  });

  it('a pipeline failure errors frames$ and settles end()', async () => {
    const { engine } = fakeEngine({ failAt: 1 });
    const feed = createAudioFeed(engine, { mode: 'offline' });
    let failure: unknown;
    feed.frames$.subscribe({ error: (e: unknown) => (failure = e) });
    await feed.write(new Float32Array(16_000));
    await feed.end();
    expect(failure).toBeInstanceOf(AffectError);
    expect((failure as AffectError).code).toBe('AFFECT_ERR_INFERENCE');
  });
});
