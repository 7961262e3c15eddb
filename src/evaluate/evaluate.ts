/**
 * `circumplex evaluate`: scores a speech or text affect model against labelled data a user brings.
 *
 * - speech: CSV `file,valence,arousal[,dominance]`, paths relative to the CSV, WAV or FLAC. One
 *   prediction per file: the file runs through the runtime's own windowing (`windowBySamples`) and
 *   the model, with no fusion and no smoothing, and the prediction is the mean over its voiced
 *   windows (see {@link VOICING}).
 * - text: CSV `text,valence,arousal[,dominance]`, one prediction per sentence.
 *
 * Ratings are mapped from `--scale lo,hi` to [-1, 1]. Every row is checked before any model loads
 * (numbers, scale, files), and any failure later (a file that does not decode) is an error naming
 * the row: a report is printed only when every row was scored. Metrics are those of
 * training/common/metrics.py (src/validate/stats.ts), on the [-1, 1] scale.
 */
import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sameFile } from '../../core/files.js';
import { lastValueFrom, reduce, tap } from 'rxjs';
import type { SpeechAffectModel, SpeechAffectOutput, TextAffectModel, TextAffectOutput } from '../../models/ports.js';
import { FlowControl, MAX_FLOW_CHUNK_MS } from '../../streams/flow.js';
import { inferSpeech } from '../../streams/operators/infer-speech.js';
import { DEFAULT_WINDOW, windowBySamples } from '../../streams/operators/window-by-samples.js';
import { audioFileSource, probeAudioFile } from '../../streams/sources/audio-file.js';
import { AffectError } from '../../core/errors.js';
import { agreementSummary, type AgreementSummary } from '../validate/stats.js';
import { CsvSyntaxError, parseCsv } from './csv.js';

/** Which model `evaluate` scores. */
export type EvalModality = 'speech' | 'text';
/** The affect dimensions a row can rate. */
export type Dimension = 'valence' | 'arousal' | 'dominance';
export const DIMENSIONS: readonly Dimension[] = ['valence', 'arousal', 'dominance'];

/** The rating scale of a CSV: `lo` maps to -1 and `hi` to +1. */
export interface RatingScale {
  readonly lo: number;
  readonly hi: number;
}

/** Ratings already in [-1, 1]. */
export const DEFAULT_SCALE: RatingScale = { lo: -1, hi: 1 };

/** Most problems listed in one error before the rest are counted. */
const MAX_REPORTED = 8;

/**
 * How a speech file's windows are chosen for its mean. Models that report a voiced fraction
 * (`SpeechAffectOutput.voiced`, e.g. `speech-va`) use it: windows at or above `minVoiced` (the
 * training recipe's `minVoicedFraction`, read from the model card when it has one). Models without
 * it use an energy rule: windows whose RMS level is at least `energyFloorDbfs` and within
 * `energyBelowPeakDb` of the file's loudest window. A file with no such window uses all its windows.
 */
export const VOICING = { minVoiced: 0.15, energyFloorDbfs: -55, energyBelowPeakDb: 25 } as const;

/** One labelled row, its targets mapped to [-1, 1]. */
export interface LabelledRow {
  /** Line of the CSV where the row starts (1 = header). */
  readonly line: number;
  /** The row's key: the file as written in the CSV, or the sentence. */
  readonly key: string;
  /** Speech: the file resolved against the CSV's folder. */
  readonly path?: string;
  readonly target: Partial<Record<Dimension, number>> & { valence: number; arousal: number };
}

/** A model's prediction for one row (in [-1, 1] units). */
export interface RowPrediction {
  readonly valence: number;
  readonly arousal: number;
  readonly dominance?: number;
  /** The model's own σ per dimension, when it reports one (speech: the mean over the windows used). */
  readonly sigma?: Partial<Record<Dimension, number>>;
  /** Speech: windows the file made, and how many of them counted as voiced. */
  readonly windows?: number;
  readonly voicedWindows?: number;
}

