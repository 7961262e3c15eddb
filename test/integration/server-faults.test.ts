/**
 * The server's fault suite on loopback with real sockets: bad tokens and origins, malformed and
 * oversized messages, rate limits, a paused subscriber (coalescing, then 4008), a dead peer
 * (heartbeat), reconnect-and-resume with zero gaps, per-frame ingest handling, seeded random-byte
 * fuzzing of the ingest, stream-busy, TLS and graceful close.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Subject, delay } from 'rxjs';
import { WebSocket } from 'ws';
import { CLOSE_CODES, SUBPROTOCOL, type IngestReply } from '../../core/protocol.js';
import { float32ToMulaw } from '../../streams/audio.js';
import type { PipelineEvent } from '../../core/types.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { StreamHub } from '../../src/server/hub.js';
import { TestClient, connect, loudnessPipeline, seqGaps, sleep, startServer, toneS16, upgradeStatus } from '../helpers/server-helpers.js';
import { selfSignedCert } from '../helpers/tls-cert.js';
import { until } from '../helpers/until.js';
import { pino } from 'pino';
import { twilioMedia, twilioStart, twilioStop } from '../../src/server/twilio-messages.js';
import { MAX_HEALTHZ_STREAMS } from '../../src/server/handlers/http-routes.js';
import { MAX_SUBSCRIBED_IDS, NEW_STREAM_REPLAY_MS } from '../../src/server/handlers/subscribe.js';
import { MAX_WAITING_AUDIO_S } from '../../src/server/handlers/ingest.js';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await server?.close();
  server = undefined;
});
const track = (c: TestClient) => (clients.push(c), c);

const affect = (id: string, t: number): PipelineEvent => ({
  kind: 'affect',
  point: {
    streamId: id,
    tMs: t,
    valence: 0.3,
    arousal: -0.2,
    confidence: 0.7,
    label: 'serene',
    intensity: 0.36,
    angleDeg: -33.7,
    modalities: ['speech'],
    droppedWindows: 0,
  },
});
const transcript = (id: string, t: number, bytes: number): PipelineEvent => ({
  kind: 'transcript',
  transcript: { streamId: id, tMs: t, text: 'x'.repeat(bytes), final: true, words: [] },
});
const INFO = { streamId: 's', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 };
const replies = (c: TestClient) => c.raw.map((r) => JSON.parse(r) as IngestReply);

describe('server faults: auth and origin (checked in the upgrade)', () => {
  const TOKENS = [
    { token: 'sub-all-0123456', scopes: ['subscribe'] },
    { token: 'sub-only-a-0123', scopes: ['subscribe:a'] },
    { token: 'publisher-01234', scopes: ['publish'] },
    { token: 'metrics-0123456', scopes: ['metrics'] },
  ];

  it('answers 401 for a missing or wrong token and 403 for a missing scope, before any WebSocket opens', async () => {
    server = await startServer({ tokens: TOKENS });
    expect(await upgradeStatus(track(connect(server)))).toBe(401);
    expect(await upgradeStatus(track(connect(server, '/v1/stream?token=wrong-token-xx')))).toBe(401);
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { headers: { Authorization: 'Bearer nope-nope-nope' } })))).toBe(401);
    expect(await upgradeStatus(track(connect(server, '/v1/ingest?token=sub-all-0123456')))).toBe(403);
    expect(await upgradeStatus(track(connect(server, '/v1/stream?token=publisher-01234')))).toBe(403);
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { headers: { Authorization: 'Bearer sub-all-0123456' } })))).toBe(101);
    expect(await upgradeStatus(track(connect(server, '/v1/ingest?token=publisher-01234')))).toBe(101);
    expect((await fetch(`${server.httpUrl}metrics`)).status).toBe(401);
    expect((await fetch(`${server.httpUrl}metrics`, { headers: { Authorization: 'Bearer sub-all-0123456' } })).status).toBe(403);
    const m = await fetch(`${server.httpUrl}metrics`, { headers: { Authorization: 'Bearer metrics-0123456' } });
    expect(m.status).toBe(200);
    const text = await m.text();
    // one upgrade and the token-less GET /metrics
    expect(text).toMatch(/circumplex_refused_total\{reason="missing-token"\} 2/);
    expect(text).toMatch(/circumplex_refused_total\{reason="bad-token"\} 2/);
    // two upgrades and the GET /metrics whose token lacks the metrics scope (it was not counted)
    expect(text).toMatch(/circumplex_refused_total\{reason="scope"\} 3/);
  });

  it('a subscribe:<id> token only ever receives that stream', async () => {
    server = await startServer({ tokens: TOKENS });
    const only = track(connect(server, '/v1/stream?token=sub-only-a-0123'));
    await only.opened;
    only.send({ type: 'subscribe', streamIds: ['*', 'b'] });
    await only.until((c) => c.of('error').length === 1);
    expect(only.of('error')[0]).toMatchObject({ code: 'AFFECT_ERR_AUTH', streamId: 'b', recoverable: true });
    server.hub.openStream({ ...INFO, streamId: 'a' });
    server.hub.openStream({ ...INFO, streamId: 'b' });
    server.publish('b', affect('b', 250));
    server.publish('a', affect('a', 250));
    server.hub.endStream('a');
    await only.until((c) => c.of('status').length === 1);
    expect(only.messages.some((m) => 'streamId' in m && m.streamId === 'b' && m.type !== 'error')).toBe(false);
    expect(only.of('affect').map((a) => a.streamId)).toEqual(['a']);
  });

  it('/healthz needs no token but, with tokens configured, lists only the streams the presented token may subscribe to', async () => {
    // It listed every stream (Twilio call ids included) to anyone, while `hello` showed a subscribe:a token only stream a.
    server = await startServer({ tokens: TOKENS });
    server.hub.openStream({ ...INFO, streamId: 'a' });
    server.hub.openStream({ ...INFO, streamId: 'CA0123:inbound' });
    const ids = async (headers: Record<string, string> = {}, query = '') => {
      const r = await fetch(`${server!.httpUrl}healthz${query}`, { headers });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { status: string; streams: { streamId: string }[] };
      expect(body.status).toBe('ok');
      return body.streams.map((x) => x.streamId).sort();
    };
    expect(await ids()).toEqual([]);
    expect(await ids({ Authorization: 'Bearer wrong-token-xx' })).toEqual([]);
    expect(await ids({}, '?token=sub-only-a-0123')).toEqual(['a']);
    expect(await ids({ Authorization: 'Bearer sub-all-0123456' })).toEqual(['CA0123:inbound', 'a']);
    expect(await ids({ Authorization: 'Bearer metrics-0123456' })).toEqual([]);
    // Without tokens (auth off, loopback) every stream is listed, as before.
    await server.close();
    server = await startServer();
    server.hub.openStream({ ...INFO, streamId: 'a' });
    expect(await ids()).toEqual(['a']);
  });

  it('/healthz stays small with thousands of streams: at most MAX_HEALTHZ_STREAMS listed, live ones first, and every stream counted', async () => {
    // It listed them all: 3000 streams made a 416 KB body, built on the event loop, for every probe.
    server = await startServer();
    for (let i = 0; i < 50; i++) {
      server.hub.openStream({ ...INFO, streamId: `old-${i}` });
      server.hub.endStream(`old-${i}`);
    }
    for (let i = 0; i < 3000; i++) server.hub.openStream({ ...INFO, streamId: `CA${'0'.repeat(32)}${i}:inbound` });
    const r = await fetch(`${server.httpUrl}healthz`);
    const text = await r.text();
    expect(text.length).toBeLessThan(30_000);
    const body = JSON.parse(text) as { streams: { state: string }[]; streamCount: unknown; streamsTruncated?: boolean };
    expect(body.streams).toHaveLength(MAX_HEALTHZ_STREAMS);
    expect(body.streams.every((st) => st.state === 'live')).toBe(true);
    expect(body.streamCount).toEqual({ live: 3000, ended: 50 });
    expect(body.streamsTruncated).toBe(true);
  });

  it('refuses browser origins outside the allowlist (403) and same-origin passes by default', async () => {
    server = await startServer();
    const port = server.port;
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { origin: 'http://evil.example' })))).toBe(403);
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { origin: `http://127.0.0.1:${port}` })))).toBe(101);
    await server.close();
    server = await startServer({ allowedOrigins: ['https://app.example'] });
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { origin: 'https://app.example' })))).toBe(101);
    expect(await upgradeStatus(track(connect(server, '/v1/stream', { origin: `http://127.0.0.1:${server.port}` })))).toBe(403);
  });
});

describe('server faults: malformed, oversized and too many messages', () => {
  it.each([
    ['bad JSON', '{"type":'],
    ['unknown type', JSON.stringify({ type: 'hack' })],
    ['bad field', JSON.stringify({ type: 'subscribe', streamIds: [] })],
  ])('closes a subscriber that sends %s with 1002 after an error message', async (_name, payload) => {
    server = await startServer();
    const c = track(connect(server));
    await c.opened;
    c.send(payload);
    const closed = await c.closed;
    expect(closed.code).toBe(1002);
    expect(c.of('error')[0]).toMatchObject({ code: 'AFFECT_ERR_PROTOCOL', recoverable: false });
  });

  it('closes with 1009 for a message over maxPayload, on both endpoints', async () => {
    server = await startServer({ streamMaxPayloadBytes: 1024, ingestMaxPayloadBytes: 4096 });
    const c = track(connect(server));
    await c.opened;
    c.send(JSON.stringify({ type: 'subscribe', streamIds: ['x'.repeat(100)], pad: 'y'.repeat(2000) }));
    expect((await c.closed).code).toBe(1009);
    const p = track(connect(server, '/v1/ingest'));
    await p.opened;
    p.ws.send(Buffer.alloc(8192));
    expect((await p.closed).code).toBe(1009);
    expect((await fetch(`${server.httpUrl}healthz`)).status).toBe(200);
  });

  it('closes a flooding connection with 4029 and leaves others alone', async () => {
    server = await startServer({ streamRateLimit: { perSec: 5, burst: 10 } });
    const calm = track(connect(server, '/v1/stream?streams=s'));
    const flood = track(connect(server));
    await Promise.all([calm.opened, flood.opened]);
    for (let i = 0; i < 50; i++) flood.send({ type: 'subscribe', streamIds: ['s'] });
    expect((await flood.closed).code).toBe(4029);
    expect(flood.of('error').at(-1)).toMatchObject({ code: 'AFFECT_ERR_RATE_LIMIT' });
    server.hub.openStream(INFO);
    server.publish('s', affect('s', 250));
    await calm.until((c) => c.of('affect').length === 1);
    expect(calm.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('logs a publisher closed over its rate limit once, with its stream id (Twilio: its callSid)', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    server = await startServer({ logger, ingestRateLimit: { perSec: 5, burst: 10 }, onIngestStream: (id, a$) => a$.pipe(loudnessPipeline(id)) });
    const p = track(connect(server, '/v1/ingest'));
    await p.opened;
    p.send({ type: 'start', streamId: 'pub-1', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    for (let i = 0; i < 50; i++) p.ws.send(toneS16(20));
    expect((await p.closed).code).toBe(4029);
    const tw = new WebSocket(`ws://127.0.0.1:${server.port}/v1/telephony/twilio`);
    await new Promise((r) => tw.once('open', r));
    tw.send(twilioStart('CAflood', { tracks: ['inbound'] }));
    const payload = Buffer.alloc(160, 0xff).toString('base64');
    for (let k = 0; k < 50; k++) tw.send(twilioMedia('MZCAflood', 'inbound', k, payload));
    expect(await new Promise((r) => tw.once('close', r))).toBe(4029);
    const limited = lines.filter((l) => l.msg === 'closing a connection over its message rate limit');
    expect(limited).toEqual([
      expect.objectContaining({ endpoint: 'ingest', streamId: 'pub-1' }),
      expect.objectContaining({ endpoint: 'twilio', callSid: 'CAflood' }),
    ]);
  });

  it('subscribes one connection to at most MAX_SUBSCRIBED_IDS stream ids, and says how many it left out', async () => {
    // Unbounded, 256 new ids per message within the rate limit grew the heap ~16 MB every 20 s.
    expect(MAX_SUBSCRIBED_IDS).toBe(1024);
    server = await startServer();
    const c = track(connect(server));
    await c.opened;
    const ids = (from: number) => Array.from({ length: 256 }, (_, i) => `id-${from + i}`);
    for (let k = 0; k < 5; k++) c.send({ type: 'subscribe', streamIds: ids(k * 256) });
    await c.until((x) => x.of('error').length === 1);
    expect(c.of('error')[0]).toMatchObject({ code: 'AFFECT_ERR_PROTOCOL', recoverable: true });
    expect(c.of('error')[0]?.message).toMatch(
      /not subscribed to 256 of the stream ids: a connection may subscribe to at most 1024 ids; unsubscribe some first, or subscribe to "\*"/,
    );
    // Ids it has still count, unsubscribing makes room, and the connection stays open.
    c.send({ type: 'subscribe', streamIds: ['id-0', 'id-1023'] });
    c.send({ type: 'unsubscribe', streamIds: ['id-0'] });
    c.send({ type: 'subscribe', streamIds: ['late'] });
    await sleep(100);
    server.hub.openStream({ ...INFO, streamId: 'late' });
    server.publish('late', affect('late', 250));
    server.hub.openStream({ ...INFO, streamId: 'id-1024' });
    server.publish('id-1024', affect('id-1024', 250));
    await c.until((x) => x.of('affect').length === 1);
    await sleep(50);
    expect(c.of('affect').map((a) => a.streamId)).toEqual(['late']);
    expect(c.of('error')).toHaveLength(1);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('server faults: slow and dead peers', () => {
  it('coalesces affect frames for a paused subscriber (counted in `coalesced`) while others get every frame', async () => {
    server = await startServer({ delivery: { softBufferBytes: 64 * 1024, hardBufferBytes: 256 * 1024 * 1024, maxStallMs: 60_000, slowCloseGraceMs: 5000 } });
    const slow = track(connect(server, '/v1/stream?streams=s'));
    const fast = track(connect(server, '/v1/stream?streams=s'));
    await Promise.all([slow.opened, fast.opened]);
    await slow.until((c) => c.messages.length > 0);
    server.hub.openStream(INFO);
    slow.ws.pause();
    // Fill the paused socket past the soft limit with transcripts (never dropped), then let the fast
    // subscriber drain, so only the paused one is above it. A subscriber's sends leave at the end of
    // the event-loop turn, so the fast one can be the one above the limit when a fill stops, while
    // the paused one's bytes still fit in the kernel's buffers: then fill again.
    let t = 0;
    const srv = server;
    const above = (): number => srv.subscriberStats().filter((s) => s.bufferedBytes > 64 * 1024).length;
    for (let round = 0, i = 0; round < 10 && above() !== 1; round++) {
      for (; i < 400 && above() === 0; i++) {
        server.publish('s', transcript('s', (t += 1), 128 * 1024));
        await sleep(1);
      }
      for (let w = 0; w < 500 && above() !== 1 && !(above() === 0 && w > 0); w++) await sleep(10);
    }
    const fill = server.hub.stream('s')?.lastSeq ?? 0;
    expect(server.subscriberStats().filter((s) => s.bufferedBytes > 64 * 1024)).toHaveLength(1);
    for (let i = 0; i < 100; i++) server.publish('s', affect('s', (t += 250)));
    server.hub.endStream('s');
    await fast.until((c) => c.of('status').length === 1, 20_000, 'fast end');
    expect(fast.of('affect')).toHaveLength(100);
    expect(seqGaps(fast.messages, 's')).toEqual([]);
    slow.ws.resume();
    await slow.until((c) => c.of('status').length === 1, 30_000, 'slow end');
    const got = slow.of('affect');
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ seq: fill + 100, coalesced: 99 });
    expect(slow.of('transcript')).toHaveLength(fill + 1);
    const metrics = await server.metrics.registry.getSingleMetricAsString('circumplex_frames_dropped_total');
    expect(metrics).toMatch(/reason="coalesced"} 99/);
  });

  it('closes a subscriber past the hard buffer limit with 4008; the other subscriber is unaffected', async () => {
    server = await startServer({ delivery: { softBufferBytes: 64 * 1024, hardBufferBytes: 1024 * 1024, maxStallMs: 60_000, slowCloseGraceMs: 10_000 } });
    const slow = track(connect(server, '/v1/stream?streams=s'));
    const fast = track(connect(server, '/v1/stream?streams=s'));
    await Promise.all([slow.opened, fast.opened]);
    await slow.until((c) => c.messages.length > 0);
    server.hub.openStream(INFO);
    slow.ws.pause();
    let n = 0;
    for (; n < 600 && !server.subscriberStats().some((s) => s.closed); n++) {
      server.publish('s', transcript('s', n, 64 * 1024));
      await sleep(1);
    }
    expect(server.subscriberStats().filter((s) => s.closed)).toHaveLength(1);
    server.publish('s', affect('s', n + 1));
    await fast.until((c) => c.of('affect').length === 1, 20_000);
    expect(seqGaps(fast.messages, 's')).toEqual([]);
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
    slow.ws.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(slow.of('error').at(-1)).toMatchObject({ code: 'AFFECT_ERR_SLOW_CONSUMER' });
  });

  it('heartbeat terminates a peer that never answers pings and keeps healthy ones while frames flow', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    server = await startServer({ heartbeatMs: 100, logger });
    const dead = new TestClient(new WebSocket(`ws://127.0.0.1:${server.port}/v1/stream?streams=s`, [SUBPROTOCOL], { autoPong: false }));
    track(dead);
    const healthy = track(connect(server, '/v1/stream?streams=s'));
    await Promise.all([dead.opened, healthy.opened]);
    server.hub.openStream(INFO);
    const started = Date.now();
    let t = 0;
    const timer = setInterval(() => server?.publish('s', affect('s', (t += 250))), 10);
    const closed = await dead.closed;
    const afterMs = Date.now() - started;
    expect(closed.code).toBe(1006); // terminated, no close frame
    expect(afterMs).toBeLessThan(2000);
    await sleep(1000); // ten more heartbeats
    clearInterval(timer);
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
    expect(seqGaps(healthy.messages, 's')).toEqual([]);
    // Counted once, under its endpoint: it was also counted as endpoint="any" besides "abnormal" (1006).
    const closes = await server.metrics.registry.getSingleMetricAsString('circumplex_connections_closed_total');
    expect(closes.split('\n').filter((l) => !l.startsWith('#'))).toEqual(['circumplex_connections_closed_total{endpoint="stream",reason="dead-peer"} 1']);
    expect(lines.filter((l) => /missed its pong/.test(String(l.msg)))).toEqual([expect.objectContaining({ endpoint: 'stream' })]);
  });

  it('counts Twilio calls under endpoint="twilio", apart from /v1/ingest publishers', async () => {
    server = await startServer({ onIngestStream: (id, a$) => a$.pipe(loudnessPipeline(id)) });
    const p = track(connect(server, '/v1/ingest'));
    const tw = new WebSocket(`ws://127.0.0.1:${server.port}/v1/telephony/twilio`);
    await Promise.all([p.opened, new Promise((r) => tw.once('open', r))]);
    const series = async (name: string) => (await server!.metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));
    expect(await series('circumplex_connections')).toEqual(['circumplex_connections{endpoint="ingest"} 1', 'circumplex_connections{endpoint="twilio"} 1']);
    tw.send(twilioStart('CAends'));
    tw.send(twilioStop('MZCAends'));
    expect(await new Promise((r) => tw.once('close', r))).toBe(1000);
    await until(async () => (await series('circumplex_connections')).includes('circumplex_connections{endpoint="twilio"} 0'));
    expect(await series('circumplex_connections_closed_total')).toEqual(['circumplex_connections_closed_total{endpoint="twilio",reason="normal"} 1']);
  });

  it('counts a Twilio message that breaks the protocol as a rejected frame with its reason; a refused call is no rejected frame', async () => {
    server = await startServer({ maxIngestStreams: 1, onIngestStream: (id, a$) => a$.pipe(loudnessPipeline(id)) });
    const call = async (send: (ws: WebSocket) => void) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server!.port}/v1/telephony/twilio`);
      await new Promise((r) => ws.once('open', r));
      send(ws);
      return new Promise<number>((r) => ws.once('close', r));
    };
    expect(await call((ws) => ws.send('{not json'))).toBe(1002);
    expect(await call((ws) => ws.send(JSON.stringify({ event: 'media', streamSid: 'MZ1', media: { track: 'inbound', payload: '' } })))).toBe(1002);
    // Two tracks, capacity one: refused (counted in circumplex_refused_total only).
    expect(await call((ws) => ws.send(twilioStart('CAfull')))).toBe(CLOSE_CODES.overCapacity);
    const series = async (name: string) => (await server!.metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));
    expect(await series('circumplex_ingest_frames_total')).toEqual(['circumplex_ingest_frames_total{result="rejected"} 2']);
    expect(await series('circumplex_ingest_rejected_total')).toEqual([
      'circumplex_ingest_rejected_total{reason="bad-json"} 1',
      'circumplex_ingest_rejected_total{reason="not-started"} 1',
    ]);
    expect(await series('circumplex_refused_total')).toEqual(['circumplex_refused_total{reason="over-capacity"} 1']);
  });

  it('counts closes with codes a client picks (3000–4999) under one reason, not one time series per code', async () => {
    server = await startServer();
    for (let code = 3000; code < 3020; code++) {
      const c = track(connect(server, '/v1/stream?streams=s'));
      await c.opened;
      c.ws.close(code, 'bye');
      await c.closed;
    }
    const closed = async () => (await server?.metrics.closes.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;
    await until(async () => (await closed()) === 20);
    const closes = await server.metrics.registry.getSingleMetricAsString('circumplex_connections_closed_total');
    expect(closes.split('\n').filter((l) => !l.startsWith('#'))).toEqual(['circumplex_connections_closed_total{endpoint="stream",reason="application"} 20']);
  });
});

describe('server faults: reconnect and resume', () => {
  it('replays every missed frame still in the ring, then `resumed`, then live frames, with zero gaps and no duplicates', async () => {
    server = await startServer({ ringSize: 64 });
    const events = new Subject<PipelineEvent>();
    server.attach(INFO, events);
    let t = 0;
    const c1 = track(connect(server, '/v1/stream?streams=s'));
    await c1.opened;
    for (let i = 0; i < 10; i++) events.next(affect('s', (t += 250)));
    await c1.until((c) => c.of('affect').length === 10);
    const last = c1.of('affect').at(-1)?.seq ?? -1;
    c1.ws.terminate(); // abrupt loss
    for (let i = 0; i < 30; i++) events.next(i === 15 ? transcript('s', t, 10) : affect('s', (t += 250)));
    const c2 = track(connect(server));
    await c2.opened;
    c2.send({ type: 'subscribe', streamIds: ['s'], resumeFrom: { s: last } });
    await c2.until((c) => c.of('resumed').length === 1);
    for (let i = 0; i < 5; i++) events.next(affect('s', (t += 250)));
    events.complete();
    await c2.until((c) => c.of('status').length === 1);
    const seqs = [...c1.messages, ...c2.messages]
      .filter((m) => m.type === 'affect' || m.type === 'transcript' || m.type === 'status')
      .map((m) => (m as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 46 }, (_, i) => i));
    expect(c2.of('resumed')[0]).toMatchObject({ streamId: 's', fromSeq: last, missed: 0 });
    const idx = c2.messages.findIndex((m) => m.type === 'resumed');
    expect(c2.messages.slice(idx + 1).every((m) => m.type !== 'affect' || m.seq > 39)).toBe(true);
  });

  it('reports frames that fell out of the ring as `missed`', async () => {
    server = await startServer({ ringSize: 8 });
    server.hub.openStream(INFO);
    for (let i = 0; i < 20; i++) server.publish('s', affect('s', i * 250));
    const c = track(connect(server));
    await c.opened;
    c.send({ type: 'subscribe', streamIds: ['s'], resumeFrom: { s: 3 } });
    await c.until((x) => x.of('resumed').length === 1);
    expect(c.of('affect').map((a) => a.seq)).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    expect(c.of('resumed')[0]).toMatchObject({ missed: 8 });
  });

  it('a stream id used again after the hub forgot the old stream is delivered from seq 0 to a subscriber that saw the old one', async () => {
    // The subscriber kept the old stream's last seq and dropped the new stream's messages up to it.
    const hub = new StreamHub({ ringSize: 64, maxEndedStreams: 1 });
    server = await startServer({ hub });
    const c = track(connect(server, '/v1/stream?streams=*'));
    await c.opened;
    hub.openStream({ ...INFO, streamId: 'mic' });
    for (let i = 0; i < 5; i++) server.publish('mic', affect('mic', i * 250));
    hub.endStream('mic');
    for (const id of ['x1', 'x2']) {
      hub.openStream({ ...INFO, streamId: id });
      hub.endStream(id);
    }
    expect(hub.stream('mic')).toBeUndefined(); // forgotten: beyond maxEndedStreams
    hub.openStream({ ...INFO, streamId: 'mic' });
    for (let i = 0; i < 8; i++) server.publish('mic', affect('mic', i * 250));
    await c.until((x) => x.of('affect').length === 13);
    expect(c.of('affect').map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a subscribe right after hello gets the streams that opened since the hello from their first message; streams the hello listed stay live-only', async () => {
    // What a new stream published during the hello → subscribe round trip used to be lost: the client could not resume a stream it did not know.
    server = await startServer();
    server.hub.openStream({ ...INFO, streamId: 'early' });
    server.publish('early', affect('early', 250));
    const c = track(connect(server));
    await c.opened;
    server.hub.openStream({ ...INFO, streamId: 'late' });
    for (let i = 1; i <= 3; i++) server.publish('late', affect('late', i * 250));
    c.send({ type: 'subscribe', streamIds: ['*'] });
    await c.until((x) => x.of('resumed').length === 1);
    expect(c.of('resumed')[0]).toMatchObject({ streamId: 'late', fromSeq: -1, missed: 0 });
    server.publish('late', affect('late', 1000));
    server.publish('early', affect('early', 500));
    await c.until((x) => x.of('affect').length === 5);
    expect(c.of('affect').map((m) => `${m.streamId}:${m.seq}`)).toEqual(['late:0', 'late:1', 'late:2', 'late:3', 'early:1']);
    // A later subscribe (past NEW_STREAM_REPLAY_MS) is live from then on, as before.
    const d = track(connect(server));
    await d.opened;
    server.hub.openStream({ ...INFO, streamId: 'later' });
    server.publish('later', affect('later', 250));
    vi.useFakeTimers({ now: Date.now() + NEW_STREAM_REPLAY_MS + 1, toFake: ['Date'] });
    try {
      d.send({ type: 'subscribe', streamIds: ['later'] });
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      vi.useRealTimers();
    }
    server.publish('later', affect('later', 500));
    await d.until((x) => x.of('affect').length === 1);
    expect(d.of('affect').map((m) => m.seq)).toEqual([1]);
    expect(d.of('resumed')).toEqual([]);
  });

  it('a resume for a stream the server does not know (a client from an earlier run) holds nothing of the stream that opens later', async () => {
    // It held back every seq up to fromSeq: after a server restart, a reconnecting client lost the new stream's first fromSeq + 1 messages.
    server = await startServer();
    const c = track(connect(server));
    await c.opened;
    c.send({ type: 'subscribe', streamIds: ['s'], resumeFrom: { s: 40 } });
    await c.until((x) => x.of('resumed').length === 1);
    expect(c.of('resumed')[0]).toMatchObject({ streamId: 's', fromSeq: 40, missed: 0 });
    const events = new Subject<PipelineEvent>();
    server.attach(INFO, events);
    for (let i = 0; i < 5; i++) events.next(affect('s', i * 250));
    events.complete();
    await c.until((x) => x.of('status').length === 1);
    expect([...c.of('affect'), ...c.of('status')].map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    // A known stream still holds back what the client says it has (no duplicates).
    const d = track(connect(server));
    await d.opened;
    d.send({ type: 'subscribe', streamIds: ['s'], resumeFrom: { s: 2 } });
    await d.until((x) => x.of('resumed').length === 1);
    expect([...d.of('affect'), ...d.of('status')].map((m) => m.seq)).toEqual([3, 4, 5]);
  });
});

describe('server faults: ingest frames', () => {
  async function publisher(s: RunningServer): Promise<TestClient> {
    const p = track(connect(s, '/v1/ingest'));
    await p.opened;
    return p;
  }
  /** A publisher that sent 1 s on `streamId` and stopped (its pipeline may still be finishing); returns its start message. */
  async function publishedAndStopped(s: RunningServer, streamId: string): Promise<Record<string, unknown>> {
    const start = { type: 'start', streamId, encoding: 's16le', sampleRateHz: 16000, channels: 1 };
    const a = await publisher(s);
    a.send(start);
    a.ws.send(toneS16(1000));
    a.send({ type: 'stop' });
    await a.until((c) => replies(c).some((r) => r.type === 'stopped'));
    return start;
  }
  const pipelineServer = () => startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });

  it('resamples, downmixes, strips WAV headers, decodes mu-law, and rejects empty/odd/early frames with codes', async () => {
    server = await pipelineServer();
    const sub = track(connect(server, '/v1/stream?streams=*'));
    await sub.opened;
    const p = await publisher(server);
    p.ws.send(toneS16(20)); // audio before start
    p.send({ type: 'start', streamId: 'tel', encoding: 's16le', sampleRateHz: 8000, channels: 2 });
    // 1 s of 8 kHz stereo in 20 ms frames → resampled + downmixed → 10 frames at 100 ms hop
    const stereo = toneS16(1000, 8000, 2);
    for (let i = 0; i < stereo.length; i += 640) p.ws.send(stereo.subarray(i, i + 640));
    p.ws.send(Buffer.alloc(0)); // empty
    p.ws.send(Buffer.alloc(641)); // odd byte count
    p.send({ type: 'audio', payload: '!!notbase64!!' });
    p.send('{oops');
    p.send({ type: 'stop' });
    await p.closed;
    await sub.until((c) => c.of('status').some((s) => s.state === 'ended'));
    const r = replies(p);
    const errors = r.filter((x): x is Extract<IngestReply, { type: 'error' }> => x.type === 'error');
    expect(errors.map((e) => [e.reason, e.code, e.frame])).toEqual([
      ['not-started', 'AFFECT_ERR_PROTOCOL', 0],
      // frame 1 is start, 2..51 the 50 audio frames
      ['empty', 'AFFECT_ERR_AUDIO_FORMAT', 52],
      ['misaligned', 'AFFECT_ERR_AUDIO_FORMAT', 53],
      ['bad-base64', 'AFFECT_ERR_PROTOCOL', 54],
      ['bad-json', 'AFFECT_ERR_PROTOCOL', 55],
    ]);
    expect(r.at(-1)).toMatchObject({ type: 'stopped', framesAccepted: 50, framesRejected: 5 });
    // 8000 samples at 8 kHz → ~16000 at 16 kHz → 9 or 10 whole 100 ms frames (the resampler may keep one sample back).
    expect(sub.of('affect').length).toBeGreaterThanOrEqual(9);
    expect(sub.of('affect').length).toBeLessThanOrEqual(10);
    const m = await server.metrics.registry.getSingleMetricAsString('circumplex_ingest_rejected_total');
    for (const reason of ['not-started', 'empty', 'misaligned', 'bad-base64', 'bad-json']) expect(m).toContain(`reason="${reason}"} 1`);
  });

  it('takes the format from a WAV header, counts NaN/Inf and clipping in f32le, and decodes 8 kHz mu-law', async () => {
    server = await pipelineServer();
    const sub = track(connect(server, '/v1/stream?streams=*'));
    await sub.opened;
    // WAV header saying 16 kHz mono s16le while start declared 8 kHz stereo.
    const p = await publisher(server);
    p.send({ type: 'start', streamId: 'wav', encoding: 's16le', sampleRateHz: 8000, channels: 2 });
    const pcm = toneS16(500);
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + pcm.length, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(16000, 24);
    header.writeUInt32LE(32000, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(pcm.length, 40);
    p.ws.send(Buffer.concat([header, pcm]));
    p.send({ type: 'stop' });
    await p.closed;
    expect(replies(p).find((x) => x.type === 'error')).toMatchObject({ reason: 'wav-header', recoverable: true });
    await sub.until((c) => c.of('affect').filter((a) => a.streamId === 'wav').length === 5);

    const f = await publisher(server);
    f.send({ type: 'start', streamId: 'float', encoding: 'f32le', sampleRateHz: 16000, channels: 1 });
    const floats = new Float32Array(1600).fill(0.25);
    floats[0] = Number.NaN;
    floats[1] = Number.POSITIVE_INFINITY;
    floats[2] = 3;
    floats[3] = -2;
    f.ws.send(Buffer.from(floats.buffer));
    f.send({ type: 'stop' });
    await f.closed;
    expect(replies(f).at(-1)).toMatchObject({ type: 'stopped', framesAccepted: 1, samplesNonFinite: 2, samplesClipped: 2 });
    await sub.until((c) => c.of('affect').some((a) => a.streamId === 'float'));
    const fa = sub.of('affect').find((a) => a.streamId === 'float');
    expect(Number.isFinite(fa?.arousal)).toBe(true);

    const mu = await publisher(server);
    mu.send({ type: 'start', streamId: 'mulaw', encoding: 'mulaw', sampleRateHz: 8000, channels: 1 });
    const tone = new Float32Array(8000).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 300 * i) / 8000));
    const bytes = Buffer.from(float32ToMulaw(tone));
    for (let i = 0; i < bytes.length; i += 160) mu.send({ type: 'audio', payload: bytes.subarray(i, i + 160).toString('base64') });
    mu.send({ type: 'stop' });
    await mu.closed;
    expect(replies(mu).at(-1)).toMatchObject({ type: 'stopped', framesAccepted: 50, framesRejected: 0 });
    await sub.until((c) => c.of('status').filter((s) => s.state === 'ended').length === 3);
    const muFrames = sub.of('affect').filter((a) => a.streamId === 'mulaw');
    expect(muFrames.length).toBeGreaterThanOrEqual(9);
    // A 0.5-amplitude tone has RMS ≈ 0.354 → arousal ≈ 0.41 in the loudness pipeline: decoded, not garbage.
    expect(muFrames[3]?.arousal).toBeCloseTo(4 * 0.5 * Math.SQRT1_2 - 1, 1);
    const m = await server.metrics.registry.getSingleMetricAsString('circumplex_ingest_samples_repaired_total');
    expect(m).toMatch(/kind="non_finite"} 2/);
  });

  it('survives seeded random-byte fuzzing: every frame is accepted or answered with an error, and the server keeps serving', async () => {
    server = await pipelineServer();
    let seed = 0x5eed1234;
    const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const frames: { data: Buffer; binary: boolean }[] = [];
    const starts = [
      JSON.stringify({ type: 'start', streamId: 'fz', encoding: 's16le', sampleRateHz: 11025, channels: 3 }),
      JSON.stringify({ type: 'start', streamId: 'fz', encoding: 'f32le', sampleRateHz: 44100, channels: 2 }),
    ];
    for (let i = 0; i < 600; i++) {
      const kind = rand();
      const len = Math.floor(rand() * 3000);
      const bytes = Buffer.alloc(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
      if (i % 200 === 1) frames.push({ data: Buffer.from(starts[Math.floor(rand() * 2)] ?? ''), binary: false });
      else if (kind < 0.5) frames.push({ data: bytes, binary: true });
      else if (kind < 0.7) frames.push({ data: bytes, binary: false });
      else if (kind < 0.85) frames.push({ data: Buffer.from(JSON.stringify({ type: 'audio', payload: bytes.toString('base64') })), binary: false });
      else
        frames.push({
          data: Buffer.from(
            JSON.stringify({ type: ['start', 'audio', 'subscribe', 'x'][Math.floor(rand() * 4)], payload: rand() > 0.5 ? 1 : 'a=b', streamId: 'fz' }),
          ),
          binary: false,
        });
    }
    // Several connections, each fed a slice, so stop/start sequences vary.
    let controlReplies = 0;
    for (let k = 0; k < 3; k++) {
      const p = await publisher(server);
      const slice = frames.slice(k * 200, (k + 1) * 200);
      for (const f of slice) p.ws.send(f.data, { binary: f.binary });
      p.send({ type: 'stop' });
      await Promise.race([p.closed, p.until((c) => c.raw.length >= 1 && replies(c).some((r) => r.type === 'stopped'), 10_000).catch(() => undefined)]);
      p.ws.close();
      await p.closed;
      for (const r of replies(p)) expect(['started', 'error', 'stopped']).toContain(r.type);
      // Invalid UTF-8 in text frames costs a frame, not the connection: the publisher closed it itself.
      expect([1000, 1005]).toContain((await p.closed).code);
      expect(replies(p).filter((r) => r.type === 'error').length).toBeGreaterThan(50);
      controlReplies += replies(p).filter((r) => r.type === 'started' || r.type === 'stopped').length;
    }
    const h = await fetch(`${server.httpUrl}healthz`);
    expect(h.status).toBe(200);
    const accepted = Number(/result="accepted"} (\d+)/.exec(await server.metrics.registry.getSingleMetricAsString('circumplex_ingest_frames_total'))?.[1] ?? 0);
    const rejected = Number(/result="rejected"} (\d+)/.exec(await server.metrics.registry.getSingleMetricAsString('circumplex_ingest_frames_total'))?.[1] ?? 0);
    expect(rejected).toBeGreaterThan(100);
    // Every one of the 603 frames (600 + 3 stops) was accepted as audio, rejected with an error, or
    // answered as a control message (started/stopped): nothing vanished.
    expect(accepted + rejected + controlReplies).toBe(603);
    // Afterwards a well-behaved publisher still works.
    const sub = track(connect(server, '/v1/stream?streams=ok'));
    await sub.opened;
    const good = await publisher(server);
    good.send({ type: 'start', streamId: 'ok', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    good.ws.send(toneS16(300));
    good.send({ type: 'stop' });
    await sub.until((c) => c.of('affect').length === 3);
    for (const a of sub.of('affect')) expect(Number.isFinite(a.valence) && Number.isFinite(a.arousal)).toBe(true);
  });

  it('a failing pipeline ends its stream with an error status, closes its publisher with 1011, and nothing else', async () => {
    const { concat, take, throwError } = await import('rxjs');
    const { AffectError } = await import('../../core/errors.js');
    server = await startServer({
      onIngestStream: (id, audio$) =>
        id === 'bad'
          ? concat(
              audio$.pipe(loudnessPipeline(id, 100), take(2)),
              throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'model crashed', { stage: 'speech-model' })),
            )
          : audio$.pipe(loudnessPipeline(id, 100)),
    });
    const sub = track(connect(server, '/v1/stream?streams=*'));
    await sub.opened;
    const good = await publisher(server);
    good.send({ type: 'start', streamId: 'good', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    const bad = await publisher(server);
    bad.send({ type: 'start', streamId: 'bad', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    bad.ws.send(toneS16(500));
    expect((await bad.closed).code).toBe(1011);
    expect(replies(bad).at(-1)).toMatchObject({ type: 'error', code: 'AFFECT_ERR_INFERENCE', recoverable: false });
    good.ws.send(toneS16(300));
    good.send({ type: 'stop' });
    await sub.until((c) => c.of('status').filter((m) => m.state === 'ended').length === 2);
    expect(
      sub
        .of('status')
        .filter((m) => m.streamId === 'bad')
        .map((m) => m.state),
    ).toEqual(['error', 'ended']);
    expect(sub.of('error')[0]).toMatchObject({ code: 'AFFECT_ERR_INFERENCE', streamId: 'bad' });
    expect(sub.of('affect').filter((m) => m.streamId === 'bad')).toHaveLength(2);
    expect(sub.of('affect').filter((m) => m.streamId === 'good')).toHaveLength(3);
    expect(seqGaps(sub.messages, 'bad')).toEqual([]);
    expect((await fetch(`${server.httpUrl}healthz`)).status).toBe(200);
  });

  it('refuses a second publisher for a live stream id with 1008', async () => {
    server = await pipelineServer();
    const a = await publisher(server);
    a.send({ type: 'start', streamId: 'dup', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    await a.until((c) => c.raw.length === 1);
    const b = await publisher(server);
    b.send({ type: 'start', streamId: 'dup', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    expect((await b.closed).code).toBe(1008);
    expect(replies(b)[0]).toMatchObject({ type: 'error', reason: 'stream-busy' });
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('a publisher reconnecting while the previous pipeline of its stream still finishes continues the stream: nothing of it is lost', async () => {
    // The old pipeline's end used to end the stream under the new publisher: its frames were all dropped (after_end), silently.
    server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100), delay(300)) });
    const sub = track(connect(server, '/v1/stream?streams=*'));
    await sub.opened;
    const start = await publishedAndStopped(server, 're');
    const b = await publisher(server);
    b.send(start);
    b.ws.send(toneS16(1000));
    b.send({ type: 'stop' });
    await sub.until((c) => c.of('status').filter((m) => m.state === 'ended').length === 2, 5000, 'both ends');
    expect(replies(b).map((r) => r.type)).toEqual(['started', 'stopped']);
    const stream = sub.messages.filter((m) => m.type === 'affect' || m.type === 'status');
    // A's 10 frames and its end, then B's 10 frames and its end, one seq counter.
    expect(stream.map((m) => (m.type === 'status' ? m.state : m.type))).toEqual([
      ...Array<string>(10).fill('affect'),
      'ended',
      ...Array<string>(10).fill('affect'),
      'ended',
    ]);
    expect(seqGaps(sub.messages, 're')).toEqual([]);
    expect(await server.metrics.registry.getSingleMetricAsString('circumplex_frames_dropped_total')).not.toMatch(/after_end/);
  });

  it('bounds the audio a publisher may send while its stream waits to open: past MAX_WAITING_AUDIO_S it is closed with 1008', async () => {
    expect(MAX_WAITING_AUDIO_S).toBe(30);
    server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100), delay(300)) });
    const start = await publishedAndStopped(server, 'bk');
    const b = await publisher(server);
    b.send(start);
    for (let i = 0; i < 2; i++) b.ws.send(toneS16(20_000)); // 40 s at once, while A's last audio is still analysed
    expect(await b.closed).toMatchObject({ code: 1008, reason: 'backlog' });
    expect(replies(b).at(-1)).toMatchObject({ type: 'error', reason: 'backlog', recoverable: false });
    expect(JSON.stringify(replies(b).at(-1))).toMatch(/more than 30 s of audio arrived before the stream could open/);
    expect(await server.metrics.registry.getSingleMetricAsString('circumplex_ingest_rejected_total')).toMatch(/reason="backlog"} 1/);
    // The id is free again: a real-time publisher takes the stream over.
    await sleep(400);
    const c = await publisher(server);
    c.send(start);
    c.ws.send(toneS16(500));
    c.send({ type: 'stop' });
    await c.until((x) => replies(x).some((r) => r.type === 'stopped'));
    expect(replies(c).map((r) => r.type)).toEqual(['started', 'stopped']);
  });
});

