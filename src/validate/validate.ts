/**
 * `circumplex validate`: the preprint's check for whatever text model is loaded. Each emotion term
 * is sent through the text path; its predicted (valence, arousal) is compared with where humans put
 * it: Pearson and Spearman per dimension, circular correlation and circular rank correlation of the
 * angles, whether the order of terms around the circle survives, and an SVG of predicted vs human
 * positions. A held-out (zero-shot) mode fits a ridge map from the model's sentence embedding to
 * (valence, arousal) on part of the terms and scores the rest.
 *
 * ```ts
 * const report = await runValidation(textModel, { terms: 'all', holdout: 0.3, seed: 7 });
 * await writeValidationReport(report, 'bench/results/validate');
 * process.stdout.write(formatValidationSummary(report));
 * ```
 */
import { formatShippedFigures, type ShippedModelFigures } from './cards.js';
import { access, constants as fsConstants, mkdir, stat, writeFile as fsWriteFile } from 'node:fs/promises';
import path from 'node:path';
import { AffectError } from '../../core/errors.js';
import type { TextAffectModel } from '../../models/ports.js';
import { circumplexSvg, type PlotPoint } from './plot-svg.js';
import { fitRidgeCv, seededPermutation } from './ridge.js';
import {
  angleDegOf,
  circularCorrelation,
  circularRankCorrelation,
  meanAbsAngularErrorDeg,
  orderingAgreement,
  pearson,
  spearman,
  toRad,
  type OrderingAgreement,
} from './stats.js';
import { TERM_SETS, TERM_SOURCES, selectTerms, type RatedTerm, type TermSet, type TermSource } from './terms.js';

/** Options for {@link runValidation}. */
export interface ValidateOptions {
  /** Which rated terms to use. Default `all`. */
  terms: TermSet;
  /** Text sent to the model for each term; `{term}` is replaced. Default `{term}` (the bare word). */
  template: string;
  /** Fraction of terms held out for the zero-shot mode, in [0, 0.9]; 0 turns the mode off. Default 0.3. */
  holdout: number;
  /** Seed of the held-out split. Default 1. */
  seed: number;
  /** Model calls in flight at once (the adapters batch them). Default 8. */
  concurrency: number;
}

export const DEFAULT_VALIDATE: ValidateOptions = { terms: 'all', template: '{term}', holdout: 0.3, seed: 1, concurrency: 8 };

/** Correlations for one dimension. `null`: undefined (a constant series). */
export interface DimensionStats {
  readonly pearson: number | null;
  readonly spearman: number | null;
}

/** Everything computed for one set of (human, predicted) pairs. */
export interface ValidationMetrics {
  readonly n: number;
  readonly valence: DimensionStats;
  readonly arousal: DimensionStats;
  readonly angle: {
    /** Jammalamadaka–SenGupta circular correlation of the angles. */
    readonly circularCorrelation: number | null;
    /** Fisher–Lee circular rank correlation Πₙ (+1 same circular order up to rotation, −1 mirrored). */
    readonly circularRankCorrelation: number | null;
    readonly meanAbsErrorDeg: number;
  };
  /** `null` with fewer than 3 terms. */
  readonly ordering: OrderingAgreement | null;
}

/** A point on the circumplex. */
export interface VaPoint {
  readonly valence: number;
  readonly arousal: number;
  readonly angleDeg: number;
}

/** One term in the report. */
export interface ValidationItem {
  readonly term: string;
  readonly source: TermSource;
  readonly human: VaPoint;
  /** The model's own output for the term. */
  readonly predicted: VaPoint & { readonly confidence: number };
  /** Held-out mode: which side of the split the term was on. */
  readonly split?: 'train' | 'test';
  /** Held-out mode: the ridge projection of the term's embedding (test terms only). */
  readonly heldOutPredicted?: VaPoint;
}

/** The held-out (zero-shot) section. */
export type HeldOutSection =
  | {
      readonly status: 'ok';
      readonly testFraction: number;
      readonly seed: number;
      readonly trainCount: number;
      readonly testCount: number;
      readonly embeddingDim: number;
      /** Ridge penalty picked by 5-fold CV on the training terms. */
      readonly lambda: number;
      readonly cvMse: ReadonlyArray<{ readonly lambda: number; readonly mse: number }>;
      /** Ridge projection on the held-out terms. */
      readonly metrics: ValidationMetrics;
      /** The model's own output on the same held-out terms, for comparison. */
      readonly modelOnTest: ValidationMetrics;
    }
  | { readonly status: 'skipped'; readonly reason: string };

