/**
 * Dominance through the streaming stages (protocol 1.1.0, additive): fusion passes what the fusion
 * model returns, smoothing filters it on its own axis and only on the estimates that carry it,
 * labelling passes it through; frames without it have no `dominance` key at all.
 */
import { describe, expect, it } from 'vitest';
import { map, of } from 'rxjs';
import { lateFuse } from '../../models/fusion-late.js';
import type { FusionInput, TextAffectOutput } from '../../models/ports.js';
import { fuseAffect } from '../../streams/operators/fuse-affect.js';
import type { SpeechWindowEstimate } from '../../streams/operators/infer-speech.js';
import { labelAffect } from '../../streams/operators/label-affect.js';
import { smoothAffect } from '../../streams/operators/smooth-affect.js';
import type { AffectEstimate, Stamped } from '../../core/types.js';
import { createTestScheduler } from './core-helpers.js';

const sp = (i: number, dominance?: number): SpeechWindowEstimate => ({
  streamId: 's',
  tMs: 1000 + 100 * i,
  windowIndex: i,
  speech: { valence: 0.2, arousal: -0.4, confidence: 0.5, ...(dominance === undefined ? {} : { dominance }) },
  droppedWindows: 0,
});
const est = (tMs: number, valence: number, dominance?: number, confidence = 1): AffectEstimate => ({
  streamId: 's',
  tMs,
  windowIndex: tMs / 100,
  valence,
  arousal: 0,
  confidence,
  ...(dominance === undefined ? {} : { dominance }),
  droppedWindows: 0,
});

/** The late fusion's pure function in virtual time (LateFusion resolves a Promise, outside the scheduler). */
const late = { fuse: (x: FusionInput) => of(lateFuse([x.speech, x.text])) };

describe('dominance through fuseAffect (marble, real late fusion)', () => {
  it('a text estimate with dominance gives the frame and its text part dominance; speech without it does not', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const text: Stamped<TextAffectOutput> = {
        streamId: 's',
        tMs: 1050,
        value: { valence: 0.6, arousal: 0.1, confidence: 0.5, dominance: 0.7, sigma: { valence: 0.2, arousal: 0.3, dominance: 0.4 } },
      };
      // Text arrives at 0 (audio time 1050); speech windows at 1000 ms (before the text) and 1100 ms.
      const estimates$ = cold('t', { t: text });
      const out = cold('a b|', { a: sp(0), b: sp(1) }).pipe(
        fuseAffect(late, { estimates$ }),
        map((e) => ({ d: e.dominance, speechHasD: e.speech !== undefined && 'dominance' in e.speech, textD: e.text?.dominance, hasKey: 'dominance' in e })),
      );
      // Window a has no text (the text is newer than it): no dominance key. Window b fuses the text:
      // dominance comes from text alone (speech has none), whatever the speech precision.
      expectObservable(out).toBe('a b|', {
        a: { d: undefined, speechHasD: false, textD: undefined, hasKey: false },
        b: { d: 0.7, speechHasD: false, textD: 0.7, hasKey: true },
      });
    });
  });

  it('speech and text dominance are precision-weighted like valence', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // speech c=0.5 (p=1, d=-0.5), text c=0.75 (p=3, d=0.5) → (−0.5 + 1.5)/4 = 0.25.
      const estimates$ = cold('t', { t: { streamId: 's', tMs: 900, value: { valence: 0, arousal: 0, confidence: 0.75, dominance: 0.5 } } });
      const out = cold('-a|', { a: sp(0, -0.5) }).pipe(
        fuseAffect(late, { estimates$ }),
        map((e) => [+(e.dominance ?? NaN).toFixed(6), e.speech?.dominance, e.text?.dominance]),
      );
      expectObservable(out).toBe('-a|', { a: [0.25, -0.5, 0.5] });
    });
  });

  it('a fusion model that returns no dominance (the learned fusion) gives frames without it', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const learned = { fuse: () => of({ valence: 0.1, arousal: 0.2, confidence: 0.9 }) };
      const estimates$ = cold('t', { t: { streamId: 's', tMs: 900, value: { valence: 0, arousal: 0, confidence: 0.75, dominance: 0.5 } } });
      const out = cold('-a|', { a: sp(0, -0.5) }).pipe(
        fuseAffect(learned, { estimates$ }),
        map((e) => ['dominance' in e, e.text?.dominance]),
      );
      // The frame has none; the text part still says what the text model predicted.
      expectObservable(out).toBe('-a|', { a: [false, 0.5] });
    });
  });

  it('out-of-range or non-finite modality dominance is clamped or dropped, never passed on as NaN', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const estimates$ = cold('t', { t: { streamId: 's', tMs: 900, value: { valence: 0, arousal: 0, confidence: 0.75, dominance: 1.7 } } });
      const out = cold('-a|', { a: sp(0, Number.NaN) }).pipe(
        fuseAffect(late, { estimates$ }),
        map((e) => [e.dominance, e.text?.dominance, e.speech !== undefined && 'dominance' in e.speech]),
      );
      expectObservable(out).toBe('-a|', { a: [1, 1, false] });
    });
  });
});

