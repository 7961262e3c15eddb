/**
 * The speech model stage, bounded: at most `maxInFlight` windows in the model and at most
 * `maxQueue` waiting. When inference is slower than the audio, windows are dropped ('drop'),
 * coalesced to the newest ('latest'), or queued up to the bound ('queue', oldest dropped on
 * overflow). Every dropped window is counted and reported on the next estimate, and estimates keep
 * the audio time of their window, so a slow model lowers the frame rate but never shifts the clock.
 *
 * With voice activity ({@link inferVoicedSpeech}), a window whose voiced fraction is below
 * `skipBelowVoiced` is not run through the model: the smoother holds the trajectory on such a window
 * whatever the model says (streams/operators/smooth-affect.ts), so the stage passes it on at once, in
 * order, as an {@link UnvoicedWindowEstimate} (no speech estimate), and the model's time goes to
 * voiced windows only.
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

/** Options for {@link inferVoicedSpeech}. */
export interface InferVoicedSpeechOptions extends InferSpeechOptions {
  /** Windows whose `voiced` is below this (0..1) skip the model; windows without `voiced` always run. */
  skipBelowVoiced: number;
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
  readonly unvoiced?: undefined;
}

/** A window the model was not run on because voice activity marked it unvoiced ({@link inferVoicedSpeech}). */
export interface UnvoicedWindowEstimate {
  readonly streamId: string;
  readonly tMs: number;
  readonly windowIndex: number;
  /** Windows dropped since the previous estimate. */
  readonly droppedWindows: number;
  /** The window's voiced fraction (below the stage's skipBelowVoiced). */
  readonly voiced: number;
  readonly unvoiced: true;
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
  return stage(model, opts, undefined) as OperatorFunction<AudioWindow, SpeechWindowEstimate>;
}

/**
 * {@link inferSpeech} that skips the model on windows voice activity marked unvoiced (`voiced` below
 * `skipBelowVoiced`): they come out at once, in audio-time order among the others, as
 * {@link UnvoicedWindowEstimate}s carrying the drops before them. They need no model slot; behind
 * windows still waiting for one they wait in the same bounded queue, under the same drop policy.
 */
export function inferVoicedSpeech(
  model: SpeechInferer,
  opts: Partial<InferSpeechOptions> & Pick<InferVoicedSpeechOptions, 'skipBelowVoiced'>,
): OperatorFunction<AudioWindow, SpeechWindowEstimate | UnvoicedWindowEstimate> {
  const skip = opts.skipBelowVoiced;
  if (!(skip >= 0 && skip <= 1)) throw new RangeError(`inferSpeech: skipBelowVoiced must be in [0, 1], got ${skip}`);
  return stage(model, opts, skip);
}

/** Validates and completes the speech stage's options (RangeError naming the option). */
export function resolveInferSpeechOptions(opts: Partial<InferSpeechOptions> = {}): InferSpeechOptions {
  const o = { ...DEFAULT_INFER_SPEECH, ...opts };
  if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1) throw new RangeError(`inferSpeech: maxInFlight must be an integer >= 1, got ${o.maxInFlight}`);
  if (!Number.isInteger(o.maxQueue) || o.maxQueue < 1) throw new RangeError(`inferSpeech: maxQueue must be an integer >= 1, got ${o.maxQueue}`);
  if (!['drop', 'latest', 'queue'].includes(o.whenBusy))
    throw new RangeError(`inferSpeech: whenBusy must be 'drop', 'latest' or 'queue', got ${String(o.whenBusy)}`);
  return o;
}

function stage(
  model: SpeechInferer,
  opts: Partial<InferSpeechOptions>,
  skipBelowVoiced: number | undefined,
): OperatorFunction<AudioWindow, SpeechWindowEstimate | UnvoicedWindowEstimate> {
  const o = resolveInferSpeechOptions(opts);
  const capacity = o.whenBusy === 'drop' ? 0 : o.whenBusy === 'latest' ? 1 : o.maxQueue;
  const skips = (w: AudioWindow): boolean => skipBelowVoiced !== undefined && w.voiced !== undefined && w.voiced < skipBelowVoiced;

  return (source) =>
    new Observable<SpeechWindowEstimate | UnvoicedWindowEstimate>((sub) => {
      const waiting: AudioWindow[] = [];
      // Jobs in start order; results are emitted in that order so audio time never goes backwards.
      // A skipped (unvoiced) window is a job that is done at once.
      const jobs: Array<{ window: AudioWindow; drops: number; result?: SpeechAffectOutput; skipped?: boolean; failed?: boolean; sub?: Subscription }> = [];
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
          if (!head || (head.result === undefined && !head.failed && !head.skipped)) break;
          jobs.shift();
          o.flow?.release();
          if (head.skipped) {
            const droppedWindows = head.drops + carryDrops;
            carryDrops = 0;
            sub.next({
              streamId: head.window.streamId,
              tMs: head.window.tMs,
              windowIndex: head.window.index,
              droppedWindows,
              voiced: head.window.voiced ?? 0,
              unvoiced: true,
            });
            continue;
          }
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
        // An unvoiced window needs no model slot: it becomes a done job as soon as it is first in line.
        while (waiting.length > 0 && (inFlight < o.maxInFlight || skips(waiting[0]!))) {
          const w = waiting.shift();
          if (!w) break;
          const job: (typeof jobs)[number] = { window: w, drops: dropsSinceStart };
          dropsSinceStart = 0;
          jobs.push(job);
          if (skips(w)) {
            job.skipped = true;
            flush();
            continue;
          }
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
          if ((inFlight < o.maxInFlight || skips(w)) && waiting.length === 0) {
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
