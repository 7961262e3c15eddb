/**
 * `circumplex run --input x.flac` (the real CLI, real ONNX speech fixture): a FLAC made here with
 * sox from the shipped WAV gives exactly the frames of the WAV; a file that is neither WAV nor FLAC
 * fails fast with AFFECT_ERR_AUDIO_FORMAT and exit code 2.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverMessages } from '../helpers/json-lines.js';

const SPEECH = 'test/fixtures/audio/speech.wav';
const dir = mkdtempSync(path.join(tmpdir(), 'flac-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env['CIRCUMPLEX_VOSK_MODEL'];

function run(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/circumplex.mjs', 'run', ...args], { env, maxBuffer: 64 * 1024 * 1024, timeout: 90_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('run --input FLAC', () => {
  it('gives exactly the frames of the WAV the FLAC was made from', () => {
    const flac = path.join(dir, 'speech.flac');
    execFileSync('sox', ['-R', '-q', SPEECH, flac]);
    const a = run(['--input', SPEECH, '--json']);
    const b = run(['--input', flac, '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    // Every message (affect frames, and turns when voice activity detection is on) is the same.
    const ma = serverMessages(a.stdout);
    expect(ma.filter((m) => m.type === 'affect').length).toBeGreaterThan(70);
    expect(serverMessages(b.stdout)).toEqual(ma);
    expect(b.stderr).toMatch(/19\.14 s audio/);
  });

  it('a file that is neither WAV nor FLAC fails before models load, exit 2', () => {
    const ogg = path.join(dir, 'talk.flac');
    writeFileSync(ogg, Buffer.concat([Buffer.from('OggS'), Buffer.alloc(500)]));
    const r = run(['--input', ogg, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`AFFECT_ERR_AUDIO_FORMAT: ${ogg}: not a WAV or FLAC file (504 bytes, starts with "OggS")`);
    expect(r.stdout).toBe('');
  });
});
