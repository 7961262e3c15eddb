/**
 * The last step of every source: interleaved float samples at the input's rate and channel count
 * → 16 kHz mono, sanitized, stamped with a running sample index (audio time).
 */
import { downmix, sanitizeSamples, StreamResampler } from '../audio.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk } from '../../core/types.js';

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
    /** Take only this channel (0-based) instead of averaging all of them. */
    readonly channel?: number,
  ) {
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`AudioConverter: channels must be a positive integer, got ${channels}`);
    if (channel !== undefined && !(Number.isInteger(channel) && channel >= 0 && channel < channels)) {
      throw new RangeError(`AudioConverter: channel must be an integer in [0, ${channels - 1}], got ${channel}`);
    }
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
    const mono = this.channel === undefined ? downmix(interleaved, this.channels) : pickChannel(interleaved, this.channels, this.channel);
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

/** One channel of interleaved samples. */
export function pickChannel(interleaved: Float32Array, channels: number, channel: number): Float32Array {
  if (channels === 1) return interleaved;
  const n = Math.floor(interleaved.length / channels);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = interleaved[i * channels + channel] ?? 0;
  return out;
}
