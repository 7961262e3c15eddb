import { describe, expect, it } from 'vitest';
import { IngestSession, parseWavHeader, type IngestAction } from '../../src/server/ingest.js';
import { Authenticator, parseTokenSpec, readTokenFile } from '../../src/server/auth.js';
import { AffectError } from '../../core/errors.js';
import { IngestReplySchema } from '../../core/protocol.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';

const text = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));
const start = (over: object = {}) => text({ type: 'start', streamId: 's', encoding: 's16le', sampleRateHz: 16000, channels: 1, ...over });
const audio = (acts: IngestAction[]) => acts.flatMap((a) => (a.kind === 'audio' ? [a] : []));
const errs = (acts: IngestAction[]) => acts.flatMap((a) => (a.kind === 'reply' && a.reply.type === 'error' ? [a.reply] : []));

describe('IngestSession (pure protocol state machine)', () => {
  it('decodes s16le exactly and stamps consecutive start samples', () => {
    const s = new IngestSession({ canPublish: () => true });
    expect(s.handle(start(), false).map((a) => a.kind)).toEqual(['start', 'reply']);
    const pcm = Buffer.alloc(8);
    pcm.writeInt16LE(16384, 0);
    pcm.writeInt16LE(-32768, 2);
    pcm.writeInt16LE(0, 4);
    pcm.writeInt16LE(-16384, 6);
    const a1 = audio(s.handle(pcm, true));
    expect(Array.from(a1[0]?.samples ?? [])).toEqual([0.5, -1, 0, -0.5]);
    const a2 = audio(s.handle(pcm, true));
    expect(a2[0]?.startSample).toBe(4);
    expect(s.stats).toMatchObject({ framesAccepted: 2, framesRejected: 0, samplesClipped: 2 });
  });

  it('resamples 8 kHz to 16 kHz without drift and downmixes stereo', () => {
    const s = new IngestSession({ canPublish: () => true });
    s.handle(start({ sampleRateHz: 8000, channels: 2 }), false);
    let total = 0;
    for (let i = 0; i < 50; i++) {
      const frame = Buffer.alloc(160 * 4); // 20 ms stereo at 8 kHz
      for (let k = 0; k < 160; k++) {
        frame.writeInt16LE(8192, k * 4);
        frame.writeInt16LE(-8192, k * 4 + 2); // L and R cancel
      }
      for (const a of audio(s.handle(frame, true))) {
        expect(a.startSample).toBe(total);
        total += a.samples.length;
        expect(a.samples.every((v) => Math.abs(v) < 1e-6)).toBe(true);
      }
    }
    for (const a of audio(s.handle(text({ type: 'stop' }), false))) {
      expect(a.startSample).toBe(total);
      total += a.samples.length;
    }
    // exactly round(8000 × 16000 / 8000) once the resampler's look-ahead is flushed at stop
    expect(total).toBe(16000);
  });

  it('rejects each bad frame with a reason and a frame index, and keeps going', () => {
    const s = new IngestSession({ canPublish: (id) => id !== 'secret' });
    expect(errs(s.handle(Buffer.alloc(4), true))[0]).toMatchObject({ reason: 'not-started', frame: 0 });
    expect(errs(s.handle(start({ streamId: 'secret' }), false))[0]).toMatchObject({ reason: 'forbidden', code: 'AFFECT_ERR_AUTH' });
    expect(errs(s.handle(start({ sampleRateHz: 1 }), false))[0]).toMatchObject({ reason: 'bad-message' });
    s.handle(start(), false);
    expect(errs(s.handle(start(), false))[0]).toMatchObject({ reason: 'already-started' });
    expect(errs(s.handle(Buffer.alloc(0), true))[0]).toMatchObject({ reason: 'empty', code: 'AFFECT_ERR_AUDIO_FORMAT' });
    expect(errs(s.handle(Buffer.alloc(3), true))[0]).toMatchObject({ reason: 'misaligned' });
    expect(errs(s.handle(text({ type: 'audio', payload: 'a' }), false))[0]).toMatchObject({ reason: 'bad-base64' });
    expect(errs(s.handle(Buffer.from([0xff, 0xfe, 0x00]), false))[0]).toMatchObject({ reason: 'bad-json' });
    expect(errs(s.handle(Buffer.from('RIFF\0\0\0\0WAVEjunk'), true))[0]).toMatchObject({ reason: 'wav-header' });
    expect(audio(s.handle(text({ type: 'audio', payload: Buffer.alloc(4).toString('base64') }), false))).toHaveLength(1);
    expect(s.handle(text({ type: 'stop' }), false).map((a) => a.kind)).toEqual(['stop', 'reply']);
    expect(errs(s.handle(Buffer.alloc(4), true))[0]).toMatchObject({ reason: 'not-started', message: 'audio after stop' });
    expect(s.stats.framesRejected).toBe(10);
    expect(s.stoppedReply()).toMatchObject({ type: 'stopped', framesAccepted: 1, framesRejected: 10 });
    // What the server sends is what circumplex/protocol describes, whole (zod drops unknown keys).
    expect(IngestReplySchema.parse(s.stoppedReply())).toEqual(s.stoppedReply());
  });

  it('never throws on seeded random input', () => {
    let seed = 42;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 20; round++) {
      const s = new IngestSession({ canPublish: () => true });
      s.handle(start({ encoding: ['s16le', 'mulaw', 'f32le'][round % 3], sampleRateHz: 4000 + round * 9000, channels: 1 + (round % 8) }), false);
      for (let i = 0; i < 100; i++) {
        const b = Buffer.alloc(Math.floor(rand() * 500));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
        if (rand() < 0.05) b.write('RIFF\0\0\0\0WAVEfmt ', 0);
        const acts = s.handle(b, rand() < 0.7);
        for (const a of audio(acts)) for (const v of a.samples) expect(Number.isFinite(v) && Math.abs(v) <= 1).toBe(true);
      }
      expect(s.stats.framesAccepted + s.stats.framesRejected).toBe(100);
    }
  });

  it('parses WAV headers: PCM16, float32, mu-law, and refuses others', () => {
    const hdr = (tag: number, ch: number, rate: number, bits: number) => {
      const b = Buffer.alloc(44);
      b.write('RIFF', 0);
      b.write('WAVEfmt ', 8);
      b.writeUInt32LE(16, 16);
      b.writeUInt16LE(tag, 20);
      b.writeUInt16LE(ch, 22);
      b.writeUInt32LE(rate, 24);
      b.writeUInt16LE(bits, 34);
      b.write('data', 36);
      return b;
    };
    expect(parseWavHeader(hdr(1, 2, 44100, 16))).toEqual({ format: { encoding: 's16le', sampleRateHz: 44100, channels: 2 }, dataOffset: 44 });
    expect(parseWavHeader(hdr(3, 1, 48000, 32))).toMatchObject({ format: { encoding: 'f32le' } });
    expect(parseWavHeader(hdr(7, 1, 8000, 8))).toMatchObject({ format: { encoding: 'mulaw' } });
    expect(parseWavHeader(hdr(1, 1, 16000, 24))).toMatchObject({ error: expect.stringMatching(/not supported/) });
    expect(parseWavHeader(Buffer.from('not a wav at all'))).toBeUndefined();
  });
});

