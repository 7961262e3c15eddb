/**
 * Escalation alerts on real acted speech, both detectors: `npx tsx bench/escalation-speech.ts
 * [ACTORS] [--corpus ravdess|emodb] [--telephone]` (RAVDESS default 01-20, e.g. `01,03,04`; EmoDB default its 8
 * speakers). Per RAVDESS actor, the calm and neutral clips twice over, then 8 angry clips (an
 * escalation by the corpus's own ratings: arousal up, valence down) or 8 happy clips (arousal up,
 * valence up: not one). Per EmoDB speaker, the neutral clips repeated to at least 40 s, then the
 * anger clips (by the README's targets arousal +0.79, valence −0.13: a marginal valence fall) or
 * the happiness clips. Each made into a 16 kHz WAV with sox and run through `circumplex run --json`
 * with the default detector and with `--escalation-method velocity`. `--telephone` passes each file
 * through 8 kHz μ-law first, as a Twilio track arrives. `--variant NAME=FLAGS` (repeatable) runs
 * named sets of `run` flags instead of the two detectors, e.g. `--variant b6="--escalation-min-blocks 6"`.
 * Counts: angry changes alerted within 12 s (and the mean delay), alerts during the calm/neutral
 * part, alerts after the change to happy. Writes JSON to stdout, a summary to stderr.
 *
 * The shipped speech model was trained on these speakers (RAVDESS 01–20, EmoDB's 8; RAVDESS 21–24
 * and EmoDB 15–16 are kept back and not used here), so this measures the detector on a model's real
 * output, not the model's generalisation.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { audioSeconds, ravdessClips } from './lib/ravdess.js';

const dataRoot = process.env.CIRCUMPLEX_DATA_DIR ? path.resolve(process.env.CIRCUMPLEX_DATA_DIR) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
const flacDir = path.join(dataRoot, 'ravdess', 'flac');
const args = process.argv.slice(2);
const corpusAt = args.indexOf('--corpus');
const corpus = corpusAt >= 0 ? args.splice(corpusAt, 2)[1] : 'ravdess';
const telAt = args.indexOf('--telephone');
// --telephone: each file goes through 8 kHz μ-law and back, as a Twilio track arrives.
const telephone = telAt >= 0;
if (telephone) args.splice(telAt, 1);
// --variant NAME=FLAGS (repeatable): named `run` flag sets instead of the two detectors.
const variants: Array<[string, string[]]> = [];
for (let at = args.indexOf('--variant'); at >= 0; at = args.indexOf('--variant')) {
  const spec = args.splice(at, 2)[1] ?? '';
  const eq = spec.indexOf('=');
  if (eq < 1) throw new Error(`--variant must be NAME=FLAGS, got ${JSON.stringify(spec)}`);
  variants.push([
    spec.slice(0, eq),
    spec
      .slice(eq + 1)
      .split(' ')
      .filter(Boolean),
  ]);
}
if (corpus !== 'ravdess' && corpus !== 'emodb') throw new Error(`--corpus must be ravdess or emodb, got ${String(corpus)}`);
const EMODB_SPEAKERS = ['03', '08', '09', '10', '11', '12', '13', '14'];

function parseActors(arg: string | undefined): string[] {
  if (!arg) return corpus === 'emodb' ? EMODB_SPEAKERS : Array.from({ length: 20 }, (_, i) => String(i + 1).padStart(2, '0'));
  const m = /^(\d{2})-(\d{2})$/.exec(arg);
  if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => String(Number(m[1]) + i).padStart(2, '0'));
  return arg.split(',').map((a) => a.trim().padStart(2, '0'));
}

/** EmoDB clips of `speaker` with one of `emotions` (labels.csv), in name order. */
function emodbClips(speaker: string, emotions: readonly string[]): string[] {
  const lines = readFileSync(path.join(dataRoot, 'emodb', 'labels.csv'), 'utf8')
    .trim()
    .split(/\r?\n/)
    .slice(1);
  return lines
    .map((l) => l.split(','))
    .filter((c) => c[1] === speaker && emotions.includes(c[5] ?? ''))
    .map((c) => path.join(dataRoot, 'emodb', 'wav', c[0] ?? ''))
    .sort();
}

/** The calm part (files in order) and the clips after the change, per speaker: 'up' an escalation, 'happy' not one. */
function parts(actor: string): { calm: string[]; up: string[]; happy: string[] } {
  if (corpus === 'emodb') {
    const neutral = emodbClips(actor, ['neutral']);
    if (neutral.length === 0) throw new Error(`${dataRoot}/emodb/labels.csv: speaker ${actor} has no neutral clips`);
    const calm = Array.from({ length: Math.ceil(40 / audioSeconds(neutral)) }, () => neutral).flat();
    return { calm, up: emodbClips(actor, ['anger']), happy: emodbClips(actor, ['happiness']) };
  }
  const once = clips(actor, ['01', '02']);
  if (once.length !== 12) throw new Error(`${flacDir}: actor ${actor} has ${once.length} neutral/calm clips, expected 12`);
  return { calm: [...once, ...once], up: clips(actor, ['05']), happy: clips(actor, ['03']) };
}

