/**
 * Shared commander argument parsers, so every subcommand rejects a bad number the same way:
 * `--hop-ms must be a number >= 1, got "abc"`.
 */
import { InvalidArgumentError } from 'commander';
import { STREAM_ID } from '../server/hub.js';

/** Parses a finite number >= `min` (and <= `max` when given); integers only when `integer`. */
export function numberOption(name: string, min: number, integer = false, max = Number.POSITIVE_INFINITY): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}, ${max}]`;
      throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} ${range}, got "${v}"`);
    }
    return n;
  };
}

/**
 * Parses a stream id the hub accepts, so a bad --stream-id fails before any model loads (serve used
 * to print the error after listening and then hang; run wrote ids no replay could open).
 */
export function streamIdOption(name: string): (v: string) => string {
  return (v: string): string => {
    if (!STREAM_ID.test(v)) throw new InvalidArgumentError(`${name} must be 1-128 letters, digits and . _ : -, got "${v}"`);
    return v;
  };
}
