/**
 * Shared commander argument parsers, so every subcommand rejects a bad number the same way:
 * `--hop-ms must be a number >= 1, got "abc"`.
 */
import { statSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { AffectError } from '../../core/errors.js';
import { sameFile } from '../../core/files.js';
import type { EnvConfig } from '../../core/config.js';
import { createEngine, DEFAULT_ENGINE, DEFAULT_TEXT_MODEL, type Engine, type EngineOptions } from '../engine.js';
import type { Logger } from '../../core/log.js';
import { JsonlRecorder, refuseExistingRecording } from '../record.js';
import { STREAM_ID, STREAM_ID_RULE } from '../server/hub.js';
import { DEFAULT_ESCALATION, ESCALATION_METHODS, VELOCITY_SUSTAIN_MS, type EscalationMethod, type EscalationOptions } from '../../streams/turns.js';
import { DEFAULT_SMOOTHING, SMOOTHING_FILTERS, type SmoothingFilter } from '../../streams/smoothing.js';
import { parseSpeechStreaming, SPEECH_STREAMING_HELP, type SpeechStreamingFlag } from '../../models/streaming-speech.js';
import { CACHED_HEAD_HELP, CACHED_HEAD_SETTINGS, parseCachedHead, type CachedHeadSetting } from '../../models/cached-head.js';
import { parseIntraOpThreads, THREADS_HELP, type IntraOpThreads } from '../../models/threads.js';

/** Parses a finite number >= `min` (and <= `max` when given); integers only when `integer`. */
export function numberOption(name: string, min: number, integer = false, max = Number.POSITIVE_INFINITY): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}, ${max}]`;
      throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} ${range}, got "${v}"`);
    }
    return n;
  };
}

/** Parses a file path that must not be empty (`--record "$UNSET"` used to record nothing, silently). */
export function fileOption(name: string): (v: string) => string {
  return (v: string): string => {
    if (v.trim() === '') throw new InvalidArgumentError(`${name} needs a file name, got "${v}"`);
    return v;
  };
}

/**
 * Parses a stream id the hub accepts, so a bad --stream-id fails before any model loads (serve used
 * to print the error after listening and then hang; run wrote ids no replay could open).
 */
export function streamIdOption(name: string): (v: string) => string {
  return (v: string): string => {
    if (!STREAM_ID.test(v)) throw new InvalidArgumentError(`${name} must be ${STREAM_ID_RULE}, got "${v}"`);
    return v;
  };
}

/** The escalation flags `run` and `serve` share ({@link addEscalationOptions}). */
export interface EscalationFlags {
  /** `--escalation on|off` (default: CIRCUMPLEX_ESCALATION, else on). */
  escalation?: 'on' | 'off';
  /** `--escalation-sustain-ms` (default: CIRCUMPLEX_ESCALATION_SUSTAIN_MS, else 3000; the velocity method 2000). */
  escalationSustainMs?: number;
  /** `--escalation-method shift|velocity` (default: CIRCUMPLEX_ESCALATION_METHOD, else shift). */
  escalationMethod?: EscalationMethod;
  /** `--escalation-min-z` (shift: standard errors; default 5). */
  escalationMinZ?: number;
  /** `--escalation-min-rate` (velocity method, per second; default 0.02). */
  escalationMinRate?: number;
  /** `--escalation-min-change` (default 0.1). */
  escalationMinChange?: number;
  /** `--escalation-min-blocks` (shift: sustain-long blocks of voiced history before the first alert; default 6). */
  escalationMinBlocks?: number;
}

/** The trajectory-filter flags `run` and `serve` share ({@link addSmoothingOptions}). */
export interface SmoothingFlags {
  /** `--smoothing` (default kalman-cv: the constant-velocity Kalman filter, whose state velocity frames carry). */
  smoothing?: SmoothingFilter;
  /** `--tau-ms` (default 1000): the filter's time constant, ms of audio. */
  tauMs?: number;
}

/** `--vad`: on (Silero), lite (the detector distilled from Silero: models/vad-lite/MODEL_CARD.md) or off. */
export const VAD_FLAGS = ['on', 'lite', 'off'] as const;
export type VadFlag = (typeof VAD_FLAGS)[number];

