/**
 * The microphone source with real child processes: the real sox failing for want of an audio
 * device, a missing recorder, and a stand-in recorder script (on PATH as `sox`) that streams PCM
 * and dies, to check data flow, the recoverable death and restart with backoff.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { checkRecorder, createMicSource, retryRecorder } from '../../streams/sources/mic.js';
import { AffectError } from '../../core/errors.js';
import { REPO_ROOT } from '../../core/config.js';
import { float32ToS16le } from '../../streams/audio.js';

const dir = mkdtempSync(path.join(tmpdir(), 'core-mic-'));
const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Puts a fake `sox` first on PATH that writes `seconds` of a ramp as s16le, then exits with `code`. */
function fakeSox(seconds: number, code: number): void {
  const bin = path.join(dir, `bin-${seconds}-${code}`);
  rmSync(bin, { recursive: true, force: true });
  const pcm = path.join(dir, `pcm-${seconds}.raw`);
  const n = Math.round(16000 * seconds);
  writeFileSync(pcm, float32ToS16le(Float32Array.from({ length: n }, (_, i) => ((i % 1000) - 500) / 1000)));
  mkdirSync(bin, { recursive: true });
  const script = path.join(bin, 'sox');
  writeFileSync(script, `#!/bin/sh\ncat '${pcm}'\necho "fake sox: device went away" >&2\nexit ${code}\n`);
  chmodSync(script, 0o755);
  process.env.PATH = `${bin}${path.delimiter}${savedPath ?? ''}`;
}

describe('microphone source', () => {
  it('a missing recorder is AFFECT_ERR_RECORDER with an install hint, not a crash', async () => {
    expect(() => checkRecorder('arecord', '/nonexistent')).toThrow(AffectError);
    const err = await firstValueFrom(createMicSource({ recorder: 'arecord', searchPath: '/nonexistent' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_RECORDER');
    expect((err as AffectError).recoverable).toBe(false);
    expect((err as AffectError).message).toMatch(/"arecord" recorder was not found on PATH/);
    expect((err as AffectError).hint).toMatch(/apt-get install alsa-utils/);
  });

  it('the real sox without an audio device stops before any audio: a fatal AFFECT_ERR_RECORDER that retryRecorder does not restart', async () => {
    const err = await firstValueFrom(createMicSource({ recorder: 'sox' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_RECORDER');
    expect((err as AffectError).recoverable).toBe(false);
    expect((err as AffectError).message).toMatch(/sox stopped before recording any audio \(exit code \d+\)/);
    expect((err as AffectError).hint).toMatch(/needs a working audio input device/);
    const restarts: number[] = [];
    const again = await firstValueFrom(
      createMicSource({ recorder: 'sox' }).pipe(retryRecorder({ initialDelayMs: 1, onRestart: (n) => restarts.push(n) })),
    ).catch((e: unknown) => e);
    expect((again as AffectError).recoverable).toBe(false);
    expect(restarts).toEqual([]);
  });

  it('serve --input mic without an audio device stops with a clear error and exit code 2 (it used to restart the recorder forever)', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn', CIRCUMPLEX_DEVICE: 'cpu' };
    delete env.CIRCUMPLEX_VOSK_MODEL;
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'circumplex.mjs'), 'serve', '--port', '0', '--input', 'mic'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(t);
    expect(code, err).toBe(2);
    expect(err).toMatch(/circumplex serve: --input mic cannot record; exiting: AFFECT_ERR_RECORDER: sox stopped before recording any audio/);
    expect(err).not.toMatch(/restarting/);
  });

  it('streams 16 kHz chunks from the recorder, then reports its death as recoverable', async () => {
    fakeSox(0.5, 3);
    const got: number[] = [];
    const err = await new Promise<unknown>((resolve) => {
      createMicSource({ streamId: 'm' }).subscribe({ next: (c) => got.push(c.samples.length), error: resolve, complete: () => resolve(undefined) });
    });
    expect(got.reduce((s, n) => s + n, 0)).toBe(8000);
    expect((err as AffectError).code).toBe('AFFECT_ERR_RECORDER');
    expect((err as AffectError).recoverable).toBe(true);
    expect((err as AffectError).message).toMatch(/exit code 3.*device went away/);
  });

  it('retryRecorder restarts a dead recorder with backoff and the audio clock keeps running', async () => {
    fakeSox(0.25, 1);
    const restarts: Array<[number, number]> = [];
    const chunks = await lastValueFrom(
      createMicSource({ streamId: 'm' }).pipe(
        retryRecorder({ initialDelayMs: 20, maxDelayMs: 40, onRestart: (attempt, _e, delayMs) => restarts.push([attempt, delayMs]) }),
        take(12),
        toArray(),
      ),
    );
    // Each run gives 4000 samples; across restarts startSample keeps increasing without overlap.
    let next = 0;
    for (const c of chunks) {
      expect(c.startSample).toBe(next);
      next += c.samples.length;
    }
    expect(next).toBeGreaterThan(4000);
    expect(restarts.length).toBeGreaterThanOrEqual(1);
    expect(restarts[0]).toEqual([1, 20]);
  });

  it('retryRecorder passes fatal errors (recorder missing) straight through', async () => {
    const err = await firstValueFrom(createMicSource({ recorder: 'rec', searchPath: '/nonexistent' }).pipe(retryRecorder({ initialDelayMs: 1 }))).catch(
      (e: unknown) => e,
    );
    expect((err as AffectError).code).toBe('AFFECT_ERR_RECORDER');
    expect((err as AffectError).recoverable).toBe(false);
  });
});
