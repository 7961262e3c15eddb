/**
 * `textWindow`: last N words / N seconds of finals + current partial, emitted only on change,
 * and words ageing out with the audio clock during silence.
 */
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { textWindow, textWindowDetail } from '../../streams/operators/text-window.js';
import type { Stamped, TimedWord, TranscriptEvent } from '../../core/types.js';

const sched = () => new TestScheduler((a, e) => expect(a).toEqual(e));

/** Words spaced 300 ms apart starting at `startMs`. */
function words(startMs: number, ...ws: string[]): TimedWord[] {
  return ws.map((word, i) => ({ word, startMs: startMs + i * 300, endMs: startMs + i * 300 + 250, conf: 1 }));
}
function ev(tMs: number, final: boolean, w: TimedWord[]): TranscriptEvent {
  return { streamId: 's1', tMs, final, text: w.map((x) => x.word).join(' '), words: w };
}
const st = (tMs: number, value: string): Stamped<string> => ({ streamId: 's1', tMs, value });

describe('textWindow (marble)', () => {
  it('joins finals and the current partial, and emits only when the text changes', () => {
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a b c d e|', {
        a: ev(500, false, words(0, 'i')),
        b: ev(800, false, words(0, 'i')), // same words, later: no emission
        c: ev(1000, false, words(0, 'i', 'am')),
        d: ev(1200, true, words(0, 'i', 'am', 'glad')),
        e: ev(1500, false, words(1300, 'today')),
      });
      expectObservable(src.pipe(textWindow({ maxWords: 30, maxSeconds: 10 }))).toBe('a - c d e|', {
        a: st(500, 'i'),
        c: st(1000, 'i am'),
        d: st(1200, 'i am glad'),
        e: st(1500, 'i am glad today'),
      });
    });
  });

  it('keeps only the last maxWords words', () => {
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a b|', {
        a: ev(1000, true, words(0, 'one', 'two', 'three')),
        b: ev(2000, false, words(1000, 'four', 'five')),
      });
      expectObservable(src.pipe(textWindow({ maxWords: 3, maxSeconds: 60 }))).toBe('a b|', {
        a: st(1000, 'one two three'),
        b: st(2000, 'three four five'),
      });
    });
  });

  it('ages words out by audio time: the clock empties the window after maxSeconds of silence', () => {
    sched().run(({ cold, hot, expectObservable }) => {
      // "hello" ends at 250 ms; with maxSeconds 2 it leaves the window once audio time passes 2250 ms.
      const src = cold('a 9ms ---------|', { a: ev(300, true, words(0, 'hello')) });
      const clock = hot('-- 2ms x 2ms y 2ms z', { x: 1000, y: 2200, z: 2300 });
      expectObservable(src.pipe(textWindow({ maxWords: 10, maxSeconds: 2 }, clock))).toBe('a 9ms z 8ms |', {
        a: st(300, 'hello'),
        z: st(2300, ''),
      });
    });
  });

  it('leaves out final words under minWordConf', () => {
    sched().run(({ cold, expectObservable }) => {
      const w = words(0, 'yes', 'mumble');
      const src = cold('a|', { a: ev(700, true, [w[0]!, { ...w[1]!, conf: 0.2 }]) });
      expectObservable(src.pipe(textWindow({ minWordConf: 0.5 }))).toBe('a|', { a: st(700, 'yes') });
    });
  });

  it('textWindowDetail carries the words and their mean confidence (0 for an empty window)', () => {
    sched().run(({ cold, hot, expectObservable }) => {
      const w = words(0, 'so', 'what');
      const src = cold('a 9ms -|', {
        a: ev(700, true, [
          { ...w[0]!, conf: 0.4 },
          { ...w[1]!, conf: 0.8 },
        ]),
      });
      const clock = hot('-- 4ms x', { x: 60_000 });
      expectObservable(src.pipe(textWindowDetail({ maxSeconds: 5 }, clock))).toBe('a 5ms e 4ms |', {
        a: {
          streamId: 's1',
          tMs: 700,
          value: {
            text: 'so what',
            words: [
              { ...w[0]!, conf: 0.4 },
              { ...w[1]!, conf: 0.8 },
            ],
            meanConf: 0.6000000000000001,
          },
        },
        e: { streamId: 's1', tMs: 60_000, value: { text: '', words: [], meanConf: 0 } },
      });
    });
  });

  it('rejects bad options with a RangeError naming the option', () => {
    expect(() => textWindow({ maxWords: 0 })).toThrow(/maxWords/);
    expect(() => textWindow({ maxSeconds: -1 })).toThrow(/maxSeconds/);
    expect(() => textWindow({ minWordConf: 2 })).toThrow(/minWordConf/);
  });
});
