/**
 * Fan-out: frames/s delivered to 1, 100, 1000 WebSocket subscribers by the real server (hub,
 * per-subscriber delivery with slow-consumer coalescing) against a bare `ws` broadcast loop
 * (JSON.stringify once, `send` to every client) in the same run, same frames, same clients.
 * Everything on loopback in this process; the subscribers are `ws` clients counting messages.
 */
import { Subject } from 'rxjs';
import WebSocket, { WebSocketServer } from 'ws';
import { AffectServer } from '../../src/server/ws-server.js';
import { toWire } from '../../src/server/hub.js';
import { SUBPROTOCOL } from '../../core/protocol.js';
import type { PipelineEvent } from '../../core/types.js';
import type { Logger } from '../../core/log.js';
import { round, sleep } from '../lib/common.js';

/** One fan-out measurement. */
export interface FanoutPoint {
  readonly subscribers: number;
  readonly frames: number;
  readonly server: FanoutResult;
  readonly bareWs: FanoutResult;
  /** server deliveries/s ÷ bare deliveries/s. */
  readonly ratio: number | null;
}

/** Result of one side. */
export interface FanoutResult {
  readonly wallMs: number;
  /** Messages received by all subscribers together. */
  readonly delivered: number;
  readonly deliveredPerSec: number;
  /** Frames each subscriber got per second (delivered / subscribers / s). */
  readonly framesPerSecPerSubscriber: number;
  /** Frames the server merged for slow subscribers (0 for the bare loop). */
  readonly coalesced: number;
  /** Subscribers that saw the last frame before the timeout. */
  readonly complete: number;
}

/** A synthetic affect event for stream `streamId`, frame `k` (walks the circle 7° a frame); shared with the cluster section. */
export function affectEvent(streamId: string, k: number): PipelineEvent {
  const a = (k * 7) % 360;
  const rad = (a * Math.PI) / 180;
  return {
    kind: 'affect',
    point: {
      streamId,
      tMs: k * 250,
      valence: 0.5 * Math.cos(rad),
      arousal: 0.5 * Math.sin(rad),
      confidence: 0.8,
      label: 'calm',
      intensity: 0.5,
      angleDeg: a,
      modalities: ['speech'],
      droppedWindows: 0,
    },
  };
}

interface Counter {
  received: number;
  coalesced: number;
  lastTMs: number;
  /** Set once measuring starts: called when this subscriber's frame reaches the last one. */
  onLast?: () => void;
  target: number;
}

async function connectAll(
  url: string,
  n: number,
  protocol: string | undefined,
  onOpen: (ws: WebSocket, c: Counter) => Promise<void>,
): Promise<{ sockets: WebSocket[]; counters: Counter[] }> {
  const sockets: WebSocket[] = [];
  const counters: Counter[] = [];
  // In waves, so 1000 handshakes do not all land in one tick.
  for (let i = 0; i < n; i += 100) {
    const wave = Array.from({ length: Math.min(100, n - i) }, async () => {
      const ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
      const c: Counter = { received: 0, coalesced: 0, lastTMs: -1, target: Number.POSITIVE_INFINITY };
      sockets.push(ws);
      counters.push(c);
      await onOpen(ws, c);
    });
    await Promise.all(wave);
  }
  return { sockets, counters };
}

/** Arms every counter for the last frame; resolves with the number complete when all are, or at the timeout. */
function arm(counters: Counter[], lastTMs: number, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve) => {
    let remaining = counters.length;
    const finish = (): void => {
      clearTimeout(timer);
      resolve(counters.filter((c) => c.lastTMs >= lastTMs).length);
    };
    const timer = setTimeout(finish, timeoutMs);
    for (const c of counters) {
      c.target = lastTMs;
      c.onLast = () => {
        c.onLast = undefined;
        if (--remaining === 0) finish();
      };
    }
    if (counters.length === 0) finish();
  });
}

async function publishFrames(frames: number, publish: (k: number) => void): Promise<void> {
  // Bursts of 10 with a turn of the event loop in between, so sockets get written as we go.
  for (let k = 0; k < frames; k++) {
    publish(k);
    if (k % 10 === 9) await new Promise<void>((r) => setImmediate(r));
  }
}

