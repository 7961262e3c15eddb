/**
 * Shared pieces of the benchmark: machine facts, the test audio, a paced audio source that emits
 * each chunk when its last sample is due (like a live microphone), latency summaries and a
 * resource sampler. Everything runs on loopback inside this process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Observable, lastValueFrom, toArray } from 'rxjs';
import { REPO_ROOT } from '../../core/config.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import type { FlowControl } from '../../streams/flow.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk } from '../../core/types.js';
import { percentile } from '../../src/validate/stats.js';

/** The speech recording shipped with the repo (19 s, 16 kHz mono). */
export const SPEECH_WAV = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');

/** Facts about the machine a benchmark ran on. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly logicalCores: number;
  /** CPUs this process may use (cgroup / affinity), when Node knows. */
  readonly availableParallelism: number;
  readonly totalMemGiB: number;
  readonly os: string;
  readonly node: string;
  readonly onnxruntimeNode: string | null;
  /** `nvidia-smi -L` output, or null without an NVIDIA GPU. */
  readonly gpu: string | null;
  readonly hostname: string;
}

function pkgVersion(name: string): string | null {
  try {
    const require = createRequire(import.meta.url);
    const main = require.resolve(name);
    let dir = path.dirname(main);
    for (let i = 0; i < 5; i++) {
      const pj = path.join(dir, 'package.json');
      if (existsSync(pj)) {
        const v = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string };
        if (v.name === name) return v.version ?? null;
      }
      dir = path.dirname(dir);
    }
  } catch {
    // not installed
  }
  return null;
}

/** Collects {@link MachineInfo}. */
export function machineInfo(): MachineInfo {
  let gpu: string | null;
  try {
    gpu = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    gpu = null;
  }
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    logicalCores: os.cpus().length,
    availableParallelism: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntimeNode: pkgVersion('onnxruntime-node'),
    gpu,
    hostname: os.hostname(),
  };
}

/** Decodes a WAV file to 16 kHz mono float samples (through the project's own source). */
export async function loadSamples(file = SPEECH_WAV): Promise<Float32Array> {
  const chunks = await lastValueFrom(wavFileSource(file, { streamId: 'bench', chunkMs: 1000 }).pipe(toArray()));
  const total = chunks.reduce((n, c) => n + c.samples.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c.samples, o);
    o += c.samples.length;
  }
  return out;
}

/** Options for {@link pacedSource}. */
export interface PacedSourceOptions {
  streamId: string;
  /** Chunk length, ms of audio. Default 50 (divides the default 250 ms hop, so window ends fall on chunk ends). */
  chunkMs: number;
  /** Audio to emit, ms (the samples are looped). */
  durationMs: number;
  /** Emit each chunk when its last sample is due (wall clock); false: as fast as allowed. */
  realtime: boolean;
  /** Wall-clock delay before the first chunk's audio starts (staggers streams), ms. Default 0. */
  startDelayMs: number;
  /** Offline: wait for room in the model stage before each chunk. */
  flow?: FlowControl;
  /** Called right after a chunk is emitted: audio ms of its end, performance.now(). */
  onChunk?: (endMs: number, wallMs: number) => void;
}

/**
 * Emits looped samples as {@link AudioChunk}s. Real-time mode behaves like a live capture: a chunk
 * is emitted when the wall clock reaches the time of its last sample, so "latency from the last
 * sample of a window" starts at that emission. Timers are corrected against drift.
 */
