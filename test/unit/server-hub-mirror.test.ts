import { describe, expect, it } from 'vitest';
import type { StreamEventMessage } from '../../core/protocol.js';
import { AffectError } from '../../core/errors.js';
import { StreamHub, toWire, type HubEvent } from '../../src/server/hub.js';
import { parseBackplaneUrl } from '../../src/server/redis-hub.js';

const INFO = { streamId: 's1', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 };
const status = (seq: number, state: 'live' | 'ended', streamId = 's1'): StreamEventMessage =>
  toWire(streamId, seq, { kind: 'status', streamId, tMs: seq * 250, state, message: state });

describe('StreamHub cluster mirror (what RedisHub builds on)', () => {
  it('openStream with fromSeq carries the seq on from the cluster', () => {
    const hub = new StreamHub();
    expect(hub.openStream({ ...INFO, fromSeq: 41 }).lastSeq).toBe(41);
    expect(hub.publish('s1', { kind: 'status', streamId: 's1', tMs: 0, state: 'live', message: 'x' }).seq).toBe(42);
    // A lower fromSeq never moves seq back.
    hub.endStream('s1');
    expect(hub.openStream({ ...INFO, fromSeq: 3 }).lastSeq).toBe(43);
  });

  it('mirrorMessage applies only messages after the last seq (nothing twice), and a final status ends the stream with an ended event', () => {
    const hub = new StreamHub({ ringSize: 4 });
    const events: HubEvent['type'][] = [];
    hub.subscribe((e) => events.push(e.type));
    hub.mirrorStream({ ...INFO, state: 'live', lastSeq: 9 });
    expect(hub.mirrorMessage(status(9, 'live'))).toBe(false);
    expect(hub.mirrorMessage(status(10, 'live'))).toBe(true);
    expect(hub.mirrorMessage(status(10, 'live'))).toBe(false);
    expect(hub.mirrorMessage(status(12, 'live'))).toBe(true);
    expect(hub.mirrorMessage(status(13, 'ended'))).toBe(true);
    expect(events).toEqual(['stream', 'message', 'message', 'message', 'ended']);
    expect(hub.stream('s1')).toMatchObject({ state: 'ended', lastSeq: 13 });
    expect(hub.since('s1', 9).messages.map((m) => m.seq)).toEqual([10, 12, 13]);
  });

  it('keeps a mirrored message whole: fields it does not know (a later protocol minor) pass untouched', () => {
    const hub = new StreamHub();
    const got: StreamEventMessage[] = [];
    hub.subscribe((e) => e.type === 'message' && got.push(e.message));
    const m = { ...status(0, 'live', 'x'), dominance: 0.25 } as StreamEventMessage;
    hub.mirrorMessage(m);
    expect(JSON.stringify(got[0])).toBe(JSON.stringify(m));
    expect(hub.stream('x')).toMatchObject({ state: 'live', lastSeq: 0 });
  });

  it('mirrorStream keeps the higher lastSeq and bounds ended streams', () => {
    const hub = new StreamHub({ maxEndedStreams: 1 });
    hub.mirrorStream({ ...INFO, state: 'live', lastSeq: 5 });
    hub.mirrorStream({ ...INFO, state: 'live', lastSeq: 2 });
    expect(hub.stream('s1')?.lastSeq).toBe(5);
    hub.mirrorStream({ ...INFO, streamId: 'e1', state: 'ended', lastSeq: 1 });
    hub.mirrorStream({ ...INFO, streamId: 'e2', state: 'ended', lastSeq: 1 });
    expect(hub.streams().map((s) => s.streamId)).toEqual(['s1', 'e2']);
  });
});

describe('parseBackplaneUrl', () => {
  it('reads host, port, db, TLS and credentials, and prints only a redacted form', () => {
    expect(parseBackplaneUrl('redis://127.0.0.1:6390/3')).toMatchObject({ host: '127.0.0.1', port: 6390, db: 3, tls: false, safe: 'redis://127.0.0.1:6390/3' });
    expect(parseBackplaneUrl('redis://redis.internal')).toMatchObject({ port: 6379, db: 0, safe: 'redis://redis.internal:6379/0' });
    expect(parseBackplaneUrl('rediss://app:s%40cret@[::1]:6380/1')).toMatchObject({
      host: '::1',
      tls: true,
      username: 'app',
      password: 's@cret',
      safe: 'rediss://***@[::1]:6380/1',
    });
  });

  it('refuses what it cannot use with AFFECT_ERR_CONFIG naming the setting, never echoing a password', () => {
    for (const [url, why] of [
      ['http://h:1', /scheme/],
      ['redis://h:1/16', /database/],
      ['redis://h:1/0?x=1', /query/],
      ['redis://:pw-XYZ@h:1/abc', /database/],
      ['redis//:pw-XYZ@h', /not a URL/],
    ] as const) {
      try {
        parseBackplaneUrl(url, 'CIRCUMPLEX_BACKPLANE');
        expect.unreachable(url);
      } catch (err) {
        expect(err).toBeInstanceOf(AffectError);
        expect((err as AffectError).code).toBe('AFFECT_ERR_CONFIG');
        expect((err as AffectError).message).toMatch(/^CIRCUMPLEX_BACKPLANE: /);
        expect((err as AffectError).message).toMatch(why);
        expect((err as AffectError).message).not.toContain('pw-XYZ');
      }
    }
  });
});

describe('StreamHub mirrorRingSize', () => {
  it('keeps a short ring for mirrored streams and grows it to ringSize when the stream moves here', () => {
    const hub = new StreamHub({ ringSize: 8, mirrorRingSize: 2 });
    hub.mirrorStream({ ...INFO, state: 'live', lastSeq: -1 });
    for (let i = 0; i < 5; i++) hub.mirrorMessage(status(i, 'live'));
    expect(hub.since('s1', -1)).toMatchObject({ missed: 3 });
    expect(hub.since('s1', -1).messages.map((m) => m.seq)).toEqual([3, 4]);
    hub.openStream({ ...INFO, fromSeq: 4 });
    for (let i = 0; i < 6; i++) hub.publish('s1', { kind: 'status', streamId: 's1', tMs: i, state: 'live', message: 'x' });
    expect(hub.since('s1', -1).messages.map((m) => m.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(() => new StreamHub({ mirrorRingSize: 0 })).toThrow(/mirrorRingSize/);
  });
});
