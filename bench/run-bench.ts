/**
 * `npm run bench` — the circumplex benchmark. Writes a JSON report to bench/results/ (git-ignored)
 * and prints a summary table. Every section is bounded in time and count and runs on loopback.
 *
 *   npm run bench                      # full run (about 2.5 minutes on 2 cores)
 *   npm run bench -- --quick           # CI size (well under a minute)
 *   npm run bench -- --device cuda     # GPU sections (skipped with a note when CUDA is missing)
 *   npm run bench -- --sections rtf,latency --out /tmp/bench
 *
 * Sections: rtf (real-time factor per stage and for the pipeline, one stream), latency (end-to-end
 * p50/p95/p99 at real-time pacing, one stream), scaling (1, 2, 4, … real-time streams until the
 * budget breaks, CPU and RSS per stream), efficiency (pipeline windows/s vs the bare ONNX session
 * at the same batch size), batch (bare session windows/s at batch 1..64), fanout (frames/s to 1,
 * 100, 1000 subscribers vs a bare ws broadcast loop), gpu (the same on CUDA, batch 1..64),
 * encoders (only when asked: `--encoders base,large` or `--sections encoders`; real-size wav2vec2
 * stand-ins, built into models/weights/standins/ when missing, and the default speech model: latency,
 * batch 1..32, real-time streams per core, memory, and the compute-once streaming path; see
 * bench/sections/encoders.ts) vad (only when asked: per-stream CPU with voice activity on vs off, Silero batched vs one
 * stream at a time; bench/sections/vad.ts), smoothing (each trajectory filter's position and velocity error on
 * synthetic trajectories; bench/sections/smoothing.ts), twilio (only when asked: concurrent Twilio calls against a
 * serve process until real time breaks; bench/twilio.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { REPO_ROOT, loadConfig } from '../core/config.js';
import { createEngine, DEFAULT_ENGINE, type Engine } from '../src/engine.js';
import { autoOrCountOption } from '../src/commands/options.js';
import { AffectServer, type RunningServer } from '../src/server/ws-server.js';
import { AffectError } from '../core/errors.js';
import { getLogger, setLogLevel } from '../core/log.js';
import { cudaProviderInstalled } from '../models/device.js';
import type { Device, SpeechRecognizerFactory, TextAffectModel } from '../models/ports.js';
import { loadSamples, machineInfo, round, type MachineInfo } from './lib/common.js';
import { benchRtf, bounded, type RtfSection } from './sections/rtf.js';
import { benchScaling, runRealtimeStreams, type RealtimeRun, type ScalingSection } from './sections/realtime.js';
import { benchBatchSweep, benchEfficiency } from './sections/efficiency.js';
import { benchFanout, type FanoutPoint } from './sections/fanout.js';
import { benchEncoders, encodersPlan, formatEncoders, STANDINS, type EncodersSection, type StandinName } from './sections/encoders.js';
import { parseSpeechStreaming, SPEECH_STREAMING_HELP, type SpeechStreamingFlag } from '../models/streaming-speech.js';
import { parseIntraOpThreads, THREADS_HELP, type IntraOpThreads } from '../models/threads.js';
import { benchCluster, type ClusterSection } from './sections/cluster.js';
import { benchVad, type VadSection } from './sections/vad.js';
import { VAD_LITE_FILE } from '../models/silero-vad.js';
import { benchSmoothing, formatSmoothing, type SmoothingSection } from './sections/smoothing.js';
import type { TwilioBenchResult } from './twilio.js';

export const SECTIONS = [
  'rtf',
  'latency',
  'scaling',
  'efficiency',
  'batch',
  'batching',
  'fanout',
  'load',
  'gpu',
  'encoders',
  'cluster',
  'vad',
  'twilio',
  'smoothing',
] as const;
export type SectionName = (typeof SECTIONS)[number];
/**
 * Sections a plain run includes: `encoders` runs only when asked (`--encoders` or `--sections encoders`; it builds ~1 GB of stand-ins),
 * and so does `cluster` (`--sections cluster`: a redis-server and two serve processes; see bench/sections/cluster.ts).
 */
export const DEFAULT_SECTIONS: readonly SectionName[] = SECTIONS.filter((s) => s !== 'encoders' && s !== 'cluster' && s !== 'vad' && s !== 'twilio');

/** Options of a benchmark run. */
export interface BenchOptions {
  quick: boolean;
  device: Device;
  speechModel: string;
  /** Text model to time in the rtf section (skipped when it cannot be loaded). */
  textModel: string | undefined;
  /** Vosk model folder to time in the rtf section; default CIRCUMPLEX_VOSK_MODEL, else the repo's tiny test model. */
  asrModel: string | undefined;
  /** Latency budget for scaling, ms; default hop + 100. */
  budgetMs: number | undefined;
  /** Largest number of concurrent real-time streams tried. */
  maxStreams: number;
  sections: readonly SectionName[];
  outDir: string;
  /** Stand-ins timed by the `encoders` section (default base, large). */
  encoders?: readonly StandinName[];
  /** Concurrent streams of the encoders section's batched comparison (default: 32 full, 0 quick). */
  encoderStreams?: number;
  /** Batch sizes of the encoders section's throughput sweep (default: the plan's). */
  encoderBatches?: number[];
  /** Time the int8 variants in the encoders section also with --quick. */
  encoderInt8?: boolean;
  /** Compute-once streaming of the engine's speech model in the other sections (default off). */
  speechStreaming?: SpeechStreamingFlag;
  /** ONNX intra-op threads of the encoders section's sessions (default auto, models/threads.ts). */
  threads?: IntraOpThreads;
  /** Step workers of the encoders section's cached mode (default auto). */
  encoderStepWorkers?: number | 'auto';
}

