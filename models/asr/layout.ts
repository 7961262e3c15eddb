/**
 * Checks a Vosk model folder before libvosk ever sees it. libvosk does not throw on a bad folder:
 * `vosk_model_new` returns NULL and a recogniser made from that NULL model segfaults, so every
 * problem we can see from the file system is reported here, as an AffectError naming the folder
 * and the fix.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { AffectError } from '../../core/errors.js';
import { pullCommand } from '../files.js';
import { MODEL_SPECS } from '../manifest.js';

/** Manifest id of the small English model that `circumplex models pull` knows. */
export const VOSK_SMALL_EN_ID = 'vosk-small-en';

/** What to do when no usable model folder is given: printed in every ASR model error. */
export const VOSK_MODEL_HINT =
  `run \`${pullCommand(MODEL_SPECS[VOSK_SMALL_EN_ID])}\` and pass the folder it prints with --asr-model DIR ` +
  '(or set CIRCUMPLEX_VOSK_MODEL=DIR); leave both unset to run speech-only';

/** Facts read from a model folder that passed the layout check. */
export interface VoskModelLayout {
  /** Absolute path of the folder. */
  readonly dir: string;
  /** Sample rate the acoustic model was trained at (from conf/mfcc.conf; 16000 when not stated). */
  readonly modelSampleRateHz: number;
  /** `hclg` for a full static graph, `lookahead` for HCLr.fst + Gr.fst (the small models). */
  readonly graph: 'hclg' | 'lookahead';
}

/** Why a folder was rejected (the `reason` in the error's stage-specific detail). */
export type VoskModelProblem = 'missing' | 'not-a-folder' | 'empty' | 'incomplete' | 'corrupt';

/** Builds the AffectError for a rejected model folder. */
export function voskModelError(dir: string, problem: VoskModelProblem, detail: string, cause?: unknown): AffectError {
  const what: Record<VoskModelProblem, string> = {
    missing: 'does not exist',
    'not-a-folder': 'is not a folder',
    empty: 'is empty',
    incomplete: 'is not a Vosk model folder',
    corrupt: 'could not be loaded by libvosk (corrupt or incompatible model files)',
  };
  return new AffectError('AFFECT_ERR_ASR_MODEL', `Vosk model folder "${dir}" ${what[problem]}: ${detail}`, {
    stage: 'asr',
    hint: VOSK_MODEL_HINT,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A file is usable when it exists and is non-empty. */
function nonEmptyFile(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && st.size > 0;
  } catch {
    return false;
  }
}

/**
 * Validates the layout of a Vosk model folder (am/final.mdl, conf/model.conf, conf/mfcc.conf, and
 * graph/HCLG.fst or graph/HCLr.fst + graph/Gr.fst; files non-empty). Throws AFFECT_ERR_ASR_MODEL for a missing, empty or
 * incomplete folder; a folder that passes may still be corrupt, which only libvosk can tell.
 */
export function checkVoskModelDir(dirIn: string): VoskModelLayout {
  const dir = path.resolve(dirIn);
  if (!existsSync(dir)) throw voskModelError(dir, 'missing', 'no such file or directory');
  if (!statSync(dir).isDirectory()) throw voskModelError(dir, 'not-a-folder', 'expected an unpacked model folder, not a file (unzip it first)');
  const entries = readdirSync(dir);
  if (entries.length === 0) throw voskModelError(dir, 'empty', 'the folder has no files');

  // A common slip: pointing at the folder the zip was unpacked into, one level above the model.
  const nested = entries.find((e) => nonEmptyFile(path.join(dir, e, 'am', 'final.mdl')));
  // libvosk's own test (model.cc): am/final.mdl + conf/model.conf (the layout of every current
  // model), or final.mdl + mfcc.conf at the top (old "v1" models).
  const v1 = nonEmptyFile(path.join(dir, 'final.mdl')) && nonEmptyFile(path.join(dir, 'mfcc.conf'));
  const missing: string[] = [];
  if (!v1) {
    if (!nonEmptyFile(path.join(dir, 'am', 'final.mdl'))) missing.push('am/final.mdl');
    if (!existsSync(path.join(dir, 'conf', 'model.conf'))) missing.push('conf/model.conf');
    if (!nonEmptyFile(path.join(dir, 'conf', 'mfcc.conf'))) missing.push('conf/mfcc.conf');
    const hclg = nonEmptyFile(path.join(dir, 'graph', 'HCLG.fst'));
    const lookahead = nonEmptyFile(path.join(dir, 'graph', 'HCLr.fst')) && nonEmptyFile(path.join(dir, 'graph', 'Gr.fst'));
    if (!hclg && !lookahead) missing.push('graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)');
  }
  if (missing.length > 0) {
    const didYouMean = nested === undefined ? '' : ` (did you mean the sub-folder "${path.join(dir, nested)}"?)`;
    throw voskModelError(dir, 'incomplete', `missing or empty: ${missing.join(', ')}${didYouMean}`);
  }
  const graph = nonEmptyFile(path.join(dir, 'graph', 'HCLG.fst')) || nonEmptyFile(path.join(dir, 'HCLG.fst')) ? 'hclg' : 'lookahead';

  // The training rate matters only for the docs/logs: libvosk resamples our 16 kHz audio itself.
  let modelSampleRateHz = 16_000;
  const mfcc = readFileSync(v1 ? path.join(dir, 'mfcc.conf') : path.join(dir, 'conf', 'mfcc.conf'), 'utf8');
  const m = /--sample-frequency=(\d+)/.exec(mfcc);
  if (m?.[1] !== undefined) modelSampleRateHz = Number(m[1]);
  return { dir, modelSampleRateHz, graph };
}