/** The JSON report `circumplex validate` writes. */
export interface ValidationReport {
  readonly kind: 'circumplex.validate';
  readonly version: 1;
  readonly createdAt: string;
  readonly textModel: { readonly id: string; readonly provider: string };
  readonly template: string;
  readonly termSet: TermSet;
  readonly sources: ReadonlyArray<{ readonly id: TermSource; readonly count: number; readonly citation: string }>;
  /** The model's own valence/arousal output against the human positions. */
  readonly model: {
    readonly metrics: ValidationMetrics;
    readonly bySource: Partial<Record<TermSource, ValidationMetrics>>;
  };
  readonly heldOut: HeldOutSection;
  readonly items: readonly ValidationItem[];
  readonly timing: { readonly inferMs: number };
  /** Things a reader must know to interpret the numbers. */
  readonly notes: readonly string[];
  /**
   * The held-out figures of the shipped trained models, from their model cards (src/validate/cards.ts);
   * added by the `validate` command (additive to version 1).
   */
  readonly shippedModels?: readonly ShippedModelFigures[];
}

/**
 * Russell's 28 terms are the anchors of the built-in zero-shot text path (models/text-model.ts fits
 * its projection on them) and the target space of the classifier's label mapping
 * (models/text-lexicon.ts), so for the built-in text models they are in-sample.
 */
export const RUSSELL_IN_SAMPLE_NOTE =
  "Russell's (1980) 28 terms are the anchors the built-in zero-shot text path is fitted on and the targets of the classifier's label mapping, so scores on them are in-sample for the built-in text models; the NRC VAD words (by-source rows) and the held-out mode are the out-of-sample test.";

/** Computes every statistic for paired human/predicted points. */
export function computeMetrics(human: readonly VaPoint[], predicted: readonly VaPoint[]): ValidationMetrics {
  if (human.length !== predicted.length) throw new RangeError(`computeMetrics: ${human.length} human vs ${predicted.length} predicted points`);
  if (human.length < 2) throw new RangeError(`computeMetrics: needs at least 2 terms, got ${human.length}`);
  const hv = human.map((p) => p.valence);
  const ha = human.map((p) => p.arousal);
  const pv = predicted.map((p) => p.valence);
  const pa = predicted.map((p) => p.arousal);
  const hAng = human.map((p) => toRad(p.angleDeg));
  const pAng = predicted.map((p) => toRad(p.angleDeg));
  const n = human.length;
  return {
    n,
    valence: { pearson: pearson(hv, pv), spearman: spearman(hv, pv) },
    arousal: { pearson: pearson(ha, pa), spearman: spearman(ha, pa) },
    angle: {
      circularCorrelation: circularCorrelation(hAng, pAng),
      circularRankCorrelation: n >= 3 ? circularRankCorrelation(hAng, pAng) : null,
      meanAbsErrorDeg: meanAbsAngularErrorDeg(
        human.map((p) => p.angleDeg),
        predicted.map((p) => p.angleDeg),
      ),
    },
    ordering: n >= 3 ? orderingAgreement(hAng, pAng) : null,
  };
}

function checkOptions(o: ValidateOptions): void {
  if (!TERM_SETS.includes(o.terms)) throw new RangeError(`validate: terms must be one of ${TERM_SETS.join(', ')}, got "${String(o.terms)}"`);
  if (!o.template.includes('{term}')) throw new RangeError(`validate: template must contain {term}, got "${o.template}"`);
  if (!(o.holdout >= 0 && o.holdout <= 0.9)) throw new RangeError(`validate: holdout must be in [0, 0.9], got ${o.holdout}`);
  if (!Number.isInteger(o.seed)) throw new RangeError(`validate: seed must be an integer, got ${o.seed}`);
  if (!(Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 256)) {
    throw new RangeError(`validate: concurrency must be an integer in [1, 256], got ${o.concurrency}`);
  }
}

interface RawPrediction {
  readonly valence: number;
  readonly arousal: number;
  readonly confidence: number;
  readonly embedding: Float32Array | undefined;
}

