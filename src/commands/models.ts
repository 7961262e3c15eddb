/**
 * `circumplex models list | pull | verify`: the model manifest (models/manifest.ts) from the
 * command line. Trained models with a card (`models/<id>/model-card.json`) also show its licence
 * and headline figures in `list`, and `verify` checks the card's sha256s against the files.
 *
 *   circumplex models list [--json]
 *   circumplex models pull roberta-go-emotions --accept-unverified
 *   circumplex models verify [ids...]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { numberOption } from './options.js';
import { AffectError } from '../../core/errors.js';
import { listModelSpecs, findModelSpec, type ModelSpec } from '../../models/manifest.js';
import { checkModelFiles, fixHint, modelFilePath, modelRoot, resolveModelsDir, sha256File, type FileCheck } from '../../models/files.js';
import { MODEL_CARD_JSON, readModelCard, type ModelCard } from '../../models/model-card.js';
import { pullModel, type PulledFile } from '../../models/download.js';
import { checkVoskModelDir } from '../../models/asr/layout.js';

function specOrThrow(id: string): ModelSpec {
  const spec = findModelSpec(id);
  if (!spec) {
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      `unknown model "${id}". Should be one of: ${listModelSpecs()
        .map((s) => s.id)
        .join(', ')}`,
      {
        hint: 'circumplex models list shows every model',
      },
    );
  }
  return spec;
}

/** One row of `models list`. */
export interface ModelListRow {
  id: string;
  role: string;
  fixture: boolean;
  /** present: every file exists (not hashed; `verify` hashes). */
  state: 'present' | 'missing';
  dir: string;
  license: string;
  source: string;
  description: string;
  /** True for trained models committed in `models/<id>/`. */
  bundled: boolean;
  /** What the model's card says (trained models with a model-card.json), else null. */
  card: ModelListCard | null;
  /** Why the card could not be read (invalid JSON or schema), when it could not. */
  cardError?: string;
}

/** The part of a model card `models list` shows. */
export interface ModelListCard {
  /** Licence of the trained weights (inherits the training data's terms). */
  readonly license: string;
  /** What the licence means for a user. */
  readonly licenseNotes: string;
  /** Two or three headline figures, e.g. `arousal CCC 0.79 / 0.70 (LOSO emodb / ravdess)`. */
  readonly headline: readonly string[];
  readonly measuredAt: string;
  /** Command that reproduces the figures. */
  readonly figuresCommand: string;
  /** Data the model was trained on, with their licences. */
  readonly data: ReadonlyArray<{ readonly name: string; readonly license: string; readonly items: number }>;
}

/** The card of a model folder, or null when there is none; an unreadable card is reported, not thrown. */
function cardOf(dir: string): { card: ModelCard | null; error?: string } {
  try {
    return { card: readModelCard(dir) ?? null };
  } catch (err) {
    return { card: null, error: (err as Error).message };
  }
}

/** Rows for `models list` (every manifest model, or the given specs). */
export function listModels(modelsDir?: string, specs: readonly ModelSpec[] = listModelSpecs()): ModelListRow[] {
  return specs.map((s) => {
    const dir = modelRoot(s, modelsDir);
    // Cards belong to trained models in their own folder (bundled), not to the shared fixtures folder.
    const { card, error } = s.fixture ? { card: null } : cardOf(dir);
    return {
      id: s.id,
      role: s.role,
      fixture: s.fixture,
      state: s.files.every((f) => existsSync(modelFilePath(s, f, modelsDir))) ? 'present' : 'missing',
      dir,
      license: card?.license ?? s.license,
      source: s.source,
      description: s.description,
      bundled: s.bundled === true,
      card: card
        ? {
            license: card.license,
            licenseNotes: card.licenseNotes,
            headline: card.headline,
            measuredAt: card.measuredAt,
            figuresCommand: card.figuresCommand,
            data: card.data.map((d) => ({ name: d.name, license: d.license, items: d.items })),
          }
        : null,
      ...(error ? { cardError: error } : {}),
    };
  });
}

/** One file of a model card checked against the file on disk. */
export interface CardFileCheck {
  readonly path: string;
  /** no-card: a bundled model whose folder has no model-card.json (`path` is where it belongs). */
  readonly status: 'ok' | 'missing' | 'mismatch' | 'no-card';
  readonly sha256?: string;
  readonly expected?: string;
}

/**
 * Checks that the sha256 of every file a model's card describes matches the file on disk, so the
 * card's figures are known to describe the shipped file. Empty when a downloaded model has no
 * card; a bundled model (which always ships one) without it is one `no-card` check. An unreadable
 * card throws its AFFECT_ERR_MODEL_LOAD.
 */
