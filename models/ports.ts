/**
 * The ports the streaming stages talk to. `streams/` depends only on these interfaces; the real
 * adapters (ONNX in worker threads, transformers.js, libvosk in a child process) live beside this
 * file and are the only importers of onnxruntime-node, @huggingface/transformers and vosk.
 */
import type { ModalityEstimate, TimedWord } from '../core/types.js';
import type { ObservableInput } from 'rxjs';

/** Where a model can run. */
export type Device = 'auto' | 'cuda' | 'webgpu' | 'cpu';

/** Anything that holds native resources. `close()` is idempotent. */
export interface ModelHandle {
  /** Manifest id of the model, e.g. `speech-fixture`. */
  readonly id: string;
  /** Execution provider the model actually runs on, e.g. `cpu`, `cuda`, `webgpu`, `libvosk`. */
  readonly provider: string;
  close(): Promise<void>;
}

/** What a speech affect model returns for one window. */
export interface SpeechAffectOutput extends ModalityEstimate {
  /** Dominance, when the model has it (e.g. the MSP-Podcast dimensional model). */
  readonly dominance?: number;
  /** Pooled speech embedding, when the model returns one (used by the learned fusion). */
  readonly embedding?: Float32Array;
  /** The model's own predictive standard deviation per dimension (in [-1, 1] units), when it reports one. */
  readonly sigma?: AffectSigma;
  /** Fraction of the window that is voiced speech (0..1), when the model reports it. */
  readonly voiced?: number;
}

/** A predictive standard deviation per affect dimension, in the units of the [-1, 1] scale. */
export interface AffectSigma {
  readonly valence: number;
  readonly arousal: number;
  readonly dominance?: number;
}

/**
 * A speech affect model: one 16 kHz mono float window in, valence/arousal out.
 * Adapters batch calls from all live streams internally (cross-stream dynamic batching).
 */
export interface SpeechAffectModel extends ModelHandle {
  /** Window length in samples the model expects (windows are padded or cropped to it), or null for any. */
  readonly windowSamples: number | null;
  infer(samples: Float32Array): Promise<SpeechAffectOutput>;
}

/** What a text affect model returns for one text window. */
export interface TextAffectOutput extends ModalityEstimate {
  /** Sentence embedding, when the model has one (zero-shot path, learned fusion). */
  readonly embedding?: Float32Array;
  /** Label probabilities, for the classifier path. */
  readonly labels?: ReadonlyArray<{ readonly label: string; readonly score: number }>;
  /** Dominance (submissive -1 .. dominant +1), when the model predicts it (role text-regression). */
  readonly dominance?: number;
  /** The model's own predictive standard deviation per dimension, when it reports one. */
  readonly sigma?: AffectSigma;
}

/** A text affect model: a text window in, valence/arousal out. */
export interface TextAffectModel extends ModelHandle {
  infer(text: string): Promise<TextAffectOutput>;
}

/** Inputs to fusion: either modality may be missing (no speech, or no words yet). */
export interface FusionInput {
  readonly speech?: SpeechAffectOutput;
  readonly text?: TextAffectOutput;
}

/** Combines the modalities into one estimate. */
export interface FusionModel extends ModelHandle {
  fuse(input: FusionInput): Promise<ModalityEstimate>;
}

/** One recogniser result, in audio time relative to the start of the stream. */
export interface RecognizerResult {
  readonly text: string;
  readonly final: boolean;
  readonly words: readonly TimedWord[];
}

/** A streaming speech recogniser for one stream. One `accept` in flight at a time. */
export interface StreamRecognizer {
  /** Feeds 16 kHz mono float audio; resolves with a partial or final result. */
  accept(samples: Float32Array): Promise<RecognizerResult>;
  /** Flushes at end of stream and returns the last final result. */
  finish(): Promise<RecognizerResult>;
  close(): Promise<void>;
}

/** Makes recognisers; holds the loaded ASR model. */
export interface SpeechRecognizerFactory extends ModelHandle {
  create(streamId: string): Promise<StreamRecognizer>;
}

/**
 * One stream's detector state: frames (a multiple of frameSamples, 16 kHz) in, one probability per
 * frame out, in order. A detector may read `frames` until its answer arrives (the batched Silero
 * detector does not copy them when it gates none): the caller leaves them unchanged until then.
 */
export interface VoiceStream {
  probabilities(frames: Float32Array): ObservableInput<Float32Array>;
  /** The stream is done: a detector batching across streams stops waiting for it. Idempotent. */
  close?(): void;
}

/** A voice activity detector (models/silero-vad.ts; marble tests fake it). */
export interface VoiceDetector {
  /** Samples per frame at 16 kHz. */
  readonly frameSamples: number;
  /** A fresh per-stream state. */
  stream(): VoiceStream;
  /** Called by {@link detectVoice} for each window it drops (the detector's counters, for metrics). */
  countDroppedWindow?(reason: VadDropReason): void;
}

/** Why the VAD stage dropped a window: its queue was full ('overflow'), or the detector refused or failed it ('error'). */
export type VadDropReason = 'overflow' | 'error';
