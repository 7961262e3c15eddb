/**
 * training/encoders/probe_deviation_sources.py (issue 14): it replays a stream through a
 * wav2vec2-shaped torch model with the runtime's caches and reads each window out several ways. On a
 * tiny random model built here it must reproduce the full window exactly from fresh features, show a
 * non-zero deviation for the cached read-out (compute-once is approximate), and refuse a folder
 * without torch weights with a message that names the missing file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../core/config.js';

const PYTHON = process.env['CIRCUMPLEX_PYTHON'] ?? '/usr/bin/python3';
const AUDIO = path.join(REPO_ROOT, 'test/fixtures/audio/speech.wav');
let dir = '';

const probe = (model: string, extra: string[] = []) =>
  spawnSync(PYTHON, ['-m', 'training.encoders.probe_deviation_sources', '--model', model, '--audio', AUDIO, '--hop', '3840', ...extra], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-probe-'));
  const model = path.join(dir, 'tiny');
  const py = `import os, json, torch
from training.encoders.export_standins import build
d = ${JSON.stringify(model)}; os.makedirs(d)
torch.save(build('tiny', 3).state_dict(), os.path.join(d, 'model.pt'))
json.dump({'config': 'tiny', 'seed': 3}, open(os.path.join(d, 'train.json'), 'w'))`;
  const r = spawnSync(PYTHON, ['-c', py], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`building the tiny torch model failed: ${r.stderr}`);
}, 150_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('probe_deviation_sources', () => {
  it('reproduces the full window from fresh features, and the cached read-out deviates', () => {
    const r = probe(path.join(dir, 'tiny'), ['--windows', '16', '--top', '1,2']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      windows: number;
      modes: Record<string, { maxAbs: Record<string, number>; meanAbsOverSd: Record<string, number> }>;
    };
    expect(report.windows).toBe(16);
    expect(Object.keys(report.modes).sort()).toEqual(['cached', 'frames', 'full', 'top-1', 'top-2']);
    for (const v of Object.values(report.modes['full']!.maxAbs)) expect(v).toBeLessThan(1e-4);
    const cached = Object.values(report.modes['cached']!.maxAbs);
    expect(Math.max(...cached)).toBeGreaterThan(1e-4);
    for (const m of Object.values(report.modes)) for (const v of Object.values(m.meanAbsOverSd)) expect(Number.isFinite(v)).toBe(true);
  }, 180_000);

  it('names the missing torch weights and how to get them', () => {
    const empty = path.join(dir, 'empty');
    const r = probe(empty);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(path.join(empty, 'model.pt'));
    expect(r.stderr).toContain('train_tiny.py');
  });

  it('refuses a --top outside the model\u2019s layers', () => {
    const r = probe(path.join(dir, 'tiny'), ['--windows', '2', '--top', '3']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--top values must be in 1\.\.2/);
  }, 60_000);
});
