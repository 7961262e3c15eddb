/**
 * One stream's windows and their outputs in order, for the streaming-speech tests (the cached mode
 * and its head compare a model's full-window outputs with a stream's, window by window).
 */

/** `count` consecutive windows of `n` samples, `hop` apart, from sample `from` of `audio`. */
export function consecutiveWindows(audio: Float32Array, hop: number, count: number, from = 0, n = 16_000): Float32Array[] {
  return Array.from({ length: count }, (_, k) => audio.slice(from + k * hop, from + k * hop + n));
}

/** Each window through `m.infer`, one after another (a stream's order); the outputs in that order. */
export async function inferInOrder<T>(m: { infer(w: Float32Array): Promise<T> }, ws: readonly Float32Array[]): Promise<T[]> {
  const out: T[] = [];
  for (const w of ws) out.push(await m.infer(w));
  return out;
}