/** The figures `evaluate` prints. */
export interface EvaluationReport {
  readonly modality: EvalModality;
  readonly model: string;
  /** The CSV as given on the command line. */
  readonly data: string;
  /** Rows scored (every row of the CSV). */
  readonly rows: number;
  readonly scale: readonly [number, number];
  /** Per dimension: n, Pearson r, CCC, RMSE, MAE (and coverage1sigma when the model reports σ). */
  readonly dimensions: Partial<Record<Dimension, AgreementSummary>>;
  /** Speech: the windowing and the voiced-window rule used for each file's mean. */
  readonly speech?: { readonly windowMs: number; readonly hopMs: number; readonly voicing: string };
  /** Where --predictions wrote each row's prediction, or null. */
  readonly predictions: string | null;
  /** Things a reader must know (a dimension not scored, and why). */
  readonly notes: readonly string[];
}

/** Parses `--scale lo,hi` (two finite numbers, lo < hi); throws a RangeError saying what is wrong. */
export function parseScale(s: string): RatingScale {
  const parts = s.split(',').map((p) => p.trim());
  const nums = parts.map(Number);
  if (parts.length !== 2 || parts.some((p) => p === '') || !nums.every(Number.isFinite)) {
    throw new RangeError(`--scale must be two numbers "lo,hi" such as 1,5, got "${s}"`);
  }
  const [lo, hi] = nums as [number, number];
  if (!(lo < hi)) throw new RangeError(`--scale must have lo < hi (lo maps to -1, hi to +1), got "${s}"`);
  return { lo, hi };
}

/** Maps a rating on the scale to [-1, 1]. */
export function toUnitScale(x: number, scale: RatingScale): number {
  return (2 * (x - scale.lo)) / (scale.hi - scale.lo) - 1;
}

/** Collects row problems and throws them as one AffectError naming the file and each line. */
class Problems {
  private readonly list: string[] = [];
  private count = 0;
  constructor(private readonly file: string) {}
  add(line: number, what: string): void {
    this.count++;
    if (this.list.length < MAX_REPORTED) this.list.push(`${this.file}:${line}: ${what}`);
  }
  get size(): number {
    return this.count;
  }
  throwIfAny(hint: string): void {
    if (this.count === 0) return;
    const more = this.count > this.list.length ? `\n  … and ${this.count - this.list.length} more` : '';
    throw new AffectError('AFFECT_ERR_INPUT', `bad labelled data: ${this.count} problem${this.count === 1 ? '' : 's'}\n  ${this.list.join('\n  ')}${more}`, {
      stage: 'evaluate',
      hint,
    });
  }
}

/** The columns each modality's CSV needs (dominance is optional). */
export const KEY_COLUMN: Record<EvalModality, 'file' | 'text'> = { speech: 'file', text: 'text' };

/**
 * Reads and checks a labelled CSV: header with the key column (`file` or `text`), `valence`,
 * `arousal` and optionally `dominance` (other columns are ignored); every rating a number inside
 * the scale; speech files relative to the CSV's folder. Throws one AffectError listing the bad rows.
 */