/** Sizes of each section (full vs quick). */
export interface BenchPlan {
  rtfAudioSeconds: number;
  latencySeconds: number;
  scalingSeconds: number;
  scalingTimeBudgetMs: number;
  efficiencyStreams: number;
  efficiencyAudioSeconds: number;
  bareTargetMs: number;
  batchSizes: number[];
  batchTargetMs: number;
  fanoutSubscribers: number[];
  /** Messages to deliver in total per fan-out point (frames = deliveries / subscribers, clamped). */
  fanoutDeliveries: number;
  fanoutFrames: { min: number; max: number };
  /** bench/batching.ts (models): batch sizes and ms per row. */
  batching: { batchSizes: number[]; targetMs: number };
  /** bench/load.ts (server): a real `serve` child process under load. */
  load: { publishers: number; subscribers: number; durationS: number; drainS: number };
  /** Longest an external section may run before it is reported as timed out, ms. */
  externalTimeoutMs: number;
}

export function planFor(quick: boolean): BenchPlan {
  return quick
    ? {
        rtfAudioSeconds: 5,
        latencySeconds: 3,
        scalingSeconds: 2.5,
        scalingTimeBudgetMs: 15_000,
        efficiencyStreams: 2,
        efficiencyAudioSeconds: 3,
        bareTargetMs: 300,
        batchSizes: [1, 8, 32],
        batchTargetMs: 150,
        fanoutSubscribers: [1, 100],
        fanoutDeliveries: 4000,
        fanoutFrames: { min: 20, max: 2000 },
        batching: { batchSizes: [1, 4, 16], targetMs: 100 },
        load: { publishers: 2, subscribers: 4, durationS: 3, drainS: 5 },
        externalTimeoutMs: 30_000,
      }
    : {
        rtfAudioSeconds: 19,
        latencySeconds: 15,
        scalingSeconds: 8,
        scalingTimeBudgetMs: 150_000,
        efficiencyStreams: 8,
        efficiencyAudioSeconds: 60,
        bareTargetMs: 2000,
        batchSizes: [1, 2, 4, 8, 16, 32, 64],
        batchTargetMs: 600,
        fanoutSubscribers: [1, 100, 1000],
        fanoutDeliveries: 100_000,
        fanoutFrames: { min: 100, max: 20_000 },
        batching: { batchSizes: [1, 2, 4, 8, 16, 32, 64], targetMs: 400 },
        load: { publishers: 4, subscribers: 16, durationS: 10, drainS: 15 },
        externalTimeoutMs: 120_000,
      };
}

type Skipped = { readonly skipped: string };

/** The JSON report. */
export interface BenchReport {
  readonly kind: 'circumplex.bench';
  readonly version: 1;
  readonly createdAt: string;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  readonly config: {
    readonly device: Device;
    readonly provider: string;
    readonly speechModel: string;
    readonly fusion: string;
    readonly windowMs: number;
    readonly hopMs: number;
    readonly budgetMs: number;
  };
  readonly sections: {
    readonly rtf?: RtfSection | Skipped;
    readonly latency?: RealtimeRun | Skipped;
    readonly scaling?: ScalingSection | Skipped;
    readonly efficiency?: Awaited<ReturnType<typeof benchEfficiency>>;
    readonly batch?: Awaited<ReturnType<typeof benchBatchSweep>>;
    readonly fanout?: FanoutPoint[] | Skipped;
    /** bench/batching.ts benchBatching(): cross-stream batcher vs bare session, batch 1..64. */
    readonly batching?: unknown;
    /** bench/load.ts benchLoad(): publishers and subscribers against a real `serve` process. */
    readonly load?: unknown;
    readonly gpu?: GpuSection | Skipped;
    /** bench/sections/encoders.ts: real-size encoder stand-ins and the compute-once streaming path (issue 14). */
    readonly encoders?: EncodersSection;
    /** bench/sections/cluster.ts: the Redis backplane's added latency and 1- vs 2-node fan-out (issue 12). */
    readonly cluster?: ClusterSection | Skipped;
    /** bench/sections/vad.ts (`--sections vad`): per-stream CPU with voice activity on vs off, Silero batched vs not (issue 13). */
    readonly vad?: VadSection | Skipped;
    /** bench/twilio.ts (`--sections twilio`): concurrent Twilio calls against a serve process until real time breaks (issue 13). */
    readonly twilio?: TwilioBenchResult | Skipped;
    /** bench/sections/smoothing.ts: each trajectory filter's position and velocity error on synthetic trajectories (issue 13). */
    readonly smoothing?: SmoothingSection;
  };
  readonly wallSeconds: number;
}

/** The GPU section (only when CUDA is usable). */
export interface GpuSection {
  readonly provider: string;
  readonly batch: Awaited<ReturnType<typeof benchBatchSweep>>;
  readonly rtf: RtfSection;
  readonly efficiency: Awaited<ReturnType<typeof benchEfficiency>>;
}

