/**
 * The node client against the real AffectServer on loopback: frames arrive in order, a real network drop
 * (TCP proxy cut) is survived with resume and no duplicates or gaps, iterators are bounded, and a
 * client that cannot connect gives up with a clear error.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { firstValueFrom, take, toArray } from 'rxjs';
import { WebSocketServer } from 'ws';
import { DEFAULT_STREAM_HUB, toWire } from '../../src/server/hub.js';
import { SUBPROTOCOL } from '../../core/protocol.js';
import { CircumplexClient, DEFAULT_CLIENT, backoffDelayMs, streamUrl } from '../../clients/node-client.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import { affectEvent, movingPoint, freePort, startFlakyProxy, startRealServer, type FlakyProxy } from '../helpers/clients-protocol-server.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { until } from '../helpers/until.js';

const STREAM = { streamId: 'mic', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 };

let server: RunningServer;
let proxy: FlakyProxy | undefined;
const clients: CircumplexClient[] = [];

function publish(from: number, to: number, streamId = 'mic'): void {
  for (let i = from; i < to; i++) {
    const p = movingPoint(i);
    server.hub.publish(streamId, affectEvent(streamId, i * 250, p.valence, p.arousal));
  }
}

function connect(url: string, opts: Parameters<typeof CircumplexClient.connect>[1] = {}): CircumplexClient {
  const c = CircumplexClient.connect(url, { initialBackoffMs: 50, maxBackoffMs: 200, ...opts });
  clients.push(c);
  return c;
}

/** Waits until `cond()` holds, polling every 10 ms, failing after `ms`. */
beforeEach(async () => {
  server = await startRealServer();
  server.hub.openStream(STREAM);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await proxy?.close();
  proxy = undefined;
  await server.close();
});