export function readLabelledCsv(csvFile: string, modality: EvalModality, scale: RatingScale): LabelledRow[] {
  let text: string;
  try {
    text = readFileSync(csvFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AffectError(
      'AFFECT_ERR_INPUT',
      `cannot read labelled data ${csvFile}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`,
      {
        stage: 'evaluate',
        cause: err,
        hint: `give a CSV with a header ${expectedHeader(modality)} (--data FILE)`,
      },
    );
  }
  // A binary file (audio given as --data) is one clear error, not a CSV syntax error quoting its bytes.
  if (text.includes('\u0000')) {
    throw new AffectError('AFFECT_ERR_INPUT', `${csvFile} is a binary file, not a CSV`, {
      stage: 'evaluate',
      hint: `give a CSV with a header ${expectedHeader(modality)} (--data FILE)`,
    });
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvSyntaxError) {
      // file:line: what, as every other row error (it read "file.csv:line 2: …").
      throw new AffectError('AFFECT_ERR_INPUT', `${csvFile}:${err.line}: ${err.what}`, {
        stage: 'evaluate',
        hint: 'quote fields that hold commas, quotes or line breaks ("like ""this"", say"), RFC 4180',
      });
    }
    throw err;
  }
  const header = records.shift();
  const keyCol = KEY_COLUMN[modality];
  const names = (header?.fields ?? []).map((f) => f.trim().toLowerCase());
  const col = (n: string): number => names.indexOf(n);
  const missing = [keyCol, 'valence', 'arousal'].filter((n) => col(n) < 0);
  if (!header || missing.length > 0) {
    throw new AffectError(
      'AFFECT_ERR_INPUT',
      `${csvFile}:1: the header must name the columns ${expectedHeader(modality)}; ${header ? `missing ${missing.join(', ')} (found: ${names.join(',') || 'nothing'})` : 'the file is empty'}`,
      {
        stage: 'evaluate',
        hint: `first line: ${expectedHeader(modality)} (then one row per ${modality === 'speech' ? 'audio file' : 'sentence'})`,
      },
    );
  }
  const dupes = names.filter((n, i) => n !== '' && names.indexOf(n) !== i);
  if (dupes.length > 0)
    throw new AffectError('AFFECT_ERR_INPUT', `${csvFile}:1: column ${dupes[0]} appears twice in the header`, {
      stage: 'evaluate',
      hint: 'name each column once',
    });
  const dims: Dimension[] = col('dominance') >= 0 ? ['valence', 'arousal', 'dominance'] : ['valence', 'arousal'];
  const problems = new Problems(csvFile);
  const rows: LabelledRow[] = [];
  const outOfScale: number[] = [];
  const base = path.dirname(path.resolve(csvFile));
  for (const r of records) {
    if (r.fields.length !== names.length) {
      problems.add(r.line, `${r.fields.length} field${r.fields.length === 1 ? '' : 's'}, the header has ${names.length} (quote a field that holds a comma)`);
      continue;
    }
    const key = r.fields[col(keyCol)] ?? '';
    if (key.trim() === '') {
      problems.add(r.line, modality === 'speech' ? 'the file column is empty' : 'the text is empty');
      continue;
    }
    const target: Partial<Record<Dimension, number>> = {};
    let ok = true;
    for (const d of dims) {
      const raw = (r.fields[col(d)] ?? '').trim();
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) {
        problems.add(r.line, `${d} ${raw === '' ? 'is empty' : `"${raw}" is not a number`}`);
        ok = false;
        continue;
      }
      if (v < scale.lo || v > scale.hi) {
        problems.add(r.line, `${d} ${raw} is outside the scale [${scale.lo}, ${scale.hi}]`);
        outOfScale.push(v);
        ok = false;
        continue;
      }
      target[d] = toUnitScale(v, scale);
    }
    if (!ok) continue;
    const row: LabelledRow = {
      line: r.line,
      key,
      target: target as LabelledRow['target'],
      ...(modality === 'speech' ? { path: path.resolve(base, key) } : {}),
    };
    rows.push(row);
  }
  const scaleHint =
    outOfScale.length > 0
      ? `ratings must lie on --scale ${scale.lo},${scale.hi} (given or default -1,1); the out-of-scale values range ${Math.min(...outOfScale)}..${Math.max(...outOfScale)}: pass the scale the ratings were made on, e.g. --scale 1,5, or fix those rows`
      : `each row: ${expectedHeader(modality)} with numbers on --scale ${scale.lo},${scale.hi}; fix or delete the rows named above`;
  problems.throwIfAny(scaleHint);
  if (rows.length < 2) {
    throw new AffectError('AFFECT_ERR_INPUT', `${csvFile}: ${rows.length} labelled row${rows.length === 1 ? '' : 's'}; the agreement figures need at least 2`, {
      stage: 'evaluate',
      hint: 'add rows (a few dozen at least for figures that mean something)',
    });
  }
  return rows;
}

