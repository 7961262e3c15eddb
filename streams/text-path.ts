/**
 * The text path of one stream: audio → speech recogniser → transcript events → text windows →
 * text affect model → text estimates for fusion.
 *
 *   audio ─ transcribe (1 accept in flight, bounded pending audio) ─┬─ transcripts$
 *                                                                   └─ textWindow ─ inferText ─ estimates$
 *
 * The recogniser is created when the pipeline subscribes; audio that arrives before it exists waits
 * in transcribe's bounded pending buffer, so a fast (even synchronous) source loses nothing.
 *
 * Offline runs (a file or a pipe paced by a flow) pass `{ offline: true }` per stream: the path
 * then reports `progress$` in a way that makes the run deterministic (the recogniser gets whole
 * `acceptMs` slices, waits for the text model between calls, and every text window is scored), and
 * keeps far more pending audio (`offlineMaxPendingMs`) so a slow real model never drops audio. Live
 * streams keep the bounded drop-oldest buffer and the coalescing, rate-limited text model.
 *
 * Failure is contained: if the recogniser cannot be created or fails mid-stream (libvosk crash,
 * hang, missing model), the path logs once, emits the error on `errors$`, emits one zero-confidence
 * text estimate (so fusion stops using stale text), and completes. The stream goes on speech-only.
 */
import {
  catchError,
  connect,
  defer,
  filter,
  finalize,
  from,
  ignoreElements,
  map,
  merge,
  Observable,
  of,
  share,
  Subject,
  switchMap,
  tap,
  throwError,
} from 'rxjs';
import type { Logger } from 'pino';
import type { RecognizerResult, SpeechRecognizerFactory, StreamRecognizer, TextAffectModel, TextAffectOutput } from '../models/ports.js';
import { AffectError, toAffectError } from '../core/errors.js';
import { inferText, NO_TEXT_ESTIMATE, type InferTextOptions, type TextInferer } from './operators/infer-text.js';
import { textWindowDetail, textWindowOptions, type TextWindowOptions } from './operators/text-window.js';
import { transcribe, type TranscribeOptions, type TranscribeRecognizer } from './operators/transcribe.js';
import type { AudioChunk, Stamped, TranscriptEvent } from '../core/types.js';

/** Options of {@link createTextPath}. */
export interface TextPathOptions {
  /** Text window: most words. Default 30. */
  maxWords: TextWindowOptions['maxWords'];
  /** Text window: audio span in seconds. Default 10. */
  maxSeconds: TextWindowOptions['maxSeconds'];
  /** Text window: drop final words below this recogniser confidence. Default 0. */
  minWordConf: TextWindowOptions['minWordConf'];
  /** Least audio time between text model calls, ms. Default 1000. */
  minIntervalMs: InferTextOptions['minIntervalMs'];
  /** Most audio waiting for the recogniser, ms (oldest dropped past it, counted). Default 10000. */
  maxPendingMs: TranscribeOptions['maxPendingMs'];
  /** Most audio per recogniser call, ms. Default 1000. */
  maxAcceptMs: TranscribeOptions['maxAcceptMs'];
  /**
   * Multiply the text model's confidence by the window's mean word confidence (from the
   * recogniser), so words the recogniser was unsure of (mumbling, non-English speech forced into
   * English words) weigh less in fusion. Default true.
   */
  scaleByWordConf: boolean;
  /**
   * Offline streams: most audio waiting for the recogniser, ms. The source is paced by the flow
   * (it waits for fusion, which waits for this path's progress), so this is a safety bound, not a
   * policy. Default 600000 (10 min of audio, 38 MB).
   */
  offlineMaxPendingMs: number;
  /** Counters summed over every stream of this path (the engine's totals for metrics). Default: none. */
  totals: TextPathStats | undefined;
  /** Logger (a child with `streamId` is made per stream). Default: none. */
  logger: Logger | undefined;
}

/** Defaults for {@link TextPathOptions}. */
export const DEFAULT_TEXT_PATH: TextPathOptions = {
  maxWords: 30,
  maxSeconds: 10,
  minWordConf: 0,
  minIntervalMs: 1_000,
  maxPendingMs: 10_000,
  maxAcceptMs: 1_000,
  scaleByWordConf: true,
  offlineMaxPendingMs: 600_000,
  totals: undefined,
  logger: undefined,
};