/** Runs `infer` over the terms with at most `concurrency` calls in flight; keeps the term order. */
async function inferAll(model: TextAffectModel, texts: readonly string[], terms: readonly string[], concurrency: number): Promise<RawPrediction[]> {
  const out = new Array<RawPrediction>(texts.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < texts.length) {
      const i = next++;
      const term = terms[i] as string;
      let r;
      try {
        r = await model.infer(texts[i] as string);
      } catch (err) {
        throw new AffectError(
          'AFFECT_ERR_INFERENCE',
          `text model ${model.id} failed on the term "${term}": ${err instanceof Error ? err.message : String(err)}`,
          {
            cause: err,
            stage: 'validate',
            hint: 'check the model with `circumplex models verify`',
          },
        );
      }
      if (!Number.isFinite(r.valence) || !Number.isFinite(r.arousal)) {
        throw new AffectError(
          'AFFECT_ERR_INFERENCE',
          `text model ${model.id} returned a non-finite valence/arousal for the term "${term}" (${r.valence}, ${r.arousal})`,
          {
            stage: 'validate',
            hint: 'the model output is broken; re-pull it with `circumplex models pull`',
          },
        );
      }
      out[i] = { valence: r.valence, arousal: r.arousal, confidence: r.confidence, embedding: r.embedding };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, texts.length) }, () => worker()));
  return out;
}

function vaPoint(valence: number, arousal: number): VaPoint {
  return { valence, arousal, angleDeg: angleDegOf(valence, arousal) };
}

/** Runs the validation against a loaded text model. Does not close the model. */
export async function runValidation(model: TextAffectModel, opts: Partial<ValidateOptions> = {}): Promise<ValidationReport> {
  const o = { ...DEFAULT_VALIDATE, ...opts };
  checkOptions(o);
  const terms: RatedTerm[] = selectTerms(o.terms);
  const texts = terms.map((t) => o.template.split('{term}').join(t.term));
  const t0 = performance.now();
  const raw = await inferAll(
    model,
    texts,
    terms.map((t) => t.term),
    o.concurrency,
  );
  const inferMs = performance.now() - t0;

  const human = terms.map((t) => vaPoint(t.valence, t.arousal));
  const predicted = raw.map((r) => vaPoint(r.valence, r.arousal));
  const metrics = computeMetrics(human, predicted);
  const bySource: Partial<Record<TermSource, ValidationMetrics>> = {};
  const sources = [...new Set(terms.map((t) => t.source))];
  if (sources.length > 1) {
    for (const s of sources) {
      const idx = terms.flatMap((t, i) => (t.source === s ? [i] : []));
      if (idx.length >= 2)
        bySource[s] = computeMetrics(
          idx.map((i) => human[i] as VaPoint),
          idx.map((i) => predicted[i] as VaPoint),
        );
    }
  }

  const heldOut = runHeldOut(raw, human, predicted, o);
  const testSet = heldOut.section.status === 'ok' ? heldOut.testIdx : new Set<number>();
  const items: ValidationItem[] = terms.map((t, i) => {
    const r = raw[i] as RawPrediction;
    const p = predicted[i] as VaPoint;
    const ho = heldOut.predictions.get(i);
    return {
      term: t.term,
      source: t.source,
      human: human[i] as VaPoint,
      predicted: { ...p, confidence: r.confidence },
      ...(heldOut.section.status === 'ok' ? { split: testSet.has(i) ? ('test' as const) : ('train' as const) } : {}),
      ...(ho ? { heldOutPredicted: ho } : {}),
    };
  });

  return {
    kind: 'circumplex.validate',
    version: 1,
    createdAt: new Date().toISOString(),
    textModel: { id: model.id, provider: model.provider },
    template: o.template,
    termSet: o.terms,
    sources: sources.map((s) => ({ id: s, count: terms.filter((t) => t.source === s).length, citation: TERM_SOURCES[s] })),
    model: { metrics, bySource },
    heldOut: heldOut.section,
    items,
    timing: { inferMs: Math.round(inferMs) },
    notes: sources.includes('russell-1980') ? [RUSSELL_IN_SAMPLE_NOTE] : [],
  };
}

