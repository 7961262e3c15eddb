/**
 * `circumplex models list | pull | verify`: the model manifest (models/manifest.ts) from the
 * command line.
 *
 *   circumplex models list [--json]
 *   circumplex models pull roberta-go-emotions --accept-unverified
 *   circumplex models verify [ids...]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Command } from 'commander';
import { numberOption } from './options.js';
import { AffectError } from '../errors.js';
import { listModelSpecs, findModelSpec, type ModelSpec } from '../../models/manifest.js';
import { checkModelFiles, fixHint, modelFilePath, modelRoot, resolveModelsDir, type FileCheck } from '../../models/files.js';
import { pullModel, type PulledFile } from '../../models/download.js';
import { checkVoskModelDir } from '../../models/asr/layout.js';

function specOrThrow(id: string): ModelSpec {
  const spec = findModelSpec(id);
  if (!spec) {
    throw new AffectError('AFFECT_ERR_CONFIG', `unknown model "${id}". Should be one of: ${listModelSpecs().map((s) => s.id).join(', ')}`, {
      hint: 'circumplex models list shows every model',
    });
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
}

/** Rows for `models list`. */
export function listModels(modelsDir?: string): ModelListRow[] {
  return listModelSpecs().map((s) => ({
    id: s.id,
    role: s.role,
    fixture: s.fixture,
    state: s.files.every((f) => existsSync(modelFilePath(s, f, modelsDir))) ? 'present' : 'missing',
    dir: modelRoot(s, modelsDir),
    license: s.license,
    source: s.source,
    description: s.description,
  }));
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

/** One verified model: its file checks and, for ASR models whose archive is present, the unpacked folder's layout. */
export interface VerifyResult {
  id: string;
  checks: FileCheck[];
  layouts: LayoutCheck[];
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
  const specs = ids.length > 0 ? ids.map(specOrThrow) : listModels(modelsDir).filter((r) => r.fixture || r.state === 'present').map((r) => specOrThrow(r.id));
  const out: VerifyResult[] = [];
  for (const s of specs) out.push({ id: s.id, checks: await checkModelFiles(s, modelsDir), layouts: checkAsrLayouts(s, modelsDir) });
  return out;
}

/** Registers `circumplex models`. */
export function register(program: Command): void {
  const models = program.command('models').description('list, download and verify the models in the manifest (models/manifest.ts)');
  const dirOpt = ['--models-dir <dir>', 'folder of downloaded models (default: CIRCUMPLEX_MODELS_DIR or models/weights)'] as const;

  models
    .command('list')
    .description('show every model: id, role, whether its files are present, license, source')
    .option(...dirOpt)
    .option('--json', 'one JSON array on stdout', false)
    .action((o: { modelsDir?: string; json: boolean }) => {
      const rows = listModels(o.modelsDir);
      if (o.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      process.stdout.write(`models folder: ${resolveModelsDir(o.modelsDir)}\n`);
      for (const r of rows) {
        process.stdout.write(`${r.id.padEnd(26)} ${r.role.padEnd(16)} ${(r.fixture ? 'fixture' : r.state).padEnd(8)} ${r.license.padEnd(18)} ${r.source}\n`);
      }
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
      for (const { id, checks, layouts } of results) {
        for (const c of checks) {
          const what = c.status === 'ok' ? 'ok' : c.status === 'unverified' ? `unverified (sha256 ${c.sha256 ?? '?'})` : c.status === 'missing' ? 'MISSING' : `CHECKSUM MISMATCH (got ${c.sha256 ?? '?'}, want ${c.expected ?? '?'})`;
          process.stdout.write(`${id.padEnd(24)} ${what.padEnd(12)} ${c.path}\n`);
          if (c.status === 'missing' || c.status === 'checksum') bad.push(id);
        }
        for (const l of layouts) {
          process.stdout.write(`${id.padEnd(24)} ${(l.ok ? 'layout ok' : 'BAD LAYOUT').padEnd(12)} ${l.dir}\n`);
          if (!l.ok) badLayouts.push(l);
        }
      }
      if (bad.length > 0) {
        const first = findModelSpec(bad[0] as string) as ModelSpec;
        throw new AffectError(
          bad.some((id) => results.find((r) => r.id === id)?.checks.some((c) => c.status === 'checksum')) ? 'AFFECT_ERR_MODEL_CHECKSUM' : 'AFFECT_ERR_MODEL_MISSING',
          `models failing verification: ${[...new Set(bad)].join(', ')}`,
          { hint: fixHint(first, o.modelsDir) },
        );
      }
      const firstBad = badLayouts[0];
      if (firstBad) {
        // checkVoskModelDir's message names the folder and what is missing; its hint says how to fix it.
        checkVoskModelDir(firstBad.dir);
      }
    });
}
