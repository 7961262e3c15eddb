/**
 * Timing logic of `transcribe` with a fake recogniser whose latency runs in virtual time:
 * one accept in flight, pending audio concatenated and bounded (oldest dropped, counted),
 * word times mapped from "fed audio" time onto stream time, partial de-duplication, and the
 * final flush at end of stream.
 */
import { map, timer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { RecognizerResult } from '../../models/ports.js';
import { FedTimeline, transcribe, type TranscribeRecognizer } from '../../streams/operators/transcribe.js';
import type { AudioChunk, TranscriptEvent } from '../../core/types.js';

const sched = () => new TestScheduler((a, e) => expect(a).toEqual(e));

/** A chunk of `ms` of audio starting at stream ms `startMs` (16 kHz). */
function chunk(startMs: number, ms: number): AudioChunk {
  return { streamId: 's1', startSample: startMs * 16, samples: new Float32Array(ms * 16).fill(0.1) };
}

interface Call {
  fedMsBefore: number;
  samples: number;
}

/**
 * A recogniser that answers after `latencyMs` of virtual time with `script(call, fedMsAfter)`.
 * It records each call and fails the test if two calls overlap.
 */
function fakeRecognizer(
  latencyMs: number,
  script: (call: number, fedMsAfter: number) => RecognizerResult,
  finalResult: RecognizerResult = { text: '', final: true, words: [] },
) {
  const calls: Call[] = [];
  let fedMs = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let finished = 0;
  const rec: TranscribeRecognizer = {
    accept(samples: Float32Array): Observable<RecognizerResult> {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push({ fedMsBefore: fedMs, samples: samples.length });
      fedMs += samples.length / 16;
      const n = calls.length - 1;
      const after = fedMs;
      return timer(latencyMs).pipe(
        map(() => {
          inFlight--;
          return script(n, after);
        }),
      );
    },
    finish() {
      finished++;
      return timer(latencyMs).pipe(map(() => finalResult));
    },
  };
  return { rec, calls, stats: () => ({ maxInFlight, finished }) };
}

const partial = (text: string, words: RecognizerResult['words'] = []): RecognizerResult => ({ text, final: false, words });

describe('transcribe (marble)', () => {
  it('keeps one accept in flight and concatenates the audio that waited meanwhile', () => {
    const f = fakeRecognizer(50, () => partial(''));
    sched().run(({ cold, expectObservable }) => {
      // 100 ms chunks every 20 ms of wall time: the recogniser (50 ms) falls behind, audio waits.
      const src = cold('a 19ms b 19ms c 19ms d 19ms e|', {
        a: chunk(0, 100),
        b: chunk(100, 100),
        c: chunk(200, 100),
        d: chunk(300, 100),
        e: chunk(400, 100),
      });
      // Only the final flush can emit, and it has no text after empty partials: just completion.
      expectObservable(src.pipe(transcribe(f.rec, { maxAcceptMs: 1000 }))).toBe('200ms |');
    });
    expect(f.stats().maxInFlight).toBe(1);
    // t=0: a alone; t=50: b+c (arrived at 20, 40); t=100: d+e (60, 80); then finish at 150..200.
    expect(f.calls.map((c) => c.samples / 16)).toEqual([100, 200, 200]);
    expect(f.stats().finished).toBe(1);
  });

  it('maps word times from fed audio onto stream time (stream starting at 1 s)', () => {
    const f = fakeRecognizer(10, (call) =>
      call === 0
        ? partial('hello', [{ word: 'hello', startMs: 20, endMs: 80, conf: 1 }])
        : {
            text: 'hello world',
            final: true,
            words: [
              { word: 'hello', startMs: 20, endMs: 80, conf: 0.9 },
              { word: 'world', startMs: 120, endMs: 190, conf: 0.8 },
            ],
          },
    );
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 19ms b|', { a: chunk(1000, 100), b: chunk(1100, 100) });
      const out: Record<string, TranscriptEvent> = {
        p: { streamId: 's1', tMs: 1100, text: 'hello', final: false, words: [{ word: 'hello', startMs: 1020, endMs: 1080, conf: 1 }] },
        f: {
          streamId: 's1',
          tMs: 1200,
          text: 'hello world',
          final: true,
          words: [
            { word: 'hello', startMs: 1020, endMs: 1080, conf: 0.9 },
            { word: 'world', startMs: 1120, endMs: 1190, conf: 0.8 },
          ],
        },
      };
      expectObservable(src.pipe(transcribe(f.rec))).toBe('10ms p 19ms f 9ms |', out);
    });
  });

  it('drops the OLDEST pending audio past maxPendingMs, counts it, and keeps times right across the gap', () => {
    const dropped: number[] = [];
    // The first call is slow (200 ms) so 5 chunks of 100 ms pile up against a 250 ms bound.
    const calls: number[] = [];
    const rec: TranscribeRecognizer = {
      accept: (s) => {
        calls.push(s.length / 16);
        const n = calls.length;
        // Second call: a word spanning fed ms 100..150 of the recogniser's audio.
        return timer(n === 1 ? 200 : 10).pipe(map(() => (n === 2 ? partial('late', [{ word: 'late', startMs: 100, endMs: 150, conf: 1 }]) : partial(''))));
      },
      finish: () => timer(1).pipe(map(() => ({ text: 'late', final: true, words: [] }))),
    };
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f|', {
        a: chunk(0, 100),
        b: chunk(100, 100),
        c: chunk(200, 100),
        d: chunk(300, 100),
        e: chunk(400, 100),
        f: chunk(500, 100),
      });
      const out: Record<string, TranscriptEvent> = {
        // Pending was b..f (500 ms) bounded to 250 ms: b, c and half of d dropped (250 ms = 4000 samples).
        // Fed audio: a (stream 0..100) then d' (350..400), e, f. Fed ms 100..150 is stream 350..400.
        p: { streamId: 's1', tMs: 600, text: 'late', final: false, words: [{ word: 'late', startMs: 350, endMs: 400, conf: 1 }] },
        f: { streamId: 's1', tMs: 600, text: 'late', final: true, words: [] },
      };
      expectObservable(src.pipe(transcribe(rec, { maxPendingMs: 250, onDropped: (_n, total) => dropped.push(total) }))).toBe('210ms p (f|)', out);
    });
    expect(calls).toEqual([100, 250]);
    expect(dropped[dropped.length - 1]).toBe(250 * 16);
  });

  it('does not repeat a partial whose text did not change; an empty final only retracts a published partial', () => {
    const script = ['', 'hi', 'hi', 'hi there', '', ''];
    const f = fakeRecognizer(5, (call) => {
      const t = script[call] ?? '';
      return call === 4 ? { text: '', final: true, words: [] } : partial(t);
    });
    sched().run(({ cold, expectObservable }) => {
      const src = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f|', {
        a: chunk(0, 100),
        b: chunk(100, 100),
        c: chunk(200, 100),
        d: chunk(300, 100),
        e: chunk(400, 100),
        f: chunk(500, 100),
      });
      const ev = (tMs: number, text: string, final: boolean): TranscriptEvent => ({ streamId: 's1', tMs, text, final, words: [] });
      // call 0 '' (no event), 1 'hi', 2 'hi' (dup), 3 'hi there', 4 final '' (retracts), 5 '' (nothing), finish '' (nothing).
      expectObservable(src.pipe(transcribe(f.rec))).toBe('15ms a 19ms b 9ms c 14ms |', {
        a: ev(200, 'hi', false),
        b: ev(400, 'hi there', false),
        c: ev(500, '', true),
      });
    });
  });

  it('turns a failing accept into an AFFECT_ERR_ASR error', () => {
    const rec: TranscribeRecognizer = {
      accept: () => Promise.reject(new Error('boom')),
      finish: () => Promise.resolve({ text: '', final: true, words: [] }),
    };
    return new Promise<void>((resolve, reject) => {
      import('rxjs').then(({ of }) => {
        of(chunk(0, 100))
          .pipe(transcribe(rec))
          .subscribe({
            next: () => reject(new Error('no event expected')),
            error: (err: unknown) => {
              try {
                expect((err as { code: string }).code).toBe('AFFECT_ERR_ASR');
                resolve();
              } catch (e) {
                reject(e instanceof Error ? e : new Error(String(e)));
              }
            },
            complete: () => reject(new Error('should have failed')),
          });
      }, reject);
    });
  });

  it('rejects bad options with a RangeError naming the option', () => {
    const f = fakeRecognizer(1, () => partial(''));
    expect(() => transcribe(f.rec, { maxPendingMs: 0 })).toThrow(/maxPendingMs/);
    expect(() => transcribe(f.rec, { maxAcceptMs: -1 })).toThrow(/maxAcceptMs/);
  });
});

describe('FedTimeline', () => {
  it('maps fed time through gaps and clamps outside the known audio', () => {
    const t = new FedTimeline();
    t.push(16_000, 1600); // fed 0..100 ms = stream 1000..1100 ms
    t.push(17_600, 1600); // contiguous: merged
    t.push(32_000, 800); // gap: fed 200..250 ms = stream 2000..2050 ms
    expect(t.toStreamMs(0)).toBe(1000);
    expect(t.toStreamMs(150)).toBe(1150);
    expect(t.toStreamMs(210)).toBe(2010);
    expect(t.toStreamMs(999)).toBe(2050);
    expect(t.endMs()).toBe(2050);
  });
});
