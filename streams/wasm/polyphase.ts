/**
 * The polyphase inner loop of StreamResampler (streams/audio.ts) in WebAssembly with 128-bit SIMD
 * (two f64 lanes): the same weights, taps and f64 arithmetic as the JavaScript loop. The 8 → 16 kHz
 * resampling of every Twilio track is the largest single cost on the server's main thread; with this
 * loop the μ-law decoder as a whole runs about 3.6× faster than with the JavaScript one
 * (bench/ingest-decode.ts). Each output's phase and input position are counted, not divided
 * (docs/bench.md). Source: streams/wasm/polyphase.wat; the bytes below are it assembled with wabt
 * 1.0.39 (the command is in the .wat header). Where WebAssembly SIMD is not available,
 * {@link polyphaseKernel} returns undefined and the resampler keeps its JavaScript loop.
 */

const WASM_BASE64 =
  'AGFzbQEAAAABDAFgCH9/f39/f39/AAMCAQAFAwEAAQcQAgZtZW1vcnkCAANydW4AAArzAgHwAgMHfwJ7AXwCQANAIAggAk8NASAHQQwgBGxqIQkgCSgCBCEKIAkoAgghCyAAIAMgCSgCAGpBAnRqIQz9DAAAAAAAAAAAAAAAAAAAAAAhD/0MAAAAAAAAAAAAAAAAAAAAACEQQQAhDSAKQXxxIQ4CQANAIA0gDk8NASAPIAsgDUEDdGr9AAQAIAwgDUECdGr9XQMA/V/98gH98AEhDyAQIAsgDUEDdGr9AAQQIAwgDUECdGr9XQMI/V/98gH98AEhECANQQRqIQ0MAAsLIAogDWtBAk8EQCAPIAsgDUEDdGr9AAQAIAwgDUECdGr9XQMA/V/98gH98AEhDyANQQJqIQ0LIA8gEP3wASEPIA/9IQAgD/0hAaAhESANIApJBEAgESALIA1BA3RqKwMAIAwgDUECdGoqAgC7oqAhEQsgASAIQQJ0aiARtjgCACAEQQFqIQQgBCAGRgRAQQAhBCADIAVqIQMLIAhBAWohCAwACwsL';

/** Most distinct rate pairs whose weights the module holds (each resampler with an unseen pair adds one). */
const MAX_RATE_PAIRS = 64;
const PAGE = 65536;

/** A rate pair's weights in the module's memory. */
export interface PolyphaseWeights {
  readonly meta: number;
  readonly period: number;
  /** Input samples per period of outputs (fromHz × period / toHz, an integer). */
  readonly step: number;
}

/** The WebAssembly polyphase kernel (one per thread). */
export class PolyphaseKernel {
  private readonly memory: WebAssembly.Memory;
  private readonly runFn: (x: number, out: number, n: number, rel: number, r: number, step: number, period: number, meta: number) => void;
  private top = 0;
  private readonly pairs = new Map<string, PolyphaseWeights>();

  constructor(instance: WebAssembly.Instance) {
    this.memory = instance.exports['memory'] as WebAssembly.Memory;
    this.runFn = instance.exports['run'] as PolyphaseKernel['runFn'];
  }

  /** Stores a rate pair's polyphase weights (once per pair); undefined when the module holds too many pairs. */
  weights(fromHz: number, toHz: number, first: Int32Array, weights: readonly Float32Array[]): PolyphaseWeights | undefined {
    const key = `${fromHz}/${toHz}`;
    const known = this.pairs.get(key);
    if (known) return known;
    if (this.pairs.size >= MAX_RATE_PAIRS) return undefined;
    const period = first.length;
    const taps = weights.reduce((a, w) => a + w.length, 0);
    const meta = align(this.top, 8);
    const w0 = align(meta + 12 * period, 8);
    const end = w0 + 8 * taps;
    this.ensure(end);
    const ints = new Int32Array(this.memory.buffer, meta, 3 * period);
    const f64 = new Float64Array(this.memory.buffer, w0, taps);
    let at = 0;
    for (let r = 0; r < period; r++) {
      const w = weights[r]!;
      // The phase's first tap relative to q × step for output k = q × period + r (floor(k·from/to) = q × step + floor(r·from/to)).
      ints[3 * r] = Math.floor((r * fromHz) / toHz) + first[r]!;
      ints[3 * r + 1] = w.length;
      ints[3 * r + 2] = w0 + 8 * at;
      for (let j = 0; j < w.length; j++) f64[at + j] = w[j]!;
      at += w.length;
    }
    this.top = end;
    const p = { meta, period, step: (fromHz * period) / toHz };
    this.pairs.set(key, p);
    return p;
  }

  /**
   * Outputs k0 … k0 + n − 1 into `out` from `o`: `x` holds input samples from index `base`, and
   * every tap of every one of these outputs lies inside it.
   */
  run(p: PolyphaseWeights, x: Float32Array, base: number, k0: number, n: number, out: Float32Array, o: number): void {
    const xOff = align(this.top, 16);
    const outOff = xOff + 4 * x.length + 16;
    this.ensure(outOff + 4 * n);
    const buf = this.memory.buffer;
    new Float32Array(buf, xOff, x.length).set(x);
    const q = Math.floor(k0 / p.period);
    this.runFn(xOff, outOff, n, q * p.step - base, k0 - q * p.period, p.step, p.period, p.meta);
    out.set(new Float32Array(buf, outOff, n), o);
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE));
  }
}

const align = (v: number, a: number): number => Math.ceil(v / a) * a;

let kernel: PolyphaseKernel | null | undefined;

/** This thread's kernel, or undefined where WebAssembly SIMD is not available (or CIRCUMPLEX_WASM_RESAMPLER=0). */
export function polyphaseKernel(): PolyphaseKernel | undefined {
  if (kernel === undefined) {
    kernel = null;
    try {
      const bytes = Buffer.from(WASM_BASE64, 'base64');
      if (process.env['CIRCUMPLEX_WASM_RESAMPLER'] !== '0' && WebAssembly.validate(bytes)) {
        kernel = new PolyphaseKernel(new WebAssembly.Instance(new WebAssembly.Module(bytes)));
      }
    } catch {
      kernel = null;
    }
  }
  return kernel ?? undefined;
}
