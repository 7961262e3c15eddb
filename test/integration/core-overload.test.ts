/**
 * Graceful overload (issue 14 item 4): when the speech model cannot keep up with real-time audio,
 * the pipeline widens the stream's hop (the model stage keeps only the newest window, so nothing
 * queues up) and says so: frames after skipped windows carry their effective hop (`hopMs`), a
 * `degraded` status names it, and the wire message validates against the protocol schema.
 * The model here is deliberately slow (a fixed delay per window); the audio is paced in real time.
 */
import { describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { affectPipeline } from '../../streams/pipeline.js';
import { LateFusion } from '../../models/fusion-late.js';
import type { SpeechAffectOutput } from '../../models/ports.js';
import type { AffectPoint, PipelineEvent } from '../../core/types.js';
import { loadSamples, pacedSource } from '../../bench/lib/common.js';
import { toWire } from '../../src/server/hub.js';
import { ServerMessageSchema } from '../../core/protocol.js';

/** A speech model that takes `delayMs` per window and counts how many windows it holds at once. */
class SlowSpeechModel {
  readonly windowSamples = null;
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly delayMs: number) {}
  async infer(samples: Float32Array): Promise<SpeechAffectOutput> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
    let e = 0;
    for (const s of samples) e += s * s;
    const v = Math.tanh(Math.sqrt(e / samples.length) * 10) - 0.5;
    return { valence: v, arousal: -v, confidence: 0.8 };
  }
}

describe('overload: a slow model widens the hop instead of queueing', () => {
  it('frames carry the effective hop, a degraded status says so, the model never holds more than one window and the stream ends on time', async () => {
    const audio = await loadSamples();
    const model = new SlowSpeechModel(600); // 2.4 hops of work per 250 ms hop
    const durationMs = 5000;
    const t0 = performance.now();
    const events: PipelineEvent[] = await lastValueFrom(
      pacedSource(audio, { streamId: 'slow', durationMs, realtime: true, chunkMs: 50 }).pipe(
        affectPipeline({ speech: model, fusion: new LateFusion() }, { windowMs: 1000, hopMs: 250, whenBusy: 'latest' }),
        toArray(),
      ),
    );
    const wallMs = performance.now() - t0;
    const frames = events.flatMap((e) => (e.kind === 'affect' ? [e.point] : []));
    const statuses = events.flatMap((e) => (e.kind === 'status' ? [e] : []));
    // 17 windows (1.0 .. 5.0 s); at 600 ms per window the model reaches about one in three.
    expect(frames.length).toBeGreaterThanOrEqual(4);
    expect(frames.length).toBeLessThan(12);
    expect(model.calls).toBe(frames.length);
    // bounded: one window in the model, one waiting (the newest); no backlog at the end of the audio
    expect(model.maxInFlight).toBe(1);
    expect(wallMs).toBeLessThan(durationMs + 2 * 600 + 1000);
    // every frame after skipped windows says how wide its hop was: audio ms since the previous frame
    const widened = frames.filter((f) => f.droppedWindows > 0);
    expect(widened.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < frames.length; i++) {
      const f = frames[i] as AffectPoint;
      const gap = f.tMs - (frames[i - 1] as AffectPoint).tMs;
      if (f.droppedWindows > 0) {
        expect(f.hopMs).toBeCloseTo(gap, 6);
        expect(f.hopMs).toBe((f.droppedWindows + 1) * 250);
        expect(f.hopMs as number).toBeGreaterThanOrEqual(500);
      } else {
        expect(f.hopMs).toBeUndefined();
        expect(gap).toBe(250);
      }
    }
    expect(frames[0]?.hopMs).toBeUndefined();
    expect(statuses[0]?.state).toBe('degraded');
    expect(statuses[0]?.message).toMatch(/hop widened to \d+ ms/);
    // on the wire: an additive optional field of protocol 1.3.0
    const msg = toWire('slow', 7, { kind: 'affect', point: widened[0] as AffectPoint });
    expect(msg).toMatchObject({ type: 'affect', hopMs: (widened[0] as AffectPoint).hopMs });
    expect(ServerMessageSchema.safeParse(msg).success).toBe(true);
    const plain = toWire('slow', 1, { kind: 'affect', point: frames[0] as AffectPoint });
    expect('hopMs' in plain).toBe(false);
  }, 30_000);
});