export async function checkCardFiles(spec: ModelSpec, modelsDir?: string): Promise<CardFileCheck[]> {
  if (spec.fixture) return [];
  const dir = modelRoot(spec, modelsDir);
  const card = readModelCard(dir);
  if (!card) return spec.bundled ? [{ path: path.join(dir, MODEL_CARD_JSON), status: 'no-card' }] : [];
  const out: CardFileCheck[] = [];
  for (const f of card.files) {
    const p = path.join(dir, f.path);
    if (!existsSync(p)) {
      out.push({ path: p, status: 'missing', expected: f.sha256 });
      continue;
    }
    const got = await sha256File(p);
    out.push({ path: p, status: got === f.sha256 ? 'ok' : 'mismatch', sha256: got, expected: f.sha256 });
  }
  return out;
}

/** The layout check of an unpacked ASR (Vosk) model folder. */
export interface LayoutCheck {
  /** The unpacked folder (what --asr-model takes). */
  readonly dir: string;
  readonly ok: boolean;
  /** Why it failed (the AffectError message, naming the folder and the missing files). */
  readonly message?: string;
  readonly code?: string;
}

/** One verified model: its file checks, its card's sha256s (trained models) and, for ASR models whose archive is present, the unpacked folder's layout. */
export interface VerifyResult {
  id: string;
  checks: FileCheck[];
  layouts: LayoutCheck[];
  cardChecks: CardFileCheck[];
}

/**
 * Checks the folders an ASR model's archives unpack into with {@link checkVoskModelDir} (the
 * check libvosk itself cannot do without segfaulting). Only archives present on disk count.
 */
export function checkAsrLayouts(spec: ModelSpec, modelsDir?: string): LayoutCheck[] {
  if (spec.role !== 'asr') return [];
  const out: LayoutCheck[] = [];
  for (const f of spec.files) {
    if (f.unpack !== 'zip' || !existsSync(modelFilePath(spec, f, modelsDir))) continue;
    // pullModel unpacks an archive into the folder named after it (see models/download.ts).
    const dir = path.join(modelRoot(spec, modelsDir), path.basename(f.path).replace(/\.zip$/i, ''));
    try {
      checkVoskModelDir(dir);
      out.push({ dir, ok: true });
    } catch (e) {
      const err = e as AffectError;
      out.push({ dir, ok: false, message: err.message, code: err.code });
    }
  }
  return out;
}

/** Hash-checks models: the named ids, or every fixture plus every downloaded model that is present; ASR folders get a layout check. */
export async function verifyModels(ids: readonly string[], modelsDir?: string): Promise<VerifyResult[]> {
  const specs =
    ids.length > 0
      ? ids.map(specOrThrow)
      : listModels(modelsDir)
          .filter((r) => r.fixture || r.state === 'present')
          .map((r) => specOrThrow(r.id));
  const out: VerifyResult[] = [];
  for (const s of specs)
    out.push({ id: s.id, checks: await checkModelFiles(s, modelsDir), layouts: checkAsrLayouts(s, modelsDir), cardChecks: await checkCardFiles(s, modelsDir) });
  return out;
}

