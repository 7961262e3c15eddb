/**
 * FLAC input (streams/sources/flac-file.ts, audio-file.ts): files made here with sox decode to
 * exactly the samples of the WAV they were made from; a RAVDESS clip (../shared/data) decodes to
 * exactly what sox decodes, including one whose last frame the WASM decoder's parser used to drop;
 * the format is told by content (a FLAC named .wav and a WAV named .flac both work); damaged,
 * foreign and missing files are AffectErrors naming the file.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { audioFileSource, probeAudioFile, sniffAudio } from '../../streams/sources/audio-file.js';
import { flacFileSource } from '../../streams/sources/flac-file.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import type { AudioChunk } from '../../core/types.js';

const SPEECH = path.join(REPO_ROOT, 'test/fixtures/audio/speech.wav');
const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-flac-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The shared corpus (../shared/data or CIRCUMPLEX_DATA_DIR); a missing one fails the test with a clear message. */
function ravdessFile(name: string): string {
  const root = process.env['CIRCUMPLEX_DATA_DIR'] ? path.resolve(process.env['CIRCUMPLEX_DATA_DIR']) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
  const f = path.join(root, 'ravdess', 'flac', name);
  if (!existsSync(f)) throw new Error(`test data missing: ${f} (the shared data belongs at ../shared/data next to the repo, or set CIRCUMPLEX_DATA_DIR)`);
  return f;
}

async function samplesOf(chunks$: ReturnType<typeof audioFileSource>): Promise<Float32Array> {
  const chunks: AudioChunk[] = await lastValueFrom(chunks$.pipe(toArray()));
  let n = 0;
  chunks.forEach((c, i) => {
    // Contiguous audio time, chunk after chunk.
    if (i > 0) expect(c.startSample).toBe(n);
    n += c.samples.length;
  });
  const out = new Float32Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c.samples, o);
    o += c.samples.length;
  }
  return out;
}

/** Length and largest absolute difference (deep equality on 300k-sample arrays is slow, and its diff hangs). */
function compare(a: Float32Array, b: Float32Array): { length: number; maxDiff: number } {
  expect(a.length).toBe(b.length);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
  return { length: a.length, maxDiff };
}

async function errorOf(p: Promise<unknown>): Promise<AffectError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AffectError) return e;
    throw e;
  }
  throw new Error('expected an AffectError');
}

const F16 = path.join(dir, 'speech.flac');
const W44 = path.join(dir, 'speech-44k1-stereo-24.wav');
const F44 = path.join(dir, 'speech-44k1-stereo-24.flac');

beforeAll(() => {
  execFileSync('sox', ['-R', '-q', SPEECH, F16]);
  execFileSync('sox', ['-R', '-V1', SPEECH, '-r', '44100', '-c', '2', '-b', '24', W44]);
  execFileSync('sox', ['-R', '-q', W44, F44]);
});

