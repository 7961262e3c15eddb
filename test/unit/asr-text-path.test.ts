/**
 * createTextPath wiring with a fake (Promise-based) recogniser factory: audio that arrives before
 * the recogniser exists is kept, the recogniser is freed at the end, and ASR failures (create or
 * mid-stream) become one error on errors$, one zero-confidence text estimate, and completion.
 */
import { firstValueFrom, from, Subject, throwError, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { RecognizerResult, SpeechRecognizerFactory, StreamRecognizer, TextAffectModel } from '../../models/ports.js';
import { AffectError } from '../../src/errors.js';
import { createTextPath, type TextPathStreams } from '../../streams/text-path.js';
import type { AudioChunk } from '../../streams/types.js';

function chunks(n: number, ms = 100): AudioChunk[] {
  return Array.from({ length: n }, (_, i) => ({ streamId: 's', startSample: i * ms * 16, samples: new Float32Array(ms * 16).fill(0.1) }));
}

/** Says "w<k>" once per 300 ms heard, with word times in recogniser ms; fails on call `failAt`. */
function fakeFactory(opts: { failCreate?: boolean; failAt?: number; createDelayMs?: number } = {}) {
  const fed: number[] = [];
  let closed = 0;
  let finished = 0;
  const factory: SpeechRecognizerFactory = {
    id: 'fake-asr',
    provider: 'fake',
    close: () => Promise.resolve(),
    create: async () => {
      await new Promise((r) => setTimeout(r, opts.createDelayMs ?? 5));
      if (opts.failCreate) throw new AffectError('AFFECT_ERR_ASR_MODEL', 'no model here', { stage: 'asr' });
      let heard = 0;
      const words: Array<{ word: string; startMs: number; endMs: number; conf: number }> = [];
      const rec: StreamRecognizer = {
        accept: (s) => {
          fed.push(s.length);
          if (opts.failAt !== undefined && fed.length === opts.failAt) {
            return Promise.reject(new AffectError('AFFECT_ERR_ASR', 'the ASR host process (libvosk) was killed by SIGSEGV'));
          }
          const before = heard;
          heard += s.length / 16;
          for (let t = Math.ceil(before / 300) * 300; t < heard; t += 300) {
            if (t > 0) words.push({ word: `w${t / 300}`, startMs: t - 200, endMs: t, conf: 1 });
          }
          const r: RecognizerResult = { text: words.map((w) => w.word).join(' '), final: false, words: [...words] };
          return Promise.resolve(r);
        },
        finish: () => {
          finished++;
          return Promise.resolve({ text: words.map((w) => w.word).join(' '), final: true, words: [...words] });
        },
        close: () => {
          closed++;
          return Promise.resolve();
        },
      };
      return rec;
    },
  };
  return { factory, fed, counts: () => ({ closed, finished }) };
}

const textModel: TextAffectModel = {
  id: 'fake-text',
  provider: 'cpu',
  infer: (text) => Promise.resolve({ valence: 0.4, arousal: 0.1, confidence: Math.min(1, text.split(' ').length / 10) }),
  close: () => Promise.resolve(),
};

function collect(p: TextPathStreams) {
  return Promise.all([
    firstValueFrom(p.transcripts$.pipe(toArray())),
    firstValueFrom(p.estimates$.pipe(toArray())),
    firstValueFrom(p.errors$.pipe(toArray())),
  ]);
}

describe('createTextPath', () => {
  it('keeps audio that arrives (synchronously) before the recogniser exists, and frees it at the end', async () => {
    const f = fakeFactory({ createDelayMs: 20 });
    const p = createTextPath(f.factory, textModel, { minIntervalMs: 0 })('s')(from(chunks(20)));
    const [transcripts, estimates, errors] = await collect(p);
    // 2 s of audio, all of it fed (in maxAcceptMs pieces), none dropped.
    expect(f.fed.reduce((a, b) => a + b, 0)).toBe(20 * 1600);
    expect(p.stats.droppedSamples).toBe(0);
    expect(errors).toEqual([]);
    const last = transcripts[transcripts.length - 1]!;
    expect(last.final).toBe(true);
    expect(last.text).toBe('w1 w2 w3 w4 w5 w6');
    expect(last.words[0]).toMatchObject({ word: 'w1', startMs: 100, endMs: 300 });
    expect(estimates.length).toBeGreaterThan(0);
    expect(estimates[estimates.length - 1]!.value.confidence).toBeCloseTo(0.6);
    expect(f.counts()).toEqual({ closed: 1, finished: 1 });
  });

  it('create() fails: one error, one zero-confidence estimate, transcripts complete empty', async () => {
    const f = fakeFactory({ failCreate: true });
    const [transcripts, estimates, errors] = await collect(createTextPath(f.factory, textModel)('s')(from(chunks(5))));
    expect(transcripts).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('AFFECT_ERR_ASR_MODEL');
    expect(estimates).toEqual([{ streamId: 's', tMs: 0, value: { valence: 0, arousal: 0, confidence: 0 } }]);
  });

  it('a mid-stream ASR failure stops the text path only; the recogniser is released', async () => {
    const f = fakeFactory({ failAt: 5 });
    const audio$ = new Subject<AudioChunk>();
    const p = createTextPath(f.factory, textModel, { minIntervalMs: 0, maxAcceptMs: 100 })('s')(audio$ as Observable<AudioChunk>);
    const done = collect(p);
    await new Promise((r) => setTimeout(r, 10));
    for (const c of chunks(10)) {
      audio$.next(c);
      await new Promise((r) => setTimeout(r, 1));
    }
    const [transcripts, estimates, errors] = await done;
    expect(errors.map((e) => e.code)).toEqual(['AFFECT_ERR_ASR']);
    expect(errors[0]!.message).toMatch(/SIGSEGV/);
    expect(transcripts.length).toBeGreaterThan(0);
    const lastEst = estimates[estimates.length - 1]!;
    expect(lastEst.value.confidence).toBe(0);
    expect(lastEst.tMs).toBe(400); // the recogniser had heard 400 ms when it failed
    expect(f.counts().closed).toBe(1);
    audio$.complete();
  });

  it('scales the text confidence by the mean recogniser word confidence (unless turned off)', async () => {
    const unsure: SpeechRecognizerFactory = {
      id: 'unsure',
      provider: 'fake',
      close: () => Promise.resolve(),
      create: () =>
        Promise.resolve({
          accept: () => Promise.resolve({ text: 'bonjour', final: true, words: [{ word: 'bonjour', startMs: 10, endMs: 90, conf: 0.25 }] }),
          finish: () => Promise.resolve({ text: '', final: true, words: [] }),
          close: () => Promise.resolve(),
        }),
    };
    const run = async (scaleByWordConf: boolean) => {
      const p = createTextPath(unsure, textModel, { scaleByWordConf, minIntervalMs: 0 })('s')(from(chunks(1)));
      return firstValueFrom(p.estimates$.pipe(toArray()));
    };
    // The fake text model says confidence 0.1 for one word.
    expect((await run(true))[0]!.value.confidence).toBeCloseTo(0.025);
    expect((await run(false))[0]!.value.confidence).toBeCloseTo(0.1);
  });

  it('an error of the audio source passes through unchanged (it is not an ASR failure)', async () => {
    const f = fakeFactory();
    const bad = new AffectError('AFFECT_ERR_AUDIO_FORMAT', 'truncated WAV');
    const p = createTextPath(f.factory, textModel)('s')(throwError(() => bad));
    const errors: AffectError[] = [];
    const sub = p.errors$.subscribe({ next: (e) => errors.push(e), error: () => undefined });
    await expect(firstValueFrom(p.transcripts$.pipe(toArray()))).rejects.toBe(bad);
    sub.unsubscribe();
    expect(errors).toEqual([]);
  });

  it('without a text model: transcripts only, no estimates', async () => {
    const f = fakeFactory();
    const [transcripts, estimates] = await collect(createTextPath(f.factory, undefined)('s')(from(chunks(10))));
    expect(transcripts.length).toBeGreaterThan(0);
    expect(estimates).toEqual([]);
  });

  it('unsubscribing early frees the recogniser', async () => {
    const f = fakeFactory();
    const audio$ = new Subject<AudioChunk>();
    const sub = createTextPath(f.factory, textModel)('s')(audio$).transcripts$.subscribe();
    audio$.next(chunks(1)[0]!);
    await new Promise((r) => setTimeout(r, 20));
    sub.unsubscribe();
    await new Promise((r) => setTimeout(r, 5));
    expect(f.counts().closed).toBe(1);
  });

  it('rejects bad options with a RangeError naming the option', () => {
    const f = fakeFactory();
    expect(() => createTextPath(f.factory, textModel, { maxWords: 0 })).toThrow(/maxWords/);
    expect(() => createTextPath(f.factory, textModel, { minIntervalMs: -1 })).toThrow(/minIntervalMs/);
  });
});
