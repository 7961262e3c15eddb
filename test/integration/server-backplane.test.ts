/**
 * The Redis Streams backplane with real parts: a real `redis-server` on a free port, several real
 * AffectServer nodes in this process (each with its own RedisHub and its own Redis connections),
 * real ws publishers and subscribers on loopback, and the deterministic loudness pipeline. Checks:
 * cross-node live delivery identical to a single node's frames, the cluster-wide stream list,
 * resume on another node exactly once, a publisher continuing its stream on another node, Redis
 * killed and restarted under a live stream (subscribers told it stalls), Redis full, evicting or
 * newly password-protected (the reason on /healthz), a dead node's streams shown degraded, two
 * nodes taking one id during an outage, feed lag, start-up errors (including a port that is not
 * Redis), and no credential in any log line.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { Writable } from 'node:stream';
import { Server as IoServer } from 'socket.io';
import { CircumplexClient } from '../../clients/node-client.js';
import { SocketIoBridge } from '../../clients/socketio-bridge.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import type { AffectServerOptions } from '../../src/server/ws-server.js';
import { pino } from 'pino';
import type { ServerMessage } from '../../core/protocol.js';
import { AffectError } from '../../core/errors.js';
import { RedisHub, parseBackplaneUrl, type RedisHubOptions } from '../../src/server/redis-hub.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { TestRedis, freePort } from '../helpers/redis-server.js';
import { connect, loudnessPipeline, silentLogger, sleep, startServer, toneS16, type TestClient } from '../helpers/server-helpers.js';
import { selfSignedCert } from '../helpers/tls-cert.js';

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
async function node(
  r: TestRedis,
  prefix: string,
  over: Partial<RedisHubOptions> = {},
  logger = silentLogger,
  server: Partial<AffectServerOptions> = {},
): Promise<RunningServer> {
  const hub = await RedisHub.connect({ url: r.url, keyPrefix: prefix, nodeHeartbeatMs: 100, nodeTtlMs: 600, maxReconnectDelayMs: 300, logger, ...over });
  const s = await startServer({ hub, logger, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)), ...server });
  servers.push(s);
  return s;
}

/** A Redis of the test's own (it will be killed, filled or reconfigured) and two nodes A and B on it. */
async function ownCluster(over: Partial<RedisHubOptions> = {}): Promise<{ own: TestRedis; a: RunningServer; b: RunningServer }> {
  const own = await TestRedis.start();
  redises.push(own);
  const prefix = newPrefix();
  const a = await node(own, prefix, over);
  const b = await node(own, prefix, over);
  return { own, a, b };
}

/** A subscriber that subscribed to `*` (after hello). */
async function subscriber(s: RunningServer, resumeFrom?: Record<string, number>, ids = ['*'], token?: string): Promise<TestClient> {
  const c = track(connect(s, '/v1/stream', token ? { headers: { Authorization: `Bearer ${token}` } } : {}));
  await c.opened;
  await c.until((x) => x.of('hello').length === 1, 5000, 'hello');
  c.send({ type: 'subscribe', streamIds: ids, ...(resumeFrom ? { resumeFrom } : {}) });
  return c;
}

/** A publisher that started `streamId` (retrying while the stream is busy elsewhere, up to `retryMs`). */
async function publisher(s: RunningServer, streamId: string, retryMs = 0, token?: string): Promise<TestClient> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    const p = track(connect(s, '/v1/ingest', token ? { headers: { Authorization: `Bearer ${token}` } } : {}));
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

