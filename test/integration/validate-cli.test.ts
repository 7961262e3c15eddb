/**
 * `circumplex validate` through the real CLI with the repo's fixture text models (transformers.js
 * in a worker, no downloads): it must finish, write validate.json / validate.svg, and the report's
 * statistics must agree with the items it lists (recomputed here from the items).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import { computeMetrics, type ValidationReport } from '../../src/validate/validate.js';
import { selectTerms } from '../../src/validate/terms.js';
import { listModelSpecs } from '../../models/manifest.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli.ts'), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(killer);
  return { code, stdout, stderr };
}

describe('circumplex validate (fixture text models)', () => {
  it.each([
    ['text-embed-fixture', 'ok'],
    ['text-classifier-fixture', 'skipped'],
  ])('%s: writes the report and plots', async (model, heldOutStatus) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'validate-cli-'));
    dirs.push(dir);
    const { code, stdout, stderr } = await runCli([
      'validate',
      '--text-model',
      model,
      '--terms',
      'all',
      '--holdout',
      '0.3',
      '--seed',
      '5',
      '--out',
      dir,
      '--device',
      'cpu',
    ]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/model output vs human \(n=\d+\)/);
    expect(stdout).toMatch(/held-out \(zero-shot\)/);

    const report = JSON.parse(await readFile(path.join(dir, 'validate.json'), 'utf8')) as ValidationReport;
    expect(report).toMatchObject({ kind: 'circumplex.validate', version: 1, termSet: 'all', textModel: { id: model, provider: 'cpu' } });
    expect(report.items).toHaveLength(selectTerms('all').length);
    expect(report.heldOut.status).toBe(heldOutStatus);
    // The statistics are those of the items listed: recompute them.
    const again = computeMetrics(
      report.items.map((i) => i.human),
      report.items.map((i) => i.predicted),
    );
    expect(report.model.metrics).toEqual(JSON.parse(JSON.stringify(again)));
    for (const i of report.items) {
      expect(Number.isFinite(i.predicted.valence) && Number.isFinite(i.predicted.arousal)).toBe(true);
    }
    // The held-out figures of the shipped trained models, from their cards (table and JSON).
    const bundled = listModelSpecs()
      .filter((s) => s.bundled === true)
      .map((s) => s.id);
    expect(report.shippedModels?.map((m) => m.id)).toEqual(bundled);
    for (const m of report.shippedModels ?? []) {
      expect(m.cardMatchesFiles, m.id).toBe(true);
      expect(m.figures.length, m.id).toBeGreaterThan(0);
      expect(stdout).toContain(`${m.id} (${m.role}; licence ${m.license ?? ''}`);
    }
    expect((await stat(path.join(dir, 'validate.svg'))).size).toBeGreaterThan(1000);
    if (heldOutStatus === 'ok') expect((await stat(path.join(dir, 'validate-heldout.svg'))).size).toBeGreaterThan(500);
  });

  it('refuses an unknown model with a clear error and exit code 2', async () => {
    const { code, stderr } = await runCli(['validate', '--text-model', 'no-such-model', '--out', path.join(tmpdir(), 'never')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/AFFECT_ERR_CONFIG: unknown .*model "no-such-model"/);
  });

  it('--out to an unwritable path errors at once, naming the folder, instead of hanging (issue 13 item 6)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'validate-cli-'));
    dirs.push(dir);
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'x');
    // Under /proc: Node's recursive mkdir never settled there, and validate hung. A file as a parent: ENOTDIR.
    for (const out of ['/proc/circumplex-nope/out', path.join(file, 'out')]) {
      const t0 = Date.now();
      const { code, stderr } = await runCli(['validate', '--text-model', 'no-such-model', '--out', out]);
      expect(code, stderr).toBe(2);
      // The folder is checked before the model is looked up (the unknown model would be the other error).
      expect(stderr).toContain(`AFFECT_ERR_CONFIG: cannot write to the output folder ${out}`);
      expect(stderr).toMatch(/hint: pass a writable folder with --out/);
      expect(Date.now() - t0).toBeLessThan(30_000);
    }
  });
});
