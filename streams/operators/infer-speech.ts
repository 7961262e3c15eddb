/**
 * The speech model stage, bounded: at most `maxInFlight` windows in the model and at most
 * `maxQueue` waiting. When inference is slower than the audio, windows are dropped ('drop'),
 * coalesced to the newest ('latest'), or queued up to the bound ('queue', oldest dropped on
 * overflow). Every dropped window is counted and reported on the next estimate, and estimates keep
 * the audio time of their window, so a slow model lowers the frame rate but never shifts the clock.
 */
import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import type { SpeechAffectOutput } from '../../models/ports.js';
import { AffectError } from '../../core/errors.js';
import type { AudioWindow } from '../../core/types.js';
import type { FlowControl } from '../flow.js';

/** The part of SpeechAffectModel the stage needs. Real models return a Promise; marble fakes an Observable. */
export interface SpeechInferer {
  readonly windowSamples: number | null;
  infer(samples: Float32Array): ObservableInput<SpeechAffectOutput>;
}

/** What to do with a window that arrives while the model is busy. */
export type WhenBusy = 'drop' | 'latest' | 'queue';

/** Options for {@link inferSpeech}. */
export interface InferSpeechOptions {
  /** Windows in the model at once. Default 1. */
  maxInFlight: number;
  /** 'drop': skip windows while busy; 'latest': keep only the newest waiting window; 'queue': keep up to maxQueue. Default 'latest'. */
  whenBusy: WhenBusy;
  /** Bound of the waiting queue in 'queue' mode (oldest dropped on overflow). Default 16. */
  maxQueue: number;
  /** Credit counter for offline sources: the stage acquires one per accepted window and releases it when done. */
  flow?: FlowControl;
  /** Called for each dropped window (for logs/metrics). */
  onDrop?: (window: AudioWindow, reason: 'busy' | 'coalesced' | 'overflow' | 'error', err?: unknown) => void;
}

export const DEFAULT_INFER_SPEECH: InferSpeechOptions = { maxInFlight: 1, whenBusy: 'latest', maxQueue: 16 };

/** One window's speech estimate, stamped with the window's audio time. */
export interface SpeechWindowEstimate {
  readonly streamId: string;
  readonly tMs: number;
  readonly windowIndex: number;
  readonly speech: SpeechAffectOutput;
  /** Windows dropped since the previous estimate. */
  readonly droppedWindows: number;
  /** The window's voiced fraction, when voice activity detection runs. */
  readonly voiced?: number;
}

/** Pads (zeros after) or crops (keeps the newest samples) a window to the model's length. */
export function fitWindow(samples: Float32Array, want: number | null): Float32Array {
  if (want === null || samples.length === want) return samples;
  if (samples.length > want) return samples.subarray(samples.length - want);
  const out = new Float32Array(want);
  out.set(samples);
  return out;
}

/** Bounded model stage; see the module comment. */
export function inferSpeech(model: SpeechInferer, opts: Partial<InferSpeechOptions> = {}): OperatorFunction<AudioWindow, SpeechWindowEstimate> {
  const o = { ...DEFAULT_INFER_SPEECH, ...opts };
  if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1) throw new RangeError(`inferSpeech: maxInFlight must be an integer >= 1, got ${o.maxInFlight}`);
  if (!Number.isInteger(o.maxQueue) || o.maxQueue < 1) throw new RangeError(`inferSpeech: maxQueue must be an integer >= 1, got ${o.maxQueue}`);
  if (!['drop', 'latest', 'queue'].includes(o.whenBusy))
    throw new RangeError(`inferSpeech: whenBusy must be 'drop', 'latest' or 'queue', got ${String(o.whenBusy)}`);
  const capacity = o.whenBusy === 'drop' ? 0 : o.whenBusy === 'latest' ? 1 : o.maxQueue;

  return (source) =>
    new Observable<SpeechWindowEstimate>((sub) => {
      const waiting: AudioWindow[] = [];
      // Jobs in start order; results are emitted in that order so audio time never goes backwards.
      const jobs: Array<{ window: AudioWindow; drops: number; result?: SpeechAffectOutput; failed?: boolean; sub?: Subscription }> = [];
      let inFlight = 0;
      let dropsSinceStart = 0;
      let carryDrops = 0; // drops of failed jobs, reported on the next estimate
      let sourceDone = false;

      const drop = (w: AudioWindow, reason: 'busy' | 'coalesced' | 'overflow' | 'error', err?: unknown): void => {
        dropsSinceStart++;
        o.onDrop?.(w, reason, err);
      };
      const flush = (): void => {
        while (jobs.length > 0) {
          const head = jobs[0];
          if (!head || (head.result === undefined && !head.failed)) break;
          jobs.shift();
          o.flow?.release();
          if (head.failed || !head.result) {
            carryDrops += head.drops + 1;
            continue;
          }
          const droppedWindows = head.drops + carryDrops;
          carryDrops = 0;
          sub.next({
            streamId: head.window.streamId,
            tMs: head.window.tMs,
            windowIndex: head.window.index,
            speech: head.result,
            droppedWindows,
            ...(head.window.voiced !== undefined ? { voiced: head.window.voiced } : {}),
          });
        }
        if (sourceDone && jobs.length === 0 && waiting.length === 0) sub.complete();
      };
      const startNext = (): void => {
        while (inFlight < o.maxInFlight && waiting.length > 0) {
          const w = waiting.shift();
          if (!w) break;
          const job: (typeof jobs)[number] = { window: w, drops: dropsSinceStart };
          dropsSinceStart = 0;
          jobs.push(job);
          inFlight++;
          let settled = false;
          const finish = (): void => {
            if (settled) return;
            settled = true;
            inFlight--;
            startNext();
            flush();
          };
          let input: ObservableInput<SpeechAffectOutput>;
          try {
            input = model.infer(fitWindow(w.samples, model.windowSamples));
          } catch (err) {
            input = Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
          job.sub = from(input).subscribe({
            next: (v) => {
              if (job.result === undefined) job.result = v;
            },
            error: (err: unknown) => {
              // One failed window: drop it and go on, unless the error says the stream cannot.
              if (err instanceof AffectError && !err.recoverable) {
                sub.error(err);
                return;
              }
              job.failed = true;
              o.onDrop?.(w, 'error', err);
              finish();
            },
            complete: () => {
              if (job.result === undefined) job.failed = true;
              finish();
            },
          });
        }
      };

      const upstream = source.subscribe({
        next: (w) => {
          // Windows an earlier stage (the VAD's bounded queue, streams/vad.ts) dropped count here too.
          dropsSinceStart += (w as { droppedBefore?: number }).droppedBefore ?? 0;
          if (inFlight < o.maxInFlight && waiting.length === 0) {
            o.flow?.acquire();
            waiting.push(w);
            startNext();
            return;
          }
          if (capacity === 0) {
            drop(w, 'busy');
            return;
          }
          if (waiting.length >= capacity) {
            const old = waiting.shift();
            if (old) {
              o.flow?.release();
              drop(old, o.whenBusy === 'latest' ? 'coalesced' : 'overflow');
            }
          }
          o.flow?.acquire();
          waiting.push(w);
        },
        error: (err: unknown) => sub.error(err),
        complete: () => {
          sourceDone = true;
          flush();
        },
      });
      return () => {
        upstream.unsubscribe();
        for (const j of jobs) j.sub?.unsubscribe();
      };
    });
}
