import { describe, expect, it } from 'vitest';
import { map, mergeMap, throwError, timer } from 'rxjs';
import { fuseAffect, pickText } from '../../streams/operators/fuse-affect.js';
import type { SpeechWindowEstimate } from '../../streams/operators/infer-speech.js';
import type { FusionInput } from '../../models/ports.js';
import type { AffectEstimate, Stamped } from '../../core/types.js';
import type { TextAffectOutput } from '../../models/ports.js';
import { AffectError } from '../../core/errors.js';
import { FlowControl } from '../../streams/flow.js';
import { createTestScheduler } from './core-helpers.js';

const sp = (i: number, droppedWindows = 0): SpeechWindowEstimate => ({
  streamId: 's',
  tMs: 100 * i,
  windowIndex: i,
  speech: { valence: i / 10, arousal: 0, confidence: 1 },
  droppedWindows,
});
const slowFusion = (ms: number) => ({ fuse: (x: FusionInput) => timer(ms).pipe(map(() => ({ valence: x.speech?.valence ?? 0, arousal: 0, confidence: 1 }))) });
const brief = map((e: AffectEstimate) => [e.windowIndex, e.droppedWindows]);

describe('fuseAffect (marble)', () => {
  it('fuses one at a time in order; a slow fusion model drops the oldest waiting estimates past maxBacklog and counts them', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // Estimates every 10 ms, fusion takes 30 ms, backlog 1.
      const src = cold('a 9ms b 9ms c 9ms d 9ms e|', { a: sp(0), b: sp(1), c: sp(2, 1), d: sp(3), e: sp(4) });
      // a 0→30; b waits; c pushes b out (1 dropped); at 30 d pushes c out (c + the 1 it carried = 2);
      // d 30→60 reports 3; e waits and runs 60→90.
      expectObservable(src.pipe(fuseAffect(slowFusion(30), { maxBacklog: 1 }), brief)).toBe('30ms a 29ms d 29ms (e|)', { a: [0, 0], d: [3, 3], e: [4, 0] });
    });
  });

  it('drops a frame whose fusion fails recoverably (counted on the next), and ends on a fatal error', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const flaky = {
        fuse: (x: FusionInput) =>
          x.speech?.valence === 0.1
            ? timer(1).pipe(mergeMap(() => throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'bad', { recoverable: true }))))
            : slowFusion(1).fuse(x),
      };
      expectObservable(cold('a b c|', { a: sp(0), b: sp(1), c: sp(2) }).pipe(fuseAffect(flaky), brief)).toBe('-a-(c|)', { a: [0, 0], c: [2, 1] });
      const fatal = { fuse: () => throwError(() => new AffectError('AFFECT_ERR_INFERENCE', 'worker gone')) };
      expectObservable(cold('a|', { a: sp(0) }).pipe(fuseAffect(fatal))).toBe('#', undefined, new AffectError('AFFECT_ERR_INFERENCE', 'worker gone'));
    });
  });

  it('holds a flow credit per estimate until it is fused', () => {
    createTestScheduler().run(({ cold, expectObservable, flush }) => {
      const flow = new FlowControl({ highWater: 8 });
      const seen: number[] = [];
      const src = cold('a b c|', { a: sp(0), b: sp(1), c: sp(2) });
      expectObservable(
        src.pipe(
          fuseAffect(slowFusion(10), { flow }),
          map((e) => (seen.push(flow.pending), e.windowIndex)),
        ),
      ).toBe('10ms a 9ms b 9ms (c|)', { a: 0, b: 1, c: 2 });
      flush();
      expect(seen).toEqual([2, 1, 0]);
    });
  });

  it('picks the newest text not newer than the window and not older than the max age', () => {
    const t = (tMs: number): Stamped<TextAffectOutput> => ({ streamId: 's', tMs, value: { valence: tMs, arousal: 0, confidence: 1 } });
    const sorted = [t(100), t(500), t(900)];
    expect(pickText(sorted, 950, 1000)?.tMs).toBe(900);
    expect(pickText(sorted, 899, 1000)?.tMs).toBe(500);
    expect(pickText(sorted, 50, 1000)).toBeUndefined();
    expect(pickText(sorted, 2500, 1000)).toBeUndefined(); // newest is 1600 ms old: stale
    expect(() => fuseAffect(slowFusion(1), { maxBacklog: 0 })).toThrow(/maxBacklog/);
  });
});

describe('fuseAffect text sync (offline)', () => {
  const text = (tMs: number, v: number): Stamped<TextAffectOutput> => ({ streamId: 's', tMs, value: { valence: v, arousal: 0, confidence: 1 } });
  const textWins = { fuse: (x: FusionInput) => timer(0).pipe(map(() => ({ valence: x.text?.valence ?? -1, arousal: 0, confidence: 1 }))) };

  it('waits for the text path to reach the window before fusing, so late text is still used', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // Speech estimates for 100/200 ms arrive at once; the text estimate for 150 ms comes at 50,
      // with progress 250 ms at 60. Without waiting, both windows would fuse speech alone.
      const src = cold('(ab|)', { a: sp(1), b: sp(2) });
      const estimates$ = cold('50ms t', { t: text(150, 0.7) });
      const progress$ = cold('20ms p 39ms q|', { p: 120, q: 250 });
      expectObservable(
        src.pipe(
          fuseAffect(textWins, { estimates$, textProgress$: progress$, waitForText: true }),
          map((e) => [e.tMs, e.valence]),
        ),
      ).toBe('20ms a 39ms (b|)', {
        a: [100, -1], // progress 120 >= 100 at 20 ms: no text at or before 100 ms
        b: [200, 0.7], // fused once progress passed 200 ms, with the 150 ms text
      });
      const noWait = cold('(ab|)', { a: sp(1), b: sp(2) });
      expectObservable(
        noWait.pipe(
          fuseAffect(textWins, { estimates$: cold('50ms t', { t: text(150, 0.7) }) }),
          map((e) => [e.tMs, e.valence]),
        ),
      ).toBe('(ab|)', { a: [100, -1], b: [200, -1] });
    });
  });

  it('stops waiting when the progress stream ends or after textWaitMaxMs', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const ended = cold<number>('30ms |');
      expectObservable(
        cold('(a|)', { a: sp(5) }).pipe(
          fuseAffect(textWins, { textProgress$: ended, waitForText: true }),
          map((e) => e.tMs),
        ),
      ).toBe('30ms (a|)', { a: 500 });
      const stuck = cold<number>('-');
      expectObservable(
        cold('(a|)', { a: sp(5) }).pipe(
          fuseAffect(textWins, { textProgress$: stuck, waitForText: true, textWaitMaxMs: 100 }),
          map((e) => e.tMs),
        ),
      ).toBe('100ms (a|)', { a: 500 });
    });
  });
});
