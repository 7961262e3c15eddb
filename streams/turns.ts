/**
 * Stream-level events derived from the frames: turns and escalation alerts (arousal rising while
 * valence falls, sustained).
 *
 * A turn is end-pointed either by voice activity (one per voiced segment the VAD reports) or, when
 * ASR runs, by the recogniser's final results (one per non-empty final: the turn spans its words and
 * carries its text), see {@link TurnEndpointing}.
 *
 * Both are pure functions of the affect frames in audio time (and, for turns, of the segments the
 * VAD stage reports), so an offline run gives the same turns and alerts every time.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { locate } from '../core/circumplex.js';
import type { EmotionTerm } from '../core/emotion-terms.js';
import type { AffectPoint, PipelineEvent, TranscriptEvent, AffectSummary, TurnEvent } from '../core/types.js';
import { createEscalationDetector, resolveEscalationOptions, type EscalationOptions } from './escalation.js';
import type { VoiceSegment } from './vad.js';

export {
  DEFAULT_ESCALATION,
  ESCALATION_METHODS,
  VELOCITY_SUSTAIN_MS,
  resolveEscalationOptions,
  type EscalationMethod,
  type EscalationOptions,
} from './escalation.js';

/**
 * What ends a turn: 'vad' — the end of a voiced segment (voice activity end-pointing; the transcript
 * holds the finals heard meanwhile); 'asr' — a final result of the speech recogniser (the turn spans
 * the final's words and carries its text, so every final's words land in exactly one turn).
 */
export type TurnEndpointing = 'vad' | 'asr';

/** Options of {@link deriveStreamEvents}. */
export interface StreamEventsOptions {
  terms: readonly EmotionTerm[];
  escalation: Partial<EscalationOptions>;
  /** Ended voiced segments, in order, pushed by the VAD stage (read and emptied by this stage); used with endpointing 'vad'. */
  segments?: VoiceSegment[];
  /**
   * What ends a turn. Default 'vad' (turns only when `segments` are given). A function is asked at
   * every event: the pipeline's 'auto' answers 'asr' while the speech recogniser runs and 'vad' once
   * it failed, so turns go on (end-pointed by voice activity) when the text path stops.
   */
  endpointing?: TurnEndpointing | (() => TurnEndpointing);
  /** Frames with voiced below this are not part of a turn's summary. Default 0.2. */
  minVoicedFraction: number;
  /** Analysis window (ms): frames up to half a window past a segment's end still belong to it. */
  windowMs: number;
  /**
   * VAD end-pointing with a speech recogniser: a turn that is otherwise ready waits until a final
   * result heard past its end has arrived (the recogniser end-points only after its own trailing
   * silence, typically 0.5–1 s, later than the VAD), at most this much more audio (ms). 0 (default,
   * no recogniser): no wait. A function is asked at every event (the pipeline's answers 0 once the
   * recogniser failed: no final will come).
   */
  transcriptWaitMs?: number | (() => number);
}

/** How long (audio ms) a VAD-ended turn waits for the final result covering its words, when ASR runs. */
export const DEFAULT_TURN_TRANSCRIPT_WAIT_MS = 2000;

/** Most frames kept for turns (bounded; a turn longer than this summarises its last frames). */
const MAX_TURN_FRAMES = 2400;
/**
 * Most final words kept for VAD turns' transcripts (bounded; the oldest go first): about 25 min of
 * speech, more than the MAX_TURN_FRAMES a turn summarises (10 min at the default 250 ms hop).
 */
const MAX_TURN_WORDS = 4096;

