/**
 * The shipped text model through the user-facing paths: `circumplex evaluate --modality text` on
 * the EmoBank dev split (../shared/data, 1,000 sentences, ratings 1–5, many with quotes and commas)
 * reproduces the figures in text-emobank's model card, which the Python recipe measured — the
 * TypeScript tokenisation, inference and metrics agree with the training side end to end. Then
 * `run` with speech recognition and text-emobank: frames carry the text model's dominance (on the
 * text part and, through late fusion, on the frame).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AffectMessage } from '../../core/protocol.js';
import { readModelCard } from '../../models/model-card.js';
import { REPO_ROOT } from '../../core/config.js';
import { parseCsv } from '../../src/evaluate/csv.js';
import { csvField } from '../../src/evaluate/evaluate.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';

const dir = mkdtempSync(path.join(tmpdir(), 'evaluate-emobank-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env['CIRCUMPLEX_VOSK_MODEL'];

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/circumplex.mjs'), ...args], {
    env,
    cwd: REPO_ROOT,
    maxBuffer: 64 * 1024 * 1024,
    timeout: 180_000,
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** EmoBank's dev split as an evaluate CSV (text,valence,arousal,dominance on 1..5). */
function emobankDevCsv(): { file: string; rows: number } {
  const root = process.env['CIRCUMPLEX_DATA_DIR'] ? path.resolve(process.env['CIRCUMPLEX_DATA_DIR']) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
  const src = path.join(root, 'emobank', 'emobank.csv');
  if (!existsSync(src)) throw new Error(`test data missing: ${src} (the shared data belongs at ../shared/data next to the repo, or set CIRCUMPLEX_DATA_DIR)`);
  const recs = parseCsv(readFileSync(src, 'utf8'));
  const head = recs.shift()?.fields ?? [];
  const at = (n: string) => head.indexOf(n);
  const dev = recs.filter((r) => r.fields[at('split')] === 'dev');
  const lines = [
    'text,valence,arousal,dominance',
    ...dev.map((r) => [r.fields[at('text')], r.fields[at('V')], r.fields[at('A')], r.fields[at('D')]].map(csvField).join(',')),
  ];
  const file = path.join(dir, 'emobank-dev.csv');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, rows: dev.length };
}

describe('text-emobank through evaluate and run', () => {
  it('evaluate on the EmoBank dev split reproduces the model card figures', () => {
    const { file, rows } = emobankDevCsv();
    expect(rows).toBe(1000);
    const r = cli(['evaluate', '--modality', 'text', '--data', file, '--scale', '1,5', '--text-model', 'text-emobank', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { rows: number; dimensions: Record<string, Record<string, number>> };
    expect(rep.rows).toBe(1000);
    const card = readModelCard(path.join(REPO_ROOT, 'models', 'text-emobank'));
    const figs = (card?.figures ?? []).filter((f) => f.evaluation === 'emobank-dev');
    expect(figs.length).toBeGreaterThanOrEqual(9);
    for (const f of figs) {
      if (!['pearson', 'ccc', 'rmse', 'mae'].includes(f.metric)) continue;
      // The card rounds to 4 decimals; ONNX on the two sides may differ in the last float bits.
      expect(Math.abs((rep.dimensions[f.dimension]?.[f.metric] ?? NaN) - f.value), `${f.dimension} ${f.metric}`).toBeLessThan(0.002);
      expect(rep.dimensions[f.dimension]?.['n']).toBe(1000);
    }
  });

  it("run with speech recognition and text-emobank: frames carry the text model's dominance", () => {
    const vosk = buildTinyVoskModel(path.join(dir, 'vosk-tiny'));
    const r = cli(['run', '--input', 'test/fixtures/audio/speech.wav', '--json', '--asr-model', vosk, '--text-model', 'text-emobank']);
    expect(r.code, r.stderr).toBe(0);
    const frames = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string })
      .filter((m) => m.type === 'affect')
      .map((m) => AffectMessage.parse(m));
    const withText = frames.filter((f) => f.text !== undefined);
    expect(withText.length).toBeGreaterThan(5);
    for (const f of withText) {
      expect(f.text?.dominance).toBeGreaterThanOrEqual(-1);
      expect(f.text?.dominance).toBeLessThanOrEqual(1);
    }
    // Late fusion puts it on the frame (held, unvoiced frames keep the last one, if any yet).
    expect(withText.filter((f) => f.dominance !== undefined).length).toBeGreaterThan(5);
  });
});
