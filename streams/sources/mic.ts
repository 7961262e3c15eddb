/**
 * Microphone source through node-record-lpcm16 (sox / rec / arecord). The package crashes Node with
 * an unhandled 'error' when the recorder binary is missing, so this wrapper checks the binary on PATH
 * first (AFFECT_ERR_RECORDER with an install hint), listens to the child's 'error' and 'exit', and
 * turns a recorder death into a recoverable AFFECT_ERR_RECORDER the server can restart with backoff
 * ({@link retryRecorder}). The sample clock keeps running across restarts of one {@link createMicSource}.
 * A recorder that stops before delivering any audio (no usable input device) is a fatal error: a
 * restart would fail the same way, forever.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { Observable, retry, timer, type MonoTypeOperatorFunction } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { s16leToFloat32 } from '../audio.js';
import { AudioConverter } from './convert.js';

/** The optional recorder package (untyped; a variable, so tsc does not resolve it). */
const RECORDER_PACKAGE: string = 'node-record-lpcm16';

/** Recorder programs node-record-lpcm16 knows. */
export type RecorderName = 'sox' | 'rec' | 'arecord';

/** Options for {@link createMicSource}. */
export interface MicSourceOptions {
  /** Stream id stamped on every chunk. Default 'mic'. */
  streamId: string;
  /** Recorder program. Default 'sox'. */
  recorder: RecorderName;
  /** Recording rate asked of the recorder, Hz. Default 16000. */
  sampleRateHz: number;
  /** Recording channels. Default 1. */
  channels: number;
  /** Recorder device (e.g. an ALSA name for arecord); default: the system default. */
  device?: string;
  /** PATH to search for the recorder (default process.env.PATH; tests set it). */
  searchPath?: string;
}

export const DEFAULT_MIC_SOURCE: MicSourceOptions = { streamId: 'mic', recorder: 'sox', sampleRateHz: 16_000, channels: 1 };

const INSTALL_HINT: Record<RecorderName, string> = {
  sox: 'install SoX (Debian/Ubuntu: sudo apt-get install sox; macOS: brew install sox), or choose another recorder',
  rec: 'install SoX, which provides rec (Debian/Ubuntu: sudo apt-get install sox; macOS: brew install sox)',
  arecord: 'install ALSA utils (Debian/Ubuntu: sudo apt-get install alsa-utils), or use --recorder sox',
};