const peakOf = (xs: readonly number[]): number => xs.reduce((p, x) => (Math.abs(x) > Math.abs(p) ? x : p), 0);
const meanOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Summarises the frames of a segment into a turn. */
export function summariseTurn(
  seg: VoiceSegment,
  frames: readonly AffectPoint[],
  terms: readonly EmotionTerm[],
  transcript?: string,
  atMs = seg.endMs,
): TurnEvent {
  const v = frames.map((f) => f.valence);
  const a = frames.map((f) => f.arousal);
  const d = frames.filter((f) => f.dominance !== undefined).map((f) => f.dominance as number);
  const mean: AffectSummary = frames.length
    ? { valence: meanOf(v), arousal: meanOf(a), ...(d.length ? { dominance: meanOf(d) } : {}) }
    : { valence: 0, arousal: 0 };
  const peak: AffectSummary = frames.length
    ? { valence: peakOf(v), arousal: peakOf(a), ...(d.length ? { dominance: peakOf(d) } : {}) }
    : { valence: 0, arousal: 0 };
  return {
    streamId: seg.streamId,
    tMs: Math.max(atMs, seg.endMs),
    startMs: seg.startMs,
    endMs: seg.endMs,
    durationMs: seg.endMs - seg.startMs,
    mean,
    peak,
    label: locate(mean.valence, mean.arousal, terms).label,
    confidence: frames.length ? meanOf(frames.map((f) => f.confidence)) : 0,
    frames: frames.length,
    ...(transcript ? { transcript } : {}),
  };
}

/**
 * Passes every pipeline event through and adds `turn` events (when segments are given) and
 * `alert` events (escalation). A turn goes out after the first frame at or past the time its end
 * was detected (so all its frames have been seen), or at the end of the stream.
 */
