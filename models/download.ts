/**
 * Model downloads for `circumplex models pull`: HTTP(S) with redirects, an idle timeout, resume
 * through HTTP Range after a dropped connection (or a clean retry when the server ignores Range),
 * a progress bar on stderr, and a sha256 check before the file is moved into place. Offline, the
 * error says where to put the files by hand.
 */
import {
  closeSync,
  createWriteStream,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AffectError } from '../core/errors.js';
import { assertModelFiles, expectedSha, modelFilePath, modelRoot, sha256File, writeVerifiedRecord } from './files.js';
import type { ModelFile, ModelSpec } from './manifest.js';

/** Download options. */
export interface DownloadOptions {
  /** Abort an attempt when no bytes arrive for this long (ms). Default 30000. */
  idleTimeoutMs: number;
  /** Attempts per file (resuming where possible). Default 4. */
  attempts: number;
  /** Pause between attempts (ms), doubled each time. Default 500. */
  retryDelayMs: number;
  /** Called with bytes so far and the total (null when unknown). */
  onProgress?: (received: number, total: number | null) => void;
}

/** Defaults for {@link DownloadOptions}. */
export const DEFAULT_DOWNLOAD: DownloadOptions = { idleTimeoutMs: 30_000, attempts: 4, retryDelayMs: 500 };

/** What one download did. */
export interface DownloadResult {
  readonly bytes: number;
  readonly sha256: string;
  /** Attempts used (1 = no retry). */
  readonly attempts: number;
  /** Attempts that resumed with a Range request. */
  readonly resumed: number;
}

