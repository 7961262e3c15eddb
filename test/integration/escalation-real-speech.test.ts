/**
 * Escalation alerts on real speech through the whole path (`circumplex run`, the shipped speech
 * model, Silero VAD, the Kalman-CV trajectory, the default `shift` detector): an actor's RAVDESS calm
 * and neutral clips twice over (about 90 s), then 8 angry clips — an alert shortly after the anger
 * begins — or 8 happy clips — arousal rises there too but valence does not fall, so none after the
 * change. Three actors (01, 03, 04). The shipped speech model was trained on these actors, so this
 * checks the path and the detector, not generalisation; over all 20 actors the figures are in
 * docs/bench.md ("Escalation alerts", real speech). The agent example, fed the angry call, hands it
 * to a person after the anger and not before.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import { REPO_ROOT } from '../../core/config.js';
import { speechDataRoot } from '../helpers/speech-corpus.js';
import { audioSeconds, ravdessClips } from '../../bench/lib/ravdess.js';

const dir = mkdtempSync(path.join(tmpdir(), 'escalation-speech-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env['CIRCUMPLEX_VOSK_MODEL'];

const clips = (actor: string, codes: readonly string[]): string[] => ravdessClips(path.join(speechDataRoot(), 'ravdess', 'flac'), actor, codes);

/** Calm and neutral twice, then `then`'s clips, as one 16 kHz WAV; returns it and the change's audio time (ms). */
function call(actor: string, then: string): { wav: string; onsetMs: number } {
  const calm = clips(actor, ['01', '02']);
  const next = clips(actor, [then]);
  expect(calm).toHaveLength(12);
  expect(next).toHaveLength(8);
  const wav = path.join(dir, `${actor}-${then}.wav`);
  execFileSync('sox', ['-R', '-q', ...calm, ...calm, ...next, '-r', '16000', '-c', '1', '-b', '16', wav]);
  return { wav, onsetMs: 2 * audioSeconds(calm) * 1000 };
}

function alerts(wav: string): Array<Extract<ServerMessage, { type: 'alert' }>> {
  const r = spawnSync(process.execPath, ['bin/circumplex.mjs', 'run', '--input', wav, '--json'], { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  expect(r.status, r.stderr.toString()).toBe(0);
  const messages = serverMessages(r.stdout);
  expect(messages.filter((m) => m.type === 'affect').length).toBeGreaterThan(400);
  return messages.flatMap((m) => (m.type === 'alert' ? [m] : []));
}

describe('escalation alerts on real speech (RAVDESS, the shipped speech model)', () => {
  it.each(['01', '03', '04'])('actor %s: calm then angry raises one alert within 12 s of the change; calm then happy none after it', (actor) => {
    const angry = call(actor, '05');
    const a = alerts(angry.wav);
    expect(a.filter((x) => x.tMs < angry.onsetMs)).toEqual([]);
    expect(a).toHaveLength(1);
    expect(a[0]!.alert).toBe('escalation');
    expect(a[0]!.tMs).toBeGreaterThan(angry.onsetMs);
    expect(a[0]!.tMs).toBeLessThan(angry.onsetMs + 12_000);
    expect(a[0]!.velocity.arousal).toBeGreaterThan(0);
    expect(a[0]!.velocity.valence).toBeLessThan(0);
    const happy = call(actor, '03');
    expect(alerts(happy.wav)).toEqual([]);
  });

  it('the agent example (examples/agent/agent-loop.ts) hands the call to a person after the anger, not before', () => {
    const angry = call('01', '05');
    const r = spawnSync(
      path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
      ['--tsconfig', 'examples/tsconfig.json', 'examples/agent/agent-loop.ts', angry.wav, '--json'],
      { cwd: REPO_ROOT, env, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
    );
    expect(r.status, r.stderr.toString()).toBe(0);
    const handOff = /agent: escalation at (\d+\.\d) s \(arousal up .*\); handing off/.exec(r.stderr.toString());
    expect(handOff, r.stderr.toString()).not.toBeNull();
    const atMs = Number(handOff![1]) * 1000;
    expect(atMs).toBeGreaterThan(angry.onsetMs);
    expect(atMs).toBeLessThan(angry.onsetMs + 12_000);
    // Every reply decided before the alert kept the call; the turns answered after it hand off.
    const decisions = r.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { endMs: number; handOff: boolean });
    expect(decisions.filter((d) => d.endMs < angry.onsetMs).every((d) => !d.handOff)).toBe(true);
    expect(decisions.filter((d) => d.endMs > atMs + 1000).length).toBeGreaterThan(0);
    expect(decisions.filter((d) => d.endMs > atMs + 1000).every((d) => d.handOff)).toBe(true);
  });
});
