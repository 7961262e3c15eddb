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
 *   npx tsx bench/vad-lite.ts agree LITE.onnx
 *
 * Agreement with Silero on audio the distilled detector never saw in training (training/vad/distill_lite.py):
 * RAVDESS actors 19–20, EmoDB speakers 03 and 08, espeak-ng speech (another corpus: synthetic, as the
 * VAD tests build it), and the tests' hold music, line noise, tones, low noise and near-silence. Both
 * detectors run through `SileroVad.load` with its defaults (energy gate -60 dBFS), each set as one
 * stream; frames are labelled with the VAD stage's hysteresis (streams/vad.ts FrameLabeller, defaults).
 * Reported: frame agreement after hysteresis, raw agreement at p 0.5, the 1 s / 250 ms windows whose
 * speech-model skip decision (voiced ≥ 0.2) differs, segments and boundary differences (segments matched
 * by overlap), the highest probability, and mean |p − Silero|.
 *
 * Results: docs/bench.md ("A detector distilled from Silero").
 */
import * as ort from 'onnxruntime-node';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { SileroVad, SILERO_SEQ_FILE } from '../models/silero-vad.js';
import { getLogger } from '../core/log.js';
import { cpuMs, decode16k, loadSamples, median } from './lib/common.js';
import { detectorCost, sequenceFeeds } from './sections/vad.js';
import { seededRandom } from '../core/seeded-random.js';
import { boundaryShiftsMs, labelFrames } from '../test/helpers/vad-labels.js';
import { mean } from '../src/validate/stats.js';
import { concat, holdMusic, lineNoise, silence, speak } from '../test/helpers/vad-audio.js';

const F = 512;
const RATE = 16000;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** ms CPU per stream-second of `calls` calls of B × S frames (state carried from call to call). */
async function ortCost(s: ort.InferenceSession, audio: Float32Array[], B: number, S: number, calls: number): Promise<number> {
  const fs = Array.from({ length: calls }, (_, i) => sequenceFeeds(audio, B, S, i * S));
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
  for (const v of vads)
    await detectorCost(
      v,
      audio.map((x) => x.subarray(0, RATE)),
      true,
    );
  const vadRuns: number[][] = graphs.map(() => []);
  const mainRuns: number[][] = graphs.map(() => []);
  const vr = Math.max(3, Math.round(repeats / 3));
  for (let r = 0; r < vr; r++)
    for (let g = 0; g < graphs.length; g++) {
      const { ms, mainMs } = await detectorCost(vads[g]!, audio, true);
      vadRuns[g]!.push(ms);
      mainRuns[g]!.push(mainMs);
    }
  for (const v of vads) await v.close();
  for (const s of sessions) await s.release();
  const base = [median(ortRuns[0]!), median(vadRuns[0]!)] as const;
  console.log(
    `vad-lite cost: ${B} streams × ${S} frames per call, 1 intra-op thread; ms CPU per stream-second, median (min–max) of ${repeats} (ort) / ${vr} (vad) interleaved rounds`,
  );
  console.log('| graph | ort alone | × cheaper | through SileroVad (worker + main thread) | × cheaper | of which main thread |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  graphs.forEach((p, g) => {
    const o = median(ortRuns[g]!);
    const v = median(vadRuns[g]!);
    const span = (xs: number[]): string => `${r3(Math.min(...xs))}–${r3(Math.max(...xs))}`;
    console.log(
      `| ${name(p)} | ${r3(o)} (${span(ortRuns[g]!)}) | ${(base[0] / o).toFixed(1)} | ${r3(v)} (${span(vadRuns[g]!)}) | ${(base[1] / v).toFixed(1)} | ${r3(median(mainRuns[g]!))} |`,
    );
  });
}

/** Tones: 1 kHz, a dual (DTMF-like) tone and a ringback cadence (440 + 480 Hz, 2 s on, 4 s off), -12 dBFS peak. */
function tones(seconds: number): Float32Array {
  const n = Math.round(seconds * RATE);
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / RATE;
    const part = Math.floor((3 * i) / n);
    if (part === 0) return 0.25 * Math.sin(2 * Math.PI * 1000 * t);
    if (part === 1) return 0.125 * (Math.sin(2 * Math.PI * 770 * t) + Math.sin(2 * Math.PI * 1336 * t));
    return t % 6 < 2 ? 0.125 * (Math.sin(2 * Math.PI * 440 * t) + Math.sin(2 * Math.PI * 480 * t)) : 0;
  });
}

