/**
 * `inferText`: runs the text affect model on text windows, coalesced and rate limited.
 *
 * - At most one model call in flight. Windows that arrive meanwhile are coalesced: only the newest
 *   is kept (a stale partial is worth nothing once a newer one exists), and each replaced window is
 *   counted.
 * - At most one call per `minIntervalMs` of audio time. A window held back by the rate limit runs
 *   when audio time (the next window, or `clock$`) reaches the interval, or when the input ends.
 * - Empty text never reaches the model: it yields valence 0, arousal 0, confidence 0 at once (in
 *   order behind any call in flight). Non-finite model outputs are mapped to confidence 0, never NaN.
 * - A failed call is recoverable: that window is skipped and `onError` is told.
 */
import { EMPTY, from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import type { TextAffectOutput } from '../../models/ports.js';
import type { Stamped } from '../../core/types.js';

/** The text model as this operator sees it: a real TextAffectModel fits; fakes return Observables. */
export interface TextInferer {
  infer(text: string): ObservableInput<TextAffectOutput>;
}

/** Options of {@link inferText}. */
export interface InferTextOptions {
  /** Least audio time between two model calls, in ms. Default 1000. */
  minIntervalMs: number;
  /** Told about each failed model call (the window is skipped). */
  onError: ((err: unknown) => void) | undefined;
  /** Told each time a waiting window is replaced by a newer one, with the running count. */
  onCoalesced: ((total: number) => void) | undefined;
}

/** Defaults for {@link InferTextOptions}. */
export const DEFAULT_INFER_TEXT: InferTextOptions = { minIntervalMs: 1_000, onError: undefined, onCoalesced: undefined };

/** The estimate for "no words": no information. */
export const NO_TEXT_ESTIMATE: TextAffectOutput = Object.freeze({ valence: 0, arousal: 0, confidence: 0 });

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** Clamps a model output into range; anything non-finite makes it a zero-confidence estimate. */
export function sanitizeTextOutput(out: TextAffectOutput): TextAffectOutput {
  const { valence, arousal, confidence } = out;
  if (!Number.isFinite(valence) || !Number.isFinite(arousal) || !Number.isFinite(confidence)) {
    return { ...out, valence: 0, arousal: 0, confidence: 0 };
  }
  return { ...out, valence: clamp(valence, -1, 1), arousal: clamp(arousal, -1, 1), confidence: clamp(confidence, 0, 1) };
}

/** Coalescing, rate-limited text inference. `clock$` (optional) emits audio ms. */
export function inferText(
  model: TextInferer,
  opts: Partial<InferTextOptions> = {},
  clock$: Observable<number> = EMPTY,
): OperatorFunction<Stamped<string>, Stamped<TextAffectOutput>> {
  const o = { ...DEFAULT_INFER_TEXT, ...opts };
  if (!(Number.isFinite(o.minIntervalMs) && o.minIntervalMs >= 0)) {
    throw new RangeError(`inferText: minIntervalMs must be >= 0, got ${o.minIntervalMs}`);
  }
  return (source) =>
    new Observable<Stamped<TextAffectOutput>>((subscriber) => {
      let waiting: Stamped<string> | undefined;
      let busy = false;
      let done = false;
      let nowMs = -Infinity;
      let lastRunMs = -Infinity;
      let coalesced = 0;
      let inner: Subscription | undefined;

      const maybeComplete = (): void => {
        if (done && !busy && waiting === undefined) subscriber.complete();
      };

      const pump = (): void => {
        while (!busy && waiting !== undefined && !subscriber.closed) {
          const w = waiting;
          if (w.value.trim() === '') {
            waiting = undefined;
            subscriber.next({ streamId: w.streamId, tMs: w.tMs, value: NO_TEXT_ESTIMATE });
            continue;
          }
          // Rate limit in audio time; the last window always runs when the input has ended.
          if (!done && nowMs - lastRunMs < o.minIntervalMs) return;
          waiting = undefined;
          busy = true;
          lastRunMs = nowMs;
          let input: ObservableInput<TextAffectOutput>;
          try {
            input = model.infer(w.value);
          } catch (err) {
            busy = false;
            o.onError?.(err);
            continue;
          }
          let sync = true;
          const finish = (): void => {
            busy = false;
            // A synchronous fake finished inside subscribe(): the loop goes on by itself.
            if (!sync) {
              pump();
              maybeComplete();
            }
          };
          inner = from(input).subscribe({
            next: (value) => subscriber.next({ streamId: w.streamId, tMs: w.tMs, value: sanitizeTextOutput(value) }),
            error: (err: unknown) => {
              o.onError?.(err);
              finish();
            },
            complete: finish,
          });
          sync = false;
        }
      };

      const clockSub = clock$.subscribe({
        next: (ms) => {
          if (ms > nowMs) {
            nowMs = ms;
            pump();
          }
        },
        error: (err: unknown) => subscriber.error(err),
      });
      const sub = source.subscribe({
        next: (w) => {
          if (waiting !== undefined) {
            coalesced++;
            o.onCoalesced?.(coalesced);
          }
          waiting = w;
          nowMs = Math.max(nowMs, w.tMs);
          pump();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          done = true;
          pump();
          maybeComplete();
        },
      });
      return () => {
        clockSub.unsubscribe();
        sub.unsubscribe();
        inner?.unsubscribe();
      };
    });
}
