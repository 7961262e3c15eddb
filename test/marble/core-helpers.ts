/** Shared helpers for the streaming-core marble tests (not a test file itself). */
import { expect } from 'vitest';
import { map, timer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { SpeechAffectOutput } from '../../models/ports.js';
import type { AudioChunk, AudioWindow, ModalityEstimate } from '../../core/types.js';
import type { FusionInput } from '../../models/ports.js';

/** A TestScheduler that compares with vitest's deep equality. */
export function createTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A chunk of `n` samples all equal to `value`. */
export function chunk(startSample: number, n: number, value = 0, streamId = 's'): AudioChunk {
  return { streamId, startSample, samples: new Float32Array(n).fill(value) };
}

/** A window whose first sample encodes its index (for fakes that key on the window). */
export function window(index: number, tMs: number, value = index, streamId = 's'): AudioWindow {
  return { streamId, index, startSample: 0, endSample: 16, tMs, samples: new Float32Array(16).fill(value) };
}

/**
 * A fake speech model whose latency is virtual time (timer), and whose output is read from the
 * window's first sample: valence = sample value / 10, arousal = -valence, confidence 1.
 */
export function fakeSpeech(latencyMs: number | ((firstSample: number) => number), windowSamples: number | null = null) {
  return {
    windowSamples,
    infer(samples: Float32Array): Observable<SpeechAffectOutput> {
      const v = samples[0] ?? 0;
      const lat = typeof latencyMs === 'number' ? latencyMs : latencyMs(v);
      return timer(lat).pipe(map(() => ({ valence: v / 10, arousal: -v / 10, confidence: 1 })));
    },
  };
}

/** A fake fusion: text wins when present (so tests can see which text estimate was picked). */
export const fakeFusion = {
  fuse(input: FusionInput): Promise<ModalityEstimate> | Observable<ModalityEstimate> {
    const e = input.text ?? input.speech ?? { valence: 0, arousal: 0, confidence: 0 };
    return timer(0).pipe(map(() => ({ valence: e.valence, arousal: e.arousal, confidence: e.confidence })));
  },
};
