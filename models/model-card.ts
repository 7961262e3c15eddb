/**
 * The machine-readable half of a trained model's card: `models/<id>/model-card.json`, written by
 * the training recipe's export step together with the ONNX file (training/common/card.py), so a
 * figure can never describe another file. `MODEL_CARD.md` beside it is the human half.
 *
 * Read by `circumplex models list` (licence, headline figures), `circumplex validate` (held-out
 * figures of the shipped models) and the tests that check the card matches the shipped file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AffectError } from '../core/errors.js';

/** File name of the machine-readable card inside a model folder. */
export const MODEL_CARD_JSON = 'model-card.json';

/** One measured figure: a metric of one dimension on one held-out evaluation. */
export const CardFigure = z.object({
  /** Short id of the evaluation, e.g. `loso-emodb`, `cross-corpus-emodb-to-ravdess`, `emobank-dev`. */
  evaluation: z.string().min(1),
  /** What was held out and how, in words. */
  description: z.string().optional(),
  dimension: z.enum(['valence', 'arousal', 'dominance']),
  metric: z.enum(['ccc', 'pearson', 'rmse', 'mae', 'auc', 'coverage1sigma']),
  value: z.number(),
  /** Items scored (clips or sentences). */
  n: z.number().int().nonnegative(),
  /** The stated target for this figure, when the issue set one. */
  target: z.number().optional(),
});
export type CardFigure = z.infer<typeof CardFigure>;

/** The whole machine-readable card. */
export const ModelCard = z.object({
  id: z.string().min(1),
  /** Manifest role, e.g. `speech` or `text-regression`. */
  role: z.string().min(1),
  /** SPDX-like licence of the trained weights (inherits the training data's terms). */
  license: z.string().min(1),
  /** What the licence means for a user, in one or two sentences. */
  licenseNotes: z.string().min(1),
  data: z.array(z.object({ name: z.string(), license: z.string(), items: z.number().int().nonnegative(), citation: z.string().optional() })).min(1),
  recipe: z.object({
    /** Command that rebuilds the shipped files, e.g. `npm run train:speech`. */
    command: z.string().min(1),
    seed: z.number().int(),
    /** Hyper-parameters as trained (the recipe's config). */
    config: z.record(z.string(), z.unknown()),
  }),
  /** The files the card describes, relative to the model folder, with their sha256. */
  files: z.array(z.object({ path: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), sizeBytes: z.number().int().positive() })).min(1),
  figures: z.array(CardFigure),
  /** Two or three figures for `models list`, e.g. `arousal CCC 0.86 (LOSO)`. */
  headline: z.array(z.string()).default([]),
  /** ISO date the figures were measured. */
  measuredAt: z.string().min(1),
  /** Command that reproduces the figures. */
  figuresCommand: z.string().min(1),
});
export type ModelCard = z.infer<typeof ModelCard>;

/** Reads and validates `<dir>/model-card.json`; undefined when the folder has none. */
export function readModelCard(dir: string): ModelCard | undefined {
  const file = path.join(dir, MODEL_CARD_JSON);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', `${file} is not valid JSON`, { cause: err, hint: 'restore it from git or retrain the model' });
  }
  const parsed = ModelCard.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', `${file}: ${problems}`, { hint: 'restore it from git or retrain the model' });
  }
  return parsed.data;
}
