/**
 * The shift detector early in a stream, per `minBlocks` (the history it needs before any alert):
 * `npx tsx bench/escalation-onset.ts [BLOCKS=8,6,4] [STREAMS=200] [EPISODES=60]`. Per noise level (the
 * smoothing section's kinds), alerts in the first 90 s of STREAMS constant-affect streams, and how many
 * of EPISODES synthetic escalations (the smoothing section's) are caught when the ramp starts 10, 15,
 * 20, 30 or 40 s into the stream, with the mean delay. Pure computation through the pipeline's stages
 * (bench/sections/smoothing.ts: the same episodes and constant-affect streams as its escalation rows); deterministic. Results: docs/bench.md ("Early in a stream").
 */
import { alarmsOnConstant, detectEscalations, escalationNoises, ONSET_REST_S, START_STREAM_SEED, type EscalationCase } from './sections/smoothing.js';

const HOP_MS = 250;
const args = process.argv.slice(2);
const blocksList = (args[0] ?? '8,6,4').split(',').map(Number);
const streams = Number(args[1] ?? 200);
const episodes = Number(args[2] ?? 60);
for (const minBlocks of blocksList) {
  for (const [noise, noiseSd] of escalationNoises()) {
    const c: EscalationCase = { method: 'shift', filter: 'kalman-cv', tauMs: 1000, noise, noiseSd, options: { minBlocks } };
    // First 90 s of constant affect: alerts, and streams with any.
    let fa = 0;
    let faStreams = 0;
    for (let k = 0; k < streams; k++) {
      const n = await alarmsOnConstant(c, HOP_MS, START_STREAM_SEED + k, 90);
      fa += n;
      faStreams += n > 0 ? 1 : 0;
    }
    const det: string[] = [];
    for (const restS of ONSET_REST_S) {
      const { detected, delayMs } = await detectEscalations(c, HOP_MS, episodes, restS);
      det.push(`${restS}s:${detected}/${episodes}${detected ? `@${(delayMs / detected / 1000).toFixed(1)}` : ''}`);
    }
    console.log(
      `minBlocks ${minBlocks} ${noise} ${noiseSd}: first-90s alerts ${fa} in ${faStreams}/${streams} streams | caught (rest before ramp) ${det.join(' ')}`,
    );
  }
}
