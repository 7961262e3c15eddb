/**
 * libvosk behind the {@link SpeechRecognizerFactory} port, isolated in a child process.
 *
 * Why a child process and not a worker thread: libvosk is native code reached through ffi-napi.
 * A NULL model, a corrupt graph or a bug in the decoder can segfault or hang, and a worker thread
 * shares the process with the server (loading vosk only inside a worker also segfaulted when the
 * worker exited). So one "ASR host" process (vosk-host.ts) holds the model and every recogniser;
 * the parent talks to it over IPC, runs a watchdog per request, and when the host dies (crash,
 * watchdog kill) fails the recognisers it held and starts a new host, with backoff, on the next
 * `create()`. The server and the other streams carry on (speech-only for the failed streams).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AffectError } from '../../core/errors.js';
import type { RecognizerResult, SpeechRecognizerFactory, StreamRecognizer } from '../ports.js';
import type { TimedWord } from '../../core/types.js';
import type { HostReply, HostRequest, HostWord } from './host-protocol.js';
import { checkVoskModelDir, voskModelError, type VoskModelLayout } from './layout.js';

/** Options of {@link loadVoskRecognizerFactory}. */
export interface VoskFactoryOptions {
  /** Manifest id reported as `factory.id`. Default `vosk`. */
  id: string;
  /** Sample rate of the audio fed to `accept` (the pipeline rate). Default 16000. */
  sampleRateHz: number;
  /** Watchdog for one accept/finish/create, in wall-clock ms; past it the host is killed and restarted. Default 15000. */
  requestTimeoutMs: number;
  /** How long loading the model may take, in ms. Default 120000 (big models take a while). */
  loadTimeoutMs: number;
  /** First wait before restarting a dead host, in ms; doubles per consecutive death. Default 250. */
  restartBackoffMs: number;
  /** Cap on the restart wait, in ms. Default 10000. */
  maxRestartBackoffMs: number;
  /** libvosk log level: -1 keeps only ERROR lines (which are kept for error messages). Default -1. */
  voskLogLevel: number;
  /**
   * Ask libvosk for word timings in partial results too (timed text windows before the final).
   * Default true. Turn off for a model whose partial word alignment fails (libvosk then returns
   * empty partials); partial words are then stamped at the result's audio time.
   */
  partialWords: boolean;
  /**
   * Which libvosk binding the host uses: undefined picks koffi when installed, else the vosk
   * package's ffi-napi binding (which leaks ~2 KB per call; see vosk-binding.ts). Default undefined.
   */
  binding: 'koffi' | 'ffi-napi' | undefined;
  /**
   * close(): how long the host may take to exit after the IPC channel is closed before it is
   * SIGKILLed, in ms. close() resolves at the latest 1 s after that, even if the host is stuck
   * (stopped, in uninterruptible native code) or never started. Default 2000.
   */
  closeGraceMs: number;
  /** Logger for host lifecycle events. Default: none. */
  logger: Logger | undefined;
}

/** Defaults for {@link VoskFactoryOptions}. */
export const DEFAULT_VOSK_FACTORY: VoskFactoryOptions = {
  id: 'vosk',
  sampleRateHz: 16_000,
  requestTimeoutMs: 15_000,
  loadTimeoutMs: 120_000,
  restartBackoffMs: 250,
  maxRestartBackoffMs: 10_000,
  voskLogLevel: -1,
  partialWords: true,
  binding: undefined,
  closeGraceMs: 2_000,
  logger: undefined,
};

/** What close() waits past the SIGKILL for the exit to be reported before it gives up waiting. */
const CLOSE_EXIT_WAIT_MS = 1_000;

/** Resolves after `ms`; the timer does not keep the process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Counters a factory keeps, for logs, metrics and tests. */
export interface VoskFactoryStats {
  /** Hosts started (1 + restarts). */
  hostsStarted: number;
  /** Hosts that died without being asked to (crash or watchdog kill). */
  hostDeaths: number;
  /** Watchdog kills (a request took longer than `requestTimeoutMs`). */
  watchdogKills: number;
  /** Recognisers currently open. */
  openRecognizers: number;
  /**
   * A host is running with the model loaded. False from a host's death until a restarted one has
   * loaded the model (restarts are lazy: the next stream's `create()` starts one, after the
   * backoff), and after close(). `/healthz` reports the server `degraded` while it is false.
   */
  hostUp: boolean;
  /** Why the last host died or a restart failed (the model folder shown as `<asr model>`); absent until then. */
  lastHostError?: string;
}

