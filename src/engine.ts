/**
 * The engine: loads the models once and hands out one affect pipeline per stream. Used by `run`
 * (one stream) and `serve` (many streams sharing the same model sessions, batched across streams).
 *
 * ```ts
 * const engine = await createEngine({ device: 'cpu' });
 * const flow = new FlowControl({ highWater: 4 }); // a file: the source waits for inference, no window skipped
 * audioFileSource('talk.wav', { streamId: 'a', flow }).pipe(engine.pipeline('a', { whenBusy: 'queue', flow })).subscribe(console.log);
 * await engine.close();
 * ```
 */
import { catchError, defer, finalize, type OperatorFunction } from 'rxjs';
import * as registry from '../models/registry.js';
import { loadVoskRecognizerFactory } from '../models/asr/vosk-factory.js';
import { StreamingSpeechModel, type StreamingMode } from '../models/streaming-speech.js';
import type { CachedHeadSetting } from '../models/cached-head.js';
import type { VoskFactoryStats } from '../models/asr/vosk-factory.js';
import { createTextPath, type TextPathStats } from '../streams/text-path.js';
import type { Device, FusionModel, SpeechAffectModel, TextAffectModel, VoiceDetector } from '../models/ports.js';
import { affectPipeline, resolvePipelineOptions, type PipelineOptions, type TextPath } from '../streams/pipeline.js';
import type { SmoothingOptions } from '../streams/smoothing.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk, type PipelineEvent } from '../core/types.js';
import { SileroVad } from '../models/silero-vad.js';
import { checkIntraOpThreads, type IntraOpThreads } from '../models/threads.js';
import { parseDevice } from '../models/device.js';
import { AffectError, toAffectError } from '../core/errors.js';
import { getLogger, type Logger } from '../core/log.js';

/** Options for {@link createEngine}. */
export interface EngineOptions {
  /** Where models run: auto (default) picks cuda → webgpu → cpu and logs the provider used. */
  device: Device;
  /** Speech model id from the manifest. Default {@link DEFAULT_SPEECH_MODEL} ('speech-va'). */
  speechModel: string;
  /** Fusion id: 'late' (precision-weighted, default) or a learned fusion model id. */
  fusion: string;
  /**
   * Text model id for the text path. Default with an ASR model: {@link defaultTextModel}
   * (`text-emobank`, bundled). `'none'`:
   * transcripts only, no text modality. Without an ASR model, giving one is a config error.
   */
  textModel?: string;
  /** Vosk model folder (enables transcripts and the text modality). Callers resolve CIRCUMPLEX_VOSK_MODEL into it. */
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
  textPathFor?: (streamId: string, offline: boolean) => TextPath | undefined;
  /**
   * Compute-once streaming of a frame-level speech encoder (models/streaming-speech.ts; needs the
   * model's split graphs under `<model folder>/streaming/`): 'off' (default) runs the whole model on
   * every window; 'cached' runs each new hop through the whole model once per stream (conv frames
   * and every layer's keys/values cached; needs `streaming/step.onnx`; exact on a fresh window,
   * within a measured tolerance after); 'frames' caches the conv front end's frames per stream
   * (exact for layer-norm front ends); 'chunked' also runs the transformer once per hop with left
   * context (approximate).
   */
  speechStreaming?: 'off' | StreamingMode;
  /** 'chunked' streaming: frames (20 ms) of left context per hop. Default 6. */
  speechLeftContextFrames?: number;
  /** 'cached' streaming: the stream's last n cached frames (20 ms) recomputed with every hop (more right context, ≈ 1 + n / 12.5 × the work at a 250 ms hop). Default 0. */
  speechRecomputeFrames?: number;
  /** 'cached' streaming: step workers (streams sharded between them; each holds a copy of the weights). Default 'auto': one single-threaded worker per core on the CPU (≤ 4), one on a GPU. */
  speechStepWorkers?: number | 'auto';
  /** 'cached' streaming: the head refitted for cached pooled states (models/cached-head.ts): 'auto' (default: used when fitted for this hop and recompute setting), 'on' (required), 'off'. */
  speechCachedHead?: CachedHeadSetting;
  /**
   * ONNX intra-op threads per model session (models/threads.ts): 'auto' (default) gives small models
   * one thread and real-size encoders every core (≤ 8); a count, or 0 for onnxruntime's own choice.
   */
  intraOpThreads?: IntraOpThreads;
  /**
   * Voice activity detection (Silero VAD v4, models/silero-vad.ts). Default true: frames carry
   * `voiced`, unvoiced windows hold the trajectory, voiced segments end in `turn` messages. false
   * (`--vad off`): the behaviour before VAD (every window moves the trajectory, no turns).
   */
  vad: boolean;
  /**
   * Which detector runs when `vad` is on: 'silero' (default: Silero VAD v4, MIT) or 'lite'
   * (`--vad lite`: the detector distilled from Silero, models/vad-lite/MODEL_CARD.md; cheaper per
   * stream, a little less exact, CC BY-NC-SA 4.0). Ignored when `voiceDetector` is given.
   */
  vadModel?: VadModel;
  /** Thresholds, hold and end-pointing of the VAD (streams/vad.ts DEFAULT_VAD). */
  vadOptions?: PipelineOptions['vad'];
  /** Escalation alert settings (streams/turns.ts DEFAULT_ESCALATION). */
  escalation?: PipelineOptions['escalation'];
  /** What ends a turn (streams/pipeline.ts): 'auto' (default: ASR finals with a text path, else voice activity), 'vad' or 'asr'. */
  turnEndpointing?: PipelineOptions['turnEndpointing'];
  /** A voice detector to use instead of loading Silero (tests, embedders). */
  voiceDetector?: VoiceDetector;
  logger?: Logger;
}

