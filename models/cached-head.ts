/**
 * The `cached` streaming mode's own regression head (issue 14): `streaming/cached-head.onnx` with
 * its record `cached-head.json`, written by `training/encoders/calibrate_cached_head.py`.
 *
 * A cached window's pooled state is the mean of frames that were each computed without the audio to
 * their right, so the model's head (trained on full-window states) reads it slightly wrong. The
 * cached head is the same head refitted, without labels, to give the full-window logits from those
 * states. It is fitted for one hop and one `recomputeFrames` (the states' distribution depends on
 * both), so it is used only when the run's match; a stream's first window and a restart (empty
 * caches: the full model exactly) keep the model's head.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { AffectError } from '../core/errors.js';
import { sha256File } from './files.js';

/** `auto` (default): use the model's cached head when it was fitted for this hop / recomputeFrames; `on`: require it; `off`: never. */
export type CachedHeadSetting = 'auto' | 'on' | 'off';

export const CACHED_HEAD_SETTINGS: readonly CachedHeadSetting[] = ['auto', 'on', 'off'];

/** Help text of `--speech-cached-head` (run, serve). */
export const CACHED_HEAD_HELP =
  "cached mode: the head refitted for the cached pooled states (streaming/cached-head.onnx, training/encoders/calibrate_cached_head.py): 'auto' (default: used when fitted for this hop and --speech-recompute-frames), 'on' (required), 'off'";

/** Parses a cached-head setting (commander argParser and the bench): RangeError naming the values. */
export function parseCachedHead(v: string): CachedHeadSetting {
  const x = v.trim().toLowerCase();
  if ((CACHED_HEAD_SETTINGS as readonly string[]).includes(x)) return x as CachedHeadSetting;
  throw new RangeError(`--speech-cached-head must be one of ${CACHED_HEAD_SETTINGS.join(', ')}; got "${v}"`);
}

/** `cached-head.json` (the fields the runtime checks; the rest is the fit's record). */
export interface CachedHeadRecord {
  readonly schema: string;
  readonly graph: string;
  readonly sha256: string;
  readonly hiddenDim: number;
  readonly hopSamples: number;
  readonly recomputeFrames: number;
  readonly inputNormalization: string;
  /** sha256 of the step graph whose pooled states the head was fitted on. */
  readonly stepSha256: string;
  /** Span means the head reads besides the pooled state (its input `span_means` [b, spans, D]; 0: `pooled` only). */
  readonly spans: number;
  /** The head's graph also gives the corrected pooled state (`hidden_states`, the embedding the fusion reads). */
  readonly correctsEmbedding?: boolean;
  /** On the fit's held-back windows, nearer the full window than the model's head on every output (null: nothing held back). */
  readonly heldBackImproves: boolean | null;
}

export const CACHED_HEAD_RECORD = 'cached-head.json';
/** Span means a cached head may read at most (the window in 20 ms frames: a span per frame). */
export const MAX_SPANS = 64;
const SCHEMA = 'circumplex.cached-head/1';
const FIT_HINT =
  'fit it: npx tsx bench/encoders-tolerance.ts --models-dir DIR --id ID --audio speech.wav --hop HOP --windows 0 --recompute N --dump pairs.jsonl, then /usr/bin/python3 -m training.encoders.calibrate_cached_head --pairs pairs.jsonl --model DIR/ID (docs/bench.md "The cached head")';

/** What the run is: the model, its streaming folder and width, and the stream settings the head must match. */
export interface CachedHeadRun {
  readonly modelId: string;
  readonly streamingDir: string;
  readonly hiddenDim: number;
  /** The step graph the run uses (the head must have been fitted on its states). */
  readonly stepGraph: string;
  readonly hopSamples: number;
  readonly recomputeFrames: number;
  readonly inputNormalization: string;
  readonly setting: CachedHeadSetting;
  readonly logger: Logger;
}

/**
 * The cached head's ONNX path when the run should use it, else undefined. A record that is there but
 * broken (not JSON, a field missing, the graph missing or not the file it names by sha256, another
 * width, fitted on another step graph — a re-export or a quantised copy) is an error in `auto` too:
 * a head must never read states it was not fitted on, and a fitted one must not be skipped silently. A head fitted for another hop / recomputeFrames / normalisation is skipped with a log
 * line in `auto` and an error under `on`. The two sha256 checks (the head, and the step graph it was
 * fitted on) come last, for a head that will be used: a skipped head costs no hashing of the step graph.
 */
