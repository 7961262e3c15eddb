/**
 * examples/: every example typechecks against the package names (examples/tsconfig.json maps them
 * to the sources), and examples/agent/agent-loop.ts runs in-process on the shipped WAV: one reply
 * style per caller turn, taken from that turn's affect, with the same turns (times and means) as
 * `circumplex run --json` reports for the same file; with CIRCUMPLEX_VOSK_MODEL set, each turn also
 * carries its transcript, as the CLI's turns do.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { TurnFrameMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..', '..');
const WAV = path.join(REPO, 'test', 'fixtures', 'audio', 'speech.wav');
const ENV: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete ENV.CIRCUMPLEX_VOSK_MODEL;

interface Decision {
  startMs: number;
  endMs: number;
  valence: number;
  arousal: number;
  label: string;
  style: string;
  latest?: { valence: number; arousal: number; label: string };
  handOff: boolean;
}

/** The turns `circumplex run --json` reports for the example's WAV, with the same environment. */
async function cliTurns(env: NodeJS.ProcessEnv): Promise<TurnFrameMessage[]> {
  const cli = await run(process.execPath, ['bin/circumplex.mjs', 'run', '--input', WAV, '--json'], { cwd: REPO, env, maxBuffer: 64 * 1024 * 1024 });
  return serverMessages(cli.stdout).filter((m): m is TurnFrameMessage => m.type === 'turn');
}

describe('examples', () => {
  it('typecheck (tsc -p examples/tsconfig.json)', async () => {
    await run(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'examples/tsconfig.json'], { cwd: REPO });
  });

  it('agent-loop: a reply style per caller turn from the turn affect, turns as the CLI reports them', async () => {
    const agent = await run(
      path.join(REPO, 'node_modules', '.bin', 'tsx'),
      ['--tsconfig', 'examples/tsconfig.json', 'examples/agent/agent-loop.ts', WAV, '--json'],
      {
        cwd: REPO,
        env: ENV,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const decisions = agent.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Decision);
    expect(agent.stderr).toMatch(new RegExp(`agent: ${decisions.length} turns answered`));
    expect(decisions.length).toBeGreaterThanOrEqual(2);
    for (const d of decisions) {
      // The quadrant rule of the example, restated: negative valence + high arousal → de-escalate, etc.
      const near = Math.hypot(d.valence, d.arousal) < 0.15;
      const want = near ? 'neutral' : d.valence < 0 ? (d.arousal >= 0 ? 'de-escalate' : 'reassure') : d.arousal >= 0 ? 'match-energy' : 'relaxed';
      expect(d.style).toBe(want);
      expect(d.endMs).toBeGreaterThan(d.startMs);
      expect(d.latest).toBeDefined();
    }
    // The in-process loop sees the same turns as the CLI on the same file.
    const turns = await cliTurns(ENV);
    expect(decisions.length).toBe(turns.length);
    for (const [i, d] of decisions.entries()) {
      const t = turns[i]!;
      expect(d.startMs).toBe(t.startMs);
      expect(d.endMs).toBe(t.endMs);
      expect(d.valence).toBeCloseTo(t.mean.valence, 4);
      expect(d.arousal).toBeCloseTo(t.mean.arousal, 4);
      expect(d.label).toBe(t.label);
    }
  });

  it('agent-loop with CIRCUMPLEX_VOSK_MODEL (as the speech-only notice advises): each turn carries what the caller said, as the CLI reports it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-agent-asr-'));
    try {
      const vosk = buildTinyVoskModel(path.join(dir, 'vosk'));
      const env = { ...ENV, CIRCUMPLEX_VOSK_MODEL: vosk, CIRCUMPLEX_LOG_LEVEL: 'info' };
      const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');
      const agent = await run(tsx, ['--tsconfig', 'examples/tsconfig.json', 'examples/agent/agent-loop.ts', WAV, '--json'], {
        cwd: REPO,
        env,
        maxBuffer: 16 * 1024 * 1024,
      });
      // It used to say "speech-only … set CIRCUMPLEX_VOSK_MODEL=DIR to add them" with that variable set, and stay speech-only.
      expect(agent.stderr).not.toMatch(/speech-only/);
      const decisions = agent.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Decision & { transcript?: string });
      const turns = await cliTurns(env);
      expect(turns.length).toBeGreaterThanOrEqual(2);
      expect(decisions.map((d) => [d.startMs, d.endMs, d.transcript])).toEqual(turns.map((t) => [t.startMs, t.endMs, t.transcript]));
      expect(decisions.every((d) => typeof d.transcript === 'string' && d.transcript.length > 0)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
