/**
 * WAV file source. Parses RIFF/WAVE itself (PCM 8/16/24/32-bit integer, 32/64-bit float,
 * WAVE_FORMAT_EXTENSIBLE, any rate and channel count, unknown chunks skipped) and emits 16 kHz mono
 * float {@link AudioChunk}s. Reads the file block by block, so long recordings are not held in memory.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { MAX_FLOW_CHUNK_MS, type FlowControl } from '../flow.js';
import { AudioConverter } from './convert.js';

/** Sample encodings the parser understands. */
export type WavSampleFormat = 'int' | 'float';

/** What the `fmt ` chunk says, plus where the samples are. */
export interface WavInfo {
  readonly sampleRateHz: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  readonly format: WavSampleFormat;
  /** Bytes per frame (all channels of one sample instant). */
  readonly blockAlign: number;
  /** Byte offset of the first sample in the file. */
  readonly dataOffset: number;
  /** Length of the sample data in bytes (whole frames). */
  readonly dataBytes: number;
  /** Frames (sample instants) in the file. */
  readonly frames: number;
  /** Duration in ms. */
  readonly durationMs: number;
}

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

function formatError(file: string, what: string, hint = 'convert it with: sox INPUT -r 16000 -c 1 -b 16 out.wav'): AffectError {
  return new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${file}: ${what}`, { stage: 'wav-file', hint });
}

/** Reads exactly `length` bytes at `position`, or fewer at end of file. */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/**
 * Parses the chunk structure of an open WAV file.
 * @param name file name used in error messages
 */
export async function readWavInfo(fh: FileHandle, name: string): Promise<WavInfo> {
  return parseWavHeader((position, length) => readAt(fh, position, length), (await fh.stat()).size, name);
}

/**
 * Parses the chunk structure of a WAV byte source: `read(position, length)` returns up to `length`
 * bytes at `position` (fewer at the end). `size` is the total length in bytes; a stream of unknown
 * length (WAV on stdin) passes Number.MAX_SAFE_INTEGER and gets the data chunk's declared length, or
 * about that when the writer left it unknown (0 or 0xFFFFFFFF).
 * @param name input name used in error messages
 */
export async function parseWavHeader(read: (position: number, length: number) => Promise<Buffer>, size: number, name: string): Promise<WavInfo> {
  const head = await read(0, 12);
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') {
    const kind = head.toString('latin1', 0, 4) === 'RF64' ? 'an RF64 file (not supported)' : 'not a RIFF/WAVE file';
    throw formatError(name, `${kind} (${size} bytes)`);
  }
  let pos = 12;
  let fmt: { format: WavSampleFormat; channels: number; rate: number; bits: number; blockAlign: number } | undefined;
  while (pos + 8 <= size) {
    const ch = await read(pos, 8);
    if (ch.length < 8) break;
    const id = ch.toString('latin1', 0, 4);
    const len = ch.readUInt32LE(4);
    const body = pos + 8;
    if (id === 'fmt ') {
      if (len < 16) throw formatError(name, `fmt chunk too short (${len} bytes)`);
      const f = await read(body, Math.min(len, 40));
      if (f.length < 16) throw formatError(name, 'truncated fmt chunk');
      let tag = f.readUInt16LE(0);
      const channels = f.readUInt16LE(2);
      const rate = f.readUInt32LE(4);
      const blockAlign = f.readUInt16LE(12);
      const bits = f.readUInt16LE(14);
      if (tag === WAVE_FORMAT_EXTENSIBLE) {
        // The sub-format GUID starts with the real format tag.
        if (f.length < 26) throw formatError(name, 'WAVE_FORMAT_EXTENSIBLE fmt chunk without a sub-format');
        tag = f.readUInt16LE(24);
      }
      let format: WavSampleFormat;
      if (tag === WAVE_FORMAT_PCM && [8, 16, 24, 32].includes(bits)) format = 'int';
      else if (tag === WAVE_FORMAT_IEEE_FLOAT && (bits === 32 || bits === 64)) format = 'float';
      else {
        const what =
          tag === WAVE_FORMAT_PCM || tag === WAVE_FORMAT_IEEE_FLOAT ? `${bits}-bit ${tag === 1 ? 'PCM' : 'float'}` : `format tag 0x${tag.toString(16)}`;
        throw formatError(name, `unsupported sample format: ${what}; supported: PCM 8/16/24/32-bit integer, 32/64-bit float`);
      }
      if (channels < 1) throw formatError(name, 'fmt chunk says 0 channels');
      if (rate < 1000 || rate > 768_000) throw formatError(name, `unsupported sample rate ${rate} Hz`);
      if (blockAlign !== (channels * bits) / 8) throw formatError(name, `inconsistent fmt chunk: blockAlign ${blockAlign} for ${channels} x ${bits}-bit`);
      fmt = { format, channels, rate, bits, blockAlign };
    } else if (id === 'data') {
      if (!fmt) throw formatError(name, 'data chunk before fmt chunk');
      const available = size - body;
      // 0 and 0xFFFFFFFF are what streaming writers (e.g. sox to a pipe) leave when the length was
      // unknown: take the rest of the file.
      let dataBytes = len === 0 || len === 0xffffffff ? available : len;
      if (dataBytes > available) {
        throw formatError(
          name,
          `truncated data: the data chunk declares ${dataBytes} bytes but only ${available} are in the file`,
          'the file was cut short; re-export or re-record it',
        );
      }
      dataBytes -= dataBytes % fmt.blockAlign;
      const frames = dataBytes / fmt.blockAlign;
      return {
        sampleRateHz: fmt.rate,
        channels: fmt.channels,
        bitsPerSample: fmt.bits,
        format: fmt.format,
        blockAlign: fmt.blockAlign,
        dataOffset: body,
        dataBytes,
        frames,
        durationMs: (frames * 1000) / fmt.rate,
      };
    }
    // Chunks are padded to an even length.
    pos = body + len + (len % 2);
  }
  throw formatError(name, fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Decodes interleaved little-endian samples of any supported format into floats in [-1, 1]. */
export function decodeSamples(buf: Uint8Array, format: WavSampleFormat, bits: number): Float32Array {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bytes = bits / 8;
  const n = Math.floor(buf.byteLength / bytes);
  const out = new Float32Array(n);
  if (format === 'float') {
    for (let i = 0; i < n; i++) out[i] = bits === 32 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
    return out;
  }
  switch (bits) {
    case 8: // unsigned, 128 = silence
      for (let i = 0; i < n; i++) out[i] = (view.getUint8(i) - 128) / 128;
      break;
    case 16:
      for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true) / 32768;
      break;
    case 24:
      for (let i = 0; i < n; i++) {
        const o = i * 3;
        let v = view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getUint8(o + 2) << 16);
        if (v & 0x800000) v -= 0x1000000;
        out[i] = v / 8388608;
      }
      break;
    case 32:
      for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true) / 2147483648;
      break;
    default:
      throw new RangeError(`decodeSamples: unsupported bits ${bits}`);
  }
  return out;
}

/** Options for {@link wavFileSource}. */
export interface WavFileSourceOptions {
  /** Stream id stamped on every chunk. Default `'file'`. */
  streamId: string;
  /** Length of each emitted chunk in ms of audio. Default 100. */
  chunkMs: number;
  /** Pace emission at real-time speed (wall clock). Default false: as fast as the consumer allows. */
  realtime: boolean;
  /** Speed factor for realtime pacing (2 = twice real time). Default 1. */
  speed: number;
  /** Waits for room in the model stage before each chunk (offline runs). */
  flow?: FlowControl;
  /** Take only this channel (0-based) instead of the average of all channels (speaker channels). Default: average. */
  channel?: number;
}

export const DEFAULT_WAV_FILE_SOURCE: WavFileSourceOptions = { streamId: 'file', chunkMs: 100, realtime: false, speed: 1 };

/** Opens a file, turning "not there"/"not readable" into AFFECT_ERR_INPUT naming the file. */
export async function openInput(file: string): Promise<FileHandle> {
  try {
    const fh = await open(file, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) {
      await fh.close();
      throw new AffectError('AFFECT_ERR_INPUT', `${file} is a directory, not an audio file`, { stage: 'wav-file', hint: 'pass a .wav file' });
    }
    return fh;
  } catch (err) {
    if (err instanceof AffectError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new AffectError('AFFECT_ERR_INPUT', `cannot read input ${file}: ${what}`, {
      stage: 'wav-file',
      cause: err,
      hint: 'check the path given to --input (use --input - for raw s16le on stdin)',
    });
  }
}

/** Reads a WAV file's header (fails fast with a clear error before any model is loaded). */
export async function probeWavFile(file: string): Promise<WavInfo> {
  const fh = await openInput(file);
  try {
    return await readWavInfo(fh, file);
  } finally {
    await fh.close();
  }
}

/** Waits `ms` of wall-clock time (realtime pacing of the file sources). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
/** Lets the event loop run between chunks of an offline file read. */
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What a file source's reader gets from {@link pacedFileSource}. */
export interface PacedOutput {
  /** True once the subscriber has gone: stop reading. */
  readonly stopped: () => boolean;
  /** Frames per chunk at `rateHz` (chunkMs, capped by the flow's bound when there is a flow). */
  framesPerChunk(rateHz: number): number;
  /**
   * Emits `chunk` (when the converter produced one), then waits as the options say: until
   * `framesSoFar` frames at `rateHz` are due by the wall clock (realtime ÷ speed), or until the flow
   * has room, or one turn of the event loop.
   */
  next(chunk: AudioChunk | null, framesSoFar: number, rateHz: number): Promise<void>;
  /** Emits the last chunk and completes. */
  complete(tail: AudioChunk | null): void;
}

/**
 * The Observable shell shared by the file sources (WAV, FLAC): validates chunkMs and speed, runs
 * `read` once per subscription, paces it ({@link PacedOutput}), turns its errors into the
 * subscriber's error (not after unsubscribe), ends a wait on the flow when the subscriber goes, and
 * runs `cleanup` however it ends.
 */
export function pacedFileSource(what: string, o: WavFileSourceOptions, read: (out: PacedOutput) => Promise<void>, cleanup: () => void): Observable<AudioChunk> {
  if (!(o.chunkMs > 0)) throw new RangeError(`${what}: chunkMs must be > 0, got ${o.chunkMs}`);
  if (!(o.speed > 0)) throw new RangeError(`${what}: speed must be > 0, got ${o.speed}`);
  return new Observable<AudioChunk>((sub) => {
    let stopped = false;
    // Unsubscribing must also end a wait on the flow (it may never drain once nobody consumes).
    let onStop: () => void = () => undefined;
    const stoppedSignal = new Promise<void>((resolve) => (onStop = resolve));
    const t0 = performance.now();
    const out: PacedOutput = {
      stopped: () => stopped,
      // With a flow, never emit more between two waits than the model stage's queue is sized for.
      framesPerChunk: (rateHz) => Math.max(1, Math.round((rateHz * (o.flow ? Math.min(o.chunkMs, MAX_FLOW_CHUNK_MS) : o.chunkMs)) / 1000)),
      next: async (chunk, framesSoFar, rateHz) => {
        if (stopped) return;
        if (chunk) sub.next(chunk);
        if (o.realtime) {
          // Wall clock only here: emit the next chunk when its audio time comes due.
          await sleep((framesSoFar * 1000) / rateHz / o.speed - (performance.now() - t0));
        } else if (o.flow) {
          await Promise.race([o.flow.ready(), stoppedSignal]);
          await yieldToLoop();
        } else {
          await yieldToLoop();
        }
      },
      complete: (tail) => {
        if (stopped) return;
        if (tail) sub.next(tail);
        sub.complete();
      },
    };
    read(out)
      .catch((err: unknown) => {
        if (!stopped) sub.error(err);
      })
      .finally(cleanup);
    return () => {
      stopped = true;
      onStop();
    };
  });
}

/**
 * Emits a WAV file as 16 kHz mono {@link AudioChunk}s. Cold: each subscription reads the file anew.
 * Errors (missing file, not a WAV, unsupported format, truncated) are AffectErrors naming the file.
 * `realtime` paces by wall clock (the only place wall-clock time is used); otherwise the source
 * yields to the event loop between chunks and, given a `flow`, waits for room downstream.
 */
export function wavFileSource(file: string, opts: Partial<WavFileSourceOptions> = {}): Observable<AudioChunk> {
  const o = { ...DEFAULT_WAV_FILE_SOURCE, ...opts };
  let fh: FileHandle | undefined;
  return pacedFileSource(
    'wavFileSource',
    o,
    async (out) => {
      fh = await openInput(file);
      const info = await readWavInfo(fh, file);
      const conv = new AudioConverter(o.streamId, info.sampleRateHz, info.channels, 0, o.channel);
      const framesPerChunk = out.framesPerChunk(info.sampleRateHz);
      let frame = 0;
      while (frame < info.frames && !out.stopped()) {
        const frames = Math.min(framesPerChunk, info.frames - frame);
        const bytes = await readAt(fh, info.dataOffset + frame * info.blockAlign, frames * info.blockAlign);
        if (bytes.length < frames * info.blockAlign) {
          throw formatError(
            file,
            `truncated data: expected ${info.dataBytes} bytes of samples, the file ended early`,
            'the file was cut short; re-export or re-record it',
          );
        }
        frame += frames;
        await out.next(conv.push(decodeSamples(bytes, info.format, info.bitsPerSample)), frame, info.sampleRateHz);
      }
      if (!out.stopped()) out.complete(conv.flush());
    },
    () => void fh?.close().catch(() => undefined),
  );
}
