/**
 * Model cards in the CLI: `models list` shows a trained model's card licence and headline figures
 * (table and JSON rows), `models verify` checks the card's sha256s against the files beside it, and
 * `validate`'s shipped-model section lists the card's held-out figures with their targets. A model
 * folder with a real card (written by the schema of models/model-card.ts) is made in a temp models
 * folder for a stand-in manifest entry; the cards of the models shipped in the repo are checked too.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../../models/manifest.js';
import { listModelSpecs } from '../../models/manifest.js';
import { BUNDLED_DIR } from '../../models/files.js';
import { ModelCard } from '../../models/model-card.js';
import { checkCardFiles, formatModelList, listModels } from '../../src/commands/models.js';
import { formatShippedFigures, shippedModelFigures } from '../../src/validate/cards.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-cards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec: ModelSpec = {
  id: 'card-test',
  role: 'speech',
  description: 'stand-in trained model for the card tests',
  fixture: false,
  source: 'test',
  license: 'manifest-licence',
  files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }],
  inputs: [],
  outputs: [],
};

function makeModel(withCard: boolean): string {
  const m = path.join(dir, spec.id);
  mkdirSync(m, { recursive: true });
  const bytes = Buffer.from('not really onnx, only hashed');
  writeFileSync(path.join(m, 'model.onnx'), bytes);
  if (withCard) {
    const card = ModelCard.parse({
      id: spec.id,
      role: 'speech',
      license: 'CC-BY-NC-SA-4.0',
      licenseNotes: 'Non-commercial: trained on RAVDESS.',
      data: [{ name: 'RAVDESS', license: 'CC-BY-NC-SA-4.0', items: 1200 }],
      recipe: { command: 'npm run train:speech', seed: 1, config: { windows: { minVoicedFraction: 0.2 } } },
      files: [{ path: 'model.onnx', sha256: createHash('sha256').update(bytes).digest('hex'), sizeBytes: bytes.length }],
      figures: [
        { evaluation: 'loso-ravdess', dimension: 'arousal', metric: 'ccc', value: 0.7, n: 1200, target: 0.85 },
        { evaluation: 'loso-ravdess', dimension: 'arousal', metric: 'auc', value: 0.91, n: 1200 },
        { evaluation: 'loso-ravdess', dimension: 'valence', metric: 'ccc', value: 0.35, n: 1200, target: 0.55 },
      ],
      headline: ['arousal CCC 0.70 (LOSO ravdess)'],
      measuredAt: '2026-12-04',
      figuresCommand: 'npm run train:speech',
    });
    writeFileSync(path.join(m, 'model-card.json'), JSON.stringify(card, null, 2));
  }
  return m;
}

describe('model cards in models list / verify / validate', () => {
  it('models list shows the card licence, notes and headline figures (table and JSON)', () => {
    makeModel(true);
    const [row] = listModels(dir, [spec]);
    expect(row).toMatchObject({
      id: 'card-test',
      state: 'present',
      license: 'CC-BY-NC-SA-4.0',
      card: { headline: ['arousal CCC 0.70 (LOSO ravdess)'], licenseNotes: 'Non-commercial: trained on RAVDESS.', data: [{ name: 'RAVDESS', items: 1200 }] },
    });
    const table = formatModelList(row ? [row] : [], dir);
    expect(table).toMatch(/card-test +speech +present +CC-BY-NC-SA-4\.0/);
    expect(table).toContain('arousal CCC 0.70 (LOSO ravdess)');
    expect(table).toContain('licence: Non-commercial: trained on RAVDESS.');
    // A model without a card shows the manifest licence and no figures.
    const fixture = listModels(
      dir,
      listModelSpecs().filter((s) => s.id === 'speech-fixture'),
    )[0];
    expect(fixture).toMatchObject({ license: 'MIT', card: null });
  });

  it('models verify: the card sha256s match the files, and a changed file is a mismatch', async () => {
    const m = makeModel(true);
    expect((await checkCardFiles(spec, dir)).map((c) => c.status)).toEqual(['ok']);
    writeFileSync(path.join(m, 'model.onnx'), 'a retrained file without a new card');
    const [c] = await checkCardFiles(spec, dir);
    expect(c).toMatchObject({ status: 'mismatch', path: path.join(m, 'model.onnx') });
    rmSync(path.join(m, 'model.onnx'));
    expect((await checkCardFiles(spec, dir))[0]?.status).toBe('missing');
  });

  it('models verify: a bundled model without its card is a no-card check naming where the card belongs', async () => {
    // a bundled model's folder is models/<id>/ in the repo; there is no models/card-test/, so no card
    const bundled: ModelSpec = { ...spec, bundled: true };
    expect(await checkCardFiles(bundled)).toEqual([{ path: path.join(BUNDLED_DIR, 'card-test', 'model-card.json'), status: 'no-card' }]);
    // a downloaded model need not have one
    rmSync(path.join(makeModel(false), 'model-card.json'), { force: true });
    expect(await checkCardFiles(spec, dir)).toEqual([]);
  });

  it('an unreadable card is reported by list (not thrown) and by validate', async () => {
    const m = makeModel(true);
    writeFileSync(path.join(m, 'model-card.json'), '{"id": "card-test"}');
    const [row] = listModels(dir, [spec]);
    expect(row?.card).toBeNull();
    expect(row?.cardError).toMatch(/model-card\.json: role: /);
    const [fig] = await shippedModelFigures([spec], dir);
    expect(fig?.problem).toMatch(/model-card\.json/);
  });

  it('validate lists the held-out figures with their targets, and warns when the card describes another file', async () => {
    const m = makeModel(true);
    const [fig] = await shippedModelFigures([spec], dir);
    expect(fig).toMatchObject({ id: 'card-test', license: 'CC-BY-NC-SA-4.0', cardMatchesFiles: true });
    expect(fig?.figures).toHaveLength(3);
    const lines = formatShippedFigures(fig ? [fig] : []).join('\n');
    expect(lines).toMatch(/loso-ravdess +arousal +1200 +0\.700 \[0\.85\] +0\.910/);
    expect(lines).toMatch(/loso-ravdess +valence +1200 +0\.350 \[0\.55\] +–/);
    expect(lines).not.toContain('WARNING');
    writeFileSync(path.join(m, 'model.onnx'), 'changed');
    const [stale] = await shippedModelFigures([spec], dir);
    expect(stale?.cardMatchesFiles).toBe(false);
    expect(formatShippedFigures(stale ? [stale] : []).join('\n')).toContain("WARNING: the card's sha256 does not match");
  });

  it('every bundled model in the manifest has a card that describes its files', async () => {
    const bundled = listModelSpecs().filter((s) => s.bundled === true);
    for (const s of bundled) {
      const checks = await checkCardFiles(s);
      expect(checks.length, s.id).toBeGreaterThan(0);
      expect(
        checks.every((c) => c.status === 'ok'),
        s.id,
      ).toBe(true);
      expect(listModels(undefined, [s])[0]?.card?.headline.length, s.id).toBeGreaterThan(0);
    }
    const figs = await shippedModelFigures();
    expect(figs.map((f) => f.id)).toEqual(bundled.map((s) => s.id));
    expect(figs.every((f) => f.cardMatchesFiles && f.figures.length > 0)).toBe(true);
  });
});
