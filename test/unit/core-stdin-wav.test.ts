/**
 * sniffStdin: a WAV piped on stdin is recognised by its header (in any chunking, with metadata
 * chunks before the data, a declared data length that stops before trailing chunks, an unknown
 * length, float samples); anything else is raw and passes through byte for byte; a WAV in a format
 * we cannot read is an AFFECT_ERR_AUDIO_FORMAT naming stdin.
 */
import { PassThrough, type Readable } from 'node:stream';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { AffectError } from '../../core/errors.js';
import { rawPcmSource, sniffStdin } from '../../streams/sources/stdin.js';

/** A WAV with the given fmt fields, optional LIST before the data, data length as declared, optional trailing chunk. */
function wav(o: { tag?: number; bits?: number; rate?: number; channels?: number; body: Buffer; list?: boolean; declared?: number; trailer?: boolean }): Buffer {
  const { tag = 1, bits = 16, rate = 16000, channels = 1 } = o;
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0);
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(tag, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE((rate * channels * bits) / 8, 16);
  fmt.writeUInt16LE((channels * bits) / 8, 20);
  fmt.writeUInt16LE(bits, 22);
  const list = o.list ? Buffer.concat([Buffer.from('LIST'), Buffer.from([5, 0, 0, 0]), Buffer.from('INFOx'), Buffer.from([0])]) : Buffer.alloc(0);
  const dataHead = Buffer.alloc(8);
  dataHead.write('data', 0);
  dataHead.writeUInt32LE(o.declared ?? o.body.length, 4);
  const trailer = o.trailer ? Buffer.concat([Buffer.from('LIST'), Buffer.from([4, 0, 0, 0]), Buffer.from([0x7f, 0x7f, 0x7f, 0x7f])]) : Buffer.alloc(0);
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0);
  riff.writeUInt32LE(0xffffffff, 4);
  riff.write('WAVE', 8);
  return Buffer.concat([riff, fmt, list, dataHead, o.body, trailer]);
}

/** A readable that delivers `bytes` in pieces of `piece` bytes, asynchronously. */
function drip(bytes: Buffer, piece: number): Readable {
  const s = new PassThrough();
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length) return void s.end();
    s.write(bytes.subarray(at, at + piece));
    at += piece;
    setImmediate(next);
  };
  setImmediate(next);
  return s;
}

const readAll = async (r: Readable): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

const s16 = (xs: number[]): Buffer => {
  const b = Buffer.alloc(xs.length * 2);
  xs.forEach((x, i) => b.writeInt16LE(x, i * 2));
  return b;
};

describe('sniffStdin', () => {
  it('reads the header of a WAV delivered 3 bytes at a time, with a LIST chunk before the data, and passes on only the samples', async () => {
    const body = s16([100, -200, 300, -400, 500, -600]);
    const got = await sniffStdin(drip(wav({ body, list: true, rate: 8000, channels: 2 }), 3));
    expect(got.kind).toBe('wav');
    if (got.kind !== 'wav') return;
    expect(got.info).toMatchObject({ sampleRateHz: 8000, channels: 2, bitsPerSample: 16, format: 'int' });
    expect(await readAll(got.stream)).toEqual(body);
  });

  it('stops at the declared data length (a trailing chunk is not audio); an unknown length (0) takes everything', async () => {
    const body = s16([1, 2, 3, 4]);
    const capped = await sniffStdin(drip(wav({ body, trailer: true }), 5));
    expect(capped.kind === 'wav' && (await readAll(capped.stream))).toEqual(body);
    const unknown = await sniffStdin(drip(wav({ body, declared: 0 }), 7));
    expect(unknown.kind === 'wav' && (await readAll(unknown.stream))).toEqual(body);
  });

  it('raw input (no RIFF/WAVE) passes through byte for byte, even when shorter than a header', async () => {
    const raw = Buffer.from(Array.from({ length: 1001 }, (_, i) => i % 251));
    const got = await sniffStdin(drip(raw, 10));
    expect(got.kind).toBe('raw');
    expect(await readAll(got.stream)).toEqual(raw);
    const tiny = await sniffStdin(drip(Buffer.from([1, 2, 3]), 1));
    expect(tiny.kind).toBe('raw');
    expect(await readAll(tiny.stream)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('a FLAC, Ogg or MP3 stream on stdin is AFFECT_ERR_AUDIO_FORMAT naming it (it used to be analysed as raw s16le noise, exit 0)', async () => {
    for (const [head, what] of [
      ['fLaC', 'a FLAC stream'],
      ['OggS', 'an Ogg stream'],
      ['ID3\x04', 'an MP3 \\(ID3 tag\\)'],
    ] as const) {
      const bytes = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(4000, 7)]);
      const err = await sniffStdin(drip(bytes, 3)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AffectError);
      expect((err as AffectError).code).toBe('AFFECT_ERR_AUDIO_FORMAT');
      expect((err as AffectError).message).toMatch(new RegExp(`^stdin is ${what}; on stdin circumplex reads a WAV or raw s16le samples`));
      expect((err as AffectError).hint).toMatch(/--input FILE\.flac/);
    }
  });

  it('float32 samples from a WAV header decode through rawPcmSource', async () => {
    const body = Buffer.alloc(16000 * 4);
    for (let i = 0; i < 16000; i++) body.writeFloatLE(i % 2 ? 0.5 : -0.5, i * 4);
    const got = await sniffStdin(drip(wav({ tag: 3, bits: 32, body }), 4096));
    if (got.kind !== 'wav') throw new Error('not a wav');
    const chunks = await lastValueFrom(
      rawPcmSource(got.stream, {
        sampleRateHz: got.info.sampleRateHz,
        channels: 1,
        sample: { format: got.info.format, bitsPerSample: got.info.bitsPerSample },
      }).pipe(toArray()),
    );
    const all = chunks.flatMap((c) => Array.from(c.samples));
    expect(all.length).toBe(16000);
    expect(Math.max(...all.map(Math.abs))).toBeCloseTo(0.5, 5);
  });

  it('a WAV in a format we cannot read is AFFECT_ERR_AUDIO_FORMAT naming stdin', async () => {
    const err = await sniffStdin(drip(wav({ tag: 0x55, body: Buffer.alloc(100) }), 8)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    expect((err as AffectError).message).toMatch(/^stdin: unsupported sample format: format tag 0x55/);
  });
});
