/**
 * Push audio into an engine from your own code (an agent, a telephony SDK callback, a test) and get
 * the stream's frames back as an Observable: the in-process counterpart of `circumplex serve`'s
 * ingest endpoint.
 *
 * ```ts
 * const engine = await createEngine({ device: 'cpu' });
 * const feed = createAudioFeed(engine, { streamId: 'caller', sampleRateHz: 8000 });
 * feed.frames$.subscribe((e) => e.kind === 'affect' && console.log(e.point.label));
 * await feed.write(pcmFloat32); // as often as audio arrives
 * await feed.end();             // resolves once the last frame is out
 * await engine.close();
 * ```
 */
import { Subject, type Observable } from 'rxjs';
import type { Engine } from './engine.js';
import { AffectError } from '../core/errors.js';
import { FlowControl, MAX_FLOW_CHUNK_MS } from '../streams/flow.js';
import { AudioConverter } from '../streams/sources/convert.js';
import type { AudioChunk, PipelineEvent } from '../core/types.js';

/** Options of {@link createAudioFeed}. */
export interface AudioFeedOptions {
  /** Stream id stamped on every frame. Default 'feed'. */
  streamId: string;
  /** Rate of the samples you write, Hz (resampled to 16 kHz inside). Default 16000. */
  sampleRateHz: number;
  /** Interleaved channels in what you write (averaged to mono). Default 1. */
  channels: number;
  /**
   * 'live' (default): `write` never waits; when inference falls behind, the speech stage keeps the
   * latest window (frames stay current, some windows are skipped). 'offline': lossless, `write`
   * resolves only when the model stage has room, so every window is analysed (for recordings).
   */
  mode: 'live' | 'offline';
  /**
   * Most audio (ms at `sampleRateHz`) that may wait behind earlier writes not yet taken in: a
   * `write` made while more than this waits is refused with AFFECT_ERR_INPUT (recoverable: that
   * write is lost, the stream goes on), so a caller that does not await its offline writes gets an
   * error instead of a process that grows by every write. One write of any length is always taken.
   * Default 60 000.
   */
  maxPendingMs: number;
}

/** Defaults of {@link AudioFeedOptions}. */
export const DEFAULT_AUDIO_FEED: AudioFeedOptions = { streamId: 'feed', sampleRateHz: 16_000, channels: 1, mode: 'live', maxPendingMs: 60_000 };

/** An open feed: write audio, read frames. Create with {@link createAudioFeed}. */
export interface AudioFeed {
  readonly streamId: string;
  /**
   * The stream's events (affect frames, transcripts, turns, alerts, status), in audio-time order.
   * Hot: the pipeline runs from creation, so subscribe before you write to see every frame.
   * Completes after {@link AudioFeed.end}; errors with an AffectError if the pipeline fails.
   */
  readonly frames$: Observable<PipelineEvent>;
  /**
   * Hands over interleaved float samples in [-1, 1] (copied; you may reuse the array). NaN/Inf
   * become 0 and louder samples are clipped. In 'offline' mode resolves when there is room: await
   * it, since a write made while more than `maxPendingMs` of audio waits behind earlier ones is
   * refused (AFFECT_ERR_INPUT, recoverable).
   */
  write(samples: Float32Array): Promise<void>;
  /** No more audio: flushes, resolves when the last frame was emitted (or the pipeline failed). Idempotent. */
  end(): Promise<void>;
}