export async function resolveCachedHead(run: CachedHeadRun): Promise<{ path: string; spans: number; correctsEmbedding: boolean } | undefined> {
  if (run.setting === 'off') return undefined;
  const file = path.join(run.streamingDir, CACHED_HEAD_RECORD);
  const err = (
    code: 'AFFECT_ERR_MODEL_MISSING' | 'AFFECT_ERR_MODEL_LOAD' | 'AFFECT_ERR_MODEL_CHECKSUM' | 'AFFECT_ERR_CONFIG',
    msg: string,
    hint = FIT_HINT,
  ): AffectError => new AffectError(code, `model ${run.modelId}: ${msg}`, { stage: run.modelId, hint });
  if (!existsSync(file)) {
    if (run.setting === 'on') throw err('AFFECT_ERR_MODEL_MISSING', `--speech-cached-head on, but ${file} is not there`);
    return undefined;
  }
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw new Error('not an object');
  } catch (e) {
    throw err('AFFECT_ERR_MODEL_LOAD', `${file} is not a JSON object (${(e as Error).message})`, `${FIT_HINT}; or delete the file`);
  }
  if (rec['schema'] !== SCHEMA) throw err('AFFECT_ERR_MODEL_LOAD', `${file}: schema is ${JSON.stringify(rec['schema'])}, expected "${SCHEMA}"`);
  for (const k of ['hiddenDim', 'hopSamples', 'recomputeFrames', 'spans'] as const) {
    const v = rec[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw err('AFFECT_ERR_MODEL_LOAD', `${file}: ${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  for (const k of ['graph', 'sha256', 'inputNormalization', 'stepSha256'] as const) {
    if (typeof rec[k] !== 'string' || rec[k] === '')
      throw err('AFFECT_ERR_MODEL_LOAD', `${file}: ${k} must be a non-empty string, got ${JSON.stringify(rec[k])}`);
  }
  if (typeof rec['heldBackImproves'] !== 'boolean' && rec['heldBackImproves'] !== null)
    throw err('AFFECT_ERR_MODEL_LOAD', `${file}: heldBackImproves must be true, false or null, got ${JSON.stringify(rec['heldBackImproves'])}`);
  if (rec['correctsEmbedding'] !== undefined && typeof rec['correctsEmbedding'] !== 'boolean')
    throw err('AFFECT_ERR_MODEL_LOAD', `${file}: correctsEmbedding must be true or false, got ${JSON.stringify(rec['correctsEmbedding'])}`);
  const r = rec as unknown as CachedHeadRecord;
  if (r.spans > MAX_SPANS) throw err('AFFECT_ERR_MODEL_LOAD', `${file}: spans ${r.spans} is more than ${MAX_SPANS}`);
  const graph = path.join(run.streamingDir, path.basename(r.graph));
  if (!existsSync(graph)) throw err('AFFECT_ERR_MODEL_MISSING', `${file} names ${r.graph}, which is not in ${run.streamingDir}`);
  if (r.hiddenDim !== run.hiddenDim) {
    throw err(
      'AFFECT_ERR_MODEL_LOAD',
      `${file}: hiddenDim ${r.hiddenDim}, but the model's pooled state is ${run.hiddenDim} wide (a head fitted for another model)`,
    );
  }
  const mismatch = [
    r.hopSamples !== run.hopSamples ? `hop ${r.hopSamples} samples (this run: ${run.hopSamples})` : '',
    r.recomputeFrames !== run.recomputeFrames ? `recomputeFrames ${r.recomputeFrames} (this run: ${run.recomputeFrames})` : '',
    r.inputNormalization !== run.inputNormalization ? `input normalisation ${r.inputNormalization} (this run: ${run.inputNormalization})` : '',
  ].filter(Boolean);
  if (mismatch.length) {
    const msg = `${r.graph} was fitted for ${mismatch.join(', ')}`;
    if (run.setting === 'on')
      throw err('AFFECT_ERR_CONFIG', `--speech-cached-head on, but ${msg}`, `run with the settings it was fitted for, or refit: ${FIT_HINT}`);
    run.logger.info(
      { model: run.modelId, cachedHead: graph, fitted: { hopSamples: r.hopSamples, recomputeFrames: r.recomputeFrames } },
      `model ${run.modelId}: not using its cached head: ${msg}; the cached windows use the model's head`,
    );
    return undefined;
  }
  if (r.heldBackImproves === false) {
    const msg = `${r.graph} is further from the full window than the model's head on windows held back from its fit (${file}: figures.heldBack)`;
    if (run.setting === 'auto') {
      run.logger.warn({ model: run.modelId, cachedHead: graph }, `model ${run.modelId}: not using its cached head: ${msg}; refit it on more audio`);
      return undefined;
    }
    run.logger.warn({ model: run.modelId, cachedHead: graph }, `model ${run.modelId}: --speech-cached-head on: using ${msg}`);
  }
  // Hashed last, only for a head that will be used: the step graph of a real-size encoder is hundreds of MB
  // (0.9 s for the large stand-in's 661 MB here), which a head skipped under auto should not cost.
  const sha = await sha256File(graph);
  if (sha !== r.sha256) throw err('AFFECT_ERR_MODEL_CHECKSUM', `${graph} has sha256 ${sha}, but ${file} records ${r.sha256}: the head is not the one fitted`);
  const stepSha = await sha256File(run.stepGraph);
  if (stepSha !== r.stepSha256) {
    throw err(
      'AFFECT_ERR_MODEL_LOAD',
      `${file} was fitted on the states of a step graph with sha256 ${r.stepSha256}, but ${run.stepGraph} has ${stepSha} (re-exported or quantised since): the head would read states it was not fitted on`,
      `refit it for this step graph, or delete ${file}: ${FIT_HINT}`,
    );
  }
  run.logger.info(
    { model: run.modelId, cachedHead: graph, hopSamples: r.hopSamples, recomputeFrames: r.recomputeFrames },
    `model ${run.modelId}: cached windows use ${r.graph} (fitted for this hop and recomputeFrames ${r.recomputeFrames}); a stream's first window uses the model's head`,
  );
  return { path: graph, spans: r.spans, correctsEmbedding: r.correctsEmbedding === true };
}
