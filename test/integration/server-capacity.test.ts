/**
 * Capacity (issue 14 item 4): a server started with `maxIngestStreams` (`serve --max-streams N`)
 * refuses the stream beyond its capacity with close code 4013 and a clear `over-capacity` error,
 * instead of slowing every stream down; streams already running are untouched, and a freed slot
 * is usable again. `/readyz` says so to a load balancer (503 while full), `/healthz` shows the count.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CLOSE_CODES, type IngestReply } from '../../core/protocol.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { validateServerOptions, DEFAULT_AFFECT_SERVER } from '../../src/server/options.js';
import { pino } from 'pino';
import { TestClient, connect, loudnessPipeline, startServer, toneS16 } from '../helpers/server-helpers.js';
import { until } from '../helpers/until.js';
import { type ClaimResult, type Hub, StreamHub } from '../../src/server/hub.js';
import { notReadyReason } from '../../src/server/handlers/http-routes.js';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await server?.close();
  server = undefined;
});

async function publisher(s: RunningServer): Promise<TestClient> {
  const p = connect(s, '/v1/ingest');
  clients.push(p);
  await p.opened;
  return p;
}
/** GET a JSON route of the server: status and parsed body. */
async function getJson(s: RunningServer, p: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.httpUrl}${p}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}
const replies = (c: TestClient): IngestReply[] => c.raw.map((r) => JSON.parse(r) as IngestReply);
const start = (c: TestClient, streamId: string) => c.send({ type: 'start', streamId, encoding: 's16le', sampleRateHz: 16000, channels: 1 });

