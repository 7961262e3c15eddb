/**
 * The socket.io bridge against a real socket.io server on loopback: frames arrive under the
 * configured event names and namespace, in order; while the server is unreachable (a real TCP cut)
 * the bridge keeps only the newest `maxBuffered` frames, and after reconnecting it drains them at
 * the bounded rate instead of in one burst. End to end: real AffectServer → node client → bridge.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { Server as IoServer } from 'socket.io';
import { SocketIoBridge } from '../../clients/socketio-bridge.js';
import { CircumplexClient } from '../../clients/node-client.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import { toWire } from '../../src/server/hub.js';
import { affectEvent, movingPoint, startFlakyProxy, startRealServer, transcriptEvent, type FlakyProxy } from '../helpers/clients-protocol-server.js';
import { until } from '../helpers/until.js';

interface Received {
  event: string;
  msg: StreamEventMessage;
  at: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A socket.io server on 127.0.0.1 recording every event it receives in `nsp`. */
async function startIo(nsp: string): Promise<{ port: number; got: Received[] }> {
  const httpServer = http.createServer();
  const ioServer = new IoServer(httpServer);
  const got: Received[] = [];
  ioServer.of(nsp).on('connection', (socket) => {
    socket.onAny((event: string, msg: StreamEventMessage) => got.push({ event, msg, at: performance.now() }));
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => void ioServer.close(() => resolve())));
  const addr = httpServer.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { port: addr.port, got };
}

const affect = (seq: number): StreamEventMessage => {
  const p = movingPoint(seq);
  return toWire('mic', seq, affectEvent('mic', seq * 250, p.valence, p.arousal));
};

function startBridge(source: Subject<StreamEventMessage> | CircumplexClient, opts: Parameters<typeof SocketIoBridge.start>[1]): SocketIoBridge {
  const frames$ = source instanceof CircumplexClient ? source.frames$ : source.asObservable();
  const bridge = SocketIoBridge.start(frames$, {
    ...opts,
    socketOptions: { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 100, ...opts.socketOptions },
  });
  cleanups.push(() => bridge.close());
  return bridge;
}

