/**
 * createTextPath wiring with a fake (Promise-based) recogniser factory: audio that arrives before
 * the recogniser exists is kept, the recogniser is freed at the end, and ASR failures (create or
 * mid-stream) become one error on errors$, one zero-confidence text estimate, and completion.
 */
import { firstValueFrom, from, Subject, throwError, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { RecognizerResult, SpeechRecognizerFactory, StreamRecognizer, TextAffectModel } from '../../models/ports.js';
import { AffectError } from '../../core/errors.js';
import { createTextPath, TEXT_ERROR_LOG_EVERY_MS, type TextPathStreams } from '../../streams/text-path.js';
import { pino } from 'pino';
import type { AudioChunk } from '../../core/types.js';

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
  return Promise.all([firstValueFrom(p.transcripts$.pipe(toArray())), firstValueFrom(p.estimates$.pipe(toArray())), firstValueFrom(p.errors$.pipe(toArray()))]);
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
    const p = createTextPath(f.factory, textModel, { minIntervalMs: 0, maxAcceptMs: 100 })('s')(audio$);
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

  it('a text model that fails every window is logged once per TEXT_ERROR_LOG_EVERY_MS of audio, not once per window; every failure is counted', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const broken: TextAffectModel = { ...textModel, infer: () => Promise.reject(new Error('text worker died')) };
    // 30 s of audio, every window scored (offline): one failure per text window.
    const p = createTextPath(fakeFactory().factory, broken, { logger })('s', { offline: true, acceptMs: 100 })(from(chunks(300)));
    await collect(p);
    const warns = lines.filter((l) => l.msg === 'text model call failed; window skipped');
    expect(p.stats.textModelErrors).toBeGreaterThan(50);
    expect(warns.length).toBeGreaterThanOrEqual(1);
    expect(warns.length).toBeLessThanOrEqual(Math.ceil(30_000 / TEXT_ERROR_LOG_EVERY_MS) + 1);
    expect(warns.at(-1)).toMatchObject({ streamId: 's', err: 'text worker died' });
  });

  it('rejects bad options with a RangeError naming the option', () => {
    const f = fakeFactory();
    expect(() => createTextPath(f.factory, textModel, { maxWords: 0 })).toThrow(/maxWords/);
    expect(() => createTextPath(f.factory, textModel, { minIntervalMs: -1 })).toThrow(/minIntervalMs/);
  });
});

