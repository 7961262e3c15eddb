/**
 * JSONL recorder for `--record FILE`: one wire message (core/protocol.ts StreamEventMessage) per
 * line, written with one synchronous write per line. Each stream's facts (hopMs, windowMs,
 * sampleRateHz) go in as a `stream` message (the one subscribers get) when it opens, so a replay
 * announces the stream exactly as it was served. A line is either fully written or not at all
 * when the process is killed, so the file is always valid JSONL (every line parses).
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, writeSync, type Stats } from 'node:fs';
import type { StreamEventMessage, StreamInfo } from '../core/protocol.js';
import { AffectError } from '../core/errors.js';

/** Options for {@link JsonlRecorder}. */
export interface JsonlRecorderOptions {
  /** Append to an existing file instead of truncating it. Default false. */
  append: boolean;
  /** fsync after this many lines (0: only on close). Default 0. */
  fsyncEvery: number;
  /**
   * Refuse (AFFECT_ERR_CONFIG, nothing written) a file that already exists and is not empty, instead
   * of truncating it. Default false, so library callers (replay tests, tools that reopen their own
   * file) keep the plain truncate; the CLI sets it for `--record` unless `--record-overwrite` is
   * given, so rerunning a command no longer wipes the previous session's recording. An empty or
   * missing file is fine. Not with `append` (appending keeps what is there).
   */
  refuseNonEmpty: boolean;
}

export const DEFAULT_JSONL_RECORDER: JsonlRecorderOptions = { append: false, fsyncEvery: 0, refuseNonEmpty: false };

/**
 * Throws when `st` (the record file's stat, undefined when it does not exist) holds a recording that
 * recording to `file` would replace (`--record` without `--record-overwrite`). Only a non-empty regular
 * file does: an empty one, or a device (`--record /dev/stdout`), loses nothing.
 */
export function refuseExistingRecording(file: string, st: Stats | undefined): void {
  if (!st?.isFile() || st.size === 0) return;
  throw new AffectError('AFFECT_ERR_CONFIG', `record file ${file} already exists and is not empty (${st.size} bytes): recording would replace it`, {
    stage: 'record',
    hint: `choose a new file name for --record, or pass --record-overwrite to replace ${file}`,
  });
}

/** Appends stream messages to a JSONL file. `close()` is idempotent. */
export class JsonlRecorder {
  private fd: number | undefined;
  private sinceSync = 0;
  /** Lines written so far. */
  lines = 0;
  private readonly o: JsonlRecorderOptions;

  constructor(
    readonly file: string,
    opts: Partial<JsonlRecorderOptions> = {},
  ) {
    this.o = { ...DEFAULT_JSONL_RECORDER, ...opts };
    if (!Number.isInteger(this.o.fsyncEvery) || this.o.fsyncEvery < 0)
      throw new RangeError(`JsonlRecorder: fsyncEvery must be an integer >= 0, got ${this.o.fsyncEvery}`);
    if (this.o.append && this.o.refuseNonEmpty) throw new RangeError('JsonlRecorder: append and refuseNonEmpty exclude each other, got both');
    let fd: number;
    try {
      // refuseNonEmpty: open without truncating, then look at the opened file itself (no window
      // between a check and the open in which another writer could fill it).
      fd = openSync(file, this.o.append ? 'a' : this.o.refuseNonEmpty ? constants.O_WRONLY | constants.O_CREAT : 'w');
    } catch (err) {
      throw new AffectError('AFFECT_ERR_INPUT', `cannot open record file ${file}: ${(err as Error).message}`, {
        stage: 'record',
        cause: err,
        hint: 'check that the folder exists and is writable (--record FILE)',
      });
    }
    if (this.o.refuseNonEmpty) {
      try {
        refuseExistingRecording(file, fstatSync(fd));
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    }
    this.fd = fd;
  }

  /** Writes a stream's facts as a `stream` message line (when it opens, before its messages). */
  writeStream(stream: StreamInfo): void {
    this.write({ type: 'stream', stream });
  }

  /** Writes one message as one line. */
  write(msg: StreamEventMessage | { type: 'stream'; stream: StreamInfo }): void {
    if (this.fd === undefined) return;
    // One writeSync per complete line: never a half line on disk.
    const line = Buffer.from(`${JSON.stringify(msg)}\n`);
    let off = 0;
    while (off < line.length) off += writeSync(this.fd, line, off, line.length - off);
    this.lines++;
    if (this.o.fsyncEvery > 0 && ++this.sinceSync >= this.o.fsyncEvery) {
      fsyncSync(this.fd);
      this.sinceSync = 0;
    }
  }

  /** Flushes to disk and closes the file. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
