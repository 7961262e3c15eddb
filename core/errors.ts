/**
 * Errors that reach users as data: a stable code, whether the stream can go on, and what to do next.
 * Every code is documented in README.md ("Error codes").
 */
export const ERROR_CODES = [
  'AFFECT_ERR_CONFIG',
  'AFFECT_ERR_INPUT',
  'AFFECT_ERR_AUDIO_FORMAT',
  'AFFECT_ERR_RECORDER',
  'AFFECT_ERR_MODEL_MISSING',
  'AFFECT_ERR_MODEL_CHECKSUM',
  'AFFECT_ERR_MODEL_SIGNATURE',
  'AFFECT_ERR_MODEL_LOAD',
  'AFFECT_ERR_DEVICE_UNAVAILABLE',
  'AFFECT_ERR_DOWNLOAD',
  'AFFECT_ERR_INFERENCE',
  'AFFECT_ERR_ASR',
  'AFFECT_ERR_ASR_MODEL',
  'AFFECT_ERR_PROTOCOL',
  'AFFECT_ERR_AUTH',
  'AFFECT_ERR_RATE_LIMIT',
  'AFFECT_ERR_SLOW_CONSUMER',
  'AFFECT_ERR_STREAM_UNKNOWN',
  'AFFECT_ERR_INTERNAL',
] as const;

/** A stable error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Extra facts carried by an {@link AffectError}. */
export interface AffectErrorOptions extends ErrorOptions {
  /** True when the stream can go on (one item is lost), false when it must end. */
  recoverable?: boolean;
  /** The stage or component that failed, e.g. `speech-model` or `ingest`. */
  stage?: string;
  /** What the user should do next. Appended to the message when printed. */
  hint?: string;
}

/** The one error type the project throws at users. */
export class AffectError extends Error {
  override readonly name = 'AffectError';
  readonly code: ErrorCode;
  readonly recoverable: boolean;
  readonly stage: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: AffectErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.recoverable = opts.recoverable ?? false;
    this.stage = opts.stage;
    this.hint = opts.hint;
  }

  /** The message with its hint, as printed to a terminal. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}\n  hint: ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

/** Wraps anything thrown into an AffectError, keeping it as the cause. */
export function toAffectError(err: unknown, code: ErrorCode = 'AFFECT_ERR_INTERNAL', stage?: string): AffectError {
  if (err instanceof AffectError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AffectError(code, message, { cause: err, ...(stage === undefined ? {} : { stage }) });
}
