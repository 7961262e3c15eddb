/**
 * The agreement metrics of `evaluate` (src/validate/stats.ts) against training/common/metrics.py,
 * run by Debian's /usr/bin/python3 on the same numbers: they must agree to 1e-12 (CCC with
 * population moments, Pearson, RMSE, MAE, coverage of ±1σ). Plus the CSV reader and the
 * labelled-data checks of src/evaluate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { CsvSyntaxError, parseCsv } from '../../src/evaluate/csv.js';
import { csvField, parseScale, predictionsCsv, readLabelledCsv, scoreRows, toUnitScale, voicedWindows } from '../../src/evaluate/evaluate.js';
import { agreementSummary, ccc } from '../../src/validate/stats.js';
import { seededRandom } from '../../core/seeded-random.js';

const PYTHON = '/usr/bin/python3';
const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** training.common.metrics.summary for each case, computed by Python from the repo root. */
function pythonSummaries(cases: Array<{ t: number[]; p: number[]; s?: number[] }>): Array<Record<string, number>> {
  const file = path.join(dir, 'cases.json');
  writeFileSync(file, JSON.stringify(cases));
  const code = [
    'import json, sys',
    'from training.common.metrics import summary',
    'cases = json.load(open(sys.argv[1]))',
    'print(json.dumps([summary(c["t"], c["p"], c.get("s")) for c in cases]))',
  ].join('\n');
  const out = execFileSync(PYTHON, ['-c', code, file], { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out) as Array<Record<string, number>>;
}

describe('metrics match training/common/metrics.py', () => {
  it('CCC, Pearson, RMSE, MAE and coverage agree to 1e-12 on random and edge cases', () => {
    const rnd = seededRandom(11);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const cases: Array<{ t: number[]; p: number[]; s?: number[] }> = [];
    for (const n of [2, 3, 17, 250]) {
      const t = Array.from({ length: n }, () => Math.tanh(gauss()));
      // Correlated, biased and scaled predictions: CCC < Pearson.
      const p = t.map((x) => 0.6 * x + 0.2 + 0.3 * gauss());
      const s = t.map(() => 0.1 + 0.4 * rnd());
      cases.push({ t, p, s });
      cases.push({ t, p });
    }
    cases.push({ t: [1, 2, 3, 4], p: [-4, -3, -2, -1] }); // perfect r, poor CCC
    cases.push({ t: [0.5, -0.5, 0.25], p: [0.1, 0.1, 0.1] }); // constant prediction
    const py = pythonSummaries(cases);
    cases.forEach((c, i) => {
      const ts = agreementSummary(c.t, c.p, c.s);
      const want = py[i] as Record<string, number>;
      expect(ts.n).toBe(want['n']);
      for (const k of ['ccc', 'rmse', 'mae'] as const) expect(Math.abs(ts[k] - (want[k] as number)), `${k} case ${i}`).toBeLessThan(1e-12);
      // metrics.py writes 0.0 for a constant series' Pearson r; evaluate says undefined (null).
      if (ts.pearson === null) expect(want['pearson']).toBe(0);
      else expect(Math.abs(ts.pearson - (want['pearson'] as number)), `pearson case ${i}`).toBeLessThan(1e-12);
      if (c.s) expect(ts.coverage1sigma).toBe(want['coverage1sigma']);
      else expect(ts.coverage1sigma).toBeUndefined();
    });
    // Sanity of the definitions themselves.
    expect(ccc([1, 2, 3], [1, 2, 3])).toBeCloseTo(1, 15);
    expect(ccc([1, 2, 3, 4], [-4, -3, -2, -1])).toBeLessThan(0.2);
  });
});

describe('CSV reader', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF, a BOM, and keeps start lines', () => {
    const text = '\ufefftext,valence,arousal\r\n"He said, ""no"" — twice",1.5,3\r\n\r\nplain,2,2\n"two\nlines",3,4\n"",1,1';
    const recs = parseCsv(text);
    expect(recs).toEqual([
      { line: 1, fields: ['text', 'valence', 'arousal'] },
      { line: 2, fields: ['He said, "no" — twice', '1.5', '3'] },
      { line: 4, fields: ['plain', '2', '2'] },
      { line: 5, fields: ['two\nlines', '3', '4'] },
      { line: 7, fields: ['', '1', '1'] },
    ]);
    expect(parseCsv('a,b\n1,')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', ''] },
    ]);
  });

  it('an unclosed quote or text after a closing quote is an error naming the line', () => {
    expect(() => parseCsv('a,b\n1,2\n"open,3\n4,5')).toThrow(CsvSyntaxError);
    expect(() => parseCsv('a,b\n1,2\n"open,3\n4,5')).toThrow(/line 3: a quoted field is not closed/);
    expect(() => parseCsv('a,b\n"x"y,2')).toThrow(/line 2: unexpected "y" after a closing quote/);
  });

  it('csvField quotes what needs quoting and round-trips through parseCsv', () => {
    const fields = ['plain', 'with, comma', 'say "hi"', 'two\nlines', ' padded '];
    expect(parseCsv(fields.map(csvField).join(','))[0]?.fields).toEqual(fields);
  });
});

