/**
 * Structured logging (pino) to stderr, so stdout stays clean for `run --json` output.
 * Use `logger.child({ streamId })` per stream. Transcripts go only in structured fields.
 */
import { pino, type Logger } from 'pino';
import { envLogLevel } from './config.js';

let root: Logger | undefined;

/**
 * The process-wide logger, created on first use at CIRCUMPLEX_LOG_LEVEL (default info), so an
 * embedding program (`createEngine`) gets the level the environment names; the commands also set
 * it from their flags with setLogLevel.
 */
export function getLogger(): Logger {
  root ??= pino({ level: envLogLevel() ?? 'info', base: { app: 'circumplex' } }, pino.destination({ fd: 2, sync: true }));
  return root;
}

/** Changes the level of the process-wide logger. */
export function setLogLevel(level: string): void {
  getLogger().level = level;
}

export type { Logger };
