/** Frame labels for the VAD benches (bench/vad-stride.ts, bench/vad-lite.ts) and the vad-lite test: the VAD stage's own labeller, default options. */
import { FrameLabeller, resolveVadOptions, type FrameSegment } from '../../streams/vad.js';

/** Every frame's label (1 = speech), the segments (the last one closed at the end), and the labeller, for `frameSamples`-sample frames. */
export function labelFrames(p: Float32Array, frameSamples: number): { lab: Uint8Array; segs: FrameSegment[]; labeller: FrameLabeller } {
  const labeller = new FrameLabeller(resolveVadOptions(), frameSamples, Infinity);
  const segs = labeller.push(p);
  const last = labeller.finish();
  if (last) segs.push(last);
  const lab = new Uint8Array(p.length);
  for (let k = 0; k < p.length; k++) lab[k] = +labeller.isSpeech(k);
  return { lab, segs, labeller };
}

/**
 * How far `other`'s segment boundaries lie from `ref`'s, ms (start and end of each `ref` segment
 * that some `other` segment overlaps; the first overlapping one is its match), for
 * `frameSamples`-sample frames at 16 kHz.
 */
export function boundaryShiftsMs(ref: readonly FrameSegment[], other: readonly FrameSegment[], frameSamples: number): number[] {
  const frameMs = (frameSamples * 1000) / 16000;
  const out: number[] = [];
  for (const [a, b] of ref) {
    const m = other.find(([c, d]) => c < b && d > a);
    if (m) out.push(Math.abs(m[0] - a) * frameMs, Math.abs(m[1] - b) * frameMs);
  }
  return out;
}