function runHeldOut(
  raw: readonly RawPrediction[],
  human: readonly VaPoint[],
  predicted: readonly VaPoint[],
  o: ValidateOptions,
): { section: HeldOutSection; testIdx: Set<number>; predictions: Map<number, VaPoint> } {
  const none = (reason: string) => ({ section: { status: 'skipped' as const, reason }, testIdx: new Set<number>(), predictions: new Map<number, VaPoint>() });
  if (o.holdout === 0) return none('held-out mode turned off (--holdout 0)');
  const missing = raw.findIndex((r) => !r.embedding || r.embedding.length === 0);
  if (missing >= 0)
    return none('the text model returns no sentence embedding, so there is nothing to fit a projection on (use an embedding model, e.g. text-embed-fixture)');
  const dim = (raw[0]?.embedding as Float32Array).length;
  if (raw.some((r) => (r.embedding as Float32Array).length !== dim)) return none('the text model returned embeddings of different sizes');
  const n = raw.length;
  const testCount = Math.round(n * o.holdout);
  const trainCount = n - testCount;
  if (testCount < 3 || trainCount < 5) {
    return none(
      `${n} terms with holdout ${o.holdout} leave ${trainCount} to fit and ${testCount} to score; need at least 5 and 3 (use --terms all, or a ${trainCount < 5 ? 'smaller' : 'larger'} --holdout)`,
    );
  }
  const perm = seededPermutation(n, o.seed);
  const testIdx = perm.slice(0, testCount);
  const trainIdx = perm.slice(testCount);
  const fit = fitRidgeCv(
    trainIdx.map((i) => (raw[i] as RawPrediction).embedding as Float32Array),
    trainIdx.map((i) => [(human[i] as VaPoint).valence, (human[i] as VaPoint).arousal] as const),
  );
  const predictions = new Map<number, VaPoint>();
  for (const i of testIdx) {
    const [v, a] = fit.model.predict((raw[i] as RawPrediction).embedding as Float32Array);
    predictions.set(i, vaPoint(v, a));
  }
  const testHuman = testIdx.map((i) => human[i] as VaPoint);
  return {
    section: {
      status: 'ok',
      testFraction: o.holdout,
      seed: o.seed,
      trainCount,
      testCount,
      embeddingDim: dim,
      lambda: fit.model.lambda,
      cvMse: fit.cvMse,
      metrics: computeMetrics(
        testHuman,
        testIdx.map((i) => predictions.get(i) as VaPoint),
      ),
      modelOnTest: computeMetrics(
        testHuman,
        testIdx.map((i) => predicted[i] as VaPoint),
      ),
    },
    testIdx: new Set(testIdx),
    predictions,
  };
}

/** Formats a number for the summary (`n/a` for undefined). */
function fmt(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined ? 'n/a' : v.toFixed(digits);
}

function metricRows(label: string, m: ValidationMetrics): string[] {
  return [
    `${label} (n=${m.n})`,
    `  valence   pearson ${fmt(m.valence.pearson)}   spearman ${fmt(m.valence.spearman)}`,
    `  arousal   pearson ${fmt(m.arousal.pearson)}   spearman ${fmt(m.arousal.spearman)}`,
    `  angle     circular r ${fmt(m.angle.circularCorrelation)}   circular rank ${fmt(m.angle.circularRankCorrelation)}   mean |error| ${fmt(m.angle.meanAbsErrorDeg, 1)} deg`,
    m.ordering
      ? `  ordering  adjacent pairs kept ${fmt(m.ordering.adjacentPairsPreserved)} (${m.ordering.adjacentPairs})   triplet concordance ${fmt(m.ordering.tripletConcordance)}`
      : '  ordering  n/a (fewer than 3 terms)',
  ];
}

