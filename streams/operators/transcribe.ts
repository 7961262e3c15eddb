/**
 * `transcribe`: feeds a stream's audio to its speech recogniser and turns the results into
 * {@link TranscriptEvent}s in stream audio time.
 *
 * - One `accept` in flight per recogniser (libvosk recognisers are not re-entrant). Audio that
 *   arrives meanwhile waits in a bounded pending buffer; past the bound the OLDEST audio is
 *   dropped and counted (ASR must not silently lose audio, but rxjs has no backpressure, so the
 *   queue is capped).
 * - The recogniser's word times are relative to the audio it was fed (libvosk: seconds since its
 *   first sample). A piecewise map from "fed sample" to "stream sample" puts them back on the
 *   stream's timeline, so a stream that starts at a non-zero sample or loses audio to the bound
 *   still gets correct times.
 * - Partials with the same text as the previous one are not re-emitted.
 */
import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import type { RecognizerResult } from '../../models/ports.js';
import { AffectError, toAffectError } from '../../core/errors.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk, type TimedWord, type TranscriptEvent } from '../../core/types.js';

/**
 * The recogniser as this operator sees it. A real {@link import('../../models/ports.js').StreamRecognizer}
 * fits (it returns Promises); marble-test fakes return scheduled Observables.
 */
export interface TranscribeRecognizer {
  /** Feeds audio; word times in the result are ms since the first sample this recogniser was fed. */
  accept(samples: Float32Array): ObservableInput<RecognizerResult>;
  /** Flushes at end of stream. */
  finish(): ObservableInput<RecognizerResult>;
}

/** Options of {@link transcribe}. */
export interface TranscribeOptions {
  /** Most audio held while the recogniser is busy, in ms of audio; older audio is dropped past it. Default 10000. */
  maxPendingMs: number;
  /** Most audio handed to one `accept`, in ms (smaller calls give finer partials). Default 1000. */
  maxAcceptMs: number;
  /** Called when audio is dropped at the bound: samples dropped now, and in total for the stream. */
  onDropped: ((droppedSamples: number, totalDroppedSamples: number) => void) | undefined;
  /**
   * Called after each recogniser answer with the stream audio ms it has heard up to, even when no
   * event is emitted: the clock that ages words out of text windows (recognised time, not input
   * time, so a source that runs ahead of the recogniser does not age words early).
   */
  onProgress: ((heardMs: number) => void) | undefined;
  /**
   * Feed the recogniser only whole `maxAcceptMs` slices (plus the remainder at the end of input).
   * The recogniser's partials and endpointing depend on how its audio is cut into calls; whole
   * slices make that cut a function of the audio alone, so an offline run transcribes a file the
   * same way every time. Live input leaves it off (feed whatever has arrived, lowest latency).
   * Default false.
   */
  wholeAccepts: boolean;
}

/** Defaults for {@link TranscribeOptions}. */
export const DEFAULT_TRANSCRIBE: TranscribeOptions = {
  maxPendingMs: 10_000,
  maxAcceptMs: 1_000,
  onDropped: undefined,
  onProgress: undefined,
  wholeAccepts: false,
};

/** One contiguous run of fed audio and where it sits in the stream. */
interface Segment {
  /** First fed-sample index of the run. */
  fed: number;
  /** Stream sample index of that sample. */
  stream: number;
  len: number;
}

/** Most segments kept: one per gap; older ones only matter for words long gone. */
const MAX_SEGMENTS = 256;

/**
 * Maps "ms since the recogniser's first sample" onto stream audio ms. Exported for tests.
 */
export class FedTimeline {
  private readonly segments: Segment[] = [];
  /** Samples fed so far. */
  fed = 0;

  constructor(private readonly sampleRateHz = PIPELINE_SAMPLE_RATE_HZ) {}

  /** Records that `len` samples starting at stream sample `stream` were fed next. */
  push(stream: number, len: number): void {
    if (len <= 0) return;
    const last = this.segments[this.segments.length - 1];
    if (last && last.fed + last.len === this.fed && last.stream + last.len === stream) last.len += len;
    else this.segments.push({ fed: this.fed, stream, len });
    if (this.segments.length > MAX_SEGMENTS) this.segments.shift();
    this.fed += len;
  }

  /** Stream ms of the given fed ms (clamped into the known timeline). */
  toStreamMs(fedMs: number): number {
    const s = (fedMs * this.sampleRateHz) / 1000;
    // Walk back from the newest segment: words are almost always recent.
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      if (s >= seg.fed || i === 0) {
        const within = Math.min(Math.max(s - seg.fed, 0), seg.len);
        return ((seg.stream + within) * 1000) / this.sampleRateHz;
      }
    }
    return 0;
  }

  /** Stream ms of the end of the audio fed so far. */
  endMs(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? ((last.stream + last.len) * 1000) / this.sampleRateHz : 0;
  }
}

interface PendingPiece {
  startSample: number;
  samples: Float32Array;
}