describe('CircumplexClient', () => {
  it('normalises server addresses to the stream endpoint', () => {
    expect(streamUrl('http://127.0.0.1:8787')).toBe('ws://127.0.0.1:8787/v1/stream');
    expect(streamUrl('https://example.org/')).toBe('wss://example.org/v1/stream');
    expect(streamUrl('ws://h:1/custom')).toBe('ws://h:1/custom');
    expect(() => streamUrl('ftp://h')).toThrow(/unsupported URL scheme/);
    expect(() => streamUrl('nope')).toThrow(/not a valid URL/);
  });

  it('rejects bad options with a RangeError naming the option', () => {
    expect(() => CircumplexClient.connect(server.url, { initialBackoffMs: 0 })).toThrow(/initialBackoffMs/);
    expect(() => CircumplexClient.connect(server.url, { jitter: 1 })).toThrow(/jitter/);
    expect(() => CircumplexClient.connect(server.url, { streamIds: [] })).toThrow(/streamIds/);
  });

  it('a long-lived wildcard client forgets ended streams beyond maxEndedStreams (it kept every stream id it ever saw)', async () => {
    const client = connect(server.url, { maxEndedStreams: 4 });
    const seen: StreamEventMessage[] = [];
    client.frames$.subscribe((f) => seen.push(f));
    await client.waitOpen();
    // Once a frame of 'mic' is in, the server has the subscription: new streams are announced to it.
    publish(0, 1);
    await until(() => seen.length === 1);
    // 30 short calls, one after another, as a server carrying calls for hours sees them.
    for (let i = 0; i < 30; i++) {
      const id = `call-${i}`;
      server.hub.openStream({ ...STREAM, streamId: id });
      publish(0, 3, id);
      server.hub.endStream(id);
    }
    await until(() => seen.filter((f) => f.type === 'status' && f.state === 'ended').length === 30);
    expect(seen.filter((f) => f.streamId !== 'mic')).toHaveLength(30 * 4);
    // The live stream 'mic' and the 4 calls that ended last; before, all 31 (and 30 seqs).
    expect(client.streams.map((s) => s.streamId)).toEqual(['mic', 'call-26', 'call-27', 'call-28', 'call-29']);
    expect(client.streams.find((s) => s.streamId === 'call-29')?.state).toBe('ended');
    expect(client.lastSeq('call-25')).toBe(-1);
    expect(client.lastSeq('call-29')).toBe(3);
    // An ended stream that is reopened and resumed still drops the seqs it has already handed out.
    server.hub.openStream({ ...STREAM, streamId: 'call-29' });
    publish(4, 6, 'call-29');
    await until(() => client.lastSeq('call-29') === 5);
    expect(client.stats.duplicates).toBe(0);
    expect(client.streams.find((s) => s.streamId === 'call-29')?.state).toBe('live');
    expect(DEFAULT_CLIENT.maxEndedStreams).toBeGreaterThanOrEqual(DEFAULT_STREAM_HUB.maxEndedStreams);
    expect(() => CircumplexClient.connect(server.url, { maxEndedStreams: -1 })).toThrow(/maxEndedStreams must be an integer >= 0, got -1/);
  });

  it('grows the backoff exponentially up to the cap, with bounded jitter', () => {
    const o = { initialBackoffMs: 100, maxBackoffMs: 1000, backoffFactor: 2, jitter: 0.2 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelayMs(a, o, () => 0.5))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelayMs(0, o, () => 0)).toBe(80);
    expect(backoffDelayMs(0, o, () => 0.999999)).toBe(120);
  });

  it('receives frames in seq order after hello and knows the streams', async () => {
    const client = connect(server.url);
    const got = firstValueFrom(client.frames$.pipe(take(10), toArray()));
    await client.waitOpen();
    expect(client.streams.map((s) => s.streamId)).toEqual(['mic']);
    publish(0, 10);
    const frames = await got;
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const first = frames[0];
    expect(first?.type).toBe('affect');
    if (first?.type === 'affect') expect(first.valence).toBeCloseTo(movingPoint(0).valence, 6);
    expect(client.lastSeq('mic')).toBe(9);
  });

  it('survives a network drop: reconnects, resumes by seq, no duplicates, no gaps', async () => {
    proxy = await startFlakyProxy(server.port);
    const client = connect(`ws://127.0.0.1:${proxy.port}`);
    const seen: StreamEventMessage[] = [];
    client.frames$.subscribe((f) => seen.push(f));
    await client.waitOpen();
    publish(0, 10);
    await until(() => seen.length === 10);

    // Drop the connection and keep it down while 15 more frames are published.
    proxy.setRefusing(true);
    proxy.cut();
    await until(() => client.state$.value === 'reconnecting');
    publish(10, 25);
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.length).toBe(10);
    proxy.setRefusing(false);

    await until(() => seen.length >= 25);
    publish(25, 30); // live again after the resume
    await until(() => seen.length >= 30);
    expect(seen.map((f) => f.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const stats = client.stats;
    expect(stats.reconnects).toBe(1);
    expect(stats.gaps).toBe(0);
    expect(stats.missedOnResume).toBe(0);
    expect(proxy.accepted).toBe(2);
  });

  it('a stream that starts while the client is cut off: every frame it published meanwhile arrives on reconnect', async () => {
    proxy = await startFlakyProxy(server.port);
    const client = connect(`ws://127.0.0.1:${proxy.port}`);
    const seen: StreamEventMessage[] = [];
    client.frames$.subscribe((f) => seen.push(f));
    await client.waitOpen();
    publish(0, 3);
    await until(() => seen.length === 3);
    proxy.setRefusing(true);
    proxy.cut();
    await until(() => client.state$.value === 'reconnecting');
    // A new call starts during the outage, and an already announced one publishes its first frames.
    server.hub.openStream({ ...STREAM, streamId: 'call-7' });
    publish(0, 6, 'call-7');
    publish(3, 5);
    proxy.setRefusing(false);
    await until(() => client.stats.reconnects === 1);
    await until(() => seen.filter((f) => f.streamId === 'call-7').length >= 6);
    expect(seen.filter((f) => f.streamId === 'call-7').map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(seen.filter((f) => f.streamId === 'mic').map((f) => f.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a subscription of more ids than one message may list (256) survives a reconnect: it is sent in parts', async () => {
    proxy = await startFlakyProxy(server.port);
    const ids = (prefix: string) => Array.from({ length: 200 }, (_, i) => `${prefix}${i}`);
    const client = connect(`ws://127.0.0.1:${proxy.port}`, { streamIds: ids('a') });
    const seen: StreamEventMessage[] = [];
    client.frames$.subscribe((f) => seen.push(f));
    await client.waitOpen();
    client.subscribe(ids('b')); // 400 ids in all, within the server's 1024 per connection
    for (const id of ['a7', 'b150']) server.hub.openStream({ ...STREAM, streamId: id });
    publish(0, 1, 'a7');
    publish(0, 1, 'b150');
    await until(() => seen.length === 2);
    // The resubscribe after a reconnect listed all 400 ids in one message: the server closed it
    // with 1002 (a message lists at most 256) and the client gave up for good.
    proxy.cut();
    await until(() => client.stats.reconnects === 1);
    publish(1, 2, 'a7');
    publish(1, 2, 'b150');
    await until(() => seen.length === 4);
    expect(client.failure).toBeUndefined();
    expect(client.state$.value).toBe('open');
    expect(seen.map((f) => `${f.streamId}:${f.seq}`).sort()).toEqual(['a7:0', 'a7:1', 'b150:0', 'b150:1']);
    expect(() => CircumplexClient.connect(server.url, { streamIds: 'abc' as never })).toThrow(/streamIds must be an array of stream ids/);
    expect(() => CircumplexClient.connect(server.url, { streamIds: ['x'.repeat(129)] })).toThrow(/streamIds\[0\] must be 1-128 characters/);
  });

  for (const when of ['before', 'after'] as const) {
    it(`after a server restart, hands out every frame of a stream that starts again ${when} the client reconnects`, async () => {
      const port = await freePort();
      await server.close();
      server = await startRealServer({ port });
      server.hub.openStream(STREAM);
      const client = connect(`ws://127.0.0.1:${port}`);
      const seen: number[] = [];
      client.frames$.subscribe((f) => f.streamId === 'mic' && seen.push(f.seq));
      await client.waitOpen();
      publish(0, 30);
      await until(() => seen.length === 30);

      await server.close();
      await until(() => client.state$.value === 'reconnecting');
      server = await startRealServer({ port });
      if (when === 'before') {
        server.hub.openStream(STREAM);
        publish(0, 5); // seqs 0-4 of the new run, before the client is back
      }
      await until(() => client.stats.reconnects === 1);
      // The subscribe goes out after hello: wait until the server has it (a frame on another stream
      // arrives live), as a stream that opens in between is not the point here.
      server.hub.openStream({ ...STREAM, streamId: 'barrier' });
      await until(() => {
        publish(0, 1, 'barrier');
        return client.lastSeq('barrier') >= 0;
      });
      if (when === 'after') {
        server.hub.openStream(STREAM);
        publish(0, 5);
      }
      publish(5, 25);
      // The new run is seqs 0-24: every one of them, once, in order.
      await until(() => seen.length >= 55);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen.slice(30)).toEqual(Array.from({ length: 25 }, (_, i) => i));
      expect(client.stats.duplicates).toBe(0);
    });
  }

  it('never hands out a seq twice, even when a server resends an overlap', async () => {
    // A raw ws server that resends frames 1..2 (as a server with an off-by-one resume would).
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    const frame = (seq: number) => JSON.stringify(toWire('mic', seq, affectEvent('mic', seq * 250, 0.1, 0.2)));
    wss.on('connection', (ws) => {
      ws.send(JSON.stringify({ type: 'hello', version: '1.0.0', sessionId: 's', hopMs: 250, streams: [] }));
      ws.once('message', () => {
        for (const seq of [0, 1, 2, 1, 2, 3, 5]) ws.send(frame(seq));
      });
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const client = connect(`ws://127.0.0.1:${port}`);
      const frames = await firstValueFrom(client.frames$.pipe(take(5), toArray()));
      expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 5]);
      expect(client.stats.duplicates).toBe(2);
      expect(client.stats.gaps).toBe(1);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it('drops a silent connection (no message, no ping) after idleTimeoutMs and reconnects', async () => {
    // A server that says hello and then goes quiet without closing: a half-open connection.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      ws.send(JSON.stringify({ type: 'hello', version: '1.0.0', sessionId: 's', hopMs: 250, streams: [] }));
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const client = connect(`ws://127.0.0.1:${port}`, { idleTimeoutMs: 300 });
      await client.waitOpen();
      await until(() => connections >= 2 && client.state$.value === 'open');
      expect(client.stats.reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it('async iteration: in order, bounded drop-oldest queue, ends on close', async () => {
    const client = connect(server.url, { iteratorQueueSize: 5 });
    await client.waitOpen();
    const it = client[Symbol.asyncIterator]();
    publish(0, 20); // nobody reads yet: only the newest 5 are kept
    await until(() => client.stats.frames === 20);
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await it.next();
      if (!r.done) got.push(r.value.seq);
    }
    expect(got).toEqual([15, 16, 17, 18, 19]);
    expect(client.stats.iteratorDropped).toBe(15);
    const pending = it.next();
    client.close();
    expect((await pending).done).toBe(true);
  });

  it('with tokens: sends its header, and gives up at once (no retry loop) when refused with 401/403, saying why', async () => {
    const secured = await startRealServer({
      tokens: [
        { token: 'sub-token-123', scopes: ['subscribe'] },
        { token: 'pub-token-123', scopes: ['publish'] },
      ],
    });
    try {
      secured.hub.openStream(STREAM);
      const refused = connect(secured.url, { initialBackoffMs: 20 });
      // The server's reason comes with the status.
      await expect(refused.waitOpen()).rejects.toThrow('Unexpected server response: 401 (a token is required (Authorization: Bearer <token> or ?token=))');
      expect(refused.state$.value).toBe('closed');
      expect(refused.stats.reconnects).toBe(0);
      expect(refused.failure?.message).toMatch(/401 \(a token is required/);
      const wrongScope = connect(secured.url, { headers: { Authorization: 'Bearer pub-token-123' } });
      await expect(wrongScope.waitOpen()).rejects.toThrow('Unexpected server response: 403 (token lacks the "subscribe" scope)');
      expect(wrongScope.stats.reconnects).toBe(0);
      const ok = connect(secured.url, { headers: { Authorization: 'Bearer sub-token-123' } });
      await ok.waitOpen();
      expect(ok.streams.map((st) => st.streamId)).toEqual(['mic']);
    } finally {
      await secured.close();
    }
  });

  it('gives up after maxRetries and the iterator throws a clear error', async () => {
    const port = await freePort(); // nothing listens there
    const client = connect(`ws://127.0.0.1:${port}`, { maxRetries: 2, initialBackoffMs: 20, maxBackoffMs: 40 });
    const it = client[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow(/ECONNREFUSED|closed/);
    expect(client.state$.value).toBe('closed');
    await expect(client.waitOpen()).rejects.toThrow();
  });
});
