/**
 * deriveStreamEvents with endpointing 'asr': each non-empty final transcript ends one turn spanning
 * its words and carrying its text, also when the final arrives after the frames it covers (a live
 * recogniser lags); empty finals end nothing; a final without word times spans the audio since the
 * previous final; VAD segments are ignored in this mode. With endpointing 'vad' and a recogniser
 * (transcriptWaitMs), a turn waits for the final heard past its end and takes the final words spoken
 * in it, each word in one turn.
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { deriveStreamEvents } from '../../streams/turns.js';
import type { PipelineEvent, TimedWord, TurnEvent } from '../../core/types.js';
import { affectFrame } from '../helpers/affect-frame.js';
import { resolvePipelineOptions } from '../../streams/pipeline.js';
import type { VoiceSegment } from '../../streams/vad.js';

const frame = (tMs: number, valence: number): PipelineEvent => affectFrame({ tMs, valence, arousal: 0.3 });
const final = (tMs: number, text: string, words: Array<[number, number]>): PipelineEvent => ({
  kind: 'transcript',
  transcript: {
    streamId: 's',
    tMs,
    text,
    final: true,
    words: words.map(([startMs, endMs], i): TimedWord => ({ word: text.trim().split(/\s+/)[i] ?? 'w', startMs, endMs, conf: 1 })),
  },
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

  it('a final flushed at the end, past the last frame (a call hung up mid-word), stamps its turn no earlier than itself', async () => {
    const ev: PipelineEvent[] = [];
    for (let t = 250; t <= 3750; t += 250) ev.push(frame(t, 0.2));
    // The recogniser heard 70 ms more than the last frame covers; its last partial is flushed as a final.
    ev.push(final(3820, 'hello', [[1200, 3630]]));
    const got = await turns(ev);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ startMs: 1200, endMs: 3630, transcript: 'hello' });
    expect(got[0]!.tMs).toBe(3820);
  });

  it('end-pointing given as a function switches from finals to VAD segments (the recogniser failed): the turn already heard still goes out', async () => {
    let mode: 'asr' | 'vad' = 'asr';
    const segments: VoiceSegment[] = [];
    const ev: PipelineEvent[] = [];
    for (let t = 250; t <= 9000; t += 250) {
      ev.push(frame(t, 0.2));
      // A final for the first utterance; then the recogniser dies and the VAD reports the second one.
      if (t === 3000) ev.push(final(3000, 'first', [[1000, 2000]]));
    }
    const derive = deriveStreamEvents({
      terms: RUSSELL_1980_TERMS,
      escalation: { enabled: false },
      endpointing: () => mode,
      segments,
      minVoicedFraction: 0.2,
      windowMs: 1000,
    });
    const out: PipelineEvent[] = [];
    // Events one at a time, switching as the pipeline would (a segment ending at 6000 is reported at 6300).
    await new Promise<void>((resolve) =>
      from(ev)
        .pipe(derive)
        .subscribe({
          next: (e) => {
            out.push(e);
            if (e.kind === 'affect' && e.point.tMs === 2500) segments.push({ streamId: 's', startMs: 1000, endMs: 2000, detectedAtMs: 2300 });
            if (e.kind === 'affect' && e.point.tMs === 3250) mode = 'vad';
            if (e.kind === 'affect' && e.point.tMs === 6500) segments.push({ streamId: 's', startMs: 4000, endMs: 6000, detectedAtMs: 6300 });
          },
          complete: resolve,
        }),
    );
    const got = out.flatMap((e) => (e.kind === 'turn' ? [[e.turn.startMs, e.turn.endMs, e.turn.transcript]] : []));
    // The VAD segment of the first utterance, reported while finals ended the turns, is not a second turn.
    expect(got).toEqual([
      [1000, 2000, 'first'],
      [4000, 6000, undefined],
    ]);
  });

  it('turnEndpointing is validated (RangeError naming the option)', () => {
    expect(() => resolvePipelineOptions({ turnEndpointing: 'words' as never })).toThrow(
      "affectPipeline: turnEndpointing must be 'auto', 'vad' or 'asr', got words",
    );
  });
});

describe("VAD-ended turns with a recogniser ('vad' + transcriptWaitMs)", () => {
  /** Runs the VAD end-pointing over events; `segments` as the VAD stage reports them. */
  async function vadTurns(events: PipelineEvent[], segments: VoiceSegment[], transcriptWaitMs?: number): Promise<PipelineEvent[]> {
    return lastValueFrom(
      from(events).pipe(
        deriveStreamEvents({
          terms: RUSSELL_1980_TERMS,
          escalation: { enabled: false },
          endpointing: 'vad',
          segments: [...segments],
          minVoicedFraction: 0.2,
          windowMs: 1000,
          ...(transcriptWaitMs !== undefined ? { transcriptWaitMs } : {}),
        }),
        toArray(),
      ),
    );
  }
  const kinds = (out: PipelineEvent[]) =>
    out.flatMap((e) => (e.kind === 'turn' ? [`turn:${e.turn.transcript ?? '-'}`] : e.kind === 'transcript' ? [`final:${e.transcript.text}`] : []));
  const seg = (startMs: number, endMs: number, detectedAtMs = endMs + 300): VoiceSegment => ({ streamId: 's', startMs, endMs, detectedAtMs });
  /** Frames every 250 ms up to `toMs`, with `extra` events inserted after the frame at their key time. */
  const events = (toMs: number, extra: Record<number, PipelineEvent>): PipelineEvent[] =>
    Array.from({ length: toMs / 250 }, (_, i) => (i + 1) * 250).flatMap((t) => [frame(t, 0.2), ...(extra[t] ? [extra[t]] : [])]);

  it("a final that the recogniser end-points after the VAD's turn end still lands in that turn (the turn waits for it)", async () => {
    // Speech 1000-2500 ms; the VAD ends it at 2800, the turn is due at 3000; the recogniser's final (0.5 s of trailing silence, then its lag) at 3750.
    const ev = events(6000, {
      3750: final(3750, 'hello there', [
        [1000, 1500],
        [1600, 2400],
      ]),
    });
    expect(kinds(await vadTurns(ev, [seg(1000, 2500)], 2000))).toEqual(['final:hello there', 'turn:hello there']);
    // Without the wait (no recogniser's say), the turn went out at 3000 with no transcript, and the words were in no turn.
    expect(kinds(await vadTurns(ev, [seg(1000, 2500)], 0))).toEqual(['turn:-', 'final:hello there']);
  });

  it('a final spanning two VAD segments gives each turn its own words, none twice', async () => {
    // Two segments 400 ms apart (the VAD ends turns at 300 ms of silence, the recogniser waits 500 ms): one final at 4750.
    const ev = events(8000, {
      4750: final(4750, 'one two three four', [
        [1000, 1500],
        [1600, 2400],
        [2900, 3400],
        [3500, 4200],
      ]),
    });
    const out = await vadTurns(ev, [seg(1000, 2500), seg(2900, 4300)], 2000);
    expect(kinds(out)).toEqual(['final:one two three four', 'turn:one two', 'turn:three four']);
  });

  it('a segment without words (a cough) waits at most transcriptWaitMs more audio, then goes out without a transcript', async () => {
    const out = await vadTurns(events(8000, {}), [seg(1000, 1600)], 2000);
    const turn = out.find((e) => e.kind === 'turn');
    expect(turn?.kind === 'turn' && turn.turn).toMatchObject({ startMs: 1000, endMs: 1600 });
    expect(turn?.kind === 'turn' && turn.turn.transcript).toBeUndefined();
    // Due at max(detected 1900, end + half a window 2100) = 2100, then 2000 ms more: out after the frame at 4250.
    expect(turn?.kind === 'turn' && turn.turn.tMs).toBe(4250);
    expect(() => deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation: {}, minVoicedFraction: 0.2, windowMs: 1000, transcriptWaitMs: -1 })).toThrow(
      'deriveStreamEvents: transcriptWaitMs must be >= 0, got -1',
    );
  });

  it("a monologue's words are bounded: a turn keeps its last 4096 final words, in order", async () => {
    // 100 finals of 50 words, one every 6 s, all inside one 10-minute segment.
    const ev: PipelineEvent[] = [];
    let w = 0;
    for (let t = 250; t <= 601_000; t += 250) {
      ev.push(frame(t, 0.2));
      if (t % 6000 === 0 && t <= 600_000) {
        const spans = Array.from({ length: 50 }, (_, i): [number, number] => [t - 6000 + i * 100, t - 6000 + i * 100 + 80]);
        ev.push(final(t, spans.map(() => `w${w++}`).join(' '), spans));
      }
    }
    const out = await vadTurns(ev, [seg(0, 600_000)], 2000);
    const turn = out.find((e) => e.kind === 'turn');
    const said = turn?.kind === 'turn' ? (turn.turn.transcript ?? '').split(' ') : [];
    expect(said).toHaveLength(4096);
    expect([said[0], said.at(-1)]).toEqual([`w${5000 - 4096}`, 'w4999']);
  });

  it('a turn still waiting when the stream ends goes out with the final heard at the end (a call hung up mid-word)', async () => {
    const ev = [...events(3000, {}), final(3000, 'bye', [[2000, 2900]])];
    expect(kinds(await vadTurns(ev, [seg(1000, 3000, 3000)], 2000))).toEqual(['final:bye', 'turn:bye']);
  });
});
