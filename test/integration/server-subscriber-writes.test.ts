/**
 * A subscriber's sends made in one turn of the event loop leave in one write to the socket, even
 * when they come from separate callbacks of that turn (each call track's socket read is its own
 * callback): at 200 Twilio calls, uncorking after each callback made ≈ 750 writes a second for 1600
 * frames (docs/bench.md). Real `ws` server and client on loopback; the count is of the server
 * socket's write calls.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { StreamEventMessage } from '../../core/protocol.js';
import { Grant } from '../../src/server/auth.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { DEFAULT_DELIVERY, Subscriber } from '../../src/server/subscriber.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

interface Counted {
  sub: Subscriber;
  writes: () => number;
  received: Array<{ streamId: string; seq: number }>;
}

async function connect(): Promise<Counted> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const [serverWs] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  closers.push(async () => {
    client.terminate();
    await new Promise((r) => wss.close(r));
  });
  const received: Counted['received'] = [];
  client.on('message', (d) => {
    const m = JSON.parse((d as Buffer).toString('utf8')) as { streamId: string; seq: number };
    received.push({ streamId: m.streamId, seq: m.seq });
  });
  // Count the socket's writes: after uncork, node calls _writev for several buffered chunks, _write for one.
  const sock = (serverWs as unknown as { _socket: { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown } })._socket;
  let writes = 0;
  for (const k of ['_write', '_writev'] as const) {
    const orig = sock[k].bind(sock);
    sock[k] = (...a: unknown[]) => {
      writes++;
      return orig(...a);
    };
  }
  const sub = new Subscriber(serverWs, new Grant([], true), DEFAULT_DELIVERY, new ServerMetrics(), () => undefined);
  sub.wildcard = true;
  return { sub, writes: () => writes, received };
}

const status = (streamId: string, seq: number): StreamEventMessage => ({ type: 'status', streamId, seq, state: 'live' }) as unknown as StreamEventMessage;

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('subscriber writes', () => {
  it('sends from separate callbacks of one event-loop turn go out in one write, in order, none lost', async () => {
    const c = await connect();
    const before = c.writes();
    // 40 messages of 8 streams, each delivered from its own callback, one after another in the same turn
    // (as separate socket reads deliver them): each callback schedules the next.
    const step = (i: number): void => {
      c.sub.deliver(status(`s${i % 8}`, Math.floor(i / 8)));
      if (i < 39) process.nextTick(() => step(i + 1));
    };
    process.nextTick(() => step(0));
    await until(() => c.received.length === 40);
    expect(c.writes() - before).toBe(1);
    expect(c.received).toEqual(Array.from({ length: 40 }, (_, i) => ({ streamId: `s${i % 8}`, seq: Math.floor(i / 8) })));
  });

  it('sends in later turns are not held back: each turn writes its own', async () => {
    const c = await connect();
    const before = c.writes();
    for (let turn = 0; turn < 3; turn++) {
      c.sub.deliver(status('a', 2 * turn));
      c.sub.deliver(status('a', 2 * turn + 1));
      const n = 2 * (turn + 1);
      await until(() => c.received.length === n);
      expect(c.writes() - before).toBe(turn + 1);
    }
    expect(c.received.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
