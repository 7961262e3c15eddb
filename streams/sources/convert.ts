/**
 * The last step of every source: interleaved float samples at the input's rate and channel count
 * → 16 kHz mono, sanitized, stamped with a running sample index (audio time).
 */
import { downmix, sanitizeSamples, StreamResampler } from '../audio.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk } from '../types.js';

/** Stateful converter for one stream (keeps resampler state and the sample counter across chunks). */
export class AudioConverter {
  private readonly resampler: StreamResampler;
  /** Next output sample index at 16 kHz. */
  private next: number;
  /** Samples that were NaN/Inf (replaced by 0) so far. */
  nonFinite = 0;
  /** Samples clipped to [-1, 1] so far. */
  clipped = 0;

  constructor(
    readonly streamId: string,
    readonly inputRateHz: number,
    readonly channels: number,
    startSample = 0,
  ) {
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`AudioConverter: channels must be a positive integer, got ${channels}`);
    this.resampler = new StreamResampler(inputRateHz, PIPELINE_SAMPLE_RATE_HZ);
    this.next = startSample;
  }

  /** Index the next emitted sample will have. */
  get position(): number {
    return this.next;
  }

  /** Converts one block of interleaved samples; null when it yields no output samples. */
  push(interleaved: Float32Array): AudioChunk | null {
    // Sanitize before resampling so one NaN cannot smear through the filter state.
    const s = sanitizeSamples(interleaved);
    this.nonFinite += s.nonFinite;
    this.clipped += s.clipped;
    const mono = downmix(interleaved, this.channels);
    // Callers hand over freshly decoded arrays, so passing them through unchanged at 16 kHz mono is safe.
    const samples = this.resampler.process(mono);
    if (samples.length === 0) return null;
    return this.emit(samples);
  }

  /** End of input: the resampler's last samples (if any), so the total length is exact. */
  flush(): AudioChunk | null {
    const samples = this.resampler.flush();
    return samples.length === 0 ? null : this.emit(samples);
  }

  private emit(samples: Float32Array): AudioChunk {
    const chunk: AudioChunk = { streamId: this.streamId, startSample: this.next, samples };
    this.next += samples.length;
    return chunk;
  }
}
