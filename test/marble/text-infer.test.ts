/**
 * `inferText`: one model call in flight, stale windows coalesced (never queued), rate limit in
 * audio time, empty text → confidence 0 without a model call, non-finite outputs → confidence 0.
 */
import { map, throwError, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { TextAffectOutput } from '../../models/ports.js';
import { inferText, NO_TEXT_ESTIMATE, type TextInferer } from '../../streams/operators/infer-text.js';
import type { Stamped } from '../../core/types.js';

const sched = () => new TestScheduler((a, e) => expect(a).toEqual(e));
const st = (tMs: number, value: string): Stamped<string> => ({ streamId: 's1', tMs, value });

/** Valence = text length / 100, after `latencyMs` of virtual time; records what it was asked. */
function fakeText(latencyMs: number, out?: (text: string) => TextAffectOutput) {
  const seen: string[] = [];
  const model: TextInferer = {
    infer: (text) => {
      seen.push(text);
      return timer(latencyMs).pipe(map(() => out?.(text) ?? { valence: text.length / 100, arousal: 0.1, confidence: 0.8 }));
    },
  };
  return { model, seen };
}
const est = (tMs: number, text: string): Stamped<TextAffectOutput> => ({
  streamId: 's1',
  tMs,
  value: { valence: text.length / 100, arousal: 0.1, confidence: 0.8 },
});

describe('inferText (marble)', () => {
  it('coalesces windows that arrive while the model is busy to the newest one', () => {
    const f = fakeText(100);
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 9ms b 9ms c 9ms d 199ms |', {
        a: st(0, 'a'),
        b: st(10, 'bb'),
        c: st(20, 'ccc'),
        d: st(30, 'dddd'),
      });
      // a runs at 0 → out at 100; b, c replaced by d; d runs at 100 → out at 200.
      expectObservable(src.pipe(inferText(f.model, { minIntervalMs: 0 }))).toBe('100ms x 99ms y 29ms |', {
        x: est(0, 'a'),
        y: est(30, 'dddd'),
      });
    });
    expect(f.seen).toEqual(['a', 'dddd']);
  });

  it('rate limits in audio time; a held window runs when the clock reaches the interval', () => {
    const f = fakeText(1);
    sched().run(({ cold, hot, expectObservable }) => {
      // Windows at audio 0, 200, 300 ms; interval 500 ms: "b" is replaced by "c", which waits until
      // the audio clock says 500 ms.
      const src = cold('a 9ms b 9ms c 99ms |', { a: st(0, 'a'), b: st(200, 'b'), c: st(300, 'cc') });
      const clock = hot('-- 48ms x 9ms y', { x: 400, y: 500 });
      expectObservable(src.pipe(inferText(f.model, { minIntervalMs: 500 }, clock))).toBe('1ms x 59ms y 58ms |', {
        x: est(0, 'a'),
        y: est(300, 'cc'),
      });
    });
    expect(f.seen).toEqual(['a', 'cc']);
  });

  it('runs the last held window when the input ends, whatever the rate limit', () => {
    const f = fakeText(5);
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a b|', { a: st(0, 'a'), b: st(100, 'bb') });
      expectObservable(src.pipe(inferText(f.model, { minIntervalMs: 1000 }))).toBe('5ms x 4ms (y|)', {
        x: est(0, 'a'),
        y: est(100, 'bb'),
      });
    });
  });

  it('answers empty text with confidence 0 without calling the model, in order behind a call in flight', () => {
    const f = fakeText(50);
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 9ms e 59ms f 9ms |', { a: st(0, 'hi'), e: st(10, ''), f: st(70, '   ') });
      expectObservable(src.pipe(inferText(f.model, { minIntervalMs: 0 }))).toBe('50ms (xz) 16ms w 9ms |', {
        x: est(0, 'hi'),
        z: { streamId: 's1', tMs: 10, value: NO_TEXT_ESTIMATE },
        w: { streamId: 's1', tMs: 70, value: NO_TEXT_ESTIMATE },
      });
    });
    expect(f.seen).toEqual(['hi']);
  });

  it('maps NaN outputs to confidence 0, clamps ranges, and skips failed calls', () => {
    const errors: unknown[] = [];
    let n = 0;
    const model: TextInferer = {
      infer: () => {
        n++;
        if (n === 1) return timer(1).pipe(map(() => ({ valence: Number.NaN, arousal: 0.5, confidence: 0.9 })));
        if (n === 2) return throwError(() => new Error('model failed'));
        return timer(1).pipe(map(() => ({ valence: 3, arousal: -2, confidence: 7 })));
      },
    };
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 9ms b 9ms c 9ms |', { a: st(0, 'x'), b: st(10, 'y'), c: st(20, 'z') });
      expectObservable(src.pipe(inferText(model, { minIntervalMs: 0, onError: (e) => errors.push(e) }))).toBe('1ms x 19ms y 8ms |', {
        x: { streamId: 's1', tMs: 0, value: { valence: 0, arousal: 0, confidence: 0 } },
        y: { streamId: 's1', tMs: 20, value: { valence: 1, arousal: -1, confidence: 1 } },
      });
    });
    expect(errors).toHaveLength(1);
  });

  it('rejects a negative minIntervalMs with a RangeError naming it', () => {
    expect(() => inferText(fakeText(1).model, { minIntervalMs: -5 })).toThrow(/minIntervalMs/);
  });
});
