/**
 * `textWindow`: the recent words of a running transcript (finals plus the current partial), cut
 * to the last `maxSeconds` of audio time and the last `maxWords` words, emitted only when the
 * windowed text changes.
 *
 * Words age out of the window as audio time passes, not only when new words arrive: pass the
 * stream's audio clock (`clock$`, ms of audio seen) and a silent stretch longer than
 * `maxSeconds` empties the window, which the text model turns into confidence 0 (speech-only).
 */
import { EMPTY, map, Observable, type OperatorFunction } from 'rxjs';
import type { Stamped, TimedWord, TranscriptEvent } from '../../core/types.js';

/** Options of {@link textWindow}. */
export interface TextWindowOptions {
  /** Most words in the window. Default 30. */
  maxWords: number;
  /** Audio span of the window, in seconds: a word stays while its end is this recent. Default 10. */
  maxSeconds: number;
  /** Final words with a recogniser confidence below this are left out (partials carry no real confidence). Default 0. */
  minWordConf: number;
}

/** Defaults for {@link TextWindowOptions}. */
export const DEFAULT_TEXT_WINDOW: TextWindowOptions = { maxWords: 30, maxSeconds: 10, minWordConf: 0 };

/** Validates and merges {@link TextWindowOptions}. */
export function textWindowOptions(opts: Partial<TextWindowOptions> = {}): TextWindowOptions {
  const o = { ...DEFAULT_TEXT_WINDOW, ...opts };
  if (!(Number.isInteger(o.maxWords) && o.maxWords > 0)) throw new RangeError(`textWindow: maxWords must be an integer > 0, got ${o.maxWords}`);
  if (!(o.maxSeconds > 0)) throw new RangeError(`textWindow: maxSeconds must be > 0, got ${o.maxSeconds}`);
  if (!(o.minWordConf >= 0 && o.minWordConf <= 1)) throw new RangeError(`textWindow: minWordConf must be in [0, 1], got ${o.minWordConf}`);
  return o;
}

/** Words of an event; a result without word timings is stamped at the event's time. */
function wordsOf(ev: TranscriptEvent): readonly TimedWord[] {
  if (ev.words.length > 0 || ev.text === '') return ev.words;
  return ev.text
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => ({ word, startMs: ev.tMs, endMs: ev.tMs, conf: 1 }));
}

/** What a text window holds: its text, its words, and their mean recogniser confidence. */
export interface TextWindowValue {
  readonly text: string;
  readonly words: readonly TimedWord[];
  /** Mean word confidence in [0, 1]; 0 for an empty window. */
  readonly meanConf: number;
}

/**
 * Like {@link textWindow}, but each emission carries the window's words and their mean
 * confidence (the text path scales the text model's confidence by it, so mumbled or foreign
 * speech that the recogniser forces into English words counts for less).
 */
export function textWindowDetail(
  opts: Partial<TextWindowOptions> = {},
  clock$: Observable<number> = EMPTY,
): OperatorFunction<TranscriptEvent, Stamped<TextWindowValue>> {
  const { maxWords, maxSeconds, minWordConf } = textWindowOptions(opts);
  const spanMs = maxSeconds * 1000;
  return (source) =>
    new Observable<Stamped<TextWindowValue>>((subscriber) => {
      /** Final words, newest last, bounded: only the last maxWords can ever be in the window. */
      let finals: TimedWord[] = [];
      let partial: readonly TimedWord[] = [];
      let streamId: string | undefined;
      let nowMs = 0;
      let lastText = '';

      const update = (): void => {
        if (streamId === undefined) return; // nothing has been said yet
        const since = nowMs - spanMs;
        const words = [...finals, ...partial].filter((w) => w.endMs >= since).slice(-maxWords);
        const text = words.map((w) => w.word).join(' ');
        if (text === lastText) return;
        lastText = text;
        const meanConf = words.length === 0 ? 0 : words.reduce((a, w) => a + (Number.isFinite(w.conf) ? w.conf : 0), 0) / words.length;
        subscriber.next({ streamId, tMs: nowMs, value: { text, words, meanConf } });
      };

      const clockSub = clock$.subscribe({
        next: (ms) => {
          if (ms > nowMs) {
            nowMs = ms;
            update();
          }
        },
        error: (err: unknown) => subscriber.error(err),
      });
      const sub = source.subscribe({
        next: (ev) => {
          streamId = ev.streamId;
          nowMs = Math.max(nowMs, ev.tMs);
          const words = wordsOf(ev);
          if (ev.final) {
            finals.push(...words.filter((w) => w.conf >= minWordConf));
            if (finals.length > maxWords) finals = finals.slice(-maxWords);
            partial = [];
          } else {
            partial = words;
          }
          update();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        clockSub.unsubscribe();
        sub.unsubscribe();
      };
    });
}

/**
 * Windows a stream's transcript events into text. `clock$` (optional) emits audio ms as audio
 * is recognised, so words age out during silence; the operator completes with its source.
 */
export function textWindow(opts: Partial<TextWindowOptions> = {}, clock$: Observable<number> = EMPTY): OperatorFunction<TranscriptEvent, Stamped<string>> {
  const detail = textWindowDetail(textWindowOptions(opts), clock$);
  return (source) =>
    source.pipe(
      detail,
      map((w) => ({ streamId: w.streamId, tMs: w.tMs, value: w.value.text })),
    );
}