function result(wallMs: number, counters: readonly Counter[], complete: number): FanoutResult {
  const delivered = counters.reduce((s, c) => s + c.received, 0);
  return {
    wallMs: round(wallMs, 1),
    delivered,
    deliveredPerSec: round((delivered * 1000) / wallMs, 0),
    framesPerSecPerSubscriber: round((delivered * 1000) / wallMs / Math.max(1, counters.length), 1),
    coalesced: counters.reduce((s, c) => s + c.coalesced, 0),
    complete,
  };
}

/** The real server with `n` subscribers. */
async function viaServer(n: number, frames: number, logger: Logger, timeoutMs: number): Promise<FanoutResult> {
  const server = await AffectServer.start({ port: 0, host: '127.0.0.1', logger, heartbeatMs: 60_000 });
  const streamId = 'fan';
  const subject = new Subject<PipelineEvent>();
  server.attach({ streamId, hopMs: 250, windowMs: 1000, sampleRateHz: 16_000 }, subject);
  try {
    const { sockets, counters } = await connectAll(server.url, n, SUBPROTOCOL, async (ws, c) => {
      await new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('message', () => {
          ws.send(JSON.stringify({ type: 'subscribe', streamIds: [streamId] }));
          resolve();
        });
      });
      ws.on('message', (data) => {
        const s = (data as Buffer).toString('utf8');
        // Cheap parse: only affect frames count.
        if (!s.startsWith('{"type":"affect"')) return;
        const m = JSON.parse(s) as { tMs: number; coalesced?: number };
        c.received++;
        c.coalesced += m.coalesced ?? 0;
        c.lastTMs = m.tMs;
        if (m.tMs >= c.target) c.onLast?.();
      });
    });
    await sleep(200 + n);
    const done = arm(counters, (frames - 1) * 250, timeoutMs);
    const t0 = performance.now();
    await publishFrames(frames, (k) => subject.next(affectEvent(streamId, k)));
    const complete = await done;
    const wallMs = performance.now() - t0;
    for (const s of sockets) s.terminate();
    return result(wallMs, counters, complete);
  } finally {
    subject.complete();
    await server.close('bench done');
  }
}

/** A bare `ws` broadcast loop with `n` clients. */
async function viaBareWs(n: number, frames: number, timeoutMs: number): Promise<FanoutResult> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  try {
    const { sockets, counters } = await connectAll(`ws://127.0.0.1:${port}`, n, undefined, async (ws, c) => {
      await new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('open', () => resolve());
      });
      ws.on('message', (data) => {
        const m = JSON.parse((data as Buffer).toString('utf8')) as { tMs: number };
        c.received++;
        c.lastTMs = m.tMs;
        if (m.tMs >= c.target) c.onLast?.();
      });
    });
    await sleep(200 + n);
    const done = arm(counters, (frames - 1) * 250, timeoutMs);
    const t0 = performance.now();
    await publishFrames(frames, (k) => {
      // Same wire message the server sends, serialised once per frame.
      const msg = JSON.stringify(toWire('fan', k, affectEvent('fan', k)));
      for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(msg);
    });
    const complete = await done;
    const wallMs = performance.now() - t0;
    for (const s of sockets) s.terminate();
    return result(wallMs, counters, complete);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
}

/** Frames to publish for `n` subscribers: about `deliveries` messages in total, within [minFrames, maxFrames]. */
export function framesFor(n: number, deliveries: number, minFrames: number, maxFrames: number): number {
  return Math.max(minFrames, Math.min(maxFrames, Math.round(deliveries / Math.max(1, n))));
}

/** Runs both sides for each subscriber count (after a small untimed warm-up of both). */
export async function benchFanout(o: {
  subscribers: readonly number[];
  deliveries: number;
  minFrames: number;
  maxFrames: number;
  timeoutMs: number;
  logger: Logger;
}): Promise<FanoutPoint[]> {
  await viaBareWs(2, 200, o.timeoutMs);
  await viaServer(2, 200, o.logger, o.timeoutMs);
  const out: FanoutPoint[] = [];
  for (const n of o.subscribers) {
    const frames = framesFor(n, o.deliveries, o.minFrames, o.maxFrames);
    const bareWs = await viaBareWs(n, frames, o.timeoutMs);
    const server = await viaServer(n, frames, o.logger, o.timeoutMs);
    out.push({ subscribers: n, frames, server, bareWs, ratio: bareWs.deliveredPerSec > 0 ? round(server.deliveredPerSec / bareWs.deliveredPerSec, 3) : null });
  }
  return out;
}