/** Voice detectors the engine can load ({@link EngineOptions.vadModel}). */
export const VAD_MODELS = ['silero', 'lite'] as const;
export type VadModel = (typeof VAD_MODELS)[number];

export const DEFAULT_ENGINE: EngineOptions = {
  device: 'auto',
  speechModel: 'speech-va',
  fusion: 'late',
  windowMs: 1000,
  hopMs: 250,
  smoothing: {},
  whenBusy: 'latest',
  maxInFlight: 1,
  textMaxAgeMs: 8000,
  vad: true,
};

/** Loaded models plus a pipeline factory. */
export interface Engine {
  readonly options: Readonly<EngineOptions>;
  readonly speech: SpeechAffectModel;
  readonly fusion: FusionModel;
  /** The voice detector, when VAD is on. */
  readonly vad: VoiceDetector | undefined;
  /** True when streams get transcripts and text estimates. */
  readonly hasTextPath: boolean;
  /** The text model the text path runs (undefined: none, e.g. speech-only or `textModel: 'none'`). */
  readonly textModelId: string | undefined;
  /** Text path counters summed over every stream (live object; zeros without a text path). */
  readonly textStats: Readonly<TextPathStats>;
  /** The Vosk factory's counters (live object), when an ASR model is loaded. */
  readonly asrStats: Readonly<VoskFactoryStats> | undefined;
  /** The pipeline for one stream (overrides: e.g. `{ whenBusy: 'queue', flow }` for offline input). */
  pipeline(streamId: string, overrides?: Partial<PipelineOptions>): OperatorFunction<AudioChunk, PipelineEvent>;
  /**
   * Releases every model session. Idempotent. Streams still running end with an error on their
   * frames; `pipeline()` (and so `createAudioFeed`) on a closed engine throws AFFECT_ERR_CONFIG.
   */
  close(): Promise<void>;
}

/** The default speech model: trained on human-labelled speech (models/speech-va/MODEL_CARD.md). */
export const DEFAULT_SPEECH_MODEL = 'speech-va';

/** The text model used with an ASR model when none is named: trained on EmoBank (models/text-emobank/MODEL_CARD.md). */
export const DEFAULT_TEXT_MODEL = 'text-emobank';

/**
 * The text model for a run with an ASR model and no `--text-model`: the bundled `text-emobank`
 * (valence, arousal, dominance learned from human ratings, measured on EmoBank's dev split). The
 * downloadable `roberta-go-emotions` and the fixtures stay available through `--text-model`.
 * `modelsDir` is accepted for callers that resolve downloaded models; the bundled default needs none.
 */
export function defaultTextModel(_modelsDir?: string): string {
  return DEFAULT_TEXT_MODEL;
}

/** Set once the speech-only notice was logged: one line per process, not per stream or engine. */
let speechOnlyNoticeLogged = false;

