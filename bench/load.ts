/**
 * Bounded load test of the live server (not a CI test: `npm run bench` calls {@link benchLoad}).
 * Starts `circumplex serve --input none` as a real child process with the real engine, then, from
 * this process, N publishers stream the shipped speech WAV over `/v1/ingest` at real time (20 ms
 * frames, paced by wall clock) while M subscribers read every stream on `/v1/stream`. Reports
 * delivered/expected, seq gaps not explained by coalescing, end-to-end latency (the wall time from
 * sending the last audio sample of a frame's window to a subscriber receiving the frame),
 * and the server's memory before and after.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { SUBPROTOCOL, type ServerMessage } from '../core/protocol.js';
import { REPO_ROOT } from '../core/config.js';

/** Options for {@link benchLoad}. */
export interface LoadBenchOptions {
  /** Publishers (streams), each at real time. Default 4. */
  publishers: number;
  /** Subscribers, each subscribed to every stream. Default 16. */
  subscribers: number;
  /** Seconds of audio each publisher sends. Default 10. */
  durationS: number;
  /** Frame size of the publishers, ms. Default 20 (telephony). */
  chunkMs: number;
  /** Speech model id the server loads. Default 'speech-fixture'. */
  speechModel: string;
  /** Device for the server's models. Default 'cpu'. */
  device: 'auto' | 'cpu' | 'cuda';
  /** Seconds to wait for the last frames after the publishers stop. Default 15. */
  drainS: number;
}

export const DEFAULT_LOAD_BENCH: LoadBenchOptions = {
  publishers: 4,
  subscribers: 16,
  durationS: 10,
  chunkMs: 20,
  speechModel: 'speech-fixture',
  device: 'cpu',
  drainS: 15,
};

/** Server memory as /healthz reports it. */
export interface MemorySample {
  rssMB: number;
  heapUsedMB: number;
}

/** What {@link benchLoad} measured (JSON-able). */
export interface LoadBenchResult {
  options: LoadBenchOptions;
  /** Stream messages the server published (all streams, from its hub). */
  published: number;
  /** published × subscribers. */
  expected: number;
  /** Stream messages the subscribers received together. */
  delivered: number;
  deliveredRatio: number;
  /** Seq discontinuities not explained by `coalesced` (should be 0). */
  gaps: number;
  /** Affect frames merged for slow subscribers (explained drops). */
  coalesced: number;
  /** Windows the live model stage dropped (inference slower than audio). */
  droppedWindows: number;
  /** Affect frames per stream the subscribers saw vs audio-time windows expected (durationS / hop). */
  affectFramesPerStream: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; samples: number };
  memory: { before: MemorySample; after: MemorySample };
  /** Subscribers that got every stream's final 'ended' status before the drain timeout. */
  subscribersComplete: number;
  wallS: number;
}

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const WAV = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function health(port: number): Promise<{ memory: { rssBytes: number; heapUsedBytes: number }; streams: { streamId: string; lastSeq: number }[] }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return (await r.json()) as never;
}

const mem = (h: { memory: { rssBytes: number; heapUsedBytes: number } }): MemorySample => ({
  rssMB: Math.round((h.memory.rssBytes / 2 ** 20) * 10) / 10,
  heapUsedMB: Math.round((h.memory.heapUsedBytes / 2 ** 20) * 10) / 10,
});