describe('dominance through smoothAffect and labelAffect (marble)', () => {
  it('is smoothed by its own filter, only on estimates that carry it, and absent where they lack it', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // EMA with tau 100 ms: valence and dominance steps every 100 ms of audio.
      const src = cold('abcd|', { a: est(0, 0, 0), b: est(100, 1, 1), c: est(200, 1), d: est(300, 1, 1) });
      const a1 = 1 - Math.exp(-1); // one tau
      const a2 = 1 - Math.exp(-2); // two taus: d's dominance step spans c, which had none
      const vb = a1;
      const vc = vb + a1 * (1 - vb);
      const vd = vc + a1 * (1 - vc);
      const db = a1;
      const dd = db + a2 * (1 - db);
      const r = (x: number | undefined) => (x === undefined ? 'none' : +x.toFixed(9));
      const out = src.pipe(
        smoothAffect({ filter: 'ema', tauMs: 100 }),
        labelAffect(),
        map((p) => [r(p.valence), r(p.dominance), 'dominance' in p]),
      );
      expectObservable(out).toBe('abcd|', {
        a: [0, 0, true],
        b: [r(vb), r(db), true],
        c: [r(vc), 'none', false],
        d: [r(vd), r(dd), true],
      });
    });
  });

  it('confidence 0 does not move dominance under One-Euro (as for valence), and it stays in [-1, 1]', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const src = cold('abc|', { a: est(0, 0.2, 0.5), b: est(250, 0.9, -1, 0), c: est(500, 0.9, 5) });
      const out = src.pipe(
        smoothAffect({ filter: 'one-euro' }),
        map((p) => p.dominance),
      );
      expectObservable(out).toBe('abc|', { a: 0.5, b: 0.5, c: expect.any(Number) as unknown as number });
    });
    const seen: number[] = [];
    of(est(0, 0, -1), est(250, 0, 3), est(500, 0, 3))
      .pipe(smoothAffect({ filter: 'kalman' }))
      .subscribe((p) => seen.push(p.dominance ?? NaN));
    expect(seen.every((d) => d >= -1 && d <= 1)).toBe(true);
    expect(seen[2]).toBeGreaterThan(seen[0] ?? 0);
  });

  it('filter none passes dominance through unchanged', () => {
    const seen: Array<number | undefined> = [];
    of(est(0, 0, 0.3), est(100, 0), est(200, 0, -0.6))
      .pipe(smoothAffect({ filter: 'none' }), labelAffect())
      .subscribe((p) => seen.push(p.dominance));
    expect(seen).toEqual([0.3, undefined, -0.6]);
  });
});