async function tryLoadTextModel(id: string, device: Device): Promise<{ model?: TextAffectModel; reason?: string }> {
  try {
    const registry = (await import('../models/registry.js')) as Record<string, unknown>;
    const load = registry['loadTextModel'];
    if (typeof load !== 'function') return { reason: 'models/registry.ts has no loadTextModel yet' };
    return { model: await (load as (id: string, o: object) => Promise<TextAffectModel>)(id, { device }) };
  } catch (err) {
    return { reason: `text model ${id} could not be loaded: ${err instanceof AffectError ? err.describe() : String(err)}` };
  }
}

/**
 * Loads a Vosk recogniser factory for the rtf section: `--asr-model` or CIRCUMPLEX_VOSK_MODEL when
 * given, else the tiny but real Vosk model the ASR tests build (it times libvosk and its host
 * process, not a real acoustic model).
 */
async function tryLoadAsr(dir: string | undefined): Promise<{ factory?: SpeechRecognizerFactory; label?: string; reason?: string; tmpDir?: string }> {
  let tmpDir: string | undefined;
  try {
    const { loadVoskRecognizerFactory } = await import('../models/asr/vosk-factory.js');
    const configured = dir ?? loadConfig().voskModel;
    let modelDir = configured;
    let label: string | undefined;
    if (!modelDir) {
      const { buildTinyVoskModel } = await import('../test/helpers/asr-tiny-vosk-model.js');
      tmpDir = await mkdtemp(path.join(tmpdir(), 'bench-vosk-'));
      modelDir = buildTinyVoskModel(tmpDir);
      label = "the repo's tiny test Vosk model (times libvosk + its host process, not a real acoustic model; pass --asr-model DIR for a real one)";
    }
    const factory = await loadVoskRecognizerFactory(modelDir, { logger: getLogger() });
    return { factory, ...(label ? { label } : { label: `Vosk model ${modelDir}` }), ...(tmpDir ? { tmpDir } : {}) };
  } catch (err) {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    return { reason: `Vosk could not be loaded: ${err instanceof AffectError ? err.describe() : String(err)}` };
  }
}

/** Runs the benchmark; returns the report (and writes it when `outDir` is set). */
export async function runBench(
  o: BenchOptions,
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<{ report: BenchReport; file: string }> {
  const t0 = performance.now();
  // Model workers and the ASR host are unref'd; a pending close must not let the process exit
  // silently mid-run, so hold the event loop open until the report is written.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    return await runBenchInner(o, log, t0);
  } finally {
    clearInterval(keepAlive);
  }
}