describe('SocketIoBridge', () => {
  it('rejects bad options with a RangeError naming the option', () => {
    const s = new Subject<StreamEventMessage>();
    expect(() => SocketIoBridge.start(s, { url: '' })).toThrow(/url/);
    expect(() => SocketIoBridge.start(s, { url: 'http://x', namespace: 'affect' })).toThrow(/namespace/);
    expect(() => SocketIoBridge.start(s, { url: 'http://x', maxBuffered: 0 })).toThrow(/maxBuffered/);
    expect(() => SocketIoBridge.start(s, { url: 'http://x', maxRatePerSec: 0 })).toThrow(/maxRatePerSec/);
  });

  it('forwards under the configured event names and namespace, in order, skipping null events', async () => {
    const { port, got } = await startIo('/affect');
    const source = new Subject<StreamEventMessage>();
    const bridge = startBridge(source, {
      url: `http://127.0.0.1:${port}`,
      namespace: '/affect',
      events: { affect: 'circumplex:affect', transcript: 'circumplex:words', status: null },
      maxRatePerSec: 1000,
      burst: 100,
    });
    await until(() => bridge.connected);
    for (let i = 0; i < 5; i++) source.next(affect(i));
    source.next(toWire('mic', 5, transcriptEvent('mic', 1250, 'hello there')));
    source.next(toWire('mic', 6, { kind: 'status', streamId: 'mic', tMs: 1500, state: 'live', message: 'ok' }));
    await until(() => got.length === 6);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.map((g) => [g.event, g.msg.seq])).toEqual([
      ['circumplex:affect', 0],
      ['circumplex:affect', 1],
      ['circumplex:affect', 2],
      ['circumplex:affect', 3],
      ['circumplex:affect', 4],
      ['circumplex:words', 5],
    ]);
    expect(got[0]?.msg).toEqual(affect(0));
    expect(bridge.stats).toMatchObject({ forwarded: 6, skipped: 1, dropped: 0, buffered: 0 });
  });

  it('keeps the newest maxBuffered frames while disconnected and drains them at the bounded rate', async () => {
    const { port, got } = await startIo('/');
    const proxy: FlakyProxy = await startFlakyProxy(port);
    cleanups.push(() => proxy.close());
    const source = new Subject<StreamEventMessage>();
    const bridge = startBridge(source, { url: `http://127.0.0.1:${proxy.port}`, maxBuffered: 20, maxRatePerSec: 40, burst: 2 });
    await until(() => bridge.connected);
    source.next(affect(0));
    await until(() => got.length === 1);

    proxy.setRefusing(true);
    proxy.cut();
    await until(() => !bridge.connected);
    for (let i = 1; i <= 50; i++) source.next(affect(i));
    expect(bridge.stats).toMatchObject({ buffered: 20, dropped: 30 });

    proxy.setRefusing(false);
    await until(() => got.length === 21, 10_000);
    // Exactly the newest 20, in order.
    expect(got.slice(1).map((g) => g.msg.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 31 + i));
    // No burst: 20 frames at 40/s with a burst of 2 need at least (20 - 2) / 40 s = 450 ms.
    const drained = got.slice(1);
    const spanMs = (drained.at(-1)?.at ?? 0) - (drained[0]?.at ?? 0);
    expect(spanMs).toBeGreaterThanOrEqual(400);
    expect(bridge.stats).toMatchObject({ forwarded: 21, dropped: 30, buffered: 0, connects: 2 });
  });

  it('says why it stopped for good: refused by the server middleware, or disconnected by the server', async () => {
    // A socket.io server whose middleware refuses a bad token and kicks a "kick-me" connection.
    const httpServer = http.createServer();
    const ioServer = new IoServer(httpServer);
    ioServer.use((socket, next) => (socket.handshake.auth.token === 'good' ? next() : next(new Error('bad auth token'))));
    ioServer.on('connection', (socket) => socket.on('kick-me', () => socket.disconnect()));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => void ioServer.close(() => resolve())));
    const port = (httpServer.address() as { port: number }).port;

    const refused = startBridge(new Subject<StreamEventMessage>(), { url: `http://127.0.0.1:${port}`, socketOptions: { auth: { token: 'wrong' } } });
    await until(() => refused.failure !== undefined);
    expect(refused.failure?.message).toMatch(/refused the bridge: bad auth token/);
    expect(refused.connected).toBe(false);

    const kicked = startBridge(new Subject<StreamEventMessage>(), { url: `http://127.0.0.1:${port}`, socketOptions: { auth: { token: 'good' } } });
    await until(() => kicked.connected);
    expect(kicked.failure).toBeUndefined();
    kicked.socket.emit('kick-me');
    await until(() => kicked.failure !== undefined);
    expect(kicked.failure?.message).toMatch(/disconnected the bridge/);
  });

  it('a source that errors sets failure instead of crashing the process, and what is buffered still goes out', async () => {
    const { port, got } = await startIo('/');
    const source = new Subject<StreamEventMessage>();
    const bridge = startBridge(source, { url: `http://127.0.0.1:${port}`, maxRatePerSec: 1000, burst: 100 });
    source.next(affect(0));
    source.next(affect(1));
    source.error(new Error('upstream map threw'));
    expect(bridge.failure?.message).toBe("the bridge's source failed: upstream map threw");
    await until(() => got.length === 2);
    expect(got.map((g) => g.msg.seq)).toEqual([0, 1]);
    expect(bridge.failure?.message).toMatch(/source failed/); // a later connect does not clear it
  });

  it('end to end: AffectServer → node client → bridge → socket.io server', async () => {
    const server = await startRealServer();
    cleanups.push(() => server.close());
    server.hub.openStream({ streamId: 'stage', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const { port, got } = await startIo('/');
    const client = CircumplexClient.connect(server.url);
    cleanups.push(() => client.close());
    const bridge = startBridge(client, { url: `http://127.0.0.1:${port}`, maxRatePerSec: 500, burst: 50 });
    await client.waitOpen();
    await until(() => bridge.connected);
    for (let i = 0; i < 10; i++) {
      const p = movingPoint(i);
      server.hub.publish('stage', affectEvent('stage', i * 250, p.valence, p.arousal));
    }
    await until(() => got.length === 10);
    expect(got.map((g) => g.msg.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.every((g) => g.event === 'affect' && g.msg.streamId === 'stage')).toBe(true);
  });
});