describe('createTextPath offline sync (progress$)', () => {
  /** A text model that takes `delayMs` of wall time and records when it is busy. */
  function slowTextModel(delayMs: number) {
    let busy = 0;
    let maxBusy = 0;
    const model: TextAffectModel = {
      id: 'slow-text',
      provider: 'cpu',
      infer: async (text) => {
        busy++;
        maxBusy = Math.max(maxBusy, busy);
        await new Promise((r) => setTimeout(r, delayMs));
        busy--;
        return { valence: 0.4, arousal: 0.1, confidence: Math.min(1, text.split(' ').length / 10) };
      },
      close: () => Promise.resolve(),
    };
    return { model, isBusy: () => busy > 0, maxBusy: () => maxBusy };
  }

  type Ev = { kind: 'transcript' | 'estimate' | 'progress'; tMs: number };
  /** Every event of the path, in the order emitted, plus the fed slice sizes. */
  async function runOffline(acceptMs: number, nChunks: number, delayMs: number) {
    const f = fakeFactory();
    const slow = slowTextModel(delayMs);
    // Wrap the factory: an accept while the text model is busy breaks the offline sync.
    let acceptsWhileTextBusy = 0;
    const factory: SpeechRecognizerFactory = {
      ...f.factory,
      create: async (id) => {
        const r = await f.factory.create(id);
        return {
          accept: (s) => {
            if (slow.isBusy()) acceptsWhileTextBusy++;
            return r.accept(s);
          },
          finish: () => r.finish(),
          close: () => r.close(),
        };
      },
    };
    const totals = { droppedSamples: 0, coalescedWindows: 0, textModelErrors: 0 };
    const p = createTextPath(factory, slow.model, { totals })('s', { offline: true, acceptMs })(from(chunks(nChunks)));
    const log: Ev[] = [];
    let progressDone = false;
    p.progress$.subscribe({ next: (ms) => log.push({ kind: 'progress', tMs: ms }), complete: () => (progressDone = true) });
    p.transcripts$.subscribe((t) => log.push({ kind: 'transcript', tMs: t.tMs }));
    await firstValueFrom(p.estimates$.pipe(toArray())).then((es) => es);
    return { log, fed: f.fed, progressDone, acceptsWhileTextBusy, p, totals };
  }

  it('reports progress only once every transcript and estimate before it is out, and paces the recogniser by the text model', async () => {
    const f = fakeFactory();
    const slow = slowTextModel(15);
    const p = createTextPath(f.factory, slow.model)('s', { offline: true, acceptMs: 250 })(from(chunks(20)));
    const log: Ev[] = [];
    let progressDone = false;
    p.progress$.subscribe({ next: (ms) => log.push({ kind: 'progress', tMs: ms }), complete: () => (progressDone = true) });
    p.transcripts$.subscribe((t) => log.push({ kind: 'transcript', tMs: t.tMs }));
    await firstValueFrom(p.estimates$.pipe(toArray()));
    expect(progressDone).toBe(true);
    const progress = log.filter((e) => e.kind === 'progress').map((e) => e.tMs);
    expect(progress.length).toBeGreaterThan(0);
    // Monotonic, one hair below the audio heard after each whole 250 ms slice.
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThanOrEqual(progress[i - 1]!);
    expect(progress[0]).toBeCloseTo(250, 2);
    expect(progress[0]).toBeLessThan(250);
  });

  it('offline: every estimate stamped before a progress value was emitted before it; no accept while the text model runs; whole slices', async () => {
    const r = await runOffline(250, 20, 15);
    expect(r.acceptsWhileTextBusy).toBe(0);
    // 2000 ms in whole 250 ms slices (4000 samples each).
    expect(r.fed).toEqual(Array(8).fill(4000));
    expect(r.progressDone).toBe(true);
  });

  it('offline runs give the same events every time (estimates, transcripts and progress interleaved)', async () => {
    const once = async () => {
      const f = fakeFactory();
      const slow = slowTextModel(3 + Math.floor(Math.random() * 10));
      const p = createTextPath(f.factory, slow.model)('s', { offline: true, acceptMs: 250 })(from(chunks(30)));
      const log: string[] = [];
      p.progress$.subscribe((ms) => log.push(`p${ms.toFixed(3)}`));
      p.transcripts$.subscribe((t) => log.push(`t${t.tMs}:${t.text}`));
      p.estimates$.subscribe((e) => log.push(`e${e.tMs}:${e.value.confidence.toFixed(3)}`));
      await firstValueFrom(p.estimates$.pipe(toArray()));
      return log;
    };
    const a = await once();
    const b = await once();
    expect(a).toEqual(b);
    // Sync invariant: when progress says P, every estimate with tMs < P is already out.
    let lastProgress = -Infinity;
    for (const line of a) {
      if (line.startsWith('p')) lastProgress = Number(line.slice(1));
      if (line.startsWith('e')) expect(Number(line.slice(1).split(':')[0])).toBeGreaterThanOrEqual(lastProgress);
    }
  });

  it('live streams: progress$ never emits and completes with the path; a fast source past maxPendingMs loses audio, offline does not', async () => {
    const slowAsr: SpeechRecognizerFactory = {
      id: 'slow-asr',
      provider: 'fake',
      close: () => Promise.resolve(),
      create: () =>
        Promise.resolve({
          accept: () => new Promise<RecognizerResult>((r) => setTimeout(() => r({ text: '', final: false, words: [] }), 2)),
          finish: () => Promise.resolve({ text: '', final: true, words: [] }),
          close: () => Promise.resolve(),
        }),
    };
    // 30 s of audio arriving synchronously, a recogniser that needs time per call.
    const live = createTextPath(slowAsr, textModel, { maxPendingMs: 10_000 })('s')(from(chunks(300)));
    const liveProgress = await firstValueFrom(live.progress$.pipe(toArray()));
    expect(liveProgress).toEqual([]);
    // About 20 s of the 30 s dropped (the first slice went to the recogniser before the rest came).
    expect(live.stats.droppedSamples).toBeGreaterThan(19_000 * 16);
    const totals = { droppedSamples: 0, coalescedWindows: 0, textModelErrors: 0 };
    const offline = createTextPath(slowAsr, textModel, { maxPendingMs: 10_000, totals })('s', { offline: true, acceptMs: 1000 })(from(chunks(300)));
    const offProgress = await firstValueFrom(offline.progress$.pipe(toArray()));
    expect(offline.stats.droppedSamples).toBe(0);
    expect(offProgress[offProgress.length - 1]).toBeCloseTo(30_000, 2);
    expect(totals.droppedSamples).toBe(0);
  });

  it('sums counters of every stream into `totals`', async () => {
    const totals = { droppedSamples: 0, coalescedWindows: 0, textModelErrors: 0 };
    const f = fakeFactory();
    const path = createTextPath(f.factory, textModel, { maxPendingMs: 500, totals });
    let perStream = 0;
    for (const id of ['a', 'b']) {
      const p = path(id)(from(chunks(20)));
      await firstValueFrom(p.transcripts$.pipe(toArray()));
      expect(p.stats.droppedSamples).toBeGreaterThan(0);
      perStream += p.stats.droppedSamples;
    }
    // 2000 ms arrive at once per stream and at most 500 ms wait: the rest is dropped and summed.
    expect(totals.droppedSamples).toBe(perStream);
    expect(totals.droppedSamples).toBeGreaterThanOrEqual(2 * 1400 * 16);
  });
});
