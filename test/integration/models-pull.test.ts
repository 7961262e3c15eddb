import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { downloadFile, progressBar, pullModel } from '../../models/download.js';
import { FIXTURES_DIR, VERIFIED_RECORD } from '../../models/files.js';
import { MODEL_SPECS, type ModelSpec } from '../../models/manifest.js';
import { loadSpeechModel } from '../../models/registry.js';
import { AffectError } from '../../core/errors.js';
import { main } from '../../src/cli.js';
import { verifyModels } from '../../src/commands/models.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';

const BODY = readFileSync(path.join(FIXTURES_DIR, 'speech-fixture.onnx'));
const SHA = createHash('sha256').update(BODY).digest('hex');

/** Per-test server behaviour: what to do with the n-th request. */
type Mode = 'ok' | 'drop-then-range' | 'drop-ignore-range' | 'drop-bad-range' | 'wrong-bytes' | 'stall-once' | 'redirect';
let mode: Mode = 'ok';
let requests: Array<{ url: string; range: string | undefined }> = [];
let server: http.Server;
let base = '';

beforeEach(async () => {
  requests = [];
  server = http.createServer((req, res) => {
    const n = requests.push({ url: req.url ?? '', range: req.headers.range }) - 1;
    if (mode === 'redirect' && req.url === '/old.onnx') {
      res.writeHead(302, { location: '/model.onnx' }).end();
      return;
    }
    if (mode === 'wrong-bytes') {
      const bad = Buffer.from(BODY);
      bad[100] = (bad[100] ?? 0) ^ 0xff;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
      return;
    }
    const half = Math.floor(BODY.length / 2);
    if ((mode === 'drop-then-range' || mode === 'drop-ignore-range' || mode === 'drop-bad-range') && n === 0) {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, half), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (mode === 'stall-once' && n === 0) {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 1000)); // then nothing: the idle timeout must fire
      return;
    }
    if (mode === 'drop-bad-range' && req.headers.range) {
      // a proxy that answers any Range with the whole file as a 206
      res.writeHead(206, { 'content-length': BODY.length, 'content-range': `bytes 0-${BODY.length - 1}/${BODY.length}` });
      res.end(BODY);
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && mode !== 'drop-ignore-range') {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-length': BODY.length - start, 'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}` });
      res.end(BODY.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'cx-pull-'));
}
const fast = { retryDelayMs: 10, idleTimeoutMs: 2000 };

function speechSpec(url: string, sha: string | null): ModelSpec {
  return {
    ...(MODEL_SPECS['speech-fixture'] as ModelSpec),
    id: 'pulled-speech',
    fixture: false,
    files: [{ path: 'speech-fixture.onnx', url, sha256: sha, sizeBytes: BODY.length }],
  };
}

/** An ASR model spec whose one file is a zip at `url` (unpacked by pull). */
function zipSpec(id: string, url: string, file: string, sha: string | null, size: number | null): ModelSpec {
  return {
    id,
    role: 'asr',
    description: 'test',
    fixture: false,
    source: url,
    license: 'test',
    inputs: [],
    outputs: [],
    files: [{ path: file, url, sha256: sha, sizeBytes: size, unpack: 'zip' }],
  };
}

describe('downloadFile', () => {
  it('downloads, verifies and reports progress', async () => {
    mode = 'ok';
    const dest = path.join(tmp(), 'm.onnx');
    const seen: number[] = [];
    const r = await downloadFile(`${base}/model.onnx`, dest, SHA, { ...fast, onProgress: (n) => seen.push(n) });
    expect(r).toMatchObject({ bytes: BODY.length, sha256: SHA, attempts: 1, resumed: 0 });
    expect(readFileSync(dest).equals(BODY)).toBe(true);
    expect(seen.at(-1)).toBe(BODY.length);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('progress in a log (not a TTY): a line every 10 %, or every 10 MB when the size is unknown, never a carriage return', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    const known = progressBar('m/model.onnx', stream);
    for (let n = 0; n <= 100; n++) known(n * 1e6, 100e6);
    expect(lines).toHaveLength(11);
    expect(lines[10]).toBe('m/model.onnx 100% (100.0 MB)\n');
    lines.length = 0;
    const unknown = progressBar('m/model.onnx', stream);
    for (let n = 1; n <= 250; n++) unknown(n * 1e5, null);
    expect(lines).toEqual(['m/model.onnx 10.0 MB (size unknown)\n', 'm/model.onnx 20.0 MB (size unknown)\n']);
    expect(lines.join('')).not.toContain('\r');
  });

  it('resumes with an HTTP Range request after a dropped connection', async () => {
    mode = 'drop-then-range';
    const dest = path.join(tmp(), 'm.onnx');
    const r = await downloadFile(`${base}/model.onnx`, dest, SHA, fast);
    expect(r.attempts).toBe(2);
    expect(r.resumed).toBe(1);
    expect(requests[1]?.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(requests[1]!.range!)![0])).toBeGreaterThan(0);
    expect(readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('starts over cleanly when the server ignores Range', async () => {
    mode = 'drop-ignore-range';
    const dest = path.join(tmp(), 'm.onnx');
    const r = await downloadFile(`${base}/model.onnx`, dest, SHA, fast);
    expect(r.resumed).toBe(0);
    expect(readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('a 206 that does not start where the partial file ends is not appended: the download starts over (no sha256 to catch it)', async () => {
    mode = 'drop-bad-range';
    const dest = path.join(tmp(), 'm.onnx');
    const r = await downloadFile(`${base}/model.onnx`, dest, null, fast);
    expect(readFileSync(dest).length).toBe(BODY.length);
    expect(r.sha256).toBe(SHA);
    expect(requests.map((q) => q.range)).toEqual([undefined, `bytes=${Math.floor(BODY.length / 2)}-`, undefined]);
  });

  it('times out a stalled transfer and retries', async () => {
    mode = 'stall-once';
    const dest = path.join(tmp(), 'm.onnx');
    const r = await downloadFile(`${base}/model.onnx`, dest, SHA, { ...fast, idleTimeoutMs: 300 });
    expect(r.attempts).toBe(2);
    expect(readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('a second download of the same file while one runs is refused, not written into the same .part; a lock left by a dead process is taken over', async () => {
    const slow = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      let p = 0;
      const tick = (): void => {
        if (p >= BODY.length) return void res.end();
        res.write(BODY.subarray(p, (p += 8000)));
        setTimeout(tick, 20);
      };
      tick();
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/model.onnx`;
      const dest = path.join(tmp(), 'm.onnx');
      const first = downloadFile(url, dest, null, fast);
      await new Promise((r) => setTimeout(r, 50));
      const err = (await downloadFile(url, dest, null, fast).catch((e: unknown) => e)) as AffectError;
      expect(err).toBeInstanceOf(AffectError);
      expect(err.code).toBe('AFFECT_ERR_DOWNLOAD');
      expect(err.message).toContain(`another pull (pid ${process.pid} on ${os.hostname()}) is downloading ${dest}`);
      const r = await first;
      expect(r.sha256).toBe(SHA);
      expect(readFileSync(dest).equals(BODY)).toBe(true);
      expect(readdirSync(path.dirname(dest))).toEqual(['m.onnx']);
      // a pull killed mid-download (Ctrl-C) leaves its lock: the next pull takes it over
      const { spawnSync } = await import('node:child_process');
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      const dest2 = path.join(tmp(), 'm.onnx');
      writeFileSync(`${dest2}.part.lock`, `${dead} ${os.hostname()}\n`);
      expect((await downloadFile(url, dest2, SHA, fast)).sha256).toBe(SHA);
      expect(readdirSync(path.dirname(dest2))).toEqual(['m.onnx']);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  it('a file that cannot be written (disk full, a folder in the way) fails at once and closes the connection, not after the idle timeout', async () => {
    let closed = false;
    const endless = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1e9 });
      const timer = setInterval(() => res.write(Buffer.alloc(8192)), 10);
      res.on('close', () => {
        clearInterval(timer);
        closed = true;
      });
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    try {
      const dest = path.join(tmp(), 'm.onnx');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(`${dest}.part`); // what a write error looks like without a full disk: EISDIR
      const url = `http://127.0.0.1:${(endless.address() as AddressInfo).port}/m.onnx`;
      const err = (await downloadFile(url, dest, null, { ...fast, idleTimeoutMs: 20_000 }).catch((e: unknown) => e)) as AffectError;
      expect(err.code).toBe('AFFECT_ERR_DOWNLOAD');
      expect(err.message).toContain(`cannot write ${dest}.part`);
      await vi.waitFor(() => expect(closed).toBe(true), { timeout: 2000 });
    } finally {
      endless.closeAllConnections();
      await new Promise<void>((r) => endless.close(() => r()));
    }
  });

  it('follows redirects', async () => {
    mode = 'redirect';
    const dest = path.join(tmp(), 'm.onnx');
    await downloadFile(`${base}/old.onnx`, dest, SHA, fast);
    expect(requests.map((q) => q.url)).toEqual(['/old.onnx', '/model.onnx']);
  });

  it('bad checksum → one clean retry, then AFFECT_ERR_MODEL_CHECKSUM and nothing left behind', async () => {
    mode = 'wrong-bytes';
    const dest = path.join(tmp(), 'm.onnx');
    const err = (await downloadFile(`${base}/model.onnx`, dest, SHA, fast).catch((e: unknown) => e)) as AffectError;
    expect(err).toBeInstanceOf(AffectError);
    expect(err.code).toBe('AFFECT_ERR_MODEL_CHECKSUM');
    expect(err.message).toContain(SHA);
    expect(requests).toHaveLength(2);
    expect(existsSync(dest) || existsSync(`${dest}.part`)).toBe(false);
  });

  it('offline → AFFECT_ERR_DOWNLOAD saying where to put the file', async () => {
    const dest = path.join(tmp(), 'm.onnx');
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = (await downloadFile(`http://127.0.0.1:${port}/x.onnx`, dest, SHA, { ...fast, attempts: 2 }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_DOWNLOAD');
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.hint).toContain(dest);
  });
});

