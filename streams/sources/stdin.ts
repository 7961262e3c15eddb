/**
 * Raw signed 16-bit little-endian PCM from a readable stream (stdin for `--input -`), with a declared
 * rate and channel count. Bytes that split a frame across chunk boundaries are carried over.
 */
import type { Readable } from 'node:stream';
import { Observable } from 'rxjs';
import { AffectError } from '../../src/errors.js';
import type { AudioChunk } from '../types.js';
import { MAX_FLOW_CHUNK_MS, type FlowControl } from '../flow.js';
import { AudioConverter } from './convert.js';
import { s16leToFloat32 } from '../audio.js';

/** Options for {@link rawPcmSource}. */
export interface RawPcmSourceOptions {
  /** Sample rate of the input in Hz. Default 16000. */
  sampleRateHz: number;
  /** Interleaved channels in the input. Default 1. */
  channels: number;
  /** Stream id stamped on every chunk. Default `'stdin'`. */
  streamId: string;
  /** Pauses the stream while the model stage is full (offline runs). */
  flow?: FlowControl;  /** Take only this channel (0-based) instead of the average of all channels (speaker channels). Default: average. */
  channel?: number;
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
  if (!Number.isInteger(o.channels) || o.channels < 1 || o.channels > 32) throw new RangeError(`rawPcmSource: channels must be an integer in [1, 32], got ${o.channels}`);
  return new Observable<AudioChunk>((sub) => {
    const conv = new AudioConverter(o.streamId, o.sampleRateHz, o.channels, 0, o.channel);
    const frameBytes = 2 * o.channels;
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
      const chunk = conv.push(s16leToFloat32(bytes));
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
          new AffectError('AFFECT_ERR_AUDIO_FORMAT', `stdin ended with ${carry.length} byte(s) of an incomplete s16le frame (${o.channels} channel(s) x 2 bytes)`, {
            stage: 'stdin',
            hint: 'send whole frames, and check --channels matches the input',
          }),
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
