/**
 * createAudioFeed's abort on a real engine (speech-va, late fusion, Silero VAD in its worker): an
 * offline feed holding seconds of audio not yet analysed stops at once on `abort()` or on its
 * AbortSignal, drops that audio, completes `frames$`, releases its VAD stream, and rejects writes
 * with the reason; another feed on the same engine runs to the end and the engine closes cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { pino } from 'pino';
import { createEngine, type Engine } from '../../src/engine.js';
import { createAudioFeed, type AudioFeed } from '../../src/feed.js';
import { SileroVad } from '../../models/silero-vad.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import type { VoiceDetector } from '../../models/ports.js';
import type { AffectError } from '../../core/errors.js';
import type { PipelineEvent } from '../../core/types.js';

const SPEECH = 'test/fixtures/audio/speech.wav';
const silent = pino({ level: 'silent' });

let engine: Engine;
let silero: SileroVad;
let speech: Float32Array; // the whole file, 16 kHz mono (≈ 19 s)
// VAD streams handed out and not yet closed: a torn-down pipeline closes its own.
let openVadStreams = 0;

beforeAll(async () => {
  const chunks = await lastValueFrom(wavFileSource(SPEECH, { streamId: 'read' }).pipe(toArray()));
  speech = new Float32Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let at = 0;
  for (const c of chunks) {
    speech.set(c.samples, at);
    at += c.samples.length;
  }
  // The real detector, counted: an aborted stream must close its VAD stream (the batcher otherwise
  // waits for a request from it before sending a batch without its maxWaitMs).
  silero = await SileroVad.load({ logger: silent });
  const counted: VoiceDetector = {
    frameSamples: silero.frameSamples,
    stream() {
      const s = silero.stream();
      let open = true;
      openVadStreams++;
      return {
        probabilities: (frames) => s.probabilities(frames),
        close: () => {
          if (open) openVadStreams--;
          open = false;
          s.close?.();
        },
      };
    },
    countDroppedWindow: (reason) => silero.countDroppedWindow(reason),
  };
  engine = await createEngine({ device: 'cpu', logger: silent, voiceDetector: counted });
});
afterAll(async () => {
  await engine.close();
  await silero.close();
});

const affectTimes = (events: PipelineEvent[]): number[] => events.flatMap((e) => (e.kind === 'affect' ? [e.point.tMs] : []));

/** Subscribes to a feed: its events, when frames$ completed (ms since epoch), and a wait for n affect frames. */
function watch(feed: AudioFeed) {
  const events: PipelineEvent[] = [];
  const state = { completedAt: 0, error: undefined as unknown };
  let wanted = Infinity;
  let reached: () => void = () => undefined;
  feed.frames$.subscribe({
    next: (e) => {
      events.push(e);
      if (affectTimes(events).length >= wanted) reached();
    },
    error: (err: unknown) => (state.error = err),
    complete: () => (state.completedAt = Date.now()),
  });
  const affectFrames = (n: number): Promise<void> =>
    new Promise((resolve) => {
      wanted = n;
      reached = resolve;
      if (affectTimes(events).length >= n) resolve();
    });
  return { events, state, affectFrames };
}

