/**
 * deriveStreamEvents with endpointing 'asr': each non-empty final transcript ends one turn spanning
 * its words and carrying its text, also when the final arrives after the frames it covers (a live
 * recogniser lags); empty finals end nothing; a final without word times spans the audio since the
 * previous final; VAD segments are ignored in this mode.
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { deriveStreamEvents } from '../../streams/turns.js';
import type { PipelineEvent, TimedWord, TurnEvent } from '../../core/types.js';
import { affectFrame } from '../helpers/affect-frame.js';
import { resolvePipelineOptions } from '../../streams/pipeline.js';

const frame = (tMs: number, valence: number): PipelineEvent => affectFrame({ tMs, valence, arousal: 0.3 });
const final = (tMs: number, text: string, words: Array<[number, number]>): PipelineEvent => ({
  kind: 'transcript',
  transcript: { streamId: 's', tMs, text, final: true, words: words.map(([startMs, endMs]): TimedWord => ({ word: 'w', startMs, endMs, conf: 1 })) },
});

async function turns(events: PipelineEvent[]): Promise<TurnEvent[]> {
  const segments = [{ streamId: 's', startMs: 0, endMs: 9000, detectedAtMs: 9000 }];
  const out = await lastValueFrom(
    from(events).pipe(
      deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation: { enabled: false }, endpointing: 'asr', segments, minVoicedFraction: 0.2, windowMs: 1000 }),
      toArray(),
    ),
  );
  return out.flatMap((e) => (e.kind === 'turn' ? [e.turn] : []));
}

describe("turns end-pointed by ASR finals ('asr')", () => {
  it('one turn per non-empty final, spanning its words, with its text and the mean of its frames', async () => {
    const ev: PipelineEvent[] = [];
    // Frames every 250 ms; valence 0.5 during the first utterance (1-2.5 s), -0.5 during the second (4-5 s).
    for (let t = 250; t <= 7000; t += 250) {
      ev.push(frame(t, t > 1000 && t <= 3000 ? 0.5 : t > 4000 && t <= 5500 ? -0.5 : 0));
      if (t === 3500)
        ev.push(
          final(3500, ' hello there ', [
            [1000, 1400],
            [1500, 2500],
          ]),
        );
      if (t === 3750) ev.push(final(3750, '', []));
      if (t === 6000) ev.push(final(6000, 'bye', [[4000, 5000]]));
    }
    const got = await turns(ev);
    expect(got.map((t) => [t.startMs, t.endMs, t.transcript])).toEqual([
      [1000, 2500, 'hello there'],
      [4000, 5000, 'bye'],
    ]);
    expect(got[0]!.mean.valence).toBeGreaterThan(0.3);
    expect(got[1]!.mean.valence).toBeLessThan(-0.3);
  });

  it('a final that arrives after the frames it covers (lagging recogniser) ends its turn at once; a final without word times spans the audio since the previous final', async () => {
    const ev: PipelineEvent[] = [];
    for (let t = 250; t <= 6000; t += 250) ev.push(frame(t, 0.2));
    ev.push(final(2500, 'late', [[1000, 2000]]));
    ev.push(final(5000, 'no times', []));
    const out = await lastValueFrom(
      from(ev).pipe(
        deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation: { enabled: false }, endpointing: 'asr', minVoicedFraction: 0.2, windowMs: 1000 }),
        toArray(),
      ),
    );
    // The first turn follows its final directly (its frames were all in), before the second final.
    const kinds = out.slice(-4).map((e) => (e.kind === 'turn' ? `turn:${e.turn.transcript}` : e.kind === 'transcript' ? `final:${e.transcript.text}` : e.kind));
    expect(kinds).toEqual(['final:late', 'turn:late', 'final:no times', 'turn:no times']);
    const ts = out.flatMap((e) => (e.kind === 'turn' ? [e.turn] : []));
    expect(ts[1]).toMatchObject({ startMs: 2500, endMs: 5000 });
  });

  it('turnEndpointing is validated (RangeError naming the option)', () => {
    expect(() => resolvePipelineOptions({ turnEndpointing: 'words' as never })).toThrow(
      "affectPipeline: turnEndpointing must be 'auto', 'vad' or 'asr', got words",
    );
  });
});