function evalSets(): Record<string, Float32Array> {
  const sets: Record<string, Float32Array> = {};
  const lines = [
    'The quick brown fox jumps over the lazy dog near the river bank.',
    'I would like to speak to a manager about my bill, please.',
    'Thank you for holding, your call is important to us.',
    'My order arrived broken and nobody answers the phone.',
    'Could you tell me when the next train to the airport leaves?',
    'That is wonderful news, thank you so much for your help!',
  ];
  const voices = ['en-us', 'en', 'en-us+f3', 'en+m3', 'en-us', 'en+f2'];
  const sp = lines.map((l, i) => speak(l, voices[i]));
  sets['espeak'] = concat(sp.flatMap((x, i) => [silence(0.4 + 0.5 * (i % 4), 20 + i), x]).concat([silence(1, 30)])).samples;
  const data = process.env['CIRCUMPLEX_DATA_DIR'] ?? '../shared/data';
  const rd = path.join(data, 'ravdess', 'flac');
  const rf = readdirSync(rd)
    .filter((f) => /^03-01-\d\d-\d\d-\d\d-\d\d-(19|20)\.flac$/.test(f))
    .sort();
  const rav = rf.map((f) => decode16k(path.join(rd, f)));
  sets['ravdess-19-20'] = concat(rav.flatMap((x, i) => [x, silence(0.7, i)])).samples;
  // The same speech under line noise at -35 dBFS rms (a call-like floor, above the energy gate).
  const clean = sets['ravdess-19-20'];
  const r = seededRandom(77);
  sets['ravdess-19-20 + line noise'] = Float32Array.from(clean, (v, i) => v + 0.3 * (0.06 * (r() - 0.5) + 0.03 * Math.sin((2 * Math.PI * 50 * i) / RATE)));
  const ed = path.join(data, 'emodb', 'wav');
  const ef = readdirSync(ed)
    .filter((f) => /^(03|08).*\.wav$/.test(f))
    .sort();
  sets['emodb-03-08'] = concat(ef.flatMap((f, i) => [decode16k(path.join(ed, f)), silence(0.7, 100 + i)])).samples;
  sets['hold music'] = holdMusic(30);
  sets['line noise'] = lineNoise(20);
  sets['tones'] = tones(18);
  const rn = seededRandom(5);
  sets['low noise (-45 dBFS)'] = Float32Array.from({ length: 20 * RATE }, () => 0.0056 * 1.732 * 2 * (rn() - 0.5));
  sets['silence'] = silence(10, 9);
  return sets;
}

async function probsOf(vad: SileroVad, x: Float32Array): Promise<Float32Array> {
  const s = vad.stream();
  const p = await s.probabilities(x.subarray(0, Math.floor(x.length / F) * F));
  s.close?.();
  return Float32Array.from(p);
}

const label = (p: Float32Array): ReturnType<typeof labelFrames> => labelFrames(p, F);

async function agree(lite: string): Promise<void> {
  const logger = getLogger();
  const big = { logger, maxQueuedFrames: 1 << 24 };
  const teacher = await SileroVad.load(big);
  const student = await SileroVad.load({ ...big, path: lite });
  // The bench's speech clip too (the `vad` section loops it for its continuous-speech figure), to read its pipeline figure with.
  const clip = await loadSamples();
  // And its call audio: 5 s of the clip, 5 s of -65 dBFS noise (below the energy gate), alternating, 60 s.
  const rc = seededRandom(11);
  const amp = 10 ** (-65 / 20) * Math.sqrt(3);
  const call = Float32Array.from({ length: 60 * RATE }, (_, i) => (Math.floor(i / 80_000) % 2 ? (rc() - 0.5) * 2 * amp : clip[i % clip.length]!));
  const sets = { ...evalSets(), 'bench speech clip': clip, 'bench call audio': call };
  console.log(`vad-lite agree: ${lite} vs Silero (sequence graph), SileroVad defaults (gate -60 dBFS), FrameLabeller defaults`);
  console.log(
    '| audio | s | Silero speech frames | frames alike after hysteresis | raw alike (p ≥ 0.5) | windows whose skip differs | segments Silero → lite | boundaries moved, mean · max ms | max p Silero · lite | mean abs p diff |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |');
  for (const [name, x] of Object.entries(sets)) {
    const p0 = await probsOf(teacher, x);
    const p1 = await probsOf(student, x);
    const L0 = label(p0);
    const L1 = label(p1);
    let alike = 0;
    let raw = 0;
    let sp = 0;
    let dp = 0;
    for (let k = 0; k < p0.length; k++) {
      alike += +(L0.lab[k] === L1.lab[k]);
      raw += +(p0[k]! >= 0.5 === p1[k]! >= 0.5);
      sp += L0.lab[k]!;
      dp += Math.abs(p0[k]! - p1[k]!);
    }
    let flips = 0;
    let wins = 0;
    for (let s = 0; s + 16000 <= x.length; s += 4000) {
      wins++;
      flips += +(L0.labeller.voicedFraction(s, s + 16000) >= 0.2 !== L1.labeller.voicedFraction(s, s + 16000) >= 0.2);
    }
    const bd = boundaryShiftsMs(L0.segs, L1.segs, F);
    const pct = (v: number): string => `${((100 * v) / p0.length).toFixed(1)} %`;
    const mx = (p: Float32Array): string => Math.max(0, ...p).toFixed(2);
    const bds = bd.length ? `${Math.round(mean(bd))} · ${Math.max(...bd)}` : '–';
    console.log(
      `| ${name} | ${(x.length / RATE).toFixed(1)} | ${pct(sp)} | ${pct(alike)} | ${pct(raw)} | ${flips} of ${wins} | ${L0.segs.length} → ${L1.segs.length} | ${bds} | ${mx(p0)} · ${mx(p1)} | ${(dp / p0.length).toFixed(3)} |`,
    );
  }
  await teacher.close();
  await student.close();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'cost') await cost(rest);
else if (mode === 'agree' && rest[0]) await agree(rest[0]);
else {
  console.error('usage: npx tsx bench/vad-lite.ts cost [LITE.onnx …] | agree LITE.onnx');
  process.exit(2);
}
