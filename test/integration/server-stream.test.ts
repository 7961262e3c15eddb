/**
 * The live server end to end on loopback with real sockets: hello, ordered gapless affect frames
 * from a real ingest publisher, value ranges checked with the protocol's own schema, subprotocol
 * negotiation, /healthz, /metrics and the dashboard files.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PROTOCOL_VERSION, SUBPROTOCOL, ServerMessageSchema } from '../../core/protocol.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import type { PipelineEvent } from '../../core/types.js';
import { affectFrame } from '../helpers/affect-frame.js';
import { connect, loudnessPipeline, seqGaps, startServer, toneS16, type TestClient } from '../helpers/server-helpers.js';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await server?.close();
  server = undefined;
});
const track = (c: TestClient) => (clients.push(c), c);

describe('server: /v1/stream fed by /v1/ingest', () => {
  it('delivers hello, then every affect frame in order with no seq gaps and values in range', async () => {
    server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const sub = track(connect(server));
    await sub.opened;
    expect(sub.ws.protocol).toBe(SUBPROTOCOL);
    await sub.until((c) => c.messages.length >= 1, 5000, 'hello');
    const hello = sub.messages[0];
    expect(hello).toMatchObject({ type: 'hello', version: PROTOCOL_VERSION, sessionId: server.sessionId, streams: [] });
    sub.send({ type: 'subscribe', streamIds: ['*'] });

    const pub = track(connect(server, '/v1/ingest'));
    await pub.opened;
    pub.send({ type: 'start', streamId: 'call-1', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    await pub.until((c) => c.raw.some((r) => r.includes('"started"')), 5000, 'started');
    // 2 s of audio in 20 ms frames, binary and base64-in-JSON alternating: 20 frames of 100 ms hop.
    const audio = toneS16(2000);
    for (let i = 0, f = 0; i < audio.length; i += 640, f++) {
      const frame = audio.subarray(i, i + 640);
      if (f % 2 === 0) pub.ws.send(frame);
      else pub.send({ type: 'audio', payload: frame.toString('base64') });
    }
    pub.send({ type: 'stop' });
    await sub.until((c) => c.of('status').some((s) => s.state === 'ended'), 10_000, 'ended status');

    for (const m of sub.messages) expect(() => ServerMessageSchema.parse(m)).not.toThrow();
    const affect = sub.of('affect');
    expect(affect).toHaveLength(20);
    expect(affect.map((a) => a.tMs)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100));
    expect(affect.every((a) => a.arousal > -1 && a.arousal < 1 && a.streamId === 'call-1')).toBe(true);
    expect(affect.map((a) => a.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seqGaps(sub.messages, 'call-1')).toEqual([]);
    expect(sub.of('stream')[0]?.stream).toMatchObject({ streamId: 'call-1', state: 'live', hopMs: 250 });
    expect((await pub.closed).code).toBe(1000);
    const stopped = pub.raw.map((r) => JSON.parse(r) as { type: string }).find((r) => r.type === 'stopped');
    expect(stopped).toMatchObject({ streamId: 'call-1', framesAccepted: 100, framesRejected: 0 });
    expect(server.hub.stream('call-1')).toMatchObject({ state: 'ended', lastSeq: 20 });
    // Every frame's latency (audio arrival → publication) went into the histogram.
    const hist = await server.metrics.registry.getSingleMetricAsString('circumplex_inference_latency_seconds');
    expect(hist).toMatch(/circumplex_inference_latency_seconds_count 20/);
  });

  it('serves attached pipelines to several subscribers, filtered by stream id', async () => {
    server = await startServer();
    const a = track(connect(server, '/v1/stream?streams=a'));
    const all = track(connect(server));
    await Promise.all([a.opened, all.opened]);
    all.send({ type: 'subscribe', streamIds: ['a', 'b'] });
    await all.until((c) => c.messages.length >= 1);
    const { Subject } = await import('rxjs');
    const ea = new Subject<import('../../core/types.js').PipelineEvent>();
    const eb = new Subject<import('../../core/types.js').PipelineEvent>();
    server.attach({ streamId: 'a', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 }, ea);
    server.attach({ streamId: 'b', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 }, eb);
    const ev = (id: string, t: number) => ({
      kind: 'affect' as const,
      point: {
        streamId: id,
        tMs: t,
        valence: 0.1,
        arousal: 0.2,
        confidence: 0.9,
        label: 'x',
        intensity: 0.2,
        angleDeg: 63,
        modalities: ['speech' as const],
        droppedWindows: 0,
      },
    });
    for (let i = 1; i <= 50; i++) {
      ea.next(ev('a', i * 250));
      eb.next(ev('b', i * 250));
      if (i === 25) ea.next({ kind: 'transcript', transcript: { streamId: 'a', tMs: i * 250, text: 'hello there', final: true, words: [] } });
    }
    // A NaN from a buggy stage is dropped and counted, never sent, and costs no seq.
    ea.next(ev('a', Number.NaN));
    ea.complete();
    eb.complete();
    await all.until((c) => c.of('status').filter((s) => s.state === 'ended').length === 2);
    await a.until((c) => c.of('status').some((s) => s.state === 'ended'));
    expect(a.messages.filter((m) => 'streamId' in m && m.streamId === 'b')).toEqual([]);
    expect(a.of('affect')).toHaveLength(50);
    expect(a.of('transcript')).toHaveLength(1);
    expect(seqGaps(a.messages, 'a')).toEqual([]);
    expect(seqGaps(all.messages, 'a')).toEqual([]);
    expect(seqGaps(all.messages, 'b')).toEqual([]);
    expect(all.of('affect')).toHaveLength(100);
    const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_frames_dropped_total\{reason="invalid"\} 1/);
    expect(metrics).toMatch(/circumplex_frames_published_total\{type="affect"\} 100/);
    expect(metrics).toMatch(/nodejs_eventloop_lag_seconds/);
  });

  it('an attached pipeline stopped early (unsubscribed) ends its stream: subscribers get the final status, the hub forgets it in time', async () => {
    server = await startServer();
    const all = track(connect(server, '/v1/stream?streams=*'));
    await all.opened;
    await all.until((c) => c.messages.length >= 1);
    const { NEVER } = await import('rxjs');
    const info = { hopMs: 250, windowMs: 1000, sampleRateHz: 16000 };
    server.attach({ streamId: 'mic', ...info }, NEVER, 'microphone off').unsubscribe();
    await all.until((c) => c.of('status').some((st) => st.streamId === 'mic' && st.state === 'ended'));
    expect(all.of('status').find((st) => st.streamId === 'mic')?.message).toBe('microphone off');
    // Unsubscribed streams used to stay 'live' for good, and live streams are never forgotten:
    // 300 of them were 300 hub entries (each with its ring) for as long as the server ran.
    for (let i = 0; i < 300; i++) server.attach({ streamId: `s${i}`, ...info }, NEVER).unsubscribe();
    const streams = server.hub.streams();
    expect(streams.filter((st) => st.state !== 'ended')).toEqual([]);
    expect(streams.length).toBe(server.hub.opts.maxEndedStreams);
  });

  it('a stage that emits only invalid frames is logged once per REFUSED_FRAME_LOG_MS (10 s) per stream, not once per frame; every frame is counted', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    server = await startServer({ logger });
    const a = new Subject<PipelineEvent>();
    const b = new Subject<PipelineEvent>();
    server.attach({ streamId: 'a', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 }, a);
    server.attach({ streamId: 'b', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 }, b);
    for (let i = 1; i <= 200; i++) {
      a.next(affectFrame({ streamId: 'a', tMs: i * 250, valence: Number.NaN, arousal: 0 }));
      b.next(affectFrame({ streamId: 'b', tMs: i * 250, valence: 0, arousal: Number.POSITIVE_INFINITY }));
    }
    const errors = lines.filter((l) => l.level === 50);
    expect(errors.map((l) => [l.streamId, l.msg])).toEqual([
      ['a', 'dropped a frame the hub refused'],
      ['b', 'dropped a frame the hub refused'],
    ]);
    const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_frames_dropped_total\{reason="invalid"\} 400/);
    a.complete();
    b.complete();
  });

  it("logs a stream's state changes (overload degraded it, it recovered) once each with its stream id, not per frame", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    server = await startServer({ logger });
    const ev = new Subject<PipelineEvent>();
    server.attach({ streamId: 'a', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 }, ev);
    const why = 'inference is slower than the audio: hop widened to 750 ms (2 window(s) skipped)';
    ev.next({ kind: 'status', streamId: 'a', tMs: 250, state: 'degraded', message: why });
    for (let i = 1; i <= 20; i++) ev.next(affectFrame({ streamId: 'a', tMs: 250 + i * 250, valence: 0, arousal: 0 }));
    ev.next({ kind: 'status', streamId: 'a', tMs: 5250, state: 'live', message: 'inference keeps up with the audio again' });
    ev.complete();
    const changes = lines.filter((l) => l.msg === 'stream state changed');
    expect(changes).toEqual([
      expect.objectContaining({ level: 40, streamId: 'a', state: 'degraded', tMs: 250, why }),
      expect.objectContaining({ level: 30, streamId: 'a', state: 'live', tMs: 5250 }),
    ]);
  });

  it('answers /healthz, serves the dashboard and chart.js, and refuses path traversal', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dash-'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>dash</title>');
    server = await startServer({ dashboardDir: dir });
    const health = await fetch(`${server.httpUrl}healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', version: PROTOCOL_VERSION, streams: [] });
    const index = await fetch(server.httpUrl);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toContain('<title>dash</title>');
    const chart = await fetch(`${server.httpUrl}vendor/chart.umd.js`);
    expect(chart.status).toBe(200);
    expect((await chart.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${server.httpUrl}..%2F..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${server.httpUrl}nope.js`)).status).toBe(404);
  });

  it('answers 400 to a request target that is not a URL, plain or upgrade, and keeps serving', async () => {
    // `GET http://[ HTTP/1.1` made new URL() throw in the request listener: one request from anyone ended the process.
    server = await startServer();
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect(server!.port, '127.0.0.1', () => sock.end(request));
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      });
    const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    expect(await raw('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 [^]*not a valid URL path/);
    expect(await raw(`GET http://[ HTTP/1.1\r\nHost: x\r\n${upgrade}\r\n`)).toMatch(/^HTTP\/1\.1 400 Bad Request[^]*not a valid URL path/);
    expect((await fetch(`${server.httpUrl}healthz`)).status).toBe(200);
    const c = track(connect(server));
    await c.opened;
    expect(await server.metrics.registry.getSingleMetricAsString('circumplex_refused_total')).toMatch(/reason="bad-url"} 1/);
  });

  it('answers 400 to a path with malformed percent-encoding, and keeps serving', async () => {
    // decodeURIComponent threw in the static-file handler: `GET /%E0%A4%A` from anyone ended the process.
    server = await startServer();
    const r = await fetch(`${server.httpUrl}%E0%A4%A`);
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'malformed percent-encoding in the path' });
    expect((await fetch(`${server.httpUrl}a%00b`)).status).toBe(404);
    expect((await fetch(`${server.httpUrl}healthz`)).status).toBe(200);
  });

  it('refuses a client that only offers another subprotocol, and unknown paths', async () => {
    server = await startServer();
    const v2 = track(connect(server, '/v1/stream', { protocols: ['circumplex.v2'] }));
    await expect(v2.opened).rejects.toThrow(/subprotocol/i);
    const nowhere = track(connect(server, '/v2/stream'));
    await expect(nowhere.opened).rejects.toMatchObject({ statusCode: 404 });
  });
});
