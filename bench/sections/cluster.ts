/**
 * Cluster (the Redis Streams backplane, issue 12), on loopback with a real `redis-server`:
 *
 * - latency: publish → receipt at a ws subscriber, p50/p99, for one node without a backplane
 *   (baseline), the same node with a backplane, and another node through Redis. Both nodes live in
 *   this process (so they share its one JS thread with the clients).
 * - fanout: frames/s delivered to N subscribers on one `serve` node vs split across two `serve`
 *   nodes (real child processes), fed through Redis by a publishing node in this process; the
 *   subscribers are ws clients in this process counting messages.
 *
 *   npx tsx bench/sections/cluster.ts [--quick]     # prints JSON
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../../core/protocol.js';
import { REPO_ROOT } from '../../core/config.js';
import { RedisHub } from '../../src/server/redis-hub.js';
import { AffectServer, type RunningServer } from '../../src/server/ws-server.js';
import { affectEvent } from './fanout.js';

/** Latency of one path, ms. */
export interface LatencyStats {
  readonly n: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** The cluster section's report. */
export interface ClusterSection {
  readonly redisVersion: string;
  /** Redis cost of the backplane: appends/s one node sustains, and bytes per message kept. */
  readonly redis: { readonly messages: number; readonly appendsPerSec: number; readonly logBytesPerMessage: number; readonly feedBytesPerMessage: number };
  readonly latency: { readonly singleNode: LatencyStats; readonly sameNode: LatencyStats; readonly otherNode: LatencyStats; readonly addedP99Ms: number };
  readonly fanout: {
    readonly subscribers: number;
    readonly frames: number;
    readonly oneNode: { readonly wallMs: number; readonly deliveredPerSec: number; readonly complete: number };
    readonly twoNodes: { readonly wallMs: number; readonly deliveredPerSec: number; readonly complete: number };
    /** twoNodes.deliveredPerSec ÷ oneNode.deliveredPerSec. */
    readonly ratio: number;
  };
}

/** Sizes. */
export interface ClusterOptions {
  /** Messages timed per latency path. */
  latencyMessages: number;
  /** Messages per second while timing latency. */
  latencyRate: number;
  /** Subscribers in the fan-out run. */
  subscribers: number;
  /** Frames published in the fan-out run. */
  frames: number;
  /** Smaller Redis cost run. */
  quick: boolean;
}

/** Defaults (full size). */
export const DEFAULT_CLUSTER: ClusterOptions = { latencyMessages: 2000, latencyRate: 200, subscribers: 1000, frames: 200, quick: false };

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stats(xs: number[]): LatencyStats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { n: s.length, p50Ms: r(q(0.5)), p99Ms: r(q(0.99)), maxMs: r(s.at(-1) ?? NaN) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A redis-server on a free port (no persistence); stop() kills it. */
async function startRedis(): Promise<{ url: string; version: string; stop: () => void }> {
  const v = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error('redis-server is not installed (scripts/setup-system.sh installs it)');
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const stop = () => void child.kill('SIGKILL');
  process.once('exit', stop);
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(25);
  }
  return { url: `redis://127.0.0.1:${port}/0`, version: /v=(\S+)/.exec(v.stdout)?.[1] ?? 'unknown', stop };
}

/** A ws subscriber to `*` that calls onMessage with each raw message. */
async function subscribe(port: number, onMessage: (raw: string) => void): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream?streams=*`, [SUBPROTOCOL], { perMessageDeflate: false });
  ws.on('message', (d) => onMessage((d as Buffer).toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Times publish → receipt for `n` messages on `pub`, received by a subscriber of `sub`. */
async function timeLatency(pub: RunningServer, sub: RunningServer, streamId: string, o: ClusterOptions): Promise<LatencyStats> {
  const sentAt = new Map<number, number>();
  const got: number[] = [];
  const ws = await subscribe(sub.port, (raw) => {
    const now = performance.now();
    const m = /"streamId":"([^"]+)","seq":(\d+)/.exec(raw);
    if (!m || m[1] !== streamId) return;
    const t = sentAt.get(Number(m[2]));
    if (t !== undefined) got.push(now - t);
  });
  const claim = await pub.hub.claim(streamId);
  if (!claim.ok) throw new Error(claim.message);
  pub.hub.openStream({ streamId, hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
  await sleep(100);
  const gap = 1000 / o.latencyRate;
  const t0 = performance.now();
  for (let k = 0; k < o.latencyMessages; k++) {
    const due = t0 + k * gap;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // Stamped before publish(), which hands same-node subscribers their frame synchronously.
    sentAt.set((pub.hub.stream(streamId)?.lastSeq ?? -1) + 1, performance.now());
    pub.hub.publish(streamId, affectEvent(streamId, k));
  }
  const end = Date.now() + 5000;
  while (got.length < o.latencyMessages && Date.now() < end) await sleep(20);
  ws.terminate();
  return stats(got);
}

/** Starts `circumplex serve --input none --backplane url` and resolves with its port. */
async function serveNode(url: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'circumplex.mjs'), 'serve', '--port', '0', '--input', 'none', '--backplane', url], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  process.once('exit', () => void child.kill('SIGKILL'));
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { port, child };
}

/** Fan-out of `frames` frames to `subscribers` ws clients spread over `ports`. */
async function fanout(
  pubHub: RedisHub,
  ports: number[],
  streamId: string,
  o: ClusterOptions,
): Promise<{ wallMs: number; deliveredPerSec: number; complete: number }> {
  const counts = new Array<number>(o.subscribers).fill(0);
  let done = 0;
  let lastAt = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < o.subscribers; i++) {
    const port = ports[i % ports.length] as number;
    sockets.push(
      await subscribe(port, (raw) => {
        if (!raw.startsWith('{"type":"affect"') || !raw.includes(`"streamId":"${streamId}"`)) return;
        if (++counts[i]! === o.frames) {
          done++;
          lastAt = performance.now();
        }
      }),
    );
  }
  const claim = await pubHub.claim(streamId);
  if (!claim.ok) throw new Error(claim.message);
  pubHub.openStream({ streamId, hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
  await sleep(300);
  const t0 = performance.now();
  for (let k = 0; k < o.frames; k++) {
    pubHub.publish(streamId, affectEvent(streamId, k));
    // Let the writes go out in batches, as a live stream would.
    if (k % 10 === 9) await sleep(0);
  }
  const end = Date.now() + 60_000;
  while (done < o.subscribers && Date.now() < end) await sleep(20);
  const wallMs = (done === o.subscribers ? lastAt : performance.now()) - t0;
  const delivered = counts.reduce((a, b) => a + b, 0);
  for (const s of sockets) s.terminate();
  return { wallMs: Math.round(wallMs), deliveredPerSec: Math.round(delivered / (wallMs / 1000)), complete: done };
}

/** Writes `n` messages through one node as fast as Redis takes them; bytes per kept message. */
async function redisCost(url: string, n: number, ringSize: number): Promise<ClusterSection['redis']> {
  const hub = await RedisHub.connect({ url, logger: silent, ringSize: Math.max(ringSize, n), keyPrefix: 'cost:' });
  try {
    const claim = await hub.claim('cost');
    if (!claim.ok) throw new Error(claim.message);
    hub.openStream({ streamId: 'cost', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const t0 = performance.now();
    for (let k = 0; k < n; k++) hub.publish('cost', affectEvent('cost', k));
    while (hub.backplane().pendingWrites > 0) await sleep(10);
    const s = (performance.now() - t0) / 1000;
    const { Redis } = await import('ioredis');
    const r = new Redis(url);
    const logBytes = Number(await r.call('MEMORY', 'USAGE', 'cost:log:cost', 'SAMPLES', '0'));
    const feedBytes = Number(await r.call('MEMORY', 'USAGE', 'cost:feed', 'SAMPLES', '0'));
    r.disconnect();
    return { messages: n, appendsPerSec: Math.round(n / s), logBytesPerMessage: Math.round(logBytes / n), feedBytesPerMessage: Math.round(feedBytes / n) };
  } finally {
    await hub.close();
  }
}

/** Runs the cluster section. */
export async function benchCluster(opts: Partial<ClusterOptions> = {}, log: (s: string) => void = () => {}): Promise<ClusterSection> {
  const o: ClusterOptions = { ...DEFAULT_CLUSTER, ...opts };
  const redis = await startRedis();
  const closers: (() => unknown)[] = [];
  try {
    log('[bench] cluster: Redis cost per message');
    const redisCosts = await redisCost(redis.url, o.quick ? 2000 : 20_000, 2048);
    log(`[bench] cluster: latency, ${o.latencyMessages} messages at ${o.latencyRate}/s per path`);
    const single = await AffectServer.start({ port: 0, logger: silent });
    closers.push(() => single.close());
    const singleNode = await timeLatency(single, single, 'lat-single', o);
    const hubA = await RedisHub.connect({ url: redis.url, logger: silent });
    const hubB = await RedisHub.connect({ url: redis.url, logger: silent });
    const a = await AffectServer.start({ port: 0, logger: silent, hub: hubA });
    const b = await AffectServer.start({ port: 0, logger: silent, hub: hubB });
    closers.push(
      () => a.close(),
      () => b.close(),
      () => hubA.close(),
      () => hubB.close(),
    );
    const sameNode = await timeLatency(a, a, 'lat-same', o);
    const otherNode = await timeLatency(a, b, 'lat-other', o);

    log(`[bench] cluster: fan-out of ${o.frames} frames to ${o.subscribers} subscribers, 1 serve node vs 2`);
    const [n1, n2] = await Promise.all([serveNode(redis.url), serveNode(redis.url)]);
    closers.push(
      () => n1.child.kill('SIGKILL'),
      () => n2.child.kill('SIGKILL'),
    );
    const pubHub = await RedisHub.connect({ url: redis.url, logger: silent });
    closers.push(() => pubHub.close());
    const oneNode = await fanout(pubHub, [n1.port], 'fan-1', o);
    const twoNodes = await fanout(pubHub, [n1.port, n2.port], 'fan-2', o);
    return {
      redisVersion: redis.version,
      redis: redisCosts,
      latency: { singleNode, sameNode, otherNode, addedP99Ms: Math.round((otherNode.p99Ms - singleNode.p99Ms) * 1000) / 1000 },
      fanout: {
        subscribers: o.subscribers,
        frames: o.frames,
        oneNode,
        twoNodes,
        ratio: Math.round((twoNodes.deliveredPerSec / oneNode.deliveredPerSec) * 100) / 100,
      },
    };
  } finally {
    for (const c of closers.reverse()) await c();
    redis.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  benchCluster(quick ? { latencyMessages: 300, subscribers: 100, frames: 50, quick } : {}, (s) => process.stderr.write(`${s}\n`)).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
}