/** Opens a feed on `engine` (the engine stays yours to close). */
export function createAudioFeed(engine: Engine, opts: Partial<AudioFeedOptions> = {}): AudioFeed {
  const o: AudioFeedOptions = { ...DEFAULT_AUDIO_FEED, ...opts };
  if (o.streamId === '') throw new RangeError('createAudioFeed: streamId must not be empty');
  if (!Number.isInteger(o.sampleRateHz) || o.sampleRateHz < 1000 || o.sampleRateHz > 768_000) {
    throw new RangeError(`createAudioFeed: sampleRateHz must be an integer in [1000, 768000], got ${o.sampleRateHz}`);
  }
  if (!Number.isInteger(o.channels) || o.channels < 1 || o.channels > 32)
    throw new RangeError(`createAudioFeed: channels must be an integer in [1, 32], got ${o.channels}`);
  if (o.mode !== 'live' && o.mode !== 'offline') throw new RangeError(`createAudioFeed: mode must be 'live' or 'offline', got ${String(o.mode)}`);
  if (!(o.maxPendingMs > 0)) throw new RangeError(`createAudioFeed: maxPendingMs must be > 0, got ${o.maxPendingMs}`);

  const conv = new AudioConverter(o.streamId, o.sampleRateHz, o.channels);
  const audio = new Subject<AudioChunk>();
  const out = new Subject<PipelineEvent>();
  const flow = o.mode === 'offline' ? new FlowControl({ highWater: 4 }) : undefined;
  let failure: unknown;
  let ended = false;
  let settle: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (settle = resolve));
  // Hot from the start: audio written before anyone subscribes still moves the trajectory.
  audio.pipe(engine.pipeline(o.streamId, flow ? { whenBusy: 'queue', flow } : { whenBusy: 'latest' })).subscribe({
    next: (e) => out.next(e),
    error: (err: unknown) => {
      failure = err;
      flow?.close();
      out.error(err);
      settle();
    },
    complete: () => {
      flow?.close();
      out.complete();
      settle();
    },
  });
  // Offline pieces wait for room one by one; writes are chained so their order is kept.
  let tail: Promise<void> = Promise.resolve();
  const pieceSamples = Math.max(1, Math.round((o.sampleRateHz * MAX_FLOW_CHUNK_MS) / 1000)) * o.channels;
  // Copied samples that wait behind earlier writes (an offline feed whose writes are not awaited).
  let pendingSamples = 0;
  const maxPendingSamples = (o.sampleRateHz * o.channels * o.maxPendingMs) / 1000;

  return {
    streamId: o.streamId,
    frames$: out.asObservable(),
    write(samples) {
      if (!(samples instanceof Float32Array)) {
        return Promise.reject(
          new AffectError(
            'AFFECT_ERR_INPUT',
            `feed ${o.streamId}: write() takes a Float32Array of samples in [-1, 1], got ${Object.prototype.toString.call(samples)}`,
            {
              hint: 'convert 16-bit PCM with s / 32768 into a Float32Array',
            },
          ),
        );
      }
      if (ended)
        return Promise.reject(new AffectError('AFFECT_ERR_INPUT', `feed ${o.streamId}: write() after end()`, { hint: 'open a new feed for a new stream' }));
      if (samples.length % o.channels !== 0) {
        return Promise.reject(
          new AffectError('AFFECT_ERR_AUDIO_FORMAT', `feed ${o.streamId}: ${samples.length} samples is not a whole number of ${o.channels}-channel frames`, {
            hint: 'write interleaved frames: length must be a multiple of channels',
          }),
        );
      }
      if (pendingSamples > maxPendingSamples) {
        const waitingS = (pendingSamples / o.channels / o.sampleRateHz).toFixed(1);
        return Promise.reject(
          new AffectError(
            'AFFECT_ERR_INPUT',
            `feed ${o.streamId}: ${waitingS} s of audio already wait behind earlier write()s (maxPendingMs ${o.maxPendingMs}): this write was refused`,
            { recoverable: true, hint: "await each write() before the next (offline mode waits for inference), or use mode 'live'" },
          ),
        );
      }
      const copy = samples.slice();
      pendingSamples += copy.length;
      tail = tail.then(async () => {
        let left = copy.length;
        try {
          for (let at = 0; at < copy.length; at += pieceSamples) {
            if (failure !== undefined) return;
            if (flow && !flow.hasRoom()) await flow.ready();
            const piece = copy.subarray(at, at + pieceSamples);
            const chunk = conv.push(piece);
            pendingSamples -= piece.length;
            left -= piece.length;
            if (chunk) audio.next(chunk);
          }
        } finally {
          pendingSamples -= left;
        }
      });
      return tail;
    },
    end() {
      if (!ended) {
        ended = true;
        tail = tail.then(() => {
          const last = conv.flush();
          if (last && failure === undefined) audio.next(last);
          audio.complete();
        });
      }
      return tail.then(() => done);
    },
  };
}