function expectedHeader(modality: EvalModality): string {
  return `${KEY_COLUMN[modality]},valence,arousal[,dominance]`;
}

/**
 * Checks that every row's audio file exists, is WAV or FLAC and holds enough audio for one analysis
 * window of `windowMs` (or the windowing's shortest clip, 100 ms, when that is less; header only: a
 * FLAC that does not state its length passes), naming each bad row.
 */
export async function checkSpeechFiles(csvFile: string, rows: readonly LabelledRow[], windowMs: number = DEFAULT_WINDOW.windowMs): Promise<void> {
  const problems = new Problems(csvFile);
  const minMs = Math.min(windowMs, DEFAULT_WINDOW.minTailMs);
  for (const r of rows) {
    try {
      const info = await probeAudioFile(r.path ?? r.key);
      if ((info.kind === 'wav' || info.frames > 0) && info.durationMs < minMs) {
        problems.add(r.line, `file ${r.key}: too short for one analysis window (${info.durationMs.toFixed(0)} ms of audio, under ${minMs} ms)`);
      }
    } catch (err) {
      const e = err instanceof AffectError ? err : undefined;
      const what = e ? `${e.code}: ${e.message}` : String(err);
      // The row's own spelling of the file leads; drop the resolved path when the message starts with it.
      const lead = `${e?.code ?? ''}: ${r.path ?? ''}: `;
      problems.add(r.line, `file ${r.key}: ${what.startsWith(lead) ? `${e?.code ?? ''}: ${what.slice(lead.length)}` : what}`);
    }
  }
  problems.throwIfAny(
    `file paths are relative to the CSV's folder; each must be a readable WAV or FLAC file (convert others with sox) long enough for one analysis window (${minMs} ms)`,
  );
}

/** Options for {@link predictSpeechFile}. */
export interface SpeechFileOptions {
  /** Analysis window and hop, ms of audio (the runtime's defaults: 1000 and 250). */
  windowMs: number;
  hopMs: number;
  /** Voiced-fraction threshold for models that report `voiced`. Default {@link VOICING}.minVoiced. */
  minVoiced: number;
}

export const DEFAULT_SPEECH_FILE: SpeechFileOptions = { windowMs: 1000, hopMs: 250, minVoiced: VOICING.minVoiced };

/** What one window contributed: the model's output (numbers only) and the window's RMS level. */
interface WindowResult {
  readonly out: Pick<SpeechAffectOutput, 'valence' | 'arousal' | 'dominance' | 'sigma' | 'voiced'>;
  readonly rmsDbfs: number;
}

function rmsDbfs(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] as number) ** 2;
  const rms = Math.sqrt(s / Math.max(1, x.length));
  return rms > 0 ? 20 * Math.log10(rms) : -Infinity;
}

/** Which windows of a file are voiced, by the rule in {@link VOICING}. */
export function voicedWindows(results: ReadonlyArray<{ readonly voiced?: number | undefined; readonly rmsDbfs: number }>, minVoiced: number): boolean[] {
  if (results.length > 0 && results.every((r) => r.voiced !== undefined)) return results.map((r) => (r.voiced as number) >= minVoiced);
  const peak = Math.max(...results.map((r) => r.rmsDbfs));
  return results.map((r) => r.rmsDbfs >= VOICING.energyFloorDbfs && r.rmsDbfs >= peak - VOICING.energyBelowPeakDb);
}

/**
 * One file's prediction: the file through the runtime's windowing and the speech model (lossless:
 * the source waits for the model), then the mean over its voiced windows (all windows when none is
 * voiced). A window the model failed on, or a file that makes no window, is an error.
 */