describe('createAudioFeed abort (real engine)', () => {
  it('abort() drops the audio still waiting, completes frames$ at once, rejects writes; a feed beside it runs to the end', async () => {
    const a = createAudioFeed(engine, { streamId: 'hung-up', mode: 'offline' });
    const b = createAudioFeed(engine, { streamId: 'other', mode: 'offline' });
    const wa = watch(a);
    const wb = watch(b);
    expect(openVadStreams).toBe(2);
    // ≈ 19 s each, not awaited: offline writes wait for room, so most of it is still waiting.
    const pendingA = a.write(speech);
    const doneB = b.write(speech).then(() => b.end());
    await wa.affectFrames(4);

    const t0 = Date.now();
    a.abort('caller hung up');
    const err = (await pendingA.catch((e: unknown) => e)) as AffectError;
    expect(err).toMatchObject({ code: 'AFFECT_ERR_INPUT', recoverable: false });
    expect(err.message).toMatch(/feed hung-up: aborted: caller hung up/);
    expect(err.hint).toMatch(/open a new feed/);
    await a.end(); // at once: no flush
    expect(wa.state.completedAt).toBeGreaterThan(0);
    expect(wa.state.completedAt - t0).toBeLessThan(500);
    expect(wa.state.error).toBeUndefined();
    // Its VAD stream was closed by the teardown; b's is still open.
    expect(openVadStreams).toBe(1);
    const later = (await a.write(new Float32Array(1600)).catch((e: unknown) => e)) as AffectError;
    expect(later).toMatchObject({ code: 'AFFECT_ERR_INPUT', message: expect.stringMatching(/aborted: caller hung up/) as unknown });
    a.abort('again'); // idempotent: the first reason stays
    await expect(a.write(new Float32Array(1600))).rejects.toThrow(/caller hung up/);
    const keptA = affectTimes(wa.events);

    await doneB;
    expect(wb.state.completedAt).toBeGreaterThan(0);
    const full = affectTimes(wb.events);
    // Nothing arrived after the abort, and what a emitted is the beginning of the full trajectory.
    expect(affectTimes(wa.events)).toEqual(keptA);
    expect(keptA.length).toBeGreaterThanOrEqual(4);
    expect(keptA.length).toBeLessThan(full.length / 2);
    expect(full.slice(0, keptA.length)).toEqual(keptA);
    expect(openVadStreams).toBe(0);
    b.abort('after end'); // a no-op once the stream finished
    expect(wb.state.error).toBeUndefined();
  });

  it('an AbortSignal aborts mid-stream with its reason, and an already-aborted one at creation', async () => {
    const controller = new AbortController();
    const feed = createAudioFeed(engine, { streamId: 'signalled', mode: 'offline', signal: controller.signal });
    const w = watch(feed);
    const pending = feed.write(speech);
    await w.affectFrames(2);
    const t0 = Date.now();
    controller.abort(new Error('call ended by the carrier'));
    await expect(pending).rejects.toThrow(/feed signalled: aborted: call ended by the carrier/);
    expect(w.state.completedAt - t0).toBeLessThan(500);
    await feed.end();
    const kept = affectTimes(w.events).length;
    expect(kept).toBeLessThan(20);
    await expect(feed.write(new Float32Array(160))).rejects.toMatchObject({ code: 'AFFECT_ERR_INPUT' });
    expect(openVadStreams).toBe(0);

    const early = createAudioFeed(engine, { streamId: 'never', signal: AbortSignal.abort('gone before the first packet') });
    const we = watch(early);
    expect(we.state.completedAt).toBeGreaterThan(0);
    await expect(early.write(new Float32Array(160))).rejects.toThrow(/feed never: aborted: gone before the first packet/);
    await early.end();
    expect(we.events).toEqual([]);
    expect(openVadStreams).toBe(0);

    // The engine still serves a new feed after the aborted ones.
    const next = createAudioFeed(engine, { streamId: 'next', mode: 'offline' });
    const wn = watch(next);
    await next.write(speech.subarray(0, 3 * 16_000));
    await next.end();
    expect(affectTimes(wn.events).length).toBeGreaterThan(5);
    expect(wn.state.error).toBeUndefined();
  });

  it('the engine closes cleanly after aborted feeds', async () => {
    const feed = createAudioFeed(engine, { streamId: 'last', mode: 'offline' });
    const w = watch(feed);
    const pending = feed.write(speech).catch((e: unknown) => e);
    await w.affectFrames(1);
    feed.abort();
    expect(((await pending) as AffectError).message).toMatch(/feed last: aborted; audio not yet analysed was dropped/);
    await engine.close();
    expect(w.state.error).toBeUndefined();
    expect(() => createAudioFeed(engine)).toThrow(/the engine is closed/);
  });
});
