/**
 * The `/v1/ingest` protocol as a pure state machine (no sockets): a publisher sends a JSON `start`
 * (stream id, encoding, rate, channels), then audio as binary frames or JSON `audio` messages with
 * base64 payloads, then `stop`. Each inbound frame either yields 16 kHz mono float samples or is
 * rejected with a per-frame error (stable code + reason, counted). Never a throw, never a silent
 * wrong value:
 *
 * | input                         | handling                                                   |
 * | ----------------------------- | ---------------------------------------------------------- |
 * | rate ≠ 16 kHz                 | resampled (streaming, state kept across frames)            |
 * | 2+ channels                   | downmixed (channel average)                                |
 * | WAV header (RIFF…WAVE)        | stripped; its fmt chunk wins over `start` (notice sent)    |
 * | empty frame                   | rejected: AFFECT_ERR_AUDIO_FORMAT / `empty`                |
 * | bytes not a whole sample frame| rejected: AFFECT_ERR_AUDIO_FORMAT / `misaligned`           |
 * | NaN / ±Inf (f32le)            | replaced by 0, counted (`samplesNonFinite`)                |
 * | clipping                      | clamped to [-1, 1], counted (`samplesClipped`)             |
 * | bad JSON / unknown message    | rejected: AFFECT_ERR_PROTOCOL / `bad-json`, `bad-message`  |
 * | bad base64                    | rejected: AFFECT_ERR_PROTOCOL / `bad-base64`               |
 * | audio before start / after stop| rejected: AFFECT_ERR_PROTOCOL / `not-started`             |
 */
import { PROTOCOL_VERSION, IngestMessageSchema, type IngestReply } from '../../core/protocol.js';
import { StreamResampler, downmix, mulawToFloat32, sanitizeSamples } from '../../streams/audio.js';
import { PIPELINE_SAMPLE_RATE_HZ } from '../../core/types.js';
import type { ErrorCode } from '../../core/errors.js';

/** Sample encoding of ingest audio. */
export type IngestEncoding = 's16le' | 'mulaw' | 'f32le';

/** Declared format of a publisher's audio. */
export interface IngestFormat {
  encoding: IngestEncoding;
  sampleRateHz: number;
  channels: number;
}

/** Why a frame was rejected (stable strings: metrics label and `reason` in the error reply). */
export type RejectReason = 'empty' | 'misaligned' | 'wav-header' | 'bad-json' | 'bad-message' | 'bad-base64' | 'not-started' | 'already-started' | 'forbidden';

/** What the server should do after one inbound frame. */
export type IngestAction =
  | { kind: 'reply'; reply: IngestReply }
  | { kind: 'start'; streamId: string; format: IngestFormat }
  | { kind: 'audio'; samples: Float32Array; startSample: number }
  | { kind: 'stop' }
  | { kind: 'reject'; reason: RejectReason; code: ErrorCode };

/** Totals for one publisher session. */
export interface IngestStats {
  framesAccepted: number;
  framesRejected: number;
  samplesNonFinite: number;
  samplesClipped: number;
  /** 16 kHz samples produced. */
  samplesOut: number;
}

const BYTES_PER_SAMPLE: Record<IngestEncoding, number> = { s16le: 2, mulaw: 1, f32le: 4 };
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// Full scale for 16-bit: samples at ±32767/32768 are taken as clipped by the source.
const S16_FULL_SCALE = 32767 / 32768;

/** Decodes one publisher's audio frames into 16 kHz mono float; keeps resampler state. */
export class FrameDecoder {
  private resampler: StreamResampler;
  /** μ-law decoded here when the resampler copies its input anyway (no array per frame). */
  private scratch = new Float32Array(0);
  constructor(public format: IngestFormat) {
    this.resampler = new StreamResampler(format.sampleRateHz, PIPELINE_SAMPLE_RATE_HZ);
  }

  /** Switches format (a WAV header said otherwise); resets the resampler. */
  setFormat(format: IngestFormat): void {
    this.format = format;
    this.resampler = new StreamResampler(format.sampleRateHz, PIPELINE_SAMPLE_RATE_HZ);
  }