export async function predictSpeechFile(model: SpeechAffectModel, file: string, opts: Partial<SpeechFileOptions> = {}): Promise<RowPrediction> {
  const o = { ...DEFAULT_SPEECH_FILE, ...opts };
  const flow = new FlowControl({ highWater: 4 });
  const levels = new Map<number, number>();
  let dropped = 0;
  try {
    const results = await lastValueFrom(
      audioFileSource(file, { streamId: 'evaluate', flow }).pipe(
        windowBySamples({ windowMs: o.windowMs, hopMs: o.hopMs }),
        tap((w) => levels.set(w.index, rmsDbfs(w.samples))),
        // Queue sized as the pipeline sizes it for offline runs, so nothing is ever dropped.
        inferSpeech(model, {
          whenBusy: 'queue',
          maxInFlight: 4,
          flow,
          maxQueue: flow.highWater + Math.ceil(MAX_FLOW_CHUNK_MS / o.hopMs) + 16,
          onDrop: () => dropped++,
        }),
        reduce<{ windowIndex: number; speech: SpeechAffectOutput }, WindowResult[]>((acc, e) => {
          const s = e.speech;
          acc.push({
            out: {
              valence: s.valence,
              arousal: s.arousal,
              ...(s.dominance !== undefined ? { dominance: s.dominance } : {}),
              ...(s.sigma ? { sigma: s.sigma } : {}),
              ...(s.voiced !== undefined ? { voiced: s.voiced } : {}),
            },
            rmsDbfs: levels.get(e.windowIndex) ?? -Infinity,
          });
          levels.delete(e.windowIndex);
          return acc;
        }, []),
      ),
    );
    if (dropped > 0)
      throw new AffectError('AFFECT_ERR_INFERENCE', `${file}: the model failed on ${dropped} window${dropped === 1 ? '' : 's'}`, {
        stage: 'evaluate',
        hint: 'run with CIRCUMPLEX_LOG_LEVEL=debug to see why',
      });
    if (results.length === 0)
      throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${file}: too short for one analysis window (under 100 ms of audio)`, {
        stage: 'evaluate',
        hint: 'drop the row or use a longer clip',
      });
    const voiced = voicedWindows(
      results.map((r) => ({ voiced: r.out.voiced, rmsDbfs: r.rmsDbfs })),
      o.minVoiced,
    );
    const nVoiced = voiced.filter(Boolean).length;
    const use = nVoiced > 0 ? results.filter((_, i) => voiced[i]) : results;
    const avg = (f: (r: WindowResult) => number | undefined): number | undefined => {
      const xs = use.map(f);
      return xs.every((x) => x !== undefined && Number.isFinite(x)) ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length : undefined;
    };
    const dominance = avg((r) => r.out.dominance);
    const sigma: Partial<Record<Dimension, number>> = {};
    for (const d of DIMENSIONS) {
      const s = avg((r) => r.out.sigma?.[d]);
      if (s !== undefined) sigma[d] = s;
    }
    return {
      valence: avg((r) => r.out.valence) ?? Number.NaN,
      arousal: avg((r) => r.out.arousal) ?? Number.NaN,
      ...(dominance !== undefined ? { dominance } : {}),
      ...(Object.keys(sigma).length > 0 ? { sigma } : {}),
      windows: results.length,
      voicedWindows: nVoiced,
    };
  } finally {
    flow.close();
  }
}

/** Runs `fn` over the items with at most `limit` in flight; results in input order; the first error wins. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.err;
  return out;
}

/** Wraps a failure on one row into an AffectError naming the CSV line (keeps the code and cause). */
function rowError(csvFile: string, row: LabelledRow, err: unknown): AffectError {
  const e = err instanceof AffectError ? err : undefined;
  const what = e ? e.message : err instanceof Error ? err.message : String(err);
  const lead = row.path ? `${row.path}: ` : undefined;
  const rest = lead && what.startsWith(lead) ? what.slice(lead.length) : what;
  return new AffectError(e?.code ?? 'AFFECT_ERR_INTERNAL', `${csvFile}:${row.line}: ${row.path ? `file ${row.key}: ` : ''}${rest}`, {
    stage: 'evaluate',
    cause: err,
    hint: `${e?.hint ? `${e.hint}; ` : ''}nothing was reported: fix or delete this row and run evaluate again`,
  });
}

/** Predicts every speech row (a few files at once, so the model batches across them). */
export async function predictSpeechRows(
  model: SpeechAffectModel,
  csvFile: string,
  rows: readonly LabelledRow[],
  opts: Partial<SpeechFileOptions> = {},
): Promise<RowPrediction[]> {
  return mapLimit(rows, 4, async (row) => {
    try {
      const p = await predictSpeechFile(model, row.path ?? row.key, opts);
      if (!Number.isFinite(p.valence) || !Number.isFinite(p.arousal))
        throw new AffectError('AFFECT_ERR_INFERENCE', 'the model returned a non-finite value', { stage: 'evaluate' });
      return p;
    } catch (err) {
      throw rowError(csvFile, row, err);
    }
  });
}

/** Predicts every text row. */
export async function predictTextRows(model: TextAffectModel, csvFile: string, rows: readonly LabelledRow[]): Promise<RowPrediction[]> {
  return mapLimit(rows, 16, async (row) => {
    let out: TextAffectOutput;
    try {
      out = await model.infer(row.key);
      if (!Number.isFinite(out.valence) || !Number.isFinite(out.arousal))
        throw new AffectError('AFFECT_ERR_INFERENCE', 'the model returned a non-finite value', { stage: 'evaluate' });
    } catch (err) {
      throw rowError(csvFile, row, err);
    }
    const sigma: Partial<Record<Dimension, number>> = {};
    for (const d of DIMENSIONS) {
      const s = out.sigma?.[d];
      if (s !== undefined && Number.isFinite(s)) sigma[d] = s;
    }
    return {
      valence: out.valence,
      arousal: out.arousal,
      ...(out.dominance !== undefined && Number.isFinite(out.dominance) ? { dominance: out.dominance } : {}),
      ...(Object.keys(sigma).length > 0 ? { sigma } : {}),
    };
  });
}

/**
 * The figures: per dimension rated in the CSV and predicted by the model for every row, n, Pearson
 * r, CCC, RMSE, MAE, and coverage of ±1σ when the model reported σ for every row.
 */
export function scoreRows(rows: readonly LabelledRow[], preds: readonly RowPrediction[]): { dimensions: EvaluationReport['dimensions']; notes: string[] } {
  if (rows.length !== preds.length) throw new RangeError(`scoreRows: ${rows.length} rows but ${preds.length} predictions`);
  const dimensions: Partial<Record<Dimension, AgreementSummary>> = {};
  const notes: string[] = [];
  for (const d of DIMENSIONS) {
    const rated = rows.every((r) => r.target[d] !== undefined);
    if (!rated) continue;
    const predicted = preds.every((p) => p[d] !== undefined && Number.isFinite(p[d]));
    if (!predicted) {
      notes.push(`${d}: rated in the data but the model does not predict it, so it is not scored`);
      continue;
    }
    const truth = rows.map((r) => r.target[d] as number);
    const pred = preds.map((p) => p[d] as number);
    const sig = preds.every((p) => p.sigma?.[d] !== undefined) ? preds.map((p) => p.sigma?.[d] as number) : undefined;
    dimensions[d] = agreementSummary(truth, pred, sig);
  }
  return { dimensions, notes };
}

/** Quotes a CSV field when it needs it (RFC 4180). */
export function csvField(v: string | number | undefined): string {
  if (v === undefined) return '';
  const s = typeof v === 'number' ? String(v) : v;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The --predictions CSV: one line per row with its CSV line, its key (`file` or `text`), the
 * targets and the predictions on [-1, 1] (σ columns when the model reports σ; speech also windows
 * and voiced windows), so anyone can recompute the figures.
 */
export function predictionsCsv(modality: EvalModality, rows: readonly LabelledRow[], preds: readonly RowPrediction[]): string {
  const dims = DIMENSIONS.filter((d) => preds.some((p) => p[d] !== undefined) || rows.some((r) => r.target[d] !== undefined));
  const sigmaDims = DIMENSIONS.filter((d) => preds.some((p) => p.sigma?.[d] !== undefined));
  const head = ['line', KEY_COLUMN[modality], ...dims.map((d) => `target_${d}`), ...dims.map((d) => `pred_${d}`), ...sigmaDims.map((d) => `sigma_${d}`)];
  if (modality === 'speech') head.push('windows', 'voiced_windows');
  const lines = [head.join(',')];
  rows.forEach((r, i) => {
    const p = preds[i] as RowPrediction;
    const cells: Array<string | number | undefined> = [
      r.line,
      r.key,
      ...dims.map((d) => r.target[d]),
      ...dims.map((d) => p[d]),
      ...sigmaDims.map((d) => p.sigma?.[d]),
    ];
    if (modality === 'speech') cells.push(p.windows, p.voicedWindows);
    lines.push(cells.map(csvField).join(','));
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Checks the --predictions path before any model loads: its folder exists and is writable, it is
 * not a folder, and it is none of the run's inputs (`inputs`: the --data CSV and the rows' audio
 * files), which it would replace (the labelled data used to be overwritten with the predictions).
 */
export function checkWritable(file: string, inputs: readonly string[] = []): void {
  const fail = (what: string, err?: unknown, hint = 'give a path in an existing, writable folder'): never => {
    throw new AffectError('AFFECT_ERR_INPUT', `cannot write --predictions ${file}: ${what}`, { stage: 'evaluate', ...(err ? { cause: err } : {}), hint });
  };
  const dir = path.dirname(path.resolve(file));
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    fail(`folder ${dir} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not writable'}`, err);
  }
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory()) fail('it is a folder', undefined, 'give a file name for the predictions CSV, e.g. --predictions predictions.csv');
  for (const input of inputs) {
    if (sameFile(input, file)) {
      fail(
        `it is ${input}, an input of this run, which the predictions would replace`,
        undefined,
        'give the predictions a new file, e.g. --predictions predictions.csv',
      );
    }
  }
}