/** Per-stream options of the text path (given by the pipeline's caller). */
export interface TextPathStreamOptions {
  /**
   * An offline input (lossless, paced by a flow): deterministic progress and a large pending
   * bound (see the module comment). Default false (live).
   */
  offline: boolean;
  /**
   * Offline: audio per recogniser call, ms. Must not exceed what the paced source runs ahead of
   * fusion (the engine uses the hop, min 1000), or fusion waits on audio the source holds back.
   * Default: the path's maxAcceptMs.
   */
  acceptMs: number | undefined;
}

/** Defaults for {@link TextPathStreamOptions}. */
export const DEFAULT_TEXT_PATH_STREAM: TextPathStreamOptions = { offline: false, acceptMs: undefined };

/** Counters of one stream's text path (live object: read it any time). */
export interface TextPathStats {
  /** Audio samples dropped because the recogniser fell behind by more than maxPendingMs. */
  droppedSamples: number;
  /** Text windows replaced by a newer one before the model saw them. */
  coalescedWindows: number;
  /** Text model calls that failed (window skipped). */
  textModelErrors: number;
}

/** What the text path gives the pipeline for one stream. */
export interface TextPathStreams {
  /** Partial and final transcripts in stream audio time. */
  readonly transcripts$: Observable<TranscriptEvent>;
  /** Text affect estimates (empty when there is no text model). */
  readonly estimates$: Observable<Stamped<TextAffectOutput>>;
  /** At most one error: the ASR failed and this stream is now speech-only (publish a 'degraded' status). */
  readonly errors$: Observable<AffectError>;
  /**
   * Audio ms before which every transcript and text estimate of the stream has been emitted (the
   * recogniser has heard up to here and the text model has scored every window up to here);
   * completes when the path does. Offline streams only: for a live stream it never emits and
   * completes with the path (live fusion never waits for text).
   */
  readonly progress$: Observable<number>;
  /** Counters for logs and metrics. */
  readonly stats: TextPathStats;
}

/** Wraps an error of the audio source, which the text path passes on instead of degrading. */
class UpstreamAudioError extends Error {
  constructor(override readonly cause: unknown) {
    super('audio source failed');
  }
}

/** The estimate with its confidence multiplied by `k` (0..1). */
function scaleConfidence(est: Stamped<TextAffectOutput>, k: number): Stamped<TextAffectOutput> {
  const f = Number.isFinite(k) ? Math.min(1, Math.max(0, k)) : 0;
  return f === 1 ? est : { ...est, value: { ...est.value, confidence: est.value.confidence * f } };
}

type PathEvent =
  | { readonly kind: 'transcript'; readonly ev: TranscriptEvent }
  | { readonly kind: 'estimate'; readonly est: Stamped<TextAffectOutput> }
  | { readonly kind: 'error'; readonly err: AffectError }
  | { readonly kind: 'progress'; readonly ms: number };

/**
 * Progress is reported a hair below the audio heard: the recogniser's final flush (`finish`) adds
 * words stamped at exactly the end of the audio heard, so only what lies before it is settled.
 */
const PROGRESS_EPSILON_MS = 1e-3;

/** Least audio time (ms) between two 'text model call failed' log lines of one stream. */
export const TEXT_ERROR_LOG_EVERY_MS = 10_000;

/**
 * Builds the text path. `createTextPath(asr, textModel, opts)(streamId)` is the pipeline's
 * `deps.textPath`. Subscribe to `transcripts$`, `estimates$` and `errors$` in the same tick (the
 * pipeline does, inside `connect`): they share one recogniser.
 */
