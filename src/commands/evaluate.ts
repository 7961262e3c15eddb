/**
 * `circumplex evaluate`: scores a speech or text affect model on labelled data the user brings
 * (src/evaluate/evaluate.ts has the rules).
 *
 *   circumplex evaluate --modality speech --data labels.csv [--speech-model ID] --json
 *   circumplex evaluate --modality text --data sents.csv --scale 1,5 [--text-model ID] --json
 *   … --predictions out.csv   (each row's key, targets and predictions, to recompute the figures)
 */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { findModelSpec } from '../../models/manifest.js';
import { modelRoot } from '../../models/files.js';
import { readModelCard } from '../../models/model-card.js';
import * as registry from '../../models/registry.js';
import { loadConfig } from '../../core/config.js';
import { DEFAULT_ENGINE, defaultTextModel } from '../engine.js';
import { AffectError } from '../../core/errors.js';
import { getLogger, setLogLevel } from '../../core/log.js';
import {
  DEFAULT_SCALE,
  VOICING,
  checkSpeechFiles,
  checkWritable,
  formatReport,
  parseScale,
  predictSpeechRows,
  predictTextRows,
  predictionsCsv,
  readLabelledCsv,
  scoreRows,
  writeAtomically,
  type EvalModality,
  type EvaluationReport,
  type RatingScale,
  type RowPrediction,
} from '../evaluate/evaluate.js';
import { numberOption } from './options.js';

/** Parsed `evaluate` options. */
export interface EvaluateCommandOptions {
  modality: EvalModality;
  data: string;
  speechModel?: string;
  textModel?: string;
  scale: RatingScale;
  predictions?: string;
  json: boolean;
  device?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  windowMs: number;
  hopMs: number;
}