describe('server: TLS and shutdown', () => {
  let certDir = '';
  beforeAll(() => {
    certDir = mkdtempSync(path.join(os.tmpdir(), 'tls-'));
    selfSignedCert(certDir);
  });

  it('serves wss from cert/key files', async () => {
    server = await startServer({ tls: { certFile: path.join(certDir, 'cert.pem'), keyFile: path.join(certDir, 'key.pem') } });
    expect(server.url).toMatch(/^wss:\/\//);
    const c = track(connect(server, '/v1/stream', { scheme: 'wss', rejectUnauthorized: false }));
    await c.opened;
    await c.until((x) => x.of('hello').length === 1);
    const plain = track(connect(server));
    expect(await upgradeStatus(plain)).not.toBe(101);
  });

  it('close() stops accepting, sends 1001 to every client and finishes within its timeout', async () => {
    server = await startServer({ closeTimeoutMs: 1000 });
    const cs = [track(connect(server)), track(connect(server)), track(connect(server, '/v1/ingest'))];
    await Promise.all(cs.map((c) => c.opened));
    const stuck = new TestClient(new WebSocket(`ws://127.0.0.1:${server.port}/v1/stream`, [SUBPROTOCOL]));
    track(stuck);
    await stuck.opened;
    stuck.ws.pause(); // never answers the close handshake
    const t0 = Date.now();
    await server.close('bye');
    expect(Date.now() - t0).toBeLessThan(3000);
    for (const c of cs) expect((await c.closed).code).toBe(1001);
    expect(await upgradeStatus(track(connect(server)))).toBe(-1); // connection refused
    server = undefined;
  });

  it('close(reason) with a reason longer than a close frame holds still closes every client with 1001', async () => {
    // ws throws on a close reason over 123 bytes: close() rejected, and every client stayed connected.
    server = await startServer({ closeTimeoutMs: 1000 });
    const cs = [track(connect(server)), track(connect(server, '/v1/ingest'))];
    await Promise.all(cs.map((c) => c.opened));
    await server.close(`maintenance: ${'ü'.repeat(100)}`);
    for (const c of cs) {
      const closed = await c.closed;
      expect(closed.code).toBe(1001);
      expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
      expect(closed.reason).toMatch(/^maintenance: ü+$/);
    }
    server = undefined;
  });
});

describe('server: an app that starts and closes servers', () => {
  it('a start that fails (port in use, unreadable TLS file) leaves no timer running and no listener on a given hub', async () => {
    server = await startServer();
    const hub = new StreamHub();
    let listening = 0;
    const subscribe = hub.subscribe.bind(hub);
    hub.subscribe = (l) => {
      listening++;
      const off = subscribe(l);
      return () => (listening--, off());
    };
    const set = vi.spyOn(globalThis, 'setInterval');
    const clear = vi.spyOn(globalThis, 'clearInterval');
    try {
      for (let i = 0; i < 3; i++) await expect(startServer({ port: server.port, hub })).rejects.toThrow(/EADDRINUSE/);
      await expect(startServer({ hub, tls: { certFile: '/nonexistent.pem', keyFile: '/nonexistent.pem' } })).rejects.toThrow(/cannot read TLS certificate/);
      // Each failed start used to leave its heartbeat and its 25 ms flush tick running, holding the
      // server, and its fan-out listening on the hub it was given.
      const running = set.mock.results.map((r) => r.value as unknown).filter((t) => !clear.mock.calls.some(([c]) => c === t));
      expect(running).toHaveLength(0);
      expect(listening).toBe(0);
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
  });

  it('a closed server can be garbage-collected (its metrics held it, and an event-loop monitor, for good)', async () => {
    // prom-client's default metrics (a GC observer and an event-loop monitor) cannot be stopped, and
    // were collected into each server's registry: each closed server (hub and rings too) stayed reachable.
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // In a function of its own, so no variable of the test's frame still points at the last server.
    const cycle = async (): Promise<WeakRef<object>> => {
      const s = await startServer();
      expect(await (await fetch(`${s.httpUrl}metrics`)).text()).toMatch(/nodejs_eventloop_lag_seconds/);
      await s.close();
      return new WeakRef(s.hub);
    };
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 10; i++) refs.push(await cycle());
    for (let i = 0; i < 3; i++) {
      await sleep(20); // WeakRefs hold their targets until the job that made them ends; handles close in a later turn
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });
});

describe('server: options an embedding app gets wrong', () => {
  it('AffectServer.start refuses them, naming the option, instead of starting and failing later', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      // Announced at every ingest start: hopMs -1 threw out of the socket handler and ended the process.
      [{ ingestStreamTiming: { hopMs: -1, windowMs: 1000 } }, /ingestStreamTiming\.hopMs must be > 0, got -1/],
      [{ ingestStreamTiming: { hopMs: 250, windowMs: 0 } }, /ingestStreamTiming\.windowMs must be > 0, got 0/],
      // Timers past 2^31-1 ms fire after 1 ms: a flush loop every millisecond, slow subscribers terminated at once.
      [{ flushIntervalMs: 1e12 }, /flushIntervalMs must be <= 2147483647/],
      [{ delivery: { slowCloseGraceMs: 1e12 } }, /delivery\.slowCloseGraceMs must be <= 2147483647/],
      [{ delivery: { maxStallMs: -1 } }, /delivery\.maxStallMs must be > 0/],
      // The CLI's token rules held only for CIRCUMPLEX_TOKENS and --tokens-file; in code a 1-character
      // token, an unknown scope or a string (TypeError 'opts.tokens.map is not a function') got through.
      [{ tokens: [{ token: 'a', scopes: ['subscribe'] }] }, /tokens\[0\]\.token must be a string of at least 8 characters/],
      [{ tokens: [{ token: 'abcdefgh12', scopes: ['fly'] }] }, /tokens\[0\]: unknown scope "fly"/],
      [{ tokens: 'abcdefgh12:subscribe' }, /tokens must be an array of \{ token, scopes \}/],
      [{ onIngestStream: 'pipeline' }, /onIngestStream must be a function/],
      [{ host: 5 }, /host must be a host name or address, got 5/],
      [{ allowedOrigins: 'https://app.example.com' }, /allowedOrigins must be an array of origins/],
    ];
    for (const [opts, message] of bad) {
      await expect(startServer(opts as never), JSON.stringify(opts)).rejects.toThrow(message);
    }
  });
});
