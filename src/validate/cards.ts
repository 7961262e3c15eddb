/**
 * The held-out figures of the shipped (bundled, trained) models, read from their model cards
 * (`models/<id>/model-card.json`, models/model-card.ts) for `circumplex validate`: what each model
 * scored on people or sentences it never saw, with the stated targets, and whether the card still
 * describes the file beside it (sha256).
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { listModelSpecs, type ModelSpec } from '../../models/manifest.js';
import { modelRoot, sha256File } from '../../models/files.js';
import { readModelCard, type CardFigure } from '../../models/model-card.js';

/** One shipped model's card figures. */
export interface ShippedModelFigures {
  readonly id: string;
  readonly role: string;
  /** Licence of the trained weights, from the card. */
  readonly license?: string;
  readonly measuredAt?: string;
  /** Command that reproduces the figures. */
  readonly figuresCommand?: string;
  readonly headline?: readonly string[];
  /** Every figure of the card (held-out evaluations). */
  readonly figures: readonly CardFigure[];
  /** True when every file the card lists has the card's sha256 (the figures describe the shipped file). */
  readonly cardMatchesFiles: boolean;
  /** Why there are no figures (no card, unreadable card), when there are none. */
  readonly problem?: string;
}

/** The figures of every bundled model in the manifest (or of the given specs, whose folders may be under `modelsDir`). */
export async function shippedModelFigures(
  specs: readonly ModelSpec[] = listModelSpecs().filter((s) => s.bundled === true),
  modelsDir?: string,
): Promise<ShippedModelFigures[]> {
  const out: ShippedModelFigures[] = [];
  for (const spec of specs) {
    const dir = modelRoot(spec, modelsDir);
    let card;
    try {
      card = readModelCard(dir);
    } catch (err) {
      out.push({ id: spec.id, role: spec.role, figures: [], cardMatchesFiles: false, problem: (err as Error).message });
      continue;
    }
    if (!card) {
      out.push({ id: spec.id, role: spec.role, figures: [], cardMatchesFiles: false, problem: `no model card (${path.join(dir, 'model-card.json')})` });
      continue;
    }
    let matches = true;
    for (const f of card.files) {
      const p = path.join(dir, f.path);
      if (!existsSync(p) || (await sha256File(p)) !== f.sha256) matches = false;
    }
    out.push({
      id: spec.id,
      role: card.role,
      license: card.license,
      measuredAt: card.measuredAt,
      figuresCommand: card.figuresCommand,
      headline: card.headline,
      figures: card.figures,
      cardMatchesFiles: matches,
    });
  }
  return out;
}

const METRIC_COLUMNS = [
  ['ccc', 'CCC'],
  ['pearson', 'r'],
  ['rmse', 'RMSE'],
  ['mae', 'MAE'],
  ['auc', 'AUC'],
  ['coverage1sigma', 'cover±1σ'],
] as const;

/** The figures as a table per model: one row per evaluation and dimension, one column per metric (target in brackets). */
export function formatShippedFigures(models: readonly ShippedModelFigures[]): string[] {
  if (models.length === 0) return [];
  const lines = ['held-out figures of the shipped models (from their model cards):'];
  for (const m of models) {
    if (m.problem) {
      lines.push(`  ${m.id} (${m.role}): ${m.problem}`);
      continue;
    }
    lines.push(`  ${m.id} (${m.role}; licence ${m.license ?? '?'}; measured ${m.measuredAt ?? '?'}; reproduce: ${m.figuresCommand ?? '?'})`);
    if (!m.cardMatchesFiles)
      lines.push("    WARNING: the card's sha256 does not match the file beside it: these figures describe another file (circumplex models verify)");
    const keys: string[] = [];
    const rows = new Map<string, Map<string, CardFigure>>();
    for (const f of m.figures) {
      const k = `${f.evaluation}\u0000${f.dimension}`;
      if (!rows.has(k)) {
        rows.set(k, new Map());
        keys.push(k);
      }
      rows.get(k)?.set(f.metric, f);
    }
    const used = METRIC_COLUMNS.filter(([metric]) => m.figures.some((f) => f.metric === metric));
    const head = ['evaluation', 'dimension', 'n', ...used.map(([, label]) => label)];
    const body = keys.map((k) => {
      const [evaluation = '', dimension = ''] = k.split('\u0000');
      const cells = rows.get(k) ?? new Map<string, CardFigure>();
      const n = Math.max(0, ...[...cells.values()].map((f) => f.n));
      return [
        evaluation,
        dimension,
        String(n),
        ...used.map(([metric]) => {
          const f = cells.get(metric);
          if (!f) return '–';
          return f.target === undefined ? f.value.toFixed(3) : `${f.value.toFixed(3)} [${f.target}]`;
        }),
      ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
    const fmtRow = (r: string[]) => `    ${r.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`;
    lines.push(fmtRow(head), ...body.map(fmtRow));
  }
  lines.push('  [x]: the target the issue set for that figure');
  return lines;
}