function scaleOption(v: string): RatingScale {
  try {
    return parseScale(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Registers `circumplex evaluate`. */
export function register(program: Command): void {
  program
    .command('evaluate')
    .description('Score a speech or text model on your labelled data: n, Pearson r, CCC, RMSE, MAE per dimension')
    .addOption(new Option('--modality <modality>', 'which model to score').choices(['speech', 'text']).makeOptionMandatory())
    .requiredOption(
      '--data <csv>',
      'labelled CSV: speech "file,valence,arousal" (paths relative to the CSV, WAV or FLAC), text "text,valence,arousal"; an optional dominance column',
    )
    .addOption(
      new Option('--scale <lo,hi>', "the ratings' scale, mapped linearly to [-1, 1] (EmoBank: 1,5)")
        .argParser(scaleOption)
        // Shown as it is typed (commander would print the parsed object as JSON).
        .default(DEFAULT_SCALE, `${DEFAULT_SCALE.lo},${DEFAULT_SCALE.hi}`),
    )
    .option('--speech-model <id>', `speech model id (default: ${DEFAULT_ENGINE.speechModel}, the runtime default)`)
    .option('--text-model <id>', "text model id (default: the runtime's default text model)")
    .option('--predictions <file>', "also write each row's key, targets and predictions (and σ) to this CSV")
    .option('--json', 'print one JSON object on stdout', false)
    .addOption(new Option('--device <device>', 'where the model runs (default: CIRCUMPLEX_DEVICE or auto)').choices(['auto', 'cuda', 'webgpu', 'cpu']))
    .option('--window-ms <ms>', 'speech: analysis window, ms of audio', numberOption('--window-ms', 1, false, 60_000), 1000)
    .option('--hop-ms <ms>', 'speech: hop between windows, ms of audio', numberOption('--hop-ms', 1, false, 60_000), 250)
    .action(async (opts: EvaluateCommandOptions, cmd: Command) => {
      if (opts.modality === 'text') {
        // the windowing flags shape speech only: given with text they were silently ignored
        const given = ['windowMs', 'hopMs'].filter((k) => cmd.getOptionValueSource(k) === 'cli');
        if (given.length > 0) {
          const flags = given.map((k) => (k === 'windowMs' ? '--window-ms' : '--hop-ms')).join(', ');
          throw new AffectError('AFFECT_ERR_CONFIG', `${flags} ${given.length === 1 ? 'does' : 'do'} not apply to --modality text`, {
            hint: 'a text model scores each sentence whole; drop the flag (it shapes the speech windows)',
          });
        }
      }
      const report = await evaluateCommand(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

/**
 * Runs an evaluation. Every row and file is checked before the model loads; any failure is an
 * AffectError naming the row, and nothing (no report, no predictions file) comes out of a failed run.
 */
export async function evaluateCommand(opts: EvaluateCommandOptions): Promise<EvaluationReport> {
  const env = loadConfig();
  setLogLevel(env.logLevel);
  const logger = getLogger().child({ cmd: 'evaluate' });
  if (opts.hopMs > opts.windowMs) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--hop-ms (${opts.hopMs}) must not exceed --window-ms (${opts.windowMs})`, {
      hint: 'e.g. --window-ms 1000 --hop-ms 250',
    });
  }
  const wrongFlag = opts.modality === 'speech' ? opts.textModel : opts.speechModel;
  if (wrongFlag !== undefined) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--${opts.modality === 'speech' ? 'text' : 'speech'}-model does not apply to --modality ${opts.modality}`, {
      hint: `use --${opts.modality}-model ID`,
    });
  }
  // Fail fast: rows, files and the output path before any model loads.
  const rows = readLabelledCsv(opts.data, opts.modality, opts.scale);
  if (opts.modality === 'speech') await checkSpeechFiles(opts.data, rows, opts.windowMs);
  if (opts.predictions) checkWritable(opts.predictions, [opts.data, ...rows.flatMap((r) => (r.path !== undefined ? [r.path] : []))]);

  const device = opts.device ?? env.device;
  const loadOpts = { device, logger, modelsDir: env.modelsDir };
  let modelId: string;
  let preds: RowPrediction[];
  let speechInfo: EvaluationReport['speech'];
  if (opts.modality === 'speech') {
    modelId = opts.speechModel ?? DEFAULT_ENGINE.speechModel;
    const minVoiced = minVoicedFromCard(modelId) ?? VOICING.minVoiced;
    const model = await registry.loadSpeechModel(modelId, loadOpts);
    try {
      preds = await predictSpeechRows(model, opts.data, rows, { windowMs: opts.windowMs, hopMs: opts.hopMs, minVoiced });
    } finally {
      await model.close();
    }
    const byModel = speechReportsVoiced(modelId);
    speechInfo = {
      windowMs: opts.windowMs,
      hopMs: opts.hopMs,
      voicing: byModel
        ? `the model's voiced fraction >= ${minVoiced}; a file with no such window uses all its windows`
        : `RMS level >= ${VOICING.energyFloorDbfs} dBFS and within ${VOICING.energyBelowPeakDb} dB of the file's loudest window (the model reports no voiced fraction); a file with no such window uses all its windows`,
    };
  } else {
    modelId = opts.textModel ?? defaultTextModel(env.modelsDir);
    const model = await registry.loadTextModel(modelId, { ...loadOpts, cacheDir: env.cacheDir });
    try {
      preds = await predictTextRows(model, opts.data, rows);
    } finally {
      await model.close();
    }
  }
  const { dimensions, notes } = scoreRows(rows, preds);
  if (opts.predictions) writeAtomically(opts.predictions, predictionsCsv(opts.modality, rows, preds));
  return {
    modality: opts.modality,
    model: modelId,
    data: opts.data,
    rows: rows.length,
    scale: [opts.scale.lo, opts.scale.hi],
    dimensions,
    ...(speechInfo ? { speech: speechInfo } : {}),
    predictions: opts.predictions ? path.resolve(opts.predictions) : null,
    notes,
  };
}

/** True when the manifest maps a voiced output for this speech model. */
function speechReportsVoiced(id: string): boolean {
  const spec = findModelSpec(id);
  return spec?.affect?.voiced !== undefined;
}

/**
 * The voiced-fraction threshold the model was trained and scored with, from its card
 * (`recipe.config.windows.minVoicedFraction`, as training/speech writes it), when it has one.
 */
function minVoicedFromCard(id: string): number | undefined {
  const spec = findModelSpec(id);
  if (!spec?.bundled) return undefined;
  const card = readModelCard(modelRoot(spec));
  const windows = card?.recipe.config['windows'];
  const v = windows && typeof windows === 'object' ? (windows as Record<string, unknown>)['minVoicedFraction'] : undefined;
  return typeof v === 'number' && v >= 0 && v <= 1 ? v : undefined;
}