/** Feeds audio to `recognizer` (one call in flight) and emits transcript events in stream time. */
export function transcribe(recognizer: TranscribeRecognizer, opts: Partial<TranscribeOptions> = {}): OperatorFunction<AudioChunk, TranscriptEvent> {
  const o = { ...DEFAULT_TRANSCRIBE, ...opts };
  if (!(o.maxPendingMs > 0)) throw new RangeError(`transcribe: maxPendingMs must be > 0, got ${o.maxPendingMs}`);
  if (!(o.maxAcceptMs > 0)) throw new RangeError(`transcribe: maxAcceptMs must be > 0, got ${o.maxAcceptMs}`);
  if (o.wholeAccepts && o.maxPendingMs < o.maxAcceptMs)
    throw new RangeError(`transcribe: maxPendingMs (${o.maxPendingMs}) must be >= maxAcceptMs (${o.maxAcceptMs}) with wholeAccepts`);
  const maxPending = Math.round((o.maxPendingMs * PIPELINE_SAMPLE_RATE_HZ) / 1000);
  const maxAccept = Math.max(1, Math.round((o.maxAcceptMs * PIPELINE_SAMPLE_RATE_HZ) / 1000));

  return (source) =>
    new Observable<TranscriptEvent>((subscriber) => {
      const timeline = new FedTimeline();
      const pending: PendingPiece[] = [];
      let pendingSamples = 0;
      let totalDropped = 0;
      let streamId = '';
      let busy = false;
      let sourceDone = false;
      let finished = false;
      /** Text of the last emitted partial ('' after a final): for de-duplication. */
      let lastPartial = '';
      let inner: Subscription | undefined;
      let pumping = false;

      const emit = (r: RecognizerResult): void => {
        const text = r.text.trim();
        if (r.final) {
          // A final with no words matters only when it retracts a partial we already published.
          if (text === '' && lastPartial === '') return;
          lastPartial = '';
        } else {
          if (text === lastPartial) return;
          lastPartial = text;
        }
        const words: TimedWord[] = r.words.map((w) => ({
          word: w.word,
          startMs: timeline.toStreamMs(w.startMs),
          endMs: timeline.toStreamMs(w.endMs),
          conf: w.conf,
        }));
        subscriber.next({ streamId, tMs: timeline.endMs(), text, final: r.final, words });
      };

      const fail = (err: unknown): void => subscriber.error(toAffectError(err, 'AFFECT_ERR_ASR', 'asr'));

      const run = (call: () => ObservableInput<RecognizerResult>, last: boolean): void => {
        busy = true;
        let input: ObservableInput<RecognizerResult>;
        try {
          input = call();
        } catch (err) {
          fail(err);
          return;
        }
        let got = false;
        inner = from(input).subscribe({
          next: (r) => {
            got = true;
            emit(r);
            o.onProgress?.(timeline.endMs());
          },
          error: fail,
          complete: () => {
            if (!got) return fail(new AffectError('AFFECT_ERR_ASR', 'the recogniser answered with no result', { stage: 'asr' }));
            busy = false;
            if (last) subscriber.complete();
            else pump();
          },
        });
      };

      /** Starts the next accept (or the final flush) when the recogniser is idle. */
      const pump = (): void => {
        // Synchronous fakes complete inside run(); the loop avoids deep recursion.
        if (pumping) return;
        pumping = true;
        try {
          while (!busy && !subscriber.closed) {
            if (pendingSamples > 0 && (!o.wholeAccepts || sourceDone || pendingSamples >= maxAccept)) {
              const take = Math.min(pendingSamples, maxAccept);
              const buf = new Float32Array(take);
              let off = 0;
              while (off < take) {
                const p = pending[0]!;
                const n = Math.min(p.samples.length, take - off);
                buf.set(p.samples.subarray(0, n), off);
                timeline.push(p.startSample, n);
                if (n === p.samples.length) pending.shift();
                else pending[0] = { startSample: p.startSample + n, samples: p.samples.subarray(n) };
                off += n;
              }
              pendingSamples -= take;
              run(() => recognizer.accept(buf), false);
            } else if (sourceDone && !finished) {
              finished = true;
              run(() => recognizer.finish(), true);
            } else {
              break;
            }
          }
        } finally {
          pumping = false;
        }
      };

      const sub = source.subscribe({
        next: (chunk) => {
          streamId = chunk.streamId;
          if (chunk.samples.length === 0) return;
          pending.push({ startSample: chunk.startSample, samples: chunk.samples });
          pendingSamples += chunk.samples.length;
          // Bound the queue: drop the oldest audio, trimming the oldest piece if needed.
          let dropped = 0;
          while (pendingSamples > maxPending) {
            const p = pending[0]!;
            const excess = pendingSamples - maxPending;
            if (p.samples.length <= excess) {
              pending.shift();
              pendingSamples -= p.samples.length;
              dropped += p.samples.length;
            } else {
              pending[0] = { startSample: p.startSample + excess, samples: p.samples.subarray(excess) };
              pendingSamples -= excess;
              dropped += excess;
            }
          }
          if (dropped > 0) {
            totalDropped += dropped;
            o.onDropped?.(dropped, totalDropped);
          }
          pump();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          pump();
        },
      });

      return () => {
        sub.unsubscribe();
        inner?.unsubscribe();
      };
    });
}
