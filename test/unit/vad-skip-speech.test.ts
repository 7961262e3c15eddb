/**
 * The speech stage skips the model on unvoiced windows (streams/operators/infer-speech.ts
 * inferVoicedSpeech): windows whose `voiced` is below skipBelowVoiced never reach the model, come out
 * at once but in audio-time order among the model's answers, carry the drops before them, take no
 * model slot; fusion passes them on unfused (no speech part, confidence 0).
 */
import { describe, expect, it } from 'vitest';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import {
  inferSpeech,
  inferVoicedSpeech,
  type SpeechInferer,
  type SpeechWindowEstimate,
  type UnvoicedWindowEstimate,
} from '../../streams/operators/infer-speech.js';
import { fuseAffect } from '../../streams/operators/fuse-affect.js';
import type { AudioWindow } from '../../core/types.js';
import type { FusionInput, SpeechAffectOutput } from '../../models/ports.js';

const win = (i: number, voiced: number, droppedBefore = 0): AudioWindow & { droppedBefore?: number } => ({
  streamId: 's',
  index: i,
  startSample: i * 4000,
  endSample: i * 4000 + 16000,
  tMs: (i * 4000 + 16000) / 16,
  samples: new Float32Array(16000).fill(i / 100),
  voiced,
  ...(droppedBefore ? { droppedBefore } : {}),
});

/** A model answering after `ms` (real timers), recording what it was asked: valence = first sample × 100 (the window index). */
function slowModel(ms: number) {
  const asked: number[] = [];
  const model: SpeechInferer = {
    windowSamples: null,
    infer: (x: Float32Array) => {
      asked.push(Math.round(x[0]! * 100));
      return new Promise<SpeechAffectOutput>((r) => setTimeout(() => r({ valence: Math.round(x[0]! * 100), arousal: 0.5, confidence: 0.8 }), ms));
    },
  };
  return { model, asked };
}

type Out = SpeechWindowEstimate | UnvoicedWindowEstimate;
const brief = (e: Out) => ({ i: e.windowIndex, unvoiced: e.unvoiced === true, v: e.unvoiced ? undefined : e.speech.valence, dropped: e.droppedWindows });

describe('inferVoicedSpeech: unvoiced windows skip the speech model', () => {
  it('runs the model on voiced windows only and keeps audio-time order (queue mode, model busy)', async () => {
    const { model, asked } = slowModel(15);
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(inferVoicedSpeech(model, { whenBusy: 'queue', skipBelowVoiced: 0.2 }), toArray()));
    const voiced = [0.9, 0.1, 0, 0.5, 0.19, 0.2, 0];
    voiced.forEach((v, i) => in$.next(win(i, v)));
    in$.complete();
    const out = (await done).map(brief);
    expect(asked).toEqual([0, 3, 5]);
    expect(out.map((o) => o.i)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(out.map((o) => o.unvoiced)).toEqual([false, true, true, false, true, false, true]);
    expect(out.filter((o) => !o.unvoiced).map((o) => o.v)).toEqual([0, 3, 5]);
  });

  it('an unvoiced window needs no slot: in drop mode it is not dropped while the model is busy', async () => {
    const { model, asked } = slowModel(20);
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(inferVoicedSpeech(model, { whenBusy: 'drop', skipBelowVoiced: 0.2 }), toArray()));
    in$.next(win(0, 1));
    in$.next(win(1, 0)); // model busy with 0: skipped, not dropped
    in$.next(win(2, 1)); // model busy: dropped (counted on the next estimate)
    in$.next(win(3, 0));
    in$.complete();
    const out = (await done).map(brief);
    expect(asked).toEqual([0]);
    expect(out).toEqual([
      { i: 0, unvoiced: false, v: 0, dropped: 0 },
      { i: 1, unvoiced: true, v: undefined, dropped: 0 },
      { i: 3, unvoiced: true, v: undefined, dropped: 1 },
    ]);
  });

  it('drops before an unvoiced window (droppedBefore from the VAD stage) are reported on it', async () => {
    const { model } = slowModel(1);
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(inferVoicedSpeech(model, { whenBusy: 'queue', skipBelowVoiced: 0.2 }), toArray()));
    in$.next(win(0, 1));
    in$.next(win(3, 0, 2));
    in$.complete();
    expect((await done).map(brief)).toEqual([
      { i: 0, unvoiced: false, v: 0, dropped: 0 },
      { i: 3, unvoiced: true, v: undefined, dropped: 2 },
    ]);
  });

  it('inferSpeech (no skipBelowVoiced) still runs every window; a bad skipBelowVoiced is a RangeError', async () => {
    const { model, asked } = slowModel(1);
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(inferSpeech(model, { whenBusy: 'queue' }), toArray()));
    [1, 0, 0].forEach((v, i) => in$.next(win(i, v)));
    in$.complete();
    expect((await done).map((e) => e.windowIndex)).toEqual([0, 1, 2]);
    expect(asked).toEqual([0, 1, 2]);
    expect(() => inferVoicedSpeech(model, { skipBelowVoiced: 2 })).toThrow(/skipBelowVoiced must be in \[0, 1\], got 2/);
  });

  it('fuseAffect passes unvoiced windows on unfused: confidence 0, no speech part, voiced kept', async () => {
    const fused: FusionInput[] = [];
    const fusion = { fuse: (x: FusionInput) => (fused.push(x), Promise.resolve({ valence: x.speech?.valence ?? 0, arousal: 0.1, confidence: 0.7 })) };
    const in$ = new Subject<Out>();
    const done = lastValueFrom(in$.pipe(fuseAffect(fusion), toArray()));
    in$.next({ streamId: 's', tMs: 1000, windowIndex: 0, speech: { valence: 0.4, arousal: 0.2, confidence: 0.9 }, droppedWindows: 0, voiced: 0.8 });
    in$.next({ streamId: 's', tMs: 1250, windowIndex: 1, droppedWindows: 1, voiced: 0.05, unvoiced: true });
    in$.complete();
    const out = await done;
    expect(fused).toHaveLength(1);
    expect(out[0]).toMatchObject({ windowIndex: 0, valence: 0.4, confidence: 0.7, voiced: 0.8 });
    expect(out[0]!.speech).toBeDefined();
    expect(out[1]).toEqual({ streamId: 's', tMs: 1250, windowIndex: 1, valence: 0, arousal: 0, confidence: 0, droppedWindows: 1, voiced: 0.05 });
  });
});