export function pacedSource(samples: Float32Array, opts: Partial<PacedSourceOptions> & { streamId: string; durationMs: number }): Observable<AudioChunk> {
  const o: PacedSourceOptions = { chunkMs: 50, realtime: true, startDelayMs: 0, ...opts };
  if (!(o.chunkMs > 0)) throw new RangeError(`pacedSource: chunkMs must be > 0, got ${o.chunkMs}`);
  if (!(o.durationMs > 0)) throw new RangeError(`pacedSource: durationMs must be > 0, got ${o.durationMs}`);
  if (samples.length === 0) throw new RangeError('pacedSource: no samples');
  const per = Math.round((PIPELINE_SAMPLE_RATE_HZ * o.chunkMs) / 1000);
  const total = Math.round((PIPELINE_SAMPLE_RATE_HZ * o.durationMs) / 1000);
  return new Observable<AudioChunk>((sub) => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let pos = 0;
    const t0 = performance.now() + o.startDelayMs;
    const slice = (): AudioChunk => {
      const n = Math.min(per, total - pos);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = samples[(pos + i) % samples.length] as number;
      const chunk = { streamId: o.streamId, startSample: pos, samples: out };
      pos += n;
      return chunk;
    };
    const emit = (): void => {
      const c = slice();
      sub.next(c);
      o.onChunk?.(((c.startSample + c.samples.length) * 1000) / PIPELINE_SAMPLE_RATE_HZ, performance.now());
    };
    if (o.realtime) {
      const tick = (): void => {
        if (stopped) return;
        emit();
        if (pos >= total) {
          sub.complete();
          return;
        }
        const due = t0 + ((pos + Math.min(per, total - pos)) * 1000) / PIPELINE_SAMPLE_RATE_HZ;
        timer = setTimeout(tick, Math.max(0, due - performance.now()));
      };
      timer = setTimeout(tick, Math.max(0, t0 + (Math.min(per, total) * 1000) / PIPELINE_SAMPLE_RATE_HZ - performance.now()));
    } else {
      (async () => {
        while (pos < total && !stopped) {
          emit();
          if (o.flow) await o.flow.ready();
          await new Promise<void>((r) => setImmediate(r));
        }
        if (!stopped) sub.complete();
      })().catch((err: unknown) => sub.error(err));
    }
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  });
}

/**
 * Arrival log of one stream: when (wall clock) the audio up to a given time became available, so a
 * frame stamped `tMs` can be traced back to the chunk that completed its window.
 */
export class ArrivalLog {
  private readonly ends: number[] = [];
  private readonly walls: number[] = [];
  record(endMs: number, wallMs: number): void {
    this.ends.push(endMs);
    this.walls.push(wallMs);
  }
  /** Wall time of the first chunk whose end reaches `tMs`, or undefined. */
  arrivalOf(tMs: number): number | undefined {
    let lo = 0;
    let hi = this.ends.length - 1;
    let hit = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ends[mid] as number) >= tMs - 1e-6) {
        hit = mid;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    return hit < 0 ? undefined : this.walls[hit];
  }
}

/** Latency summary in ms. */
export interface LatencySummary {
  readonly n: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

/** Summarises a sample of latencies (ms). */
export function summarize(values: readonly number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  const r = (v: number | null): number | null => (v === null ? null : Math.round(v * 100) / 100);
  return {
    n: s.length,
    p50: r(percentile(s, 50)),
    p95: r(percentile(s, 95)),
    p99: r(percentile(s, 99)),
    max: r(s.length ? (s[s.length - 1] as number) : null),
    mean: r(s.length ? s.reduce((a, b) => a + b, 0) / s.length : null),
  };
}

/** CPU time and peak RSS over an interval of this process (all threads, so ORT workers count). */
export class ResourceMeter {
  private readonly cpu0 = process.cpuUsage();
  private readonly t0 = performance.now();
  private readonly rss0 = process.memoryUsage.rss();
  private peak = this.rss0;
  private readonly timer: NodeJS.Timeout;
  constructor(sampleMs = 100) {
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, process.memoryUsage.rss());
    }, sampleMs);
    this.timer.unref();
  }
  /** Stops sampling: CPU cores used on average, RSS at start and peak (MiB). */
  stop(): { wallMs: number; cpuCores: number; rssStartMiB: number; rssPeakMiB: number } {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    const d = process.cpuUsage(this.cpu0);
    const wallMs = performance.now() - this.t0;
    return {
      wallMs,
      cpuCores: (d.user + d.system) / 1000 / wallMs,
      rssStartMiB: this.rss0 / 2 ** 20,
      rssPeakMiB: this.peak / 2 ** 20,
    };
  }
}

/** Rounds to `d` decimals (reports stay readable). */
export function round(v: number, d = 3): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU ms of this process so far, every thread (user + system), so model workers count. */
export const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** CPU ms of the process's main (JS) thread, from /proc (Linux); NaN elsewhere. */
export const mainThreadCpuMs = (): number => {
  try {
    const st = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return Number.NaN;
  }
};

/** Median (the mean of the middle two for an even count). */
export const median = (xs: readonly number[]): number => {
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
};

/** A sound file as 16 kHz mono samples, decoded and resampled by sox (the EmoDB copy is 22.05 kHz). */
export function decode16k(file: string): Float32Array {
  const b = execFileSync('sox', ['-V1', '-R', file, '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', '-'], { maxBuffer: 1 << 28 });
  const s = new Float32Array(b.length / 2);
  for (let i = 0; i < s.length; i++) s[i] = b.readInt16LE(2 * i) / 32768;
  return s;
}
