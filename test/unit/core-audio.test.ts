import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { StreamResampler, float32ToS16le, downmix, resample, sanitizeSamples } from '../../streams/audio.js';
import { rawPcmSource } from '../../streams/sources/stdin.js';
import { AudioConverter } from '../../streams/sources/convert.js';
import { AffectError } from '../../core/errors.js';
import { FlowControl, MAX_FLOW_CHUNK_MS } from '../../streams/flow.js';

/** Deterministic pseudo-random chunk sizes (no Math.random in tests). */
function* sizes(seed: number, max: number): Generator<number> {
  let s = seed;
  for (;;) {
    s = (s * 1103515245 + 12345) % 2147483648;
    yield 1 + (s % max);
  }
}
const sine = (n: number, hz: number, rate: number, amp = 0.5) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));
function amplitudeAt(x: Float32Array, hz: number, rate = 16000, skip = 160): number {
  let re = 0;
  let im = 0;
  const n = x.length - 2 * skip;
  for (let i = skip; i < skip + n; i++) {
    re += (x[i] ?? 0) * Math.cos((2 * Math.PI * hz * i) / rate);
    im += (x[i] ?? 0) * Math.sin((2 * Math.PI * hz * i) / rate);
  }
  return (2 * Math.hypot(re, im)) / n;
}

describe('StreamResampler', () => {
  for (const from of [8000, 11025, 22050, 44100, 48000, 96000]) {
    it(`${from} Hz → 16 kHz in random chunk sizes: no drift over 20 s, exact length after flush`, () => {
      const r = new StreamResampler(from, 16000);
      const total = from * 20;
      const gen = sizes(from, 9000);
      let fed = 0;
      let out = 0;
      let maxLag = 0;
      while (fed < total) {
        const n = Math.min(gen.next().value as number, total - fed);
        out += r.process(new Float32Array(n)).length;
        fed += n;
        // At every point the output count follows the input within the look-ahead (< 2 ms).
        maxLag = Math.max(maxLag, Math.abs(out - (fed * 16000) / from));
      }
      out += r.flush().length;
      expect(maxLag).toBeLessThan(32);
      expect(out).toBe(16000 * 20);
    });
  }

  it('keeps a tone at its frequency and level, and chunking does not change the output', () => {
    const x = sine(44100, 440, 44100);
    const whole = new StreamResampler(44100, 16000).process(x);
    const r = new StreamResampler(44100, 16000);
    const parts: number[] = [];
    const gen = sizes(7, 3000);
    for (let i = 0; i < x.length;) {
      const n = gen.next().value as number;
      parts.push(...r.process(x.subarray(i, i + n)));
      i += n;
    }
    expect(parts.length).toBe(whole.length);
    let maxDiff = 0;
    for (let i = 0; i < whole.length; i++) maxDiff = Math.max(maxDiff, Math.abs((whole[i] ?? 0) - (parts[i] ?? 0)));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(amplitudeAt(whole, 440)).toBeCloseTo(0.5, 2);
    expect(amplitudeAt(whole, 1000)).toBeLessThan(0.005);
    // Sample by sample, the output is the same tone sampled at 16 kHz (band-limited interpolation).
    const full = resample(x, 44100, 16000);
    expect(full.length).toBe(16000);
    const ideal = sine(16000, 440, 16000);
    let err = 0;
    for (let i = 200; i < 15800; i++) err = Math.max(err, Math.abs((full[i] ?? 0) - (ideal[i] ?? 0)));
    expect(err).toBeLessThan(0.01);
  });

  it('attenuates content above the new Nyquist when downsampling (anti-alias)', () => {
    // 12 kHz at 48 kHz would alias to 4 kHz at 16 kHz without the low-pass.
    const y = new StreamResampler(48000, 16000).process(sine(48000, 12000, 48000));
    const x = new StreamResampler(48000, 16000).process(sine(48000, 1000, 48000));
    expect(amplitudeAt(y, 4000)).toBeLessThan(amplitudeAt(x, 1000) / 100);
  });
});

describe('sample helpers', () => {
  it('downmix averages, sanitize replaces NaN/Inf and clips', () => {
    expect(Array.from(downmix(Float32Array.from([1, 0, 0.5, -0.5]), 2))).toEqual([0.5, 0]);
    const s = Float32Array.from([Number.NaN, 2, -3, 0.25, Number.POSITIVE_INFINITY]);
    expect(sanitizeSamples(s)).toEqual({ nonFinite: 2, clipped: 2 });
    expect(Array.from(s)).toEqual([0, 1, -1, 0.25, 0]);
  });

  it('AudioConverter sanitizes before resampling, so one NaN cannot poison the stream', () => {
    const c = new AudioConverter('s', 44100, 1);
    const x = sine(4410, 300, 44100);
    x[100] = Number.NaN;
    const out = c.push(x);
    expect(out && Array.from(out.samples).every(Number.isFinite)).toBe(true);
    expect(c.nonFinite).toBe(1);
  });
});

