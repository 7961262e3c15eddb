/**
 * Sample-format helpers shared by every audio source (file, stdin, microphone, WebSocket ingest):
 * PCM decoding, G.711 mu-law, downmixing and resampling to the pipeline's 16 kHz mono float.
 */
import { AffectError } from '../src/errors.js';

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

/** Decodes G.711 mu-law bytes (telephony, usually 8 kHz) into floats. */
export function mulawToFloat32(buf: Uint8Array): Float32Array {
  const out = new Float32Array(buf.length);
  for (let i = 0; i < buf.length; i++) out[i] = MULAW_TABLE[buf[i] ?? 0xff] ?? 0;
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

/**
 * Streaming resampler (linear interpolation with a one-pole anti-alias low-pass when downsampling).
 * Keeps state across chunks so chunk boundaries leave no clicks and the output sample count tracks
 * the input exactly in the long run (no drift in audio time).
 */
export class StreamResampler {
  private readonly ratio: number;
  /** Position of the next output sample, in input samples, relative to `prev`'s index (-1). */
  private pos = 0;
  private prev = 0;
  private hasPrev = false;
  private lp = 0;
  private readonly alpha: number;
  /** Input and output samples so far, so `flush()` can make the total exact. */
  private inCount = 0;
  private outCount = 0;

  constructor(
    readonly fromHz: number,
    readonly toHz: number,
  ) {
    if (!(fromHz > 0) || !(toHz > 0)) throw new RangeError(`StreamResampler: rates must be > 0, got ${fromHz} -> ${toHz}`);
    this.ratio = fromHz / toHz;
    // Low-pass only when downsampling: cutoff near the new Nyquist.
    const cutoff = Math.min(fromHz, toHz) * 0.45;
    const rc = 1 / (2 * Math.PI * cutoff);
    const dt = 1 / fromHz;
    this.alpha = fromHz > toHz ? dt / (rc + dt) : 1;
  }

  /** Resamples one chunk; call with consecutive chunks of one stream. */
  process(input: Float32Array): Float32Array {
    if (this.fromHz === this.toHz) return input;
    const filtered = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) {
      this.lp += this.alpha * ((input[i] ?? 0) - this.lp);
      filtered[i] = this.lp;
    }
    const out: number[] = [];
    // Virtual sequence: index -1 is `prev`, 0..n-1 is `filtered`.
    if (!this.hasPrev && filtered.length > 0) {
      this.prev = filtered[0] ?? 0;
      this.hasPrev = true;
      this.pos = 1; // start exactly at sample 0
    }
    const at = (k: number): number => (k < 0 ? this.prev : (filtered[k] ?? 0));
    while (this.pos - 1 < filtered.length - 1) {
      const x = this.pos - 1; // index into filtered, may be in [-1, n-1)
      const k = Math.floor(x);
      const frac = x - k;
      out.push(at(k) * (1 - frac) + at(k + 1) * frac);
      this.pos += this.ratio;
    }
    if (filtered.length > 0) {
      this.prev = filtered[filtered.length - 1] ?? 0;
      this.pos -= filtered.length;
    }
    this.inCount += input.length;
    this.outCount += out.length;
    return Float32Array.from(out);
  }

  /**
   * Ends the stream: interpolation stops at the last input sample, so upsampling would come out a
   * sample or two short; this returns the missing tail (the last value held) so the output length is
   * exactly round(inputSamples × toHz / fromHz).
   */
  flush(): Float32Array {
    if (this.fromHz === this.toHz) return new Float32Array(0);
    const want = Math.round((this.inCount * this.toHz) / this.fromHz);
    const missing = Math.max(0, want - this.outCount);
    this.outCount += missing;
    return new Float32Array(missing).fill(this.prev);
  }
}

/** Resamples a whole signal at once. */
export function resample(input: Float32Array, fromHz: number, toHz: number): Float32Array {
  return new StreamResampler(fromHz, toHz).process(input);
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