  /** Decodes raw bytes in the current format; undefined + reason when the frame must be rejected. */
  decode(bytes: Uint8Array, stats: IngestStats): { samples: Float32Array } | { reason: RejectReason; message: string } {
    const { encoding, channels } = this.format;
    if (bytes.byteLength === 0) return { reason: 'empty', message: 'empty audio frame' };
    const frameBytes = BYTES_PER_SAMPLE[encoding] * channels;
    if (bytes.byteLength % frameBytes !== 0) {
      return {
        reason: 'misaligned',
        message: `${bytes.byteLength} bytes is not a whole number of ${encoding} × ${channels} ch sample frames (${frameBytes} bytes each)`,
      };
    }
    let interleaved: Float32Array;
    // Copy into an aligned buffer: frame bytes may sit at any offset inside a larger Buffer.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (encoding === 's16le') {
      interleaved = new Float32Array(bytes.byteLength / 2);
      for (let i = 0; i < interleaved.length; i++) {
        const v = view.getInt16(i * 2, true) / 32768;
        if (v >= S16_FULL_SCALE || v <= -1) stats.samplesClipped++;
        interleaved[i] = v;
      }
    } else if (encoding === 'f32le') {
      interleaved = new Float32Array(bytes.byteLength / 4);
      for (let i = 0; i < interleaved.length; i++) interleaved[i] = view.getFloat32(i * 4, true);
      const bad = sanitizeSamples(interleaved);
      stats.samplesNonFinite += bad.nonFinite;
      stats.samplesClipped += bad.clipped;
    } else if (this.resampler.fromHz !== this.resampler.toHz) {
      // The resampler copies its input: decode into a reused array (the table lookup of mulawToFloat32).
      if (this.scratch.length < bytes.byteLength) this.scratch = new Float32Array(Math.max(bytes.byteLength, 1024));
      interleaved = mulawToFloat32(bytes, this.scratch);
    } else {
      interleaved = mulawToFloat32(bytes);
    }
    const mono = downmix(interleaved, channels);
    return { samples: clampUnit(this.resampler.process(mono)) };
  }

  /** End of stream: the samples the resampler held back for its look-ahead. */
  flush(): Float32Array {
    return clampUnit(this.resampler.flush());
  }
}

/** The resampler's windowed-sinc kernel can overshoot full-scale input slightly: keep [-1, 1]. */
function clampUnit(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) {
    const v = x[i] ?? 0;
    if (v > 1) x[i] = 1;
    else if (v < -1) x[i] = -1;
  }
  return x;
}

/** Parses a WAV header at the start of a frame; returns its format and where the audio starts. */
export function parseWavHeader(buf: Uint8Array): { format: IngestFormat; dataOffset: number } | { error: string } | undefined {
  const ascii = (o: number) => String.fromCharCode(buf[o] ?? 0, buf[o + 1] ?? 0, buf[o + 2] ?? 0, buf[o + 3] ?? 0);
  if (buf.byteLength < 12 || ascii(0) !== 'RIFF' || ascii(8) !== 'WAVE') return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 12;
  let format: IngestFormat | undefined;
  while (off + 8 <= buf.byteLength) {
    const id = ascii(off);
    const size = view.getUint32(off + 4, true);
    if (id === 'fmt ') {
      if (off + 8 + 16 > buf.byteLength) break;
      const tag = view.getUint16(off + 8, true);
      const channels = view.getUint16(off + 10, true);
      const rate = view.getUint32(off + 12, true);
      const bits = view.getUint16(off + 22, true);
      const pcm = tag === 1 || tag === 0xfffe;
      const encoding: IngestEncoding | undefined =
        pcm && bits === 16 ? 's16le' : (tag === 3 || tag === 0xfffe) && bits === 32 ? 'f32le' : tag === 7 && bits === 8 ? 'mulaw' : undefined;
      if (!encoding) return { error: `WAV format tag ${tag} with ${bits} bits is not supported (use 16-bit PCM, 32-bit float or 8-bit mu-law)` };
      if (channels < 1 || channels > 8 || rate < 4000 || rate > 192000)
        return { error: `WAV header has ${channels} channels at ${rate} Hz (allowed 1-8 channels, 4000-192000 Hz)` };
      format = { encoding, sampleRateHz: rate, channels };
    } else if (id === 'data') {
      if (!format) return { error: 'WAV data chunk before fmt chunk' };
      return { format, dataOffset: off + 8 };
    }
    off += 8 + size + (size % 2);
  }
  return { error: 'WAV header incomplete: send the whole header (up to the data chunk) in the first frame' };
}

/** Options for {@link IngestSession}. */
export interface IngestSessionOptions {
  /** May this publisher use that stream id (token scopes)? */
  canPublish: (streamId: string) => boolean;
}

/** One publisher connection's protocol state. Feed it every inbound frame with {@link handle}. */
export class IngestSession {
  state: 'idle' | 'started' | 'stopped' = 'idle';
  streamId: string | undefined;
  readonly stats: IngestStats = { framesAccepted: 0, framesRejected: 0, samplesNonFinite: 0, samplesClipped: 0, samplesOut: 0 };
  private decoder: FrameDecoder | undefined;
  private frame = -1;

  constructor(private readonly opts: IngestSessionOptions) {}