describe('FLAC input', () => {
  it('a 16 kHz mono FLAC made by sox gives exactly the samples of the WAV it came from', async () => {
    const wav = await samplesOf(wavFileSource(SPEECH));
    const flac = await samplesOf(audioFileSource(F16));
    expect(compare(flac, wav)).toEqual({ length: 306249, maxDiff: 0 });
    expect(await probeAudioFile(F16)).toMatchObject({ kind: 'flac', sampleRateHz: 16000, channels: 1, bitsPerSample: 16, frames: 306249 });
  });

  it('44.1 kHz stereo 24-bit FLAC goes through the same downmix and resampler as the WAV', async () => {
    const wav = await samplesOf(audioFileSource(W44));
    const flac = await samplesOf(audioFileSource(F44, { chunkMs: 37 }));
    expect(compare(flac, wav).maxDiff).toBeLessThan(1e-6);
    expect(await probeAudioFile(F44)).toMatchObject({ kind: 'flac', sampleRateHz: 44100, channels: 2, bitsPerSample: 24 });
  });

  it('RAVDESS clips decode to exactly what sox decodes (one of them lost its last frame before the end-of-input work-around)', async () => {
    // 03-01-02-02-01-01-14 is one of the files whose last frame codec-parser 2.5.0 dropped at flush.
    for (const name of ['03-01-01-01-01-01-01.flac', '03-01-02-02-01-01-14.flac']) {
      const f = ravdessFile(name);
      const raw = execFileSync('sox', ['-R', f, '-t', 's16', '-']);
      const want = new Int16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
      const got = await samplesOf(audioFileSource(f));
      expect(got.length, name).toBe(want.length);
      const info = await probeAudioFile(f);
      expect(info.frames).toBe(want.length);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs((got[i] as number) * 32768 - (want[i] as number)));
      expect(maxDiff, name).toBe(0);
    }
  });

  it('tells the format by content, not by the extension (and allows an ID3v2 tag before fLaC)', async () => {
    const flacNamedWav = path.join(dir, 'really-flac.wav');
    const wavNamedFlac = path.join(dir, 'really-wav.flac');
    copyFileSync(F16, flacNamedWav);
    copyFileSync(SPEECH, wavNamedFlac);
    const wav = await samplesOf(wavFileSource(SPEECH));
    expect(compare(await samplesOf(audioFileSource(flacNamedWav)), wav).maxDiff).toBe(0);
    expect(compare(await samplesOf(audioFileSource(wavNamedFlac)), wav).maxDiff).toBe(0);
    // An ID3v2.4 tag of 30 bytes (syncsafe size) in front of the FLAC stream.
    const id3 = Buffer.concat([Buffer.from('ID3'), Buffer.from([4, 0, 0, 0, 0, 0, 30]), Buffer.alloc(30, 0x20)]);
    const tagged = path.join(dir, 'tagged.flac');
    writeFileSync(tagged, Buffer.concat([id3, readFileSync(F16)]));
    expect(sniffAudio(readFileSync(tagged).subarray(0, 64))).toBe('flac');
    expect(compare(await samplesOf(audioFileSource(tagged)), wav).maxDiff).toBe(0);
  });

  it('a cut-short or damaged FLAC is AFFECT_ERR_AUDIO_FORMAT naming the file, never silently shorter audio', async () => {
    const full = readFileSync(F16);
    const cut = path.join(dir, 'cut.flac');
    writeFileSync(cut, full.subarray(0, Math.floor(full.length * 0.6)));
    const e1 = await errorOf(samplesOf(audioFileSource(cut)));
    expect(e1.code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    expect(e1.message).toContain(cut);
    expect(e1.message).toMatch(/truncated or corrupt: decoded \d+ of the 306249 samples/);
    const damaged = Buffer.from(full);
    damaged.fill(0x5a, Math.floor(full.length / 2), Math.floor(full.length / 2) + 4000);
    const bad = path.join(dir, 'damaged.flac');
    writeFileSync(bad, damaged);
    const e2 = await errorOf(samplesOf(audioFileSource(bad)));
    expect(e2.code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    expect(e2.message).toContain(bad);
    // Just the header: STREAMINFO cut short.
    const stub = path.join(dir, 'stub.flac');
    writeFileSync(stub, full.subarray(0, 20));
    expect((await errorOf(probeAudioFile(stub))).message).toMatch(/truncated FLAC header/);
  });

  it('neither WAV nor FLAC, or a missing file, is a clear error before any decoding', async () => {
    const mp3ish = path.join(dir, 'song.flac');
    writeFileSync(mp3ish, Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(2000)]));
    const e = await errorOf(probeAudioFile(mp3ish));
    expect(e.code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    expect(e.message).toMatch(/song\.flac: not a WAV or FLAC file \(2004 bytes, starts with "\\xff\\xfb\\x90d"\)/);
    expect(e.hint).toMatch(/sox/);
    const missing = await errorOf(probeAudioFile(path.join(dir, 'nope.flac')));
    expect(missing.code).toBe('AFFECT_ERR_INPUT');
    expect(missing.message).toMatch(/nope\.flac: no such file/);
    expect((await errorOf(samplesOf(audioFileSource(mp3ish)))).code).toBe('AFFECT_ERR_AUDIO_FORMAT');
    // The FLAC source itself refuses a WAV.
    expect((await errorOf(samplesOf(flacFileSource(SPEECH)))).message).toMatch(/not a FLAC file/);
  });
});
