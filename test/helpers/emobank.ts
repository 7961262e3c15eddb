/**
 * EmoBank (../shared/data/emobank/emobank.csv) for the text-emobank tests: rows of one split with
 * V, A, D mapped from 1..5 to [-1, 1] by (x - 3) / 2, exactly as training/text/data.py does.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../core/config.js';

/** One rated sentence. */
export interface EmoBankRow {
  readonly id: string;
  readonly text: string;
  readonly valence: number;
  readonly arousal: number;
  readonly dominance: number;
}

/** The EmoBank CSV; throws (the test fails, never skips) when the shared data is not there. */
export function emobankCsv(): string {
  const root = process.env.CIRCUMPLEX_DATA_DIR ? path.resolve(process.env.CIRCUMPLEX_DATA_DIR) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
  const file = path.join(root, 'emobank', 'emobank.csv');
  if (!existsSync(file)) {
    throw new Error(`text test data missing: ${file} not found (the shared data belongs at ../shared/data next to the repo, or set CIRCUMPLEX_DATA_DIR)`);
  }
  return file;
}

/** RFC 4180 records (quoted fields with "" escapes and newlines inside quotes). */
function records(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      out.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    out.push(row);
  }
  return out;
}

/** The rows of one split (`train` or `dev`), in file order. */
export function emobankSplit(split: 'train' | 'dev'): EmoBankRow[] {
  const [head = [], ...rows] = records(readFileSync(emobankCsv(), 'utf8'));
  const col = (name: string): number => {
    const i = head.indexOf(name);
    if (i < 0) throw new Error(`emobank.csv has no ${name} column`);
    return i;
  };
  const [id, sp, v, a, d, t] = ['id', 'split', 'V', 'A', 'D', 'text'].map(col) as [number, number, number, number, number, number];
  const to = (x: string | undefined): number => (Number(x) - 3) / 2;
  return rows.filter((r) => r[sp] === split).map((r) => ({ id: r[id] ?? '', text: r[t] ?? '', valence: to(r[v]), arousal: to(r[a]), dominance: to(r[d]) }));
}

/** Pearson correlation. */
export function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (x[i] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}
