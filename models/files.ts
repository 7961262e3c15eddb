/**
 * Where a model's files are and whether they are the right ones: existence, size and sha256 checks
 * with errors that name the file and the fix.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AffectError } from '../core/errors.js';
import { loadConfig, REPO_ROOT } from '../core/config.js';
import type { ModelFile, ModelSpec } from './manifest.js';

/** Folder with the committed fixture models (under the package root, so compiled code in dist/ finds them too). */
export const FIXTURES_DIR = path.join(REPO_ROOT, 'models', 'fixtures');

/** Folder holding the trained models committed to the repo, one folder per id (`models/<id>/`), under the package root. */
export const BUNDLED_DIR = path.join(REPO_ROOT, 'models');

/** Name of the record `models pull --accept-unverified` writes into a model folder. */
export const VERIFIED_RECORD = '.verified.json';

/** The models folder: the option, else CIRCUMPLEX_MODELS_DIR, else models/weights/. */
export function resolveModelsDir(modelsDir?: string): string {
  return path.resolve(modelsDir ?? loadConfig().modelsDir);
}

/** The folder a model's file paths are relative to. */
export function modelRoot(spec: ModelSpec, modelsDir?: string): string {
  if (spec.fixture) return FIXTURES_DIR;
  if (spec.bundled) return path.join(BUNDLED_DIR, spec.id);
  return path.join(resolveModelsDir(modelsDir), spec.id);
}

/** Absolute path of one of a model's files. */
export function modelFilePath(spec: ModelSpec, file: ModelFile, modelsDir?: string): string {
  return path.join(modelRoot(spec, modelsDir), file.path);
}

/**
 * The `circumplex models pull` command that downloads a model as it stands in the manifest: with
 * `--accept-unverified` when a file's sha256 is not known (pull refuses those without it).
 */
export function pullCommand(spec: ModelSpec): string {
  return `circumplex models pull ${spec.id}${spec.files.some((f) => f.sha256 === null) ? ' --accept-unverified' : ''}`;
}

/** The command that puts a model's files in place. */
export function fixHint(spec: ModelSpec, modelsDir?: string): string {
  if (spec.fixture) return 'rebuild the fixtures: npm run models:fixtures';
  if (spec.bundled) {
    return `restore the committed files (git checkout -- ${path.relative(process.cwd(), modelRoot(spec, modelsDir)) || '.'}) or retrain: see training/README.md`;
  }
  if (spec.files.every((f) => f.url !== null)) {
    return `download it: ${pullCommand(spec)} (offline: put the files in ${modelRoot(spec, modelsDir)}/)`;
  }
  return `export it (docs/models.md "Exporting your own models") and put the files in ${modelRoot(spec, modelsDir)}/`;
}

/** sha256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Hashes recorded by `pull --accept-unverified`: file path → { sha256, sizeBytes }. */
export type VerifiedRecord = Record<string, { sha256: string; sizeBytes: number }>;

/**
 * Reads a model folder's verified record, if any. A record that cannot be read (damaged, edited) is
 * an AFFECT_ERR_MODEL_CHECKSUM naming it: taken as empty, it silently turned the check of every file
 * it covers off (a changed file then passed as merely "unverified").
 */
export function readVerifiedRecord(root: string): VerifiedRecord {
  const p = path.join(root, VERIFIED_RECORD);
  if (!existsSync(p)) return {};
  let rec: unknown;
  let problem: string | undefined;
  try {
    rec = JSON.parse(readFileSync(p, 'utf8'));
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem === undefined) {
    const entries = rec !== null && typeof rec === 'object' && !Array.isArray(rec) ? Object.entries(rec) : undefined;
    const bad = entries?.find(
      ([, v]) => typeof (v as { sha256?: unknown } | null)?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test((v as { sha256: string }).sha256),
    );
    if (!entries) problem = 'not a JSON object';
    else if (bad) problem = `the entry for ${JSON.stringify(bad[0])} has no sha256 (64 hex digits)`;
  }
  if (problem !== undefined) {
    throw new AffectError('AFFECT_ERR_MODEL_CHECKSUM', `${p} (the sha256s recorded by models pull --accept-unverified) cannot be read: ${problem}`, {
      hint: `the files it covers cannot be checked: delete ${root} and pull the model again with --accept-unverified`,
    });
  }
  return rec as VerifiedRecord;
}

/** Writes (merges) a model folder's verified record. */
export function writeVerifiedRecord(root: string, file: string, sha256: string, sizeBytes: number): void {
  const rec = readVerifiedRecord(root);
  rec[file] = { sha256, sizeBytes };
  writeFileSync(path.join(root, VERIFIED_RECORD), JSON.stringify(rec, null, 2) + '\n');
}

/** Result of checking one file. */
export interface FileCheck {
  readonly file: string;
  readonly path: string;
  readonly status: 'ok' | 'missing' | 'checksum' | 'unverified';
  readonly sha256?: string;
  readonly expected?: string;
}

/** The sha256 a file must have: the manifest's, else the one `pull --accept-unverified` recorded. */
export function expectedSha(spec: ModelSpec, file: ModelFile, modelsDir?: string): string | null {
  if (file.sha256) return file.sha256;
  return readVerifiedRecord(modelRoot(spec, modelsDir))[file.path]?.sha256 ?? null;
}

/** Checks every file of a model without throwing. */
export async function checkModelFiles(spec: ModelSpec, modelsDir?: string): Promise<FileCheck[]> {
  const out: FileCheck[] = [];
  for (const f of spec.files) {
    const p = modelFilePath(spec, f, modelsDir);
    if (!existsSync(p) || !statSync(p).isFile()) {
      out.push({ file: f.path, path: p, status: 'missing' });
      continue;
    }
    const want = expectedSha(spec, f, modelsDir);
    const got = await sha256File(p);
    if (want === null) out.push({ file: f.path, path: p, status: 'unverified', sha256: got });
    else if (got !== want) out.push({ file: f.path, path: p, status: 'checksum', sha256: got, expected: want });
    else out.push({ file: f.path, path: p, status: 'ok', sha256: got });
  }
  return out;
}

/**
 * Throws the first load error for a model's files: AFFECT_ERR_MODEL_MISSING (naming the path and
 * the command that fixes it) or AFFECT_ERR_MODEL_CHECKSUM. Returns the checks (unverified files
 * are allowed; the caller logs them).
 */
export async function assertModelFiles(spec: ModelSpec, modelsDir?: string): Promise<FileCheck[]> {
  const checks = await checkModelFiles(spec, modelsDir);
  for (const c of checks) {
    if (c.status === 'missing') {
      throw new AffectError('AFFECT_ERR_MODEL_MISSING', `model ${spec.id}: file ${c.path} not found`, {
        stage: spec.id,
        hint: fixHint(spec, modelsDir),
      });
    }
    if (c.status === 'checksum') {
      throw new AffectError(
        'AFFECT_ERR_MODEL_CHECKSUM',
        `model ${spec.id}: ${c.path} has sha256 ${c.sha256 ?? '?'}, expected ${c.expected ?? '?'} (corrupt, truncated or a different file)`,
        { stage: spec.id, hint: `delete it and ${fixHint(spec, modelsDir)}` },
      );
    }
  }
  return checks;
}
