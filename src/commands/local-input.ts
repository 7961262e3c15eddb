/**
 * The local audio input of `run` and `serve` (a WAV/FLAC file, or stdin: a WAV told apart by its
 * header, else raw s16le), opened as one stream, or as one stream per channel with
 * `--channels-as-streams` (`<stream-id>:ch0`, `<stream-id>:ch1`, …). Everything here is checked
 * before any model loads, so a bad input fails in milliseconds.
 */
import { PassThrough, type Readable } from 'node:stream';
import { tap, type Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { FlowControl } from '../../streams/flow.js';
import { audioFileSource, probeAudioFile } from '../../streams/sources/audio-file.js';
import { rawPcmSource, sniffStdin } from '../../streams/sources/stdin.js';
import type { WavInfo } from '../../streams/sources/wav-file.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk } from '../../core/types.js';
import { STREAM_ID } from '../server/hub.js';

/** The input flags `run` and `serve` share. */
export interface LocalInputFlags {
  /** A file path, or `-` for stdin. */
  input: string;
  /** `--rate`: sample rate of raw stdin (default 16000). With a WAV or FLAC it must match the header, or it is an error. */
  rate?: number;
  /** `--channels`: channels of raw stdin (default 1). With a WAV or FLAC it must match the header, or it is an error. */
  channels?: number;
  /** One stream per channel. */
  channelsAsStreams?: boolean;
  /** Stream id (the per-channel ids get `:ch<k>` appended). */
  streamId: string;
  /** Pace a file at real time. */
  realtime?: boolean;
  /** Pacing factor with realtime. */
  speed?: number;
}

/** One local stream: its id and its audio (cold; subscribe once). */
export interface LocalStream {
  readonly streamId: string;
  /** The channel it takes (with --channels-as-streams), else undefined (all channels averaged). */
  readonly channel: number | undefined;
  readonly audio$: Observable<AudioChunk>;
}

/** The opened local input. */
export interface LocalInput {
  /** 'file', 'wav-stdin' (a WAV piped on stdin) or 'raw-stdin'. */
  readonly kind: 'file' | 'wav-stdin' | 'raw-stdin';
  /** Channels of the input (from the header, or --channels for raw stdin). */
  readonly channels: number;
  /** Sample rate of the input in Hz. */
  readonly sampleRateHz: number;
  /** The streams: one, or one per channel. */
  readonly streams: readonly LocalStream[];
  /** Highest sample index (16 kHz) any stream has reached; for run's summary. */
  readonly samplesSeen: () => number;
}

/** The stream ids `--channels-as-streams` gives: `<streamId>:ch0` … `<streamId>:ch<n-1>`. */
export function channelStreamIds(streamId: string, channels: number): string[] {
  return Array.from({ length: channels }, (_, k) => `${streamId}:ch${k}`);
}

/** A --rate/--channels given with a file or WAV that says otherwise is a config error (it used to be ignored silently). */
function checkDeclared(flags: LocalInputFlags, what: string, header: { sampleRateHz: number; channels: number }): void {
  if (flags.rate !== undefined && flags.rate !== header.sampleRateHz) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--rate ${flags.rate} does not match ${what}, which says ${header.sampleRateHz} Hz`, {
      hint: 'drop --rate: WAV and FLAC input carry their own rate (--rate is for raw s16le on stdin)',
    });
  }
  if (flags.channels !== undefined && flags.channels !== header.channels) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--channels ${flags.channels} does not match ${what}, which has ${header.channels} channel(s)`, {
      hint: 'drop --channels: WAV and FLAC input carry their own channel count (--channels is for raw s16le on stdin)',
    });
  }
}

/**
 * Opens the local input: probes a file, or sniffs stdin for a WAV header, checks --rate/--channels
 * against what the input says and --channels-as-streams against its channel count, and returns one
 * source per stream. `flow` (offline input) is shared by every stream's source.
 */
