/**
 * Real-time sections: end-to-end latency on one stream, and scaling to 1, 2, 4, 8, … concurrent
 * real-time streams until the latency budget (hop + 100 ms by default) breaks.
 *
 * Latency is measured from the moment the last sample of a window is available (the paced source
 * emits a chunk when its last sample is due, like a live capture) to the moment the frame for that
 * window arrives at a WebSocket subscriber on loopback: windowing, the speech model in its worker
 * thread (batched across streams), fusion, smoothing, the hub, JSON encoding and the socket.
 */
import { finalize, type Observable } from 'rxjs';
import WebSocket from 'ws';
import type { Engine } from '../../src/engine.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { SUBPROTOCOL } from '../../core/protocol.js';
import type { PipelineEvent } from '../../core/types.js';
import { ArrivalLog, ResourceMeter, pacedSource, round, sleep, summarize, type LatencySummary } from '../lib/common.js';

/** One run of N concurrent real-time streams. */
export interface RealtimeRun {
  readonly streams: number;
  readonly audioSecondsPerStream: number;
  /** Frame latency, last sample of the window → frame received by the subscriber, ms. */
  readonly latencyMs: LatencySummary;
  readonly framesReceived: number;
  readonly framesExpected: number;
  readonly droppedWindows: number;
  /** Frames the server coalesced for the (single, fast) subscriber. */
  readonly coalescedFrames: number;
  /** Average CPU used by the whole process (all threads) divided by the streams, in cores. */
  readonly cpuCoresPerStream: number;
  readonly cpuCoresTotal: number;
  /** (peak RSS − RSS before the run) / streams, MiB. */
  readonly rssPerStreamMiB: number;
  readonly rssPeakMiB: number;
  /** Speech-model batches during the run: mean and largest batch size. */
  readonly batching: { readonly batches: number; readonly meanBatch: number; readonly maxBatch: number } | null;
}

/** Options for {@link runRealtimeStreams}. */
export interface RealtimeOptions {
  streams: number;
  durationMs: number;
  chunkMs: number;
  /** Prefix for stream ids (must be unique per run: ended streams stay known to the hub). */
  idPrefix: string;
}

interface BatcherLike {
  readonly stats: { batches: number; batchedItems: number; maxBatchSeen: number };
}

function batcherOf(engine: Engine): BatcherLike | undefined {
  const b = (engine.speech as unknown as { batcher?: BatcherLike }).batcher;
  return b && typeof b.stats === 'object' ? b : undefined;
}

/** Opens a subscriber on `server` for every stream; resolves once subscribed. */
async function openSubscriber(server: RunningServer, onMessage: (msg: Record<string, unknown>, at: number) => void): Promise<WebSocket> {
  const ws = new WebSocket(server.url, SUBPROTOCOL);
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('message', () => {
      // First message is `hello`; subscribe to every stream, present and future.
      ws.send(JSON.stringify({ type: 'subscribe', streamIds: ['*'] }));
      ws.off('error', reject);
      resolve();
    });
  });
  ws.on('message', (data) => {
    const at = performance.now();
    onMessage(JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>, at);
  });
  return ws;
}

