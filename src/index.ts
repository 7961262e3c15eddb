/**
 * `circumplex`: the engine API, for using the affect tracker in-process (an agent loop, a call
 * backend) instead of through `circumplex serve`.
 *
 * ```ts
 * import { createEngine, createAudioFeed } from 'circumplex';
 * const engine = await createEngine({ device: 'cpu' });          // loads the models once
 * const feed = createAudioFeed(engine, { streamId: 'caller', sampleRateHz: 8000 });
 * feed.frames$.subscribe((e) => { if (e.kind === 'affect') console.log(e.point.label, e.point.valence); });
 * await feed.write(samples);                                       // Float32Array, as audio arrives
 * await feed.end();
 * await engine.close();
 * ```
 *
 * Files and other sources, every window (the way `circumplex run` reads a file): share one
 * {@link FlowControl} between the source and the pipeline, so the source waits for inference:
 *
 * ```ts
 * const flow = new FlowControl({ highWater: 4 });
 * audioFileSource(path, { streamId, flow }).pipe(engine.pipeline(streamId, { whenBusy: 'queue', flow }));
 * ```
 *
 * `engine.pipeline(streamId)` alone is the live policy: a source faster than inference (a file read
 * at disk speed) skips windows, counted in each frame's `droppedWindows`.
 *
 * The wire form of the frames (what `serve` sends) is in `circumplex/client` and `circumplex/protocol`;
 * {@link toWire} turns an event into it.
 */
export {
  createEngine,
  DEFAULT_ENGINE,
  DEFAULT_SPEECH_MODEL,
  DEFAULT_TEXT_MODEL,
  defaultTextModel,
  type Engine,
  type EngineOptions,
  VAD_MODELS,
  type VadModel,
} from './engine.js';
export { createAudioFeed, DEFAULT_AUDIO_FEED, type AudioFeed, type AudioFeedOptions } from './feed.js';
export { AffectError, ERROR_CODES, toAffectError, type AffectErrorOptions, type ErrorCode } from '../core/errors.js';
export { toWire, StreamHub, type Hub, type OpenStreamInfo } from './server/hub.js';
export { AffectServer, DEFAULT_AFFECT_SERVER, type AffectServerOptions, type IngestStreamHook, type RunningServer } from './server/ws-server.js';
export { audioFileSource, probeAudioFile, type AudioFileInfo, type AudioFileSourceOptions } from '../streams/sources/audio-file.js';
export { rawPcmSource, type RawPcmSourceOptions } from '../streams/sources/stdin.js';
export { createMicSource, type MicSourceOptions } from '../streams/sources/mic.js';
export { FlowControl } from '../streams/flow.js';
export {
  PIPELINE_SAMPLE_RATE_HZ,
  type AffectPoint,
  type AudioChunk,
  type ModalityEstimate,
  type PipelineEvent,
  type StreamState,
  type TranscriptEvent,
  type TimedWord,
} from '../core/types.js';
export type { AlertEvent, AffectSummary, TurnEvent } from '../core/types.js';
export {
  createEscalationDetector,
  DEFAULT_ESCALATION,
  ESCALATION_METHODS,
  type EscalationDetector,
  type EscalationFrame,
  type EscalationMethod,
  type EscalationOptions,
} from '../streams/escalation.js';
export type { PipelineOptions } from '../streams/pipeline.js';
export { RUSSELL_1980_TERMS, type EmotionTerm } from '../core/emotion-terms.js';
export { locate, NEUTRAL_LABEL, type CircumplexPosition } from '../core/circumplex.js';
export type { Device } from '../models/ports.js';