/** The model flags `run` and `serve` share. */
export interface ModelFlags extends EscalationFlags, SmoothingFlags {
  device?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  speechModel: string;
  fusion: string;
  textModel?: string;
  asrModel?: string;
  windowMs: number;
  hopMs: number;
  /** `--record FILE`, if given. */
  record?: string;
  /** `--record-overwrite` (default off): replace a non-empty `--record` file instead of refusing it. */
  recordOverwrite?: boolean;
  /** `--vad on|lite|off` (default on): voice activity detection (Silero; lite: the distilled detector), holds and turns. */
  vad?: VadFlag;
  /** `--turn-endpointing auto|vad|asr` (default auto: ASR finals when ASR is on, else voice activity). */
  turnEndpointing?: 'auto' | 'vad' | 'asr';
  /** `--speech-streaming off|cached|frames|chunked` (default off): compute-once streaming of the speech encoder. */
  speechStreaming?: SpeechStreamingFlag;
  /** `--threads auto|N` (default auto): ONNX intra-op threads per model session (models/threads.ts). */
  threads?: IntraOpThreads;
  /** `--speech-recompute-frames N` (cached streaming; default 0): the stream's last N cached frames recomputed with every hop. */
  speechRecomputeFrames?: number;
  /** `--speech-step-workers auto|N` (cached streaming; default auto): step workers, streams sharded between them. */
  speechStepWorkers?: number | 'auto';
  /** `--speech-cached-head auto|on|off` (cached streaming; default auto): the head refitted for cached pooled states. */
  speechCachedHead?: CachedHeadSetting;
}

/**
 * Adds the model flags `run` and `serve` share: `--device`, `--threads`, `--speech-model`, `--fusion`,
 * `--text-model`, `--asr-model`, `--vad` and `--turn-endpointing` (one definition, so their help and defaults agree).
 */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--device <device>', 'where models run (default: CIRCUMPLEX_DEVICE or auto)').choices(['auto', 'cuda', 'webgpu', 'cpu']))
    .option('--threads <auto|n>', THREADS_HELP, threadsOption)
    .option('--speech-model <id>', 'speech affect model id', DEFAULT_ENGINE.speechModel)
    .option('--fusion <id>', "fusion: 'late' or a fusion model id", 'late')
    .option('--text-model <id>', `text affect model id, or "none" for transcripts only (needs --asr-model; default: ${DEFAULT_TEXT_MODEL})`)
    .option('--asr-model <dir>', 'Vosk model folder: adds transcripts and the text modality')
    .addOption(
      new Option(
        '--vad <on|lite|off>',
        'voice activity detection (on: Silero; lite: the cheaper detector distilled from it, CC BY-NC-SA): frames carry voiced, silence/noise hold the point, turns; off = every window moves the point',
      )
        .choices([...VAD_FLAGS])
        .default('on'),
    )
    .addOption(
      new Option(
        '--turn-endpointing <mode>',
        'what ends a turn: asr = each final transcript, vad = the end of voice activity, auto = asr when --asr-model is given',
      )
        .choices(['auto', 'vad', 'asr'])
        .default('auto'),
    );
}

/** A parser whose RangeError becomes commander's usage error (same message, exit code 1, no stack trace). */
function usageErrors<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
  };
}

/** Parses `--threads` (auto, or an integer in [0, 256]); a usage error naming the flag otherwise. */
const threadsOption = usageErrors((v): IntraOpThreads => parseIntraOpThreads(v, '--threads'));

/** Parses `auto` or a count checked by {@link numberOption} (`--speech-step-workers`, the bench's `--encoder-step-workers`). */
export function autoOrCountOption(name: string, min: number, max: number): (v: string) => number | 'auto' {
  const count = numberOption(name, min, true, max);
  return (v) => (v.trim() === 'auto' ? 'auto' : count(v));
}