  /** Handles one inbound WebSocket frame; returns what to do, in order. Never throws. */
  handle(data: Uint8Array, isBinary: boolean): IngestAction[] {
    this.frame++;
    try {
      return isBinary ? this.audio(data) : this.text(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
    } catch (err) {
      // Defensive: a decoder bug must cost one frame, not the connection or the process.
      return this.reject('bad-message', 'AFFECT_ERR_INTERNAL', `frame could not be processed: ${(err as Error).message}`);
    }
  }

  /**
   * Ends the session (on `stop`, or when the publisher disconnects): returns the audio the
   * resampler still held, so the stream's length is exact. Idempotent.
   */
  finish(): IngestAction[] {
    if (this.state !== 'started' || !this.decoder) return [];
    this.state = 'stopped';
    const tail = this.decoder.flush();
    if (tail.length === 0) return [];
    const startSample = this.stats.samplesOut;
    this.stats.samplesOut += tail.length;
    return [{ kind: 'audio', samples: tail, startSample }];
  }

  /** The `stopped` reply with this session's totals. */
  stoppedReply(): IngestReply {
    return { type: 'stopped', streamId: this.streamId ?? '', ...this.stats };
  }

  private text(s: string): IngestAction[] {
    let json: unknown;
    try {
      json = JSON.parse(s);
    } catch {
      return this.reject('bad-json', 'AFFECT_ERR_PROTOCOL', 'text frame is not valid JSON');
    }
    const parsed = IngestMessageSchema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || 'message'}: ${i.message}`)
        .join('; ');
      return this.reject('bad-message', 'AFFECT_ERR_PROTOCOL', `not an ingest message (start | audio | stop): ${problems}`);
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'start': {
        if (this.state !== 'idle')
          return this.reject('already-started', 'AFFECT_ERR_PROTOCOL', 'this connection already started a stream; open a new connection for another');
        if (!this.opts.canPublish(msg.streamId)) return this.reject('forbidden', 'AFFECT_ERR_AUTH', `token may not publish stream "${msg.streamId}"`);
        const format: IngestFormat = { encoding: msg.encoding, sampleRateHz: msg.sampleRateHz, channels: msg.channels };
        this.state = 'started';
        this.streamId = msg.streamId;
        this.decoder = new FrameDecoder(format);
        return [
          { kind: 'start', streamId: msg.streamId, format },
          { kind: 'reply', reply: { type: 'started', streamId: msg.streamId, version: PROTOCOL_VERSION } },
        ];
      }
      case 'audio': {
        if (!BASE64.test(msg.payload) || msg.payload.length % 4 === 1)
          return this.reject('bad-base64', 'AFFECT_ERR_PROTOCOL', 'audio payload is not valid base64');
        return this.audio(Buffer.from(msg.payload, 'base64'));
      }
      case 'stop': {
        if (this.state !== 'started') return this.reject('not-started', 'AFFECT_ERR_PROTOCOL', 'stop without start');
        return [...this.finish(), { kind: 'stop' }, { kind: 'reply', reply: this.stoppedReply() }];
      }
    }
  }

  private audio(bytes: Uint8Array): IngestAction[] {
    if (this.state !== 'started' || !this.decoder) {
      return this.reject('not-started', 'AFFECT_ERR_PROTOCOL', this.state === 'stopped' ? 'audio after stop' : 'send {"type":"start",...} before audio');
    }
    const actions: IngestAction[] = [];
    const wav = parseWavHeader(bytes);
    if (wav && 'error' in wav) return this.reject('wav-header', 'AFFECT_ERR_AUDIO_FORMAT', wav.error);
    if (wav) {
      const f = this.decoder.format;
      const g = wav.format;
      if (f.encoding !== g.encoding || f.sampleRateHz !== g.sampleRateHz || f.channels !== g.channels) {
        this.decoder.setFormat(g);
        actions.push({
          kind: 'reply',
          reply: {
            type: 'error',
            code: 'AFFECT_ERR_AUDIO_FORMAT',
            reason: 'wav-header',
            recoverable: true,
            frame: this.frame,
            message: `WAV header says ${g.encoding} ${g.sampleRateHz} Hz ${g.channels} ch; using it instead of the declared ${f.encoding} ${f.sampleRateHz} Hz ${f.channels} ch`,
          },
        });
      }
      bytes = bytes.subarray(wav.dataOffset);
      // A header-only frame is fine: nothing to decode yet.
      if (bytes.byteLength === 0) {
        this.stats.framesAccepted++;
        return actions;
      }
    }
    const out = this.decoder.decode(bytes, this.stats);
    if ('reason' in out) return [...actions, ...this.reject(out.reason, 'AFFECT_ERR_AUDIO_FORMAT', out.message)];
    this.stats.framesAccepted++;
    const startSample = this.stats.samplesOut;
    this.stats.samplesOut += out.samples.length;
    // The resampler may hold back a sample or two: an empty output is not an error.
    if (out.samples.length > 0) actions.push({ kind: 'audio', samples: out.samples, startSample });
    return actions;
  }

  private reject(reason: RejectReason, code: ErrorCode, message: string): IngestAction[] {
    this.stats.framesRejected++;
    return [
      { kind: 'reject', reason, code },
      { kind: 'reply', reply: { type: 'error', code, reason, message, recoverable: true, frame: this.frame } },
    ];
  }
}