function twilioCall(s: RunningServer, callSid: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/v1/telephony/twilio`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const start = () => {
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    const mediaFormat = { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 };
    const start = { streamSid: `MZ${callSid}`, accountSid: 'AC0123', callSid, tracks: ['inbound', 'outbound'], customParameters: {}, mediaFormat };
    ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid: `MZ${callSid}`, start }));
  };
  return { ws, closed, opened, start };
}

describe('serve capacity', () => {
  it('refuses the stream beyond maxIngestStreams with 4013 over-capacity; running streams go on; a freed slot takes a new stream', async () => {
    server = await startServer({ maxIngestStreams: 2, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const sub = connect(server, '/v1/stream?streams=*');
    clients.push(sub);
    await sub.opened;
    const a = await publisher(server);
    start(a, 'a');
    await a.until((c) => c.raw.length === 1, 5000, 'a started');
    const b = await publisher(server);
    start(b, 'b');
    await b.until((c) => c.raw.length === 1, 5000, 'b started');
    const c = await publisher(server);
    start(c, 'c');
    const closed = await c.closed;
    expect(closed.code).toBe(CLOSE_CODES.overCapacity);
    expect(closed.code).toBe(4013);
    expect(closed.reason).toBe('over capacity');
    expect(replies(c)[0]).toMatchObject({ type: 'error', reason: 'over-capacity', recoverable: false });
    expect((replies(c)[0] as { message: string }).message).toContain('--max-streams 2');
    // the running streams are untouched
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    a.ws.send(toneS16(300));
    await sub.until((s) => s.of('affect').some((m) => m.streamId === 'a'), 5000, 'a frames');
    const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_refused_total\{reason="over-capacity"\} 1/);
    // a stopped stream frees its slot
    a.send({ type: 'stop' });
    await sub.until((s) => s.of('status').some((m) => m.streamId === 'a' && m.state === 'ended'), 5000, 'a ended');
    const d = await publisher(server);
    start(d, 'd');
    await d.until((x) => x.raw.length === 1, 5000, 'd started');
    expect(replies(d)[0]?.type).not.toBe('error');
    expect(d.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('counts Twilio tracks against maxIngestStreams: a call that would pass the capacity is refused whole with 4013, the running call goes on', async () => {
    server = await startServer({ maxIngestStreams: 3, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const s = server;
    const call = (callSid: string) => twilioCall(s, callSid);
    const sub = connect(server, '/v1/stream?streams=*');
    clients.push(sub);
    await sub.opened;
    const first = call('CA1');
    await first.opened;
    first.start();
    // 0.5 s of media on the inbound track: the call is running once its frames arrive
    const payload = Buffer.alloc(160, 0x20).toString('base64');
    for (let i = 0; i < 25; i++) {
      first.ws.send(
        JSON.stringify({
          event: 'media',
          sequenceNumber: String(i + 2),
          streamSid: 'MZCA1',
          media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload },
        }),
      );
    }
    await sub.until((c) => c.of('affect').some((m) => m.streamId === 'CA1:inbound'), 5000, 'CA1 frames');
    const second = call('CA2');
    await second.opened;
    second.start();
    const closed = await Promise.race([
      second.closed,
      new Promise<{ code: number; reason: string }>((resolve) => setTimeout(() => resolve({ code: 0, reason: 'still open after 10 s' }), 10_000)),
    ]);
    expect(closed.code).toBe(CLOSE_CODES.overCapacity);
    expect(closed.reason).toMatch(/over capacity: 2 stream\(s\) running, this call needs 2 \(--max-streams 3\)/);
    expect(first.ws.readyState).toBe(WebSocket.OPEN);
    expect(sub.of('status').some((m) => m.streamId?.startsWith('CA2'))).toBe(false);
    const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_refused_total\{reason="over-capacity"\} 1/);
    first.ws.terminate();
  });

  it('counts and logs once, with the stream id and reason, a publisher refused because its stream is busy (ingest, and a Twilio call reusing a callSid)', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    server = await startServer({ logger, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const a = await publisher(server);
    start(a, 'x');
    await a.until((c) => c.raw.length === 1, 5000, 'a started');
    const b = await publisher(server);
    start(b, 'x');
    expect((await b.closed).code).toBe(CLOSE_CODES.policy);
    const first = twilioCall(server, 'CA1');
    await first.opened;
    first.start();
    await until(() => lines.some((l) => l.msg === 'twilio track started'));
    const again = twilioCall(server, 'CA1');
    await again.opened;
    again.start();
    expect((await again.closed).code).toBe(CLOSE_CODES.policy);
    const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/circumplex_refused_total\{reason="stream-busy"\} 2/);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toEqual([
      expect.objectContaining({ streamId: 'x', reason: 'stream-busy', msg: 'publisher refused' }),
      expect.objectContaining({ callSid: 'CA1', reason: 'stream CA1:inbound busy', msg: 'twilio stream refused' }),
    ]);
    first.ws.terminate();
    again.ws.terminate();
  });

  it('counts a Twilio call refused because the backplane is down once, whether its claims fail at once or answer later', async () => {
    for (const mode of ['throws', 'async'] as const) {
      // A cluster hub whose backplane is down: its claims throw, or answer later.
      const hub: Hub = Object.assign(new StreamHub(), {
        claim: (): ClaimResult | Promise<ClaimResult> => {
          if (mode === 'throws') throw new Error('redis is down');
          return Promise.resolve({ ok: false, reason: 'backplane-down', message: 'redis is down' });
        },
      });
      server = await startServer({ hub, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
      const c = twilioCall(server, 'CA1');
      await c.opened;
      c.start();
      expect((await c.closed).code, mode).toBe(CLOSE_CODES.policy);
      const metrics = await (await fetch(`${server.httpUrl}metrics`)).text();
      expect(metrics, mode).toMatch(/circumplex_refused_total\{reason="backplane-down"\} 1\n/);
      await server.close();
      server = undefined;
    }
  });

  it('/readyz: 200 while the node takes a new ingest stream, 503 naming the capacity while it is full, 200 again once a slot frees; /healthz stays 200 and shows the capacity', async () => {
    server = await startServer({ maxIngestStreams: 1, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const get = (p: string) => getJson(server!, p);
    expect(await get('readyz')).toEqual({ status: 200, body: { ready: true, capacity: { ingestStreams: 0, maxIngestStreams: 1 } } });
    expect((await get('healthz')).body.capacity).toEqual({ ingestStreams: 0, maxIngestStreams: 1 });
    const a = await publisher(server);
    start(a, 'a');
    await a.until((c) => c.raw.length === 1, 5000, 'a started');
    const full = await get('readyz');
    expect(full).toEqual({
      status: 503,
      body: { ready: false, reason: 'at capacity: 1 of 1 ingest streams (--max-streams 1)', capacity: { ingestStreams: 1, maxIngestStreams: 1 } },
    });
    expect(full.body).not.toHaveProperty('streams');
    // Liveness is unchanged: the node is up and serves its stream.
    const health = await get('healthz');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', capacity: { ingestStreams: 1, maxIngestStreams: 1 } });
    // What /readyz said is what a new publisher gets: refused with 4013.
    const b = await publisher(server);
    start(b, 'b');
    expect((await b.closed).code).toBe(CLOSE_CODES.overCapacity);
    a.send({ type: 'stop' });
    await until(async () => (await get('readyz')).status === 200, 5000, 50);
    expect((await get('readyz')).body).toEqual({ ready: true, capacity: { ingestStreams: 0, maxIngestStreams: 1 } });
  });

  it('/readyz without --max-streams is ready with maxIngestStreams null, and not ready once shutdown starts', async () => {
    server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const r = await fetch(`${server.httpUrl}readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true, capacity: { ingestStreams: 0, maxIngestStreams: null } });
    // The port stops listening at once on close, so a request racing it is the only one to see this.
    expect(notReadyReason({ o: { ...DEFAULT_AFFECT_SERVER, maxIngestStreams: 4 }, publishers: new Map(), closing: Promise.resolve() })).toBe('shutting down');
  });

  it('/readyz?streams=2 asks for two free slots (a two-track call): 503 with one free, 200 with two; a bad count is 400', async () => {
    server = await startServer({ maxIngestStreams: 2, onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100)) });
    const get = (p: string) => getJson(server!, p);
    expect((await get('readyz?streams=2')).status).toBe(200);
    const a = await publisher(server);
    start(a, 'a');
    await a.until((c) => c.raw.length === 1, 5000, 'a started');
    expect(await get('readyz?streams=2')).toEqual({
      status: 503,
      body: { ready: false, reason: 'at capacity: 1 of 2 ingest streams (--max-streams 2); 2 needed', capacity: { ingestStreams: 1, maxIngestStreams: 2 } },
    });
    expect((await get('readyz')).status).toBe(200); // one slot is still free for a single stream
    for (const bad of ['0', '1.5', 'two', '65']) {
      const r = await get(`readyz?streams=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(String(r.body.error), bad).toMatch(/streams= must be an integer from 1 to 64/);
    }
    a.send({ type: 'stop' });
    await until(async () => (await get('readyz?streams=2')).status === 200, 5000, 50);
  });

  it('/readyz on a server with no analysis pipeline (replay) is 503: every ingest start there is refused', async () => {
    server = await startServer({});
    const r = await getJson(server, 'readyz');
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ ready: false, reason: expect.stringMatching(/takes no ingest streams/) });
    expect((await getJson(server, 'healthz')).status).toBe(200);
  });

  it('validates maxIngestStreams', () => {
    expect(() => validateServerOptions({ ...DEFAULT_AFFECT_SERVER, maxIngestStreams: 0 })).toThrow(/maxIngestStreams must be an integer >= 1/);
    expect(() => validateServerOptions({ ...DEFAULT_AFFECT_SERVER, maxIngestStreams: 2.5 })).toThrow(/maxIngestStreams/);
  });
});
