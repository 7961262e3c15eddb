/**
 * FLAC file source. The header (STREAMINFO) is parsed here; the audio is decoded by
 * `@wasm-audio-decoders/flac` (libFLAC compiled to WebAssembly and inlined in the package: no
 * native build, no download), block by block, so long recordings are not held in memory. Emits 16 kHz
 * mono float {@link AudioChunk}s like the WAV source (any rate and channel count in the file).
 *
 * The decoder skips frames it cannot decode (bad CRC, cut short) without saying so, so the source
 * counts the samples it got and fails with AFFECT_ERR_AUDIO_FORMAT when they fall short of the
 * total that STREAMINFO declares: a damaged file is an error, never silently shorter audio.
 *
 * Work-around: the decoder's frame parser (codec-parser 2.5.0) can stop at end of input before
 * the last frame, depending on where the input ends (5 of the first 300 RAVDESS files lost their
 * last 30–220 ms). It only accepts a frame once it has seen the next frame's header, so after the
 * file the source feeds a copy of the file's first frame header plus 16 bytes whose CRC-16 can
 * never validate as a frame: the last real frame is then complete, and the copy yields nothing.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { AudioConverter } from './convert.js';
import { openInput, pacedFileSource, readAt, type WavFileSourceOptions } from './wav-file.js';

/** What STREAMINFO says about a FLAC file. */
export interface FlacInfo {
  readonly sampleRateHz: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  /** Frames (sample instants) in the file; 0 when the encoder did not know (a live stream). */
  readonly frames: number;
  /** Duration in ms (0 when `frames` is unknown). */
  readonly durationMs: number;
  /** Byte offset of the `fLaC` marker (after an ID3v2 tag, if the file has one). */
  readonly flacOffset: number;
  /** Byte offset of the first audio frame (after the last metadata block). */
  readonly audioOffset: number;
}

/** Options for {@link flacFileSource}: the same as the WAV source's. */
export type FlacFileSourceOptions = WavFileSourceOptions;

export const DEFAULT_FLAC_FILE_SOURCE: FlacFileSourceOptions = { streamId: 'file', chunkMs: 100, realtime: false, speed: 1 };

/** Bytes read from the file per decoder call. */
const READ_BLOCK_BYTES = 64 * 1024;