class RetryableError extends Error {}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/** One HTTP GET attempt appending to `part` from `offset`; follows up to 5 redirects. */
function attempt(url: string, part: string, offset: number, opts: DownloadOptions, redirects = 0): Promise<{ total: number | null; resumed: boolean }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!lib) {
      reject(new AffectError('AFFECT_ERR_DOWNLOAD', `unsupported URL ${url}`, { hint: 'use an http(s) URL in the manifest' }));
      return;
    }
    const headers: Record<string, string> = { 'user-agent': 'circumplex-models-pull' };
    if (offset > 0) headers['range'] = `bytes=${offset}-`;
    const req = lib.get(u, { headers }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= 5) {
          reject(new AffectError('AFFECT_ERR_DOWNLOAD', `too many redirects from ${url}`));
          return;
        }
        attempt(new URL(res.headers.location, u).href, part, offset, opts, redirects + 1).then(resolve, reject);
        return;
      }
      if (status === 416 && offset > 0) {
        // our partial file is already complete (or bigger than the resource): start over cleanly
        res.resume();
        rmSync(part, { force: true });
        reject(new RetryableError('range not satisfiable; restarting'));
        return;
      }
      if (status !== 200 && status !== 206) {
        res.resume();
        const retry = status >= 500 || status === 429;
        const err = retry
          ? new RetryableError(`HTTP ${status}`)
          : new AffectError('AFFECT_ERR_DOWNLOAD', `${url} answered HTTP ${status}`, {
              hint: 'check the URL in models/manifest.ts, or download the file by hand',
            });
        reject(err);
        return;
      }
      // a 206 must start where the partial file ends: appending a body that starts elsewhere (a proxy
      // answering every Range with bytes 0-) made a file with a stretch twice, which only a known sha256 caught
      const rangeStart = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
      if (status === 206 && offset > 0 && Number(rangeStart) !== offset) {
        res.resume();
        rmSync(part, { force: true });
        reject(new RetryableError(`asked for bytes ${offset}- but the server sent ${res.headers['content-range'] ?? 'no Content-Range'}; restarting`));
        return;
      }
      // 200 to a Range request: the server ignored it, so the body starts at byte 0 (clean retry)
      const resumed = status === 206;
      const start = resumed ? offset : 0;
      const len = Number(res.headers['content-length']);
      const total = Number.isFinite(len) ? start + len : null;
      const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
      let received = start;
      const idle = (): void => {
        req.destroy(new RetryableError(`no data for ${opts.idleTimeoutMs} ms`));
      };
      let timer = setTimeout(idle, opts.idleTimeoutMs);
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        clearTimeout(timer);
        timer = setTimeout(idle, opts.idleTimeoutMs);
        opts.onProgress?.(received, total);
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        out.end(() => reject(new RetryableError(err.message)));
      });
      res.on('aborted', () => {
        clearTimeout(timer);
      });
      res.pipe(out);
      out.on('finish', () => {
        clearTimeout(timer);
        if (total !== null && received < total) reject(new RetryableError(`connection dropped at ${received} of ${total} bytes`));
        else resolve({ total, resumed });
      });
      out.on('error', (err) => {
        clearTimeout(timer);
        reject(
          new AffectError('AFFECT_ERR_DOWNLOAD', `cannot write ${part}: ${err.message}`, {
            hint: `check free disk space and permissions of the models folder (what was written is kept in ${part} so the next pull resumes; delete it to free its space)`,
          }),
        );
        // close the connection: left open, the paused response kept the process alive until the idle timeout
        req.destroy();
      });
    });
    req.setTimeout(opts.idleTimeoutMs, () => req.destroy(new RetryableError(`no response for ${opts.idleTimeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof RetryableError || err instanceof AffectError) reject(err);
      else if (err.code && NETWORK_CODES.has(err.code)) reject(Object.assign(new RetryableError(`${err.code}: ${err.message}`), { network: err.code }));
      else reject(new RetryableError(err.message));
    });
  });
}

/**
 * `mkdir -p dir`, returning the first folder it created; a folder that cannot be made (a file in the
 * way, no permission) is an AffectError naming it, not a raw ENOTDIR/EACCES stack trace.
 */
function makeDir(dir: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new AffectError('AFFECT_ERR_DOWNLOAD', `cannot create the folder ${dir}: ${(err as Error).message}`, {
      cause: err,
      hint: 'give --models-dir (or CIRCUMPLEX_MODELS_DIR) a folder you can write to; a file of the same name must not be in the way',
    });
  }
}

/** Whether process `pid` on this machine is still running. */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims `dest.part` for this process with `dest.part.lock` (pid and host), so two pulls of the same
 * file cannot write into one partial file (the second truncated it under the first, which then
 * hashed a file with a hole in it). A lock left by a process that is gone (Ctrl-C, kill) is taken
 * over. Returns the release function.
 */
function lockPart(part: string, dest: string): () => void {
  const lock = `${part}.lock`;
  for (let n = 0; ; n++) {
    try {
      writeFileSync(lock, `${process.pid} ${os.hostname()}\n`, { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new AffectError('AFFECT_ERR_DOWNLOAD', `cannot write ${lock}: ${(err as Error).message}`, {
          hint: 'check free disk space and permissions of the models folder',
        });
      }
    }
    let owner = '';
    try {
      owner = readFileSync(lock, 'utf8').trim();
    } catch {
      // removed in between: try again
    }
    const [pid, host] = owner.split(' ');
    if (n === 0 && (owner === '' || (host === os.hostname() && !processAlive(Number(pid))))) {
      rmSync(lock, { force: true });
      continue;
    }
    throw new AffectError('AFFECT_ERR_DOWNLOAD', `another pull (pid ${pid ?? '?'} on ${host ?? '?'}) is downloading ${dest}`, {
      hint: `wait for it to finish (then this pull finds the file present); if no pull is running, delete ${lock}`,
    });
  }
}

/**
 * Downloads `url` to `dest` via `dest.part`, resuming after drops, and checks `expectedSha` (if
 * given) before renaming into place. A checksum mismatch deletes the partial file and retries once
 * from scratch, then fails with AFFECT_ERR_MODEL_CHECKSUM. A second download of the same `dest`
 * while one runs fails with AFFECT_ERR_DOWNLOAD ({@link lockPart}).
 */
export async function downloadFile(url: string, dest: string, expectedSha: string | null, options: Partial<DownloadOptions> = {}): Promise<DownloadResult> {
  const opts = { ...DEFAULT_DOWNLOAD, ...options };
  if (!(opts.idleTimeoutMs > 0)) throw new RangeError(`downloadFile: idleTimeoutMs must be > 0, got ${opts.idleTimeoutMs}`);
  if (!Number.isInteger(opts.attempts) || opts.attempts < 1) throw new RangeError(`downloadFile: attempts must be an integer >= 1, got ${opts.attempts}`);
  makeDir(path.dirname(dest));
  const part = `${dest}.part`;
  const unlock = lockPart(part, dest);
  try {
    return await downloadLocked(url, dest, part, expectedSha, opts);
  } finally {
    unlock();
  }
}

async function downloadLocked(url: string, dest: string, part: string, expectedSha: string | null, opts: DownloadOptions): Promise<DownloadResult> {
  let resumed = 0;
  let checksumRetries = 0;
  let lastError: Error | undefined;
  for (let n = 1; n <= opts.attempts; n++) {
    const offset = existsSync(part) ? statSync(part).size : 0;
    try {
      const r = await attempt(url, part, offset, opts);
      if (r.resumed) resumed += 1;
      const sha = await sha256File(part);
      if (expectedSha && sha !== expectedSha) {
        rmSync(part, { force: true });
        if (checksumRetries++ < 1 && n < opts.attempts) continue; // one clean retry
        throw new AffectError('AFFECT_ERR_MODEL_CHECKSUM', `downloaded ${url} has sha256 ${sha}, expected ${expectedSha}`, {
          hint: `the server sent a different file: check the manifest entry, or download it by hand to ${dest}`,
        });
      }
      renameSync(part, dest);
      return { bytes: statSync(dest).size, sha256: sha, attempts: n, resumed };
    } catch (err) {
      if (err instanceof AffectError) throw err;
      lastError = err as Error;
      if (n < opts.attempts) await new Promise((r) => setTimeout(r, opts.retryDelayMs * 2 ** (n - 1)));
    }
  }
  const network = (lastError as { network?: string } | undefined)?.network;
  throw new AffectError(
    'AFFECT_ERR_DOWNLOAD',
    `could not download ${url} after ${opts.attempts} attempts: ${lastError?.message ?? 'unknown error'}${network ? ' (no network?)' : ''}`,
    { cause: lastError, hint: `offline? fetch ${url} on a machine with internet and put it at ${dest}` },
  );
}

/** Without a Content-Length, a log (not a TTY) gets a line per this many bytes. */
export const PROGRESS_STEP_BYTES = 10e6;

/**
 * A text progress bar for stderr: redraws in place on a TTY, prints every 10% otherwise (a line
 * per {@link PROGRESS_STEP_BYTES} when the server sends no length: a long download is never silent).
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): (received: number, total: number | null) => void {
  let lastDecile = -1;
  let lastStep = 0;
  let lastDraw = 0;
  return (received, total) => {
    const mb = (received / 1e6).toFixed(1);
    if (stream.isTTY) {
      const now = Date.now();
      if (now - lastDraw < 100 && (total === null || received < total)) return;
      lastDraw = now;
      if (total) {
        const frac = Math.min(1, received / total);
        const width = 30;
        const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
        stream.write(`\r${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb}/${(total / 1e6).toFixed(1)} MB`);
        if (received >= total) stream.write('\n');
      } else {
        stream.write(`\r${label} ${mb} MB`);
      }
      return;
    }
    if (!total) {
      const step = Math.floor(received / PROGRESS_STEP_BYTES);
      if (step > lastStep) {
        lastStep = step;
        stream.write(`${label} ${mb} MB (size unknown)\n`);
      }
      return;
    }
    const decile = Math.floor((received / total) * 10);
    if (decile !== lastDecile) {
      lastDecile = decile;
      stream.write(`${label} ${decile * 10}% (${mb} MB)\n`);
    }
  };
}

/** Options for {@link pullModel}. */
export interface PullOptions extends Partial<DownloadOptions> {
  modelsDir?: string;
  /** Download files with no known sha256 and record the hash seen. Default false. */
  acceptUnverified?: boolean;
  /** Re-download files that are already present and verified. Default false. */
  force?: boolean;
  /** Where progress goes (null: nowhere). Default process.stderr. */
  progress?: NodeJS.WriteStream | null;
}

/** What `pull` did for one file. */
export interface PulledFile {
  readonly file: string;
  readonly path: string;
  readonly status: 'downloaded' | 'present';
  readonly sha256: string;
  readonly verified: boolean;
  /** For archives: the folder it unpacked into (e.g. the Vosk model folder to pass to --asr-model). */
  readonly unpackedTo?: string;
}

/** Most a zip may unpack to, as a multiple of its own size: more is refused as a zip bomb before anything is unpacked. */
export const MAX_UNPACK_RATIO = 100;

/** One entry of a zip's central directory. */
interface ZipEntry {
  readonly name: string;
  readonly sizeBytes: number;
  readonly symlink: boolean;
}

/** Reads a zip's central directory (ZIP64 included) without unpacking anything. */
function zipEntries(zip: string): ZipEntry[] {
  const bad = (what: string): AffectError =>
    new AffectError('AFFECT_ERR_DOWNLOAD', `${zip} is not a readable zip archive: ${what}`, {
      hint: 'delete it and pull again; if it persists the URL in models/manifest.ts serves something else',
    });
  const fd = openSync(zip, 'r');
  try {
    const size = fstatSync(fd).size;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      if (pos < 0 || pos + len > size || readSync(fd, b, 0, len, pos) !== len) throw bad('it ends early');
      return b;
    };
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = read(size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw bad('no end of central directory record');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locator = read(size - tailLen + eocd - 20, 20);
      if (locator.readUInt32LE(0) !== 0x07064b50) throw bad('no ZIP64 locator');
      const z64 = read(Number(locator.readBigUInt64LE(8)), 56);
      if (z64.readUInt32LE(0) !== 0x06064b50) throw bad('no ZIP64 end of central directory');
      count = Number(z64.readBigUInt64LE(32));
      cdSize = Number(z64.readBigUInt64LE(40));
      cdOffset = Number(z64.readBigUInt64LE(48));
    }
    const cd = read(cdOffset, cdSize);
    const out: ZipEntry[] = [];
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw bad(`central directory entry ${n + 1} is damaged`);
      const madeBy = cd.readUInt16LE(p + 4) >> 8;
      let sizeBytes = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const mode = cd.readUInt32LE(p + 38) >>> 16;
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      if (sizeBytes === 0xffffffff) {
        // the real size is the first field of the ZIP64 extra block (id 1)
        for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
          const id = cd.readUInt16LE(e);
          const len = cd.readUInt16LE(e + 2);
          if (id === 1 && len >= 8) sizeBytes = Number(cd.readBigUInt64LE(e + 4));
          e += 4 + len;
        }
      }
      out.push({ name, sizeBytes, symlink: madeBy === 3 && (mode & 0o170000) === 0o120000 });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses an archive before unpacking it when an entry would land outside `folder/` (an absolute
 * path, a `..`, a drive letter: zip-slip), is a symbolic link (which a later entry, or the Python
 * fallback, would write through), or when it unpacks to over {@link MAX_UNPACK_RATIO} times its size.
 */
function checkZipEntries(zip: string, folder: string): void {
  const refuse = (what: string): never => {
    throw new AffectError('AFFECT_ERR_DOWNLOAD', `refusing to unpack ${zip}: ${what}`, {
      hint: `the archive must hold only plain files and folders under ${folder}/; delete it and check the URL in models/manifest.ts`,
    });
  };
  const entries = zipEntries(zip);
  let total = 0;
  for (const e of entries) {
    const parts = e.name.split(/[\\/]/);
    if (e.name.startsWith('/') || e.name.startsWith('\\') || /^[A-Za-z]:/.test(e.name) || parts.includes('..'))
      refuse(`entry ${JSON.stringify(e.name)} points outside the folder it unpacks into`);
    if (parts[0] !== folder) refuse(`entry ${JSON.stringify(e.name)} is not under ${folder}/`);
    if (e.symlink) refuse(`entry ${JSON.stringify(e.name)} is a symbolic link`);
    total += e.sizeBytes;
  }
  const zipBytes = statSync(zip).size;
  if (total > MAX_UNPACK_RATIO * Math.max(zipBytes, 1e6)) {
    refuse(`it would unpack to ${(total / 1e6).toFixed(1)} MB from ${(zipBytes / 1e6).toFixed(1)} MB (over ${MAX_UNPACK_RATIO}×: a zip bomb?)`);
  }
}

/**
 * Unpacks a zip whose entries all lie under `folder/` into `<root>/<folder>` with `unzip` (or
 * Python's zipfile when unzip is missing), after {@link checkZipEntries}. It unpacks into a
 * temporary folder (`.unpack-<pid>-*`, removed by the next unpack when that process is gone) and
 * renames `folder` into place, so an interrupted unpack never leaves a half-filled folder that a
 * later pull would take as present.
 */
function unzipInto(zip: string, root: string, folder: string): void {
  checkZipEntries(zip, folder);
  // an unpack interrupted by Ctrl-C left its temporary folder (as big as the model): remove those of processes that are gone
  for (const name of readdirSync(root)) {
    const m = /^\.unpack-(\d+)-/.exec(name);
    if (m && !processAlive(Number(m[1]))) rmSync(path.join(root, name), { recursive: true, force: true });
  }
  const tmp = mkdtempSync(path.join(root, `.unpack-${process.pid}-`));
  try {
    const tries: Array<[string, string[]]> = [
      ['unzip', ['-o', '-q', zip, '-d', tmp]],
      ['python3', ['-m', 'zipfile', '-e', zip, tmp]],
    ];
    let ok = false;
    for (const [cmd, args] of tries) {
      rmSync(path.join(tmp, folder), { recursive: true, force: true });
      if (spawnSync(cmd, args, { stdio: 'ignore' }).status === 0 && existsSync(path.join(tmp, folder))) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      throw new AffectError('AFFECT_ERR_DOWNLOAD', `could not unpack ${zip}`, {
        hint: `install unzip (apt-get install unzip) or unpack it by hand into ${root} (it holds the folder ${folder}/)`,
      });
    }
    rmSync(path.join(root, folder), { recursive: true, force: true });
    renameSync(path.join(tmp, folder), path.join(root, folder));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Downloads every file of a model into `<modelsDir>/<id>/`, verifying each. */
export async function pullModel(spec: ModelSpec, opts: PullOptions = {}): Promise<PulledFile[]> {
  if (spec.fixture) {
    throw new AffectError('AFFECT_ERR_DOWNLOAD', `${spec.id} is a fixture built by the repo, not downloaded`, { hint: 'run npm run models:fixtures' });
  }
  if (spec.bundled) {
    // committed with the package (models/<id>/): nothing to download; a missing or changed file gets the restore hint
    const checks = await assertModelFiles(spec, opts.modelsDir);
    return checks.map((c) => ({ file: c.file, path: c.path, status: 'present', sha256: c.sha256 ?? '', verified: c.status === 'ok' }));
  }
  const noUrl = spec.files.filter((f) => !f.url);
  if (noUrl.length > 0) {
    throw new AffectError('AFFECT_ERR_DOWNLOAD', `${spec.id} has no download URL for ${noUrl.map((f) => f.path).join(', ')}`, {
      hint: `export it yourself (docs/models.md "Exporting your own models") and put the files in ${modelRoot(spec, opts.modelsDir)}/; then run circumplex models verify ${spec.id}`,
    });
  }
  const unknown = spec.files.filter((f) => !f.sha256);
  if (unknown.length > 0 && !opts.acceptUnverified) {
    throw new AffectError(
      'AFFECT_ERR_DOWNLOAD',
      `${spec.id}: the manifest has no sha256 for ${unknown.map((f) => f.path).join(', ')}, so the download cannot be verified`,
      {
        hint: `pass --accept-unverified to download anyway and record the hash it sees in ${path.join(modelRoot(spec, opts.modelsDir), '.verified.json')}`,
      },
    );
  }
  const root = modelRoot(spec, opts.modelsDir);
  // The first folder this pull creates (undefined: it all existed), so a failure can take back what it made.
  const created = makeDir(root);
  const out: PulledFile[] = [];
  try {
    for (const f of spec.files) out.push(await pullFile(spec, f, root, opts));
  } catch (err) {
    // A failed pull leaves no empty folder behind (files it kept, e.g. a resumable .part, stay).
    if (created !== undefined) removeEmptyDirs(root, path.resolve(created));
    throw err;
  }
  return out;
}

/**
 * Removes `dir` and its empty subfolders when they hold no file, then each empty parent up to and
 * including `upTo` (the first folder the pull created). Never touches a folder with a file in it.
 */
function removeEmptyDirs(dir: string, upTo: string): void {
  const prune = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return false;
    }
    let empty = true;
    for (const e of entries) if (!(e.isDirectory() && prune(path.join(d, e.name)))) empty = false;
    if (!empty) return false;
    try {
      rmdirSync(d);
      return true;
    } catch {
      return false;
    }
  };
  if (!prune(dir)) return;
  for (let d = path.dirname(path.resolve(dir)); d.startsWith(upTo) && d.length >= upTo.length; d = path.dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === upTo) return;
  }
}

async function pullFile(spec: ModelSpec, f: ModelFile, root: string, opts: PullOptions): Promise<PulledFile> {
  const dest = modelFilePath(spec, f, opts.modelsDir);
  // an archive unpacks to the folder named like it (vosk-model-small-en-us-0.15.zip → vosk-model-small-en-us-0.15/)
  const unpackDir = f.unpack === 'zip' ? path.join(root, path.basename(f.path).replace(/\.zip$/i, '')) : undefined;
  if (existsSync(dest) && !opts.force) {
    const sha = await sha256File(dest);
    // the manifest's sha256, else the one an earlier --accept-unverified pull recorded: a file changed since is downloaded again
    const want = expectedSha(spec, f, opts.modelsDir);
    if (!want || sha === want) {
      if (unpackDir && !existsSync(unpackDir)) unzipInto(dest, root, path.basename(unpackDir));
      return {
        file: f.path,
        path: dest,
        status: 'present',
        sha256: sha,
        verified: !!f.sha256,
        ...(unpackDir && existsSync(unpackDir) ? { unpackedTo: unpackDir } : {}),
      };
    }
  }
  const progress = opts.progress === null ? undefined : progressBar(`${spec.id}/${f.path}`, opts.progress ?? process.stderr);
  const r = await downloadFile(f.url as string, dest, f.sha256, { ...opts, ...(progress ? { onProgress: progress } : {}) });
  if (!f.sha256) writeVerifiedRecord(root, f.path, r.sha256, r.bytes);
  if (unpackDir) unzipInto(dest, root, path.basename(unpackDir));
  return {
    file: f.path,
    path: dest,
    status: 'downloaded',
    sha256: r.sha256,
    verified: !!f.sha256,
    ...(unpackDir && existsSync(unpackDir) ? { unpackedTo: unpackDir } : {}),
  };
}