describe('auth: tokens and scopes', () => {
  const req = (headers: Record<string, string>, url = '/v1/stream') => ({ headers, url }) as unknown as IncomingMessage;

  it('parses CIRCUMPLEX_TOKENS and token files, refusing unknown scopes and short tokens', () => {
    expect(parseTokenSpec('abcdefgh:subscribe,publish:call-1; ijklmnop:admin')).toEqual([
      { token: 'abcdefgh', scopes: ['subscribe', 'publish:call-1'] },
      { token: 'ijklmnop', scopes: ['admin'] },
    ]);
    expect(() => parseTokenSpec('abcdefgh:root')).toThrow(AffectError);
    expect(() => parseTokenSpec('short:subscribe')).toThrow(/8 characters/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const f = path.join(dir, 't.json');
    writeFileSync(f, JSON.stringify([{ token: 'abcdefgh12', scopes: ['subscribe:a'], name: 'dash' }]));
    expect(readTokenFile(f)).toEqual([{ token: 'abcdefgh12', scopes: ['subscribe:a'], name: 'dash' }]);
    writeFileSync(f, '{nope');
    expect(() => readTokenFile(f)).toThrow(/cannot read token file/);
  });

  it('grants by scope and checks origins', () => {
    const auth = new Authenticator({ tokens: parseTokenSpec('abcdefgh:subscribe:a,publish:a;ijklmnop:admin'), allowedOrigins: undefined });
    const g = auth.verify(req({ authorization: 'Bearer abcdefgh' }));
    expect('status' in g).toBe(false);
    if ('status' in g) return;
    expect([g.canSubscribe('a'), g.canSubscribe('b'), g.canPublish('a'), g.canPublish('b'), g.canReadMetrics()]).toEqual([true, false, true, false, false]);
    expect(auth.verify(req({}, '/v1/stream?token=ijklmnop'))).toMatchObject({ scopes: ['admin'] });
    expect(auth.verify(req({}))).toMatchObject({ status: 401, reason: 'missing-token' });
    expect(auth.verify(req({ authorization: 'Bearer abcdefgX' }))).toMatchObject({ status: 401, reason: 'bad-token' });
    expect(auth.checkOrigin(req({ origin: 'http://127.0.0.1:9', host: '127.0.0.1:9' }))).toBeUndefined();
    expect(auth.checkOrigin(req({ origin: 'http://evil', host: '127.0.0.1:9' }))).toMatchObject({ status: 403 });
    expect(new Authenticator({ tokens: [], allowedOrigins: ['http://evil'] }).checkOrigin(req({ origin: 'http://evil' }))).toBeUndefined();
  });
});
