/**
 * `circumplex serve --backplane` as real child processes with the real engine, on one real
 * redis-server: a real WAV ingested on one node reaches subscribers on two other nodes
 * byte-identical to a single-node run; the ingesting node is SIGKILLed mid-stream and both its
 * subscriber and its publisher carry on on another node with no gap and no duplicate; an
 * unreachable Redis or a wrong password exits 2 with a clear message that never shows the password.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ServerMessage } from '../../core/protocol.js';
import { REPO_ROOT } from '../../core/config.js';
import { TestRedis, freePort } from '../helpers/redis-server.js';
import { connect, sleep, type TestClient } from '../helpers/server-helpers.js';
import { waitForListening } from '../helpers/listening.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const WAV = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav'));
const FRAME = 640; // 20 ms of 16 kHz s16le
const HEADER = 44;

interface Node {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const clients: TestClient[] = [];
let redis: TestRedis;
let single: Node;
let a: Node;
let b: Node;
let c: Node;

/** Starts `circumplex serve --input none` (resolves once it listens). */
async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Node> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', 'none', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn', CIRCUMPLEX_BACKPLANE: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const { port, stderr } = await waitForListening(child, 'serve');
  return { child, port, stderr, exited };
}

/** Starts a serve that must fail: resolves with its exit code and stderr. */
async function serveFails(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', 'none', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'trace', CIRCUMPLEX_BACKPLANE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stderr: out };
}

beforeAll(async () => {
  redis = await TestRedis.start();
  const cluster = ['--backplane', redis.url, '--node-ttl-ms', '1500', '--heartbeat-ms', '500'];
  [single, a, b, c] = await Promise.all([serve([]), serve(cluster), serve(cluster), serve(cluster)]);
}, 120_000);

afterAll(async () => {
  for (const cl of clients.splice(0)) cl.ws.terminate();
  for (const ch of children.splice(0)) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  await redis?.stop();
});

const track = (cl: TestClient) => (clients.push(cl), cl);

async function subscriber(n: Node, ids: string[], resumeFrom?: Record<string, number>): Promise<TestClient> {
  const cl = track(connect(n));
  await cl.opened;
  await cl.until((x) => x.of('hello').length === 1, 10_000, 'hello');
  cl.send({ type: 'subscribe', streamIds: ids, ...(resumeFrom ? { resumeFrom } : {}) });
  return cl;
}

/** Starts publishing `id` on `n`, retrying (stream busy while a dead node's claim lapses) up to `retryMs`. */
async function publisher(n: Node, id: string, retryMs = 0): Promise<TestClient> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    const p = track(connect(n, '/v1/ingest'));
    await p.opened;
    p.send({ type: 'start', streamId: id, encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    await p.until((x) => x.raw.some((r) => /"(started|error)"/.test(r)), 10_000, 'started');
    if (p.raw.some((r) => r.includes('"started"'))) return p;
    if (Date.now() > deadline) throw new Error(`publisher refused: ${p.raw.join(' ')}`);
    await sleep(150);
  }
}

