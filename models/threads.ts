/**
 * How many ONNX Runtime intra-op threads a session gets.
 *
 * Left to itself, onnxruntime-node 1.30 picks its own count, and on the 2-core KVM guest this
 * project is measured on it picks **one**: the wav2vec2-large layout then takes 168 ms per 1 s
 * window where two threads take 104 ms (docs/bench.md, "Intra-op threads"). On a small model the
 * opposite holds: speech-va at batch 32 costs 15 ms of CPU per call on one thread and 22 ms on two
 * (the second thread saves 4 ms of wall time and burns 7 of CPU that other streams need). So
 * `auto`, the default, decides by the model's size on disk: one thread below
 * {@link AUTO_THREADS_MIN_BYTES}, and every available core (at most {@link AUTO_THREADS_MAX}) above.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** A session's intra-op threads: a count (≥ 1), 0 for onnxruntime's own default, or `auto`. */
export type IntraOpThreads = number | 'auto';

/** Files at least this large (8 MiB: the conv front end of a wav2vec2 export and up) get every core under `auto`. */
export const AUTO_THREADS_MIN_BYTES = 8 * 1024 * 1024;

/** The most threads `auto` gives one session (beyond this a per-window transformer call gains little and spins more). */
export const AUTO_THREADS_MAX = 8;

/** Help text for the `--threads` flag. */
export const THREADS_HELP =
  `ONNX intra-op threads per model session: a count, 0 (onnxruntime's own choice) or auto (default: 1 for models under ${AUTO_THREADS_MIN_BYTES / 1024 / 1024} MiB, ` +
  `every core up to ${AUTO_THREADS_MAX} for larger ones)`;

/** A resolved setting: the count passed to onnxruntime (0 = its default) and why, for the model's log line. */
export interface ResolvedThreads {
  readonly threads: number;
  readonly why: string;
}

/** "2 intra-op threads", or onnxruntime's default for 0. */
export function threadCountText(threads: number): string {
  return threads === 0 ? "onnxruntime's default intra-op threads" : `${threads} intra-op thread${threads === 1 ? '' : 's'}`;
}

/** "2 intra-op threads (auto: 631 MiB model, 2 cores)", for a model's load line. */
export function threadsText(t: ResolvedThreads): string {
  return t.threads === 0 ? threadCountText(0) : `${threadCountText(t.threads)} (${t.why})`;
}

/** Checks a setting; throws a RangeError naming `name` and the accepted values. */
export function checkIntraOpThreads(v: IntraOpThreads, name = 'intraOpThreads'): IntraOpThreads {
  if (v === 'auto') return v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 256) {
    throw new RangeError(`${name} must be auto or an integer in [0, 256] (0: onnxruntime's own default), got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parses the `--threads` flag's text ('auto', or an integer in [0, 256]). */
export function parseIntraOpThreads(text: string, name = '--threads'): IntraOpThreads {
  const t = text.trim();
  if (t === 'auto') return 'auto';
  const n = Number(t);
  if (!/^\d+$/.test(t) || n > 256) throw new RangeError(`${name} must be auto or an integer in [0, 256] (0: onnxruntime's own default), got "${text}"`);
  return n;
}

/**
 * Resolves `setting` (default `auto`) for the model file at `modelPath`. `cores` and `sizeOf` are
 * for tests; a file whose size cannot be read counts as small (the session's own open then names it).
 */
export function resolveIntraOpThreads(
  setting: IntraOpThreads | undefined,
  modelPath: string,
  cores: number = availableParallelism(),
  sizeOf: (p: string) => number = (p) => statSync(p).size,
): ResolvedThreads {
  const s = checkIntraOpThreads(setting ?? 'auto');
  if (s !== 'auto') return { threads: s, why: s === 0 ? "onnxruntime's default" : 'set' };
  let bytes: number;
  try {
    bytes = sizeOf(modelPath);
  } catch {
    bytes = 0;
  }
  const mib = (bytes / 1024 / 1024).toFixed(bytes < 1024 * 1024 ? 2 : 0);
  if (bytes < AUTO_THREADS_MIN_BYTES) return { threads: 1, why: `auto: ${mib} MiB model` };
  const threads = Math.max(1, Math.min(AUTO_THREADS_MAX, Math.floor(cores)));
  return { threads, why: `auto: ${mib} MiB model, ${cores} cores` };
}