/**
 * What to do when the `vosk` package (it ships libvosk) is missing. npm drops that optional
 * dependency when its ffi-napi fails to build, which ffi-napi 4.0.3 does against current Node 20
 * headers (20.20.2 tried). This repository's package.json overrides it, but npm applies overrides
 * only in the top-level project, so a project that installs circumplex needs the same overrides in
 * its own package.json (test/unit/asr-vosk-install.test.ts keeps them in step).
 */
export const VOSK_INSTALL_HINT =
  'the optional "vosk" package (it ships libvosk) is not installed: npm drops it when its ffi-napi dependency fails to build, as it does on current Node 20 releases (20.20.2 tried). ' +
  'Add "overrides": { "ffi-napi": "npm:@2060.io/ffi-napi@4.0.9", "ref-napi": "npm:@2060.io/ref-napi@3.0.6" } to your package.json, run npm install ' +
  '(docs/asr.md, "Installing libvosk"), or run without --asr-model';

const MODULE_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(MODULE_DIR, '..', '..');

/** Seconds (libvosk) to ms, kept to 0.1 ms so alignment is not blurred by rounding. */
function secToMs(s: number): number {
  return Number.isFinite(s) ? Math.round(s * 10_000) / 10 : 0;
}

function toWords(list: readonly HostWord[]): TimedWord[] {
  return list.map((w) => ({
    word: w.word,
    startMs: secToMs(w.start),
    endMs: secToMs(w.end),
    conf: Number.isFinite(w.conf) ? Math.min(1, Math.max(0, w.conf)) : 0,
  }));
}

/** Float [-1, 1] → s16le bytes, clipping and mapping NaN to 0 (libvosk wants 16-bit PCM). */
export function floatToPcm16(samples: Float32Array): Uint8Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i] ?? 0;
    const c = Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0;
    out[i] = c < 0 ? Math.round(c * 0x8000) : Math.round(c * 0x7fff);
  }
  // Int16Array is little-endian on every platform Node ships for.
  return new Uint8Array(out.buffer);
}

interface Pending {
  resolve(reply: HostReply): void;
  reject(err: AffectError): void;
  timer: NodeJS.Timeout | undefined;
}

/** One ASR host child process. */
class AsrHost {
  readonly child: ChildProcess;
  /** Last libvosk ERROR lines, for error messages. */
  private readonly stderrTail: string[] = [];
  private readonly pending = new Map<number, Pending>();
  private loadWaiter: Pending | undefined;
  private nextReq = 1;
  /** Set once the host is gone; every later request fails with it. */
  death: AffectError | undefined;
  private closing = false;
  readonly exited: Promise<void>;