describe('pullModel', () => {
  it('pulls into <modelsDir>/<id>/ and the model then loads and runs', async () => {
    mode = 'ok';
    const dir = tmp();
    const spec = speechSpec(`${base}/model.onnx`, SHA);
    const progress = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let text = '';
    (progress as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    const files = await pullModel(spec, { ...fast, modelsDir: dir, progress });
    expect(files[0]).toMatchObject({ status: 'downloaded', verified: true, path: path.join(dir, 'pulled-speech', 'speech-fixture.onnx') });
    expect(text).toContain('100%');
    const again = await pullModel(spec, { ...fast, modelsDir: dir, progress: null });
    expect(again[0]?.status).toBe('present');
    const m = await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: pino({ level: 'silent' }) });
    expect(Number.isFinite((await m.infer(new Float32Array(16000).fill(0.1))).arousal)).toBe(true);
    await m.close();
  });

  it('unknown sha256 needs --accept-unverified, then records the hash and checks it on load', async () => {
    mode = 'ok';
    const dir = tmp();
    const spec = speechSpec(`${base}/model.onnx`, null);
    await expect(pullModel(spec, { ...fast, modelsDir: dir })).rejects.toMatchObject({
      code: 'AFFECT_ERR_DOWNLOAD',
      hint: expect.stringContaining('--accept-unverified'),
    });
    const files = await pullModel(spec, { ...fast, modelsDir: dir, acceptUnverified: true, progress: null });
    expect(files[0]).toMatchObject({ verified: false, sha256: SHA });
    const rec = JSON.parse(readFileSync(path.join(dir, 'pulled-speech', VERIFIED_RECORD), 'utf8')) as Record<string, { sha256: string }>;
    expect(rec['speech-fixture.onnx']?.sha256).toBe(SHA);
    // tampering after the pull is caught at load time against the recorded hash
    const f = path.join(dir, 'pulled-speech', 'speech-fixture.onnx');
    const bytes = readFileSync(f);
    bytes[200] = (bytes[200] ?? 0) ^ 1;
    writeFileSync(f, bytes);
    await expect(loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'AFFECT_ERR_MODEL_CHECKSUM',
    });
    // pulling again replaces the changed file (it was reported present: the recorded hash was not consulted)
    const [again] = await pullModel(spec, { ...fast, modelsDir: dir, acceptUnverified: true, progress: null });
    expect(again).toMatchObject({ status: 'downloaded', sha256: SHA });
    expect(readFileSync(f).equals(BODY)).toBe(true);
    writeFileSync(f, bytes);
    // a damaged record does not turn the check off (the changed file used to pass as merely "unverified")
    const record = path.join(dir, 'pulled-speech', VERIFIED_RECORD);
    for (const damaged of ['{"speech-fixture.onnx": {', '[]', '{"speech-fixture.onnx": {"sha256": "abc"}}']) {
      writeFileSync(record, damaged);
      const err = (await loadSpeechModel(spec, { device: 'cpu', modelsDir: dir, logger: pino({ level: 'silent' }) }).catch((e: unknown) => e)) as AffectError;
      expect(err.code, damaged).toBe('AFFECT_ERR_MODEL_CHECKSUM');
      expect(err.message).toContain(`${record} (the sha256s recorded by models pull --accept-unverified) cannot be read`);
      expect(err.hint).toContain('pull the model again with --accept-unverified');
    }
  });

  it('unpacks a zip model (like the Vosk model) into a folder named after the archive', async () => {
    // a zip made by Python's zipfile (always installed alongside the repo's tooling)
    const src = tmp();
    const inner = path.join(src, 'vosk-model-test');
    const zipPath = path.join(src, 'vosk-model-test.zip');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(inner, 'am'), { recursive: true });
    writeFileSync(path.join(inner, 'am', 'final.mdl'), 'not really a model');
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync('python3', ['-m', 'zipfile', '-c', zipPath, 'vosk-model-test'], { cwd: src }).status).toBe(0);
    const zipBytes = readFileSync(zipPath);
    const zipServer = http.createServer((_req, res) => res.writeHead(200, { 'content-length': zipBytes.length }).end(zipBytes));
    await new Promise<void>((r) => zipServer.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(zipServer.address() as AddressInfo).port}/vosk-model-test.zip`;
      const spec = zipSpec('vosk-test', url, 'vosk-model-test.zip', createHash('sha256').update(zipBytes).digest('hex'), zipBytes.length);
      const dir = tmp();
      // what an unpack killed by Ctrl-C left (a process that is gone), and one still running (this one)
      const { spawnSync } = await import('node:child_process');
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      mkdirSync(path.join(dir, 'vosk-test', `.unpack-${dead}-abc`, 'vosk-model-test'), { recursive: true });
      mkdirSync(path.join(dir, 'vosk-test', `.unpack-${process.pid}-abc`));
      const [f] = await pullModel(spec, { ...fast, modelsDir: dir, progress: null });
      expect(f?.unpackedTo).toBe(path.join(dir, 'vosk-test', 'vosk-model-test'));
      expect(readFileSync(path.join(f!.unpackedTo!, 'am', 'final.mdl'), 'utf8')).toBe('not really a model');
      expect(readdirSync(path.join(dir, 'vosk-test')).sort()).toEqual([`.unpack-${process.pid}-abc`, 'vosk-model-test', 'vosk-model-test.zip']);
    } finally {
      await new Promise<void>((r) => zipServer.close(() => r()));
    }
  });

  it('refuses an archive with an entry outside its folder, a symbolic link or a zip-bomb ratio, before unpacking anything', async () => {
    const { spawnSync } = await import('node:child_process');
    const src = tmp();
    const victim = path.join(src, 'victim.txt');
    writeFileSync(victim, 'original');
    // Python's zipfile writes the archives; each case is [archive, what the refusal says]
    const py = `