/** Sends the WAV's samples [from, to) ms in 20 ms frames at real time (so no window is dropped). */
async function sendWav(p: TestClient, fromMs: number, toMs: number): Promise<void> {
  const t0 = performance.now();
  for (let ms = fromMs, k = 0; ms < toMs; ms += 20, k++) {
    const off = HEADER + (ms / 20) * FRAME;
    p.ws.send(WAV.subarray(off, off + FRAME));
    const due = t0 + (k + 1) * 20;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

const frames = (cl: TestClient, id: string) => cl.raw.filter((r) => r.includes(`"streamId":"${id}"`) && /^\{"type":"(affect|transcript|status)"/.test(r));
const seqsOf = (ms: ServerMessage[], id: string) => ms.filter((m) => 'seq' in m && m.streamId === id).map((m) => (m as { seq: number }).seq);
const ended = (id: string) => (cl: TestClient) => cl.of('status').some((m) => m.streamId === id && m.state === 'ended');

describe('serve --backplane: real processes, real engine, one Redis', () => {
  it('a WAV ingested on node A reaches subscribers on B and C byte-identical to a single-node run (same seqs, same values)', async () => {
    // Live ingest drops a window when inference stalls past a hop (the 'latest' policy, reported in the
    // stream's frames as droppedWindows, a running count); under a parallel test run on 2 cores either node can stall.
    // The comparison needs both runs lossless, so a run whose frames report a drop is repeated on a
    // fresh stream id (at most 3 runs); every assertion below holds for the run that is compared.
    const run = async (id: string) => {
      const ref = await subscriber(single, [id]);
      const onB = await subscriber(b, [id]);
      const onC = await subscriber(c, ['*']);
      const [p1, p2] = await Promise.all([publisher(single, id), publisher(a, id)]);
      await Promise.all([sendWav(p1, 0, 4000), sendWav(p2, 0, 4000)]);
      p1.send({ type: 'stop' });
      p2.send({ type: 'stop' });
      for (const cl of [ref, onB, onC]) await cl.until(ended(id), 20_000, 'end');
      const lossless = (cl: TestClient): boolean =>
        frames(cl, id)
          .filter((x) => x.startsWith('{"type":"affect"'))
          .every((x) => /"droppedWindows":0[,}]/.test(x));
      return { id, want: frames(ref, id), onB: frames(onB, id), onC: frames(onC, id), lossless: lossless(ref) && lossless(onB) };
    };
    let r = await run('call-1');
    for (let k = 2; k <= 3 && !r.lossless; k++) r = await run(`call-1-run${k}`);
    expect(r.lossless, `every run dropped windows under load (last: ${r.id})`).toBe(true);
    expect(r.want.filter((x) => x.startsWith('{"type":"affect"')).length).toBeGreaterThanOrEqual(12);
    expect(r.onB).toEqual(r.want);
    expect(r.onC).toEqual(r.want);
  }, 120_000);

  it('SIGKILL of the ingesting node mid-stream: the subscriber resumes on B with no gap and no duplicate, the publisher continues the stream on B', async () => {
    const sub = await subscriber(a, ['k1']);
    const watcher = await subscriber(c, ['k1']);
    const p = await publisher(a, 'k1');
    await sendWav(p, 0, 3000);
    await sub.until((x) => x.of('affect').length >= 8, 10_000, '8 frames on A');
    await watcher.until((x) => x.of('affect').length >= 8, 10_000, '8 frames on C');
    a.child.kill('SIGKILL');
    await a.exited;
    const got = seqsOf(sub.messages, 'k1');
    const last = Math.max(...got);
    // The publisher comes back on B with the same stream id (refused until A's claim lapses).
    const p2 = await publisher(b, 'k1', 10_000);
    const sub2 = await subscriber(b, ['k1'], { k1: last });
    await sendWav(p2, 3000, 6000);
    p2.send({ type: 'stop' });
    await sub2.until(ended('k1'), 20_000, 'end on B');
    await watcher.until(ended('k1'), 20_000, 'end on C');
    const all = [...got, ...seqsOf(sub2.messages, 'k1')];
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i));
    expect(sub2.of('resumed')[0]).toMatchObject({ fromSeq: last, missed: 0 });
    // One stream, not two: C saw every seq once, and the frames after the failover came from B.
    const w = seqsOf(watcher.messages, 'k1');
    expect(w).toEqual(all);
    // 3 s of audio on B: frames at 1.0, 1.25 … 3.0 s of its pipeline (smoothing restarts; seq does not).
    // B's first frames can take seqs that A delivered to `sub` but never wrote to Redis before it died;
    // the resumed subscriber already holds those seqs and is not sent them again (docs/deploy.md, what is
    // lost on failover), so it gets B's frames from the first seq after `last`: 9 less those (≤ 3 here).
    expect(sub2.of('affect').length).toBeGreaterThanOrEqual(6);
  }, 60_000);

  it('an unreachable Redis, a wrong password or an empty --backplane: exit 2 with a clear message, never the password', async () => {
    const secret = 'Zebra-Secret-9';
    const locked = await TestRedis.start({ password: secret });
    try {
      const closed = await freePort();
      const [down, wrong, empty] = await Promise.all([
        serveFails(['--backplane', `redis://:${secret}@127.0.0.1:${closed}/0`]),
        serveFails([], { CIRCUMPLEX_BACKPLANE: `redis://:not-${secret}@127.0.0.1:${locked.port}/0` }),
        // `--backplane "$REDIS_URL"` with the variable unset: not a lone node that shares nothing.
        serveFails(['--backplane', '']),
      ]);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toContain('AFFECT_ERR_CONFIG: --backplane: empty URL');
      expect(down.code).toBe(2);
      expect(down.stderr).toContain(`AFFECT_ERR_CONFIG: cannot reach the backplane redis://***@127.0.0.1:${closed}/0: connection refused`);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain(`backplane redis://***@127.0.0.1:${locked.port}/0 refused the credentials`);
      for (const r of [down, wrong]) expect(r.stderr).not.toContain(secret);
    } finally {
      await locked.stop();
    }
  }, 60_000);
});
