/**
 * The shift detector early in a stream, per `minBlocks` (the history it needs before any alert):
 * `npx tsx bench/escalation-onset.ts [BLOCKS=8,6,4] [STREAMS=200] [EPISODES=60]`. Per noise level (the
 * smoothing section's kinds), alerts in the first 90 s of STREAMS constant-affect streams, and how many
 * of EPISODES synthetic escalations (the smoothing section's) are caught when the ramp starts 10, 15,
 * 20, 30 or 40 s into the stream, with the mean delay. Pure computation through the pipeline's stages
 * (bench/sections/smoothing.ts `alertTimes`); deterministic. Results: docs/bench.md ("Early in a stream").
 */
import { alertTimes, noiseSeries, type NoiseKind } from './sections/smoothing.js';
import { seededRandom, gaussianFrom } from '../core/seeded-random.js';
const hop = 250,
  ps = 4;
const gen = (s: number) => {
  const u = seededRandom(s);
  return () => gaussianFrom(u);
};
const args = process.argv.slice(2);
const blocksList = (args[0] ?? '8,6,4').split(',').map(Number);
const streams = Number(args[1] ?? 200),
  episodes = Number(args[2] ?? 60);
const noises: Array<[NoiseKind, number]> = [
  ['iid', 0.1],
  ['iid', 0.2],
  ['iid', 0.3],
  ['overlap', 0.3],
  ['overlap', 0.5],
];
for (const minBlocks of blocksList) {
  const esc = { method: 'shift' as const, minBlocks };
  for (const [kind, sd] of noises) {
    // first 90 s of constant affect: alerts
    let fa = 0,
      faStreams = 0;
    for (let k = 0; k < streams; k++) {
      const g = gen(90_000 + k);
      const nv = noiseSeries(kind, sd, g),
        na = noiseSeries(kind, sd, g);
      const m = 90 * ps;
      const v = Array.from({ length: m }, () => 0.1 + nv());
      const a = Array.from({ length: m }, () => -0.1 + na());
      const t = await alertTimes(v, a, hop, 'kalman-cv', 1000, esc);
      fa += t.length;
      faStreams += t.length > 0 ? 1 : 0;
    }
    const det: string[] = [];
    for (const restS of [10, 15, 20, 30, 40]) {
      let hit = 0,
        delay = 0;
      for (let e = 0; e < episodes; e++) {
        const g = gen(1000 + e);
        const nv = noiseSeries(kind, sd, g),
          na = noiseSeries(kind, sd, g);
        const rest = restS * ps,
          ramp = 6 * ps,
          n = rest + 16 * ps;
        const v: number[] = [],
          a: number[] = [];
        for (let i = 0; i < n; i++) {
          const r = i < rest ? 0 : Math.min(1, (i - rest) / ramp);
          v.push(0.2 - 0.6 * r + nv());
          a.push(-0.3 + 0.6 * r + na());
        }
        const start = rest * hop;
        const h = (await alertTimes(v, a, hop, 'kalman-cv', 1000, esc)).find((t) => t >= start && t <= start + 12000);
        if (h !== undefined) {
          hit++;
          delay += h - start;
        }
      }
      det.push(`${restS}s:${hit}/${episodes}${hit ? `@${(delay / hit / 1000).toFixed(1)}` : ''}`);
    }
    console.log(`minBlocks ${minBlocks} ${kind} ${sd}: first-90s alerts ${fa} in ${faStreams}/${streams} streams | caught (rest before ramp) ${det.join(' ')}`);
  }
}