import sys, zipfile, stat
src, victim = sys.argv[1], sys.argv[2]
def mk(name, entries):
    with zipfile.ZipFile(f'{src}/{name}.zip', 'w', zipfile.ZIP_DEFLATED) as z:
        for e in entries:
            if e[0] == 'link':
                i = zipfile.ZipInfo(e[1]); i.create_system = 3; i.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(i, e[2])
            else:
                z.writestr(e[1], e[2])
# unzip makes the link and warns about /abs.txt (exit 1); Python's zipfile then wrote through the link
mk('link', [('f', 'link/ok.txt', 'ok'), ('link', 'link/am', victim), ('f', '/abs.txt', 'x')])
mk('dotdot', [('f', 'dotdot/ok.txt', 'ok'), ('f', 'dotdot/../../escaped.txt', 'x')])
mk('bomb', [('f', 'bomb/zeros', bytes(120_000_000))])
`;
    expect(spawnSync('python3', ['-c', py, src, victim]).status).toBe(0);
    const cases: Array<[string, string]> = [
      ['link', 'entry "link/am" is a symbolic link'],
      ['dotdot', 'entry "dotdot/../../escaped.txt" points outside'],
      ['bomb', 'a zip bomb?'],
    ];
    const zipServer = http.createServer((req, res) => {
      const bytes = readFileSync(path.join(src, path.basename(req.url ?? '')));
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    });
    await new Promise<void>((r) => zipServer.listen(0, '127.0.0.1', r));
    try {
      for (const [name, says] of cases) {
        const url = `http://127.0.0.1:${(zipServer.address() as AddressInfo).port}/${name}.zip`;
        const spec = zipSpec('vosk-evil', url, `${name}.zip`, null, null);
        const dir = tmp();
        const err = (await pullModel(spec, { ...fast, modelsDir: dir, progress: null, acceptUnverified: true }).catch((e: unknown) => e)) as AffectError;
        expect(err, name).toBeInstanceOf(AffectError);
        expect(err.code).toBe('AFFECT_ERR_DOWNLOAD');
        expect(err.message).toContain(says);
        // nothing unpacked: only the archive and its recorded hash are in the model folder
        expect(readdirSync(path.join(dir, 'vosk-evil')).sort(), name).toEqual([VERIFIED_RECORD, `${name}.zip`].sort());
      }
      expect(readFileSync(victim, 'utf8')).toBe('original');
      expect(existsSync(path.join(src, 'escaped.txt'))).toBe(false);
    } finally {
      await new Promise<void>((r) => zipServer.close(() => r()));
    }
  });

  it('a failed pull leaves no empty folder behind (issue 13 item 6): offline, or a bad checksum, in a models dir it had to create', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const parent = tmp();
    const modelsDir = path.join(parent, 'models', 'weights');
    const offline = await pullModel(speechSpec(`http://127.0.0.1:${port}/x.onnx`, SHA), { ...fast, attempts: 1, modelsDir, progress: null }).catch(
      (e: unknown) => e,
    );
    expect((offline as AffectError).code).toBe('AFFECT_ERR_DOWNLOAD');
    // Neither <modelsDir>/pulled-speech nor the models dir it created is left (the parent was there before).
    expect(readdirSync(parent)).toEqual([]);
    mode = 'wrong-bytes';
    const bad = await pullModel(speechSpec(`${base}/model.onnx`, SHA), { ...fast, modelsDir, progress: null }).catch((e: unknown) => e);
    expect((bad as AffectError).code).toBe('AFFECT_ERR_MODEL_CHECKSUM');
    expect(readdirSync(parent)).toEqual([]);
    // A models dir that existed before the pull is kept (only what the pull made goes).
    const existing = tmp();
    await pullModel(speechSpec(`http://127.0.0.1:${port}/x.onnx`, SHA), { ...fast, attempts: 1, modelsDir: existing, progress: null }).catch(() => undefined);
    expect(existsSync(existing)).toBe(true);
    expect(readdirSync(existing)).toEqual([]);
  });

  it('a models dir that cannot be made (a file in the way) is AFFECT_ERR_DOWNLOAD naming the folder, not a raw ENOTDIR stack trace', async () => {
    const file = path.join(tmp(), 'not-a-folder');
    writeFileSync(file, 'x');
    const err = await pullModel(speechSpec(`${base}/model.onnx`, SHA), { ...fast, modelsDir: file, progress: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect(err).toMatchObject({
      code: 'AFFECT_ERR_DOWNLOAD',
      message: expect.stringContaining(`cannot create the folder ${path.join(file, 'pulled-speech')}`),
    });
    // A file where a model's sub-folder goes (onnx/ of a nested file path).
    const dir = tmp();
    writeFileSync(path.join(dir, 'sub'), 'x');
    const nested = await downloadFile(`${base}/model.onnx`, path.join(dir, 'sub', 'model.onnx'), SHA, fast).catch((e: unknown) => e);
    expect(nested).toMatchObject({ code: 'AFFECT_ERR_DOWNLOAD', hint: expect.stringContaining('--models-dir') });
    expect(requests).toEqual([]);
    // Through the CLI: exit 2 and the message, no stack trace.
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    let errs: string;
    try {
      code = await main(['node', 'circumplex', 'models', 'pull', 'minilm-l6', '--accept-unverified', '--models-dir', file, '--attempts', '1']);
      errs = stderr.mock.calls.map((c) => String(c[0])).join('');
    } finally {
      stderr.mockRestore();
    }
    expect(code).toBe(2);
    expect(errs).toMatch(/^circumplex: AFFECT_ERR_DOWNLOAD: cannot create the folder .*not-a-folder\/minilm-l6: ENOTDIR/);
    expect(errs).not.toMatch(/\n\s+at /);
  });

  it('a bundled model (committed in models/<id>/) is reported present and verified, not "no download URL: export it yourself"', async () => {
    const va = MODEL_SPECS['speech-va'] as ModelSpec;
    const [f] = await pullModel(va, { ...fast, modelsDir: tmp(), progress: null });
    expect(f).toMatchObject({ file: 'model.onnx', status: 'present', verified: true, sha256: va.files[0]?.sha256 });
    // its files gone (no models/<id>/ for this id): the hint is to restore them from git
    const err = (await pullModel({ ...va, id: 'bundled-gone' }, { ...fast, progress: null }).catch((e: unknown) => e)) as AffectError;
    expect(err.code).toBe('AFFECT_ERR_MODEL_MISSING');
    expect(err.hint).toContain('git checkout -- ');
  });

  it('fixtures and URL-less models explain what to do instead', async () => {
    await expect(pullModel(MODEL_SPECS['speech-fixture'] as ModelSpec)).rejects.toMatchObject({ hint: expect.stringContaining('npm run models:fixtures') });
    await expect(pullModel(MODEL_SPECS['wav2vec2-msp-dim'] as ModelSpec, { modelsDir: tmp() })).rejects.toMatchObject({
      code: 'AFFECT_ERR_DOWNLOAD',
      hint: expect.stringContaining('docs/models.md'),
    });
  });
});