export function createTextPath(
  asr: SpeechRecognizerFactory,
  textModel: TextAffectModel | undefined,
  opts: Partial<TextPathOptions> = {},
): (streamId: string, streamOpts?: Partial<TextPathStreamOptions>) => (audio$: Observable<AudioChunk>) => TextPathStreams {
  const o = { ...DEFAULT_TEXT_PATH, ...opts };
  if (!(o.offlineMaxPendingMs > 0)) throw new RangeError(`createTextPath: offlineMaxPendingMs must be > 0, got ${o.offlineMaxPendingMs}`);
  const windowOpts = textWindowOptions({ maxWords: o.maxWords, maxSeconds: o.maxSeconds, minWordConf: o.minWordConf });
  if (!(o.minIntervalMs >= 0)) throw new RangeError(`createTextPath: minIntervalMs must be >= 0, got ${o.minIntervalMs}`);

  return (streamId, streamOpts = {}) =>
    (audio$) => {
      const so = { ...DEFAULT_TEXT_PATH_STREAM, ...streamOpts };
      const acceptMs = so.offline ? (so.acceptMs ?? o.maxAcceptMs) : o.maxAcceptMs;
      if (!(acceptMs > 0)) throw new RangeError(`createTextPath: acceptMs must be > 0, got ${acceptMs}`);
      const log = o.logger?.child({ streamId, stage: 'asr' });
      const stats: TextPathStats = { droppedSamples: 0, coalescedWindows: 0, textModelErrors: 0 };
      const totals = o.totals;

      const events$ = defer(() => {
        // Created now, awaited by the first accept: audio meanwhile waits in transcribe's bounded buffer.
        const created = asr.create(streamId);
        // A create() that fails before the first accept must not be an unhandled rejection.
        created.catch(() => undefined);
        let rec: StreamRecognizer | undefined;

        // Offline sync: text model calls in flight, and who waits for them to be done.
        let textInFlight = 0;
        let idleWaiters: Array<() => void> = [];
        /** Progress held back while the text model scores a window that belongs before it. */
        let heldProgress: number | undefined;
        const progress = new Subject<number>();
        const onTextIdle = (): void => {
          if (heldProgress !== undefined) {
            const ms = heldProgress;
            heldProgress = undefined;
            progress.next(ms);
          }
          const w = idleWaiters;
          idleWaiters = [];
          for (const f of w) f();
        };
        // Offline: the recogniser's next call waits until the text model has scored what the last
        // call produced, so windows never race the recogniser (no wall-clock-dependent coalescing).
        const whenTextIdle = (): Observable<unknown> =>
          !so.offline || textInFlight === 0 ? of(0) : from(new Promise<void>((resolve) => idleWaiters.push(resolve)));
        const lazy: TranscribeRecognizer = {
          accept: (samples) =>
            whenTextIdle().pipe(
              switchMap(() => from(created)),
              tap((r) => (rec = r)),
              switchMap((r): Promise<RecognizerResult> => r.accept(samples)),
            ),
          finish: () =>
            whenTextIdle().pipe(
              switchMap(() => from(created)),
              switchMap((r) => r.finish()),
            ),
        };
        const countedModel: TextInferer | undefined = textModel && {
          infer: (text: string) =>
            defer(() => {
              textInFlight++;
              // finalize runs after inferText has taken the result (and maybe started the next,
              // coalesced window synchronously, which keeps the count above zero).
              return from(textModel.infer(text)).pipe(
                finalize(() => {
                  if (--textInFlight === 0) onTextIdle();
                }),
              );
            }),
        };
        /** Audio ms the recogniser has heard: the clock that ages words out and paces the text model. */
        const clock = new Subject<number>();
        let heardMs = 0;
        /** Audio ms of the last 'text model call failed' line. */
        let lastErrorLogMs: number | undefined;
        /** Mean word confidence of recent text windows, by window time (bounded). */
        const wordConfAt = new Map<number, number>();
        const transcribed$ = audio$.pipe(
          // An error of the audio itself is not an ASR failure: mark it so it passes through below.
          catchError((e: unknown) => throwError(() => new UpstreamAudioError(e))),
          transcribe(lazy, {
            maxPendingMs: so.offline ? Math.max(o.offlineMaxPendingMs, acceptMs) : o.maxPendingMs,
            maxAcceptMs: acceptMs,
            wholeAccepts: so.offline,
            onDropped: (n, total) => {
              stats.droppedSamples = total;
              if (totals) totals.droppedSamples += n;
              // Log the first drop, then at most once per 5 s of audio dropped (no log floods).
              if (total - n === 0 || Math.floor(total / 80_000) > Math.floor((total - n) / 80_000)) {
                log?.warn({ droppedSamples: n, totalDroppedSamples: total }, 'ASR fell behind: oldest audio dropped');
              }
            },
            onProgress: (ms) => {
              heardMs = ms;
              clock.next(ms);
              // Everything the recogniser said up to `ms` has been emitted and windowed (synchronously,
              // above); text windows it started are in the model. Report once they are scored.
              if (!so.offline) return;
              const settled = Math.max(0, ms - PROGRESS_EPSILON_MS);
              if (textInFlight === 0) progress.next(settled);
              else heldProgress = settled;
            },
          }),
        );
        // Ends progress (fusion stops waiting) once the last estimate is out.
        const endProgress = tap<PathEvent>({ complete: () => progress.complete() });
        return transcribed$.pipe(
          connect((t$) =>
            merge(
              t$.pipe(map((ev): PathEvent => ({ kind: 'transcript', ev }))),
              progress.pipe(map((ms): PathEvent => ({ kind: 'progress', ms }))),
              countedModel
                ? t$.pipe(
                    textWindowDetail(windowOpts, clock),
                    // Remember each window's word confidence by its time (inferText keeps the time).
                    tap((w) => {
                      wordConfAt.set(w.tMs, w.value.meanConf);
                      if (wordConfAt.size > 256) wordConfAt.delete(wordConfAt.keys().next().value!);
                    }),
                    map((w): Stamped<string> => ({ streamId: w.streamId, tMs: w.tMs, value: w.value.text })),
                    inferText(
                      countedModel,
                      {
                        // Offline: every window is scored (a held-back window would be scored later
                        // but stamped earlier, after fusion may have moved past it).
                        minIntervalMs: so.offline ? 0 : o.minIntervalMs,
                        onCoalesced: (n) => {
                          stats.coalescedWindows = n;
                          if (totals) totals.coalescedWindows++;
                        },
                        onError: (err) => {
                          stats.textModelErrors++;
                          if (totals) totals.textModelErrors++;
                          // A broken text model fails every window, about one a second per stream (400
                          // warn lines a second at 400 tracks): log the first, then at most one per
                          // TEXT_ERROR_LOG_EVERY_MS of audio, with the stream's count so far.
                          if (lastErrorLogMs === undefined || heardMs - lastErrorLogMs >= TEXT_ERROR_LOG_EVERY_MS) {
                            lastErrorLogMs = heardMs;
                            log?.warn({ err: (err as Error).message, textModelErrors: stats.textModelErrors }, 'text model call failed; window skipped');
                          }
                        },
                      },
                      clock,
                    ),
                    map((est) => (o.scaleByWordConf ? scaleConfidence(est, wordConfAt.get(est.tMs) ?? 1) : est)),
                    map((est): PathEvent => ({ kind: 'estimate', est })),
                    endProgress,
                  )
                : t$.pipe(ignoreElements(), endProgress),
            ),
          ),
          catchError((e: unknown) => {
            if (e instanceof UpstreamAudioError) return throwError(() => e.cause);
            const err = toAffectError(e, 'AFFECT_ERR_ASR', 'asr');
            log?.error({ code: err.code, err: err.message }, 'speech recognition failed; stream continues speech-only');
            const out: PathEvent[] = [{ kind: 'error', err }];
            // Tell fusion there is no text any more, rather than leaving the last estimate to age out.
            if (textModel) out.unshift({ kind: 'estimate', est: { streamId, tMs: heardMs, value: NO_TEXT_ESTIMATE } });
            return of(...out);
          }),
          finalize(() => {
            clock.complete();
            progress.complete();
            // Nothing waits on the text model any more.
            const w = idleWaiters;
            idleWaiters = [];
            for (const f of w) f();
            // Frees the recogniser (libvosk: deferred in the host until an in-flight accept returns).
            if (rec) void rec.close();
            else
              created.then(
                (r) => r.close(),
                () => undefined,
              );
          }),
        );
      }).pipe(share());

      return {
        transcripts$: events$.pipe(
          filter((e): e is Extract<PathEvent, { kind: 'transcript' }> => e.kind === 'transcript'),
          map((e) => e.ev),
        ),
        estimates$: events$.pipe(
          filter((e): e is Extract<PathEvent, { kind: 'estimate' }> => e.kind === 'estimate'),
          map((e) => e.est),
        ),
        errors$: events$.pipe(
          filter((e): e is Extract<PathEvent, { kind: 'error' }> => e.kind === 'error'),
          map((e) => e.err),
        ),
        progress$: events$.pipe(
          filter((e): e is Extract<PathEvent, { kind: 'progress' }> => e.kind === 'progress'),
          map((e) => e.ms),
        ),
        stats,
      };
    };
}