/** Adds `--speech-streaming` (models/streaming-speech.ts) to `run` or `serve`; checked at parse time. */
export function addSpeechStreamingOption(cmd: Command): Command {
  const parse = usageErrors((v): SpeechStreamingFlag => parseSpeechStreaming(v));
  return cmd
    .option('--speech-streaming <mode>', `compute-once streaming of a frame-level speech encoder: ${SPEECH_STREAMING_HELP}`, parse, 'off')
    .option(
      '--speech-recompute-frames <n>',
      "with --speech-streaming cached: recompute the stream's last n cached 20 ms frames with every hop (closer to the full window, ≈ 1 + n/12.5 × the work at a 250 ms hop; docs/bench.md tolerance table)",
      numberOption('--speech-recompute-frames', 0, true, 500),
    )
    .option(
      '--speech-step-workers <auto|n>',
      'with --speech-streaming cached: step workers, each with its own session (a copy of the weights) and a share of the streams; auto = one single-threaded worker per core on the CPU (at most 4), one on a GPU',
      autoOrCountOption('--speech-step-workers', 1, 64),
    )
    .option(`--speech-cached-head <${CACHED_HEAD_SETTINGS.join('|')}>`, `with --speech-streaming cached: ${CACHED_HEAD_HELP}`, usageErrors(parseCachedHead));
}

/**
 * Adds `--smoothing` and `--tau-ms` (streams/smoothing.ts) to `run` or `serve`: the filter every
 * stream's trajectory goes through, local input and ingest alike (one definition, so both commands
 * offer the same filters and defaults).
 */
export function addSmoothingOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--smoothing <filter>',
        'trajectory filter: kalman-cv (default: constant-velocity Kalman, a state with momentum whose velocity frames carry), one-euro, kalman, ema, none',
      )
        .choices([...SMOOTHING_FILTERS])
        .default(DEFAULT_SMOOTHING.filter),
    )
    .option('--tau-ms <ms>', 'smoothing time constant, ms of audio', numberOption('--tau-ms', 1), DEFAULT_SMOOTHING.tauMs);
}

/**
 * Adds the escalation-alert flags (streams/turns.ts EscalationOptions) to `run` or `serve`. Values
 * are checked at parse time (a usage error naming the flag); no default is set here so the
 * environment (CIRCUMPLEX_ESCALATION, CIRCUMPLEX_ESCALATION_METHOD, CIRCUMPLEX_ESCALATION_SUSTAIN_MS) applies when a flag is absent.
 */
export function addEscalationOptions(cmd: Command): Command {
  const d = DEFAULT_ESCALATION;
  return cmd
    .addOption(
      new Option('--escalation <on|off>', 'escalation alerts (arousal rising while valence falls, sustained); default on (or CIRCUMPLEX_ESCALATION)').choices([
        'on',
        'off',
      ]),
    )
    .addOption(
      new Option(
        '--escalation-method <method>',
        `shift (default; or CIRCUMPLEX_ESCALATION_METHOD): the last sustain span's mean against the ${d.baselineMs / 1000} s before it, in units of the stream's own scatter; velocity: the smoother's velocity on every frame of the span (the earlier detector; fires seldom on noisy output, falsely on correlated noise)`,
      ).choices([...ESCALATION_METHODS]),
    )
    .option(
      '--escalation-sustain-ms <ms>',
      `how long (ms of audio) the rise/fall must hold before an alert (default ${d.sustainMs}, velocity method ${VELOCITY_SUSTAIN_MS}; or CIRCUMPLEX_ESCALATION_SUSTAIN_MS)`,
      numberOption('--escalation-sustain-ms', 1, false, 600_000),
    )
    .option(
      '--escalation-min-z <z>',
      `shift method: how many standard errors the shift must stand out by (default ${d.minZ}; lower alerts more often, falsely too)`,
      numberOption('--escalation-min-z', 0.5, false, 100),
    )
    .option(
      '--escalation-min-blocks <n>',
      `shift method: no alert before this many sustain spans of voiced history (default ${d.minBlocks}; with the default span the first alert can come about ${((d.minBlocks + 0.5) * d.sustainMs) / 1000} s into a stream's speech; fewer alert earlier, and falsely more often on noisy output)`,
      numberOption('--escalation-min-blocks', 2, true, 1000),
    )
    .option(
      '--escalation-min-rate <per-s>',
      `velocity method: smallest arousal rise and valence fall per second on every frame of the span (default ${d.minRatePerS})`,
      numberOption('--escalation-min-rate', 0, false, 100),
    )
    .option(
      '--escalation-min-change <x>',
      `smallest arousal rise and valence fall (shift: span mean against the baseline; velocity: over the span) (default ${d.minChange})`,
      numberOption('--escalation-min-change', 0, false, 2),
    );
}