function formatError(
  file: string,
  what: string,
  hint = 'check the file with `flac -t FILE`, or convert it: sox INPUT -r 16000 -c 1 -b 16 out.wav',
): AffectError {
  return new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${file}: ${what}`, { stage: 'flac-file', hint });
}

/** Size of an ID3v2 tag at the start of `head` (10-byte header + syncsafe size), or 0 when there is none. */
export function id3v2Length(head: Uint8Array): number {
  if (head.length < 10 || head[0] !== 0x49 || head[1] !== 0x44 || head[2] !== 0x33) return 0; // "ID3"
  const size = ((head[6]! & 0x7f) << 21) | ((head[7]! & 0x7f) << 14) | ((head[8]! & 0x7f) << 7) | (head[9]! & 0x7f);
  const footer = (head[5]! & 0x10) !== 0 ? 10 : 0;
  return 10 + size + footer;
}

/** True when the bytes start with the FLAC marker `fLaC`. */
export function isFlacMarker(b: Uint8Array, at = 0): boolean {
  return b.length >= at + 4 && b[at] === 0x66 && b[at + 1] === 0x4c && b[at + 2] === 0x61 && b[at + 3] === 0x43;
}

/**
 * Parses the `fLaC` marker and the STREAMINFO block of an open file.
 * @param name file name used in error messages
 */
export async function readFlacInfo(fh: FileHandle, name: string): Promise<FlacInfo> {
  const head = await readAt(fh, 0, 10);
  const flacOffset = id3v2Length(head);
  const b = await readAt(fh, flacOffset, 4 + 4 + 34);
  if (!isFlacMarker(b)) throw formatError(name, 'not a FLAC file (no fLaC marker)');
  if (b.length < 42) throw formatError(name, 'truncated FLAC header (STREAMINFO cut short)');
  const blockType = b[4]! & 0x7f;
  const blockLen = (b[5]! << 16) | (b[6]! << 8) | b[7]!;
  if (blockType !== 0 || blockLen < 34) throw formatError(name, `the first metadata block is not STREAMINFO (type ${blockType}, ${blockLen} bytes)`);
  const si = b.subarray(8);
  // STREAMINFO bits 80..: sample rate (20), channels − 1 (3), bits per sample − 1 (5), total samples (36).
  const sampleRateHz = (si[10]! << 12) | (si[11]! << 4) | (si[12]! >> 4);
  const channels = ((si[12]! >> 1) & 0x07) + 1;
  const bitsPerSample = (((si[12]! & 0x01) << 4) | (si[13]! >> 4)) + 1;
  const frames = (si[13]! & 0x0f) * 2 ** 32 + ((si[14]! << 24) >>> 0) + (si[15]! << 16) + (si[16]! << 8) + si[17]!;
  if (sampleRateHz < 1000 || sampleRateHz > 768_000) throw formatError(name, `unsupported sample rate ${sampleRateHz} Hz`);
  // Walk the metadata blocks to where the audio frames start.
  const size = (await fh.stat()).size;
  let pos = flacOffset + 4;
  for (;;) {
    const h = await readAt(fh, pos, 4);
    if (h.length < 4) throw formatError(name, 'truncated FLAC metadata (the file ends inside a metadata block header)');
    pos += 4 + ((h[1]! << 16) | (h[2]! << 8) | h[3]!);
    if (pos > size) throw formatError(name, 'truncated FLAC metadata (a metadata block runs past the end of the file)');
    if (h[0]! & 0x80) break;
  }
  return { sampleRateHz, channels, bitsPerSample, frames, durationMs: (frames * 1000) / sampleRateHz, flacOffset, audioOffset: pos };
}

/** CRC-8 of FLAC frame headers (polynomial 0x07). */
function crc8(b: Uint8Array): number {
  let c = 0;
  for (const x of b) {
    c ^= x;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

/** CRC-16 of FLAC frames (polynomial 0x8005). */
function crc16(b: Uint8Array): number {
  let c = 0;
  for (const x of b) {
    c ^= x << 8;
    for (let i = 0; i < 8; i++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
  }
  return c;
}

/** Length of the frame header starting at `b[0]` (sync, codes, UTF-8 number, optional block size and rate, CRC-8). */
function frameHeaderLength(b: Uint8Array): number {
  const c = b[4] ?? 0;
  const utf8 = c < 0x80 ? 1 : c >= 0xfe ? 7 : c >= 0xfc ? 6 : c >= 0xf8 ? 5 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
  const bs = (b[2] ?? 0) >> 4;
  const sr = (b[2] ?? 0) & 0x0f;
  return 4 + utf8 + (bs === 6 ? 1 : bs === 7 ? 2 : 0) + (sr === 12 ? 1 : sr === 13 || sr === 14 ? 2 : 0) + 1;
}

/**
 * The end-of-input trailer of the work-around in the module comment: the first frame's header and
 * 16 bytes whose last two are the wrong CRC-16, so they never decode as a frame.
 */
export async function endOfInputTrailer(fh: FileHandle, info: FlacInfo, name: string): Promise<Uint8Array> {
  const b = await readAt(fh, info.audioOffset, 24);
  const n = b.length >= 6 && b[0] === 0xff && (b[1] === 0xf8 || b[1] === 0xf9) ? frameHeaderLength(b) : 0;
  if (n === 0 || n > b.length || crc8(b.subarray(0, n - 1)) !== b[n - 1]) throw formatError(name, 'no valid audio frame after the FLAC metadata');
  const t = new Uint8Array(n + 16);
  t.set(b.subarray(0, n));
  const wrong = crc16(t.subarray(0, t.length - 2)) ^ 1;
  t[t.length - 2] = wrong >> 8;
  t[t.length - 1] = wrong & 0xff;
  return t;
}

/** Reads a FLAC file's header (fails fast with a clear error before any model is loaded). */
export async function probeFlacFile(file: string): Promise<FlacInfo> {
  const fh = await openInput(file);
  try {
    return await readFlacInfo(fh, file);
  } finally {
    await fh.close();
  }
}

/** The decoder's output for one call. */
interface Decoded {
  readonly channelData: Float32Array[];
  readonly samplesDecoded: number;
  readonly errors: ReadonlyArray<{ readonly message?: string; readonly error?: string }>;
}
interface Decoder {
  readonly ready: Promise<void>;
  decode(data: Uint8Array): Promise<Decoded>;
  flush(): Promise<Decoded>;
  free(): void;
}

/** Loads the WASM decoder on first use (dynamic import: WAV-only runs never load it). */
async function createDecoder(): Promise<Decoder> {
  const mod = (await import('@wasm-audio-decoders/flac')) as unknown as { FLACDecoder: new () => Decoder };
  const d = new mod.FLACDecoder();
  await d.ready;
  return d;
}

/**
 * Interleaves planar channel data (the converter takes interleaved samples) and rescales it like
 * the WAV source: the decoder divides an integer sample by 2^(bits−1) − 1 (16-bit: 32767), the WAV
 * source by 2^(bits−1) (32768). The integer is recovered exactly (bits ≤ 24) and divided again, so
 * a FLAC and the WAV it was made from give the same floats.
 */
export function interleaveRescaled(planar: readonly Float32Array[], n: number, bitsPerSample: number): Float32Array {
  const c = planar.length;
  const full = 2 ** (bitsPerSample - 1);
  const decoderFull = full - 1;
  const out = new Float32Array(n * c);
  for (let ch = 0; ch < c; ch++) {
    const src = planar[ch]!;
    for (let i = 0; i < n; i++) out[i * c + ch] = Math.round((src[i] ?? 0) * decoderFull) / full;
  }
  return out;
}

/**
 * Emits a FLAC file as 16 kHz mono {@link AudioChunk}s. Cold: each subscription reads the file anew.
 * Errors (missing file, not FLAC, undecodable or truncated audio) are AffectErrors naming the file.
 * Pacing (`realtime`, `flow`) works as in the WAV source.
 */
export function flacFileSource(file: string, opts: Partial<FlacFileSourceOptions> = {}): Observable<AudioChunk> {
  const o = { ...DEFAULT_FLAC_FILE_SOURCE, ...opts };
  let fh: FileHandle | undefined;
  let decoder: Decoder | undefined;
  return pacedFileSource(
    'flacFileSource',
    o,
    async (out) => {
      fh = await openInput(file);
      const info = await readFlacInfo(fh, file);
      const trailer = await endOfInputTrailer(fh, info, file);
      const size = (await fh.stat()).size;
      decoder = await createDecoder();
      const conv = new AudioConverter(o.streamId, info.sampleRateHz, info.channels, 0, o.channel);
      const framesPerChunk = out.framesPerChunk(info.sampleRateHz);
      let emittedFrames = 0;
      // Hands decoded audio downstream in chunks of at most chunkMs, pacing between them.
      const emit = async (d: Decoded): Promise<void> => {
        if (d.errors.length > 0) {
          const e = d.errors[0];
          throw formatError(file, `FLAC decoding failed: ${e?.message ?? e?.error ?? 'unknown error'}`);
        }
        if (d.samplesDecoded === 0) return;
        if (d.channelData.length !== info.channels) throw formatError(file, `decoded ${d.channelData.length} channels, STREAMINFO says ${info.channels}`);
        // Never more than STREAMINFO declares (when it declares a length).
        const count = info.frames > 0 ? Math.min(d.samplesDecoded, Math.max(0, info.frames - emittedFrames)) : d.samplesDecoded;
        const all = interleaveRescaled(d.channelData, count, info.bitsPerSample);
        for (let f = 0; f < count && !out.stopped(); f += framesPerChunk) {
          const n = Math.min(framesPerChunk, count - f);
          const chunk = conv.push(all.slice(f * info.channels, (f + n) * info.channels));
          emittedFrames += n;
          await out.next(chunk, emittedFrames, info.sampleRateHz);
        }
      };
      for (let pos = info.flacOffset; pos < size && !out.stopped(); pos += READ_BLOCK_BYTES) {
        const bytes = await readAt(fh, pos, Math.min(READ_BLOCK_BYTES, size - pos));
        await emit(await decoder.decode(bytes));
      }
      if (out.stopped()) return;
      await emit(await decoder.decode(trailer));
      if (out.stopped()) return;
      await emit(await decoder.flush());
      if (out.stopped()) return;
      // The decoder drops frames it cannot decode without an error: compare with STREAMINFO.
      if (info.frames > 0 && emittedFrames < info.frames) {
        throw formatError(
          file,
          `truncated or corrupt: decoded ${emittedFrames} of the ${info.frames} samples STREAMINFO declares`,
          'the file is damaged or was cut short; re-export or re-encode it (flac -t FILE shows where)',
        );
      }
      if (info.frames === 0 && emittedFrames === 0) throw formatError(file, 'no audio frames could be decoded');
      out.complete(conv.flush());
    },
    () => {
      decoder?.free();
      void fh?.close().catch(() => undefined);
    },
  );
}
