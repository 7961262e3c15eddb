import { describe, expect, it } from 'vitest';
import { map } from 'rxjs';
import { windowBySamples, resolveWindowOptions } from '../../streams/operators/window-by-samples.js';
import type { AudioWindow } from '../../core/types.js';
import { chunk, createTestScheduler } from './core-helpers.js';

// 100 ms of audio at 16 kHz.
const C = 1600;
const summary = map((w: AudioWindow) => ({
  index: w.index,
  start: w.startSample,
  end: w.endSample,
  tMs: w.tMs,
  first: w.samples[0],
  last: w.samples[w.samples.length - 1],
  n: w.samples.length,
}));

describe('windowBySamples (marble)', () => {
  it('emits a window each hop once a full window is there, stamped with its end in audio time', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // Chunks of 100 ms every 100 ms of virtual time, values 0..4 so window contents are visible.
      const src = cold('a 99ms b 99ms c 99ms d 99ms e|', {
        a: chunk(0, C, 0),
        b: chunk(C, C, 1),
        c: chunk(2 * C, C, 2),
        d: chunk(3 * C, C, 3),
        e: chunk(4 * C, C, 4),
      });
      expectObservable(src.pipe(windowBySamples({ windowMs: 200, hopMs: 100 }), summary)).toBe('100ms w 99ms x 99ms y 99ms z|', {
        w: { index: 0, start: 0, end: 2 * C, tMs: 200, first: 0, last: 1, n: 2 * C },
        x: { index: 1, start: C, end: 3 * C, tMs: 300, first: 1, last: 2, n: 2 * C },
        y: { index: 2, start: 2 * C, end: 4 * C, tMs: 400, first: 2, last: 3, n: 2 * C },
        z: { index: 3, start: 3 * C, end: 5 * C, tMs: 500, first: 3, last: 4, n: 2 * C },
      });
    });
  });

  it('does not depend on chunk sizes: one big chunk gives the same windows at once', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const big = cold('(a|)', { a: chunk(0, 5 * C, 0.5) });
      expectObservable(
        big.pipe(
          windowBySamples({ windowMs: 200, hopMs: 100, minTailMs: 0 }),
          map((w) => w.tMs),
        ),
      ).toBe('(abcd|)', { a: 200, b: 300, c: 400, d: 500 });
    });
  });

  it('covers an end-of-input tail with one final window ending at the last sample', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // 250 ms: full windows end at 200 ms; the 50 ms tail gets a last window 50..250 ms.
      const src = cold('a 99ms b 99ms (c|)', { a: chunk(0, C, 0), b: chunk(C, C, 1), c: chunk(2 * C, C / 2, 2) });
      expectObservable(src.pipe(windowBySamples({ windowMs: 200, hopMs: 100, minTailMs: 50 }), summary)).toBe('100ms w 99ms (x|)', {
        w: { index: 0, start: 0, end: 2 * C, tMs: 200, first: 0, last: 1, n: 2 * C },
        x: { index: 1, start: C / 2, end: 2.5 * C, tMs: 250, first: 0, last: 2, n: 2 * C },
      });
    });
  });

  it('ignores a tail shorter than minTailMs and gives a short stream one short window', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const tail = cold('a 99ms b 99ms (c|)', { a: chunk(0, C), b: chunk(C, C), c: chunk(2 * C, 160) });
      expectObservable(
        tail.pipe(
          windowBySamples({ windowMs: 200, hopMs: 100, minTailMs: 50 }),
          map((w) => w.tMs),
        ),
      ).toBe('100ms a 99ms |', { a: 200 });
      const short = cold('a 99ms (b|)', { a: chunk(0, C), b: chunk(C, C / 2) });
      expectObservable(short.pipe(windowBySamples({ windowMs: 1000, hopMs: 250, minTailMs: 100 }), summary)).toBe('100ms (w|)', {
        w: { index: 0, start: 0, end: 1.5 * C, tMs: 150, first: 0, last: 0, n: 1.5 * C },
      });
      const tiny = cold('(a|)', { a: chunk(0, 100) });
      expectObservable(tiny.pipe(windowBySamples({ windowMs: 1000, hopMs: 250, minTailMs: 100 }))).toBe('|');
    });
  });

  it('stays on the audio clock across gaps (filled with silence) and overlaps (trimmed)', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // b is missing: c starts 100 ms after a ends. d re-sends half of c.
      const src = cold('a 99ms c 99ms d|', { a: chunk(0, C, 1), c: chunk(2 * C, C, 3), d: chunk(2.5 * C, 1.5 * C, 4) });
      expectObservable(src.pipe(windowBySamples({ windowMs: 200, hopMs: 100, minTailMs: 0 }), summary)).toBe('100ms (wx) 96ms y|', {
        w: { index: 0, start: 0, end: 2 * C, tMs: 200, first: 1, last: 0, n: 2 * C },
        x: { index: 1, start: C, end: 3 * C, tMs: 300, first: 0, last: 3, n: 2 * C },
        y: { index: 2, start: 2 * C, end: 4 * C, tMs: 400, first: 3, last: 4, n: 2 * C },
      });
    });
  });

  it('restarts windows after a gap longer than maxGapFillMs, keeping audio time', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const src = cold('a 99ms b|', { a: chunk(0, 2 * C, 1), b: chunk(100 * C, 2 * C, 2) });
      expectObservable(
        src.pipe(
          windowBySamples({ windowMs: 200, hopMs: 100, maxGapFillMs: 1000, minTailMs: 0 }),
          map((w) => [w.tMs, w.samples[0]]),
        ),
      ).toBe('a 99ms b|', { a: [200, 1], b: [10_200, 2] });
    });
  });

  it('rejects bad options with a RangeError naming the option', () => {
    expect(() => resolveWindowOptions({ windowMs: 0 })).toThrow(/windowMs must be > 0, got 0/);
    expect(() => resolveWindowOptions({ hopMs: -1 })).toThrow(/hopMs/);
    expect(() => resolveWindowOptions({ windowMs: 100, hopMs: 200 })).toThrow(/hopMs must be <= windowMs/);
    expect(() => resolveWindowOptions({ hopMs: Number.NaN })).toThrow(/hopMs/);
  });
});