/** Writes a file whole or not at all (temp file + rename), so a failed run never leaves a partial one. */
export function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    // No temp file left behind (a folder named --predictions used to leave `FILE.tmp-PID` beside it).
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Nothing more to clean up.
    }
    throw new AffectError('AFFECT_ERR_INPUT', `cannot write --predictions ${file}: ${(err as Error).message}`, {
      stage: 'evaluate',
      cause: err,
      hint: 'give a path in an existing, writable folder',
    });
  }
}

const fmt = (v: number | null | undefined, digits = 3): string => (v === undefined ? '–' : v === null ? 'undef' : v.toFixed(digits));

/** The report as a terminal table. */
export function formatReport(r: EvaluationReport): string {
  const what = r.modality === 'speech' ? 'files' : 'sentences';
  const out = [`${r.model} on ${r.data}: ${r.rows} ${what}, ratings ${r.scale[0]}..${r.scale[1]} mapped to [-1, 1]`];
  if (r.speech) out.push(`per file: mean of its voiced ${r.speech.windowMs} ms windows (hop ${r.speech.hopMs} ms), no smoothing; voiced: ${r.speech.voicing}`);
  const hasCov = Object.values(r.dimensions).some((d) => d?.coverage1sigma !== undefined);
  const head = ['dimension', 'n', 'pearson r', 'CCC', 'RMSE', 'MAE', ...(hasCov ? ['cover ±1σ'] : [])];
  const rows = DIMENSIONS.flatMap((d) => {
    const m = r.dimensions[d];
    if (!m) return [];
    return [[d, String(m.n), fmt(m.pearson), fmt(m.ccc), fmt(m.rmse), fmt(m.mae), ...(hasCov ? [fmt(m.coverage1sigma)] : [])]];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  out.push('', line(head), ...rows.map(line));
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.predictions) out.push(`predictions: ${r.predictions}`);
  return `${out.join('\n')}\n`;
}