/** Runs N paced real-time streams through the engine and server and measures them. */
export async function runRealtimeStreams(engine: Engine, server: RunningServer, samples: Float32Array, o: RealtimeOptions): Promise<RealtimeRun> {
  const { hopMs, windowMs } = engine.options;
  const logs = new Map<string, ArrivalLog>();
  const latencies: number[] = [];
  let frames = 0;
  let dropped = 0;
  let coalesced = 0;
  const ws = await openSubscriber(server, (msg, at) => {
    if (msg['type'] !== 'affect') return;
    const id = msg['streamId'] as string;
    const log = logs.get(id);
    if (!log) return;
    frames++;
    dropped += Number(msg['droppedWindows'] ?? 0);
    coalesced += Number(msg['coalesced'] ?? 0);
    const arrived = log.arrivalOf(Number(msg['tMs']));
    if (arrived !== undefined) latencies.push(at - arrived);
  });
  await sleep(50);
  const b = batcherOf(engine);
  const b0 = b ? { ...b.stats } : undefined;
  const meter = new ResourceMeter();
  const done: Promise<void>[] = [];
  for (let i = 0; i < o.streams; i++) {
    const id = `${o.idPrefix}-${i}`;
    const log = new ArrivalLog();
    logs.set(id, log);
    // Stagger the streams over one hop: real callers do not start in lockstep.
    const source$ = pacedSource(samples, {
      streamId: id,
      durationMs: o.durationMs,
      chunkMs: o.chunkMs,
      realtime: true,
      startDelayMs: (i * hopMs) / o.streams,
      onChunk: (endMs, wall) => log.record(endMs, wall),
    });
    let resolve!: () => void;
    done.push(new Promise<void>((r) => (resolve = r)));
    const events$: Observable<PipelineEvent> = source$.pipe(
      server.markArrivals(id),
      engine.pipeline(id),
      finalize(() => resolve()),
    );
    server.attach({ streamId: id, hopMs, windowMs, sampleRateHz: 16_000 }, events$);
  }
  await Promise.all(done);
  await sleep(Math.max(300, hopMs));
  const res = meter.stop();
  ws.close();
  const b1 = b ? { ...b.stats } : undefined;
  const batches = b0 && b1 ? b1.batches - b0.batches : 0;
  const perStreamFrames = Math.floor((o.durationMs - windowMs) / hopMs) + 1;
  return {
    streams: o.streams,
    audioSecondsPerStream: o.durationMs / 1000,
    latencyMs: summarize(latencies),
    framesReceived: frames,
    framesExpected: perStreamFrames * o.streams,
    droppedWindows: dropped,
    coalescedFrames: coalesced,
    cpuCoresPerStream: round(res.cpuCores / o.streams, 4),
    cpuCoresTotal: round(res.cpuCores, 3),
    rssPerStreamMiB: round(Math.max(0, res.rssPeakMiB - res.rssStartMiB) / o.streams, 2),
    rssPeakMiB: round(res.rssPeakMiB, 1),
    batching: b0 && b1 && batches > 0 ? { batches, meanBatch: round((b1.batchedItems - b0.batchedItems) / batches, 2), maxBatch: b1.maxBatchSeen } : null,
  };
}

/** The scaling section. */
export interface ScalingSection {
  readonly budgetMs: number;
  readonly criterion: string;
  readonly levels: ReadonlyArray<RealtimeRun & { readonly withinBudget: boolean }>;
  /** Most streams that stayed within budget (0 if even one did not). */
  readonly maxStreamsWithinBudget: number;
  /** Why the sweep stopped. */
  readonly stoppedBecause: string;
}

/** Options for {@link benchScaling}. */
export interface ScalingOptions {
  levels: readonly number[];
  durationMs: number;
  chunkMs: number;
  budgetMs: number;
  /** Stop starting new levels after this much wall time, ms. */
  timeBudgetMs: number;
}

/** Doubles the number of real-time streams until p95 latency exceeds the budget. */
export async function benchScaling(engine: Engine, server: RunningServer, samples: Float32Array, o: ScalingOptions): Promise<ScalingSection> {
  const t0 = performance.now();
  const levels: Array<RealtimeRun & { withinBudget: boolean }> = [];
  let stoppedBecause = `reached the largest level tried (${o.levels.at(-1) ?? 0} streams)`;
  for (const n of o.levels) {
    if (performance.now() - t0 > o.timeBudgetMs) {
      stoppedBecause = `time budget of ${Math.round(o.timeBudgetMs / 1000)} s used up before ${n} streams`;
      break;
    }
    const run = await runRealtimeStreams(engine, server, samples, { streams: n, durationMs: o.durationMs, chunkMs: o.chunkMs, idPrefix: `scale${n}` });
    // Dropped windows mean frames that never come: a budget break as well.
    const withinBudget = run.latencyMs.p95 !== null && run.latencyMs.p95 <= o.budgetMs && run.droppedWindows === 0;
    levels.push({ ...run, withinBudget });
    if (!withinBudget) {
      stoppedBecause = `budget broken at ${n} streams (p95 ${run.latencyMs.p95 ?? 'n/a'} ms, ${run.droppedWindows} dropped windows)`;
      break;
    }
  }
  const ok = levels.filter((l) => l.withinBudget);
  return {
    budgetMs: o.budgetMs,
    criterion: 'p95 latency <= budget and no dropped windows',
    levels,
    maxStreamsWithinBudget: ok.length ? Math.max(...ok.map((l) => l.streams)) : 0,
    stoppedBecause,
  };
}