/**
 * The engine's own options (the pipeline's are checked by resolvePipelineOptions): a wrong device or
 * a non-string model id failed deep in the loader ("opts.providers is not iterable").
 */
function checkEngineOptions(o: EngineOptions): void {
  parseDevice(String(o.device));
  for (const k of ['speechModel', 'fusion'] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') throw new RangeError(`createEngine: ${k} must be a model id (a non-empty string), got ${String(o[k])}`);
  }
  for (const k of ['textModel', 'asrModel', 'modelsDir'] as const) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'string') throw new RangeError(`createEngine: ${k} must be a string when given, got ${String(v)}`);
  }
  if (typeof o.vad !== 'boolean') throw new RangeError(`createEngine: vad must be true or false, got ${String(o.vad)}`);
  if (o.vadModel !== undefined && !(VAD_MODELS as readonly string[]).includes(o.vadModel))
    throw new RangeError(`createEngine: vadModel must be ${VAD_MODELS.map((m) => `'${m}'`).join(' or ')}, got ${String(o.vadModel)}`);
}

/** Loads the models once (speech + fusion, text path when asked) and returns the engine. */
export async function createEngine(opts: Partial<EngineOptions> = {}): Promise<Engine> {
  const o: EngineOptions = { ...DEFAULT_ENGINE, ...opts };
  checkEngineOptions(o);
  const logger = o.logger ?? getLogger();
  // Validate pipeline options before loading anything (fail fast with a RangeError naming the option).
  const base = resolvePipelineOptions({
    windowMs: o.windowMs,
    hopMs: o.hopMs,
    smoothing: o.smoothing,
    whenBusy: o.whenBusy,
    maxInFlight: o.maxInFlight,
    textMaxAgeMs: o.textMaxAgeMs,
    ...(o.vadOptions ? { vad: o.vadOptions } : {}),
    ...(o.escalation ? { escalation: o.escalation } : {}),
    ...(o.turnEndpointing ? { turnEndpointing: o.turnEndpointing } : {}),
  });
  // The model flags next, also before anything loads. An unknown --text-model is named first, even
  // without an ASR model: the user's typo is the precise error (the missing ASR model comes next).
  if (!o.textPathFor && o.textModel !== undefined && o.textModel !== 'none') {
    try {
      registry.resolveSpec(o.textModel, registry.TEXT_MODEL_ROLES);
    } catch (err) {
      const e = toAffectError(err, 'AFFECT_ERR_CONFIG');
      throw new AffectError(e.code, `--text-model: ${e.message}`, { cause: e, ...(e.hint ? { hint: e.hint } : {}) });
    }
  }
  if (!o.textPathFor && o.textModel !== undefined && o.asrModel === undefined) {
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      `--text-model ${o.textModel} needs words to read: give a Vosk model folder with --asr-model (or CIRCUMPLEX_VOSK_MODEL)`,
      { hint: 'see docs/asr.md for getting a Vosk model' },
    );
  }
  const loadOpts = {
    device: o.device,
    logger,
    ...(o.modelsDir ? { modelsDir: o.modelsDir } : {}),
    ...(o.intraOpThreads !== undefined ? { intraOpThreads: checkIntraOpThreads(o.intraOpThreads, 'intraOpThreads') } : {}),
  };

  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    // Reverse order of loading; one failing close must not keep the others open.
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'closing a model failed'));
  };
  try {
    const streaming = o.speechStreaming !== undefined && o.speechStreaming !== 'off' ? o.speechStreaming : undefined;
    const speech: SpeechAffectModel = streaming
      ? await StreamingSpeechModel.load(registry.resolveSpec(o.speechModel, ['speech']), {
          ...loadOpts,
          streaming: {
            mode: streaming,
            hopSamples: Math.round((base.hopMs * PIPELINE_SAMPLE_RATE_HZ) / 1000),
            leftContextFrames: o.speechLeftContextFrames,
            recomputeFrames: o.speechRecomputeFrames,
            stepWorkers: o.speechStepWorkers,
            cachedHead: o.speechCachedHead,
          },
        })
      : await registry.loadSpeechModel(o.speechModel, loadOpts);
    closers.push(() => speech.close());
    logger.info({ model: speech.id, provider: speech.provider, windowSamples: speech.windowSamples }, 'speech model loaded');
    const fusion = await registry.loadFusion(o.fusion, loadOpts);
    closers.push(() => fusion.close());
    let vad: VoiceDetector | undefined;
    if (o.vad) {
      if (o.voiceDetector) vad = o.voiceDetector;
      else {
        const silero = await SileroVad.load({ logger, ...(o.vadModel === 'lite' ? { graph: 'lite' as const } : {}) });
        closers.push(() => silero.close());
        vad = silero;
      }
    }

    let textPathFor = o.textPathFor;
    let textModelId: string | undefined;
    let asrStats: VoskFactoryStats | undefined;
    const textStats: TextPathStats = { droppedSamples: 0, coalescedWindows: 0, textModelErrors: 0 };
    if (!textPathFor && o.asrModel !== undefined) {
      const asr = await loadVoskRecognizerFactory(o.asrModel, { logger });
      closers.push(() => asr.close());
      asrStats = asr.stats;
      logger.info({ model: asr.id, provider: asr.provider }, 'speech recogniser loaded');
      let textModel: TextAffectModel | undefined;
      const wanted = o.textModel ?? defaultTextModel(o.modelsDir);
      if (wanted !== 'none') {
        const tm = await registry.loadTextModel(wanted, loadOpts);
        textModel = tm;
        textModelId = tm.id;
        closers.push(() => tm.close());
        logger.info({ model: tm.id, provider: tm.provider, defaulted: o.textModel === undefined }, 'text model loaded');
      }
      const perStream = createTextPath(asr, textModel, { logger, totals: textStats });
      // Offline streams get recogniser slices of one hop: the paced source always runs at least
      // one hop ahead of fusion, so the slice fusion waits for has always been read.
      const acceptMs = Math.min(1000, base.hopMs);
      textPathFor = (streamId, offline) => perStream(streamId, offline ? { offline: true, acceptMs } : {});
    } else if (!textPathFor && !speechOnlyNoticeLogged) {
      speechOnlyNoticeLogged = true;
      logger.info(
        'speech-only: no ASR model, so no transcripts and no text modality; to add them pass --asr-model DIR or set CIRCUMPLEX_VOSK_MODEL=DIR (circumplex run/serve), or createEngine({ asrModel: DIR }) (docs/asr.md)',
      );
    }

    let closed: Promise<void> | undefined;
    return {
      options: o,
      speech,
      fusion,
      vad,
      hasTextPath: textPathFor !== undefined,
      textModelId,
      textStats,
      asrStats,
      pipeline(streamId, overrides = {}) {
        if (closed) {
          throw new AffectError('AFFECT_ERR_CONFIG', `engine.pipeline("${streamId}"): the engine is closed`, {
            hint: 'create a new engine with createEngine(); close() releases the models for good',
          });
        }
        // A flow means an offline input: the text path syncs with fusion (deterministic output).
        const textPath = textPathFor?.(streamId, overrides.flow !== undefined);
        const pipelineOpts: Partial<PipelineOptions> = {
          ...base,
          ...overrides,
          onDrop: overrides.onDrop ?? ((w, reason, err) => logger.debug({ streamId, windowIndex: w.index, tMs: w.tMs, reason, err }, 'speech window dropped')),
        };
        const run: OperatorFunction<AudioChunk, PipelineEvent> =
          speech instanceof StreamingSpeechModel
            ? // Compute-once streaming: each subscription gets its own frame cache, freed when it ends.
              (audio$) =>
                defer(() => {
                  const perStream = speech.forStream(streamId);
                  return audio$.pipe(
                    affectPipeline({ speech: perStream, fusion, ...(textPath ? { textPath } : {}), ...(vad ? { vad } : {}) }, pipelineOpts),
                    finalize(() => perStream.close()),
                  );
                })
            : affectPipeline({ speech, fusion, ...(textPath ? { textPath } : {}), ...(vad ? { vad } : {}) }, pipelineOpts);
        // A stream still running when the engine closes fails in whichever model it reached first
        // ("voice activity detector is closed"); say what happened instead.
        return (audio$) =>
          audio$.pipe(
            run,
            catchError((err: unknown) => {
              if (!closed) throw err;
              throw new AffectError('AFFECT_ERR_INFERENCE', `stream "${streamId}": the engine was closed while the stream was running`, {
                cause: err,
                stage: 'engine',
                hint: 'end the stream (feed.end(), or unsubscribe) before engine.close()',
              });
            }),
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