export function deriveStreamEvents(opts: StreamEventsOptions): OperatorFunction<PipelineEvent, PipelineEvent> {
  // Validates the options when the operator is made, not at the first frame.
  const escalationOptions = resolveEscalationOptions(opts.escalation);
  if (typeof opts.transcriptWaitMs === 'number' && !(opts.transcriptWaitMs >= 0))
    throw new RangeError(`deriveStreamEvents: transcriptWaitMs must be >= 0, got ${opts.transcriptWaitMs}`);
  return (events$) =>
    new Observable<PipelineEvent>((sub) => {
      const frames: AffectPoint[] = [];
      // VAD end-pointing: the words of final results not yet in a turn, each at its midpoint (a final
      // without word times is one item at NaN: it goes with the next turn). Each word lands in one turn.
      const words: Array<{ text: string; midMs: number }> = [];
      const endpointing = (): TurnEndpointing => (typeof opts.endpointing === 'function' ? opts.endpointing() : (opts.endpointing ?? 'vad'));
      const waitMs = (): number =>
        opts.endpointing === 'asr' ? 0 : typeof opts.transcriptWaitMs === 'function' ? opts.transcriptWaitMs() : (opts.transcriptWaitMs ?? 0);
      // ASR end-pointing: each non-empty final becomes a segment (its words' span) with its text.
      const asrSegs: VoiceSegment[] = [];
      const asrText = new Map<VoiceSegment, string>();
      let lastFinalMs = 0;
      const onFinal = (t: TranscriptEvent): void => {
        const text = t.text.trim();
        const after = lastFinalMs;
        lastFinalMs = Math.max(lastFinalMs, t.tMs);
        if (text === '') return;
        // Words carry their audio times; without them the turn spans the audio since the previous final.
        const startMs = t.words.length ? Math.min(...t.words.map((w) => w.startMs)) : after;
        const endMs = t.words.length ? Math.max(...t.words.map((w) => w.endMs)) : t.tMs;
        const seg: VoiceSegment = { streamId: t.streamId, startMs, endMs: Math.max(startMs, endMs), detectedAtMs: t.tMs };
        asrSegs.push(seg);
        asrText.set(seg, text);
      };
      const escalation = createEscalationDetector(escalationOptions, opts.minVoicedFraction);

      /**
       * A turn waits until its end is known and every frame up to half a window past it has been
       * seen; with a recogniser (VAD end-pointing), also for a final heard past its end, or waitMs more.
       */
      const ready = (seg: VoiceSegment, uptoMs: number, wait: number): boolean => {
        const at = Math.max(seg.detectedAtMs, seg.endMs + opts.windowMs / 2);
        return at <= uptoMs && (wait === 0 || lastFinalMs >= seg.endMs || at + wait <= uptoMs);
      };
      let lastFrameMs = 0;
      const emitTurns = (uptoMs: number): void => {
        // Turns from finals first: those already heard still go out after a fall-back to the VAD.
        emitFrom(asrSegs, uptoMs, true);
        if (!opts.segments) return;
        // VAD segments are not used while finals end the turns.
        if (endpointing() === 'asr') opts.segments.length = 0;
        else emitFrom(opts.segments, uptoMs, false);
      };
      const emitFrom = (segs: VoiceSegment[], uptoMs: number, fromFinals: boolean): void => {
        while (segs.length > 0 && ready(segs[0]!, uptoMs, fromFinals ? 0 : waitMs())) {
          const seg = segs.shift()!;
          // Frames stamped inside the segment, or up to half a window after it, that were voiced.
          const last = seg.endMs + opts.windowMs / 2;
          const inSeg = frames.filter((f) => f.tMs > seg.startMs && f.tMs <= last);
          const voiced = inSeg.filter((f) => f.voiced === undefined || f.voiced >= opts.minVoicedFraction);
          let text: string | undefined;
          if (fromFinals) {
            text = asrText.get(seg);
            asrText.delete(seg);
          } else {
            // The final words spoken in the segment (up to half a window past it), in order; words
            // before it that no turn took (the VAD missed them) are dropped from turns.
            let n = 0;
            while (n < words.length && !(words[n]!.midMs > last)) n++;
            text =
              words
                .splice(0, n)
                .filter((w) => !(w.midMs < seg.startMs - opts.windowMs / 2))
                .map((w) => w.text)
                .join(' ') || undefined;
          }
          // Stamped no earlier than the final (or VAD detection) that made it known: a final heard past the
          // last frame (a call hung up mid-word, flushed at the end) must not put its turn before it in time.
          sub.next({ kind: 'turn', turn: summariseTurn(seg, voiced.length ? voiced : inSeg, opts.terms, text, Math.max(lastFrameMs, seg.detectedAtMs)) });
          // Frames before this segment's end are no longer needed.
          while (frames.length > 0 && frames[0]!.tMs <= seg.endMs - opts.windowMs) frames.shift();
        }
      };
      return events$.subscribe({
        next: (e) => {
          sub.next(e);
          if (e.kind === 'transcript') {
            if (e.transcript.final) {
              if (endpointing() === 'asr') {
                onFinal(e.transcript);
                // A final heard after the frames it covers goes out as soon as those frames are in.
                emitTurns(lastFrameMs);
                return;
              }
              lastFinalMs = Math.max(lastFinalMs, e.transcript.tMs);
              const ws = e.transcript.words;
              if (ws.length > 0) for (const w of ws) words.push({ text: w.word, midMs: (w.startMs + w.endMs) / 2 });
              else if (e.transcript.text.trim() !== '') words.push({ text: e.transcript.text.trim(), midMs: Number.NaN });
              if (words.length > MAX_TURN_WORDS) words.splice(0, words.length - MAX_TURN_WORDS);
              // A turn waiting for this final goes out now if its frames are in.
              emitTurns(lastFrameMs);
            }
            return;
          }
          if (e.kind !== 'affect') return;
          frames.push(e.point);
          lastFrameMs = e.point.tMs;
          if (frames.length > MAX_TURN_FRAMES) frames.shift();
          const alert = escalation.push(e.point);
          if (alert) sub.next({ kind: 'alert', alert });
          emitTurns(e.point.tMs);
        },
        error: (err: unknown) => sub.error(err),
        complete: () => {
          emitTurns(Infinity);
          sub.complete();
        },
      });
    });
}
