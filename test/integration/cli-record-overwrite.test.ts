/**
 * `--record FILE` no longer wipes an earlier recording: rerunning the same `run` or `serve` command
 * line used to truncate the previous session's file without a word. An existing non-empty file is
 * AFFECT_ERR_CONFIG (naming the file and its size, before anything is opened); an empty one is
 * written; `--record-overwrite` replaces it. Real CLI child processes on real files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import { serverMessages } from '../helpers/json-lines.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const SPEECH = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn', CIRCUMPLEX_WARM_UP: 'off' };
delete env.CIRCUMPLEX_VOSK_MODEL;
delete env.CIRCUMPLEX_BACKPLANE;
const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-record-overwrite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 2 s of the speech fixture as raw s16le on stdin: a short run with a known stream line.
const pcm = readFileSync(SPEECH).subarray(44, 44 + 2 * 32000);
function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'run', '--input', '-', '--stream-id', 'take', ...args], { cwd: REPO_ROOT, env, input: pcm, timeout: 90_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('run --record with an existing file', () => {
  it('writes an empty file, refuses to replace the recording on a rerun (file untouched), and replaces it with --record-overwrite', () => {
    const rec = path.join(dir, 'session.jsonl');
    writeFileSync(rec, '');
    const first = run(['--record', rec]);
    expect(first.code, first.stderr).toBe(0);
    const recording = readFileSync(rec);
    expect(serverMessages(recording)[0]).toMatchObject({ type: 'stream', stream: { streamId: 'take' } });

    // The same command again: the earlier session's recording survives.
    const again = run(['--record', rec]);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toContain(`AFFECT_ERR_CONFIG: record file ${rec} already exists and is not empty (${recording.length} bytes)`);
    expect(again.stderr).toMatch(/hint: choose a new file name for --record, or pass --record-overwrite/);
    expect(again.stdout).toBe('');
    expect(readFileSync(rec).equals(recording)).toBe(true);

    // Asked for: replaced by the new session (another stream id, so the new content shows).
    writeFileSync(rec, 'not a recording\n'.repeat(50_000));
    const replaced = run(['--record', rec, '--record-overwrite', '--stream-id', 'retake']);
    expect(replaced.code, replaced.stderr).toBe(0);
    const lines = serverMessages(readFileSync(rec));
    expect(lines[0]).toMatchObject({ type: 'stream', stream: { streamId: 'retake' } });
    expect(lines.every((m) => !('streamId' in m) || m.streamId === 'retake')).toBe(true);
    expect(statSync(rec).size).toBeLessThan(50_000 * 16);
  });

  it('--record-overwrite without --record is a config error (it would do nothing)', () => {
    const r = run(['--record-overwrite']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('AFFECT_ERR_CONFIG: --record-overwrite only applies with --record FILE');
  });
});

describe('serve --record with an existing file', () => {
  it('refuses before listening and leaves the file as it was', async () => {
    const rec = path.join(dir, 'served.jsonl');
    writeFileSync(rec, '{"type":"stream"}\n');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', 'none', '--record', rec], {
      cwd: REPO_ROOT,
      env: { ...env, CIRCUMPLEX_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => (child.kill('SIGKILL'), resolve(null)), 30_000);
      child.once('exit', (c) => (clearTimeout(t), resolve(c)));
    });
    expect(code, err).toBe(2);
    expect(err).toContain(`AFFECT_ERR_CONFIG: record file ${rec} already exists and is not empty (18 bytes)`);
    expect(err).not.toMatch(/listening on/);
    expect(readFileSync(rec, 'utf8')).toBe('{"type":"stream"}\n');
  });
});