describe('raw s16le stdin source', () => {
  const feed = async (bytes: Buffer, cuts: number[], opts = {}) => {
    const input = new PassThrough();
    const done = lastValueFrom(rawPcmSource(input, opts).pipe(toArray()));
    let at = 0;
    for (const c of cuts) {
      input.write(bytes.subarray(at, c));
      at = c;
      await new Promise((r) => setImmediate(r));
    }
    input.end(bytes.subarray(at));
    return done;
  };

  it('handles odd byte counts across chunk boundaries (split samples and split frames)', async () => {
    const x = sine(1600, 500, 16000);
    const bytes = float32ToS16le(x);
    const chunks = await feed(bytes, [1, 3, 1001, 1002, 2999]);
    const got = chunks.flatMap((c) => Array.from(c.samples));
    expect(got.length).toBe(1600);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(x[i] ?? 0, 3);
    // Audio time is contiguous.
    let next = 0;
    for (const c of chunks) {
      expect(c.startSample).toBe(next);
      next += c.samples.length;
    }
  });

  it('resamples and downmixes a declared rate/channel count (44.1 kHz stereo)', async () => {
    const mono = sine(44100, 440, 44100);
    const stereo = new Float32Array(mono.length * 2);
    mono.forEach((v, i) => {
      stereo[2 * i] = v;
      stereo[2 * i + 1] = v;
    });
    const chunks = await feed(float32ToS16le(stereo), [5, 777, 40001, 100003], { sampleRateHz: 44100, channels: 2, streamId: 'x' });
    const got = Float32Array.from(chunks.flatMap((c) => Array.from(c.samples)));
    expect(got.length).toBe(16000);
    expect(chunks[0]?.streamId).toBe('x');
    expect(amplitudeAt(got, 440)).toBeCloseTo(0.5, 1);
  });

  it('a trailing partial frame is an AFFECT_ERR_AUDIO_FORMAT naming the channel count', async () => {
    const err = await feed(Buffer.alloc(7), []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    expect((err as AffectError).message).toMatch(/1 byte\(s\) of an incomplete s16le frame/);
  });

  it('pauses the input while the flow has no room and resumes when it drains', async () => {
    const input = new PassThrough();
    const flow = new FlowControl({ highWater: 1 });
    flow.acquire(); // the model stage is full
    const got: number[] = [];
    const sub = rawPcmSource(input, { flow }).subscribe((c) => got.push(c.samples.length));
    input.write(Buffer.alloc(320));
    await new Promise((r) => setImmediate(r));
    expect(input.isPaused()).toBe(true);
    flow.release();
    await new Promise((r) => setImmediate(r));
    expect(input.isPaused()).toBe(false);
    expect(got).toEqual([160]);
    sub.unsubscribe();
  });

  it('with a flow, splits a big read into pieces of at most MAX_FLOW_CHUNK_MS and waits for room between them', async () => {
    const input = new PassThrough();
    const flow = new FlowControl({ highWater: 2 });
    const got: number[] = [];
    let completed = false;
    // Each chunk takes one credit, as a model stage with one window per chunk would.
    const sub = rawPcmSource(input, { flow }).subscribe({
      next: (c) => {
        got.push(c.samples.length);
        flow.acquire();
      },
      complete: () => (completed = true),
    });
    input.end(Buffer.alloc(64_000)); // 2 s of 16 kHz mono in one read
    await new Promise((r) => setImmediate(r));
    // Two 100 ms pieces fill the flow; the rest waits (the old source pushed all 2 s at once).
    expect(got).toEqual([1600, 1600]);
    expect(completed).toBe(false);
    for (let i = 0; i < 40 && !completed; i++) {
      flow.release();
      await new Promise((r) => setImmediate(r));
    }
    expect(completed).toBe(true);
    expect(got.every((n) => n <= (16_000 * MAX_FLOW_CHUNK_MS) / 1000)).toBe(true);
    expect(got.reduce((a, b) => a + b, 0)).toBe(32_000);
    sub.unsubscribe();
  });

  it('rejects bad options', () => {
    expect(() => rawPcmSource(new PassThrough(), { sampleRateHz: 12.5 })).toThrow(/sampleRateHz/);
    expect(() => rawPcmSource(new PassThrough(), { channels: 0 })).toThrow(/channels/);
  });
});
