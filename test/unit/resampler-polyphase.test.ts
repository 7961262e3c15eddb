/**
 * StreamResampler's polyphase fast path (integer rates with a short period, e.g. Twilio's 8 kHz →
 * 16 kHz) gives the same output as the general per-tap kernel loop, however the input is chunked;
 * its WebAssembly SIMD loop (streams/wasm/polyphase.ts) gives the JavaScript polyphase loop's output.
 */
import { describe, expect, it } from 'vitest';
import { StreamResampler } from '../../streams/audio.js';
import { polyphaseKernel } from '../../streams/wasm/polyphase.js';
import { seededRandom } from '../../core/seeded-random.js';

function run(from: number, to: number, x: Float32Array, sizes: number[], general: boolean, noWasm = false): Float32Array {
  const r = new StreamResampler(from, to);
  if (general) Object.defineProperty(r, 'poly', { value: undefined });
  if (general || noWasm) Object.defineProperty(r, 'wasm', { value: undefined });
  const parts: Float32Array[] = [];
  let at = 0;
  let i = 0;
  while (at < x.length) {
    const n = sizes[i++ % sizes.length]!;
    parts.push(r.process(x.subarray(at, at + n)));
    at += n;
  }
  parts.push(r.flush());
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('StreamResampler polyphase fast path', () => {
  it.each([
    [8000, 16000],
    [16000, 8000],
    [44100, 16000],
    [48000, 16000],
    [22050, 16000],
  ])('%i → %i Hz: same samples as the general loop (chunks of 160, 1, 333, 4000)', (from, to) => {
    const rnd = seededRandom(from + to);
    const x = Float32Array.from({ length: from }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / from) + 0.2 * (rnd() - 0.5));
    const sizes = [160, 1, 333, 4000];
    const fast = run(from, to, x, sizes, false);
    const slow = run(from, to, x, sizes, true);
    expect(fast.length).toBe(Math.round((x.length * to) / from));
    expect(slow.length).toBe(fast.length);
    let worst = 0;
    for (let i = 0; i < fast.length; i++) worst = Math.max(worst, Math.abs(fast[i]! - slow[i]!));
    expect(worst).toBeLessThan(1e-5);
  });

  it.each([
    [8000, 16000],
    [44100, 16000],
    [48000, 16000],
  ])('%i → %i Hz: the WebAssembly SIMD loop is in use and gives the JavaScript polyphase loop samples', (from, to) => {
    expect(polyphaseKernel(), 'WebAssembly SIMD is available in Node 20').toBeDefined();
    expect((new StreamResampler(from, to) as unknown as { wasm?: unknown }).wasm).toBeDefined();
    const rnd = seededRandom(from);
    const x = Float32Array.from({ length: 2 * from + 7 }, () => rnd() - 0.5);
    const sizes = [160, 3, 2000, 1];
    const wasm = run(from, to, x, sizes, false);
    const js = run(from, to, x, sizes, false, true);
    expect(wasm.length).toBe(js.length);
    let worst = 0;
    for (let i = 0; i < js.length; i++) worst = Math.max(worst, Math.abs(wasm[i]! - js[i]!));
    expect(worst).toBeLessThan(1e-6);
  });

  it('8 → 16 kHz over 10 minutes in Twilio-sized chunks: the WebAssembly loop (phase and position counted, not divided) still gives the JavaScript loop samples', () => {
    const rnd = seededRandom(99);
    const x = Float32Array.from({ length: 8000 * 600 }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 300 * i) / 8000) + 0.2 * (rnd() - 0.5));
    const sizes = [160, 160, 2000, 320, 7];
    const wasm = run(8000, 16000, x, sizes, false);
    const js = run(8000, 16000, x, sizes, false, true);
    expect(wasm.length).toBe(2 * x.length);
    let worst = 0;
    for (let i = 0; i < js.length; i++) worst = Math.max(worst, Math.abs(wasm[i]! - js[i]!));
    expect(worst).toBeLessThan(1e-6);
  });
});