async function runBenchInner(o: BenchOptions, log: (line: string) => void, t0: number): Promise<{ report: BenchReport; file: string }> {
  const plan = planFor(o.quick);
  const logger = getLogger();
  const want = (s: SectionName): boolean => o.sections.includes(s);
  const samples = await loadSamples();
  const engine = await createEngine({
    device: o.device,
    speechModel: o.speechModel,
    ...(o.speechStreaming && o.speechStreaming !== 'off' ? { speechStreaming: o.speechStreaming } : {}),
    logger,
  });
  let server: RunningServer | undefined;
  const sections: Record<string, unknown> = {};
  const budgetMs = o.budgetMs ?? engine.options.hopMs + 100;
  try {
    // Warm up: first inferences pay for JIT and allocator growth.
    for (let i = 0; i < 5; i++) await engine.speech.infer(samples.slice(i * 4000, i * 4000 + 16_000));

    if (want('rtf')) {
      log(`[bench] rtf: ${plan.rtfAudioSeconds} s of audio through each stage and the pipeline`);
      const tm = o.textModel ? await tryLoadTextModel(o.textModel, o.device) : { reason: 'no --text-model given' };
      const asr = await tryLoadAsr(o.asrModel);
      try {
        sections['rtf'] = await benchRtf(engine, samples, {
          audioSeconds: plan.rtfAudioSeconds,
          ...(tm.model ? { textModel: tm.model } : {}),
          ...(tm.reason ? { textSkipReason: tm.reason } : {}),
          ...(asr.factory ? { asr: asr.factory } : {}),
          ...(asr.label ? { asrLabel: asr.label } : {}),
          ...(asr.reason ? { asrSkipReason: asr.reason } : {}),
        });
      } finally {
        await tm.model?.close();
        if (asr.factory && !(await bounded(asr.factory.close(), 2000)))
          log('[bench] warning: closing the Vosk recogniser factory did not finish within 2 s (ASR host close); moving on');
        if (asr.tmpDir) await rm(asr.tmpDir, { recursive: true, force: true });
      }
    }

    if (want('latency') || want('scaling')) server = await AffectServer.start({ port: 0, host: '127.0.0.1', logger, heartbeatMs: 60_000 });
    if (want('latency') && server) {
      log(`[bench] latency: one real-time stream for ${plan.latencySeconds} s`);
      sections['latency'] = await runRealtimeStreams(engine, server, samples, {
        streams: 1,
        durationMs: plan.latencySeconds * 1000,
        chunkMs: 50,
        idPrefix: 'latency',
      });
    }
    if (want('scaling') && server) {
      const levels: number[] = [];
      for (let n = 1; n <= o.maxStreams; n *= 2) levels.push(n);
      const lv = o.quick ? levels.slice(0, 3) : levels;
      log(`[bench] scaling: ${lv.join(', ')} real-time streams, ${plan.scalingSeconds} s each, budget p95 <= ${budgetMs} ms`);
      sections['scaling'] = await benchScaling(engine, server, samples, {
        levels: lv,
        durationMs: plan.scalingSeconds * 1000,
        chunkMs: 50,
        budgetMs,
        timeBudgetMs: plan.scalingTimeBudgetMs,
      });
    }
    if (server) {
      await server.close('bench done');
      server = undefined;
    }

    if (want('efficiency')) {
      log(`[bench] efficiency: ${plan.efficiencyStreams} offline streams × ${plan.efficiencyAudioSeconds} s vs the bare session`);
      sections['efficiency'] = await benchEfficiency(engine, samples, {
        streams: plan.efficiencyStreams,
        audioSeconds: plan.efficiencyAudioSeconds,
        bareTargetMs: plan.bareTargetMs,
      });
    }
    if (want('batch')) {
      log(`[bench] batch sweep: sizes ${plan.batchSizes.join(', ')}`);
      sections['batch'] = await benchBatchSweep(engine, samples, { sizes: plan.batchSizes, targetMsPerSize: plan.batchTargetMs });
    }
    if (want('fanout')) {
      log(`[bench] fan-out: ${plan.fanoutSubscribers.join(', ')} subscribers, ~${plan.fanoutDeliveries} deliveries each, server vs bare ws`);
      sections['fanout'] = await benchFanout({
        subscribers: plan.fanoutSubscribers,
        deliveries: plan.fanoutDeliveries,
        minFrames: plan.fanoutFrames.min,
        maxFrames: plan.fanoutFrames.max,
        timeoutMs: o.quick ? 10_000 : 30_000,
        logger,
      });
    }
    if (want('batching')) {
      log(`[bench] batching (bench/batching.ts): batch sizes ${plan.batching.batchSizes.join(', ')}`);
      sections['batching'] = await external(
        './batching.js',
        'benchBatching',
        { model: o.speechModel, device: o.device, ...plan.batching },
        plan.externalTimeoutMs,
      );
    }
    if (want('load')) {
      log(
        `[bench] load (bench/load.ts): ${plan.load.publishers} publishers, ${plan.load.subscribers} subscribers, ${plan.load.durationS} s against a serve process`,
      );
      sections['load'] = await external(
        './load.js',
        'benchLoad',
        { speechModel: o.speechModel, device: o.device === 'webgpu' ? 'auto' : o.device, ...plan.load },
        plan.externalTimeoutMs,
      );
    }
    if (want('encoders')) {
      const enc = o.encoders ?? ['base', 'large'];
      log(`[bench] encoders: ${enc.join(', ')} stand-ins and the default speech model, full-window vs compute-once streaming`);
      const ePlan = encodersPlan(o.quick);
      if (o.encoderStreams !== undefined) {
        ePlan.concurrentStreams = o.encoderStreams;
        ePlan.concurrentAudioSeconds ||= 2;
      }
      if (o.encoderBatches) ePlan.batchSizes = o.encoderBatches;
      if (o.encoderInt8) ePlan.int8 = true;
      if (o.threads !== undefined) ePlan.intraOpThreads = o.threads;
      if (o.encoderStepWorkers !== undefined) ePlan.stepWorkers = o.encoderStepWorkers;
      sections['encoders'] = await benchEncoders({ encoders: enc, device: o.device, quick: o.quick, samples, log, plan: ePlan });
    }
    if (want('cluster')) {
      sections['cluster'] = await benchCluster(o.quick ? { latencyMessages: 300, subscribers: 100, frames: 50, quick: true } : {}, log).catch((e: unknown) => ({
        skipped: String(e),
      }));
    }
    if (want('smoothing')) {
      log('[bench] smoothing: each filter on synthetic trajectories (holds, ramps, steps) with per-window noise');
      sections['smoothing'] = await benchSmoothing(o.quick ? { trials: 4, seconds: 120, episodes: 20, noiseHours: 0.25, startStreams: 20 } : {});
    }
    if (want('vad')) {
      log('[bench] vad: per-stream CPU with voice activity on vs off, Silero batched vs one stream at a time');
      // The `--vad lite` detector is measured next to Silero; CIRCUMPLEX_BENCH_VAD_ALT names another graph in
      // Silero's sequence interface instead (bench/vad-lite.ts), or `none`.
      const altEnv = process.env['CIRCUMPLEX_BENCH_VAD_ALT'] || VAD_LITE_FILE;
      const altGraphPath = altEnv === 'none' ? undefined : altEnv;
      sections['vad'] = await benchVad(engine, samples, { ...(o.quick ? { streams: 4, audioSeconds: 3 } : {}), altGraphPath }, log).catch((e: unknown) => ({
        skipped: String(e),
      }));
    }
    if (want('twilio')) {
      // CIRCUMPLEX_BENCH_TWILIO_LEVELS=25,50,100 (calls per level) and CIRCUMPLEX_BENCH_TWILIO_SECONDS override the plan.
      const lv = process.env['CIRCUMPLEX_BENCH_TWILIO_LEVELS']?.split(',').map(Number);
      const secs = Number(process.env['CIRCUMPLEX_BENCH_TWILIO_SECONDS'] ?? (o.quick ? 4 : 20));
      const levels = lv ?? (o.quick ? [5] : [25, 50, 100, 150, 200]);
      log(`[bench] twilio (bench/twilio.ts): ${levels.join(', ')} concurrent calls (2 tracks each) × ${secs} s against a serve process`);
      sections['twilio'] = await external(
        './twilio.js',
        'benchTwilio',
        { levels, durationS: secs, speechModel: o.speechModel, drainS: o.quick ? 5 : 15 },
        o.quick ? 60_000 : 900_000,
      );
    }
    if (want('gpu')) {
      sections['gpu'] = await gpuSection(o, plan, samples, log);
    }
  } finally {
    await server?.close('bench done');
    await engine.close();
  }
  const report: BenchReport = {
    kind: 'circumplex.bench',
    version: 1,
    createdAt: new Date().toISOString(),
    quick: o.quick,
    machine: machineInfo(),
    config: {
      device: o.device,
      provider: engine.speech.provider,
      speechModel: engine.speech.id,
      fusion: engine.fusion.id,
      windowMs: engine.options.windowMs,
      hopMs: engine.options.hopMs,
      budgetMs,
    },
    sections: sections,
    wallSeconds: round((performance.now() - t0) / 1000, 1),
  };
  await mkdir(o.outDir, { recursive: true });
  const file = path.join(o.outDir, `bench-${report.createdAt.replace(/[:.]/g, '-')}${o.quick ? '-quick' : ''}.json`);
  const json = JSON.stringify(report, null, 2) + '\n';
  await writeFile(file, json);
  await writeFile(path.join(o.outDir, o.quick ? 'latest-quick.json' : 'latest.json'), json);
  return { report, file };
}

