/**
 * Escalation alerts on real acted speech, both detectors: `npx tsx bench/escalation-speech.ts
 * [ACTORS]` (default 01-20; e.g. `01,03,04`). Per RAVDESS actor, the calm and neutral clips twice
 * over, then 8 angry clips (an escalation by the corpus's own ratings: arousal up, valence down) or 8
 * happy clips (arousal up, valence up: not one), made into a 16 kHz WAV with sox and run through
 * `circumplex run --json` with the default detector and with `--escalation-method velocity`.
 * Counts: angry changes alerted within 12 s (and the mean delay), alerts during the calm/neutral
 * part, alerts after the change to happy. Writes JSON to stdout, a summary to stderr.
 *
 * The shipped speech model was trained on these actors (RAVDESS 01–20; 21–24 are kept back and not
 * used here), so this measures the detector on a model's real output, not the model's generalisation.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../core/config.js';

const dataRoot = process.env.CIRCUMPLEX_DATA_DIR ? path.resolve(process.env.CIRCUMPLEX_DATA_DIR) : path.resolve(REPO_ROOT, '..', 'shared', 'data');
const flacDir = path.join(dataRoot, 'ravdess', 'flac');

function parseActors(arg: string | undefined): string[] {
  if (!arg) return Array.from({ length: 20 }, (_, i) => String(i + 1).padStart(2, '0'));
  const m = /^(\d{2})-(\d{2})$/.exec(arg);
  if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => String(Number(m[1]) + i).padStart(2, '0'));
  return arg.split(',').map((a) => a.trim().padStart(2, '0'));
}

function clips(actor: string, codes: readonly string[]): string[] {
  return readdirSync(flacDir)
    .filter((f) => codes.some((c) => f.startsWith(`03-01-${c}-`)) && f.endsWith(`-${actor}.flac`))
    .sort()
    .map((f) => path.join(flacDir, f));
}

function alertTimes(wav: string, extra: string[]): { alerts: number[]; frames: number } {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'circumplex.mjs'), 'run', '--input', wav, '--json', ...extra], {
    env: { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`circumplex run --input ${wav} failed (${r.status}): ${r.stderr.toString()}`);
  const msgs = r.stdout
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; tMs: number });
  return { alerts: msgs.filter((m) => m.type === 'alert').map((m) => m.tMs), frames: msgs.filter((m) => m.type === 'affect').length };
}

const actors = parseActors(process.argv[2]);
const dir = mkdtempSync(path.join(tmpdir(), 'escalation-speech-'));
const methods = { shift: [] as string[], velocity: ['--escalation-method', 'velocity'] };
type Tally = { caught: number; delays: number[]; duringCalm: number; afterHappy: number; frames: number };
const tally: Record<string, Tally> = {};
for (const m of Object.keys(methods)) tally[m] = { caught: 0, delays: [], duringCalm: 0, afterHappy: 0, frames: 0 };
try {
  for (const actor of actors) {
    const calm = clips(actor, ['01', '02']);
    if (calm.length !== 12) throw new Error(`${flacDir}: actor ${actor} has ${calm.length} neutral/calm clips, expected 12`);
    const onsetMs =
      2000 *
      execFileSync('soxi', ['-D', ...calm])
        .toString()
        .trim()
        .split('\n')
        .reduce((s, x) => s + Number(x), 0);
    for (const code of ['05', '03']) {
      const wav = path.join(dir, `${actor}-${code}.wav`);
      execFileSync('sox', ['-q', ...calm, ...calm, ...clips(actor, [code]), '-r', '16000', '-c', '1', '-b', '16', wav]);
      for (const [m, extra] of Object.entries(methods)) {
        const t = tally[m]!;
        const { alerts, frames } = alertTimes(wav, extra);
        t.frames += frames;
        // The calm part is the same audio in both files: counted once, from the angry one.
        if (code === '05') {
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
    },
  ]),
);
process.stdout.write(JSON.stringify({ kind: 'circumplex.escalation-speech', actors, methods: out }, null, 2) + '\n');
for (const [m, r] of Object.entries(out))
  process.stderr.write(
    `${m}: calm→angry alerted ${r.angryCaught}/${r.actors}${r.meanDelayMs === null ? '' : ` (mean ${(r.meanDelayMs / 1000).toFixed(1)} s after the change)`}, ${r.alertsDuringCalm} alerts in the calm/neutral parts, ${r.alertsAfterHappy} after calm→happy\n`,
  );
