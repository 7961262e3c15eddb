/**
 * Cost of a small voice detector against Silero's sequence graph (issue 13: VAD must add ≤ 10 % to
 * per-stream CPU, so a detector has to be several times cheaper than Silero). Both graphs speak the
 * sequence interface (frames [N, 512], index [S, B], lengths [B], h/c [2, B, 64] → probs, hn, cn).
 *
 *   npx tsx bench/vad-lite.ts cost [LITE.onnx …]
 *
 * Two settings, each graph interleaved with Silero's, `REPEATS` rounds (default 15), CPU from
 * process.cpuUsage() (every thread) per stream-second of audio, medians:
 *
 * - `ort`: the graph alone in onnxruntime-node on this thread (one intra-op thread), 32 streams × 8
 *   frames (512 samples) per call, `CALLS` calls a round (default 40);
 * - `vad`: through `SileroVad.load({ path })` (the VAD worker, its batching and the main thread's
 *   copying and energy gate), 32 streams, 250 ms hops, 12 s each, as the bench's `vad` section does.
 *
 * Results: docs/bench.md ("A detector distilled from Silero").
 */
import * as ort from 'onnxruntime-node';
import { SileroVad, SILERO_SEQ_FILE } from '../models/silero-vad.js';
import { getLogger } from '../core/log.js';
import { lineNoise } from '../test/helpers/vad-audio.js';

const F = 512;
const RATE = 16000;
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => {
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
};
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** One onnxruntime call's feeds: B streams × S frames of `audio`. */
function feeds(audio: Float32Array[], B: number, S: number, at: number): Record<string, ort.Tensor> {
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

/** ms CPU per stream-second of `calls` calls of B × S frames (state carried from call to call). */
async function ortCost(s: ort.InferenceSession, audio: Float32Array[], B: number, S: number, calls: number): Promise<number> {
  const fs = Array.from({ length: calls }, (_, i) => feeds(audio, B, S, i * S));
  const c0 = cpuMs();
  let h = fs[0]!['h']!;
  let c = fs[0]!['c']!;
  for (const f of fs) {
    const r = await s.run({ ...f, h, c });
    h = r['hn']!;
    c = r['cn']!;
  }
  return (cpuMs() - c0) / ((calls * B * S * F) / RATE);
}

/** ms CPU per stream-second through SileroVad (worker, batching, main-thread JS), 250 ms hops, all streams at once. */
async function vadCost(vad: SileroVad, audios: Float32Array[]): Promise<number> {
  const hop = 4000;
  const streams = audios.map(() => vad.stream());
  const pend = audios.map(() => new Float32Array(0));
  const c0 = cpuMs();
  for (let at = 0; at < audios[0]!.length; at += hop) {
    await Promise.all(
      audios.map((x, s) => {
        const fresh = x.subarray(at, at + hop);
        const buf = new Float32Array(pend[s]!.length + fresh.length);
        buf.set(pend[s]!);
        buf.set(fresh, pend[s]!.length);
        const whole = Math.floor(buf.length / F) * F;
        pend[s] = buf.slice(whole);
        return streams[s]!.probabilities(buf.subarray(0, whole));
      }),
    );
  }
  const ms = (cpuMs() - c0) / ((audios.length * audios[0]!.length) / RATE);
  for (const s of streams) s.close();
  return ms;
}

async function cost(paths: string[]): Promise<void> {
  const B = 32;
  const S = 8;
  const calls = Number(process.env['CALLS'] ?? 40);
  const repeats = Number(process.env['REPEATS'] ?? 15);
  const secs = 12;
  const audio = Array.from({ length: B }, (_, b) => lineNoise(secs, 100 + b));
  const graphs = [SILERO_SEQ_FILE, ...paths];
  const name = (p: string): string => p.split('/').pop()!;
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'] };
  const sessions = await Promise.all(graphs.map((p) => ort.InferenceSession.create(p, opts)));
  for (const s of sessions) await ortCost(s, audio, B, S, 5); // warm
  const ortRuns: number[][] = graphs.map(() => []);
  for (let r = 0; r < repeats; r++) for (let g = 0; g < graphs.length; g++) ortRuns[g]!.push(await ortCost(sessions[g]!, audio, B, S, calls));
  const logger = getLogger();
  const vads = await Promise.all(graphs.map((p) => SileroVad.load({ logger, path: p })));
  for (const v of vads) await vadCost(v, audio.map((x) => x.subarray(0, RATE)));
  const vadRuns: number[][] = graphs.map(() => []);
  const vr = Math.max(3, Math.round(repeats / 3));
  for (let r = 0; r < vr; r++) for (let g = 0; g < graphs.length; g++) vadRuns[g]!.push(await vadCost(vads[g]!, audio));
  for (const v of vads) await v.close();
  for (const s of sessions) await s.release();
  const base = [median(ortRuns[0]!), median(vadRuns[0]!)] as const;
  console.log(`vad-lite cost: ${B} streams × ${S} frames per call, 1 intra-op thread; ms CPU per stream-second, median (min–max) of ${repeats} (ort) / ${vr} (vad) interleaved rounds`);
  console.log('| graph | ort alone | × cheaper | through SileroVad (worker + main thread) | × cheaper |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  graphs.forEach((p, g) => {
    const o = median(ortRuns[g]!);
    const v = median(vadRuns[g]!);
    const span = (xs: number[]): string => `${r3(Math.min(...xs))}–${r3(Math.max(...xs))}`;
    console.log(`| ${name(p)} | ${r3(o)} (${span(ortRuns[g]!)}) | ${(base[0] / o).toFixed(1)} | ${r3(v)} (${span(vadRuns[g]!)}) | ${(base[1] / v).toFixed(1)} |`);
  });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'cost') await cost(rest);
else {
  console.error('usage: npx tsx bench/vad-lite.ts cost [LITE.onnx …]');
  process.exit(2);
}