export async function openLocalInput(flags: LocalInputFlags, opts: { flow?: FlowControl; logger?: Logger; stdin?: Readable } = {}): Promise<LocalInput> {
  const { flow, logger } = opts;
  let kind: LocalInput['kind'];
  let channels: number;
  let sampleRateHz: number;
  let stdinStream: Readable | undefined;
  let wav: WavInfo | undefined;
  if (flags.input !== '-') {
    const info = await probeAudioFile(flags.input);
    logger?.debug({ file: flags.input, ...info }, 'input');
    checkDeclared(flags, flags.input, info);
    kind = 'file';
    channels = info.channels;
    sampleRateHz = info.sampleRateHz;
  } else {
    const sniffed = await sniffStdin(opts.stdin ?? process.stdin);
    stdinStream = sniffed.stream;
    if (sniffed.kind === 'wav') {
      wav = sniffed.info;
      if (wav.channels > 32)
        throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `the WAV on stdin has ${wav.channels} channels; at most 32 are supported`, {
          stage: 'stdin',
          hint: 'mix it down first, e.g. sox -t wav - -c 2 -t wav -',
        });
      checkDeclared(flags, 'the WAV header on stdin', wav);
      logger?.debug({ sampleRateHz: wav.sampleRateHz, channels: wav.channels, bitsPerSample: wav.bitsPerSample, format: wav.format }, 'WAV on stdin');
      kind = 'wav-stdin';
      channels = wav.channels;
      sampleRateHz = wav.sampleRateHz;
    } else {
      kind = 'raw-stdin';
      channels = flags.channels ?? 1;
      sampleRateHz = flags.rate ?? PIPELINE_SAMPLE_RATE_HZ;
    }
  }
  if (flags.channelsAsStreams && channels < 2) {
    const from = kind === 'file' ? `${flags.input} has` : kind === 'wav-stdin' ? 'the WAV on stdin has' : 'stdin was declared';
    throw new AffectError('AFFECT_ERR_CONFIG', `--channels-as-streams needs an input with 2 or more channels; ${from} ${channels}`, {
      hint: kind === 'raw-stdin' ? 'declare the channels of raw stdin with --channels 2' : 'drop --channels-as-streams for a mono input',
    });
  }
  const perChannel = flags.channelsAsStreams === true;
  const ids = perChannel ? channelStreamIds(flags.streamId, channels) : [flags.streamId];
  // `:ch<k>` can take a long --stream-id past the hub's 128 characters (run wrote ids no replay could open).
  const tooLong = ids.find((id) => !STREAM_ID.test(id));
  if (tooLong !== undefined) {
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      `--channels-as-streams makes the stream id "${tooLong}" (${tooLong.length} characters); stream ids are at most 128`,
      {
        hint: `use a --stream-id of at most ${128 - `:ch${channels - 1}`.length} characters`,
      },
    );
  }
  // stdin can be read once: with one stream per channel, each channel's source reads its own tee of it.
  const stdinFor = (): Readable => {
    if (ids.length === 1) return stdinStream!;
    const tee = new PassThrough();
    stdinStream!.pipe(tee);
    return tee;
  };
  let seen = 0;
  const streams = ids.map((streamId, k): LocalStream => {
    const channel = perChannel ? k : undefined;
    const pick = channel !== undefined ? { channel } : {};
    const source$ =
      kind === 'file'
        ? audioFileSource(flags.input, {
            streamId,
            realtime: flags.realtime ?? false,
            ...(flags.speed !== undefined ? { speed: flags.speed } : {}),
            ...pick,
            ...(flow ? { flow } : {}),
          })
        : rawPcmSource(stdinFor(), {
            sampleRateHz,
            channels,
            streamId,
            ...(wav ? { sample: { format: wav.format, bitsPerSample: wav.bitsPerSample } } : {}),
            ...pick,
            ...(flow ? { flow } : {}),
          });
    return { streamId, channel, audio$: source$.pipe(tap((c) => (seen = Math.max(seen, c.startSample + c.samples.length)))) };
  });
  return { kind, channels, sampleRateHz, streams, samplesSeen: () => seen };
}
