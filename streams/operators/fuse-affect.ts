/**
 * Fusion stage: each speech estimate is combined with the latest text estimate that is not newer
 * than the window (in audio time) and not stale, through the FusionModel port.
 */
import { concatMap, from, map, Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { FusionInput, TextAffectOutput } from '../../models/ports.js';
import type { AffectEstimate, ModalityEstimate, Stamped } from '../types.js';
import type { SpeechWindowEstimate } from './infer-speech.js';

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
}

export const DEFAULT_FUSE_AFFECT: FuseAffectOptions = { textMaxAgeMs: 8000, maxTextBuffer: 64 };

/** Just the three numbers of a modality (drops embeddings and label lists). */
export function modalityOf(e: ModalityEstimate): ModalityEstimate {
  return { valence: e.valence, arousal: e.arousal, confidence: e.confidence };
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

/** SpeechWindowEstimate → AffectEstimate via the fusion model; order and audio time are kept. */
export function fuseAffect(fusion: Fuser, opts: Partial<FuseAffectOptions> = {}): OperatorFunction<SpeechWindowEstimate, AffectEstimate> {
  const o = { ...DEFAULT_FUSE_AFFECT, ...opts };
  if (!(o.textMaxAgeMs >= 0)) throw new RangeError(`fuseAffect: textMaxAgeMs must be >= 0, got ${o.textMaxAgeMs}`);
  if (!Number.isInteger(o.maxTextBuffer) || o.maxTextBuffer < 1) throw new RangeError(`fuseAffect: maxTextBuffer must be an integer >= 1, got ${o.maxTextBuffer}`);
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
      // concatMap keeps order; its buffer is bounded by the model stage upstream, which emits at
      // most one estimate per inference.
      const main = source
        .pipe(
          concatMap((s) => {
            const text = pickText(texts, s.tMs, o.textMaxAgeMs)?.value;
            const input: FusionInput = text ? { speech: s.speech, text } : { speech: s.speech };
            return from(fusion.fuse(input)).pipe(
              map(
                (f): AffectEstimate => ({
                  streamId: s.streamId,
                  tMs: s.tMs,
                  windowIndex: s.windowIndex,
                  valence: f.valence,
                  arousal: f.arousal,
                  confidence: f.confidence,
                  speech: modalityOf(s.speech),
                  ...(text ? { text: modalityOf(text) } : {}),
                  droppedWindows: s.droppedWindows,
                }),
              ),
            );
          }),
        )
        .subscribe(sub);
      return () => {
        main.unsubscribe();
        textSub?.unsubscribe();
      };
    });
}
