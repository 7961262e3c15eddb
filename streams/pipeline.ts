/**
 * The affect pipeline for one stream: audio chunks in, pipeline events out.
 *
 *   audio ─┬─ windowBySamples ─ inferSpeech (bounded) ─ fuseAffect ─ smoothAffect ─ labelAffect → affect
 *          └─ textPath (optional): transcripts → transcript events; text estimates → fuseAffect
 *
 * The audio is multicast with `connect`, so the speech and text paths see the same chunks and both
 * are subscribed before the first chunk flows.
 */
import { connect, EMPTY, ignoreElements, map, merge, Observable, tap, type OperatorFunction } from 'rxjs';
import type { TextAffectOutput, VoiceDetector } from '../models/ports.js';
import type { EmotionTerm } from '../core/emotion-terms.js';
import { MAX_FLOW_CHUNK_MS, type FlowControl } from './flow.js';
import { DEFAULT_FUSE_AFFECT, fuseAffect, resolveFuseAffectOptions, type Fuser } from './operators/fuse-affect.js';
import {
  inferSpeech,
  inferVoicedSpeech,
  resolveInferSpeechOptions,
  type InferSpeechOptions,
  type SpeechInferer,
  type SpeechWindowEstimate,
  type UnvoicedWindowEstimate,
} from './operators/infer-speech.js';
import { labelAffect } from './operators/label-affect.js';
import { smoothAffect } from './operators/smooth-affect.js';
import { resolveWindowOptions, windowBySamples } from './operators/window-by-samples.js';
import { resolveSmoothingOptions, type SmoothingOptions } from './smoothing.js';
import {
  samplesToMs,
  type AffectPoint,
  type AudioChunk,
  type AudioWindow,
  type PipelineEvent,
  type Stamped,
  type StreamState,
  type TranscriptEvent,
} from '../core/types.js';
import { RUSSELL_1980_TERMS } from '../core/emotion-terms.js';
import { DEFAULT_TURN_TRANSCRIPT_WAIT_MS, deriveStreamEvents, resolveEscalationOptions, type EscalationOptions, type TurnEndpointing } from './turns.js';
import { detectVoice, resolveVadOptions, type VadOptions, type VoiceSegment } from './vad.js';

/** The text path's outputs (see streams/text-path.ts). */
export interface TextPathOutputs {
  readonly transcripts$: Observable<TranscriptEvent>;
  readonly estimates$: Observable<Stamped<TextAffectOutput>>;
  /** Errors after which the stream went on speech-only; published as 'degraded' status events. */
  readonly errors$?: Observable<{ readonly message: string }>;
  /**
   * Optional progress: audio ms up to which every transcript and text estimate has been emitted.
   * Offline runs (with a flow) wait for it before fusing a window, which makes text fusion
   * deterministic and paces the source to the ASR's speed.
   */
  readonly progress$?: Observable<number>;
}

/** Builds the text path for one stream from that stream's audio. */
export type TextPath = (audio$: Observable<AudioChunk>) => TextPathOutputs;

/** Models and optional text path the pipeline runs with. */
export interface PipelineDeps {
  readonly speech: SpeechInferer;
  readonly fusion: Fuser;
  readonly textPath?: TextPath;
  /**
   * Voice activity detector. With one, frames carry `voiced`, unvoiced windows hold the smoothed
   * trajectory, and each voiced segment ends in a `turn` event. Without one: no `voiced`, no hold,
   * no turns (the behaviour before voice activity detection).
   */
  readonly vad?: VoiceDetector;
}

