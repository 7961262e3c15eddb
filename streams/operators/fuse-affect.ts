/**
 * Fusion stage: each speech estimate is combined with the latest text estimate that is not newer
 * than the window (in audio time) and not stale, through the FusionModel port.
 *
 * A window the speech stage skipped as unvoiced (UnvoicedWindowEstimate, streams/operators/infer-speech.ts)
 * is not fused: it goes on, in order, as an estimate with no information (valence and arousal 0,
 * confidence 0, no speech part; the text part when there is one), which the smoother holds.
 */
import { from, Observable, timer, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import type { FlowControl } from '../flow.js';
import { AffectError } from '../../core/errors.js';
import type { FusionInput, TextAffectOutput } from '../../models/ports.js';
import type { AffectEstimate, ModalityEstimate, Stamped } from '../../core/types.js';
import type { SpeechWindowEstimate, UnvoicedWindowEstimate } from './infer-speech.js';

/** The part of FusionModel the stage needs (fakes may return an Observable). */
export interface Fuser {
  fuse(input: FusionInput): ObservableInput<ModalityEstimate>;
}

/** Options for {@link fuseAffect}. */
export interface FuseAffectOptions {
  /** Text estimates of the same stream, stamped with the audio time of their text window's end. */
  estimates$?: Observable<Stamped<TextAffectOutput>>;
  /** A text estimate older than this (ms of audio before the window) is ignored. Default 8000. */
  textMaxAgeMs: number;
  /** Text estimates kept for lookup (bounded). Default 64. */
  maxTextBuffer: number;
  /** Speech estimates waiting for the fusion model; past it the oldest is dropped and counted. Default 16. */
  maxBacklog: number;
  /** Credit counter of an offline run: held while an estimate waits for or is in fusion. */
  flow?: FlowControl;
  /**
   * The text path's progress: audio ms up to which every text estimate has been emitted. With
   * `waitForText`, a window at tMs is fused only once progress reaches tMs (or the progress stream
   * ends), so offline runs fuse the same text every time and, holding their flow credits, slow the
   * source down to the speed of the ASR instead of letting it fall behind.
   */
  textProgress$?: Observable<number>;
  /** Wait for `textProgress$` before fusing (offline runs). Default false (live: never wait). */
  waitForText: boolean;
  /** Longest wait for text progress per window, wall-clock ms (a safety valve). Default 5000. */
  textWaitMaxMs: number;
}

export const DEFAULT_FUSE_AFFECT: FuseAffectOptions = { textMaxAgeMs: 8000, maxTextBuffer: 64, maxBacklog: 16, waitForText: false, textWaitMaxMs: 5000 };

/** Just the numbers of a modality: valence, arousal, confidence and dominance when finite (drops embeddings, label lists, sigma). */
export function modalityOf(e: ModalityEstimate): ModalityEstimate {
  const m = { valence: e.valence, arousal: e.arousal, confidence: e.confidence };
  return e.dominance !== undefined && Number.isFinite(e.dominance) ? { ...m, dominance: Math.max(-1, Math.min(1, e.dominance)) } : m;
}

/** Picks the newest text estimate with `tMs <= atMs` and `atMs - tMs <= maxAgeMs`; `sorted` is by tMs ascending. */
export function pickText(sorted: ReadonlyArray<Stamped<TextAffectOutput>>, atMs: number, maxAgeMs: number): Stamped<TextAffectOutput> | undefined {
  for (let i = sorted.length - 1; i >= 0; i--) {
    const t = sorted[i];
    if (!t || t.tMs > atMs) continue;
    return atMs - t.tMs <= maxAgeMs ? t : undefined;
  }
  return undefined;
}

/** Validates and completes the fusion stage's options (RangeError naming the option). */
export function resolveFuseAffectOptions(opts: Partial<FuseAffectOptions> = {}): FuseAffectOptions {
  const o = { ...DEFAULT_FUSE_AFFECT, ...opts };
  if (!(o.textMaxAgeMs >= 0)) throw new RangeError(`fuseAffect: textMaxAgeMs must be >= 0, got ${o.textMaxAgeMs}`);
  if (!Number.isInteger(o.maxTextBuffer) || o.maxTextBuffer < 1)
    throw new RangeError(`fuseAffect: maxTextBuffer must be an integer >= 1, got ${o.maxTextBuffer}`);
  if (!Number.isInteger(o.maxBacklog) || o.maxBacklog < 1) throw new RangeError(`fuseAffect: maxBacklog must be an integer >= 1, got ${o.maxBacklog}`);
  if (!(o.textWaitMaxMs >= 0)) throw new RangeError(`fuseAffect: textWaitMaxMs must be >= 0, got ${o.textWaitMaxMs}`);
  return o;
}

/** SpeechWindowEstimate → AffectEstimate via the fusion model; order and audio time are kept. */
export function fuseAffect(
  fusion: Fuser,
  opts: Partial<FuseAffectOptions> = {},
): OperatorFunction<SpeechWindowEstimate | UnvoicedWindowEstimate, AffectEstimate> {
  const o = resolveFuseAffectOptions(opts);
  return (source) =>
    new Observable<AffectEstimate>((sub) => {
      const texts: Array<Stamped<TextAffectOutput>> = [];
      const textSub = o.estimates$?.subscribe({
        next: (t) => {
          if (!Number.isFinite(t.tMs)) return;
          // Insert in audio-time order (text windows usually arrive in order; this keeps it robust).
          let i = texts.length;
          while (i > 0 && (texts[i - 1]?.tMs ?? -Infinity) > t.tMs) i--;
          texts.splice(i, 0, t);
          if (texts.length > o.maxTextBuffer) texts.shift();
        },
        // A failing text path must not end the affect stream: speech goes on alone.
        error: () => undefined,
      });
      // One fusion at a time, in order, with a bounded backlog: a slow (learned, ONNX) fusion model
      // drops the oldest waiting estimates and counts them, like the speech stage does.
      const backlog: Array<SpeechWindowEstimate | UnvoicedWindowEstimate> = [];
      let busy: Subscription | undefined;
      let carry = 0;
      let done = false;
      // Text progress (offline sync): fuse window T only once the text path is done up to T.
      let textHeardMs = -Infinity;
      let textEnded = !(o.waitForText && o.textProgress$);
      let waitTimer: Subscription | undefined;
      const progressSub =
        o.waitForText && o.textProgress$
          ? o.textProgress$.subscribe({
              next: (ms) => {
                if (ms > textHeardMs) textHeardMs = ms;
                next();
              },
              error: () => {
                textEnded = true;
                next();
              },
              complete: () => {
                textEnded = true;
                next();
              },
            })
          : undefined;
      function next(): void {
        if (busy) return;
        const head = backlog[0];
        if (head && !textEnded && textHeardMs < head.tMs) {
          // Wait for the text path, but never forever (a stuck ASR must not stall the run).
          waitTimer ??= timer(o.textWaitMaxMs).subscribe(() => {
            textEnded = true;
            next();
          });
          return;
        }
        waitTimer?.unsubscribe();
        waitTimer = undefined;
        const s = backlog.shift();
        if (!s) {
          if (done) sub.complete();
          return;
        }
        const text = pickText(texts, s.tMs, o.textMaxAgeMs)?.value;
        // Drops that happened before this estimate left the backlog belong to it.
        const dropsBefore = carry;
        carry = 0;
        if (s.unvoiced) {
          o.flow?.release();
          sub.next({
            streamId: s.streamId,
            tMs: s.tMs,
            windowIndex: s.windowIndex,
            valence: 0,
            arousal: 0,
            confidence: 0,
            ...(text ? { text: modalityOf(text) } : {}),
            droppedWindows: s.droppedWindows + dropsBefore,
            voiced: s.voiced,
          });
          next();
          return;
        }
        const input: FusionInput = text ? { speech: s.speech, text } : { speech: s.speech };
        let result: ModalityEstimate | undefined;
        let settled = false;
        const finish = (): void => {
          if (settled) return;
          settled = true;
          busy = undefined;
          o.flow?.release();
          if (result) {
            sub.next({
              streamId: s.streamId,
              tMs: s.tMs,
              windowIndex: s.windowIndex,
              valence: result.valence,
              arousal: result.arousal,
              confidence: result.confidence,
              // Only when the fusion model supplies it (late fusion does when a modality has it; learned fusion does not).
              ...(result.dominance !== undefined && Number.isFinite(result.dominance) ? { dominance: result.dominance } : {}),
              speech: modalityOf(s.speech),
              ...(text ? { text: modalityOf(text) } : {}),
              droppedWindows: s.droppedWindows + dropsBefore,
              ...(s.voiced !== undefined ? { voiced: s.voiced } : {}),
            });
          } else {
            carry += dropsBefore + s.droppedWindows + 1;
          }
          next();
        };
        let inner: ObservableInput<ModalityEstimate>;
        try {
          inner = fusion.fuse(input);
        } catch (err) {
          inner = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        const subscription = from(inner).subscribe({
          next: (v) => {
            result ??= v;
          },
          error: (err: unknown) => {
            // One failed fusion drops that frame (counted); a non-recoverable error ends the stream.
            if (err instanceof AffectError && err.recoverable) finish();
            else sub.error(err);
          },
          complete: finish,
        });
        // A synchronous fusion has already finished (and cleared busy) by now.
        if (!settled) busy = subscription;
      }
      const main = source.subscribe({
        next: (s) => {
          o.flow?.acquire();
          backlog.push(s);
          if (backlog.length > o.maxBacklog) {
            const old = backlog.shift();
            if (old) {
              carry += old.droppedWindows + 1;
              o.flow?.release();
            }
          }
          next();
        },
        error: (err: unknown) => sub.error(err),
        complete: () => {
          done = true;
          if (!busy && backlog.length === 0) sub.complete();
        },
      });
      return () => {
        main.unsubscribe();
        busy?.unsubscribe();
        waitTimer?.unsubscribe();
        progressSub?.unsubscribe();
        textSub?.unsubscribe();
      };
    });
}