/** Finds an executable on a PATH string; undefined when absent. */
export function findExecutable(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Throws AFFECT_ERR_RECORDER with an install hint when the recorder is not installed. */
export function checkRecorder(recorder: RecorderName, searchPath?: string): string {
  const found = findExecutable(recorder, searchPath);
  if (!found) {
    throw new AffectError('AFFECT_ERR_RECORDER', `the "${recorder}" recorder was not found on PATH; --input mic needs it to record audio`, {
      stage: 'mic',
      hint: INSTALL_HINT[recorder],
    });
  }
  return found;
}

interface Recording {
  stream(): NodeJS.ReadableStream;
  stop(): void;
  process: import('node:child_process').ChildProcess;
}
type RecordModule = { record(opts: Record<string, unknown>): Recording };

async function loadRecordModule(): Promise<RecordModule> {
  try {
    // Optional dependency, loaded only when the microphone is used.
    const mod = (await import(RECORDER_PACKAGE)) as { default?: RecordModule } & Partial<RecordModule>;
    const rec = mod.default ?? (mod as RecordModule);
    if (typeof rec.record !== 'function') throw new Error('node-record-lpcm16 has no record()');
    return rec;
  } catch (err) {
    throw new AffectError('AFFECT_ERR_RECORDER', `node-record-lpcm16 could not be loaded: ${(err as Error).message}`, {
      stage: 'mic',
      cause: err,
      hint: 'reinstall with optional dependencies: npm install --include=optional',
    });
  }
}

/**
 * A cold microphone source: each subscription starts a recorder and stopping the subscription stops
 * it. Re-subscribing (e.g. via {@link retryRecorder}) starts a new recorder and continues the sample
 * clock where the last one stopped. Errors are AffectErrors with code AFFECT_ERR_RECORDER:
 * recoverable when the recorder died (restart it), not recoverable when it is not installed.
 */
export function createMicSource(opts: Partial<MicSourceOptions> = {}): Observable<AudioChunk> {
  const o = { ...DEFAULT_MIC_SOURCE, ...opts };
  if (!['sox', 'rec', 'arecord'].includes(o.recorder)) throw new RangeError(`micSource: recorder must be sox, rec or arecord, got ${String(o.recorder)}`);
  if (!Number.isInteger(o.sampleRateHz) || o.sampleRateHz < 4000)
    throw new RangeError(`micSource: sampleRateHz must be an integer >= 4000, got ${o.sampleRateHz}`);
  if (!Number.isInteger(o.channels) || o.channels < 1) throw new RangeError(`micSource: channels must be an integer >= 1, got ${o.channels}`);
  // Shared across subscriptions so audio time keeps increasing over restarts.
  let position = 0;
  // Whether any recorder of this source ever delivered audio: one that dies before its first sample
  // (no audio device, device busy, permission) will not do better on a restart.
  let heardAudio = false;
  return new Observable<AudioChunk>((sub) => {
    let stopped = false;
    let recording: Recording | undefined;
    const conv = new AudioConverter(o.streamId, o.sampleRateHz, o.channels, position);
    const frameBytes = 2 * o.channels;
    let carry = Buffer.alloc(0);
    const fail = (err: AffectError): void => {
      if (stopped) return;
      stopped = true;
      try {
        recording?.stop();
      } catch {
        // already gone
      }
      sub.error(err);
    };
    (async () => {
      checkRecorder(o.recorder, o.searchPath);
      const mod = await loadRecordModule();
      if (stopped) return;
      recording = mod.record({
        recorder: o.recorder,
        sampleRate: o.sampleRateHz,
        channels: o.channels,
        audioType: 'raw',
        ...(o.device ? { device: o.device } : {}),
      });
      const child = recording.process;
      const stream = recording.stream();
      let stderrTail = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderrTail = (stderrTail + d.toString()).slice(-400);
      });
      // The child's own 'error' (e.g. ENOENT despite the PATH check, EACCES) would otherwise crash Node.
      child.on('error', (err) =>
        fail(
          new AffectError('AFFECT_ERR_RECORDER', `could not start ${o.recorder}: ${err.message}`, {
            stage: 'mic',
            cause: err,
            recoverable: false,
            hint: INSTALL_HINT[o.recorder],
          }),
        ),
      );
      // node-record-lpcm16 re-emits a non-zero exit as a string 'error' on the stream; handle it here.
      stream.on('error', () => undefined);
      child.on('exit', (code, signal) => {
        if (stopped) return;
        const how = `${signal ? `signal ${signal}` : `exit code ${String(code)}`}`;
        const why = stderrTail ? `: ${stderrTail.trim().split('\n').pop() ?? ''}` : '';
        // Never any audio: no usable input device. Fatal, so a server stops instead of restarting forever.
        if (!heardAudio) {
          fail(
            new AffectError('AFFECT_ERR_RECORDER', `${o.recorder} stopped before recording any audio (${how})${why}`, {
              stage: 'mic',
              recoverable: false,
              hint: `--input mic needs a working audio input device (check: ${o.recorder === 'arecord' ? 'arecord -l' : 'sox -d -n trim 0 1'}); to analyse a file or a pipe use --input FILE or --input -`,
            }),
          );
          return;
        }
        fail(
          new AffectError('AFFECT_ERR_RECORDER', `${o.recorder} stopped (${how})${why}`, {
            stage: 'mic',
            recoverable: true,
            hint: 'check that a microphone is connected and not used by another program; the server restarts the recorder with backoff',
          }),
        );
      });
      stream.on('data', (data: Buffer | string) => {
        if (stopped) return;
        const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
        const all = carry.length ? Buffer.concat([carry, buf]) : buf;
        const whole = all.length - (all.length % frameBytes);
        carry = Buffer.from(all.subarray(whole));
        if (whole === 0) return;
        heardAudio = true;
        const chunk = conv.push(s16leToFloat32(all.subarray(0, whole)));
        position = conv.position;
        if (chunk) sub.next(chunk);
      });
    })().catch((err: unknown) =>
      fail(err instanceof AffectError ? err : new AffectError('AFFECT_ERR_RECORDER', String((err as Error).message ?? err), { stage: 'mic', cause: err })),
    );
    return () => {
      stopped = true;
      try {
        recording?.stop();
      } catch {
        // already gone
      }
    };
  });
}

/** Options for {@link retryRecorder}. */
export interface RetryRecorderOptions {
  /** First restart delay, ms (wall clock). Default 500. */
  initialDelayMs: number;
  /** Longest restart delay, ms. Default 10000. */
  maxDelayMs: number;
  /** Restarts before giving up (the last error is passed on). Default Infinity. */
  maxRestarts: number;
  /** Called before each restart (e.g. to publish a 'recorder-restarting' status). */
  onRestart?: (attempt: number, err: unknown, delayMs: number) => void;
}

export const DEFAULT_RETRY_RECORDER: RetryRecorderOptions = { initialDelayMs: 500, maxDelayMs: 10_000, maxRestarts: Infinity };

/**
 * Restarts a source built by {@link createMicSource} after recoverable recorder deaths, with
 * exponential backoff. Fatal errors (recorder not installed) pass straight through.
 */
export function retryRecorder<T>(opts: Partial<RetryRecorderOptions> = {}): MonoTypeOperatorFunction<T> {
  const o = { ...DEFAULT_RETRY_RECORDER, ...opts };
  if (!(o.initialDelayMs >= 0)) throw new RangeError(`retryRecorder: initialDelayMs must be >= 0, got ${o.initialDelayMs}`);
  if (!(o.maxDelayMs >= o.initialDelayMs)) throw new RangeError(`retryRecorder: maxDelayMs must be >= initialDelayMs, got ${o.maxDelayMs}`);
  return retry({
    count: o.maxRestarts,
    resetOnSuccess: true,
    delay: (err: unknown, attempt: number) => {
      if (!(err instanceof AffectError) || !err.recoverable) throw err;
      const delayMs = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** (attempt - 1));
      o.onRestart?.(attempt, err, delayMs);
      return timer(delayMs);
    },
  });
}
