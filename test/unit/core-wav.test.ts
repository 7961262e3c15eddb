import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { probeWavFile, wavFileSource } from '../../streams/sources/wav-file.js';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { FlowControl } from '../../streams/flow.js';

const dir = mkdtempSync(path.join(tmpdir(), 'core-wav-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface WavSpec {
  rate: number;
  channels: number;
  bits: number;
  float?: boolean;
  extensible?: boolean;
  /** Chunks written before fmt/data (id, length) — odd lengths test the pad byte. */
  extra?: Array<[string, number]>;
  /** Overrides the data chunk's declared length. */
  declaredDataBytes?: number;
  /** Bytes cut off the end of the file. */
  cut?: number;
  formatTag?: number;
}

/** Encodes per-channel sample functions into a WAV file (what a WAV writer would produce). */
function makeWav(name: string, spec: WavSpec, seconds: number, signal: (t: number, ch: number) => number): string {
  const frames = Math.round(spec.rate * seconds);
  const bps = spec.bits / 8;
  const data = Buffer.alloc(frames * spec.channels * bps);
  let o = 0;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < spec.channels; c++) {
      const v = Math.max(-1, Math.min(1, signal(i / spec.rate, c)));
      if (spec.float && spec.bits === 32) data.writeFloatLE(v, o);
      else if (spec.float && spec.bits === 64) data.writeDoubleLE(v, o);
      else if (spec.bits === 8) data.writeUInt8(Math.round(v * 127) + 128, o);
      else if (spec.bits === 16) data.writeInt16LE(Math.round(v * 32767), o);
      else if (spec.bits === 24) data.writeIntLE(Math.round(v * 8388607), o, 3);
      else if (spec.bits === 32) data.writeInt32LE(Math.round(v * 2147483647), o);
      o += bps;
    }
  }
  const tag = spec.formatTag ?? (spec.extensible ? 0xfffe : spec.float ? 3 : 1);
  const fmt = Buffer.alloc(spec.extensible ? 40 : 16);
  fmt.writeUInt16LE(tag, 0);
  fmt.writeUInt16LE(spec.channels, 2);
  fmt.writeUInt32LE(spec.rate, 4);
  fmt.writeUInt32LE(spec.rate * spec.channels * bps, 8);
  fmt.writeUInt16LE(spec.channels * bps, 12);
  fmt.writeUInt16LE(spec.bits, 14);
  if (spec.extensible) {
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(spec.bits, 18);
    fmt.writeUInt32LE(0, 20);
    fmt.writeUInt16LE(spec.float ? 3 : 1, 24); // sub-format GUID starts with the format tag
    Buffer.from('000000001000800000aa00389b71', 'hex').copy(fmt, 26);
  }
  const chunk = (id: string, body: Buffer, declared = body.length) => {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(declared, 4);
    return Buffer.concat([h, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const extras = (spec.extra ?? []).map(([id, n]) => chunk(id, Buffer.alloc(n, 7)));
  const body = Buffer.concat([Buffer.from('WAVE'), ...extras, chunk('fmt ', fmt), chunk('data', data, spec.declaredDataBytes ?? data.length)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  let file = Buffer.concat([riff, body]);
  if (spec.cut) file = file.subarray(0, file.length - spec.cut);
  const p = path.join(dir, name);
  writeFileSync(p, file);
  return p;
}

const read = async (p: string, opts = {}) => lastValueFrom(wavFileSource(p, opts).pipe(toArray()));
const concat = (chunks: AudioChunk[]) => {
  const n = chunks.reduce((s, c) => s + c.samples.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const c of chunks) {
    expect(c.startSample).toBe(o); // contiguous audio time
    out.set(c.samples, o);
    o += c.samples.length;
  }
  return out;
};
const tone =
  (hz: number, amp = 0.5) =>
  (t: number) =>
    amp * Math.sin(2 * Math.PI * hz * t);
/** Amplitude of `hz` in a 16 kHz signal (single-bin DFT), robust to phase. */
function amplitudeAt(x: Float32Array, hz: number, from = 1600): number {
  let re = 0;
  let im = 0;
  const n = x.length - from * 2;
  for (let i = from; i < from + n; i++) {
    re += (x[i] ?? 0) * Math.cos((2 * Math.PI * hz * i) / 16000);
    im += (x[i] ?? 0) * Math.sin((2 * Math.PI * hz * i) / 16000);
  }
  return (2 * Math.hypot(re, im)) / n;
}
async function expectAffectError(p: Promise<unknown>, code: string, ...patterns: RegExp[]) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AffectError);
  expect((err as AffectError).code).toBe(code);
  for (const re of patterns) expect((err as AffectError).message).toMatch(re);
  expect((err as AffectError).hint).toBeTruthy();
}

describe('WAV file source: formats', () => {
  const cases: Array<[string, WavSpec]> = [
    ['pcm8', { rate: 16000, channels: 1, bits: 8 }],
    ['pcm16', { rate: 16000, channels: 1, bits: 16 }],
    ['pcm24', { rate: 16000, channels: 1, bits: 24 }],
    ['pcm32', { rate: 16000, channels: 1, bits: 32 }],
    ['float32', { rate: 16000, channels: 1, bits: 32, float: true }],
    ['float64', { rate: 16000, channels: 1, bits: 64, float: true }],
    ['extensible24-stereo', { rate: 16000, channels: 2, bits: 24, extensible: true }],
    ['extensible-float', { rate: 16000, channels: 1, bits: 32, float: true, extensible: true }],
    ['pcm16-44k1-stereo', { rate: 44100, channels: 2, bits: 16 }],
    ['pcm16-8k', { rate: 8000, channels: 1, bits: 16 }],
    ['pcm16-48k-6ch', { rate: 48000, channels: 6, bits: 16 }],
    [
      'unknown-chunks',
      {
        rate: 22050,
        channels: 1,
        bits: 16,
        extra: [
          ['LIST', 27],
          ['junk', 4],
          ['bext', 603],
        ],
      },
    ],
  ];
  for (const [name, spec] of cases) {
    it(`decodes ${name} to 16 kHz mono with the right length and the tone intact`, async () => {
      const p = makeWav(`${name}.wav`, spec, 1, tone(440));
      const info = await probeWavFile(p);
      expect(info.sampleRateHz).toBe(spec.rate);
      expect(info.channels).toBe(spec.channels);
      expect(info.durationMs).toBeCloseTo(1000, 0);
      const x = concat(await read(p));
      expect(Math.abs(x.length - 16000)).toBeLessThanOrEqual(1);
      // 8-bit loses precision but the tone is still there; the others are near exact.
      expect(amplitudeAt(x, 440)).toBeCloseTo(0.5, spec.bits === 8 ? 1 : 2);
      expect(amplitudeAt(x, 1000)).toBeLessThan(0.01);
    });
  }

  it('downmixes by averaging channels (opposite channels cancel)', async () => {
    const p = makeWav('cancel.wav', { rate: 16000, channels: 2, bits: 16 }, 0.5, (t, c) => (c === 0 ? 0.5 : -0.5) * Math.sin(2 * Math.PI * 300 * t));
    const x = concat(await read(p));
    expect(Math.max(...Array.from(x, Math.abs))).toBeLessThan(1e-3);
  });

  it('emits chunks of the asked size and accepts a data length of 0 (streamed WAV) as "to end of file"', async () => {
    const p = makeWav('streamed.wav', { rate: 16000, channels: 1, bits: 16, declaredDataBytes: 0 }, 0.5, tone(200));
    const chunks = await read(p, { chunkMs: 50 });
    expect(chunks).toHaveLength(10);
    expect(chunks[0]?.samples.length).toBe(800);
    expect(chunks.every((c) => c.streamId === 'file')).toBe(true);
  });

  it('paces at real time only when asked', async () => {
    const p = makeWav('paced.wav', { rate: 16000, channels: 1, bits: 16 }, 0.3, tone(200));
    const t0 = performance.now();
    await read(p, { realtime: true, chunkMs: 100 });
    const paced = performance.now() - t0;
    const t1 = performance.now();
    await read(p);
    const fast = performance.now() - t1;
    expect(paced).toBeGreaterThan(250);
    expect(fast).toBeLessThan(paced);
  });
});

describe('WAV file source: errors name the file and the problem', () => {
  it('missing file → AFFECT_ERR_INPUT', async () => {
    const p = path.join(dir, 'nope.wav');
    await expectAffectError(read(p), 'AFFECT_ERR_INPUT', /nope\.wav/, /no such file/);
    await expectAffectError(probeWavFile(p), 'AFFECT_ERR_INPUT', /nope\.wav/);
  });
  it('a directory → AFFECT_ERR_INPUT', async () => {
    mkdirSync(path.join(dir, 'adir.wav'), { recursive: true });
    await expectAffectError(read(path.join(dir, 'adir.wav')), 'AFFECT_ERR_INPUT', /directory/);
  });
  it('not a WAV (text, empty, RF64) → AFFECT_ERR_AUDIO_FORMAT', async () => {
    const txt = path.join(dir, 'notes.wav');
    writeFileSync(txt, 'hello, this is not audio at all');
    await expectAffectError(read(txt), 'AFFECT_ERR_AUDIO_FORMAT', /notes\.wav/, /not a RIFF\/WAVE file/);
    const empty = path.join(dir, 'empty.wav');
    writeFileSync(empty, '');
    await expectAffectError(read(empty), 'AFFECT_ERR_AUDIO_FORMAT', /empty\.wav/, /not a RIFF\/WAVE/);
    const rf64 = path.join(dir, 'big.wav');
    writeFileSync(rf64, Buffer.concat([Buffer.from('RF64'), Buffer.alloc(4), Buffer.from('WAVE'), Buffer.alloc(32)]));
    await expectAffectError(read(rf64), 'AFFECT_ERR_AUDIO_FORMAT', /RF64/);
  });
  it('unsupported sample formats → AFFECT_ERR_AUDIO_FORMAT naming the format', async () => {
    const mulaw = makeWav('mulaw.wav', { rate: 8000, channels: 1, bits: 8, formatTag: 7 }, 0.1, tone(200));
    await expectAffectError(read(mulaw), 'AFFECT_ERR_AUDIO_FORMAT', /mulaw\.wav/, /format tag 0x7/);
    const adpcm = makeWav('adpcm.wav', { rate: 8000, channels: 1, bits: 16, formatTag: 2 }, 0.1, tone(200));
    await expectAffectError(read(adpcm), 'AFFECT_ERR_AUDIO_FORMAT', /format tag 0x2/);
    const f16 = makeWav('f16.wav', { rate: 16000, channels: 1, bits: 16, formatTag: 3 }, 0.1, tone(200));
    await expectAffectError(read(f16), 'AFFECT_ERR_AUDIO_FORMAT', /16-bit float/);
  });
  it('truncated data → AFFECT_ERR_AUDIO_FORMAT saying how much is missing', async () => {
    const cut = makeWav('cut.wav', { rate: 16000, channels: 1, bits: 16, cut: 1000 }, 0.5, tone(200));
    await expectAffectError(read(cut), 'AFFECT_ERR_AUDIO_FORMAT', /cut\.wav/, /truncated data/, /declares 16000 bytes but only 15000/);
    await expectAffectError(probeWavFile(cut), 'AFFECT_ERR_AUDIO_FORMAT', /truncated/);
  });
  it('header without fmt or data → AFFECT_ERR_AUDIO_FORMAT', async () => {
    const p = path.join(dir, 'hollow.wav');
    writeFileSync(p, Buffer.concat([Buffer.from('RIFF'), Buffer.from([4, 0, 0, 0]), Buffer.from('WAVE')]));
    await expectAffectError(read(p), 'AFFECT_ERR_AUDIO_FORMAT', /no fmt chunk/);
    const noData = makeWav('nodata.wav', { rate: 16000, channels: 1, bits: 16, cut: 8 }, 0, tone(1));
    await expectAffectError(read(noData), 'AFFECT_ERR_AUDIO_FORMAT', /no data chunk/);
  });
  it('the shipped WAV parses as 16 kHz mono, 19 s', async () => {
    const info = await probeWavFile('test/fixtures/audio/speech.wav');
    expect(info).toMatchObject({ sampleRateHz: 16000, channels: 1, bitsPerSample: 16, format: 'int' });
    expect(info.durationMs / 1000).toBeCloseTo(19.14, 1);
    const first = await firstValueFrom(wavFileSource('test/fixtures/audio/speech.wav'));
    expect(first.samples.length).toBe(1600);
  });
});

describe('WAV file source: flow control', () => {
  const openFds = (name: string) => {
    return readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).endsWith(name);
      } catch {
        return false;
      }
    }).length;
  };

  it('waits for room in a flow, and unsubscribing ends the wait and closes the file', async () => {
    const flow = new FlowControl({ highWater: 2 });
    const got: number[] = [];
    // A consumer that takes a credit per chunk and never gives it back (a stuck model stage).
    const sub = wavFileSource('test/fixtures/audio/speech.wav', { flow }).subscribe((c) => {
      flow.acquire();
      got.push(c.startSample);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([0, 1600]);
    expect(openFds('speech.wav')).toBe(1);
    flow.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([0, 1600, 3200]);
    sub.unsubscribe();
    await new Promise((r) => setTimeout(r, 50));
    expect(openFds('speech.wav')).toBe(0);
    flow.release();
    flow.release();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(3);
  });
});