/** A subscriber on B, a publisher on A (stream `id`), and 500 ms of audio sent: returns once B has its 5 frames. */
async function flowingAtoB(a: RunningServer, b: RunningServer, id: string): Promise<{ onB: TestClient; p: TestClient }> {
  const onB = await subscriber(b);
  const p = await publisher(a, id);
  await send(p, audio(500));
  await onB.until((x) => x.of('affect').length === 5, 5000, '5 frames on B');
  return { onB, p };
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

  it('a stream claimed on one node and not yet announced is busy for another (two publishers of a new id at once: the second is refused, not both accepted)', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix);
    expect((await a.hub.claim('fresh')).ok).toBe(true);
    // A has not opened the stream yet (its announcement is what writes the stream's state to Redis).
    expect(await b.hub.claim('fresh')).toMatchObject({ ok: false, reason: 'stream-busy' });
  });

  it('messages cross the backplane whole: a field this version does not know (e.g. dominance) arrives untouched', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix);
    const onB = await subscriber(b);
    expect((await a.hub.claim('dom')).ok).toBe(true);
    a.hub.openStream({ streamId: 'dom', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const m = {
      type: 'affect',
      streamId: 'dom',
      seq: 0,
      tMs: 250,
      valence: 0.1,
      arousal: -0.2,
      dominance: 0.35,
      confidence: 0.9,
      label: 'calm',
      intensity: 0.22,
      angleDeg: -63.4,
      modalities: ['speech'],
      droppedWindows: 0,
    } as unknown as StreamEventMessage;
    a.hub.publishMessage(m);
    await onB.until((x) => x.of('affect').length === 1, 5000, 'the frame on B');
    expect(stream(onB, 'dom')).toEqual([JSON.stringify(m)]);
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

describe('Redis backplane: publishers move, Redis fails', () => {
  it('one publisher per stream in the whole cluster; a publisher that reconnects to another node continues the same stream and seq', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix);
    const c = await node(redis, prefix);
    const watcher = await subscriber(c);
    const p1 = await publisher(a, 'mv');
    // A second publisher of the same id on another node is refused while A publishes it.
    const dup = track(connect(b, '/v1/ingest'));
    await dup.opened;
    dup.send({ type: 'start', streamId: 'mv', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    expect((await dup.closed).code).toBe(1008);
    expect(dup.raw.join()).toContain('stream-busy');
    await send(p1, audio(1000));
    await watcher.until((x) => x.of('affect').filter((m) => m.streamId === 'mv').length === 10, 5000, '10 frames');
    // The publisher's connection drops (no stop); it comes back on node B with the same stream id.
    p1.ws.terminate();
    const p2 = await publisher(b, 'mv', 5000);
    await send(p2, audio(1000));
    p2.send({ type: 'stop' });
    await watcher.until((x) => x.of('status').filter((m) => m.streamId === 'mv' && m.state === 'ended').length === 2, 10_000, 'second end');
    const s = seqs(watcher.messages, 'mv');
    expect(s).toEqual(Array.from({ length: s.length }, (_, i) => i));
    expect(watcher.of('affect').filter((m) => m.streamId === 'mv')).toHaveLength(20);
    expect(watcher.of('stream').filter((m) => m.stream.streamId === 'mv').length).toBe(2);
    expect(b.hub.stream('mv')).toMatchObject({ state: 'ended', lastSeq: s.at(-1) });
  });

  it('Redis killed mid-stream: nodes keep serving their own streams, report degraded, reconnect, and nothing is delivered twice', async () => {
    const { own, a, b } = await ownCluster();
    const onA = await subscriber(a);
    const onB = await subscriber(b);
    const p = await publisher(a, 'rk');
    const health = async (s: RunningServer) => (await (await fetch(`${s.httpUrl}healthz`)).json()) as { status: string; backplane?: { up: boolean } };
    const metric = async (s: RunningServer) => /circumplex_backplane_up\{kind="redis"\} (\d)/.exec(await (await fetch(`${s.httpUrl}metrics`)).text())?.[1];
    expect(await health(a)).toMatchObject({ status: 'ok', backplane: { up: true } });
    expect(await metric(a)).toBe('1');
    const signal = audio(6000);
    const third = 640 * Math.floor(signal.length / 640 / 3);
    await send(p, signal.subarray(0, third), 1);
    await onB.until((x) => x.of('affect').length >= 15, 5000, 'frames on B before the outage');

    await own.kill();
    const deadline = Date.now() + 5000;
    while ((await health(a)).status !== 'degraded' && Date.now() < deadline) await sleep(50);
    expect(await health(a)).toMatchObject({ status: 'degraded', backplane: { up: false } });
    expect(await metric(a)).toBe('0');
    const beforeA = onA.of('affect').length;
    await send(p, signal.subarray(third, 2 * third), 1);
    // Node A's own subscriber keeps getting its stream live while Redis is away.
    await onA.until((x) => x.of('affect').length >= beforeA + 15, 5000, 'local frames during the outage');
    expect((await health(b)).status).toBe('degraded');
    // B's subscriber is told that A's stream stalls (it is not a quiet call), and B lists it as degraded.
    const states = (c: TestClient) =>
      c
        .of('stream')
        .filter((m) => m.stream.streamId === 'rk')
        .map((m) => m.stream.state);
    await onB.until((x) => states(x).includes('degraded'), 5000, "'degraded' on B");
    expect(b.hub.stream('rk')?.state).toBe('degraded');

    await own.restart();
    const back = Date.now() + 10_000;
    while (((await health(a)).status !== 'ok' || (await health(b)).status !== 'ok') && Date.now() < back) await sleep(50);
    expect((await health(a)).status).toBe('ok');
    expect((await health(b)).status).toBe('ok');
    await send(p, signal.subarray(2 * third), 1);
    p.send({ type: 'stop' });
    await onA.until(ended('rk'), 10_000, 'end on A');
    await onB.until(ended('rk'), 10_000, 'end on B');
    const total = (a.hub.stream('rk')?.lastSeq ?? 0) + 1;
    // Every message once, in order, on both nodes: the outage's backlog reached B after the restart.
    expect(seqs(onA.messages, 'rk')).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(seqs(onB.messages, 'rk')).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(stream(onB, 'rk')).toEqual(stream(onA, 'rk'));
    // Announced, stalled, back (once, though A also re-announced it); A's own subscriber saw no stall.
    expect(states(onB)).toEqual(['live', 'degraded', 'live']);
    expect(states(onA)).toEqual(['live']);
    expect(a.hub.backplane()).toMatchObject({ up: true, pendingWrites: 0, droppedWrites: 0 });
    expect(a.hub.backplane()?.disconnects).toBeGreaterThanOrEqual(1);
  });
  it('two nodes that both accepted the same new stream id while Redis was away: once back, the one whose claim lost ends its copy and refuses its publisher (stream-busy), instead of diverging silently', async () => {
    const { own, a, b } = await ownCluster();
    const onA = await subscriber(a);
    const onB = await subscriber(b);
    await own.kill();
    while (a.hub.backplane()?.up || b.hub.backplane()?.up) await sleep(20);
    const pa = await publisher(a, 'twice');
    const pb = await publisher(b, 'twice');
    await Promise.all([send(pa, audio(500)), send(pb, audio(500))]);
    await own.restart();
    const closed = await Promise.race([
      pa.closed.then((c) => ({ loser: pa, c })),
      pb.closed.then((c) => ({ loser: pb, c })),
      sleep(10_000).then(() => Promise.reject(new Error('neither publisher was told after the re-sync'))),
    ]);
    const [loser, winner, loserNode, lostHere] = closed.loser === pa ? [pa, pb, a, onA] : [pb, pa, b, onB];
    expect(closed.c.code).toBe(1008);
    expect(loser.raw.join()).toMatch(/"reason":"stream-busy".*published by another node/);
    // The loser's node tells its subscribers its copy ended; the winner keeps publishing.
    await lostHere.until(
      (x) => x.of('status').some((m) => m.streamId === 'twice' && m.state === 'ended' && /another node/.test(m.message)),
      5000,
      'end of the lost copy',
    );
    expect(winner.ws.readyState).toBe(winner.ws.OPEN);
    const back = Date.now() + 5000;
    while (!loserNode.hub.backplane()?.up && Date.now() < back) await sleep(20);
    expect(loserNode.hub.backplane()).toMatchObject({ up: true });
  });

  it('commands that time out while the link stays up (CLIENT PAUSE): degraded, then re-synced without a reconnect, nothing lost or doubled', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix, { commandTimeoutMs: 300 });
    const b = await node(redis, prefix);
    const { onB, p } = await flowingAtoB(a, b, 'pause');
    const { Redis } = await import('ioredis');
    const admin = new Redis(redis.url);
    await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
    await send(p, audio(500));
    const down = Date.now() + 3000;
    while (a.hub.backplane()?.up && Date.now() < down) await sleep(20);
    expect(a.hub.backplane()?.up).toBe(false);
    const back = Date.now() + 8000;
    while (!a.hub.backplane()?.up && Date.now() < back) await sleep(50);
    admin.disconnect();
    expect(a.hub.backplane()).toMatchObject({ up: true });
    p.send({ type: 'stop' });
    await onB.until(ended('pause'), 8000, 'end on B');
    expect(seqs(onB.messages, 'pause')).toEqual(Array.from({ length: 11 }, (_, i) => i));
    // An idle feed (blocking reads) longer than the 300 ms command timeout is not a dead link.
    await sleep(800);
    expect(a.hub.backplane()).toMatchObject({ up: true });
  });

  it('Redis full (maxmemory, noeviction): every node stays degraded with the reason on /healthz (no flapping back to ok), then catches up once Redis has room', async () => {
    const { own: full, a, b } = await ownCluster();
    const { onB, p } = await flowingAtoB(a, b, 'oom');
    const { Redis } = await import('ioredis');
    const admin = new Redis(full.url);
    try {
      await admin.call('CONFIG', 'SET', 'maxmemory', '1');
      await send(p, audio(500));
      const down = Date.now() + 5000;
      while ((a.hub.backplane()?.up || b.hub.backplane()?.up) && Date.now() < down) await sleep(20);
      // Watch several heartbeats (every 100 ms here): the nodes must not report the link back while every write is refused.
      const ups: boolean[] = [];
      for (let i = 0; i < 20; i++, await sleep(50)) ups.push(Boolean(a.hub.backplane()?.up), Boolean(b.hub.backplane()?.up));
      expect(ups.every((u) => !u)).toBe(true);
      for (const n of [a, b])
        expect(n.hub.backplane()).toMatchObject({ up: false, disconnects: 1, error: expect.stringMatching(/OOM command not allowed.*raise its maxmemory/) });
      const health = (await (await fetch(`${a.httpUrl}healthz`)).json()) as { status: string; backplane: { error?: string } };
      expect(health.status).toBe('degraded');
      expect(health.backplane.error).toMatch(/OOM command not allowed/);
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
    } finally {
      admin.disconnect();
    }
    const back = Date.now() + 8000;
    // The link comes back first, then the backlog is written: wait for both (the flush is asynchronous).
    while (!(a.hub.backplane()?.up && b.hub.backplane()?.up && a.hub.backplane()?.pendingWrites === 0) && Date.now() < back) await sleep(50);
    expect(a.hub.backplane()).toMatchObject({ up: true, pendingWrites: 0 });
    expect(a.hub.backplane()?.error).toBeUndefined();
    p.send({ type: 'stop' });
    await onB.until(ended('oom'), 8000, 'end on B');
    expect(seqs(onB.messages, 'oom')).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });

  it('an evicting Redis (maxmemory-policy other than noeviction): a warning at start; a stream whose record Redis dropped is claimed again and keeps reaching other nodes, not taken for a claim by another node', async () => {
    const lru = await TestRedis.start();
    redises.push(lru);
    const { Redis } = await import('ioredis');
    const admin = new Redis(lru.url);
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const prefix = newPrefix();
    try {
      await admin.call('CONFIG', 'SET', 'maxmemory', '100mb', 'maxmemory-policy', 'allkeys-lru');
      const a = await node(lru, prefix, {}, pino({ level: 'warn' }, sink));
      expect(logged).toMatch(/maxmemory-policy allkeys-lru.*set maxmemory-policy noeviction/);
      const b = await node(lru, prefix);
      const { onB, p } = await flowingAtoB(a, b, 'evicted');
      // What eviction does to the stream's record (and possibly its log) under memory pressure.
      await admin.del(`${prefix}meta:evicted`);
      await send(p, audio(500));
      p.send({ type: 'stop' });
      await onB.until(ended('evicted'), 8000, 'end on B');
      expect(seqs(onB.messages, 'evicted')).toEqual(Array.from({ length: 11 }, (_, i) => i));
      expect(logged).toMatch(/Redis lost the record of stream \\"evicted\\".*use noeviction/);
      expect(logged).not.toMatch(/another node claimed this stream/);
    } finally {
      admin.disconnect();
    }
  });

  it('a reconnect that Redis refuses (it now requires a password): /healthz and the log say so, not just "connection closed"; back once it accepts again', async () => {
    const own = await TestRedis.start();
    redises.push(own);
    const a = await node(own, newPrefix());
    const { Redis } = await import('ioredis');
    const admin = new Redis(own.url);
    try {
      await admin.call('CONFIG', 'SET', 'requirepass', 'rotated-secret');
      // Drop every other connection: the node reconnects without a password.
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
      const deadline = Date.now() + 5000;
      while (!/NOAUTH/.test(a.hub.backplane()?.error ?? '') && Date.now() < deadline) await sleep(50);
      expect(a.hub.backplane()).toMatchObject({ up: false, error: expect.stringMatching(/^reconnect failed: NOAUTH .*put it in --backplane/) });
      const health = (await (await fetch(`${a.httpUrl}healthz`)).json()) as { status: string; backplane: { error?: string } };
      expect(health).toMatchObject({ status: 'degraded', backplane: { error: expect.stringMatching(/NOAUTH/) } });
      await admin.call('CONFIG', 'SET', 'requirepass', '');
    } finally {
      admin.disconnect();
    }
    const back = Date.now() + 8000;
    while (!a.hub.backplane()?.up && Date.now() < back) await sleep(50);
    expect(a.hub.backplane()).toMatchObject({ up: true });
    expect(a.hub.backplane()?.error).toBeUndefined();
  });

  it('a node that reads the feed late reports it: backplane.feedLagMs on /healthz and circumplex_backplane_feed_lag_seconds', async () => {
    const prefix = newPrefix();
    const b = await node(redis, prefix);
    await sleep(300);
    expect(b.hub.backplane()?.feedLagMs).toBeLessThan(1000);
    const { Redis } = await import('ioredis');
    const admin = new Redis(redis.url);
    try {
      // An entry another node wrote 3 s before this node got to read it (as after a stall of this node).
      const late = JSON.stringify({ type: 'status', streamId: 'late', seq: 0, tMs: 0, state: 'live', message: 'x' });
      await admin.xadd(`${prefix}feed`, `${Date.now() - 3000}-0`, 'k', 'm', 's', 'late', 'n', 'other-node', 'd', late);
    } finally {
      admin.disconnect();
    }
    const deadline = Date.now() + 3000;
    while (b.hub.stream('late') === undefined && Date.now() < deadline) await sleep(20);
    expect(b.hub.backplane()?.feedLagMs).toBeGreaterThanOrEqual(2900);
    const health = (await (await fetch(`${b.httpUrl}healthz`)).json()) as { backplane: { feedLagMs: number } };
    expect(health.backplane.feedLagMs).toBeGreaterThanOrEqual(2900);
    const lag = Number(/circumplex_backplane_feed_lag_seconds\{kind="redis"\} ([\d.]+)/.exec(await (await fetch(`${b.httpUrl}metrics`)).text())?.[1]);
    expect(lag).toBeGreaterThanOrEqual(2.9);
    // Reads that keep up afterwards do not hide it (the peak of the last minute is reported).
    await sleep(300);
    expect(b.hub.backplane()?.feedLagMs).toBeGreaterThanOrEqual(2900);
  });

  it('memory stays bounded while Redis is away: at most the ring waits per stream, the rest is counted as dropped and shows as missed', async () => {
    const { own, a, b } = await ownCluster({ ringSize: 16 });
    const { onB, p } = await flowingAtoB(a, b, 'mem');
    await own.kill();
    while (a.hub.backplane()?.up) await sleep(20);
    await send(p, audio(5000));
    const local = await subscriber(a, { mem: -1 }, ['mem']);
    await local.until((x) => x.of('resumed').length === 1, 5000, 'local resume');
    expect(a.hub.stream('mem')?.lastSeq).toBe(54);
    expect(a.hub.backplane()).toMatchObject({ up: false, pendingWrites: 16 });
    // The local ring serves the local resume; what it evicted is reported as missed.
    expect(local.of('resumed')[0]).toMatchObject({ missed: 39 });
    await own.restart();
    const back = Date.now() + 10_000;
    while (!(a.hub.backplane()?.up && b.hub.backplane()?.up && a.hub.backplane()?.pendingWrites === 0) && Date.now() < back) await sleep(20);
    expect(a.hub.backplane()).toMatchObject({ up: true, pendingWrites: 0, droppedWrites: 34 });
    const metrics = await (await fetch(`${a.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_backplane_dropped_writes_total 34/);
    expect(metrics).toMatch(/circumplex_backplane_pending_writes\{kind="redis"\} 0\n/);
    await onB.until((x) => seqs(x.messages, 'mem').at(-1) === 54, 5000, 'the backlog on B');
    // B got the first 5, then what A's ring still held (seq 39..54): a jump, never a duplicate.
    expect(seqs(onB.messages, 'mem')).toEqual([0, 1, 2, 3, 4, ...Array.from({ length: 16 }, (_, i) => 39 + i)]);
  });
  it('a stream whose ingest node died shows as degraded on the other nodes until its publisher continues it elsewhere (then live, seq carrying on)', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix, { orphanGraceMs: 60_000 });
    const { onB } = await flowingAtoB(a, b, 'lost');
    const hubA = a.hub;
    await hubA.close();
    const states = () =>
      onB
        .of('stream')
        .filter((m) => m.stream.streamId === 'lost')
        .map((m) => m.stream.state);
    await onB.until(() => states().includes('degraded'), 5000, "'degraded' on B");
    expect(b.hub.stream('lost')?.state).toBe('degraded');
    const p2 = await publisher(b, 'lost', 5000);
    await send(p2, audio(500));
    p2.send({ type: 'stop' });
    await onB.until(ended('lost'), 5000, 'end on B');
    expect(states()).toEqual(['live', 'degraded', 'live']);
    expect(seqs(onB.messages, 'lost')).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });

  it('a stream whose ingest node died and whose publisher never came back is ended once, cluster-wide, after the grace period', async () => {
    const prefix = newPrefix();
    const a = await node(redis, prefix);
    const b = await node(redis, prefix, { orphanGraceMs: 400 });
    const c = await node(redis, prefix, { orphanGraceMs: 400 });
    const onB = await subscriber(b);
    const onC = await subscriber(c);
    const p = await publisher(a, 'orphan');
    await send(p, audio(1000));
    await onB.until((x) => x.of('affect').length === 10, 5000, '10 frames on B');
    // Node A vanishes as a crash would leave it: its Redis link goes, its stream stays "live".
    const hubA = a.hub;
    await hubA.close();
    for (const cl of [onB, onC]) await cl.until(ended('orphan'), 5000, 'the reaped end');
    for (const cl of [onB, onC]) {
      // Told the stream stalled as soon as its node was seen gone, before the grace period ended it.
      const told = cl.messages.findIndex((m) => m.type === 'stream' && m.stream.streamId === 'orphan' && m.stream.state === 'degraded');
      expect(told).toBeGreaterThan(-1);
      expect(told).toBeLessThan(cl.messages.findIndex((m) => m.type === 'status' && m.streamId === 'orphan'));
      const end = cl.of('status').filter((m) => m.streamId === 'orphan');
      expect(end).toHaveLength(1);
      expect(end[0]).toMatchObject({ state: 'ended', message: 'ingest node lost', seq: 10, tMs: 1000 });
      expect(seqs(cl.messages, 'orphan')).toEqual(Array.from({ length: 11 }, (_, i) => i));
    }
    expect(b.hub.stream('orphan')).toMatchObject({ state: 'ended', lastSeq: 10 });
    expect(c.hub.stream('orphan')).toMatchObject({ state: 'ended', lastSeq: 10 });
  });
});

describe('Redis backplane: start-up errors and credentials', () => {
  it('rediss:// (TLS): nodes share a stream over TLS with a verified certificate; an untrusted certificate is a clear start-up error', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'redis-tls-'));
    const { certFile, keyFile } = selfSignedCert(dir);
    const secure = await TestRedis.start({ tls: { certFile, keyFile } });
    redises.push(secure);
    expect(secure.url).toMatch(/^rediss:\/\//);
    const prefix = newPrefix();
    const ca = readFileSync(certFile);
    const a = await node(secure, prefix, { tlsOptions: { ca } });
    const b = await node(secure, prefix, { tlsOptions: { ca } });
    const onB = await subscriber(b);
    const p = await publisher(a, 'tls');
    await send(p, audio(500));
    p.send({ type: 'stop' });
    await onB.until(ended('tls'), 5000, 'end on B');
    expect(seqs(onB.messages, 'tls')).toEqual([0, 1, 2, 3, 4, 5]);
    // Without the CA the self-signed certificate is refused (never silently accepted).
    await expect(RedisHub.connect({ url: secure.url, logger: silentLogger, connectTimeoutMs: 1000 })).rejects.toMatchObject({
      code: 'AFFECT_ERR_CONFIG',
      message: expect.stringMatching(/cannot reach the backplane rediss:\/\/127\.0\.0\.1:\d+\/0: .*(self-signed|certificate)/i),
    });
  });

  it('a bad URL, a closed port, a wrong or missing password: each a clear AFFECT_ERR_CONFIG that never shows the password', async () => {
    const secret = 'pa55-Very-Secret';
    const locked = await TestRedis.start({ password: secret });
    redises.push(locked);
    const closed = await freePort();
    const fail = async (url: string): Promise<AffectError> => {
      try {
        const hub = await RedisHub.connect({ url, logger: silentLogger, connectTimeoutMs: 1000 });
        await hub.close();
      } catch (err) {
        expect(err).toBeInstanceOf(AffectError);
        const e = err as AffectError;
        expect(e.code).toBe('AFFECT_ERR_CONFIG');
        expect(`${e.message} ${e.hint} ${String(e.cause)}`).not.toContain(secret);
        return e;
      }
      throw new Error(`connect(${url}) did not fail`);
    };
    expect((await fail(`http://127.0.0.1:${locked.port}`)).message).toMatch(/redis:\/\/ or rediss:\/\//);
    expect((await fail(`redis://:${secret}@127.0.0.1:99999/0`)).message).toMatch(/not a URL \(redis:\/\/\*\*\*@127/);
    expect((await fail(`redis://:${secret}@127.0.0.1:0/0`)).message).toMatch(/bad port 0/);
    expect((await fail(`redis://:${secret}@127.0.0.1:${locked.port}/x`)).message).toMatch(/database/);
    expect((await fail(`redis://:${secret}@127.0.0.1:${closed}/0`)).message).toBe(
      `cannot reach the backplane redis://***@127.0.0.1:${closed}/0: connection refused`,
    );
    expect((await fail(`redis://:wrong-${secret}@127.0.0.1:${locked.port}/0`)).message).toMatch(/refused the credentials/);
    expect((await fail(`redis://127.0.0.1:${locked.port}/0`)).message).toMatch(/requires a password/);
    expect(parseBackplaneUrl(`rediss://user:${secret}@example.org:6380/2`)).toMatchObject({
      tls: true,
      port: 6380,
      db: 2,
      username: 'user',
      safe: 'rediss://***@example.org:6380/2',
    });
  });

  it('--backplane at a port that is not Redis (HTTP, a silent service, TLS on one side only): a clear AFFECT_ERR_CONFIG saying what answers there and what to do, never a RESP parse error', async () => {
    const web = http.createServer((_req, res) => res.end('ok'));
    const silent = net.createServer(() => undefined);
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    const listen = (srv: net.Server) => new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
    const [webPort, silentPort] = [await listen(web), await listen(silent)];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'redis-tls-'));
    const tlsOnly = await TestRedis.start({ tls: selfSignedCert(dir) });
    redises.push(tlsOnly);
    const fail = async (url: string) => {
      const err = await RedisHub.connect({ url, logger: silentLogger, connectTimeoutMs: 1000, commandTimeoutMs: 1000 }).then(
        async (hub) => (await hub.close(), undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AffectError);
      const e = err as AffectError;
      expect(e.code).toBe('AFFECT_ERR_CONFIG');
      expect(`${e.message} ${e.hint}`).not.toMatch(/RESP|Please report|EPIPE|ECONNRESET/);
      return `${e.message} | ${e.hint}`;
    };
    try {
      expect(await fail(`redis://127.0.0.1:${webPort}/0`)).toMatch(
        new RegExp(
          `^--backplane redis://127\\.0\\.0\\.1:${webPort}/0 is not a Redis server: it answered "HTTP/1\\.1 400 Bad Request" to PING \\| point --backplane \\(or CIRCUMPLEX_BACKPLANE\\) at the port redis-server listens on`,
        ),
      );
      expect(await fail(`redis://127.0.0.1:${silentPort}/0`)).toMatch(/accepted the connection but answered nothing to PING in 1000 ms.*\| point --backplane/);
      expect(await fail(`rediss://127.0.0.1:${redis.port}/0`)).toMatch(/that port serves plain-text Redis, not TLS \| write redis:\/\/ instead of rediss:\/\//);
      expect(await fail(`redis://127.0.0.1:${tlsOnly.port}/0`)).toMatch(
        /closed the connection at the first Redis command \| a Redis that serves only TLS does that: write rediss:\/\//,
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => web.close(r));
      await new Promise((r) => silent.close(r));
    }
  });

  it('no log line at any level carries the Redis password, through start, an outage and recovery', async () => {
    const secret = 'Hunter2-cluster-password';
    const locked = await TestRedis.start({ password: secret });
    redises.push(locked);
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const prefix = newPrefix();
    const a = await node(locked, prefix, {}, logger);
    const b = await node(locked, prefix, {}, logger);
    const onB = await subscriber(b);
    const p = await publisher(a, 'pw');
    await send(p, audio(500));
    await onB.until((x) => x.of('affect').length >= 5, 5000, 'frames on B');
    await locked.kill();
    await sleep(700);
    await locked.restart();
    const deadline = Date.now() + 10_000;
    while (!(a.hub.backplane()?.up && b.hub.backplane()?.up) && Date.now() < deadline) await sleep(50);
    p.send({ type: 'stop' });
    await onB.until(ended('pw'), 10_000, 'end on B');
    await fetch(`${a.httpUrl}healthz`);
    expect(logged).toContain('backplane down');
    expect(logged).toContain('backplane back');
    // The lost feed is logged in the operator's words, not the Redis client's retry-limit message.
    expect(logged).toMatch(/"why":"feed read failed: [^"]+","msg":"backplane feed lost; retrying"/);
    const warnings = logged.split('\n').filter((l) => /"level":[4-6]\d/.test(l));
    expect(warnings.join('\n')).not.toMatch(/max retries per request|Stream isn't writeable/);
    expect(logged).toContain('redis://***@127.0.0.1');
    expect(logged).not.toContain(secret);
    expect(JSON.stringify(await (await fetch(`${a.httpUrl}healthz`)).json())).not.toContain(secret);
  });
});

/** A TCP load balancer without stickiness: forwards to whichever node `target` names now. */
async function balancer(first: number): Promise<{ port: number; target: number; cut(): void; close(): void }> {
  const socks = new Set<net.Socket>();
  const lb = {
    port: 0,
    target: first,
    cut: () => {
      for (const s of socks) s.destroy();
    },
    close: () => {
      lb.cut();
      server.close();
    },
  };
  const server = net.createServer((down) => {
    const up = net.connect(lb.target, '127.0.0.1');
    socks.add(down).add(up);
    down.pipe(up).pipe(down);
    const end = () => {
      down.destroy();
      up.destroy();
      socks.delete(down);
      socks.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  lb.port = (server.address() as net.AddressInfo).port;
  return lb;
}

describe('Redis backplane: clients, tokens and scopes on any node', () => {
  it('tokens and per-stream scopes hold on every node; the node client behind a sticky-free balancer resumes on the other node once; the socket.io bridge forwards from any node', async () => {
    const prefix = newPrefix();
    const tokens = [
      { token: 'pub-token-123', scopes: ['publish'] },
      { token: 'sub-only-a-1', scopes: ['subscribe:call-a'] },
      { token: 'sub-all-token', scopes: ['subscribe'] },
    ];
    const a = await node(redis, prefix, {}, silentLogger, { tokens });
    const b = await node(redis, prefix, {}, silentLogger, { tokens });
    // No token, or a publish-only token, is refused on B exactly as on one node.
    const anon = track(connect(b));
    await expect(anon.opened).rejects.toMatchObject({ statusCode: 401 });
    const wrongScope = track(connect(b, '/v1/stream', { headers: { Authorization: 'Bearer pub-token-123' } }));
    await expect(wrongScope.opened).rejects.toMatchObject({ statusCode: 403 });
    const scoped = await subscriber(b, undefined, ['*'], 'sub-only-a-1');
    expect(scoped.of('hello')[0]?.streams).toEqual([]);

    // A socket.io server fed by a bridge from node B.
    const httpServer = http.createServer();
    const io = new IoServer(httpServer);
    const got: StreamEventMessage[] = [];
    io.of('/').on('connection', (socket) => socket.onAny((_e: string, m: StreamEventMessage) => got.push(m)));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    const lb = await balancer(a.port);
    const client = CircumplexClient.connect(`ws://127.0.0.1:${lb.port}/v1/stream`, {
      streamIds: ['call-a'],
      headers: { Authorization: 'Bearer sub-all-token' },
      initialBackoffMs: 20,
      maxBackoffMs: 100,
    });
    const viaB = CircumplexClient.connect(b.url, { streamIds: ['*'], headers: { Authorization: 'Bearer sub-all-token' } });
    const bridge = SocketIoBridge.start(viaB.frames$, {
      url: `http://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}`,
      maxRatePerSec: 1000,
      burst: 100,
      socketOptions: { transports: ['websocket'] },
    });
    const fromClient: StreamEventMessage[] = [];
    const sub = client.frames$.subscribe((m) => fromClient.push(m));
    try {
      await client.waitOpen();
      await viaB.waitOpen();
      const pa = await publisher(a, 'call-a', 0, 'pub-token-123');
      const pb = await publisher(a, 'call-b', 0, 'pub-token-123');
      await send(pa, audio(1000), 1);
      await send(pb, audio(500));
      const until = async (cond: () => boolean, what: string) => {
        const end = Date.now() + 5000;
        while (!cond()) {
          if (Date.now() > end) throw new Error(`timed out: ${what}`);
          await sleep(10);
        }
      };
      await until(() => fromClient.filter((m) => m.type === 'affect').length >= 10, '10 frames through the balancer');
      // The balancer now sends new connections to node B and drops the current one.
      lb.target = b.port;
      lb.cut();
      await send(pa, audio(1000), 1);
      pa.send({ type: 'stop' });
      pb.send({ type: 'stop' });
      await until(() => fromClient.some((m) => m.type === 'status' && m.state === 'ended'), 'end through the balancer (node B)');
      await until(() => got.filter((m) => m.streamId === 'call-a' && m.type === 'affect').length === 20, 'bridge frames');
      await scoped.until(ended('call-a'), 5000, 'scoped end');
      const seqA = fromClient.filter((m) => m.streamId === 'call-a').map((m) => m.seq);
      expect(seqA).toEqual(Array.from({ length: 21 }, (_, i) => i));
      expect(client.stats.reconnects).toBeGreaterThanOrEqual(1);
      // The per-stream scope filtered on node B: call-a only, never call-b.
      expect(scoped.messages.some((m) => 'streamId' in m && m.streamId === 'call-b')).toBe(false);
      expect(seqs(scoped.messages, 'call-a')).toEqual(Array.from({ length: 21 }, (_, i) => i));
      expect(got.filter((m) => m.streamId === 'call-a' && m.type === 'affect').map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      sub.unsubscribe();
      client.close();
      viaB.close();
      bridge.close();
      lb.close();
      await new Promise<void>((r) => void io.close(() => r()));
    }
  });
});
