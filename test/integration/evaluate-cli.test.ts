/**
 * `circumplex evaluate` as a user runs it (the real CLI, real ONNX speech fixture and text
 * fixture in worker threads) on small CSVs made here: WAV and FLAC clips cut from the shipped WAV
 * with sox plus a RAVDESS clip (../shared/data), and sentences with commas and quotes. Checks the
 * JSON shape, the table, --predictions (the figures recompute from it), and that bad rows (a
 * missing file, a non-numeric rating, a damaged FLAC, ratings on another scale, a value outside
 * the scale) fail with exit 2 naming the row and leave no report and no predictions file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import { parseCsv } from '../../src/evaluate/csv.js';
import { agreementSummary } from '../../src/validate/stats.js';
import { writeWav } from '../helpers/vad-audio.js';

const SPEECH = path.join(REPO_ROOT, 'test/fixtures/audio/speech.wav');
const dir = mkdtempSync(path.join(tmpdir(), 'evaluate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };

function evaluate(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/circumplex.mjs'), 'evaluate', ...args], {
    env,
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function ravdess(name: string): string {
  const root = process.env['CIRCUMPLEX_DATA_DIR'] ? path.resolve(process.env['CIRCUMPLEX_DATA_DIR']) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
  const f = path.join(root, 'ravdess', 'flac', name);
  if (!existsSync(f)) throw new Error(`test data missing: ${f} (the shared data belongs at ../shared/data next to the repo, or set CIRCUMPLEX_DATA_DIR)`);
  return f;
}

const write = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

interface Report {
  modality: string;
  model: string;
  rows: number;
  scale: [number, number];
  dimensions: Record<string, { n: number; pearson: number | null; ccc: number; rmse: number; mae: number; coverage1sigma?: number }>;
  speech?: { windowMs: number; hopMs: number; voicing: string };
  predictions: string | null;
  notes: string[];
}

beforeAll(() => {
  // The shipped WAV is calm, then excited, then sad speech (README): three clips, one also as FLAC.
  mkdirSync(path.join(dir, 'clips'));
  execFileSync('sox', ['-R', '-q', SPEECH, path.join(dir, 'clips/calm.wav'), 'trim', '0', '6']);
  execFileSync('sox', ['-R', '-q', SPEECH, path.join(dir, 'clips/calm.flac'), 'trim', '0', '6']);
  execFileSync('sox', ['-R', '-q', SPEECH, path.join(dir, 'clips/excited.flac'), 'trim', '6', '6']);
  execFileSync('sox', ['-R', '-q', SPEECH, path.join(dir, 'clips/sad.wav'), 'trim', '12']);
  const full = readFileSync(path.join(dir, 'clips/excited.flac'));
  writeFileSync(path.join(dir, 'clips/cut.flac'), full.subarray(0, Math.floor(full.length / 2)));
});

const rav = () => ravdess('03-01-05-02-01-01-01.flac'); // actor 01, angry, strong

describe('evaluate --modality speech', () => {
  it('prints one JSON object with n, Pearson r, CCC, RMSE, MAE per dimension; --predictions recomputes it', () => {
    const csv = write(
      'labels.csv',
      `file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/calm.flac,0.3,-0.5\nclips/excited.flac,0.6,0.7\nclips/sad.wav,-0.7,-0.4\n${rav()},-0.127,0.79\n`,
    );
    const out = path.join(dir, 'pred.csv');
    const r = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', csv, '--json', '--predictions', out]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep).toMatchObject({ modality: 'speech', model: 'speech-fixture', rows: 5, scale: [-1, 1], predictions: out });
    expect(Object.keys(rep.dimensions)).toEqual(['valence', 'arousal']);
    for (const d of ['valence', 'arousal']) {
      const m = rep.dimensions[d];
      expect(m?.n).toBe(5);
      for (const k of ['ccc', 'rmse', 'mae'] as const) expect(Number.isFinite(m?.[k])).toBe(true);
      expect(m?.coverage1sigma).toBeUndefined(); // the fixture reports no sigma
    }
    expect(rep.speech).toMatchObject({ windowMs: 1000, hopMs: 250 });
    expect(rep.speech?.voicing).toMatch(/RMS level >= -55 dBFS/);
    expect(rep.notes).toEqual([]);
    // The fixture's arousal follows the three parts of the WAV (README: calm low, excited high).
    const p = parseCsv(readFileSync(out, 'utf8'));
    const head = p[0]?.fields ?? [];
    const col = (name: string) => p.slice(1).map((row) => row.fields[head.indexOf(name)] ?? '');
    expect(col('file')).toEqual(['clips/calm.wav', 'clips/calm.flac', 'clips/excited.flac', 'clips/sad.wav', rav()]);
    expect(col('line')).toEqual(['2', '3', '4', '5', '6']);
    const arousal = col('pred_arousal').map(Number);
    expect(arousal[2]).toBeGreaterThan((arousal[0] as number) + 0.5);
    // The same audio as WAV and as FLAC gives the same prediction.
    // (to float noise: the model batches windows of several files, and batch sums differ in the last bits)
    expect(Number(col('pred_valence')[0])).toBeCloseTo(Number(col('pred_valence')[1]), 6);
    expect(Number(col('pred_arousal')[0])).toBeCloseTo(Number(col('pred_arousal')[1]), 6);
    expect(
      col('windows')
        .map(Number)
        .every((n) => n > 0),
    ).toBe(true);
    // Anyone can recompute the figures from the predictions file.
    const re = agreementSummary(col('target_arousal').map(Number), arousal);
    expect(re.ccc).toBeCloseTo(rep.dimensions['arousal']?.ccc ?? NaN, 12);
    expect(re.mae).toBeCloseTo(rep.dimensions['arousal']?.mae ?? NaN, 12);
  });

  it('prints a table without --json', () => {
    const csv = write('table.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/excited.flac,0.6,0.7\nclips/sad.wav,-0.7,-0.4\n');
    const r = evaluate(['--modality', 'speech', '--data', csv]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/speech-va on .*table\.csv: 3 files/);
    expect(r.stdout).toMatch(/dimension +n +pearson r +CCC +RMSE +MAE/);
    expect(r.stdout).toMatch(/\nvalence +3 +-?\d\.\d{3} +-?\d\.\d{3}/);
    expect(r.stdout).toMatch(/\narousal +3 /);
  });

  it('a WAV with no (or under 100 ms of) audio is named with the other bad files before the model loads', () => {
    execFileSync('sox', ['-R', '-q', SPEECH, path.join(dir, 'clips/blip.wav'), 'trim', '0', '0.05']);
    // a header with no samples (what a recorder leaves when it is stopped at once)
    writeWav(path.join(dir, 'clips/empty.wav'), [new Float32Array(0)]);
    const csv = write('short.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/empty.wav,0.1,0.1\nclips/blip.wav,0.1,0.1\nclips/missing.wav,0,0\n');
    const r = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', csv, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('bad labelled data: 3 problems');
    expect(r.stderr).toContain(`${csv}:3: file clips/empty.wav: too short for one analysis window (0 ms of audio, under 100 ms)`);
    expect(r.stderr).toContain(`${csv}:4: file clips/blip.wav: too short for one analysis window (50 ms of audio, under 100 ms)`);
    expect(r.stderr).toContain(`${csv}:5: file clips/missing.wav`);
    // with 40 ms windows the 50 ms clip makes a window: it is scored, not refused
    const ok = write('short-ok.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/blip.wav,0.1,0.1\n');
    const r2 = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', ok, '--json', '--window-ms', '40', '--hop-ms', '20']);
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);
    expect((JSON.parse(r2.stdout) as Report).rows).toBe(2);
  });

  it('a missing file and a non-numeric rating: exit 2, each row named, nothing reported, no predictions file', () => {
    const csv = write('bad.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/missing.wav,0.1,0.1\nclips/sad.wav,sad,-0.4\n');
    const out = path.join(dir, 'never.csv');
    const r = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', csv, '--json', '--predictions', out]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`AFFECT_ERR_INPUT: bad labelled data: 1 problem`);
    expect(r.stderr).toContain(`${csv}:4: valence "sad" is not a number`);
    // Rows are checked before files: fix the rating and the missing file is named next.
    const csv2 = write('bad2.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/missing.wav,0.1,0.1\nclips/sad.wav,-0.7,-0.4\n');
    const r2 = evaluate(['--modality', 'speech', '--data', csv2, '--json', '--predictions', out]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(new RegExp(`bad2\\.csv:3: file clips/missing\\.wav: AFFECT_ERR_INPUT: cannot read input .*missing\\.wav: no such file`));
    expect(r2.stderr).toMatch(/hint: file paths are relative to the CSV's folder/);
    expect(existsSync(out)).toBe(false);
  });

  it('--predictions naming the --data CSV, one of its audio files or a folder: exit 2 before the model runs, inputs untouched (the CSV used to be overwritten)', () => {
    const csv = write('self.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/sad.wav,-0.7,-0.4\n');
    const before = readFileSync(csv);
    const wav = path.join(dir, 'clips/calm.wav');
    const wavBefore = readFileSync(wav);
    const folder = path.join(dir, 'clips');
    for (const [out, what] of [
      [csv, `it is ${csv}, an input of this run`],
      [wav, `it is ${wav}, an input of this run`],
      [folder, 'it is a folder'],
    ] as const) {
      const r = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', csv, '--json', '--predictions', out]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`AFFECT_ERR_INPUT: cannot write --predictions ${out}: ${what}`);
    }
    expect(readFileSync(csv).equals(before)).toBe(true);
    expect(readFileSync(wav).equals(wavBefore)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('a FLAC that fails to decode half-way is an error naming its row, with no partial report', () => {
    const csv = write('cut.csv', 'file,valence,arousal\nclips/calm.wav,0.3,-0.5\nclips/cut.flac,0.6,0.7\nclips/sad.wav,-0.7,-0.4\n');
    const out = path.join(dir, 'cut-pred.csv');
    const r = evaluate(['--modality', 'speech', '--speech-model', 'speech-fixture', '--data', csv, '--json', '--predictions', out]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/AFFECT_ERR_AUDIO_FORMAT: .*cut\.csv:3: file clips\/cut\.flac: truncated or corrupt: decoded \d+ of the 96000 samples/);
    expect(r.stderr).toMatch(/nothing was reported: fix or delete this row/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('evaluate --speech-model speech-va (the trained model: σ and voiced fraction)', () => {
  it("uses the model's voiced fraction, reports coverage of ±1σ and σ per file", () => {
    // Actor 01: neutral, calm, angry (strong), sad (strong), happy (strong), fearful (strong); RAVDESS targets.
    const clips = [
      ['03-01-01-01-01-01-01.flac', 0, 0],
      ['03-01-02-02-01-01-01.flac', 0.577, -0.554],
      ['03-01-05-02-01-01-01.flac', -0.127, 0.79],
      ['03-01-04-02-01-01-01.flac', -0.71, -0.369],
      ['03-01-03-02-01-01-01.flac', 0.726, 0.337],
      ['03-01-06-02-01-01-01.flac', -0.361, 0.714],
    ] as const;
    const csv = write('va.csv', `file,valence,arousal\n${clips.map(([f, v, a]) => `${ravdess(f)},${v},${a}`).join('\n')}\n`);
    const out = path.join(dir, 'va-pred.csv');
    const r = evaluate(['--modality', 'speech', '--data', csv, '--speech-model', 'speech-va', '--json', '--predictions', out]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.model).toBe('speech-va');
    expect(rep.speech?.voicing).toMatch(/the model's voiced fraction >= 0\.15/);
    for (const d of ['valence', 'arousal']) {
      const cov = rep.dimensions[d]?.coverage1sigma;
      expect(cov).toBeGreaterThanOrEqual(0);
      expect(cov).toBeLessThanOrEqual(1);
    }
    const p = parseCsv(readFileSync(out, 'utf8'));
    const head = p[0]?.fields ?? [];
    expect(head).toEqual(expect.arrayContaining(['sigma_valence', 'sigma_arousal', 'voiced_windows']));
    const sig = p.slice(1).map((row) => Number(row.fields[head.indexOf('sigma_arousal')]));
    expect(sig.every((x) => x > 0 && x < 1)).toBe(true);
    // The clips start and end in silence: the model's voicing leaves some windows out.
    const windows = p.slice(1).map((row) => Number(row.fields[head.indexOf('windows')]));
    const voiced = p.slice(1).map((row) => Number(row.fields[head.indexOf('voiced_windows')]));
    expect(voiced.every((v, i) => v > 0 && v <= (windows[i] as number))).toBe(true);
    expect(voiced.some((v, i) => v < (windows[i] as number))).toBe(true);
    // Angry (strong) comes out more aroused than sad (strong).
    const arousal = p.slice(1).map((row) => Number(row.fields[head.indexOf('pred_arousal')]));
    expect(arousal[2]).toBeGreaterThan(arousal[3] as number);
  });
});

describe('evaluate --modality text', () => {
  // EmoBank-style: 1–5 ratings, sentences with commas and quotes, a dominance column.
  const sentences = [
    ['"I love this, it\'s wonderful!" she said.', 4.6, 3.8, 3.4],
    ['The meeting is at 10, in room 4.', 3.0, 2.4, 3.0],
    ['He died alone, and nobody came to the funeral.', 1.4, 2.9, 2.2],
    ['I am furious — they lied to us "again".', 1.6, 4.4, 3.6],
    ['What a calm, relaxing afternoon.', 4.0, 1.8, 3.1],
    ['I feel sad and tired.', 1.8, 2.0, 2.4],
  ] as const;
  const csvText = `text,valence,arousal,dominance\n${sentences.map(([t, v, a, d]) => `"${t.replace(/"/g, '""')}",${v},${a},${d}`).join('\n')}\n`;

  it('maps --scale 1,5 to [-1, 1], scores valence and arousal, notes dominance when the model does not predict it', () => {
    const csv = write('sents.csv', csvText);
    const out = path.join(dir, 'text-pred.csv');
    const r = evaluate(['--modality', 'text', '--data', csv, '--scale', '1,5', '--text-model', 'text-classifier-fixture', '--json', '--predictions', out]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep).toMatchObject({ modality: 'text', model: 'text-classifier-fixture', rows: 6, scale: [1, 5] });
    expect(rep.dimensions['valence']?.n).toBe(6);
    expect(rep.speech).toBeUndefined();
    expect(rep.notes).toEqual(['dominance: rated in the data but the model does not predict it, so it is not scored']);
    const p = parseCsv(readFileSync(out, 'utf8'));
    expect(p[0]?.fields.slice(0, 3)).toEqual(['line', 'text', 'target_valence']);
    // The sentences come back exactly (quotes and commas intact), targets mapped from 1..5.
    expect(p.slice(1).map((row) => row.fields[1])).toEqual(sentences.map((s) => s[0]));
    expect(Number(p[1]?.fields[2])).toBeCloseTo((4.6 - 3) / 2, 12);
  });

  it('ratings on 1..5 without --scale: exit 2, the hint says --scale 1,5; a value outside the scale names its row', () => {
    const csv = write('noscale.csv', csvText);
    const r = evaluate(['--modality', 'text', '--data', csv, '--text-model', 'text-classifier-fixture', '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/noscale\.csv:2: valence 4\.6 is outside the scale \[-1, 1\]/);
    expect(r.stderr).toMatch(/e\.g\. --scale 1,5/);
    const out = write('outside.csv', 'text,valence,arousal\nfine,3,3\ntoo high,6,3\n');
    const r2 = evaluate(['--modality', 'text', '--data', out, '--scale', '1,5', '--text-model', 'text-classifier-fixture']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${out}:3: valence 6 is outside the scale [1, 5]`);
  });

  it('--window-ms / --hop-ms with --modality text are a config error, not silently ignored', () => {
    const csv = write('win.csv', 'text,valence,arousal\nhello,0,0\nbye,0.5,0.5\n');
    const r = evaluate(['--modality', 'text', '--data', csv, '--window-ms', '500', '--hop-ms', '100']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('AFFECT_ERR_CONFIG: --window-ms, --hop-ms do not apply to --modality text');
  });

  it('a malformed --scale is a usage error (exit 1) before anything loads', () => {
    const csv = write('s.csv', csvText);
    const r = evaluate(['--modality', 'text', '--data', csv, '--scale', '5,1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--scale must have lo < hi/);
  });
});