/** Escalation options from the flags, falling back to the environment (undefined fields keep the defaults). */
export function escalationFromFlags(
  flags: EscalationFlags,
  env: Pick<EnvConfig, 'escalation' | 'escalationMethod' | 'escalationSustainMs'>,
): Partial<EscalationOptions> {
  const on = flags.escalation ?? env.escalation;
  const method = flags.escalationMethod ?? env.escalationMethod;
  const sustainMs = flags.escalationSustainMs ?? env.escalationSustainMs;
  return {
    ...(on !== undefined ? { enabled: on === 'on' } : {}),
    ...(method !== undefined ? { method } : {}),
    ...(sustainMs !== undefined ? { sustainMs } : {}),
    ...(flags.escalationMinZ !== undefined ? { minZ: flags.escalationMinZ } : {}),
    ...(flags.escalationMinRate !== undefined ? { minRatePerS: flags.escalationMinRate } : {}),
    ...(flags.escalationMinChange !== undefined ? { minChange: flags.escalationMinChange } : {}),
    ...(flags.escalationMinBlocks !== undefined ? { minBlocks: flags.escalationMinBlocks } : {}),
  };
}

/**
 * `--record` must not name the input file (`--input talk.wav --record talk.wav`, or a link to it):
 * the recording opens before the audio is read and truncates it, so the input was destroyed and the
 * run failed with "not a WAV or FLAC file". A config error instead, before anything is opened.
 */
