/**
 * Sliding analysis windows over the audio, in audio time: window k ends at sample
 * `windowSamples + k * hopSamples`, and is stamped with that end time.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { msToSamples, samplesToMs, type AudioChunk, type AudioWindow } from '../../core/types.js';

/** Options for {@link windowBySamples}. */
export interface WindowOptions {
  /** Window length in ms of audio. Default 1000. */
  windowMs: number;
  /** Hop between window ends in ms of audio. Default 250 (4 frames per second). */
  hopMs: number;
  /**
   * At end of input, audio after the last full window's end is covered by one final window ending at
   * the last sample, if that tail is at least this long (ms). A stream shorter than one window yields a
   * single short window if it is at least this long. Default 100.
   */
  minTailMs: number;
  /** Gaps in `startSample` up to this long (ms) are filled with silence; longer gaps restart the windows. Default 2000. */
  maxGapFillMs: number;
}

export const DEFAULT_WINDOW: WindowOptions = { windowMs: 1000, hopMs: 250, minTailMs: 100, maxGapFillMs: 2000 };

/** Validates and completes window options (RangeError naming the option). */
export function resolveWindowOptions(opts: Partial<WindowOptions> = {}): WindowOptions {
  const o = { ...DEFAULT_WINDOW, ...opts };
  if (!(o.windowMs > 0) || !Number.isFinite(o.windowMs)) throw new RangeError(`windowBySamples: windowMs must be > 0, got ${o.windowMs}`);
  if (!(o.hopMs > 0) || !Number.isFinite(o.hopMs)) throw new RangeError(`windowBySamples: hopMs must be > 0, got ${o.hopMs}`);
  if (o.hopMs > o.windowMs) throw new RangeError(`windowBySamples: hopMs must be <= windowMs, got hopMs ${o.hopMs} > windowMs ${o.windowMs}`);
  if (!(o.minTailMs >= 0)) throw new RangeError(`windowBySamples: minTailMs must be >= 0, got ${o.minTailMs}`);
  if (!(o.maxGapFillMs >= 0)) throw new RangeError(`windowBySamples: maxGapFillMs must be >= 0, got ${o.maxGapFillMs}`);
  return o;
}

/**
 * AudioChunk → AudioWindow. Holds at most one window and 8 hops of samples (bounded). Chunks may have any
 * length; overlapping chunks are trimmed and small gaps filled with zeros so windows stay on the
 * audio clock.
 */
export function windowBySamples(opts: Partial<WindowOptions> = {}): OperatorFunction<AudioChunk, AudioWindow> {
  const o = resolveWindowOptions(opts);
  const winN = Math.max(1, msToSamples(o.windowMs));
  const hopN = Math.max(1, msToSamples(o.hopMs));
  const minTailN = msToSamples(o.minTailMs);
  const maxGapN = msToSamples(o.maxGapFillMs);
  // Room for one window and 8 hops: a new buffer (one copy of a window) every 8 hops.
  const bufCap = winN + 8 * hopN;
  return (source) =>
    new Observable<AudioWindow>((sub) => {
      // Append-only buffer of the recent samples: `buf[0]` is sample `bufStart`, `total` = index one
      // past the newest sample. Windows are views into it (no copy per window); samples once written
      // are never overwritten (a full buffer is replaced by a new one holding the last window), so a
      // window stays valid however long downstream keeps it. Downstream must not write into or
      // transfer a window's buffer (the model stages copy what they send to their workers).
      // Allocated at the first chunk, not at subscription: a burst of new calls (hundreds of
      // pipelines built in one tick) would otherwise allocate and zero 192 KB per stream at once.
      let buf = new Float32Array(0);
      let bufStart = 0;
      let origin = -1; // sample index of the stream's first sample (windows are relative to it)
      let total = 0;
      let nextEnd = 0; // end sample of the next full window
      let lastEnd = -1; // end sample of the last emitted window
      let index = 0;
      let streamId = '';

      const emit = (end: number, len: number): void => {
        const samples = buf.subarray(end - len - bufStart, end - bufStart);
        sub.next({ streamId, index: index++, startSample: end - len, endSample: end, tMs: samplesToMs(end), samples });
        lastEnd = end;
      };
      const push = (samples: Float32Array, from: number): void => {
        // Block copies, up to each window end in turn (total < nextEnd always holds here).
        let i = from;
        while (i < samples.length) {
          const n = Math.min(samples.length - i, nextEnd - total);
          if (total - bufStart + n > buf.length) {
            // Full: a new buffer starting with the samples the next windows still need.
            const keep = Math.min(winN, total - bufStart);
            const next = new Float32Array(bufCap);
            next.set(buf.subarray(total - bufStart - keep, total - bufStart));
            buf = next;
            bufStart = total - keep;
          }
          buf.set(samples.subarray(i, i + n), total - bufStart);
          i += n;
          total += n;
          if (total === nextEnd) {
            emit(total, winN);
            nextEnd += hopN;
          }
        }
      };
      const start = (at: number): void => {
        origin = at;
        total = at;
        nextEnd = at + winN;
        lastEnd = -1;
        // Emitted windows may still view the old buffer: start a new one (or the first one).
        if (index > 0 || buf.length === 0) buf = new Float32Array(bufCap);
        bufStart = at;
      };

      return source.subscribe({
        next: (chunk) => {
          streamId = chunk.streamId;
          if (origin < 0) start(chunk.startSample);
          let skip = 0;
          if (chunk.startSample < total) {
            // Overlap (a source re-sent audio): keep only the new part.
            skip = total - chunk.startSample;
            if (skip >= chunk.samples.length) return;
          } else if (chunk.startSample > total) {
            const gap = chunk.startSample - total;
            if (gap <= maxGapN) push(new Float32Array(gap), 0);
            else start(chunk.startSample); // a long gap: windows restart on the new audio
          }
          push(chunk.samples, skip);
        },
        error: (err: unknown) => sub.error(err),
        complete: () => {
          if (origin >= 0) {
            const have = total - origin;
            if (lastEnd < 0) {
              // Shorter than one window: one short window if it carries enough audio.
              if (have > 0 && have >= minTailN) emit(total, Math.min(have, winN));
            } else if (total - lastEnd > 0 && total - lastEnd >= minTailN) {
              // The tail after the last full window: one more window ending at the last sample.
              emit(total, winN);
            }
          }
          sub.complete();
        },
      });
    });
}
