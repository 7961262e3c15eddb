/**
 * The Silero VAD batched across streams (models/silero-vad.ts + models/worker/vad-worker.ts): many
 * streams' frames stepped together give the same probabilities as each stream alone; the energy
 * gate skips quiet frames; the shared queue is bounded and refuses (recoverably) past its bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AffectError } from '../../core/errors.js';
import { DEFAULT_SILERO, SileroVad, resolveSileroOptions } from '../../models/silero-vad.js';
import { concat, holdMusic, lineNoise, silence, speak } from '../helpers/vad-audio.js';

const logger = pino({ level: 'silent' });
const F = 512;
let batched: SileroVad;
let single: SileroVad;
let speech: Float32Array;
beforeAll(async () => {
  batched = await SileroVad.load({ logger });
  single = await SileroVad.load({ logger, maxBatch: 1 });
  speech = concat([silence(0.5, 7), speak('Hello, I would like to change my flight to Tuesday.'), silence(0.5, 8)]).samples;
});
afterAll(async () => {
  await batched?.close();
  await single?.close();
});

/** Stream i's audio: speech, music and noise, shifted so no two streams are alike. */
function audioOf(i: number): Float32Array {
  const parts = [speech, holdMusic(1), lineNoise(1, 10 + i), speech];
  const all = concat(parts).samples;
  const shift = (i * 777) % (all.length / 4);
  return all.subarray(shift, shift + Math.floor((all.length - shift) / F) * F);
}

/** Feeds a stream in pieces of 1..9 frames (like windows of varying new audio); returns every probability. */
async function feed(stream: ReturnType<SileroVad['stream']>, x: Float32Array, seed: number): Promise<Float32Array> {
  const out: number[] = [];
  let at = 0;
  let k = seed;
  while (at < x.length) {
    k = (k * 1103515245 + 12345) % 2147483648;
    const n = 1 + (k % 9);
    const piece = x.subarray(at, Math.min(x.length, at + n * F));
    at += piece.length;
    out.push(...(await stream.probabilities(piece)));
  }
  return Float32Array.from(out);
}

describe('Silero VAD batched across streams', () => {
  it('16 concurrent streams give the same probabilities as each stream alone, in fewer model calls', async () => {
    const xs = Array.from({ length: 16 }, (_, i) => audioOf(i));
    const before = { ...batched.stats };
    const together = await Promise.all(xs.map((x, i) => feed(batched.stream(), x, i + 1)));
    const alone: Float32Array[] = [];
    for (let i = 0; i < xs.length; i++) alone.push(await feed(single.stream(), xs[i]!, i + 1));
    for (let i = 0; i < xs.length; i++) {
      expect(together[i]!.length).toBe(xs[i]!.length / F);
      let worst = 0;
      for (let k = 0; k < alone[i]!.length; k++) {
        worst = Math.max(worst, Math.abs(together[i]![k]! - alone[i]![k]!));
      }
      expect(worst, `stream ${i}`).toBeLessThan(1e-3);
      // The speech at the start of each stream is found.
      expect(Math.max(...together[i]!)).toBeGreaterThan(0.9);
    }
    const s = batched.stats;
    expect(s.maxBatchSeen).toBeGreaterThan(4);
    const calls = s.modelCalls - before.modelCalls;
    const frames = s.modelFrames - before.modelFrames;
    expect(calls).toBeLessThan(frames / 3);
    expect(s.gatedFrames - before.gatedFrames).toBeGreaterThan(0);
  });

  it('the energy gate: digital silence costs no model call and has probability 0', async () => {
    const before = { ...batched.stats };
    const p = await batched.stream().probabilities(silence(2, 3).subarray(0, 60 * F));
    expect(Array.from(p)).toEqual(new Array(60).fill(0));
    expect(batched.stats.gatedFrames - before.gatedFrames).toBe(60);
    expect(batched.stats.modelFrames - before.modelFrames).toBe(0);
  });

  it('the shared queue is bounded: past maxQueuedFrames a request is refused with a recoverable AFFECT_ERR_INFERENCE', async () => {
    const small = await SileroVad.load({ logger, maxQueuedFrames: 20, maxWaitMs: 50 });
    try {
      const x = lineNoise(1, 4).subarray(0, 8 * F);
      // Six open streams (so no batch goes before the others' requests are in), one request each.
      const streams = Array.from({ length: 6 }, () => small.stream());
      const results = await Promise.allSettled(streams.map((s) => s.probabilities(x)));
      const refused = results.filter((r) => r.status === 'rejected');
      // 20 frames fit (2 requests of 8), the rest wait behind the bound.
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      expect(refused).toHaveLength(4);
      for (const r of refused) {
        const e = r.reason as AffectError;
        expect(e).toBeInstanceOf(AffectError);
        expect(e.code).toBe('AFFECT_ERR_INFERENCE');
        expect(e.recoverable).toBe(true);
        expect(e.message).toMatch(/vad: queue full/);
      }
      expect(small.stats.rejectedRequests).toBe(4);
      expect(small.stats.rejectedFrames).toBe(32);
    } finally {
      await small.close();
    }
  });

  it('a batch goes at once when every open stream has a request waiting, else waits up to maxWaitMs for more; closing a stream releases it', async () => {
    const vad = await SileroVad.load({ logger, maxWaitMs: 2000 });
    try {
      const x = lineNoise(1, 5).subarray(0, 4 * F);
      // Each step starts once the previous batch is over (a request arriving while one runs goes when it ends).
      const settle = () => new Promise((r) => setTimeout(r, 20));
      const timed = async (p: Promise<unknown>): Promise<number> => {
        const t = performance.now();
        await p;
        const ms = performance.now() - t;
        await settle();
        return ms;
      };
      await settle();
      const a = vad.stream();
      // One open stream: its request cannot be joined by another, so it goes without waiting.
      expect(await timed(a.probabilities(x))).toBeLessThan(1000);
      // Two open streams and one request: it waits the 2 s for the other stream...
      const b = vad.stream();
      expect(await timed(a.probabilities(x))).toBeGreaterThanOrEqual(1990);
      // ...and with both streams' requests waiting the batch goes at once, both in one call.
      expect(await timed(Promise.all([a.probabilities(x), b.probabilities(x)]))).toBeLessThan(1000);
      expect(vad.stats.maxBatchSeen).toBe(2);
      // A request waiting for a stream that closes goes when it closes.
      const waiting = a.probabilities(x);
      b.close!();
      expect(await timed(waiting)).toBeLessThan(1000);
      expect(vad.stats.batches).toBe(4);
      expect(vad.stats.batchedRequests).toBe(5);
    } finally {
      await vad.close();
    }
  });

  it('rejects bad options with a RangeError naming them', () => {
    expect(resolveSileroOptions({})).toEqual(DEFAULT_SILERO);
    expect(() => resolveSileroOptions({ frameSamples: 500 as never })).toThrow(/frameSamples/);
    expect(() => resolveSileroOptions({ energyGateDbfs: 3 })).toThrow(/energyGateDbfs/);
    expect(() => resolveSileroOptions({ maxBatch: 0 })).toThrow(/maxBatch/);
    expect(() => resolveSileroOptions({ maxQueuedFrames: 1.5 })).toThrow(/maxQueuedFrames/);
  });
});
