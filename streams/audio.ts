/**
 * Sample-format helpers shared by every audio source (file, stdin, microphone, WebSocket ingest):
 * PCM decoding, G.711 mu-law, downmixing and resampling to the pipeline's 16 kHz mono float.
 */
import { AffectError } from '../core/errors.js';
import { polyphaseKernel, type PolyphaseKernel, type PolyphaseWeights } from './wasm/polyphase.js';

/** Decodes signed 16-bit little-endian PCM into floats in [-1, 1). Odd trailing bytes are an error. */
export function s16leToFloat32(buf: Uint8Array): Float32Array {
  if (buf.byteLength % 2 !== 0) {
    throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `s16le audio must have an even number of bytes, got ${buf.byteLength}`, {
      recoverable: true,
      hint: 'send whole 16-bit samples in each frame',
    });
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Float32Array(buf.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/** Encodes floats to s16le, clipping to [-1, 1]. */
export function float32ToS16le(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i] ?? 0));
    out.writeInt16LE(Math.round(v < 0 ? v * 32768 : v * 32767), i * 2);
  }
  return out;
}

// G.711 mu-law decoding table (ITU-T G.711), built once.
const MULAW_TABLE = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const sign = u & 0x80;
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    let magnitude = ((mantissa << 3) + 0x84) << exponent;
    magnitude -= 0x84;
    t[i] = (sign ? -magnitude : magnitude) / 32768;
  }
  return t;
})();

/**
 * Decodes G.711 mu-law bytes (telephony, usually 8 kHz) into floats: into a new array, or into the
 * start of `into` (at least `buf.length` long; the returned view covers the decoded samples).
 */
export function mulawToFloat32(buf: Uint8Array, into?: Float32Array): Float32Array {
  if (into && into.length < buf.length) throw new RangeError(`mulawToFloat32: into has ${into.length} samples, needs ${buf.length}`);
  const out = into ? into.subarray(0, buf.length) : new Float32Array(buf.length);
  const table = MULAW_TABLE;
  for (let i = 0; i < buf.length; i++) out[i] = table[buf[i]!]!;
  return out;
}

/** Encodes floats to G.711 mu-law (for tests and simulators). */
export function float32ToMulaw(samples: Float32Array): Uint8Array {
  const BIAS = 0x84;
  const CLIP = 32635;
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let s = Math.round(Math.max(-1, Math.min(1, samples[i] ?? 0)) * 32767);
    const sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    if (s > CLIP) s = CLIP;
    s += BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (s >> (exponent + 3)) & 0x0f;
    out[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return out;
}

/** Averages interleaved channels into mono. */
export function downmix(interleaved: Float32Array, channels: number): Float32Array {
  if (channels === 1) return interleaved;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`downmix: channels must be a positive integer, got ${channels}`);
  const frames = Math.floor(interleaved.length / channels);
  const out = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[f * channels + c] ?? 0;
    out[f] = sum / channels;
  }
  return out;
}

/** Zero crossings of the sinc kernel on each side of its centre (quality vs. cost). */
const SINC_ZERO_CROSSINGS = 8;
/** Kernel table resolution: entries per input sample of kernel offset. */
const SINC_TABLE_STEPS = 256;

/**
 * Streaming band-limited resampler: windowed-sinc interpolation (Blackman window, 8 zero crossings
 * a side) with the cutoff at 0.92 × the lower Nyquist, so downsampling is anti-aliased and
 * upsampling does not image. Output sample k sits at input position k × fromHz / toHz, computed
 * from integers, so the output count tracks the input exactly however the input is chunked (no
 * drift in audio time) and chunking does not change the output. Each output needs a few input
 * samples of look-ahead (under 2 ms); `flush()` at the end of a stream returns what is held back.
 * Weights are renormalised where the kernel runs past the start or end of the signal.
 */