/**
 * Runs another engineer's benchmark module (bench/batching.ts, bench/load.ts) when it is present,
 * bounded by `timeoutMs`; a missing module or a failure becomes a `skipped` note, not a crash.
 */
async function external(modulePath: string, fn: string, opts: object, timeoutMs: number): Promise<unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modulePath)) as Record<string, unknown>;
  } catch (err) {
    return { skipped: `bench/${path.basename(modulePath, '.js')}.ts is not available: ${String(err)}` };
  }
  const f = mod[fn];
  if (typeof f !== 'function') return { skipped: `bench/${path.basename(modulePath, '.js')}.ts exports no ${fn}()` };
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      (f as (o: object) => Promise<unknown>)(opts),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    return { skipped: `${fn}() failed: ${err instanceof AffectError ? err.describe() : err instanceof Error ? err.message : String(err)}` };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function gpuSection(o: BenchOptions, plan: BenchPlan, samples: Float32Array, log: (l: string) => void): Promise<GpuSection | Skipped> {
  // The GPU section runs whenever CUDA is usable, whatever --device the CPU sections used.
  if (!cudaProviderInstalled()) {
    const gpu = machineInfo().gpu;
    return {
      skipped:
        (gpu ? `a GPU is present (${gpu}) but ` : 'no GPU on this machine, and ') +
        "onnxruntime-node's CUDA provider is not installed (no libonnxruntime_providers_cuda), so the GPU section (batch 1..64 on CUDA) did not run. " +
        'On a GPU machine: npm ci --onnxruntime-node-install=cuda12 (CUDA 12 + cuDNN 9), then npm run bench -- --device cuda',
    };
  }
  void o.device;
  log('[bench] gpu: batch sweep 1..64, rtf and efficiency on CUDA');
  let engine: Engine | undefined;
  try {
    engine = await createEngine({ device: 'cuda', speechModel: o.speechModel, logger: getLogger() });
    for (let i = 0; i < 5; i++) await engine.speech.infer(samples.slice(0, 16_000));
    const batch = await benchBatchSweep(engine, samples, { sizes: [1, 2, 4, 8, 16, 32, 64], targetMsPerSize: plan.batchTargetMs });
    const rtf = await benchRtf(engine, samples, { audioSeconds: plan.rtfAudioSeconds, textSkipReason: 'GPU section times the speech path only' });
    const efficiency = await benchEfficiency(engine, samples, {
      streams: plan.efficiencyStreams,
      audioSeconds: plan.efficiencyAudioSeconds,
      bareTargetMs: plan.bareTargetMs,
    });
    return { provider: engine.speech.provider, batch, rtf, efficiency };
  } catch (err) {
    return { skipped: `GPU run failed: ${err instanceof AffectError ? err.describe() : String(err)}` };
  } finally {
    await engine?.close();
  }
}

const n = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? 'n/a' : v.toFixed(d));

