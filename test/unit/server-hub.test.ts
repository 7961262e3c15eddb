import { describe, expect, it } from 'vitest';
import { StreamHub, type HubEvent } from '../../src/server/hub.js';
import { ServerMessageSchema } from '../../core/protocol.js';
import type { AffectPoint, PipelineEvent } from '../../core/types.js';
import { AffectError } from '../../core/errors.js';

const INFO = { streamId: 's1', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 };

function point(tMs: number, over: Partial<AffectPoint> = {}): PipelineEvent {
  return {
    kind: 'affect',
    point: {
      streamId: 's1',
      tMs,
      valence: 0.5,
      arousal: -0.25,
      confidence: 0.8,
      label: 'content',
      intensity: 0.56,
      angleDeg: -26.6,
      modalities: ['speech'],
      speech: { valence: 0.5, arousal: -0.25, confidence: 0.8 },
      droppedWindows: 0,
      ...over,
    },
  };
}

describe('StreamHub', () => {
  it('assigns one gapless seq per stream shared by affect, transcript and status', () => {
    const hub = new StreamHub();
    hub.openStream(INFO);
    hub.openStream({ ...INFO, streamId: 's2' });
    const a = hub.publish('s1', point(250));
    const t = hub.publish('s1', { kind: 'transcript', transcript: { streamId: 's1', tMs: 300, text: 'hi', final: true, words: [] } });
    const b = hub.publish('s2', point(250));
    const s = hub.publish('s1', { kind: 'status', streamId: 's1', tMs: 400, state: 'degraded', message: 'slow' });
    expect([a.seq, t.seq, s.seq]).toEqual([0, 1, 2]);
    expect(b.seq).toBe(0);
    for (const m of [a, t, b, s]) expect(() => ServerMessageSchema.parse(m)).not.toThrow();
    expect(hub.stream('s1')).toMatchObject({ lastSeq: 2, state: 'degraded' });
  });

  it('rejects non-finite or out-of-range values without consuming a seq', () => {
    const hub = new StreamHub();
    hub.openStream(INFO);
    expect(() => hub.publish('s1', point(0, { valence: Number.NaN }))).toThrow(AffectError);
    expect(() => hub.publish('s1', point(0, { arousal: 1.5 }))).toThrow(/arousal/);
    expect(() => hub.publish('s1', point(0, { speech: { valence: 0, arousal: 0, confidence: Infinity } }))).toThrow(/speech.confidence/);
    expect(hub.publish('s1', point(0)).seq).toBe(0);
  });

  it('refuses to publish on an unknown stream with a stable code', () => {
    const hub = new StreamHub();
    try {
      hub.publish('nope', point(0));
      expect.unreachable();
    } catch (err) {
      expect((err as AffectError).code).toBe('AFFECT_ERR_STREAM_UNKNOWN');
    }
  });

  it('keeps a bounded ring and answers since() with exactly the missing frames', () => {
    const hub = new StreamHub({ ringSize: 8 });
    hub.openStream(INFO);
    for (let i = 0; i < 20; i++) hub.publish('s1', point(i * 250));
    // ring holds seq 12..19
    const r1 = hub.since('s1', 15);
    expect(r1.messages.map((m) => m.seq)).toEqual([16, 17, 18, 19]);
    expect(r1.missed).toBe(0);
    const r2 = hub.since('s1', 5);
    expect(r2.messages.map((m) => m.seq)).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    expect(r2.missed).toBe(6); // 6..11 evicted
    expect(hub.since('s1', -1).missed).toBe(12);
    expect(hub.since('s1', 19).messages).toEqual([]);
    expect(hub.since('s1', 99)).toEqual({ messages: [], missed: 0 });
    expect(hub.since('unknown', 0)).toEqual({ messages: [], missed: 0 });
  });

  it('publishMessage keeps recorded seqs and refuses going backwards', () => {
    const hub = new StreamHub();
    hub.openStream(INFO);
    const m = hub.publish('s1', point(0));
    hub.publishMessage({ ...m, seq: 10 });
    expect(hub.stream('s1')?.lastSeq).toBe(10);
    expect(() => hub.publishMessage({ ...m, seq: 10 })).toThrow(/not after/);
    expect(hub.publish('s1', point(10)).seq).toBe(11);
  });

  it('fans out in order, ends streams once, and keeps seq across a reopen', () => {
    const hub = new StreamHub();
    const seen: HubEvent[] = [];
    const off = hub.subscribe((e) => seen.push(e));
    hub.subscribe(() => {
      throw new Error('bad listener');
    });
    let listenerErrors = 0;
    hub.onListenerError = () => listenerErrors++;
    hub.openStream(INFO);
    hub.publish('s1', point(0));
    hub.endStream('s1', 'file ended');
    hub.endStream('s1');
    expect(seen.map((e) => e.type)).toEqual(['stream', 'message', 'message', 'ended']);
    const ended = seen[2];
    expect(ended?.type === 'message' && ended.message).toMatchObject({ type: 'status', state: 'ended', seq: 1, tMs: 0 });
    expect(hub.stream('s1')?.state).toBe('ended');
    // Nothing follows the final status until the stream is opened again.
    expect(() => hub.publish('s1', point(5))).toThrow(/has ended/);
    hub.openStream(INFO);
    expect(hub.stream('s1')).toMatchObject({ state: 'live', lastSeq: 1 });
    expect(hub.publish('s1', point(0)).seq).toBe(2);
    expect(listenerErrors).toBeGreaterThan(0);
    off();
    hub.publish('s1', point(1));
    expect(seen.filter((e) => e.type === 'message')).toHaveLength(3); // seq 0, 1, 2; not the one after off()
  });

  it('forgets the oldest ended streams beyond maxEndedStreams, never live ones', () => {
    const hub = new StreamHub({ maxEndedStreams: 2 });
    hub.openStream({ ...INFO, streamId: 'live' });
    for (const id of ['e1', 'e2', 'e3']) {
      hub.openStream({ ...INFO, streamId: id });
      hub.endStream(id);
    }
    expect(hub.streams().map((s) => s.streamId)).toEqual(['live', 'e2', 'e3']);
  });

  it('validates options and stream ids', () => {
    expect(() => new StreamHub({ ringSize: 0 })).toThrow(/ringSize/);
    const hub = new StreamHub();
    expect(() => hub.openStream({ ...INFO, streamId: 'bad id/' })).toThrow(AffectError);
    expect(() => hub.openStream({ ...INFO, hopMs: 0 })).toThrow(/hopMs/);
  });
});
