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
 *
 * To stop at once instead (the call hung up): `feed.abort('caller hung up')`, or pass
 * `{ signal }` and abort its AbortController. Audio still waiting is dropped unanalysed, `frames$`
 * completes (frames already emitted stay emitted), the stream's pipeline is torn down (its voice
 * activity stream and speech-model / recogniser state released; the engine goes on serving other
 * feeds), and later writes reject with AFFECT_ERR_INPUT naming the reason.
 */
import { Subject, type Observable, type Subscription } from 'rxjs';
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
  /**
   * Aborts the feed when it fires, as {@link AudioFeed.abort} with the signal's reason (an
   * already-aborted signal aborts the feed at creation). Optional; the listener is removed once the
   * stream has ended.
   */
  signal?: AbortSignal;
}

/** Defaults of {@link AudioFeedOptions}. */
export const DEFAULT_AUDIO_FEED: AudioFeedOptions = { streamId: 'feed', sampleRateHz: 16_000, channels: 1, mode: 'live', maxPendingMs: 60_000 };

/** An open feed: write audio, read frames. Create with {@link createAudioFeed}. */
export interface AudioFeed {
  readonly streamId: string;
  /**
   * The stream's events (affect frames, transcripts, turns, alerts, status), in audio-time order.
   * Hot: the pipeline runs from creation, so subscribe before you write to see every frame.
   * Completes after {@link AudioFeed.end} (or at once on {@link AudioFeed.abort}); errors with an
   * AffectError if the pipeline fails.
   */
  readonly frames$: Observable<PipelineEvent>;
  /**
   * Hands over interleaved float samples in [-1, 1] (copied; you may reuse the array). NaN/Inf
   * become 0 and louder samples are clipped. In 'offline' mode resolves when there is room: await
   * it, since a write made while more than `maxPendingMs` of audio waits behind earlier ones is
   * refused (AFFECT_ERR_INPUT, recoverable). After {@link AudioFeed.abort}, rejects with
   * AFFECT_ERR_INPUT (not recoverable: the stream is over), as do writes still waiting for room.
   */
  write(samples: Float32Array): Promise<void>;
  /**
   * No more audio: flushes, resolves when the last frame was emitted (or the pipeline failed).
   * Idempotent; after {@link AudioFeed.abort} it resolves at once.
   */
  end(): Promise<void>;
  /**
   * Stops now, without the flush `end()` does: audio written but not yet analysed (an offline
   * write waiting for room, samples short of the next window) is dropped, `frames$` completes
   * (frames already emitted stay emitted), the stream's pipeline is unsubscribed (its VAD stream,
   * speech-model cache and recogniser are released; the engine keeps serving other feeds), and
   * pending and later writes reject with AFFECT_ERR_INPUT (recoverable: false) saying the feed was
   * aborted and `reason`. An `end()` still flushing is cut short and resolves. Idempotent; a no-op
   * once the stream has finished (after `end()` resolved, or the pipeline failed).
   */
  abort(reason?: string): void;
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
  const { signal } = o;

  const conv = new AudioConverter(o.streamId, o.sampleRateHz, o.channels);
  const audio = new Subject<AudioChunk>();
  const out = new Subject<PipelineEvent>();
  const flow = o.mode === 'offline' ? new FlowControl({ highWater: 4 }) : undefined;
  let failure: unknown;
  let ended = false;
  // Set by abort(): what every write from then on rejects with.
  let aborted: AffectError | undefined;
  // The pipeline completed or failed (abort is a no-op from then on).
  let finished = false;
  let settle: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (settle = resolve));
  const throwIfAborted = (): void => {
    if (aborted) throw aborted;
  };
  const onSignal = (): void => feed.abort(abortReason(signal?.reason));
  const finish = (): void => {
    finished = true;
    flow?.close();
    signal?.removeEventListener('abort', onSignal);
    settle();
  };
  // Hot from the start: audio written before anyone subscribes still moves the trajectory.
  const pipeline: Subscription = audio.pipe(engine.pipeline(o.streamId, flow ? { whenBusy: 'queue', flow } : { whenBusy: 'latest' })).subscribe({
    next: (e) => out.next(e),
    error: (err: unknown) => {
      failure = err;
      finish();
      out.error(err);
    },
    complete: () => {
      finish();
      out.complete();
    },
  });
  // Offline pieces wait for room one by one; writes are chained so their order is kept.
  let tail: Promise<void> = Promise.resolve();
  const pieceSamples = Math.max(1, Math.round((o.sampleRateHz * MAX_FLOW_CHUNK_MS) / 1000)) * o.channels;
  // Copied samples that wait behind earlier writes (an offline feed whose writes are not awaited).
  let pendingSamples = 0;
  const maxPendingSamples = (o.sampleRateHz * o.channels * o.maxPendingMs) / 1000;

  const feed: AudioFeed = {
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
      if (aborted) return Promise.reject(aborted);
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
      const taken = tail.then(async () => {
        let left = copy.length;
        try {
          for (let at = 0; at < copy.length; at += pieceSamples) {
            throwIfAborted();
            if (failure !== undefined) return;
            if (flow && !flow.hasRoom()) await flow.ready();
            // abort() closes the flow, which wakes this wait: the rest of the write is dropped.
            throwIfAborted();
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
      // The chain itself never rejects: an aborted write must not turn end() into a rejection.
      tail = taken.catch(() => undefined);
      return taken;
    },
    end() {
      if (aborted) return done;
      if (!ended) {
        ended = true;
        tail = tail.then(() => {
          if (aborted) return;
          const last = conv.flush();
          if (last && failure === undefined) audio.next(last);
          audio.complete();
        });
      }
      // abort() during the flush wakes the writes still waiting, so this settles then too.
      return tail.then(() => done);
    },
    abort(reason) {
      if (aborted || finished) return;
      const why = reason === undefined || reason === '' ? '' : `: ${reason}`;
      aborted = new AffectError('AFFECT_ERR_INPUT', `feed ${o.streamId}: aborted${why}; audio not yet analysed was dropped`, {
        hint: 'open a new feed for a new stream',
      });
      // Unsubscribing tears the stream's pipeline down (VAD stream closed, per-stream speech cache and
      // recogniser freed) without analysing what still waits; finish() wakes writes waiting for room.
      pipeline.unsubscribe();
      finish();
      out.complete();
    },
  };
  if (signal?.aborted) onSignal();
  else signal?.addEventListener('abort', onSignal, { once: true });
  return feed;
}

/** A signal's reason as text (an AbortController's default reason is a DOMException). */
function abortReason(reason: unknown): string | undefined {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return reason.message;
  if (typeof reason === 'number' || typeof reason === 'boolean' || typeof reason === 'bigint') return String(reason);
  return undefined;
}