/** Options for {@link affectPipeline}. */
export interface PipelineOptions {
  /** Analysis window length, ms of audio. Default 1000. */
  windowMs: number;
  /** Hop between frames, ms of audio. Default 250 (4 frames/s). */
  hopMs: number;
  /** Shortest end-of-input tail (ms) that still gets a final window. Default 100. */
  minTailMs: number;
  /** What the speech stage does with windows while the model is busy. Default 'latest' (live); offline runs use 'queue' with a flow. */
  whenBusy: InferSpeechOptions['whenBusy'];
  /** Windows in the speech model at once. Default 1. */
  maxInFlight: number;
  /** Bound of the speech stage's queue in 'queue' mode. Default 16. */
  maxQueue: number;
  /** Credit counter shared with an offline source (lossless, bounded). */
  flow?: FlowControl;
  /** Smoothing filter and time constants (ms of audio). Default kalman-cv (constant-velocity Kalman), tauMs 1000. */
  smoothing: Partial<SmoothingOptions>;
  /** Text estimates older than this (ms of audio) are not fused. Default 8000. */
  textMaxAgeMs: number;
  /** Emotion terms for labels. Default Russell (1980). */
  terms: readonly EmotionTerm[];
  /** Emit 'degraded' / 'live' status events when windows start / stop being dropped. Default true. */
  statusEvents: boolean;
  /** Clean frames in a row before a degraded stream reports 'live' again. Default 8. */
  recoverAfterFrames: number;
  /** Called for each dropped window. */
  onDrop?: InferSpeechOptions['onDrop'];
  /** Voice activity thresholds, hold and end-pointing (used when deps.vad is given). */
  vad: Partial<VadOptions>;
  /** Escalation alerts (arousal rising while valence falls, sustained). Default on, 2 s. */
  escalation: Partial<EscalationOptions>;
  /**
   * What ends a turn: 'auto' (default) — an ASR final result when the stream has a text path, else
   * the end of a voiced segment when VAD is on (else no turns); 'vad' or 'asr' to force one.
   */
  turnEndpointing: 'auto' | TurnEndpointing;
}

export const DEFAULT_PIPELINE: PipelineOptions = {
  windowMs: 1000,
  hopMs: 250,
  minTailMs: 100,
  whenBusy: 'latest',
  maxInFlight: 1,
  maxQueue: 16,
  smoothing: {},
  textMaxAgeMs: 8000,
  terms: RUSSELL_1980_TERMS,
  statusEvents: true,
  recoverAfterFrames: 8,
  vad: {},
  escalation: {},
  turnEndpointing: 'auto',
};

/** Validates and completes pipeline options (RangeError naming the option). */
export function resolvePipelineOptions(opts: Partial<PipelineOptions> = {}): PipelineOptions {
  const o = { ...DEFAULT_PIPELINE, ...opts };
  resolveWindowOptions({ windowMs: o.windowMs, hopMs: o.hopMs, minTailMs: o.minTailMs });
  resolveSmoothingOptions(o.smoothing);
  resolveVadOptions(o.vad);
  resolveEscalationOptions(o.escalation);
  resolveInferSpeechOptions({ whenBusy: o.whenBusy, maxInFlight: o.maxInFlight, maxQueue: o.maxQueue });
  resolveFuseAffectOptions({ textMaxAgeMs: o.textMaxAgeMs });
  if (!['auto', 'vad', 'asr'].includes(o.turnEndpointing))
    throw new RangeError(`affectPipeline: turnEndpointing must be 'auto', 'vad' or 'asr', got ${String(o.turnEndpointing)}`);
  if (!Number.isInteger(o.recoverAfterFrames) || o.recoverAfterFrames < 1)
    throw new RangeError(`affectPipeline: recoverAfterFrames must be an integer >= 1, got ${o.recoverAfterFrames}`);
  return o;
}

/**
 * AudioChunk → PipelineEvent for one stream. Affect events carry smoothed, labelled points stamped
 * in audio time; transcript events pass through from the text path; status events report when the
 * speech stage starts or stops dropping windows.
 */