/** The summary table printed after a run. */
export function formatBenchSummary(r: BenchReport, file: string): string {
  const L: string[] = [];
  const m = r.machine;
  L.push(`circumplex bench ${r.quick ? '(quick) ' : ''}— ${r.createdAt}`);
  L.push(
    `machine: ${m.cpuModel}, ${m.logicalCores} logical cores (${m.availableParallelism} available), ${m.totalMemGiB} GiB, ${m.os}, node ${m.node}, onnxruntime-node ${m.onnxruntimeNode ?? '?'}${m.gpu ? `, GPU: ${m.gpu}` : ', no GPU'}`,
  );
  L.push(
    `config: speech ${r.config.speechModel} on ${r.config.provider} (device ${r.config.device}), fusion ${r.config.fusion}, window ${r.config.windowMs} ms, hop ${r.config.hopMs} ms, budget ${r.config.budgetMs} ms`,
  );
  const s = r.sections;
  if (s.rtf && !('skipped' in s.rtf)) {
    L.push('', 'real-time factor (one stream; < 1 is faster than real time)');
    for (const st of s.rtf.stages) L.push(`  ${st.stage.padEnd(52)} rtf ${st.rtf.toExponential(2).padStart(9)}   ${n(st.meanMs, 3)} ms/call × ${st.calls}`);
    L.push(
      `  ${'whole pipeline (offline, lossless)'.padEnd(52)} rtf ${s.rtf.pipeline.rtf.toExponential(2).padStart(9)}   ${s.rtf.pipeline.frames} frames in ${n(s.rtf.pipeline.wallMs)} ms`,
    );
    for (const k of s.rtf.notTimed) L.push(`  ${k.stage}: skipped — ${k.reason}`);
  }
  if (s.latency && !('skipped' in s.latency)) {
    const l = s.latency.latencyMs;
    L.push('', `end-to-end latency, last sample of window → frame at a WebSocket subscriber (1 real-time stream, ${s.latency.audioSecondsPerStream} s)`);
    L.push(`  p50 ${n(l.p50)} ms   p95 ${n(l.p95)} ms   p99 ${n(l.p99)} ms   max ${n(l.max)} ms   (${l.n} frames, ${s.latency.droppedWindows} dropped)`);
  }
  if (s.scaling && !('skipped' in s.scaling)) {
    L.push('', `scaling: concurrent real-time streams (budget: ${s.scaling.criterion}, ${s.scaling.budgetMs} ms)`);
    L.push('  streams   p50 ms   p95 ms   p99 ms   frames   dropped   CPU cores/stream   RSS MiB/stream   mean batch   ok');
    for (const lv of s.scaling.levels) {
      L.push(
        `  ${String(lv.streams).padStart(7)}  ${n(lv.latencyMs.p50).padStart(7)}  ${n(lv.latencyMs.p95).padStart(7)}  ${n(lv.latencyMs.p99).padStart(7)}  ${String(lv.framesReceived).padStart(7)}  ${String(lv.droppedWindows).padStart(8)}  ${n(lv.cpuCoresPerStream, 3).padStart(17)}  ${n(lv.rssPerStreamMiB, 2).padStart(15)}  ${n(lv.batching?.meanBatch, 2).padStart(11)}   ${lv.withinBudget ? 'yes' : 'NO'}`,
      );
    }
    L.push(`  max streams within budget: ${s.scaling.maxStreamsWithinBudget} (${s.scaling.stoppedBecause})`);
  }
  if (s.efficiency) {
    if ('skipped' in s.efficiency) L.push('', `efficiency: skipped — ${s.efficiency.skipped}`);
    else {
      const e = s.efficiency;
      L.push(
        '',
        `pipeline efficiency (${e.streams} offline streams): ${n(e.pipeline.windowsPerSec)} windows/s (mean batch ${e.pipeline.meanBatch}) vs bare session ${n(e.bare.windowsPerSec)} windows/s at batch ${e.bare.batchSize} → ${n(e.efficiency, 3)}`,
      );
    }
  }
  if (s.batch) {
    if ('skipped' in s.batch) L.push('', `batch sweep: skipped — ${s.batch.skipped}`);
    else
      L.push(
        '',
        `bare session windows/s by batch size (${s.batch.provider}): ${s.batch.points.map((p) => `${p.batchSize}: ${n(p.windowsPerSec, 0)}`).join('   ')}`,
      );
  }
  if (s.fanout && !('skipped' in s.fanout)) {
    L.push('', 'fan-out: frames delivered per second (all subscribers together)');
    L.push('  subscribers   frames   server msg/s   bare ws msg/s   ratio   server coalesced   complete (server/bare)');
    for (const f of s.fanout) {
      L.push(
        `  ${String(f.subscribers).padStart(11)}  ${String(f.frames).padStart(7)}  ${String(f.server.deliveredPerSec).padStart(13)}  ${String(f.bareWs.deliveredPerSec).padStart(14)}  ${n(f.ratio, 2).padStart(6)}  ${String(f.server.coalesced).padStart(17)}   ${f.server.complete}/${f.bareWs.complete}`,
      );
    }
  }
  const ext = (name: string, v: unknown, fmt: (x: Record<string, unknown>) => string): void => {
    if (v === undefined) return;
    const rec = v as Record<string, unknown>;
    L.push('', typeof rec['skipped'] === 'string' ? `${name}: skipped — ${rec['skipped']}` : `${name}: ${fmt(rec)}`);
  };
  ext('cross-stream batching (bench/batching.ts)', s.batching, (x) => {
    const rows = (x['rows'] as Array<Record<string, number>> | undefined) ?? [];
    return rows.length
      ? `windows/s batched (bare) by batch — ${rows.map((r) => `${r['batch']}: ${n(r['batchedWindowsPerSec'], 0)} (${n(r['bareWindowsPerSec'], 0)})`).join('   ')}`
      : JSON.stringify(x).slice(0, 400);
  });
  ext('load (bench/load.ts, real serve process)', s.load, (x) => {
    const lat = (x['latencyMs'] as Record<string, number> | undefined) ?? {};
    return `delivered ${String(x['delivered'])}/${String(x['expected'])} (ratio ${String(x['deliveredRatio'])}), gaps ${String(x['gaps'])}, dropped windows ${String(x['droppedWindows'])}, latency p50 ${lat['p50']?.toFixed(1) ?? 'n/a'} / p99 ${lat['p99']?.toFixed(1) ?? 'n/a'} ms`;
  });
  if (s.encoders) L.push(...formatEncoders(s.encoders));
  if (s.cluster) {
    if ('skipped' in s.cluster) L.push('', `cluster: skipped — ${s.cluster.skipped}`);
    else {
      const c = s.cluster;
      L.push(
        '',
        `cluster (redis ${c.redisVersion}): latency p50/p99 ms — one node ${c.latency.singleNode.p50Ms}/${c.latency.singleNode.p99Ms}, same node with backplane ${c.latency.sameNode.p50Ms}/${c.latency.sameNode.p99Ms}, other node ${c.latency.otherNode.p50Ms}/${c.latency.otherNode.p99Ms} (added p99 ${c.latency.addedP99Ms})`,
        `cluster Redis cost: ${c.redis.appendsPerSec} appends/s from one node, ${c.redis.logBytesPerMessage} B per message in a stream log + ${c.redis.feedBytesPerMessage} B in the feed`,
        `cluster fan-out: ${c.fanout.frames} frames to ${c.fanout.subscribers} subscribers — 1 node ${c.fanout.oneNode.deliveredPerSec}/s, 2 nodes ${c.fanout.twoNodes.deliveredPerSec}/s (ratio ${c.fanout.ratio})`,
      );
    }
  }
  if (s.smoothing) L.push('', ...formatSmoothing(s.smoothing));
  if (s.vad) {
    if ('skipped' in s.vad) L.push('', `vad: skipped — ${s.vad.skipped}`);
    else {
      L.push('', `vad (${s.vad.streams} streams × ${s.vad.audioSeconds} s, hop ${s.vad.hopMs} ms; CPU ms per stream-second):`);
      for (const v of s.vad.rows) {
        L.push(
          `  ${v.audio.padEnd(6)} pipeline off ${v.pipelineMsPerStreamSecondOff} → on ${v.pipelineMsPerStreamSecondOn} (VAD adds ${v.vadAddsPercent} %) · Silero alone ${v.sileroUnbatchedMsPerStreamSecond} one stream at a time, ${v.sileroBatchedMsPerStreamSecond} batched (mean batch ${v.meanBatch}, ${Math.round(v.gatedShare * 100)} % gated) · Silero's model alone on those frames is ${v.sileroModelOfOffPercent} % of the VAD-off pipeline`,
        );
      }
      for (const v of s.vad.rows)
        if (v.vadAddsPercentAlt !== undefined)
          L.push(
            `  ${v.audio.padEnd(6)} with ${s.vad.altGraph ?? 'the other detector'}: pipeline on ${v.pipelineMsPerStreamSecondOnAlt} (VAD adds ${v.vadAddsPercentAlt} %), batched alone ${v.altBatchedMsPerStreamSecond}`,
          );
      const g = s.vad.sileroStages;
      L.push(
        `  Silero in onnxruntime alone (${g.framesPerCall} frames per call): STFT ${g.stftMsPerStreamSecond}, + features ${g.featuresMsPerStreamSecond}, + encoder ${g.encoderMsPerStreamSecond}, whole graph ${g.fullMsPerStreamSecond}`,
      );
    }
  }
  if (s.twilio) {
    if ('skipped' in s.twilio) L.push('', `twilio: skipped — ${s.twilio.skipped}`);
    else {
      L.push(
        '',
        `twilio: holds ${s.twilio.heldCalls} concurrent calls (${2 * s.twilio.heldCalls} tracks)${s.twilio.brokeAt ? `; breaks at ${s.twilio.brokeAt.calls}: ${s.twilio.brokeAt.why.join('; ')}` : ''}`,
      );
      for (const l of s.twilio.levels) {
        L.push(
          `  ${String(l.calls).padStart(4)} calls: frames ${(l.framesRatio * 100).toFixed(1)} %, dropped ${l.droppedWindows}, p50/p95 ${l.latencyMs.p50}/${l.latencyMs.p95} ms, server ${l.serverCores} cores (${l.serverCpuMsPerTrackSecond} ms per track-s), generator ${l.generatorCores} cores, send lag p95 ${l.sendLagMs.p95} ms`,
        );
      }
    }
  }
  if (s.gpu) {
    if ('skipped' in s.gpu) L.push('', `gpu: skipped — ${s.gpu.skipped}`);
    else if ('skipped' in s.gpu.batch) L.push('', `gpu (${s.gpu.provider}): batch sweep skipped — ${s.gpu.batch.skipped}`);
    else
      L.push('', `gpu (${s.gpu.provider}) windows/s by batch size: ${s.gpu.batch.points.map((p) => `${p.batchSize}: ${n(p.windowsPerSec, 0)}`).join('   ')}`);
  }
  L.push('', `report: ${file} (${r.wallSeconds} s)`);
  return L.join('\n') + '\n';
}

