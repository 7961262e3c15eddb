/**
 * Structured logging (pino) to stderr, so stdout stays clean for `run --json` output.
 * Use `logger.child({ streamId })` per stream. Transcripts go only in structured fields.
 */
import { pino, type Logger } from 'pino';

let root: Logger | undefined;

/** The process-wide logger (created on first use, level from CIRCUMPLEX_LOG_LEVEL via setLogLevel). */
export function getLogger(): Logger {
  root ??= pino({ level: 'info', base: { app: 'circumplex' } }, pino.destination({ fd: 2, sync: true }));
  return root;
}

/** Changes the level of the process-wide logger. */
export function setLogLevel(level: string): void {
  getLogger().level = level;
}

export type { Logger };