export function affectPipeline(deps: PipelineDeps, opts: Partial<PipelineOptions> = {}): OperatorFunction<AudioChunk, PipelineEvent> {
  const o = resolvePipelineOptions(opts);
  const inferOpts: Partial<InferSpeechOptions> = {
    whenBusy: o.whenBusy,
    maxInFlight: o.maxInFlight,
    // In queue mode with a flow, leave room for every window the chunk that arrives while the source
    // pauses can complete (a short hop completes many per chunk), so an offline run never drops.
    maxQueue: o.flow && o.whenBusy === 'queue' ? Math.max(o.maxQueue, o.flow.highWater + Math.ceil(MAX_FLOW_CHUNK_MS / o.hopMs) + 8) : o.maxQueue,
    ...(o.flow ? { flow: o.flow } : {}),
    ...(o.onDrop ? { onDrop: o.onDrop } : {}),
  };
  return (audio$) =>
    audio$.pipe(
      connect((shared) => {
        const text = deps.textPath?.(shared);
        const vad = deps.vad ? resolveVadOptions(o.vad) : undefined;
        // Turns end at ASR finals when the stream has a text path (or when asked), else at VAD segment
        // ends; 'auto' falls back to the VAD when the text path fails (turns go on, without text).
        let textFailed = false;
        const endpointing = (): TurnEndpointing => (o.turnEndpointing === 'auto' ? (text && !textFailed ? 'asr' : 'vad') : o.turnEndpointing);
        // Ended voiced segments, pushed by the VAD stage and turned into turn events downstream (while end-pointing is 'vad').
        const segments: VoiceSegment[] = [];
        const onSegment = (seg: VoiceSegment): void => {
          if (endpointing() === 'vad') segments.push(seg);
        };
        const affect$ = shared.pipe(
          windowBySamples({ windowMs: o.windowMs, hopMs: o.hopMs, minTailMs: o.minTailMs }),
          deps.vad && vad
            ? detectVoice(deps.vad, { ...vad, onSegment, ...(o.flow ? { flow: o.flow } : {}), ...(o.onDrop ? { onDrop: o.onDrop } : {}) })
            : (w$: Observable<AudioWindow>) => w$,
          // Unvoiced windows (held by the smoother anyway) skip the speech model and fusion unless vad.skipSpeechModel is false.
          deps.vad && vad?.skipSpeechModel
            ? inferVoicedSpeech(deps.speech, { ...inferOpts, skipBelowVoiced: vad.minVoicedFraction })
            : (inferSpeech(deps.speech, inferOpts) as OperatorFunction<AudioWindow, SpeechWindowEstimate | UnvoicedWindowEstimate>),
          fuseAffect(deps.fusion, {
            textMaxAgeMs: o.textMaxAgeMs,
            // Offline, the fusion backlog is sized like the speech queue: unvoiced windows skip the speech
            // model and reach fusion in bursts (a chunk's worth at a short hop), which must not overflow it.
            ...(o.flow ? { flow: o.flow, maxBacklog: Math.max(DEFAULT_FUSE_AFFECT.maxBacklog, inferOpts.maxQueue ?? 0) } : {}),
            ...(text ? { estimates$: text.estimates$ } : {}),
            // Offline (flow) runs wait for the text path; live runs never do.
            ...(text?.progress$ && o.flow ? { textProgress$: text.progress$, waitForText: true } : {}),
          }),
          smoothAffect({ ...o.smoothing, ...(vad ? { holdBelowVoiced: vad.minVoicedFraction, holdTauMs: vad.holdTauMs } : {}) }),
          labelAffect({ terms: o.terms }),
          o.statusEvents ? withDropStatus(o.recoverAfterFrames, o.hopMs) : map((point): PipelineEvent => ({ kind: 'affect', point })),
        );
        const derive = deriveStreamEvents({
          terms: o.terms,
          escalation: o.escalation,
          endpointing: o.turnEndpointing === 'auto' && text ? endpointing : endpointing(),
          ...(vad ? { segments } : {}),
          // VAD turns wait for the recogniser's final covering their words (it end-points later than the VAD).
          // (No wait once the text path failed: no final will come.)
          ...(text && o.turnEndpointing === 'vad' ? { transcriptWaitMs: () => (textFailed ? 0 : DEFAULT_TURN_TRANSCRIPT_WAIT_MS) } : {}),
          minVoicedFraction: vad?.minVoicedFraction ?? 0,
          windowMs: o.windowMs,
        });
        if (!text) return affect$.pipe(derive);
        const transcripts$ = text.transcripts$.pipe(map((transcript): PipelineEvent => ({ kind: 'transcript', transcript })));
        // Text-path failures degrade the stream to speech-only; they are reported, never fatal.
        let streamId = '';
        let lastMs = 0;
        const clock$ = shared.pipe(
          tap((c) => {
            streamId = c.streamId;
            lastMs = samplesToMs(c.startSample + c.samples.length);
          }),
          ignoreElements(),
        );
        const textErrors$ = (text.errors$ ?? EMPTY).pipe(
          tap(() => (textFailed = true)),
          map((e): PipelineEvent => ({
            kind: 'status',
            streamId,
            tMs: lastMs,
            state: 'degraded',
            message: `text path stopped, speech only from here: ${e.message}`,
          })),
        );
        // Offline (synced) runs put transcripts in audio-time order among the frames, so the whole
        // output is the same on every run; live runs send each transcript as soon as it is heard.
        if (text.progress$ && o.flow) return merge(clock$, textErrors$, inAudioOrder(affect$, transcripts$).pipe(derive));
        return merge(clock$, merge(affect$, transcripts$).pipe(derive), textErrors$);
      }),
    );
}

