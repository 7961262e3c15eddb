/**
 * The VAD stage's bound (streams/vad.ts maxPendingWindows): a live stream whose detector falls
 * behind drops the oldest waiting windows, counts them (onDrop, the detector's counter,
 * droppedBefore on the next window) and the speech stage reports them in droppedWindows; a detector
 * that refuses a request recoverably drops that window only; an unrecoverable failure ends the stream.
 */
import { describe, expect, it } from 'vitest';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import { detectVoice, type VoicedWindow } from '../../streams/vad.js';
import { inferSpeech } from '../../streams/operators/infer-speech.js';
import type { AudioWindow } from '../../core/types.js';
import type { VadDropReason, VoiceDetector } from '../../models/ports.js';

const FRAME = 512;
const HOP = 4000;

/** Windows of 1 s every 250 ms with constant samples. */
const win = (i: number): AudioWindow => ({
  streamId: 's',
  index: i,
  startSample: i * HOP,
  endSample: i * HOP + 16000,
  tMs: (i * HOP + 16000) / 16,
  samples: new Float32Array(16000).fill(0.5),
});

/** A detector whose answers the test releases by hand; `fail` makes the next request fail. */
function manualDetector() {
  const pending: Array<{ n: number; resolve(p: Float32Array): void; reject(e: unknown): void }> = [];
  const drops: VadDropReason[] = [];
  const d: VoiceDetector & { pending: typeof pending; drops: VadDropReason[]; closed: number; answer(): void } = {
    frameSamples: FRAME,
    pending,
    drops,
    closed: 0,
    countDroppedWindow: (r) => drops.push(r),
    stream: () => ({
      probabilities: (frames: Float32Array) => new Promise<Float32Array>((resolve, reject) => pending.push({ n: frames.length / FRAME, resolve, reject })),
      close: () => void d.closed++,
    }),
    answer() {
      const p = pending.shift()!;
      p.resolve(new Float32Array(p.n).fill(0.9));
    },
  };
  return d;
}

const flush = () => new Promise((r) => setImmediate(r));

describe('detectVoice bound and drop policy (live stream)', () => {
  it('past maxPendingWindows the oldest waiting windows are dropped and counted; the next window carries droppedBefore', async () => {
    const det = manualDetector();
    const in$ = new Subject<AudioWindow>();
    const dropped: Array<[number, VadDropReason]> = [];
    const out: VoicedWindow[] = [];
    const done = lastValueFrom(in$.pipe(detectVoice(det, { maxPendingWindows: 3, onDrop: (w, r) => dropped.push([w.index, r]) }), toArray()));
    const seen = in$.subscribe();
    void done.then((ws) => out.push(...ws));
    // Window 0 goes to the detector; 1..9 arrive while it is busy: 3 wait, 6 are dropped (1..6).
    for (let i = 0; i < 10; i++) in$.next(win(i));
    expect(det.pending).toHaveLength(1);
    expect(dropped).toEqual([1, 2, 3, 4, 5, 6].map((i) => [i, 'overflow']));
    expect(det.drops).toEqual(new Array(6).fill('overflow'));
    in$.complete();
    for (let k = 0; k < 4; k++) {
      det.answer();
      await flush();
    }
    await done;
    seen.unsubscribe();
    expect(out.map((w) => w.index)).toEqual([0, 7, 8, 9]);
    expect(out.map((w) => w.droppedBefore ?? 0)).toEqual([0, 6, 0, 0]);
    // Window 7's audio after the gap is still labelled: voiced is a real fraction, never NaN.
    for (const w of out) expect(Number.isFinite(w.voiced)).toBe(true);
  });

  it('a recoverable refusal drops that window only; the stream goes on', async () => {
    const det = manualDetector();
    const in$ = new Subject<AudioWindow>();
    const reasons: VadDropReason[] = [];
    const done = lastValueFrom(in$.pipe(detectVoice(det, { onDrop: (_w, r) => reasons.push(r) }), toArray()));
    in$.next(win(0));
    det.pending.shift()!.reject(new AffectError('AFFECT_ERR_INFERENCE', 'vad: queue full', { recoverable: true, stage: 'vad' }));
    await flush();
    in$.next(win(1));
    det.answer();
    await flush();
    in$.complete();
    const out = await done;
    expect(reasons).toEqual(['error']);
    expect(out.map((w) => [w.index, w.droppedBefore ?? 0])).toEqual([[1, 1]]);
  });

  it('an unrecoverable failure errors the stream', async () => {
    const det = manualDetector();
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(detectVoice(det), toArray()));
    in$.next(win(0));
    det.pending.shift()!.reject(new AffectError('AFFECT_ERR_INFERENCE', 'worker died', { recoverable: false, stage: 'vad' }));
    await expect(done).rejects.toThrow(/worker died/);
  });

  it('rejects a bad maxPendingWindows with a RangeError naming it', () => {
    expect(() => detectVoice(manualDetector(), { maxPendingWindows: 0 })).toThrow(/maxPendingWindows/);
  });

  it('the speech stage adds droppedBefore to the next estimate’s droppedWindows', async () => {
    const model = { windowSamples: null, infer: () => Promise.resolve({ valence: 0, arousal: 0 } as never) };
    const ws: VoicedWindow[] = [
      { ...win(0), voiced: 1 },
      { ...win(5), voiced: 1, droppedBefore: 4 },
    ];
    const in$ = new Subject<VoicedWindow>();
    const done = lastValueFrom(in$.pipe(inferSpeech(model, { whenBusy: 'queue' }), toArray()));
    for (const w of ws) {
      in$.next(w);
      await flush();
    }
    in$.complete();
    const est = await done;
    expect(est.map((e) => e.droppedWindows)).toEqual([0, 4]);
  });

  it('closes its detector stream once the stream ends, and when a subscriber leaves early', async () => {
    const det = manualDetector();
    const in$ = new Subject<AudioWindow>();
    const done = lastValueFrom(in$.pipe(detectVoice(det, {}), toArray()));
    in$.next(win(0));
    det.answer();
    await flush();
    expect(det.closed).toBe(0);
    in$.complete();
    await done;
    expect(det.closed).toBe(1);
    // Unsubscribed with a request in flight: closed too, once.
    const det2 = manualDetector();
    const live = new Subject<AudioWindow>();
    const sub = live.pipe(detectVoice(det2, {})).subscribe();
    live.next(win(0));
    expect(det2.pending).toHaveLength(1);
    sub.unsubscribe();
    expect(det2.closed).toBe(1);
  });
});
