/**
 * Teacher labels for training/vad/distill_lite.py: Silero VAD v4 (the default sequence graph, through
 * the VAD stage's own detector, energy gate on: gated frames get 0 and keep the state) over each
 * training stream from its start, one probability per 512-sample frame.
 *
 *   npx tsx training/vad/teacher-labels.ts [NAME]   # reads .cache/vad-lite/NAME.{f32,json} (default train), writes NAME.labels.f32
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SileroVad } from '../../models/silero-vad.js';
import { getLogger } from '../../core/log.js';

const dir = '.cache/vad-lite';
const name = process.argv[2] ?? 'train';
const meta = JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8')) as { lengths: number[] };
const buf = readFileSync(`${dir}/${name}.f32`);
const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const F = 512;
const vad = await SileroVad.load({ logger: getLogger(), maxQueuedFrames: 1 << 24 });
const starts: number[] = [];
let at = 0;
for (const n of meta.lengths) {
  starts.push(at);
  at += n;
}
const out: Float32Array[] = meta.lengths.map(() => new Float32Array(0));
const group = 32;
for (let g = 0; g < meta.lengths.length; g += group) {
  const ids = meta.lengths.map((_, i) => i).slice(g, g + group);
  await Promise.all(
    ids.map(async (i) => {
      const s = vad.stream();
      const n = Math.floor(meta.lengths[i]! / F) * F;
      out[i] = Float32Array.from(await s.probabilities(x.subarray(starts[i], starts[i]! + n)));
      s.close?.();
    }),
  );
}
await vad.close();
const total = out.reduce((a, p) => a + p.length, 0);
const all = new Float32Array(total);
let o = 0;
for (const p of out) {
  all.set(p, o);
  o += p.length;
}
writeFileSync(`${dir}/${name}.labels.f32`, Buffer.from(all.buffer));
let pos = 0;
for (const p of all) pos += +(p >= 0.5);
console.log(`teacher-labels: ${out.length} streams, ${total} frames, ${((100 * pos) / total).toFixed(1)} % at p >= 0.5 → ${dir}/${name}.labels.f32`);