const clips = (actor: string, codes: readonly string[]): string[] => ravdessClips(flacDir, actor, codes);

interface Frame {
  type: string;
  tMs: number;
  valence: number;
  arousal: number;
  voiced?: number;
}

function alertTimes(wav: string, extra: string[]): { alerts: number[]; frames: Frame[] } {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'circumplex.mjs'), 'run', '--input', wav, '--json', ...extra], {
    env: { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`circumplex run --input ${wav} failed (${r.status}): ${r.stderr.toString()}`);
  const msgs = r.stdout
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Frame);
  return { alerts: msgs.filter((m) => m.type === 'alert').map((m) => m.tMs), frames: msgs.filter((m) => m.type === 'affect') };
}

const actors = parseActors(args[0]);
const dir = mkdtempSync(path.join(tmpdir(), 'escalation-speech-'));
const methods: Record<string, string[]> = variants.length > 0 ? Object.fromEntries(variants) : { shift: [], velocity: ['--escalation-method', 'velocity'] };
type Tally = { caught: number; delays: number[]; duringCalm: number; afterHappy: number; frames: number; shifts: Array<{ arousal: number; valence: number }> };
const tally: Record<string, Tally> = {};
for (const m of Object.keys(methods)) tally[m] = { caught: 0, delays: [], duringCalm: 0, afterHappy: 0, frames: 0, shifts: [] };

/** Mean voiced frame after the change minus mean voiced frame before it: what the model read. */
function readShift(frames: readonly Frame[], onsetMs: number): { arousal: number; valence: number } {
  const voiced = frames.filter((f) => f.voiced === undefined || f.voiced >= 0.2);
  const mean = (xs: readonly Frame[], k: 'arousal' | 'valence'): number => xs.reduce((s, f) => s + f[k], 0) / Math.max(1, xs.length);
  const before = voiced.filter((f) => f.tMs < onsetMs);
  const after = voiced.filter((f) => f.tMs >= onsetMs + 1000);
  return { arousal: mean(after, 'arousal') - mean(before, 'arousal'), valence: mean(after, 'valence') - mean(before, 'valence') };
}
try {
  for (const actor of actors) {
    const { calm, up, happy } = parts(actor);
    const onsetMs = 1000 * audioSeconds(calm);
    for (const [kind, next] of [
      ['up', up],
      ['happy', happy],
    ] as const) {
      const wav = path.join(dir, `${actor}-${kind}.wav`);
      if (telephone) {
        const tel = path.join(dir, `${actor}-${kind}.ulaw.wav`);
        execFileSync('sox', ['-R', '-q', ...calm, ...next, '-r', '8000', '-c', '1', '-e', 'u-law', tel]);
        execFileSync('sox', ['-R', '-q', tel, '-r', '16000', '-e', 'signed', '-b', '16', wav]);
      } else execFileSync('sox', ['-R', '-q', ...calm, ...next, '-r', '16000', '-c', '1', '-b', '16', wav]);
      for (const [m, extra] of Object.entries(methods)) {
        const t = tally[m]!;
        const { alerts, frames } = alertTimes(wav, extra);
        t.frames += frames.length;
        // The calm part is the same audio in both files: counted once, from the escalating one.
        if (kind === 'up') {
          t.shifts.push(readShift(frames, onsetMs));
          t.duringCalm += alerts.filter((x) => x < onsetMs).length;
          const hit = alerts.find((x) => x >= onsetMs && x <= onsetMs + 12_000);
          if (hit !== undefined) {
            t.caught++;
            t.delays.push(hit - onsetMs);
          }
        } else t.afterHappy += alerts.filter((x) => x >= onsetMs).length;
      }
    }
    process.stderr.write(`actor ${actor} done\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const out = Object.fromEntries(
  Object.entries(tally).map(([m, t]) => [
    m,
    {
      angryCaught: t.caught,
      actors: actors.length,
      meanDelayMs: t.delays.length ? Math.round(t.delays.reduce((a, b) => a + b, 0) / t.delays.length) : null,
      alertsDuringCalm: t.duringCalm,
      alertsAfterHappy: t.afterHappy,
      frames: t.frames,
      // What the model read (smoothed frames), mean of voiced frames after the change minus before, per speaker.
      readShifts: t.shifts.map((x) => ({ arousal: Number(x.arousal.toFixed(2)), valence: Number(x.valence.toFixed(2)) })),
    },
  ]),
);
process.stdout.write(JSON.stringify({ kind: 'circumplex.escalation-speech', corpus, telephone, actors, methods: out }, null, 2) + '\n');
for (const [m, r] of Object.entries(out))
  process.stderr.write(
    `${m} (${corpus}${telephone ? ', 8 kHz μ-law' : ''}): calm→angry alerted ${r.angryCaught}/${r.actors}${r.meanDelayMs === null ? '' : ` (mean ${(r.meanDelayMs / 1000).toFixed(1)} s after the change)`}, ${r.alertsDuringCalm} alerts in the calm/neutral parts, ${r.alertsAfterHappy} after calm→happy; the model read the change as arousal ${r.readShifts.map((x) => x.arousal.toFixed(2)).join('/')} and valence ${r.readShifts.map((x) => x.valence.toFixed(2)).join('/')}\n`,
  );
