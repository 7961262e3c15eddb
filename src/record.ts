/**
 * JSONL recorder for `--record FILE`: one wire message (core/protocol.ts StreamEventMessage) per
 * line, written with one synchronous write per line. Each stream's facts (hopMs, windowMs,
 * sampleRateHz) go in as a `stream` message (the one subscribers get) when it opens, so a replay
 * announces the stream exactly as it was served. A line is either fully written or not at all
 * when the process is killed, so the file is always valid JSONL (every line parses).
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { StreamEventMessage, StreamInfo } from '../core/protocol.js';
import { AffectError } from '../core/errors.js';

/** Options for {@link JsonlRecorder}. */
export interface JsonlRecorderOptions {
  /** Append to an existing file instead of truncating it. Default false. */
  append: boolean;
  /** fsync after this many lines (0: only on close). Default 0. */
  fsyncEvery: number;
}

export const DEFAULT_JSONL_RECORDER: JsonlRecorderOptions = { append: false, fsyncEvery: 0 };

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
    try {
      this.fd = openSync(file, this.o.append ? 'a' : 'w');
    } catch (err) {
      throw new AffectError('AFFECT_ERR_INPUT', `cannot open record file ${file}: ${(err as Error).message}`, {
        stage: 'record',
        cause: err,
        hint: 'check that the folder exists and is writable (--record FILE)',
      });
    }
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