describe('circumplex models verify (CLI)', () => {
  it('exits 0 for the committed fixtures and 2 with a named missing model', async () => {
    expect(await main(['node', 'circumplex', 'models', 'verify', 'speech-fixture', 'fusion-fixture'])).toBe(0);
    expect(await main(['node', 'circumplex', 'models', 'verify', 'minilm-l6', '--models-dir', tmp()])).toBe(2);
  });

  it('checks the unpacked Vosk folder of a present ASR model with checkVoskModelDir', async () => {
    const dir = tmp();
    const root = path.join(dir, 'vosk-small-en');
    const { mkdirSync, rmSync } = await import('node:fs');
    mkdirSync(root, { recursive: true });
    // The archive as `models pull` leaves it (its bytes do not matter: the manifest has no sha256), and the folder it unpacked into.
    writeFileSync(path.join(root, 'vosk-model-small-en-us-0.15.zip'), 'zip bytes');
    const unpacked = buildTinyVoskModel(path.join(root, 'vosk-model-small-en-us-0.15'));
    const [ok] = await verifyModels(['vosk-small-en'], dir);
    expect(ok?.layouts).toEqual([{ dir: unpacked, ok: true }]);
    expect(await main(['node', 'circumplex', 'models', 'verify', 'vosk-small-en', '--models-dir', dir])).toBe(0);
    // Also found without naming it (every present model is verified).
    expect((await verifyModels([], dir)).find((r) => r.id === 'vosk-small-en')?.layouts).toHaveLength(1);

    rmSync(path.join(unpacked, 'am', 'final.mdl'));
    const [bad] = await verifyModels(['vosk-small-en'], dir);
    expect(bad?.layouts[0]).toMatchObject({ dir: unpacked, ok: false, code: 'AFFECT_ERR_ASR_MODEL', message: expect.stringContaining('am/final.mdl') });
    expect(await main(['node', 'circumplex', 'models', 'verify', 'vosk-small-en', '--models-dir', dir])).toBe(2);
  });
});
