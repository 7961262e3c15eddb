/**
 * Pipeline efficiency and batch sweeps.
 *
 * Efficiency: windows/s through the whole pipeline (M offline streams at once, lossless, batched
 * across streams by the model's dynamic batcher) divided by windows/s of the same ONNX session
 * driven bare — `runBatch` straight on the worker session, one batch in flight, with the batch size
 * the pipeline actually achieved — measured in the same run. 1.0 means the pipeline costs nothing
 * on top of inference.
 *
 * Batch sweep: windows/s of the bare session at batch sizes 1..64 (on the GPU section too).
 */
import { lastValueFrom, merge, toArray } from 'rxjs';
import type { Engine } from '../../src/engine.js';
import { FlowControl } from '../../streams/flow.js';
import type { SpeechAffectOutput } from '../../models/ports.js';
import { pacedSource, round } from '../lib/common.js';

interface BatchableSpeech {
  readonly windowSamples: number | null;
  readonly batcher: { readonly stats: { batches: number; batchedItems: number; maxBatchSeen: number } };
  runBatch(items: readonly Float32Array[]): Promise<SpeechAffectOutput[]>;
}

/** The speech model as the batching adapter, when it is one (the bare baseline needs `runBatch`). */
export function batchable(engine: Engine): BatchableSpeech | undefined {
  const s = engine.speech as unknown as Partial<BatchableSpeech>;
  return typeof s.runBatch === 'function' && s.batcher ? (s as BatchableSpeech) : undefined;
}

/** The efficiency section. */
export interface EfficiencySection {
  readonly streams: number;
  readonly audioSecondsPerStream: number;
  readonly pipeline: {
    readonly windows: number;
    readonly wallMs: number;
    readonly windowsPerSec: number;
    readonly meanBatch: number;
    readonly maxBatch: number;
  };
  readonly bare: { readonly batchSize: number; readonly windows: number; readonly wallMs: number; readonly windowsPerSec: number };
  /** pipeline windows/s ÷ bare windows/s. */
  readonly efficiency: number;
}

function windowsFrom(samples: Float32Array, winSamples: number, count: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let k = 0; k < count; k++) {
    const w = new Float32Array(winSamples);
    const start = (k * 4000) % Math.max(1, samples.length - winSamples);
    w.set(samples.subarray(start, start + winSamples));
    out.push(w);
  }
  return out;
}

/** Windows/s of the bare session at one batch size, for about `targetMs` (at least 3 batches). */
export async function bareThroughput(
  speech: BatchableSpeech,
  samples: Float32Array,
  batchSize: number,
  targetMs: number,
  maxWindows = Infinity,
): Promise<{ windows: number; wallMs: number; windowsPerSec: number }> {
  const winSamples = speech.windowSamples ?? 16_000;
  const pool = windowsFrom(samples, winSamples, Math.max(batchSize, 8));
  await speech.runBatch(pool.slice(0, batchSize)); // warm this shape
  let windows = 0;
  const t0 = performance.now();
  while ((performance.now() - t0 < targetMs || windows < 3 * batchSize) && windows + batchSize <= maxWindows) {
    const batch: Float32Array[] = [];
    for (let i = 0; i < batchSize; i++) batch.push(pool[(windows + i) % pool.length] as Float32Array);
    await speech.runBatch(batch);
    windows += batchSize;
  }
  const wallMs = performance.now() - t0;
  return { windows, wallMs: round(wallMs, 1), windowsPerSec: round((windows * 1000) / wallMs, 1) };
}

/** Runs the efficiency comparison. */
export async function benchEfficiency(
  engine: Engine,
  samples: Float32Array,
  o: { streams: number; audioSeconds: number; bareTargetMs: number },
): Promise<EfficiencySection | { skipped: string }> {
  const speech = batchable(engine);
  if (!speech) return { skipped: `speech model ${engine.speech.id} exposes no runBatch/batcher, so there is no bare baseline to compare with` };
  const s0 = { ...speech.batcher.stats };
  const flows: FlowControl[] = [];
  const t0 = performance.now();
  const all = await lastValueFrom(
    merge(
      ...Array.from({ length: o.streams }, (_, i) => {
        const flow = new FlowControl({ highWater: 4 });
        flows.push(flow);
        const id = `eff-${i}`;
        return pacedSource(samples, { streamId: id, durationMs: o.audioSeconds * 1000, realtime: false, flow, chunkMs: 100 }).pipe(
          engine.pipeline(id, { whenBusy: 'queue', flow }),
        );
      }),
    ).pipe(toArray()),
  );
  const wallMs = performance.now() - t0;
  for (const f of flows) f.close();
  const s1 = { ...speech.batcher.stats };
  const windows = s1.batchedItems - s0.batchedItems;
  const batches = s1.batches - s0.batches;
  const meanBatch = batches > 0 ? windows / batches : 1;
  const frames = all.filter((e) => e.kind === 'affect').length;
  const pipelineWps = (windows * 1000) / wallMs;
  const bareSize = Math.max(1, Math.round(meanBatch));
  const bare = await bareThroughput(speech, samples, bareSize, o.bareTargetMs);
  return {
    streams: o.streams,
    audioSecondsPerStream: o.audioSeconds,
    pipeline: {
      windows: Math.max(windows, frames),
      wallMs: round(wallMs, 1),
      windowsPerSec: round(pipelineWps, 1),
      meanBatch: round(meanBatch, 2),
      maxBatch: s1.maxBatchSeen,
    },
    bare: { batchSize: bareSize, ...bare },
    efficiency: round(pipelineWps / bare.windowsPerSec, 3),
  };
}

/** Bare-session throughput at each batch size. */
export async function benchBatchSweep(
  engine: Engine,
  samples: Float32Array,
  o: { sizes: readonly number[]; targetMsPerSize: number },
): Promise<{ provider: string; points: ReadonlyArray<{ batchSize: number; windowsPerSec: number; msPerBatch: number }> } | { skipped: string }> {
  const speech = batchable(engine);
  if (!speech) return { skipped: `speech model ${engine.speech.id} exposes no runBatch` };
  const points: { batchSize: number; windowsPerSec: number; msPerBatch: number }[] = [];
  for (const size of o.sizes) {
    // Median of three short runs: the machine may be shared, one run can catch a neighbour's burst.
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await bareThroughput(speech, samples, size, o.targetMsPerSize / 3));
    runs.sort((a, b) => a.windowsPerSec - b.windowsPerSec);
    const r = runs[1] as (typeof runs)[number];
    points.push({ batchSize: size, windowsPerSec: r.windowsPerSec, msPerBatch: round((r.wallMs * size) / r.windows, 3) });
  }
  return { provider: engine.speech.provider, points };
}
