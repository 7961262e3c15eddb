/**
 * Shared commander argument parsers, so every subcommand rejects a bad number the same way:
 * `--hop-ms must be a number >= 1, got "abc"`.
 */
import { InvalidArgumentError } from 'commander';
import type { EnvConfig } from '../config.js';
import { createEngine, type Engine, type EngineOptions } from '../engine.js';
import type { Logger } from '../log.js';
import { JsonlRecorder } from '../record.js';
import { STREAM_ID } from '../server/hub.js';

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

/**
 * Parses a stream id the hub accepts, so a bad --stream-id fails before any model loads (serve used
 * to print the error after listening and then hang; run wrote ids no replay could open).
 */
export function streamIdOption(name: string): (v: string) => string {
  return (v: string): string => {
    if (!STREAM_ID.test(v)) throw new InvalidArgumentError(`${name} must be 1-128 letters, digits and . _ : -, got "${v}"`);
    return v;
  };
}

/** The model flags `run` and `serve` share. */
export interface ModelFlags {
  device?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  speechModel: string;
  fusion: string;
  textModel?: string;
  asrModel?: string;
  windowMs: number;
  hopMs: number;
  /** `--record FILE`, if given. */
  record?: string;
  /** `--vad on|off` (default on): Silero voice activity detection, holds and turns. */
  vad?: 'on' | 'off';
}

/**
 * Opens the `--record` file, then loads the engine from the shared model flags (environment
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
  const recorder = flags.record ? new JsonlRecorder(flags.record) : undefined;
  // --asr-model, else CIRCUMPLEX_VOSK_MODEL: either one adds transcripts and the text modality.
  const asrModel = flags.asrModel ?? env.voskModel;
  try {
    const engine = await createEngine({
      device: flags.device ?? env.device,
      speechModel: flags.speechModel,
      fusion: flags.fusion,
      modelsDir: env.modelsDir,
      windowMs: flags.windowMs,
      hopMs: flags.hopMs,
      vad: flags.vad !== 'off',
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