describe('labelled data checks', () => {
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const errorOf = (fn: () => unknown): AffectError => {
    try {
      fn();
    } catch (e) {
      if (e instanceof AffectError) return e;
      throw e;
    }
    throw new Error('expected an AffectError');
  };

  it('maps the scale to [-1, 1] and refuses a malformed scale', () => {
    expect(parseScale('1,5')).toEqual({ lo: 1, hi: 5 });
    expect(toUnitScale(3, { lo: 1, hi: 5 })).toBe(0);
    expect(toUnitScale(5, { lo: 1, hi: 5 })).toBe(1);
    expect(toUnitScale(1, { lo: 1, hi: 5 })).toBe(-1);
    expect(() => parseScale('5,1')).toThrow(/lo < hi/);
    expect(() => parseScale('1')).toThrow(/two numbers/);
    expect(() => parseScale('a,5')).toThrow(/two numbers/);
  });

  it('reads good rows (extra columns ignored, optional dominance) with targets on [-1, 1]', () => {
    const f = write('good.csv', 'id,text,valence,arousal,dominance\n7,"Well, ""fine"".",4,2,3\n8,Awful.,1,5,2.5\n');
    const rows = readLabelledCsv(f, 'text', { lo: 1, hi: 5 });
    expect(rows).toEqual([
      { line: 2, key: 'Well, "fine".', target: { valence: 0.5, arousal: -0.5, dominance: 0 } },
      { line: 3, key: 'Awful.', target: { valence: -1, arousal: 1, dominance: -0.25 } },
    ]);
  });

  it('names every bad row: a non-numeric rating, an empty text, a wrong field count, a value out of the scale', () => {
    const f = write('bad.csv', 'text,valence,arousal\nok,3,3\nbad,three,3\n,3,3\ntoo,many,fields,here\nhigh,3,7\nalso ok,2,2\n');
    const e = errorOf(() => readLabelledCsv(f, 'text', { lo: 1, hi: 5 }));
    expect(e.code).toBe('AFFECT_ERR_INPUT');
    expect(e.message).toContain('4 problems');
    expect(e.message).toContain(`${f}:3: valence "three" is not a number`);
    expect(e.message).toContain(`${f}:4: the text is empty`);
    expect(e.message).toContain(`${f}:5: 4 fields, the header has 3`);
    expect(e.message).toContain(`${f}:6: arousal 7 is outside the scale [1, 5]`);
    expect(e.hint).toMatch(/--scale/);
  });

  it('ratings on another scale than --scale say which scale to pass', () => {
    const f = write('scale.csv', 'text,valence,arousal\na,1,5\nb,3,2\n');
    const e = errorOf(() => readLabelledCsv(f, 'text', { lo: -1, hi: 1 }));
    expect(e.message).toContain(`${f}:2: arousal 5 is outside the scale [-1, 1]`);
    expect(e.hint).toMatch(/range 2\.\.5: pass the scale the ratings were made on, e.g. --scale 1,5/);
  });

  it('a missing column, a missing file and too few rows are clear errors', () => {
    const f = write('hdr.csv', 'file,valence\nx.wav,0\n');
    expect(errorOf(() => readLabelledCsv(f, 'speech', { lo: -1, hi: 1 })).message).toMatch(
      /hdr\.csv:1: the header must name the columns file,valence,arousal\[,dominance\]; missing arousal/,
    );
    expect(errorOf(() => readLabelledCsv(path.join(dir, 'none.csv'), 'text', { lo: -1, hi: 1 })).message).toMatch(/none\.csv: no such file/);
    const one = write('one.csv', 'text,valence,arousal\na,0,0\n');
    expect(errorOf(() => readLabelledCsv(one, 'text', { lo: -1, hi: 1 })).message).toMatch(/1 labelled row; the agreement figures need at least 2/);
  });

  it('a CSV syntax error reads file:line: like every row error (was "file.csv:line 2:"); a binary file is one clear error', () => {
    const f = write('unclosed.csv', 'text,valence,arousal\n"unclosed,3,3\n');
    expect(errorOf(() => readLabelledCsv(f, 'text', { lo: 1, hi: 5 })).message).toBe(`${f}:2: a quoted field is not closed (a " without its closing ")`);
    const bin = path.join(dir, 'audio.wav');
    writeFileSync(bin, Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(40), Buffer.from('"x\xff",1')]));
    const e = errorOf(() => readLabelledCsv(bin, 'speech', { lo: -1, hi: 1 }));
    expect(e.message).toBe(`${bin} is a binary file, not a CSV`);
    expect(e.hint).toMatch(/file,valence,arousal\[,dominance\]/);
  });

  it('speech paths resolve against the CSV folder', () => {
    const f = write('speech.csv', 'file,valence,arousal\nclips/a.flac,0.5,-0.5\n/abs/b.wav,0,0\n');
    const rows = readLabelledCsv(f, 'speech', { lo: -1, hi: 1 });
    expect(rows.map((r) => r.path)).toEqual([path.join(dir, 'clips/a.flac'), '/abs/b.wav']);
  });

  it('scores dimensions rated and predicted; notes one rated but not predicted; writes recomputable predictions', () => {
    const rows = [
      { line: 2, key: 'a, "b"', target: { valence: 0.5, arousal: -0.5, dominance: 0.1 } },
      { line: 3, key: 'c', target: { valence: -0.5, arousal: 0.5, dominance: -0.2 } },
      { line: 4, key: 'd', target: { valence: 0, arousal: 0, dominance: 0 } },
    ];
    const preds = [
      { valence: 0.4, arousal: -0.2, sigma: { valence: 0.2, arousal: 0.1 } },
      { valence: -0.1, arousal: 0.3, sigma: { valence: 0.2, arousal: 0.1 } },
      { valence: 0.1, arousal: 0.1, sigma: { valence: 0.2, arousal: 0.1 } },
    ];
    const { dimensions, notes } = scoreRows(rows, preds);
    expect(Object.keys(dimensions)).toEqual(['valence', 'arousal']);
    expect(dimensions.valence).toMatchObject({ n: 3, coverage1sigma: 2 / 3 });
    expect(notes).toEqual(['dominance: rated in the data but the model does not predict it, so it is not scored']);
    const csv = predictionsCsv('text', rows, preds);
    const parsed = parseCsv(csv);
    expect(parsed[0]?.fields).toEqual([
      'line',
      'text',
      'target_valence',
      'target_arousal',
      'target_dominance',
      'pred_valence',
      'pred_arousal',
      'pred_dominance',
      'sigma_valence',
      'sigma_arousal',
    ]);
    expect(parsed[1]?.fields).toEqual(['2', 'a, "b"', '0.5', '-0.5', '0.1', '0.4', '-0.2', '', '0.2', '0.1']);
    // The figures recompute from the file alone.
    const col = (name: string) => parsed.slice(1).map((r) => Number(r.fields[parsed[0]?.fields.indexOf(name) ?? -1]));
    expect(agreementSummary(col('target_valence'), col('pred_valence')).ccc).toBe(dimensions.valence?.ccc);
  });

  it('voiced windows: the model’s voiced fraction when every window has one, else the energy rule', () => {
    expect(
      voicedWindows(
        [
          { voiced: 0.1, rmsDbfs: -10 },
          { voiced: 0.5, rmsDbfs: -80 },
        ],
        0.15,
      ),
    ).toEqual([false, true]);
    // Energy: within 25 dB of the loudest window and above -55 dBFS.
    expect(voicedWindows([{ rmsDbfs: -20 }, { rmsDbfs: -44 }, { rmsDbfs: -46 }, { rmsDbfs: -Infinity }], 0.15)).toEqual([true, true, false, false]);
    expect(voicedWindows([{ rmsDbfs: -60 }, { rmsDbfs: -58 }], 0.15)).toEqual([false, false]);
  });
});
