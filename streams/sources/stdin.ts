/**
 * Raw signed 16-bit little-endian PCM from a readable stream (stdin for `--input -`), with a declared
 * rate and channel count. Bytes that split a frame across chunk boundaries are carried over.
 *
 * A WAV piped on stdin is told apart by its header ({@link sniffStdin}): its rate, channels and
 * sample format come from the header and only the samples reach {@link rawPcmSource}.
 */
import { PassThrough, Transform, type Readable } from 'node:stream';
import { Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { MAX_FLOW_CHUNK_MS, type FlowControl } from '../flow.js';
import { AudioConverter } from './convert.js';
import { s16leToFloat32 } from '../audio.js';
import { decodeSamples, parseWavHeader, type WavInfo, type WavSampleFormat } from './wav-file.js';

/** Options for {@link rawPcmSource}. */
export interface RawPcmSourceOptions {
  /** Sample rate of the input in Hz. Default 16000. */
  sampleRateHz: number;
  /** Interleaved channels in the input. Default 1. */
  channels: number;
  /** Stream id stamped on every chunk. Default `'stdin'`. */
  streamId: string;
  /** Pauses the stream while the model stage is full (offline runs). */
  flow?: FlowControl;
  /** Take only this channel (0-based) instead of the average of all channels (speaker channels). Default: average. */
  channel?: number;
  /** Sample encoding (from a WAV header on stdin). Default 16-bit signed integer (s16le). */
  sample?: { readonly format: WavSampleFormat; readonly bitsPerSample: number };
}

export const DEFAULT_RAW_PCM_SOURCE: RawPcmSourceOptions = { sampleRateHz: 16_000, channels: 1, streamId: 'stdin' };

/**
 * Emits 16 kHz mono chunks from raw s16le bytes on `input` (default process.stdin). Completes when
 * the input ends; a trailing partial frame is reported as AFFECT_ERR_AUDIO_FORMAT.
 */
export function rawPcmSource(input: Readable = process.stdin, opts: Partial<RawPcmSourceOptions> = {}): Observable<AudioChunk> {
  const o = { ...DEFAULT_RAW_PCM_SOURCE, ...opts };
  if (!Number.isInteger(o.sampleRateHz) || o.sampleRateHz < 1000 || o.sampleRateHz > 768_000) {
    throw new RangeError(`rawPcmSource: sampleRateHz must be an integer in [1000, 768000], got ${o.sampleRateHz}`);
  }
  if (!Number.isInteger(o.channels) || o.channels < 1 || o.channels > 32)
    throw new RangeError(`rawPcmSource: channels must be an integer in [1, 32], got ${o.channels}`);
  return new Observable<AudioChunk>((sub) => {
    const conv = new AudioConverter(o.streamId, o.sampleRateHz, o.channels, 0, o.channel);
    const sample = o.sample ?? { format: 'int', bitsPerSample: 16 };
    const s16 = sample.format === 'int' && sample.bitsPerSample === 16;
    const frameBytes = (sample.bitsPerSample / 8) * o.channels;
    // A pipe read can hold seconds of audio; with a flow it goes out in pieces of at most
    // MAX_FLOW_CHUNK_MS, waiting for room between them, or a short hop would overflow the model
    // stage's queue and an offline run would drop windows.
    const pieceBytes = frameBytes * Math.max(1, Math.round((o.sampleRateHz * MAX_FLOW_CHUNK_MS) / 1000));
    let carry: Buffer = Buffer.alloc(0);
    let done = false;
    // Pieces still to emit (flow mode); 'end' may come while they wait, so it waits for them too.
    let backlog: Buffer[] = [];
    let draining = false;
    let endPending = false;
    const emit = (bytes: Buffer): void => {
      const chunk = conv.push(s16 ? s16leToFloat32(bytes) : decodeSamples(bytes, sample.format, sample.bitsPerSample));
      if (chunk) sub.next(chunk);
    };
    const drain = (): void => {
      while (!done && backlog.length > 0) {
        emit(backlog.shift()!);
        if (o.flow && !o.flow.hasRoom()) {
          draining = true;
          input.pause();
          void o.flow.ready().then(() => {
            draining = false;
            drain();
          });
          return;
        }
      }
      if (done) return;
      if (endPending) finish();
      else input.resume();
    };
    const onData = (data: Buffer | string): void => {
      const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
      const all = carry.length ? Buffer.concat([carry, buf]) : buf;
      const whole = all.length - (all.length % frameBytes);
      // Keep the split frame for the next chunk (copy: the stream may reuse its buffer).
      carry = Buffer.from(all.subarray(whole));
      if (whole === 0) return;
      if (!o.flow) return emit(all.subarray(0, whole));
      // Copied: the pieces may be emitted after the stream has reused its buffer.
      for (let at = 0; at < whole; at += pieceBytes) backlog.push(Buffer.from(all.subarray(at, Math.min(whole, at + pieceBytes))));
      if (!draining) drain();
    };
    const onEnd = (): void => {
      if (done) return;
      if (draining) {
        endPending = true;
        return;
      }
      finish();
    };
    const finish = (): void => {
      if (done) return;
      done = true;
      if (carry.length > 0) {
        sub.error(
          new AffectError(
            'AFFECT_ERR_AUDIO_FORMAT',
            `stdin ended with ${carry.length} byte(s) of an incomplete ${s16 ? 's16le' : `${sample.bitsPerSample}-bit ${sample.format}`} frame (${o.channels} channel(s) x ${sample.bitsPerSample / 8} bytes)`,
            {
              stage: 'stdin',
              hint: 'send whole frames, and check --channels matches the input',
            },
          ),
        );
        return;
      }
      const tail = conv.flush();
      if (tail) sub.next(tail);
      sub.complete();
    };
    const onError = (err: Error): void => {
      if (done) return;
      done = true;
      sub.error(new AffectError('AFFECT_ERR_INPUT', `reading stdin failed: ${err.message}`, { stage: 'stdin', cause: err }));
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
    return () => {
      done = true;
      backlog = [];
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
    };
  });
}

/** What {@link sniffStdin} found on the input. */
export type StdinInput =
  /** A WAV: `info` from its header; `stream` carries only the sample bytes (at most the data chunk's declared length). */
  | { readonly kind: 'wav'; readonly info: WavInfo; readonly stream: Readable }
  /** Raw samples: `stream` carries every byte read so far and the rest. */
  | { readonly kind: 'raw'; readonly stream: Readable };

/** Most bytes read looking for a WAV's data chunk (fmt plus LIST/metadata chunks before it). */
export const MAX_STDIN_WAV_HEADER_BYTES = 1 << 20;

/**
 * Looks at the first bytes of `input`: a RIFF/WAVE header makes it a WAV (rate, channels and sample
 * format from the header; errors such as an unsupported format are AFFECT_ERR_AUDIO_FORMAT naming
 * `name`), a FLAC, Ogg or MP3 stream is an AFFECT_ERR_AUDIO_FORMAT (it is not samples), anything
 * else is raw samples. Reads only as much as it needs (12 bytes for raw input), so
 * a live raw pipe is not held back.
 */
export async function sniffStdin(input: Readable = process.stdin, name = 'stdin'): Promise<StdinInput> {
  const parts: Buffer[] = [];
  let have = 0;
  let ended = false;
  const pull = (atLeast: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (have >= atLeast || ended) return resolve();
      const onReadable = (): void => {
        let c: Buffer | string | null;
        while ((c = input.read() as Buffer | string | null) !== null) {
          const b = typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
          parts.push(b);
          have += b.length;
          if (have >= atLeast) return done();
        }
      };
      const onEnd = (): void => {
        ended = true;
        done();
      };
      const onError = (err: Error): void => {
        off();
        reject(new AffectError('AFFECT_ERR_INPUT', `reading ${name} failed: ${err.message}`, { stage: 'stdin', cause: err }));
      };
      const off = (): void => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
      };
      const done = (): void => {
        off();
        resolve();
      };
      input.on('readable', onReadable);
      input.once('end', onEnd);
      input.once('error', onError);
      onReadable();
    });
  /** A stream of `head` followed by the rest of the input. */
  const rest = (head: Buffer): Readable => {
    const out = new PassThrough();
    if (head.length) out.write(head);
    if (ended) out.end();
    else input.pipe(out);
    return out;
  };
  await pull(12);
  let buf = Buffer.concat(parts);
  // A compressed stream is not raw samples: read as s16le it was analysed as noise, exit 0.
  const magic = buf.toString('latin1', 0, 4);
  const compressed = magic === 'fLaC' ? 'a FLAC stream' : magic === 'OggS' ? 'an Ogg stream' : magic.startsWith('ID3') ? 'an MP3 (ID3 tag)' : undefined;
  if (compressed) {
    throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${name} is ${compressed}; on stdin circumplex reads a WAV or raw s16le samples`, {
      stage: 'stdin',
      hint: "give a FLAC file itself with --input FILE.flac, or decode on the way: sox -t flac - -t wav - | circumplex run --input - (use the input's type)",
    });
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') return { kind: 'raw', stream: rest(buf) };
  // A WAV: read until the header parses (the data chunk starts), or give up past the bound.
  for (;;) {
    let short = false;
    const read = (position: number, length: number): Promise<Buffer> => {
      if (position + length > buf.length) short = true;
      return Promise.resolve(buf.subarray(Math.min(position, buf.length), Math.min(position + length, buf.length)));
    };
    let info: WavInfo | undefined;
    try {
      info = await parseWavHeader(read, Number.MAX_SAFE_INTEGER, name);
    } catch (e) {
      if (!short || ended) throw e;
      if (buf.length >= MAX_STDIN_WAV_HEADER_BYTES) {
        throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${name}: a WAV header without a data chunk in its first ${MAX_STDIN_WAV_HEADER_BYTES} bytes`, {
          stage: 'stdin',
          hint: 'pipe a plain WAV (e.g. sox INPUT -t wav -r 16000 -c 1 -b 16 -) or raw samples with --rate and --channels',
        });
      }
      await pull(buf.length + 4096);
      buf = Buffer.concat(parts);
      continue;
    }
    const samples = rest(buf.subarray(info.dataOffset));
    // A declared data length bounds the samples (chunks after the data, e.g. LIST, are not audio);
    // an unknown one (0 or 0xFFFFFFFF) takes everything to the end.
    if (info.dataBytes > 0xffffffff) return { kind: 'wav', info, stream: samples };
    let left = info.dataBytes;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (left > 0) this.push(chunk.subarray(0, Math.min(chunk.length, left)));
        left -= Math.min(chunk.length, left);
        cb();
      },
    });
    return { kind: 'wav', info, stream: samples.pipe(cap) };
  }
}