/** Registers `circumplex models`. */
export function register(program: Command): void {
  const models = program.command('models').description('list, download and verify the models in the manifest (models/manifest.ts)');
  const dirOpt = ['--models-dir <dir>', 'folder of downloaded models (default: CIRCUMPLEX_MODELS_DIR or models/weights)'] as const;

  models
    .command('list')
    .description(
      "show every model: id, role, whether its files are present, license, source; trained models also their card's licence notes and headline figures",
    )
    .option(...dirOpt)
    .option('--json', 'one JSON array on stdout', false)
    .action((o: { modelsDir?: string; json: boolean }) => {
      const rows = listModels(o.modelsDir);
      if (o.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      process.stdout.write(formatModelList(rows, resolveModelsDir(o.modelsDir)));
    });

  models
    .command('pull')
    .description('download models into the models folder (progress on stderr, timeout, resume, sha256 check)')
    .argument('<ids...>', 'model ids (see models list)')
    .option(...dirOpt)
    .option('--accept-unverified', 'download files whose sha256 the manifest does not know, and record the hash seen', false)
    .option('--force', 're-download files already present', false)
    .option('--timeout-ms <ms>', 'abort an attempt after this long without data', numberOption('--timeout-ms', 1, true, 2 ** 31 - 1), 30_000)
    .option('--attempts <n>', 'attempts per file (resuming with HTTP Range)', numberOption('--attempts', 1, true, 100), 4)
    .action(async (ids: string[], o: { modelsDir?: string; acceptUnverified: boolean; force: boolean; timeoutMs: number; attempts: number }) => {
      const specs = ids.map(specOrThrow);
      // stdout gets only the unpacked folders (e.g. the Vosk model dir for --asr-model); progress goes to stderr
      for (const spec of specs) {
        const files: PulledFile[] = await pullModel(spec, {
          ...(o.modelsDir === undefined ? {} : { modelsDir: o.modelsDir }),
          acceptUnverified: o.acceptUnverified,
          force: o.force,
          idleTimeoutMs: o.timeoutMs,
          attempts: o.attempts,
        });
        for (const f of files) {
          const note = f.verified ? 'sha256 verified' : `sha256 ${f.sha256} recorded (unverified: compare it with the model card)`;
          process.stderr.write(`${spec.id}/${f.file}: ${f.status}, ${note}\n`);
          if (f.unpackedTo) process.stdout.write(`${f.unpackedTo}\n`);
        }
      }
    });

  models
    .command('verify')
    .description('check models are present with the expected sha256 (default: fixtures and downloaded models)')
    .argument('[ids...]', 'model ids (default: all present)')
    .option(...dirOpt)
    .action(async (ids: string[], o: { modelsDir?: string }) => {
      const results = await verifyModels(ids, o.modelsDir);
      const bad: string[] = [];
      const badLayouts: LayoutCheck[] = [];
      const badCards: string[] = [];
      for (const { id, checks, layouts, cardChecks } of results) {
        for (const c of checks) {
          const what =
            c.status === 'ok'
              ? 'ok'
              : c.status === 'unverified'
                ? `unverified (sha256 ${c.sha256 ?? '?'})`
                : c.status === 'missing'
                  ? 'MISSING'
                  : `CHECKSUM MISMATCH (got ${c.sha256 ?? '?'}, want ${c.expected ?? '?'})`;
          process.stdout.write(`${id.padEnd(24)} ${what.padEnd(12)} ${c.path}\n`);
          if (c.status === 'missing' || c.status === 'checksum') bad.push(id);
        }
        for (const c of cardChecks) {
          if (c.status === 'no-card') {
            process.stdout.write(`${id.padEnd(24)} ${'CARD MISSING'.padEnd(12)} ${c.path}\n`);
            badCards.push(id);
            continue;
          }
          const what =
            c.status === 'ok'
              ? 'card ok'
              : c.status === 'missing'
                ? 'CARD: FILE MISSING'
                : `CARD MISMATCH (file ${c.sha256 ?? '?'}, card ${c.expected ?? '?'})`;
          process.stdout.write(`${id.padEnd(24)} ${what.padEnd(12)} ${c.path} (${MODEL_CARD_JSON})\n`);
          if (c.status !== 'ok') badCards.push(id);
        }
        for (const l of layouts) {
          process.stdout.write(`${id.padEnd(24)} ${(l.ok ? 'layout ok' : 'BAD LAYOUT').padEnd(12)} ${l.dir}\n`);
          if (!l.ok) badLayouts.push(l);
        }
      }
      if (bad.length > 0) {
        const first = findModelSpec(bad[0] as string) as ModelSpec;
        throw new AffectError(
          bad.some((id) => results.find((r) => r.id === id)?.checks.some((c) => c.status === 'checksum'))
            ? 'AFFECT_ERR_MODEL_CHECKSUM'
            : 'AFFECT_ERR_MODEL_MISSING',
          `models failing verification: ${[...new Set(bad)].join(', ')}`,
          { hint: fixHint(first, o.modelsDir) },
        );
      }
      if (badCards.length > 0) {
        throw new AffectError(
          'AFFECT_ERR_MODEL_CHECKSUM',
          `model cards missing or not describing the files beside them: ${[...new Set(badCards)].join(', ')}`,
          {
            hint: 'the figures (and licence) in the card belong to the exact file: restore the model folder from git, or retrain (the recipe rewrites the model and its card together)',
          },
        );
      }
      const firstBad = badLayouts[0];
      if (firstBad) {
        // checkVoskModelDir's message names the folder and what is missing; its hint says how to fix it.
        checkVoskModelDir(firstBad.dir);
      }
    });
}

/** The `models list` table: one line per model; trained models add their headline figures and licence notes. */
export function formatModelList(rows: readonly ModelListRow[], modelsDir: string): string {
  const out = [`models folder: ${modelsDir}`];
  for (const r of rows) {
    const state = r.fixture ? 'fixture' : r.bundled ? (r.state === 'present' ? 'bundled' : 'missing') : r.state;
    out.push(`${r.id.padEnd(26)} ${r.role.padEnd(16)} ${state.padEnd(8)} ${r.license.padEnd(18)} ${r.source}`);
    if (r.card) {
      for (const h of r.card.headline) out.push(`${''.padEnd(28)}${h}`);
      out.push(`${''.padEnd(28)}licence: ${r.card.licenseNotes}`);
      out.push(`${''.padEnd(28)}measured ${r.card.measuredAt}: ${r.card.figuresCommand}`);
    }
    if (r.cardError) out.push(`${''.padEnd(28)}card unreadable: ${r.cardError}`);
  }
  return `${out.join('\n')}\n`;
}
