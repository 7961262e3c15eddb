/**
 * Data that flows between the RxJS stages. Every time is audio time: a sample index at the
 * pipeline rate turned into milliseconds, never wall-clock time.
 */

/** The rate every stage after decoding works at. */
export const PIPELINE_SAMPLE_RATE_HZ = 16_000;

/** A run of decoded audio: 16 kHz mono float in [-1, 1], stamped by its first sample index. */
export interface AudioChunk {
  readonly streamId: string;
  /** Index (at 16 kHz) of `samples[0]` since the start of the stream. */
  readonly startSample: number;
  readonly samples: Float32Array;
}

/** A value stamped with the audio time it belongs to. */
export interface Stamped<T> {
  readonly streamId: string;
  /** Audio time in ms since the start of the stream. */
  readonly tMs: number;
  readonly value: T;
}

/** A sliding analysis window over the audio. */
export interface AudioWindow {
  readonly streamId: string;
  /** Window index in the stream, counting every window made (dropped ones too). */
  readonly index: number;
  /** First sample (16 kHz) of the window. */
  readonly startSample: number;
  /** One past the last sample of the window. */
  readonly endSample: number;
  /** Audio time of the window's end, in ms: the frame this window yields is stamped with it. */
  readonly tMs: number;
  readonly samples: Float32Array;
  /** Fraction of the window that is speech (0..1), when voice activity detection runs (streams/vad.ts). */
  readonly voiced?: number;
}

/** The two modalities that can contribute to an affect estimate. */
export type Modality = 'speech' | 'text';

/** One modality's estimate of the speaker's affect. */
export interface ModalityEstimate {
  /** Unpleasant (-1) to pleasant (+1). */
  readonly valence: number;
  /** Calm (-1) to excited (+1). */
  readonly arousal: number;
  /** How much to trust the estimate, 0..1 (0: no information). */
  readonly confidence: number;
  /**
   * Submissive (-1) to dominant (+1), present only when a model supplies it (e.g. a text
   * regression model, or a speech model with a dominance output). Absent means unknown, not 0.
   */
  readonly dominance?: number;
}

/** A raw (unsmoothed) fused estimate for one window. */
export interface AffectEstimate extends ModalityEstimate {
  readonly streamId: string;
  readonly tMs: number;
  /** Index of the audio window it came from. */
  readonly windowIndex: number;
  /** Per-modality estimates that went into the fusion. */
  readonly speech?: ModalityEstimate;
  readonly text?: ModalityEstimate;
  /** Windows dropped by the bounded model stage since the previous estimate. */
  readonly droppedWindows: number;
  /** Fraction of the window that is speech (0..1), when voice activity detection runs. */
  readonly voiced?: number;
  /** Rate of change of the smoothed valence/arousal, per second of audio (set by the smoother). */
  readonly velocity?: AffectVelocity;
}

/** Rate of change of valence and arousal, units per second of audio. */
export interface AffectVelocity {
  readonly valence: number;
  readonly arousal: number;
}

/** A smoothed, labelled point on the circumplex: what subscribers receive (minus `seq`). */
export interface AffectPoint extends ModalityEstimate {
  readonly streamId: string;
  readonly tMs: number;
  /** Nearest emotion term on the circumplex. */
  readonly label: string;
  /** Distance from the centre, 0..1 (clamped). */
  readonly intensity: number;
  /** Angle on the circumplex in degrees, 0 = pleasant, 90 = excited (counter-clockwise). */
  readonly angleDeg: number;
  readonly modalities: readonly Modality[];
  readonly speech?: ModalityEstimate;
  readonly text?: ModalityEstimate;
  readonly droppedWindows: number;
  /**
   * The effective hop of this frame, ms of audio since the stream's previous frame, when the model
   * stage could not keep up and widened it (windows dropped since the previous frame); absent at
   * the configured hop.
   */
  readonly hopMs?: number;
  /** Fraction of the window that is speech (0..1), when voice activity detection runs. */
  readonly voiced?: number;
  /** Rate of change of the smoothed valence/arousal, per second of audio. */
  readonly velocity?: AffectVelocity;
}

/** A recognised word with its audio times. */
export interface TimedWord {
  readonly word: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly conf: number;
}

/** A transcript update from the speech recogniser, in stream audio time. */
export interface TranscriptEvent {
  readonly streamId: string;
  readonly tMs: number;
  readonly text: string;
  readonly final: boolean;
  readonly words: readonly TimedWord[];
}

/** Mean or peak of valence/arousal (and dominance when the frames had it). */
export interface AffectSummary {
  readonly valence: number;
  readonly arousal: number;
  readonly dominance?: number;
}

/** A finished voiced segment with the affect over it. */
export interface TurnEvent {
  readonly streamId: string;
  /** Audio ms at which the turn was emitted: the frame after which its end was known (>= endMs; keeps the stream in audio-time order). */
  readonly tMs: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly durationMs: number;
  /** Mean of the turn's voiced frames. */
  readonly mean: AffectSummary;
  /** Per dimension, the frame value furthest from 0 (signed). */
  readonly peak: AffectSummary;
  /** Nearest term to the mean. */
  readonly label: string;
  /** Mean confidence of the turn's frames. */
  readonly confidence: number;
  /** Frames the summary was taken over. */
  readonly frames: number;
  /** Final transcripts heard during the turn, when ASR runs. */
  readonly transcript?: string;
}

/** An alert about a stream (today only 'escalation'). */
export interface AlertEvent {
  readonly streamId: string;
  readonly tMs: number;
  readonly alert: 'escalation';
  /** Human-readable reason with the measured figures. */
  readonly reason: string;
  /** Audio ms the condition has held for (the 'shift' detector: the span whose mean moved, sustainMs). */
  readonly sustainedMs: number;
  /**
   * Rate of the change, per second: the 'velocity' detector's mean over the sustained span; the
   * 'shift' detector's shift divided by the time between its baseline's and its recent span's centres.
   */
  readonly velocity: { readonly valence: number; readonly arousal: number };
}

/** Everything the pipeline publishes for a stream. */
export type PipelineEvent =
  | { readonly kind: 'affect'; readonly point: AffectPoint }
  | { readonly kind: 'transcript'; readonly transcript: TranscriptEvent }
  | { readonly kind: 'status'; readonly streamId: string; readonly tMs: number; readonly state: StreamState; readonly message: string }
  | { readonly kind: 'turn'; readonly turn: TurnEvent }
  | { readonly kind: 'alert'; readonly alert: AlertEvent };

/** Lifecycle and health states a stream reports to subscribers. */
export type StreamState = 'live' | 'degraded' | 'recorder-restarting' | 'ended' | 'error';

/** Converts a sample index at the pipeline rate to audio ms. */
export function samplesToMs(samples: number, sampleRateHz = PIPELINE_SAMPLE_RATE_HZ): number {
  return (samples * 1000) / sampleRateHz;
}

/** Converts audio ms to a sample count at the pipeline rate (rounded). */
export function msToSamples(ms: number, sampleRateHz = PIPELINE_SAMPLE_RATE_HZ): number {
  return Math.round((ms * sampleRateHz) / 1000);
}