function parseEncoders(v: string): StandinName[] {
  const parts = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of parts) {
    if (!(p in STANDINS)) throw new RangeError(`--encoders: unknown encoder "${p}". Should be one of: ${Object.keys(STANDINS).join(', ')}`);
  }
  if (parts.length === 0) throw new RangeError('--encoders: give at least one of ' + Object.keys(STANDINS).join(', '));
  return parts as StandinName[];
}

function parseSections(v: string): SectionName[] {
  const parts = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of parts) {
    if (!(SECTIONS as readonly string[]).includes(p)) throw new RangeError(`--sections: unknown section "${p}". Should be one of: ${SECTIONS.join(', ')}`);
  }
  return parts as SectionName[];
}

/** CLI entry. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command('bench')
    .description('circumplex benchmark: real-time factor, latency, scaling, efficiency, fan-out (loopback only)')
    .option('--quick', 'CI-size run (well under a minute)', false)
    .addOption(new Option('--device <device>', 'where the speech model runs').choices(['auto', 'cuda', 'webgpu', 'cpu']).default('cpu'))
    .option('--speech-model <id>', 'speech model id', DEFAULT_ENGINE.speechModel)
    .option('--text-model <id>', 'text model id to time in the rtf section (skipped if it cannot load)', 'text-embed-fixture')
    .option('--asr-model <dir>', 'Vosk model folder to time in the rtf section (default CIRCUMPLEX_VOSK_MODEL, else the tiny test model)')
    .option('--budget-ms <ms>', 'latency budget for scaling (default hop + 100 ms)', (v) => {
      const x = Number(v);
      if (!(x > 0)) throw new RangeError(`--budget-ms must be > 0, got "${v}"`);
      return x;
    })
    .option(
      '--max-streams <n>',
      'most concurrent real-time streams tried',
      (v) => {
        const x = Number(v);
        if (!(Number.isInteger(x) && x >= 1 && x <= 1024)) throw new RangeError(`--max-streams must be an integer in [1, 1024], got "${v}"`);
        return x;
      },
      1024,
    )
    .option('--sections <list>', `comma-separated subset of ${SECTIONS.join(',')}`, parseSections, [...DEFAULT_SECTIONS])
    .option(
      '--encoders <list>',
      `stand-ins for the encoders section (${Object.keys(STANDINS).join(',')}); builds missing ones and adds the section`,
      parseEncoders,
    )
    .option('--encoder-streams <n>', "concurrent streams of the encoders section's batched full-window vs streaming run (default 32; 0 with --quick)", (v) => {
      const x = Number(v);
      if (!(Number.isInteger(x) && x >= 0 && x <= 256)) throw new RangeError(`--encoder-streams must be an integer in [0, 256], got "${v}"`);
      return x;
    })
    .option('--encoder-batches <list>', "batch sizes of the encoders section's throughput sweep (default 1,2,4,8,16,32; 1,4 with --quick)", (v) => {
      const xs = v.split(',').map(Number);
      if (xs.length === 0 || !xs.every((x) => Number.isInteger(x) && x >= 1 && x <= 256))
        throw new RangeError(`--encoder-batches must be comma-separated integers in [1, 256], got "${v}"`);
      return xs;
    })
    .option('--encoder-int8', 'time the int8 weight-quantised stand-ins in the encoders section also with --quick (the full run always does)', false)
    .option(
      '--speech-streaming <mode>',
      `compute-once streaming of the speech model in the pipeline sections: ${SPEECH_STREAMING_HELP}`,
      parseSpeechStreaming,
      'off',
    )
    .option('--threads <auto|n>', `the encoders section's sessions: ${THREADS_HELP}`, (v) => parseIntraOpThreads(v, '--threads'), 'auto')
    .option(
      '--encoder-step-workers <auto|n>',
      "step workers of the encoders section's cached mode (default auto)",
      autoOrCountOption('--encoder-step-workers', 1, 64),
    )
    .option('--out <dir>', 'report folder', path.join(REPO_ROOT, 'bench', 'results'))
    .option('--log-level <level>', 'pino log level', 'warn')
    .exitOverride();
  try {
    program.parse(argv);
    const opts = program.opts<{
      quick: boolean;
      device: Device;
      speechModel: string;
      textModel?: string;
      asrModel?: string;
      budgetMs?: number;
      maxStreams: number;
      sections: SectionName[];
      out: string;
      logLevel: string;
      encoders?: StandinName[];
      encoderStreams?: number;
      encoderBatches?: number[];
      encoderInt8: boolean;
      speechStreaming: SpeechStreamingFlag;
      threads: IntraOpThreads;
      encoderStepWorkers?: number | 'auto';
    }>();
    setLogLevel(opts.logLevel);
    const { report, file } = await runBench({
      quick: opts.quick,
      device: opts.device,
      speechModel: opts.speechModel,
      textModel: opts.textModel,
      asrModel: opts.asrModel,
      budgetMs: opts.budgetMs,
      maxStreams: opts.maxStreams,
      sections: opts.encoders && !opts.sections.includes('encoders') ? [...opts.sections, 'encoders'] : opts.sections,
      outDir: opts.out,
      ...(opts.encoders ? { encoders: opts.encoders } : {}),
      ...(opts.encoderStreams !== undefined ? { encoderStreams: opts.encoderStreams } : {}),
      ...(opts.encoderBatches ? { encoderBatches: opts.encoderBatches } : {}),
      ...(opts.encoderInt8 ? { encoderInt8: true } : {}),
      speechStreaming: opts.speechStreaming,
      threads: opts.threads,
      ...(opts.encoderStepWorkers !== undefined ? { encoderStepWorkers: opts.encoderStepWorkers } : {}),
    });
    process.stdout.write(formatBenchSummary(report, file));
    return 0;
  } catch (err) {
    if (err instanceof Error && 'exitCode' in err && (err as { code?: string }).code?.startsWith('commander.'))
      return Number((err as { exitCode: number }).exitCode);
    process.stderr.write(`bench: ${err instanceof AffectError ? err.describe() : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('run-bench.ts') || entry.endsWith('run-bench.js')) {
  main().then(
    (code) => {
      process.exitCode = code;
      // ORT worker threads are unref'd, but sockets or timers left by a failed section must not hang CI.
      setTimeout(() => process.exit(code), 2000).unref();
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
