/**
 * Held-out clips of the shared emotional-speech corpora (../shared/data) for the speech-va tests:
 * labels, decoding (sox: EmoDB WAV is 22.05 kHz, RAVDESS is FLAC), 1 s windows at 250 ms hop, per-clip
 * predictions (mean over voiced windows, as training/speech does) and the agreement metrics.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../core/config.js';
import type { SpeechAffectModel } from '../../models/ports.js';

const run = promisify(execFile);

/** EmoDB targets, exactly the table of ../shared/data/README.md. */
export const EMODB_TARGETS: Record<string, [number, number]> = {
  anger: [-0.127, 0.79],
  fear: [-0.361, 0.714],
  happiness: [0.726, 0.337],
  disgust: [-0.693, 0.4],
  sadness: [-0.71, -0.369],
  boredom: [-0.377, -0.706],
  neutral: [0, 0],
};
const HIGH = new Set(['anger', 'angry', 'fear', 'fearful', 'happiness', 'happy', 'surprised']);
const LOW = new Set(['sadness', 'sad', 'boredom', 'bored', 'calm', 'neutral']);

/** Same rule as training/speech/train.py: windows with a smaller voiced fraction are left out of a clip's mean. */
export const MIN_VOICED = 0.15;

export interface LabelledClip {
  readonly file: string;
  readonly corpus: 'emodb' | 'ravdess';
  readonly speaker: string;
  readonly emotion: string;
  readonly valence: number;
  readonly arousal: number;
}

/** ../shared/data (or CIRCUMPLEX_DATA_DIR); throws with a clear message when it is missing. */
export function speechDataRoot(): string {
  const root = process.env.CIRCUMPLEX_DATA_DIR ? path.resolve(process.env.CIRCUMPLEX_DATA_DIR) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
  for (const f of ['emodb/labels.csv', 'ravdess/labels.csv']) {
    if (!existsSync(path.join(root, f))) {
      throw new Error(
        `speech test data missing: ${path.join(root, f)} not found (the shared data belongs at ../shared/data next to the repo, or set CIRCUMPLEX_DATA_DIR)`,
      );
    }
  }
  return root;
}

function csvRows(file: string): Record<string, string>[] {
  const lines = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const head = (lines.shift() ?? '').split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i] ?? String(i), v])));
}

/** Every labelled clip of both corpora. */
export function allClips(root = speechDataRoot()): LabelledClip[] {
  const out: LabelledClip[] = [];
  for (const r of csvRows(path.join(root, 'emodb', 'labels.csv'))) {
    const t = EMODB_TARGETS[r.emotion ?? ''];
    if (!t) throw new Error(`emodb/labels.csv: unknown emotion ${r.emotion}`);
    out.push({
      file: path.join(root, 'emodb', 'wav', r.file ?? ''),
      corpus: 'emodb',
      speaker: `emodb:${r.speaker}`,
      emotion: r.emotion ?? '',
      valence: t[0],
      arousal: t[1],
    });
  }
  for (const r of csvRows(path.join(root, 'ravdess', 'labels.csv'))) {
    out.push({
      file: path.join(root, 'ravdess', 'flac', r.file ?? ''),
      corpus: 'ravdess',
      speaker: `ravdess:${r.actor}`,
      emotion: r.emotion ?? '',
      valence: Number(r.valence),
      arousal: Number(r.arousal),
    });
  }
  return out;
}

/** The first `n` speakers (sorted ids) of each corpus: what `train --holdout n` leaves out. */
export function holdoutSpeakers(clips: readonly LabelledClip[], n: number): string[] {
  const out: string[] = [];
  for (const corpus of ['emodb', 'ravdess']) {
    out.push(...[...new Set(clips.filter((c) => c.corpus === corpus).map((c) => c.speaker))].sort().slice(0, n));
  }
  return out;
}

/** Decodes a WAV/FLAC file to 16 kHz mono float32 with sox. */
export async function decodeClip(file: string): Promise<Float32Array> {
  const { stdout } = await run('sox', ['-R', file, '-t', 'f32', '-e', 'floating-point', '-r', '16000', '-c', '1', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  const buf = stdout as unknown as Buffer;
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** 1 s windows at 250 ms hop; a clip shorter than a window is one zero-padded window (as the runtime pads). */
export function windowsOf(x: Float32Array, win = 16000, hop = 4000): Float32Array[] {
  if (x.length < win) {
    const w = new Float32Array(win);
    w.set(x);
    return [w];
  }
  const out: Float32Array[] = [];
  for (let s = 0; s + win <= x.length; s += hop) out.push(x.slice(s, s + win));
  return out;
}

export interface ClipPrediction {
  readonly valence: number;
  readonly arousal: number;
  readonly sigmaValence: number;
  readonly sigmaArousal: number;
  readonly voicedWindows: number;
}

/** One prediction per clip: the mean over its voiced windows (all windows when none is voiced). */
export async function predictClip(model: SpeechAffectModel, x: Float32Array): Promise<ClipPrediction> {
  const outs = await Promise.all(windowsOf(x).map((w) => model.infer(w)));
  const voiced = outs.filter((o) => (o.voiced ?? 1) >= MIN_VOICED);
  const use = voiced.length ? voiced : outs;
  const mean = (f: (o: (typeof outs)[number]) => number) => use.reduce((a, o) => a + f(o), 0) / use.length;
  return {
    valence: mean((o) => o.valence),
    arousal: mean((o) => o.arousal),
    sigmaValence: mean((o) => o.sigma?.valence ?? Number.NaN),
    sigmaArousal: mean((o) => o.sigma?.arousal ?? Number.NaN),
    voicedWindows: voiced.length,
  };
}

/** Lin's concordance correlation coefficient (population moments), as training/common/metrics.py. */
export function ccc(t: readonly number[], p: readonly number[]): number {
  const n = t.length;
  const mt = t.reduce((a, b) => a + b, 0) / n;
  const mp = p.reduce((a, b) => a + b, 0) / n;
  let vt = 0;
  let vp = 0;
  let cov = 0;
  for (let i = 0; i < n; i++) {
    vt += ((t[i] as number) - mt) ** 2;
    vp += ((p[i] as number) - mp) ** 2;
    cov += ((t[i] as number) - mt) * ((p[i] as number) - mp);
  }
  const den = vt / n + vp / n + (mt - mp) ** 2;
  return den > 0 ? (2 * cov) / n / den : 0;
}

/** P(random positive scores above random negative), ties half. */
export function auc(pos: readonly number[], neg: readonly number[]): number {
  let s = 0;
  for (const a of pos) for (const b of neg) s += a > b ? 1 : a === b ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

/** Arousal AUC of the issue: angry/fearful/happy/surprised vs sad/bored/calm/neutral (disgust left out). */
export function arousalAuc(clips: readonly LabelledClip[], arousal: readonly number[]): number {
  const pos = clips.flatMap((c, i) => (HIGH.has(c.emotion) ? [arousal[i] as number] : []));
  const neg = clips.flatMap((c, i) => (LOW.has(c.emotion) ? [arousal[i] as number] : []));
  return auc(pos, neg);
}