/** A plain-text summary table of a report, for the terminal. */
export function formatValidationSummary(r: ValidationReport, files: readonly string[] = []): string {
  const lines = [
    `circumplex validate — text model ${r.textModel.id} (${r.textModel.provider}), terms: ${r.termSet}, template "${r.template}"`,
    ...r.sources.map((s) => `  ${s.id}: ${s.count} terms`),
    '',
    ...metricRows('model output vs human', r.model.metrics),
  ];
  for (const [src, m] of Object.entries(r.model.bySource)) lines.push(...metricRows(`  by source: ${src}`, m));
  lines.push('');
  if (r.heldOut.status === 'ok') {
    const h = r.heldOut;
    lines.push(
      `held-out (zero-shot): ridge on ${h.embeddingDim}-d embeddings, fit on ${h.trainCount} terms, scored on ${h.testCount} (seed ${h.seed}, lambda ${h.lambda})`,
      ...metricRows('  ridge projection on held-out terms', h.metrics),
      ...metricRows('  model output on the same terms', h.modelOnTest),
    );
  } else {
    lines.push(`held-out (zero-shot): skipped — ${r.heldOut.reason}`);
  }
  if (r.shippedModels && r.shippedModels.length > 0) lines.push('', ...formatShippedFigures(r.shippedModels));
  if (r.notes.length > 0) lines.push('', ...r.notes.map((n) => `note: ${n}`));
  if (files.length > 0) lines.push('', ...files.map((f) => `wrote ${f}`));
  return lines.join('\n') + '\n';
}

/**
 * `mkdir -p` one level at a time. fs.mkdir's recursive mode never settles for some paths in Node 20
 * (e.g. `--out /proc/x/y`: `validate` hung instead of failing), so it is not used.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let cur = path.resolve(dir); ;) {
    try {
      if (!(await stat(cur)).isDirectory()) throw Object.assign(new Error(`${cur} is not a folder`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(cur);
      const up = path.dirname(cur);
      if (up === cur) break;
      cur = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Creates the report folder and checks it is writable: an AffectError naming the folder otherwise.
 * `validate` calls it before loading the model, so a bad --out fails in milliseconds.
 */
export async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await makeDirs(outDir);
    await access(outDir, fsConstants.W_OK);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_CONFIG', `cannot write to the output folder ${outDir}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      hint: 'pass a writable folder with --out',
    });
  }
}

/** Writes `validate.json`, `validate.svg` and (held-out mode) `validate-heldout.svg` into `outDir`; returns the paths. */
export async function writeValidationReport(r: ValidationReport, outDir: string): Promise<string[]> {
  await prepareOutDir(outDir);
  const writeFile = async (file: string, text: string): Promise<void> => {
    try {
      await fsWriteFile(file, text);
    } catch (err) {
      throw new AffectError('AFFECT_ERR_CONFIG', `cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        hint: 'pass a writable folder with --out',
      });
    }
  };
  const jsonPath = path.join(outDir, 'validate.json');
  const svgPath = path.join(outDir, 'validate.svg');
  const files = [jsonPath, svgPath];
  await writeFile(jsonPath, JSON.stringify(r, null, 2) + '\n');
  const m = r.model.metrics;
  const points: PlotPoint[] = r.items.map((it) => ({ term: it.term, human: it.human, predicted: it.predicted }));
  await writeFile(
    svgPath,
    circumplexSvg(points, {
      title: `${r.textModel.id}: model output vs human positions (${r.termSet}, n=${m.n})`,
      subtitle: [
        `valence r=${fmt(m.valence.pearson, 2)} rho=${fmt(m.valence.spearman, 2)}; arousal r=${fmt(m.arousal.pearson, 2)} rho=${fmt(m.arousal.spearman, 2)}`,
        `circular r=${fmt(m.angle.circularCorrelation, 2)}, circular rank=${fmt(m.angle.circularRankCorrelation, 2)}, adjacent order kept=${fmt(m.ordering?.adjacentPairsPreserved, 2)}`,
      ],
      labels: points.length <= 250,
    }),
  );
  if (r.heldOut.status === 'ok') {
    const hoPath = path.join(outDir, 'validate-heldout.svg');
    const h = r.heldOut.metrics;
    const hoPoints: PlotPoint[] = r.items.flatMap((it) => (it.heldOutPredicted ? [{ term: it.term, human: it.human, predicted: it.heldOutPredicted }] : []));
    await writeFile(
      hoPath,
      circumplexSvg(hoPoints, {
        title: `${r.textModel.id}: held-out ridge projection vs human positions (n=${h.n})`,
        subtitle: [
          `valence r=${fmt(h.valence.pearson, 2)}; arousal r=${fmt(h.arousal.pearson, 2)}; circular r=${fmt(h.angle.circularCorrelation, 2)}, circular rank=${fmt(h.angle.circularRankCorrelation, 2)}`,
        ],
      }),
    );
    files.push(hoPath);
  }
  return files;
}