export function checkRecordIsNotInput(record: string | undefined, inputFile: string): void {
  if (record === undefined) return;
  // Either missing (not yet written): not the same file; opening them reports any problem.
  if (sameFile(record, inputFile)) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--record ${record} is the input file ${inputFile}: recording would overwrite the audio before it is read`, {
      hint: 'give --record a new file name, e.g. --record session.jsonl',
    });
  }
}

/**
 * `--record FILE` must not replace an earlier recording: a rerun of the same command line used to
 * truncate the previous session's file without a word. An existing non-empty file is a config error
 * (checked before any input, backplane, model or port is opened) unless `--record-overwrite`; an
 * empty or missing file is fine (a missing folder fails when the file is opened). The recorder is
 * then opened with `refuseNonEmpty` as well ({@link openRecorderAndEngine}), for a file that fills
 * up in between. `--record-overwrite` without `--record` would do nothing, so it is refused too.
 */
export function checkRecordFree(record: string | undefined, overwrite: boolean | undefined): void {
  if (record === undefined) {
    if (overwrite) {
      throw new AffectError('AFFECT_ERR_CONFIG', '--record-overwrite only applies with --record FILE, so it would do nothing', {
        hint: 'add --record FILE, or drop --record-overwrite',
      });
    }
    return;
  }
  if (!overwrite) refuseExistingRecording(record, statSync(record, { throwIfNoEntry: false }));
}

/**
 * `--turn-endpointing asr` needs an ASR model and `--turn-endpointing vad` needs voice activity
 * detection: without them no turn ever ended, and the run went on silently with no `turn` message.
 */
export function checkTurnEndpointing(flags: Pick<ModelFlags, 'turnEndpointing' | 'vad'>, asrModel: string | undefined): void {
  if (flags.turnEndpointing === 'asr' && asrModel === undefined) {
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      '--turn-endpointing asr needs a speech recogniser: without --asr-model (or CIRCUMPLEX_VOSK_MODEL) no turn would ever end',
      {
        hint: 'give a Vosk model folder with --asr-model DIR (docs/asr.md), or use --turn-endpointing vad (voice activity) or auto',
      },
    );
  }
  if (flags.turnEndpointing === 'vad' && flags.vad === 'off') {
    throw new AffectError('AFFECT_ERR_CONFIG', '--turn-endpointing vad needs voice activity detection: with --vad off no turn would ever end', {
      hint: 'drop --vad off, or end turns at ASR finals with --turn-endpointing asr --asr-model DIR',
    });
  }
}

/**
 * The flags of the cached (compute-once) speech streaming mean nothing in the other modes; they used
 * to be accepted and ignored (`--speech-cached-head on`, "required", ran without any head).
 */
export function checkCachedStreamingFlags(
  flags: Pick<ModelFlags, 'speechStreaming' | 'speechRecomputeFrames' | 'speechStepWorkers' | 'speechCachedHead'>,
): void {
  if (flags.speechStreaming === 'cached') return;
  const given = [
    flags.speechCachedHead !== undefined ? `--speech-cached-head ${flags.speechCachedHead}` : undefined,
    flags.speechRecomputeFrames !== undefined ? `--speech-recompute-frames ${flags.speechRecomputeFrames}` : undefined,
    flags.speechStepWorkers !== undefined ? `--speech-step-workers ${flags.speechStepWorkers}` : undefined,
  ].filter((g) => g !== undefined);
  if (given.length === 0) return;
  throw new AffectError(
    'AFFECT_ERR_CONFIG',
    `${given.join(', ')} only applies to --speech-streaming cached (streaming is ${flags.speechStreaming ?? 'off'} here), so it would do nothing`,
    { hint: 'add --speech-streaming cached (a model with streaming/step.onnx; docs/bench.md "Compute-once streaming"), or drop the flag' },
  );
}

/**
 * Opens the `--record` file (refusing a non-empty one unless `--record-overwrite`: {@link checkRecordFree}),
 * then loads the engine from the shared model flags (environment
 * fallbacks: CIRCUMPLEX_DEVICE, CIRCUMPLEX_MODELS_DIR, CIRCUMPLEX_VOSK_MODEL). The recording is
 * opened first so a bad path fails in milliseconds, before any model loads or port opens; it is
 * closed again if loading fails.
 */
export async function openRecorderAndEngine(
  flags: ModelFlags,
  env: EnvConfig,
  logger: Logger,
  extra: Partial<EngineOptions> = {},
): Promise<{ recorder: JsonlRecorder | undefined; engine: Engine }> {
  // --asr-model, else CIRCUMPLEX_VOSK_MODEL: either one adds transcripts and the text modality.
  const asrModel = flags.asrModel ?? env.voskModel;
  checkTurnEndpointing(flags, asrModel);
  checkCachedStreamingFlags(flags);
  const recorder = flags.record ? new JsonlRecorder(flags.record, { refuseNonEmpty: flags.recordOverwrite !== true }) : undefined;
  try {
    const engine = await createEngine({
      device: flags.device ?? env.device,
      ...(flags.threads !== undefined ? { intraOpThreads: flags.threads } : {}),
      speechModel: flags.speechModel,
      fusion: flags.fusion,
      modelsDir: env.modelsDir,
      windowMs: flags.windowMs,
      hopMs: flags.hopMs,
      vad: flags.vad !== 'off',
      ...(flags.vad === 'lite' ? { vadModel: 'lite' as const } : {}),
      smoothing: {
        ...(flags.smoothing !== undefined ? { filter: flags.smoothing } : {}),
        ...(flags.tauMs !== undefined ? { tauMs: flags.tauMs } : {}),
      },
      ...(flags.turnEndpointing !== undefined ? { turnEndpointing: flags.turnEndpointing } : {}),
      ...(flags.speechStreaming !== undefined && flags.speechStreaming !== 'off' ? { speechStreaming: flags.speechStreaming } : {}),
      ...(flags.speechRecomputeFrames !== undefined ? { speechRecomputeFrames: flags.speechRecomputeFrames } : {}),
      ...(flags.speechStepWorkers !== undefined ? { speechStepWorkers: flags.speechStepWorkers } : {}),
      ...(flags.speechCachedHead !== undefined ? { speechCachedHead: flags.speechCachedHead } : {}),
      escalation: escalationFromFlags(flags, env),
      ...(flags.textModel !== undefined ? { textModel: flags.textModel } : {}),
      ...(asrModel !== undefined ? { asrModel } : {}),
      logger,
      ...extra,
    });
    return { recorder, engine };
  } catch (e) {
    recorder?.close();
    throw e;
  }
}
