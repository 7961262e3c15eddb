/**
 * The engine: loads the models once and hands out one affect pipeline per stream. Used by `run`
 * (one stream) and `serve` (many streams sharing the same model sessions, batched across streams).
 *
 * ```ts
 * const engine = await createEngine({ device: 'cpu' });
 * wavFileSource('talk.wav', { streamId: 'a' }).pipe(engine.pipeline('a')).subscribe(console.log);
 * await engine.close();
 * ```
 */
import type { OperatorFunction } from 'rxjs';
import * as registry from '../models/registry.js';
import { loadVoskRecognizerFactory } from '../models/asr/vosk-factory.js';
import { createTextPath } from '../streams/text-path.js';
import type { Device, FusionModel, SpeechAffectModel, TextAffectModel } from '../models/ports.js';
import { affectPipeline, resolvePipelineOptions, type PipelineOptions, type TextPath } from '../streams/pipeline.js';
import type { SmoothingOptions } from '../streams/smoothing.js';
import type { AudioChunk, PipelineEvent } from '../streams/types.js';
import { AffectError } from './errors.js';
import { getLogger, type Logger } from './log.js';

/** Options for {@link createEngine}. */
export interface EngineOptions {
  /** Where models run: auto (default) picks cuda → webgpu → cpu and logs the provider used. */
  device: Device;
  /** Speech model id from the manifest. Default 'speech-fixture'. */
  speechModel: string;
  /** Fusion id: 'late' (precision-weighted, default) or a learned fusion model id. */
  fusion: string;
  /** Text model id (enables the text path together with an ASR model). */
  textModel?: string;
  /** Vosk model folder (enables transcripts and the text path). */
  asrModel?: string;
  /** Folder of downloaded models (default from the environment / models/weights). */
  modelsDir?: string;
  /** Analysis window, ms of audio. Default 1000. */
  windowMs: number;
  /** Hop between frames, ms of audio. Default 250. */
  hopMs: number;
  /** Smoothing filter and its time constants (ms of audio). */
  smoothing: Partial<SmoothingOptions>;
  /** Live policy of the speech stage when inference is slower than the audio. Default 'latest'. */
  whenBusy: PipelineOptions['whenBusy'];
  /** Windows per stream in the speech model at once. Default 1. */
  maxInFlight: number;
  /** Text estimates older than this (ms of audio) are not fused. Default 8000. */
  textMaxAgeMs: number;
  /**
   * Builds the text path for a stream. Normally set by the engine from textModel/asrModel; tests
   * and embedders may inject one.
   */
  textPathFor?: (streamId: string) => TextPath | undefined;
  logger?: Logger;
}

export const DEFAULT_ENGINE: EngineOptions = {
  device: 'auto',
  speechModel: 'speech-fixture',
  fusion: 'late',
  windowMs: 1000,
  hopMs: 250,
  smoothing: {},
  whenBusy: 'latest',
  maxInFlight: 1,
  textMaxAgeMs: 8000,
};

/** Loaded models plus a pipeline factory. */
export interface Engine {
  readonly options: Readonly<EngineOptions>;
  readonly speech: SpeechAffectModel;
  readonly fusion: FusionModel;
  /** True when streams get transcripts and text estimates. */
  readonly hasTextPath: boolean;
  /** The pipeline for one stream (overrides: e.g. `{ whenBusy: 'queue', flow }` for offline input). */
  pipeline(streamId: string, overrides?: Partial<PipelineOptions>): OperatorFunction<AudioChunk, PipelineEvent>;
  /** Releases every model session. Idempotent. */
  close(): Promise<void>;
}

/** Loads the models once (speech + fusion, text path when asked) and returns the engine. */
export async function createEngine(opts: Partial<EngineOptions> = {}): Promise<Engine> {
  const o: EngineOptions = { ...DEFAULT_ENGINE, ...opts };
  const logger = o.logger ?? getLogger();
  // Validate pipeline options before loading anything (fail fast with a RangeError naming the option).
  const base = resolvePipelineOptions({ windowMs: o.windowMs, hopMs: o.hopMs, smoothing: o.smoothing, whenBusy: o.whenBusy, maxInFlight: o.maxInFlight, textMaxAgeMs: o.textMaxAgeMs });
  const loadOpts = { device: o.device, logger, ...(o.modelsDir ? { modelsDir: o.modelsDir } : {}) };

  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    // Reverse order of loading; one failing close must not keep the others open.
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'closing a model failed'));
  };
  try {
    const speech = await registry.loadSpeechModel(o.speechModel, loadOpts);
    closers.push(() => speech.close());
    logger.info({ model: speech.id, provider: speech.provider, windowSamples: speech.windowSamples }, 'speech model loaded');
    const fusion = await registry.loadFusion(o.fusion, loadOpts);
    closers.push(() => fusion.close());

    let textPathFor = o.textPathFor;
    if (!textPathFor && (o.textModel !== undefined || o.asrModel !== undefined)) {
      if (o.asrModel === undefined) {
        throw new AffectError('AFFECT_ERR_CONFIG', `--text-model ${o.textModel ?? ''} needs words to read: give a Vosk model folder with --asr-model (or CIRCUMPLEX_VOSK_MODEL)`, {
          hint: 'see docs/asr.md for getting a Vosk model',
        });
      }
      const asr = await loadVoskRecognizerFactory(o.asrModel, { logger });
      closers.push(() => asr.close());
      logger.info({ model: asr.id, provider: asr.provider }, 'speech recogniser loaded');
      let textModel: TextAffectModel | undefined;
      if (o.textModel !== undefined) {
        const tm = await registry.loadTextModel(o.textModel, loadOpts);
        textModel = tm;
        closers.push(() => tm.close());
        logger.info({ model: tm.id, provider: tm.provider }, 'text model loaded');
      }
      const perStream = createTextPath(asr, textModel, { logger });
      textPathFor = (streamId) => perStream(streamId);
    }

    let closed: Promise<void> | undefined;
    return {
      options: o,
      speech,
      fusion,
      hasTextPath: textPathFor !== undefined,
      pipeline(streamId, overrides = {}) {
        const textPath = textPathFor?.(streamId);
        return affectPipeline(
          { speech, fusion, ...(textPath ? { textPath } : {}) },
          {
            ...base,
            ...overrides,
            onDrop:
              overrides.onDrop ??
              ((w, reason, err) => logger.debug({ streamId, windowIndex: w.index, tMs: w.tMs, reason, err }, 'speech window dropped')),
          },
        );
      },
      close() {
        closed ??= closeAll();
        return closed;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