/** Runs the load test; the server process is always stopped before this resolves. */
export async function benchLoad(opts: Partial<LoadBenchOptions> = {}): Promise<LoadBenchResult> {
  const o: LoadBenchOptions = { ...DEFAULT_LOAD_BENCH, ...opts };
  for (const k of ['publishers', 'subscribers', 'durationS', 'chunkMs', 'drainS'] as const) {
    if (!(Number.isFinite(o[k]) && o[k] > 0)) throw new RangeError(`benchLoad: ${k} must be > 0, got ${o[k]}`);
  }
  const child = spawn(process.execPath, [BIN, 'serve', '--input', 'none', '--port', '0', '--speech-model', o.speechModel, '--device', o.device], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const sockets: WebSocket[] = [];
  try {
    let err = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(err);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${err}`)));
      setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 60_000).unref();
    });
    const before = mem(await health(port));

    // Subscribers: every stream; latency needs each stream's start time, kept below.
    const streamT0 = new Map<string, number>();
    const latencies: number[] = [];
    const perSub: { last: Map<string, number>; ended: Set<string>; delivered: number; gaps: number; coalesced: number; dropped: number; affect: number }[] = [];
    await Promise.all(
      Array.from({ length: o.subscribers }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream?streams=*`, [SUBPROTOCOL]);
        sockets.push(ws);
        const st = { last: new Map<string, number>(), ended: new Set<string>(), delivered: 0, gaps: 0, coalesced: 0, dropped: 0, affect: 0 };
        perSub.push(st);
        ws.on('message', (data) => {
          const now = performance.now();
          const m = JSON.parse((data as Buffer).toString('utf8')) as ServerMessage;
          // Every message that carries the stream's seq (turn/alert since protocol 1.2.0, VAD on by default).
          if (m.type !== 'affect' && m.type !== 'transcript' && m.type !== 'status' && m.type !== 'turn' && m.type !== 'alert') return;
          st.delivered++;
          const prev = st.last.get(m.streamId) ?? -1;
          const explained = m.type === 'affect' ? (m.coalesced ?? 0) : 0;
          if (m.seq !== prev + 1 + explained) st.gaps++;
          st.last.set(m.streamId, m.seq);
          if (m.type === 'affect') {
            st.affect++;
            st.coalesced += m.coalesced ?? 0;
            st.dropped += m.droppedWindows;
            const t0 = streamT0.get(m.streamId);
            if (t0 !== undefined) latencies.push(now - (t0 + m.tMs));
          }
          if (m.type === 'status' && m.state === 'ended') st.ended.add(m.streamId);
        });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
      }),
    );

    // Publishers: the speech WAV (header stripped by us), looped to durationS, paced by wall clock.
    const wav = readFileSync(WAV);
    const pcm = wav.subarray(wav.indexOf('data') + 8);
    const chunkBytes = (16000 * 2 * o.chunkMs) / 1000;
    const totalChunks = Math.round((o.durationS * 1000) / o.chunkMs);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: o.publishers }, async (_, p) => {
        const id = `load-${p}`;
        const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ingest`, [SUBPROTOCOL]);
        sockets.push(ws);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        ws.send(JSON.stringify({ type: 'start', streamId: id, encoding: 's16le', sampleRateHz: 16000, channels: 1 }));
        const start = performance.now();
        streamT0.set(id, start);
        for (let k = 0; k < totalChunks; k++) {
          // Send chunk k when its last sample is due, as a live source would.
          const due = start + (k + 1) * o.chunkMs;
          const wait = due - performance.now();
          if (wait > 1) await sleep(wait);
          const off = (k * chunkBytes) % (pcm.length - chunkBytes);
          ws.send(pcm.subarray(off - (off % 2), off - (off % 2) + chunkBytes));
        }
        ws.send(JSON.stringify({ type: 'stop' }));
      }),
    );
    const deadline = performance.now() + o.drainS * 1000;
    while (performance.now() < deadline && perSub.some((s) => s.ended.size < o.publishers)) await sleep(50);
    const h = await health(port);
    const after = mem(h);
    const published = h.streams.filter((s) => s.streamId.startsWith('load-')).reduce((n, s) => n + s.lastSeq + 1, 0);
    const delivered = perSub.reduce((n, s) => n + s.delivered, 0);
    const sorted = latencies.sort((a, b) => a - b);
    const r1 = (v: number) => Math.round(v * 10) / 10;
    return {
      options: o,
      published,
      expected: published * o.subscribers,
      delivered,
      deliveredRatio: published > 0 ? Math.round((delivered / (published * o.subscribers)) * 10000) / 10000 : 0,
      gaps: perSub.reduce((n, s) => n + s.gaps, 0),
      coalesced: perSub.reduce((n, s) => n + s.coalesced, 0),
      droppedWindows: Math.round(perSub.reduce((n, s) => n + s.dropped, 0) / Math.max(1, o.subscribers)),
      affectFramesPerStream: r1(perSub.reduce((n, s) => n + s.affect, 0) / o.subscribers / o.publishers),
      latencyMs: {
        p50: r1(quantile(sorted, 0.5)),
        p90: r1(quantile(sorted, 0.9)),
        p99: r1(quantile(sorted, 0.99)),
        max: r1(sorted.at(-1) ?? Number.NaN),
        samples: sorted.length,
      },
      memory: { before, after },
      subscribersComplete: perSub.filter((s) => s.ended.size >= o.publishers).length,
      wallS: r1((performance.now() - t0) / 1000),
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        child.once('exit', r);
        setTimeout(() => {
          child.kill('SIGKILL');
          r(undefined);
        }, 6000).unref();
      });
    }
  }
}

// `npx tsx bench/load.ts [publishers] [subscribers] [seconds]` runs it alone.
if (process.argv[1]?.endsWith('load.ts')) {
  const [p, s, d] = process.argv.slice(2).map(Number);
  benchLoad({ ...(p ? { publishers: p } : {}), ...(s ? { subscribers: s } : {}), ...(d ? { durationS: d } : {}) }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
