/**
 * Issue 13 item 6 papercuts of `serve`'s network exposure:
 * - protected mode: bound to a non-loopback interface without tokens, `serve` refuses to start
 *   (before loading any model) unless --insecure is given; with tokens it starts;
 * - its startup line names the interface it actually bound (`--host 0.0.0.0` printed
 *   `ws://127.0.0.1:…`): the wildcard plus every interface it covers;
 * - --allowed-origins / CIRCUMPLEX_ALLOWED_ORIGINS entries are validated (an entry with a path or a
 *   trailing slash never matched a browser's Origin and silently refused every browser).
 * Real child processes and a real server on real sockets.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseOriginList, REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { AffectServer } from '../../src/server/ws-server.js';
import { isLoopbackHost } from '../../src/server/auth.js';
import { connect, silentLogger } from '../helpers/server-helpers.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn', CIRCUMPLEX_DEVICE: 'cpu' };
delete env.CIRCUMPLEX_TOKENS;
delete env.CIRCUMPLEX_TOKENS_FILE;
delete env.CIRCUMPLEX_ALLOWED_ORIGINS;
delete env.CIRCUMPLEX_VOSK_MODEL;

/** Starts `serve` and resolves with its startup line (then stops it), or with its exit when it refuses. */
function serveStartup(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ line?: string; code?: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', 'none', '--vad', 'off', ...args], {
    cwd: REPO_ROOT,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  return new Promise((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /circumplex serve: listening on [^\n]*/.exec(err);
      if (m) {
        child.kill('SIGTERM');
        resolve({ line: m[0], stderr: err, ms: Date.now() - t0 });
      }
    });
    child.once('exit', (code) => resolve({ code, stderr: err, ms: Date.now() - t0 }));
    setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
  });
}

describe('protected mode and the startup line', () => {
  it('serve --host 0.0.0.0 without tokens refuses to start, naming the host and the ways out, before loading any model', async () => {
    const r = await serveStartup(['--host', '0.0.0.0']);
    expect(r.line).toBeUndefined();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AFFECT_ERR_CONFIG: refusing to serve on 0\.0\.0\.0 without tokens/);
    expect(r.stderr).toMatch(/--insecure/);
    expect(r.stderr).toMatch(/CIRCUMPLEX_TOKENS/);
    // No model was loaded (the log level is warn, so the absence of the listening line and the exit code tell).
    expect(r.stderr).not.toMatch(/listening on/);
  });

  it('with --insecure it starts (warning), and the startup line names the wildcard it bound and the interfaces it covers', async () => {
    const r = await serveStartup(['--host', '0.0.0.0', '--insecure']);
    expect(r.line, r.stderr).toBeDefined();
    expect(r.line).toMatch(/listening on ws:\/\/0\.0\.0\.0:\d+\/v1\/stream \(all interfaces: ws:\/\/127\.0\.0\.1:\d+\/v1\/stream/);
    expect(r.stderr).toMatch(/WITHOUT tokens \(--insecure\)/);
  });

  it('with tokens it starts without --insecure; on loopback it names 127.0.0.1 as before', async () => {
    const withTokens = await serveStartup(['--host', '0.0.0.0'], { CIRCUMPLEX_TOKENS: 'a-long-token-123:subscribe' });
    expect(withTokens.line, withTokens.stderr).toMatch(/listening on ws:\/\/0\.0\.0\.0:\d+\/v1\/stream \(all interfaces: /);
    const loop = await serveStartup([]);
    expect(loop.line, loop.stderr).toMatch(/listening on ws:\/\/127\.0\.0\.1:\d+\/v1\/stream {2}\(dashboard/);
  });

  it('warns when the token file is readable by other users, naming the file and chmod 600; a private file starts quietly', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-tokens-'));
    const file = path.join(dir, 'tokens.json');
    writeFileSync(file, JSON.stringify([{ token: 'a-long-token-123', scopes: ['subscribe'] }]));
    try {
      chmodSync(file, 0o644);
      const loose = await serveStartup(['--tokens-file', file]);
      expect(loose.line, loose.stderr).toBeDefined();
      expect(loose.stderr).toContain(`token file ${file} is accessible to other users (mode 644)`);
      expect(loose.stderr).toContain(`chmod 600 ${file}`);
      chmodSync(file, 0o600);
      const tight = await serveStartup(['--tokens-file', file]);
      expect(tight.line, tight.stderr).toBeDefined();
      expect(tight.stderr).not.toContain('accessible to other users');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // replay's protected mode: test/integration/replay-loop.test.ts (it needs a real recording).

  it('AffectServer.start enforces it for embedders too, and an explicit insecure server binds and serves', async () => {
    await expect(AffectServer.start({ port: 0, host: '0.0.0.0', logger: silentLogger })).rejects.toMatchObject({ code: 'AFFECT_ERR_CONFIG' });
    const s = await AffectServer.start({ port: 0, host: '0.0.0.0', insecure: true, logger: silentLogger });
    try {
      expect(s.boundUrl).toBe(`ws://0.0.0.0:${s.port}/v1/stream`);
      expect(s.interfaceUrls).toContain(`ws://127.0.0.1:${s.port}/v1/stream`);
      const c = connect(s);
      await c.opened;
      await c.until((x) => x.of('hello').length === 1);
      c.ws.terminate();
    } finally {
      await s.close('test');
    }
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('allowed origins are validated', () => {
  it('accepts origins and *; refuses entries that can never match a browser Origin, naming the source and the origin meant', () => {
    expect(parseOriginList(' https://app.example.com, http://localhost:3000 ,*', '--allowed-origins')).toEqual([
      'https://app.example.com',
      'http://localhost:3000',
      '*',
    ]);
    for (const [bad, meant] of [
      ['https://app.example.com/', 'https://app.example.com'],
      ['https://app.example.com/dashboard', 'https://app.example.com'],
      ['HTTPS://App.Example.com', 'https://app.example.com'],
      ['https://app.example.com:443', 'https://app.example.com'],
      ['app.example.com', undefined],
      ['ftp://files.example.com', undefined],
      ['http://', undefined],
    ] as const) {
      let err: unknown;
      try {
        parseOriginList(`https://ok.example.com,${bad}`, '--allowed-origins');
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(AffectError);
      expect((err as AffectError).message).toContain(`--allowed-origins: "${bad}" is not a browser origin`);
      if (meant) expect((err as AffectError).message).toContain(`did you mean ${meant}?`);
    }
    expect(() => loadConfig({ CIRCUMPLEX_ALLOWED_ORIGINS: 'https://a.example.com/' })).toThrow(
      /CIRCUMPLEX_ALLOWED_ORIGINS: "https:\/\/a\.example\.com\/" is not a browser origin/,
    );
  });

  it('serve --allowed-origins with a bad entry stops before listening', async () => {
    const r = await serveStartup(['--allowed-origins', 'http://localhost:3000/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /AFFECT_ERR_CONFIG: --allowed-origins: "http:\/\/localhost:3000\/" is not a browser origin \(did you mean http:\/\/localhost:3000\?\)/,
    );
  });
});