  constructor(
    private readonly opts: VoskFactoryOptions,
    private readonly onDeath: (host: AsrHost, err: AffectError) => void,
  ) {
    const isTs = fileURLToPath(import.meta.url).endsWith('.ts');
    const entry = path.join(MODULE_DIR, isTs ? 'vosk-host.ts' : 'vosk-host.js');
    this.child = fork(entry, [], {
      // Under tsx the host is TypeScript too; cwd = repo root so `--import tsx` resolves.
      // --expose-gc: `hostStats()` collects garbage first, so RSS readings compare like with like.
      execArgv: isTs ? ['--import', 'tsx', '--expose-gc'] : ['--expose-gc'],
      cwd: REPO_ROOT,
      // Few glibc arenas: libuv/koffi worker threads would otherwise each grow their own heap.
      env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (line.trim() === '') continue;
        this.stderrTail.push(line.trim());
        if (this.stderrTail.length > 8) this.stderrTail.shift();
      }
    });
    this.child.on('message', (msg: HostReply) => this.onMessage(msg));
    this.child.on('error', (err) => {
      const fail = () => this.die(new AffectError('AFFECT_ERR_ASR', `ASR host process failed: ${err.message}`, { stage: 'asr', cause: err }));
      // A host that never started has no 'exit' to wait for. One that did is usually dying (EPIPE
      // on a send): let the 'exit' handler report the real cause (the signal), unless none comes.
      if (this.child.pid === undefined) fail();
      else setTimeout(fail, 1_000).unref();
    });
    this.exited = new Promise((resolve) => {
      // 'exit', not 'close': under tsx the host's esbuild helper can hold stderr open. libvosk's
      // last lines may still be in the pipe at 'exit', so read them a moment later.
      this.child.once('exit', (code, signal) => {
        setTimeout(() => {
          if (!this.closing) {
            const how = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
            this.die(
              new AffectError('AFFECT_ERR_ASR', `the ASR host process (libvosk) ${how}${this.lastVoskError()}`, {
                stage: 'asr',
                hint: 'the affected streams go on speech-only; new streams get a restarted ASR host. If this repeats, check the Vosk model (docs/asr.md)',
              }),
            );
          }
          resolve();
        }, 50);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The latest libvosk ERROR line, formatted for a message suffix. */
  lastVoskError(): string {
    const errs = this.stderrTail.filter((l) => /ERROR|ASSERTION|error|Error/.test(l));
    const last = errs[errs.length - 1];
    return last === undefined ? '' : ` (libvosk: ${last.replace(/[^\x20-\x7e]+/g, '?').slice(0, 300)})`;
  }

  private onMessage(msg: HostReply): void {
    if (msg.op === 'ready') return;
    if (msg.op === 'loaded' || msg.op === 'load-failed') {
      const w = this.loadWaiter;
      this.loadWaiter = undefined;
      if (w?.timer) clearTimeout(w.timer);
      w?.resolve(msg);
      return;
    }
    const p = this.pending.get(msg.req);
    if (!p) return; // answered after a timeout: nothing waits for it
    this.pending.delete(msg.req);
    if (p.timer) clearTimeout(p.timer);
    p.resolve(msg);
  }

  /** Loads the model in the host; resolves with the host's answer. */
  load(modelDir: string): Promise<HostReply> {
    return new Promise((resolve, reject) => {
      if (this.death) return reject(this.death);
      const timer = setTimeout(() => {
        this.kill(`loading the model took longer than ${this.opts.loadTimeoutMs} ms`);
      }, this.opts.loadTimeoutMs);
      this.loadWaiter = { resolve, reject, timer };
      this.send({
        op: 'load',
        modelDir,
        sampleRateHz: this.opts.sampleRateHz,
        logLevel: this.opts.voskLogLevel,
        partialWords: this.opts.partialWords,
        binding: this.opts.binding,
      });
    });
  }

  /** Sends a request and waits for its answer under the watchdog. */
  request(make: (req: number) => HostRequest): Promise<HostReply> {
    return new Promise((resolve, reject) => {
      if (this.death) return reject(this.death);
      const req = this.nextReq++;
      const timer = setTimeout(() => {
        this.opts.logger?.error({ pid: this.pid, timeoutMs: this.opts.requestTimeoutMs }, 'ASR host did not answer: killing it');
        this.kill(`libvosk did not answer within ${this.opts.requestTimeoutMs} ms (hung); the ASR host was killed`, true);
      }, this.opts.requestTimeoutMs);
      this.pending.set(req, { resolve, reject, timer });
      this.send(make(req));
    });
  }

  /** Fire-and-forget message (free). */
  send(msg: HostRequest): void {
    if (this.death || !this.child.connected) return;
    try {
      this.child.send(msg);
    } catch {
      // The channel closed under us: the exit handler reports it.
    }
  }

  /** Kills the host as unhealthy: requests fail with `reason`. */
  kill(reason: string, watchdog = false): void {
    this.die(
      new AffectError('AFFECT_ERR_ASR', reason, { stage: 'asr', hint: 'the affected streams go on speech-only; new streams get a restarted ASR host' }),
      watchdog,
    );
    this.child.kill('SIGKILL');
  }

  private die(err: AffectError, watchdog = false): void {
    if (this.death) return;
    this.death = err;
    const waiters = [...this.pending.values()];
    this.pending.clear();
    if (this.loadWaiter) waiters.push(this.loadWaiter);
    this.loadWaiter = undefined;
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    if (watchdog) (err as AffectError & { watchdog?: boolean }).watchdog = true;
    this.onDeath(this, err);
  }

  /**
   * Asks the host to leave (it frees everything on disconnect); SIGKILL if it lingers past
   * `closeGraceMs`. Resolves within closeGraceMs + 1 s whatever the host does.
   */
  async close(): Promise<void> {
    // A host that never started (spawn failed) has no 'exit' to wait for.
    const alive = this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    this.closing = true;
    // Whatever still waits fails now (a no-op when the host already died and said why).
    this.die(new AffectError('AFFECT_ERR_ASR', 'the ASR host was closed', { stage: 'asr' }));
    if (!alive) {
      // Exited already: wait for the exit handler (50 ms grace), but never on a host that never ran.
      if (this.child.pid !== undefined) await Promise.race([this.exited, delay(CLOSE_EXIT_WAIT_MS)]);
      return;
    }
    if (this.child.connected) this.child.disconnect();
    const killer = setTimeout(() => {
      this.opts.logger?.warn({ pid: this.pid, graceMs: this.opts.closeGraceMs }, 'ASR host did not exit after disconnect: SIGKILL');
      this.child.kill('SIGKILL');
    }, this.opts.closeGraceMs);
    const gaveUp = await Promise.race([this.exited.then(() => false), delay(this.opts.closeGraceMs + CLOSE_EXIT_WAIT_MS).then(() => true)]);
    clearTimeout(killer);
    if (gaveUp) this.opts.logger?.error({ pid: this.pid }, 'ASR host did not exit even after SIGKILL; not waiting for it');
  }
}

/** A recogniser living in the ASR host. */
class VoskStreamRecognizer implements StreamRecognizer {
  private busy = false;
  private closed = false;

  constructor(
    private readonly factory: VoskRecognizerFactory,
    private readonly host: AsrHost,
    readonly rid: number,
    readonly streamId: string,
  ) {}

  private toResult(reply: HostReply, what: string): RecognizerResult {
    if (reply.op === 'result') return { text: reply.text.trim(), final: reply.final, words: toWords(reply.words) };
    const message = reply.op === 'failed' ? reply.message : `unexpected reply ${reply.op}`;
    throw new AffectError('AFFECT_ERR_ASR', `Vosk ${what} failed for stream "${this.streamId}": ${message}`, { stage: 'asr', recoverable: false });
  }

  private async call(op: 'accept' | 'finish', pcm?: Uint8Array): Promise<RecognizerResult> {
    if (this.closed) throw new AffectError('AFFECT_ERR_ASR', `Vosk recogniser for stream "${this.streamId}" is closed`, { stage: 'asr' });
    // The port promises one request in flight; libvosk recognisers are not re-entrant.
    if (this.busy)
      throw new AffectError('AFFECT_ERR_ASR', `Vosk ${op} called while another request is in flight (stream "${this.streamId}")`, { stage: 'asr' });
    this.busy = true;
    try {
      const reply = await this.host.request((req) =>
        op === 'accept' ? { op, rid: this.rid, req, pcm: pcm ?? new Uint8Array(0) } : { op, rid: this.rid, req },
      );
      return this.toResult(reply, op);
    } finally {
      this.busy = false;
    }
  }

  accept(samples: Float32Array): Promise<RecognizerResult> {
    return this.call('accept', floatToPcm16(samples));
  }

  finish(): Promise<RecognizerResult> {
    return this.call('finish');
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    // The host defers the free until an in-flight accept returns.
    this.host.send({ op: 'free', rid: this.rid });
    this.factory.forget(this);
    return Promise.resolve();
  }
}

/** The Vosk recogniser factory. Made by {@link loadVoskRecognizerFactory}. */
export class VoskRecognizerFactory implements SpeechRecognizerFactory {
  readonly provider = 'libvosk';
  readonly id: string;
  private host: AsrHost | undefined;
  private starting: Promise<AsrHost> | undefined;
  private readonly open = new Set<VoskStreamRecognizer>();
  private nextRid = 1;
  private closed = false;
  private consecutiveDeaths = 0;
  private lastDeathAt = 0;
  /** The host whose model is loading (killed by close(): nothing will use it). */
  private loadingHost: AsrHost | undefined;
  /** Ends a restart backoff wait early (close()). */
  private cancelBackoff: (() => void) | undefined;
  /** The libvosk binding the host reported (koffi, or the leaky ffi-napi fallback). */
  binding: 'koffi' | 'ffi-napi' | undefined;
  readonly stats: VoskFactoryStats = { hostsStarted: 0, hostDeaths: 0, watchdogKills: 0, openRecognizers: 0, hostUp: false };

  private constructor(
    readonly layout: VoskModelLayout,
    private readonly opts: VoskFactoryOptions,
  ) {
    this.id = opts.id;
  }

  /** @internal use {@link loadVoskRecognizerFactory}. */
  static async load(layout: VoskModelLayout, opts: VoskFactoryOptions): Promise<VoskRecognizerFactory> {
    const f = new VoskRecognizerFactory(layout, opts);
    await f.ensureHost();
    return f;
  }

  /** Pid of the current ASR host process (undefined while none runs). For diagnostics and tests. */
  get hostPid(): number | undefined {
    return this.host && !this.host.death ? this.host.pid : undefined;
  }

  /** Starts a host and loads the model, waiting out the restart backoff after a death. */
  private ensureHost(): Promise<AsrHost> {
    if (this.host && !this.host.death) return Promise.resolve(this.host);
    this.starting ??= this.startHost()
      .catch((err: unknown) => {
        // A restart that fails leaves the streams speech-only: say why where operators look.
        if (!this.closed) this.noteHostError(err instanceof Error ? err.message : String(err));
        throw err;
      })
      .finally(() => {
        this.starting = undefined;
      });
    return this.starting;
  }

  /** Keeps `message` as the last host error, without the model folder's path (it goes to /healthz). */
  private noteHostError(message: string): void {
    this.stats.lastHostError = message.split(this.layout.dir).join('<asr model>');
  }

  private async startHost(): Promise<AsrHost> {
    if (this.consecutiveDeaths > 0) {
      const backoff = Math.min(this.opts.maxRestartBackoffMs, this.opts.restartBackoffMs * 2 ** (this.consecutiveDeaths - 1));
      const wait = this.lastDeathAt + backoff - Date.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.cancelBackoff = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.cancelBackoff = undefined;
      }
    }
    if (this.closed) throw new AffectError('AFFECT_ERR_ASR', 'the Vosk recogniser factory is closed', { stage: 'asr' });
    const host = new AsrHost(this.opts, (h, err) => this.onHostDeath(h, err));
    this.stats.hostsStarted++;
    let reply: HostReply;
    this.loadingHost = host;
    try {
      reply = await host.load(this.layout.dir);
    } catch (err) {
      await host.close();
      if (this.closed) throw new AffectError('AFFECT_ERR_ASR', 'the Vosk recogniser factory was closed while loading the model', { stage: 'asr' });
      throw voskModelError(this.layout.dir, 'corrupt', (err as Error).message, err);
    } finally {
      this.loadingHost = undefined;
    }
    if (reply.op !== 'loaded') {
      const detail = reply.op === 'load-failed' ? `${reply.message}${host.lastVoskError()}` : `unexpected reply ${reply.op}`;
      await host.close();
      if (reply.op === 'load-failed' && reply.reason === 'no-vosk') {
        throw new AffectError('AFFECT_ERR_ASR', detail, {
          stage: 'asr',
          hint: VOSK_INSTALL_HINT,
        });
      }
      throw voskModelError(this.layout.dir, 'corrupt', detail);
    }
    if (this.closed) {
      // close() came while the model loaded: this host has no user.
      await host.close();
      throw new AffectError('AFFECT_ERR_ASR', 'the Vosk recogniser factory was closed while loading the model', { stage: 'asr' });
    }
    this.binding = reply.binding;
    if (reply.binding === 'ffi-napi') {
      this.opts.logger?.warn('libvosk bound through ffi-napi (koffi not installed): it leaks ~2 KB per call; install koffi');
    }
    this.opts.logger?.info(
      { pid: host.pid, modelDir: this.layout.dir, loadMs: Math.round(reply.loadMs), binding: reply.binding },
      'Vosk model loaded in ASR host',
    );
    this.host = host;
    this.stats.hostUp = true;
    return host;
  }

  private onHostDeath(host: AsrHost, err: AffectError): void {
    if (this.closed || host !== this.host) return;
    this.stats.hostDeaths++;
    this.stats.hostUp = false;
    this.noteHostError(err.message);
    if ((err as AffectError & { watchdog?: boolean }).watchdog) this.stats.watchdogKills++;
    // A host that lived a while resets the backoff: only crash loops back off.
    this.consecutiveDeaths = Date.now() - this.lastDeathAt > 60_000 ? 1 : this.consecutiveDeaths + 1;
    this.lastDeathAt = Date.now();
    this.opts.logger?.error({ pid: host.pid, err: err.message, openRecognizers: this.open.size }, 'ASR host died; its streams go on speech-only');
    // Recognisers of the dead host fail on their next call with the host's error (their host
    // keeps it); they are no longer counted as open.
    for (const r of [...this.open]) this.forget(r);
    this.host = undefined;
    // Make sure the process is really gone (a hang or a half-dead host).
    host.child.kill('SIGKILL');
  }

  /** @internal called by a recogniser's close(). */
  forget(r: VoskStreamRecognizer): void {
    this.open.delete(r);
    this.stats.openRecognizers = this.open.size;
  }

  async create(streamId: string): Promise<StreamRecognizer> {
    if (this.closed) throw new AffectError('AFFECT_ERR_ASR', 'the Vosk recogniser factory is closed', { stage: 'asr' });
    const host = await this.ensureHost();
    const rid = this.nextRid++;
    const reply = await host.request((req) => ({ op: 'create', rid, req }));
    if (reply.op !== 'created') {
      const message = reply.op === 'failed' ? reply.message : `unexpected reply ${reply.op}`;
      throw new AffectError('AFFECT_ERR_ASR', `could not create a Vosk recogniser for stream "${streamId}": ${message}`, { stage: 'asr' });
    }
    const rec = new VoskStreamRecognizer(this, host, rid, streamId);
    this.open.add(rec);
    this.stats.openRecognizers = this.open.size;
    return rec;
  }

  /** Resident memory of the ASR host (after GC and malloc_trim) and its recogniser count (for leak checks). */
  async hostStats(): Promise<{ rssBytes: number; heapUsedBytes: number; recognizers: number; pid: number | undefined }> {
    const host = await this.ensureHost();
    const reply = await host.request((req) => ({ op: 'stats', req }));
    if (reply.op !== 'stats') throw new AffectError('AFFECT_ERR_ASR', `unexpected reply ${reply.op}`, { stage: 'asr' });
    return { rssBytes: reply.rssBytes, heapUsedBytes: reply.heapUsedBytes, recognizers: reply.recognizers, pid: host.pid };
  }

  /**
   * Frees every recogniser and stops the host. Always resolves, within about closeGraceMs + 1 s:
   * a stuck host is SIGKILLed, a host still loading its model is killed, and a restart backoff is
   * cut short.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stats.hostUp = false;
    for (const r of [...this.open]) await r.close();
    const host = this.host;
    this.host = undefined;
    this.cancelBackoff?.();
    // Killing the loading host fails its load at once; startHost then closes it (bounded too).
    this.loadingHost?.kill('the Vosk recogniser factory was closed while loading the model');
    await Promise.all([this.starting?.catch(() => undefined), host?.close()]);
  }
}

/**
 * Loads a Vosk model folder into a fresh ASR host process and returns the recogniser factory.
 * Throws AFFECT_ERR_ASR_MODEL (naming the folder and how to get a model) when the folder is
 * missing, empty, incomplete or corrupt; the calling process is never at risk.
 */
export async function loadVoskRecognizerFactory(modelDir: string, opts: Partial<VoskFactoryOptions> = {}): Promise<VoskRecognizerFactory> {
  const o: VoskFactoryOptions = { ...DEFAULT_VOSK_FACTORY, ...opts };
  for (const k of ['sampleRateHz', 'requestTimeoutMs', 'loadTimeoutMs', 'restartBackoffMs', 'maxRestartBackoffMs', 'closeGraceMs'] as const) {
    if (!(Number.isFinite(o[k]) && o[k] > 0)) throw new RangeError(`loadVoskRecognizerFactory: ${k} must be > 0, got ${String(o[k])}`);
  }
  const layout = checkVoskModelDir(modelDir);
  return VoskRecognizerFactory.load(layout, o);
}