/** Most transcripts held back for ordering; past it the oldest is sent at once (never lost). */
const MAX_HELD_TRANSCRIPTS = 256;

/**
 * Merges transcripts into the frames in audio-time order: a transcript at tMs goes out just before
 * the first frame with a later time (or at the end). Correct when every transcript up to a frame's
 * time has arrived before that frame (offline text sync guarantees it).
 */
function inAudioOrder(affect$: Observable<PipelineEvent>, transcripts$: Observable<PipelineEvent>): Observable<PipelineEvent> {
  return new Observable<PipelineEvent>((sub) => {
    const held: PipelineEvent[] = [];
    let open = 2;
    const done = (): void => {
      if (--open > 0) return;
      for (const t of held.splice(0)) sub.next(t);
      sub.complete();
    };
    const tSub = transcripts$.subscribe({
      next: (t) => {
        held.push(t);
        if (held.length > MAX_HELD_TRANSCRIPTS) sub.next(held.shift()!);
      },
      error: (err: unknown) => sub.error(err),
      complete: done,
    });
    const aSub = affect$.subscribe({
      next: (e) => {
        if (e.kind === 'affect') {
          while (held.length > 0 && held[0]!.kind === 'transcript' && (held[0] as Extract<PipelineEvent, { kind: 'transcript' }>).transcript.tMs <= e.point.tMs)
            sub.next(held.shift()!);
        }
        sub.next(e);
      },
      error: (err: unknown) => sub.error(err),
      complete: done,
    });
    return () => {
      tSub.unsubscribe();
      aSub.unsubscribe();
    };
  });
}

/**
 * Wraps points as affect events and inserts 'degraded'/'live' status events around drop episodes.
 * Overload widens the stream's hop (the model stage keeps the newest window and skips the ones it
 * cannot reach): a frame after skipped windows carries its effective hop (`hopMs`, audio ms since
 * the previous frame), and the status message says how wide it got.
 */
function withDropStatus(recoverAfterFrames: number, hopMs: number): OperatorFunction<AffectPoint, PipelineEvent> {
  return (points$) =>
    new Observable<PipelineEvent>((sub) => {
      let state: StreamState = 'live';
      let clean = 0;
      let prevT: number | undefined;
      return points$.subscribe({
        next: (p) => {
          let point = p;
          if (p.droppedWindows > 0) {
            const widened = prevT !== undefined && p.tMs > prevT ? p.tMs - prevT : (p.droppedWindows + 1) * hopMs;
            point = { ...p, hopMs: Math.round(widened * 1000) / 1000 };
          }
          prevT = p.tMs;
          if (point.droppedWindows > 0) {
            clean = 0;
            if (state === 'live') {
              state = 'degraded';
              sub.next({
                kind: 'status',
                streamId: point.streamId,
                tMs: point.tMs,
                state,
                message: `inference is slower than the audio: hop widened to ${point.hopMs ?? hopMs} ms (${point.droppedWindows} window(s) skipped)`,
              });
            }
          } else if (state === 'degraded' && ++clean >= recoverAfterFrames) {
            state = 'live';
            sub.next({ kind: 'status', streamId: point.streamId, tMs: point.tMs, state, message: 'inference keeps up with the audio again' });
          }
          sub.next({ kind: 'affect', point });
        },
        error: (err: unknown) => sub.error(err),
        complete: () => sub.complete(),
      });
    });
}

export type { AudioWindow };