export class StreamResampler {
  /** Input history: `buf[0]` is input sample `base`. */
  private buf = new Float32Array(0);
  private bufLen = 0;
  private base = 0;
  /** Input samples received. */
  private inCount = 0;
  /** Output samples produced (= index of the next output sample). */
  private outCount = 0;
  /** Kernel half-width in input samples. */
  private readonly halfWidth: number;
  /** Kernel h(|t|) sampled every 1/SINC_TABLE_STEPS input samples, t in [0, halfWidth]. */
  private readonly table: Float32Array;
  /**
   * Polyphase weights for integer rates with a short period (8 → 16 kHz: 2 phases): output k uses
   * phase k mod period, whose taps start at floor(position) + first[phase], with the kernel weights
   * already normalised. The same weights the general loop computes, looked up instead of
   * interpolated per tap; used wherever the kernel does not run past the signal's ends.
   */
  private readonly poly: { readonly period: number; readonly first: Int32Array; readonly weights: readonly Float32Array[] } | undefined;
  /** The polyphase loop in WebAssembly SIMD (streams/wasm/polyphase.ts), where available. */
  private readonly wasm: { readonly kernel: PolyphaseKernel; readonly weights: PolyphaseWeights } | undefined;

  constructor(
    readonly fromHz: number,
    readonly toHz: number,
  ) {
    if (!(fromHz > 0) || !(toHz > 0) || !Number.isFinite(fromHz) || !Number.isFinite(toHz)) {
      throw new RangeError(`StreamResampler: rates must be > 0, got ${fromHz} -> ${toHz}`);
    }
    // Cutoff in cycles per input sample.
    const fc = 0.5 * Math.min(1, toHz / fromHz) * 0.92;
    this.halfWidth = SINC_ZERO_CROSSINGS / (2 * fc);
    const n = Math.ceil(this.halfWidth * SINC_TABLE_STEPS) + 2;
    this.table = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const t = j / SINC_TABLE_STEPS;
      if (t >= this.halfWidth) continue;
      const x = 2 * fc * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = 0.42 + 0.5 * Math.cos((Math.PI * t) / this.halfWidth) + 0.08 * Math.cos((2 * Math.PI * t) / this.halfWidth);
      this.table[j] = 2 * fc * sinc * w;
    }
    if (Number.isInteger(fromHz) && Number.isInteger(toHz)) {
      const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
      const period = toHz / gcd(fromHz, toHz);
      if (period <= 1024) {
        const first = new Int32Array(period);
        const weights: Float32Array[] = [];
        for (let r = 0; r < period; r++) {
          const f = ((r * fromHz) % toHz) / toHz;
          const lo = Math.ceil(f - this.halfWidth);
          const hi = Math.floor(f + this.halfWidth);
          const w = new Float32Array(hi - lo + 1);
          let sum = 0;
          for (let j = lo; j <= hi; j++) sum += w[j - lo] = this.kernel(f - j);
          for (let j = 0; j < w.length; j++) w[j] = w[j]! / sum;
          first[r] = lo;
          weights.push(w);
        }
        this.poly = { period, first, weights };
      }
    }
    const kernel = this.poly ? polyphaseKernel() : undefined;
    const w = kernel && this.poly ? kernel.weights(fromHz, toHz, this.poly.first, this.poly.weights) : undefined;
    this.wasm = kernel && w ? { kernel, weights: w } : undefined;
  }

  private kernel(t: number): number {
    const a = Math.abs(t) * SINC_TABLE_STEPS;
    const j = Math.floor(a);
    const f = a - j;
    const t0 = this.table[j] ?? 0;
    return t0 + f * ((this.table[j + 1] ?? 0) - t0);
  }

  /** Input position of output sample k (exact rational, no accumulated error). */
  private position(k: number): number {
    return (k * this.fromHz) / this.toHz;
  }

  private append(input: Float32Array): void {
    if (this.bufLen + input.length > this.buf.length) {
      const grown = new Float32Array(Math.max(this.bufLen + input.length, this.buf.length * 2, 1024));
      grown.set(this.buf.subarray(0, this.bufLen));
      this.buf = grown;
    }
    this.buf.set(input, this.bufLen);
    this.bufLen += input.length;
    this.inCount += input.length;
  }

  /**
   * Output samples `outCount` up to (not including) `endK`, reading the kernel over the samples
   * held, into one preallocated array. The polyphase weights are used wherever the kernel lies
   * inside the samples received; the general per-tap loop (renormalised) elsewhere.
   */
  private produce(endK: number): Float32Array {
    const n = Math.max(0, endK - this.outCount);
    const out = new Float32Array(n);
    const hw = this.halfWidth;
    const poly = this.poly;
    const buf = this.buf;
    const base = this.base;
    const inCount = this.inCount;
    const fromHz = this.fromHz;
    const toHz = this.toHz;
    const wasm = this.wasm;
    /** Output k's first tap, and whether every tap lies inside the samples held (polyphase path). */
    const first = (k: number): number => Math.floor((k * fromHz) / toHz) + poly!.first[k % poly!.period]!;
    const inside = (k: number): boolean => {
      const s = first(k);
      return s >= base && s >= 0 && s + poly!.weights[k % poly!.period]!.length <= inCount;
    };
    let k = this.outCount;
    for (let o = 0; o < n; o++, k++) {
      if (poly) {
        if (wasm && n - o >= 8 && inside(k)) {
          // The outputs whose taps all lie inside: a run (a tap span's first and last sample never
          // decrease with k), ending where the look-ahead runs out at the end of a flush.
          let e = k + (n - o);
          while (e > k + 1 && !inside(e - 1)) e--;
          const s = first(k);
          wasm.kernel.run(wasm.weights, buf.subarray(s - base, this.bufLen), s, k, e - k, out, o);
          o += e - k - 1;
          k = e - 1;
          continue;
        }
        const r = k % poly.period;
        const w = poly.weights[r]!;
        const start = Math.floor((k * fromHz) / toHz) + poly.first[r]!;
        if (start >= base && start >= 0 && start + w.length <= inCount) {
          let acc = 0;
          const off = start - base;
          for (let j = 0; j < w.length; j++) acc += w[j]! * buf[off + j]!;
          out[o] = acc;
          continue;
        }
      }
      const p = (k * fromHz) / toHz;
      const lo = Math.max(Math.ceil(p - hw), 0, base);
      const hi = Math.min(Math.floor(p + hw), inCount - 1);
      let acc = 0;
      let wsum = 0;
      for (let i = lo; i <= hi; i++) {
        const w = this.kernel(p - i);
        acc += w * (buf[i - base] ?? 0);
        wsum += w;
      }
      out[o] = wsum > 1e-9 ? acc / wsum : 0;
    }
    this.outCount = k;
    // Drop history no future output can reach.
    const keepFrom = Math.max(this.base, Math.floor(this.position(this.outCount) - hw) - 1);
    if (keepFrom > this.base) {
      const drop = Math.min(keepFrom - this.base, this.bufLen);
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufLen -= drop;
      this.base += drop;
    }
    return out;
  }

  /** Resamples one chunk; call with consecutive chunks of one stream. */
  process(input: Float32Array): Float32Array {
    if (this.fromHz === this.toHz) return input;
    this.append(input);
    const last = this.inCount - 1;
    // An output needs every input sample its kernel covers (look-ahead of halfWidth): emit every k
    // with position(k) + halfWidth <= last. Estimate the first k past it, then settle it exactly.
    const ok = (k: number): boolean => this.position(k) + this.halfWidth <= last;
    let end = Math.max(this.outCount, Math.floor(((last - this.halfWidth) * this.toHz) / this.fromHz) + 1);
    while (end > this.outCount && !ok(end - 1)) end--;
    while (ok(end)) end++;
    return this.produce(end);
  }

  /**
   * Ends the stream: returns the outputs held back for look-ahead, so the total output length is
   * exactly round(inputSamples × toHz / fromHz).
   */
  flush(): Float32Array {
    if (this.fromHz === this.toHz) return new Float32Array(0);
    const want = Math.round((this.inCount * this.toHz) / this.fromHz);
    return this.produce(want);
  }
}

/** Resamples a whole signal at once (exact length: round(n × toHz / fromHz)). */
export function resample(input: Float32Array, fromHz: number, toHz: number): Float32Array {
  const r = new StreamResampler(fromHz, toHz);
  const head = r.process(input);
  if (fromHz === toHz) return head;
  const tail = r.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/** Replaces NaN/Inf with 0 and clamps to [-1, 1]; returns how many samples were bad or clipped. */
export function sanitizeSamples(samples: Float32Array): { nonFinite: number; clipped: number } {
  let nonFinite = 0;
  let clipped = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i] ?? 0;
    if (!Number.isFinite(v)) {
      samples[i] = 0;
      nonFinite++;
    } else if (v > 1 || v < -1) {
      samples[i] = v > 1 ? 1 : -1;
      clipped++;
    }
  }
  return { nonFinite, clipped };
}

/** Root-mean-square level of a signal. */
export function rms(samples: Float32Array): number {
  if (samples.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < samples.length; i++) s += (samples[i] ?? 0) ** 2;
  return Math.sqrt(s / samples.length);
}
