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
