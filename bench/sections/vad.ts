/**
 * `vad` section: what voice activity costs per stream, on the CPU, at the default window/hop.
 *
 * 1. Whole pipeline, VAD on vs off: S offline streams (lossless, flow-controlled, all at once so the
 *    speech model and Silero batch across streams as they do live) through `engine.pipeline`, for two
 *    kinds of audio — `speech` (every second is speech: Silero runs on every frame, the worst case) and
 *    `call` (turns of 5 s: one party speaks while the other's line is quiet at -65 dBFS, as each track of
 *    a call is) — process CPU (all threads, so the model workers count) per stream-second of audio.
 *    `vadAddsPercent` = (on − off) ÷ off, the "VAD adds ≤ 10 % to per-stream CPU".
 * 2. Silero alone, CPU per stream-second: one stream at a time (no cross-stream batch: what the
 *    pre-batching detector did per request) vs S streams batched, on speech and on call audio.
 *
 * CPU is process.cpuUsage() (user + system of every thread), so it is roughly independent of other
 * load on the machine, but a busy box still inflates it (cache, context switches): compare within a run.
 */
import { lastValueFrom, from, toArray } from 'rxjs';
import { createEngine, type Engine } from '../../src/engine.js';
import { getLogger } from '../../core/log.js';
import { FlowControl } from '../../streams/flow.js';
import { SileroVad } from '../../models/silero-vad.js';
import type { AudioChunk } from '../../core/types.js';
import { round } from '../lib/common.js';

/** Options of {@link benchVad}. */
export interface VadBenchOptions {
  /** Concurrent streams. Default 32. */
  streams: number;
  /** Seconds of audio per stream. Default 12. */
  audioSeconds: number;
}

export interface VadCostRow {
  audio: 'speech' | 'call';
  /** Pipeline CPU per stream-second, ms, VAD off / on. */
  pipelineMsPerStreamSecondOff: number;
  pipelineMsPerStreamSecondOn: number;
  vadAddsPercent: number;
  /** Silero alone, CPU ms per stream-second: one stream at a time, and S streams batched. */
  sileroUnbatchedMsPerStreamSecond: number;
  sileroBatchedMsPerStreamSecond: number;
  /** Share of frames the energy gate skipped (batched run). */
  gatedShare: number;
  /** Mean streams per batched Silero request. */
  meanBatch: number;
}

export interface VadSection {
  streams: number;
  audioSeconds: number;
  hopMs: number;
  rows: VadCostRow[];
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

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** CPU per stream-second of S streams through the engine's pipeline, offline and lossless. */
async function pipelineCost(engine: Engine, audios: Float32Array[], seconds: number): Promise<number> {
  const c0 = cpuMs();
  await Promise.all(
    audios.map((x, s) => {
      const id = `vad-bench-${s}`;
      const flow = new FlowControl();
      const chunks: AudioChunk[] = [];
      for (let i = 0; i < x.length; i += 1600) chunks.push({ streamId: id, startSample: i, samples: x.subarray(i, i + 1600) });
      return lastValueFrom(from(chunks).pipe(engine.pipeline(id, { whenBusy: 'queue', flow }), toArray()));
    }),
  );
  return (cpuMs() - c0) / (audios.length * seconds);
}

/** CPU per stream-second of Silero over the streams, hop by hop (all streams' hop at once when batched). */
async function sileroCost(vad: SileroVad, audios: Float32Array[], seconds: number, batched: boolean): Promise<number> {
  const hop = 4000;
  const streams = audios.map(() => vad.stream());
  const pend = audios.map(() => new Float32Array(0));
  const c0 = cpuMs();
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
  return (cpuMs() - c0) / (audios.length * seconds);
}

/** Runs the section (loads a VAD-off engine and Silero detectors of its own; `engine` is the VAD-on one). */
export async function benchVad(
  engine: Engine,
  samples: Float32Array,
  o: Partial<VadBenchOptions> = {},
  log: (l: string) => void = () => undefined,
): Promise<VadSection> {
  const S = o.streams ?? 32;
  const secs = o.audioSeconds ?? 12;
  const logger = getLogger();
  const off = await createEngine({ ...engine.options, vad: false, logger });
  const rows: VadCostRow[] = [];
  try {
    for (const kind of ['speech', 'call'] as const) {
      const audios = Array.from({ length: S }, (_, s) => audioFor(kind, samples, secs, s));
      // Warm both engines (JIT, ORT allocations) on a short run first.
      await pipelineCost(
        engine,
        audios.slice(0, 4).map((x) => x.subarray(0, 32000)),
        2,
      );
      await pipelineCost(
        off,
        audios.slice(0, 4).map((x) => x.subarray(0, 32000)),
        2,
      );
      const msOff = await pipelineCost(off, audios, secs);
      const msOn = await pipelineCost(engine, audios, secs);
      const single = await SileroVad.load({ logger, maxBatch: 1 });
      const batched = await SileroVad.load({ logger });
      try {
        await sileroCost(
          single,
          audios.slice(0, 2).map((x) => x.subarray(0, 16000)),
          1,
          false,
        );
        await sileroCost(
          batched,
          audios.slice(0, 2).map((x) => x.subarray(0, 16000)),
          1,
          true,
        );
        const g0 = { ...batched.stats };
        const unb = await sileroCost(single, audios, secs, false);
        const bat = await sileroCost(batched, audios, secs, true);
        const st = batched.stats;
        rows.push({
          audio: kind,
          pipelineMsPerStreamSecondOff: round(msOff, 3),
          pipelineMsPerStreamSecondOn: round(msOn, 3),
          vadAddsPercent: round((100 * (msOn - msOff)) / msOff, 1),
          sileroUnbatchedMsPerStreamSecond: round(unb, 3),
          sileroBatchedMsPerStreamSecond: round(bat, 3),
          gatedShare: round((st.gatedFrames - g0.gatedFrames) / Math.max(1, st.frames - g0.frames), 3),
          meanBatch: round((st.batchedRequests - g0.batchedRequests) / Math.max(1, st.batches - g0.batches), 1),
        });
        log(
          `[bench] vad: ${kind}: pipeline ${round(msOff, 2)} → ${round(msOn, 2)} ms per stream-s (+${round((100 * (msOn - msOff)) / msOff, 1)} %), Silero alone ${round(unb, 2)} ms unbatched, ${round(bat, 2)} ms batched`,
        );
      } finally {
        await single.close();
        await batched.close();
      }
    }
  } finally {
    await off.close();
  }
  return {
    streams: S,
    audioSeconds: secs,
    hopMs: engine.options.hopMs,
    rows,
    note: 'CPU of every thread of the bench process per second of audio of one stream; offline lossless runs with all streams at once (batched as live streams are); a loaded machine inflates all figures',
  };
}
