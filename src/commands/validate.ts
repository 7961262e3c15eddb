/**
 * `circumplex validate`: project emotion terms through the loaded text model and compare with
 * human-rated circumplex positions (see src/validate/validate.ts), and list the held-out figures
 * of the shipped trained models from their model cards (src/validate/cards.ts).
 *
 *   circumplex validate                                   # text-embed-fixture, all terms, 30% held out
 *   circumplex validate --text-model text-classifier-fixture --terms russell --holdout 0
 *   circumplex validate --terms all --holdout 0.3 --seed 7 --out results/
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { numberOption } from './options.js';
import path from 'node:path';
import { AffectError } from '../../core/errors.js';
import { INSTALLED, loadConfig, LOG_LEVELS, REPO_ROOT } from '../../core/config.js';
import { getLogger, setLogLevel } from '../../core/log.js';
import type { Device, TextAffectModel } from '../../models/ports.js';
import { formatValidationSummary, prepareOutDir, runValidation, writeValidationReport, type ValidateOptions } from '../validate/validate.js';
import { shippedModelFigures } from '../validate/cards.js';
import { TERM_SETS, type TermSet } from '../validate/terms.js';

/**
 * Where reports go by default: bench/results/validate/ in a checkout (git-ignored); from an
 * installed package, circumplex-validate/ in the working folder, never inside node_modules (which an
 * install wipes and may be read-only).
 */
export function defaultValidateOut(installed: boolean = INSTALLED, cwd: string = process.cwd()): string {
  return installed ? path.resolve(cwd, 'circumplex-validate') : path.join(REPO_ROOT, 'bench', 'results', 'validate');
}

/** The default of `--out` for this process. */
export const DEFAULT_VALIDATE_OUT = defaultValidateOut();

/** Parsed `validate` options. */
export interface ValidateCommandOptions {
  textModel: string;
  terms: TermSet;
  template: string;
  holdout: number;
  seed: number;
  out: string;
  device?: Device;
  json: boolean;
}

/**
 * Loads a text model through the models engineer's registry. Imported lazily so the command (and
 * its tests) do not pull ONNX runtime in until a model is actually needed.
 */
export async function loadTextModelById(id: string, device: Device | undefined): Promise<TextAffectModel> {
  const registry = (await import('../../models/registry.js')) as Record<string, unknown>;
  const load = registry['loadTextModel'];
  if (typeof load !== 'function') {
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', 'this build has no text model loader (models/registry.ts exports no loadTextModel)', {
      hint: 'update the checkout; text models land with the models milestone',
    });
  }
  const cfg = loadConfig();
  return (load as (id: string, opts: object) => Promise<TextAffectModel>)(id, {
    device: device ?? cfg.device,
    modelsDir: cfg.modelsDir,
    logger: getLogger(),
  });
}

/** Runs `validate` with parsed options; returns the report's file paths. */
export async function validateCommand(opts: ValidateCommandOptions, out: NodeJS.WritableStream = process.stdout): Promise<string[]> {
  // A bad --out fails before the model loads (it used to hang on some paths, e.g. under /proc).
  await prepareOutDir(opts.out);
  const model = await loadTextModelById(opts.textModel, opts.device);
  try {
    const runOpts: Partial<ValidateOptions> = { terms: opts.terms, template: opts.template, holdout: opts.holdout, seed: opts.seed };
    // The circumplex checks of the text model, plus the shipped models' held-out figures (cards).
    const report = { ...(await runValidation(model, runOpts)), shippedModels: await shippedModelFigures() };
    const files = await writeValidationReport(report, opts.out);
    out.write(opts.json ? JSON.stringify(report) + '\n' : formatValidationSummary(report, files));
    return files;
  } finally {
    await model.close();
  }
}

/** --template must contain {term} (a usage error at parse time, not a RangeError stack trace after the model loads). */
export function templateOption(v: string): string {
  if (!v.includes('{term}')) throw new InvalidArgumentError(`--template must contain {term}, got "${v}"`);
  return v;
}

/** Registers `circumplex validate`. */
export function register(program: Command): void {
  program
    .command('validate')
    .description('Project emotion terms through the text model and compare with human circumplex ratings (Russell 1980; NRC VAD)')
    .option('--text-model <id>', 'text model id (circumplex models list)', 'text-embed-fixture')
    .addOption(new Option('--terms <set>', 'rated terms: russell (28), extended (NRC VAD words), all').choices(TERM_SETS).default('all'))
    .option('--template <text>', 'text sent per term; {term} is replaced', templateOption, '{term}')
    .option('--holdout <fraction>', 'fraction of terms held out for the zero-shot ridge projection (0 = off)', numberOption('--holdout', 0, false, 0.9), 0.3)
    .option('--seed <n>', 'seed of the held-out split', numberOption('--seed', 0, true, 2 ** 31 - 1), 1)
    .option('--out <dir>', 'folder for validate.json and validate.svg', DEFAULT_VALIDATE_OUT)
    .addOption(new Option('--device <device>', 'where the model runs').choices(['auto', 'cuda', 'webgpu', 'cpu']))
    .option('--json', 'print the whole report as JSON instead of the summary', false)
    .addOption(new Option('--log-level <level>', 'pino log level').choices(LOG_LEVELS).default('warn'))
    .action(async (o: ValidateCommandOptions & { logLevel: string }) => {
      setLogLevel(o.logLevel);
      await validateCommand(o);
    });
}
