/**
 * `circumplex validate` end to end on fake text models with known outputs: the report's shape,
 * statistics that must come out exactly (a model that reproduces the human positions, one that
 * mirrors them), the held-out ridge mode and the files written. Fakes are fine here: what is under
 * test is the validation arithmetic and the report, not a model.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TextAffectModel, TextAffectOutput } from '../../models/ports.js';
import { computeMetrics, formatValidationSummary, runValidation, writeValidationReport } from '../../src/validate/validate.js';
import { selectTerms } from '../../src/validate/terms.js';
import { AffectError } from '../../core/errors.js';

/** A fake model answering from a table keyed by the text it is sent. */
function tableModel(fn: (term: string) => TextAffectOutput): TextAffectModel {
  return {
    id: 'fake-text',
    provider: 'test',
    infer: async (text: string) => fn(text),
    close: async () => {},
  };
}

const human = new Map(selectTerms('all').map((t) => [t.term, t]));

/** Embedding that linearly encodes the human position plus fixed distractor dimensions. */
function embed(term: string): Float32Array {
  const t = human.get(term);
  if (!t) throw new Error(`unknown term ${term}`);
  let h = 0;
  for (const c of term) h = (h * 31 + c.charCodeAt(0)) % 1000;
  return Float32Array.from([t.valence, t.arousal, (h % 7) / 7, (h % 11) / 11, 0.5]);
}

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('runValidation', () => {
  it('scores a model that reproduces the human positions as perfect, with the full report shape', async () => {
    const model = tableModel((term) => {
      const t = human.get(term)!;
      return { valence: t.valence, arousal: t.arousal, confidence: 0.9, embedding: embed(term) };
    });
    const r = await runValidation(model, { terms: 'all', holdout: 0.3, seed: 3 });
    const n = selectTerms('all').length;

    expect(r).toMatchObject({ kind: 'circumplex.validate', version: 1, termSet: 'all', template: '{term}', textModel: { id: 'fake-text', provider: 'test' } });
    expect(r.sources.map((s) => s.id)).toEqual(['russell-1980', 'nrc-vad-2018']);
    expect(r.notes.join(' ')).toMatch(/in-sample/);
    expect(r.sources.reduce((s, x) => s + x.count, 0)).toBe(n);
    expect(r.items).toHaveLength(n);
    expect(r.items[0]).toMatchObject({ term: 'happy', source: 'russell-1980' });

    const m = r.model.metrics;
    expect(m.n).toBe(n);
    expect(m.valence.pearson).toBeCloseTo(1, 10);
    expect(m.valence.spearman).toBeCloseTo(1, 10);
    expect(m.arousal.pearson).toBeCloseTo(1, 10);
    expect(m.angle.circularCorrelation).toBeCloseTo(1, 10);
    expect(m.angle.circularRankCorrelation).toBeCloseTo(1, 6); // tied angles among the NRC words keep Πₙ a hair under 1
    expect(m.angle.meanAbsErrorDeg).toBeCloseTo(0, 10);
    expect(m.ordering?.adjacentPairsPreserved).toBe(1);
    expect(m.ordering?.tripletConcordance).toBe(1);
    expect(Object.keys(r.model.bySource).sort()).toEqual(['nrc-vad-2018', 'russell-1980']);

    // Held-out: the embedding carries the answer linearly, so ridge recovers it on unseen terms.
    expect(r.heldOut.status).toBe('ok');
    if (r.heldOut.status !== 'ok') return;
    expect(r.heldOut.testCount).toBe(Math.round(n * 0.3));
    expect(r.heldOut.trainCount + r.heldOut.testCount).toBe(n);
    expect(r.heldOut.embeddingDim).toBe(5);
    expect(r.heldOut.metrics.valence.pearson!).toBeGreaterThan(0.99);
    expect(r.heldOut.metrics.arousal.pearson!).toBeGreaterThan(0.99);
    expect(r.items.filter((i) => i.split === 'test')).toHaveLength(r.heldOut.testCount);
    expect(r.items.filter((i) => i.heldOutPredicted)).toHaveLength(r.heldOut.testCount);

    // Same seed, same split.
    const again = await runValidation(model, { terms: 'all', holdout: 0.3, seed: 3 });
    expect(again.items.map((i) => i.split)).toEqual(r.items.map((i) => i.split));
  });

  it('computes the statistics of a mirrored (valence-flipped) model correctly', async () => {
    const model = tableModel((term) => {
      const t = human.get(term)!;
      return { valence: -t.valence, arousal: t.arousal, confidence: 1 };
    });
    const r = await runValidation(model, { terms: 'russell', holdout: 0 });
    const m = r.model.metrics;
    expect(m.n).toBe(28);
    expect(m.valence.pearson).toBeCloseTo(-1, 10);
    expect(m.arousal.pearson).toBeCloseTo(1, 10);
    // A reflection of the circle: rank correlation −1, no neighbour keeps its side.
    expect(m.angle.circularRankCorrelation).toBeCloseTo(-1, 10);
    expect(m.ordering?.adjacentPairsPreserved).toBe(0);
    expect(m.ordering?.tripletConcordance).toBe(0);
    expect(r.heldOut).toEqual({ status: 'skipped', reason: 'held-out mode turned off (--holdout 0)' });
  });

  it('reports a constant model as undefined correlations and skips held-out without embeddings', async () => {
    const r = await runValidation(
      tableModel(() => ({ valence: 0.2, arousal: 0.1, confidence: 0.5 })),
      { terms: 'extended' },
    );
    expect(r.model.metrics.valence.pearson).toBeNull();
    expect(r.model.metrics.arousal.spearman).toBeNull();
    expect(r.heldOut.status).toBe('skipped');
    expect(formatValidationSummary(r)).toMatch(/valence {3}pearson n\/a/);
  });

  it('sends the template with the term substituted', async () => {
    const seen: string[] = [];
    await runValidation(
      tableModel((text) => {
        seen.push(text);
        return { valence: 0, arousal: 0, confidence: 0 };
      }),
      { terms: 'russell', template: 'I feel {term}.', holdout: 0 },
    );
    expect(seen).toContain('I feel at ease.');
    expect(seen).toHaveLength(28);
  });

  it('fails with a clear AffectError naming the term on a NaN output', async () => {
    const model = tableModel((term) => ({ valence: term === 'sad' ? Number.NaN : 0, arousal: 0, confidence: 1 }));
    const err = await runValidation(model, { terms: 'russell', holdout: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_INFERENCE');
    expect((err as AffectError).message).toMatch(/"sad"/);
  });

  it('rejects invalid options with a RangeError naming the option', async () => {
    const model = tableModel(() => ({ valence: 0, arousal: 0, confidence: 0 }));
    await expect(runValidation(model, { holdout: 0.95 })).rejects.toThrow(/holdout/);
    await expect(runValidation(model, { template: 'no placeholder' })).rejects.toThrow(/template/);
  });

  it('writes the JSON report and SVG plots', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'validate-'));
    const model = tableModel((term) => {
      const t = human.get(term)!;
      return { valence: t.valence * 0.5, arousal: t.arousal * 0.5 + 0.1, confidence: 0.9, embedding: embed(term) };
    });
    const r = await runValidation(model, { terms: 'all', holdout: 0.3 });
    const files = await writeValidationReport(r, dir);
    expect(files.map((f) => path.basename(f))).toEqual(['validate.json', 'validate.svg', 'validate-heldout.svg']);
    const json = JSON.parse(await readFile(files[0]!, 'utf8')) as { items: unknown[]; model: { metrics: { n: number } } };
    expect(json.items).toHaveLength(r.items.length);
    expect(json.model.metrics.n).toBe(r.model.metrics.n);
    const svg = await readFile(files[1]!, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('>at ease<');
    expect(svg.match(/<circle [^>]*fill="#1f77b4"/g)?.length).toBe(r.items.length + 1); // + legend
  });
});

describe('computeMetrics', () => {
  it('matches hand-computed values on a 4-term case', () => {
    const pt = (valence: number, arousal: number) => ({ valence, arousal, angleDeg: (Math.atan2(arousal, valence) * 180) / Math.PI });
    // valence human [1,2,3,4]/4 vs predicted [1,3,2,4]/4 → pearson 0.8 (see validate-stats); arousal identical → 1
    const h = [pt(0.25, 0.1), pt(0.5, 0.2), pt(0.75, 0.3), pt(1, 0.4)];
    const p = [pt(0.25, 0.1), pt(0.75, 0.2), pt(0.5, 0.3), pt(1, 0.4)];
    const m = computeMetrics(h, p);
    expect(m.valence.pearson).toBeCloseTo(0.8, 12);
    expect(m.valence.spearman).toBeCloseTo(0.8, 12);
    expect(m.arousal.pearson).toBeCloseTo(1, 12);
  });
});
