import { describe, expect, it } from 'vitest';
import { map, throwError, timer, mergeMap } from 'rxjs';
import { inferSpeech, fitWindow } from '../../streams/operators/infer-speech.js';
import { AffectError } from '../../core/errors.js';
import { FlowControl } from '../../streams/flow.js';
import type { SpeechWindowEstimate } from '../../streams/operators/infer-speech.js';
import { createTestScheduler, fakeSpeech, window } from './core-helpers.js';

// Windows a..f every 10 ms of virtual time; the fake model takes 24 ms, so it cannot keep up.
const W = { a: window(0, 100), b: window(1, 110), c: window(2, 120), d: window(3, 130), e: window(4, 140), f: window(5, 150) };
const SRC = 'a 9ms b 9ms c 9ms d 9ms e 9ms f|';
const brief = map((e: SpeechWindowEstimate) => ({ i: e.windowIndex, tMs: e.tMs, dropped: e.droppedWindows, v: e.speech.valence }));
const out = (i: number, dropped: number) => ({ i, tMs: 100 + 10 * i, dropped, v: i / 10 });

describe('inferSpeech drop policy (marble)', () => {
  it("'drop' skips windows that arrive while the model is busy and counts them on the next estimate", () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // a: 0→24. b, c dropped. d: 30→54. e, f dropped; nothing follows them.
      expectObservable(cold(SRC, W).pipe(inferSpeech(fakeSpeech(24), { whenBusy: 'drop' }), brief)).toBe('24ms a 29ms (d|)', { a: out(0, 0), d: out(3, 2) });
    });
  });

  it("'latest' keeps only the newest waiting window (coalescing), in audio time", () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // a 0→24; c replaces b; c 24→48; e replaces d; e 48→72; f 72→96.
      expectObservable(cold(SRC, W).pipe(inferSpeech(fakeSpeech(24), { whenBusy: 'latest' }), brief)).toBe('24ms a 23ms c 23ms e 23ms (f|)', {
        a: out(0, 0),
        c: out(2, 1),
        e: out(4, 1),
        f: out(5, 0),
      });
    });
  });

  it("'queue' keeps up to maxQueue windows and drops the oldest on overflow", () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // a 0→24; queue [b,c]; e pushes c out; b 24→48; d 48→72; e 72→96; f 96→120.
      expectObservable(cold(SRC, W).pipe(inferSpeech(fakeSpeech(24), { whenBusy: 'queue', maxQueue: 2 }), brief)).toBe(
        '24ms a 23ms b 23ms d 23ms e 23ms (f|)',
        {
          a: out(0, 0),
          b: out(1, 0),
          d: out(3, 1),
          e: out(4, 0),
          f: out(5, 0),
        },
      );
    });
  });

  it('loses nothing when the model keeps up', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold(SRC, W).pipe(inferSpeech(fakeSpeech(5), { whenBusy: 'drop' }), brief)).toBe('5ms a 9ms b 9ms c 9ms d 9ms e 9ms (f|)', {
        a: out(0, 0),
        b: out(1, 0),
        c: out(2, 0),
        d: out(3, 0),
        e: out(4, 0),
        f: out(5, 0),
      });
    });
  });

  it('with maxInFlight 2, emits in window order even when a later window finishes first', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // a takes 30 ms, b 5 ms: b is done at 15 but waits for a (30).
      const src = cold('a 9ms b|', { a: window(0, 100), b: window(1, 110) });
      const model = fakeSpeech((v) => (v === 0 ? 30 : 5));
      expectObservable(src.pipe(inferSpeech(model, { maxInFlight: 2, whenBusy: 'drop' }), brief)).toBe('30ms (ab|)', { a: out(0, 0), b: out(1, 0) });
    });
  });

  it('drops a window whose inference fails recoverably and counts it; a fatal error ends the stream', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const flaky = {
        windowSamples: null,
        infer: (s: Float32Array) =>
          s[0] === 1
            ? timer(5).pipe(mergeMap(() => throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'one bad batch', { recoverable: true }))))
            : fakeSpeech(5).infer(s),
      };
      const src = cold('a 9ms b 9ms c|', { a: window(0, 100), b: window(1, 110), c: window(2, 120) });
      expectObservable(src.pipe(inferSpeech(flaky, { whenBusy: 'drop' }), brief)).toBe('5ms a 19ms (c|)', { a: out(0, 0), c: out(2, 1) });

      const fatal = {
        windowSamples: null,
        infer: () => timer(5).pipe(mergeMap(() => throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'worker died')))),
      };
      expectObservable(cold('a|', { a: window(0, 100) }).pipe(inferSpeech(fatal))).toBe(
        '5ms #',
        undefined,
        new AffectError('AFFECT_ERR_INFERENCE', 'worker died'),
      );
    });
  });

  it('holds flow credits for accepted windows and releases them all', () => {
    createTestScheduler().run(({ cold, expectObservable, flush }) => {
      const flow = new FlowControl({ highWater: 2 });
      const seen: number[] = [];
      const src = cold(SRC, W).pipe(map((w) => (seen.push(flow.pending), w)));
      expectObservable(
        src.pipe(
          inferSpeech(fakeSpeech(24), { whenBusy: 'queue', maxQueue: 8, flow }),
          map((e) => e.windowIndex),
        ),
      ).toBe('24ms a 23ms b 23ms c 23ms d 23ms e 23ms (f|)', { a: 0, b: 1, c: 2, d: 3, e: 4, f: 5 });
      flush();
      // Pending grows while the model lags (a source would pause at highWater) and returns to 0.
      expect(Math.max(...seen)).toBeGreaterThanOrEqual(2);
      expect(flow.pending).toBe(0);
    });
  });

  it('pads or crops windows to the model length (newest samples kept)', () => {
    const s = Float32Array.from([1, 2, 3, 4]);
    expect(Array.from(fitWindow(s, 2))).toEqual([3, 4]);
    expect(Array.from(fitWindow(s, 6))).toEqual([1, 2, 3, 4, 0, 0]);
    expect(fitWindow(s, null)).toBe(s);
  });

  it('rejects bad options', () => {
    expect(() => inferSpeech(fakeSpeech(1), { maxInFlight: 0 })).toThrow(/maxInFlight must be an integer >= 1, got 0/);
    expect(() => inferSpeech(fakeSpeech(1), { maxQueue: 0 })).toThrow(/maxQueue/);
    expect(() => inferSpeech(fakeSpeech(1), { whenBusy: 'wait' as never })).toThrow(/whenBusy/);
  });
});
