import { describe, expect, it } from 'vitest';
import { map, NEVER, type Observable } from 'rxjs';
import { affectPipeline, resolvePipelineOptions } from '../../streams/pipeline.js';
import type { PipelineEvent, Stamped, TranscriptEvent } from '../../core/types.js';
import type { TextAffectOutput } from '../../models/ports.js';
import { chunk, createTestScheduler, fakeFusion, fakeSpeech } from './core-helpers.js';

// 250 ms chunks of audio arriving every 250 ms of virtual time (real-time input).
const Q = 4000;
const chunks = { a: chunk(0, Q, 1), b: chunk(Q, Q, 2), c: chunk(2 * Q, Q, 3), d: chunk(3 * Q, Q, 4) };
const SRC = 'a 249ms b 249ms c 249ms d|';
const brief = map((e: PipelineEvent) =>
  e.kind === 'affect'
    ? { k: 'a', tMs: e.point.tMs, v: +e.point.valence.toFixed(3), m: e.point.modalities.join('+'), d: e.point.droppedWindows }
    : e.kind === 'transcript'
      ? { k: 't', tMs: e.transcript.tMs, text: e.transcript.text }
      : e.kind === 'status'
        ? { k: 's', tMs: e.tMs, state: e.state }
        : { k: e.kind },
);

describe('affectPipeline (marble, fake models)', () => {
  it('speech only: one frame per hop once a window is full, each after the model latency', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const p = affectPipeline({ speech: fakeSpeech(10), fusion: fakeFusion }, { windowMs: 500, hopMs: 250, smoothing: { filter: 'none' } });
      // Windows end at 500/750/1000 ms; the fake reads the window's first sample (chunk value / 10).
      expectObservable(cold(SRC, chunks).pipe(p, brief)).toBe('260ms x 249ms y 249ms (z|)', {
        x: { k: 'a', tMs: 500, v: 0.1, m: 'speech', d: 0 },
        y: { k: 'a', tMs: 750, v: 0.2, m: 'speech', d: 0 },
        z: { k: 'a', tMs: 1000, v: 0.3, m: 'speech', d: 0 },
      });
    });
  });

  it('merges transcripts and fuses the latest text estimate not newer than the window, until it is stale', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      const transcript: TranscriptEvent = { streamId: 's', tMs: 600, text: 'hello there', final: true, words: [] };
      const text: Stamped<TextAffectOutput> = { streamId: 's', tMs: 600, value: { valence: 0.9, arousal: 0.1, confidence: 0.8 } };
      const textPath = (_audio$: Observable<unknown>) => ({
        transcripts$: cold<TranscriptEvent>('300ms t|', { t: transcript }),
        estimates$: cold<Stamped<TextAffectOutput>>('300ms e|', { e: text }),
      });
      // Turns (a final transcript ends one by default with a text path) are tested in core-turns-asr; this test is about fusion.
      const p = affectPipeline(
        { speech: fakeSpeech(10), fusion: fakeFusion, textPath },
        { windowMs: 500, hopMs: 250, smoothing: { filter: 'none' }, textMaxAgeMs: 300, turnEndpointing: 'vad' },
      );
      expectObservable(cold(SRC, chunks).pipe(p, brief)).toBe('260ms x 39ms t 209ms y 249ms (z|)', {
        x: { k: 'a', tMs: 500, v: 0.1, m: 'speech', d: 0 }, // text at 600 ms is newer than this window
        t: { k: 't', tMs: 600, text: 'hello there' },
        y: { k: 'a', tMs: 750, v: 0.9, m: 'speech+text', d: 0 }, // fake fusion lets text win
        z: { k: 'a', tMs: 1000, v: 0.3, m: 'speech', d: 0 }, // 400 ms old > textMaxAgeMs 300: stale
      });
    });
  });

  it('a slow model in live mode drops windows, stays in audio time, and reports a degraded status', () => {
    createTestScheduler().run(({ cold, expectObservable }) => {
      // 50 ms chunks, windows every 50 ms, model needs 120 ms: 'latest' coalesces.
      const C = 800;
      const src = cold('a 49ms b 49ms c 49ms d 49ms e 49ms f|', {
        a: chunk(0, C, 1),
        b: chunk(C, C, 2),
        c: chunk(2 * C, C, 3),
        d: chunk(3 * C, C, 4),
        e: chunk(4 * C, C, 5),
        f: chunk(5 * C, C, 6),
      });
      const p = affectPipeline(
        { speech: fakeSpeech(120), fusion: fakeFusion },
        { windowMs: 100, hopMs: 50, minTailMs: 0, smoothing: { filter: 'none' }, whenBusy: 'latest' },
      );
      // Windows end 100..300 ms (arrive 50..250). w0 50→170; w1,w2 → w2 kept; w2 170→290; w3,w4 → w4; w4 290→410.
      expectObservable(src.pipe(p, brief)).toBe('170ms a 119ms (sb) 116ms (c|)', {
        a: { k: 'a', tMs: 100, v: 0.1, m: 'speech', d: 0 },
        s: { k: 's', tMs: 200, state: 'degraded' },
        b: { k: 'a', tMs: 200, v: 0.3, m: 'speech', d: 1 },
        c: { k: 'a', tMs: 300, v: 0.5, m: 'speech', d: 1 },
      });
    });
  });

  it('subscribes the text path to the same audio (shared, one upstream subscription)', () => {
    createTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('a 9ms |', { a: chunk(0, 16000, 0.5) });
      let textSaw = 0;
      const textPath = (audio$: Observable<{ samples: Float32Array }>) => ({
        transcripts$: audio$.pipe(map((c) => ({ streamId: 's', tMs: (textSaw += c.samples.length) / 16, text: 'x', final: false, words: [] }))),
        estimates$: NEVER,
      });
      const p = affectPipeline({ speech: fakeSpeech(0), fusion: fakeFusion, textPath }, { windowMs: 1000, hopMs: 250 });
      expectObservable(
        src.pipe(
          p,
          map((e) => e.kind),
        ),
      ).toBe('(ta) 6ms |', { t: 'transcript', a: 'affect' });
      expectSubscriptions(src.subscriptions).toBe('^ 9ms !');
    });
  });

  it('validates options up front', () => {
    expect(() => resolvePipelineOptions({ hopMs: 2000 })).toThrow(/hopMs must be <= windowMs/);
    expect(() => resolvePipelineOptions({ smoothing: { tauMs: -5 } })).toThrow(/tauMs/);
  });
});
