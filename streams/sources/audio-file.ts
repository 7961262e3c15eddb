/**
 * Audio files by content: WAV (RIFF/WAVE) or FLAC, told apart by their first bytes (magic), not by
 * the extension, so `talk.flac` that is really a WAV (or the reverse) still works and anything else
 * gets one clear AFFECT_ERR_AUDIO_FORMAT naming the file.
 */
import { defer, from, switchMap, type Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import type { AudioChunk } from '../../core/types.js';
import { flacFileSource, id3v2Length, isFlacMarker, readFlacInfo } from './flac-file.js';
import { openInput, readWavInfo, wavFileSource, type WavFileSourceOptions } from './wav-file.js';

/** The container formats the file sources read. */
export type AudioFileKind = 'wav' | 'flac';

/** What a probe found: the format and the header facts the sources need. */
export interface AudioFileInfo {
  readonly kind: AudioFileKind;
  readonly sampleRateHz: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  /** Sample instants in the file (0 for a FLAC stream of unknown length). */
  readonly frames: number;
  readonly durationMs: number;
}

/** Options for {@link audioFileSource}: those of the WAV and FLAC sources. */
export type AudioFileSourceOptions = WavFileSourceOptions;

/** Tells WAV from FLAC by the first bytes (an ID3v2 tag before `fLaC` is allowed); undefined for neither. */
export function sniffAudio(head: Uint8Array): AudioFileKind | undefined {
  const latin = (a: number, b: number) => String.fromCharCode(...head.subarray(a, b));
  if (head.length >= 12 && latin(0, 4) === 'RIFF' && latin(8, 12) === 'WAVE') return 'wav';
  if (isFlacMarker(head)) return 'flac';
  const id3 = id3v2Length(head);
  if (id3 > 0 && isFlacMarker(head, id3)) return 'flac';
  return undefined;
}

/**
 * Reads the header of a WAV or FLAC file (fails fast, before any model is loaded): missing or
 * unreadable → AFFECT_ERR_INPUT; neither format, or a bad header → AFFECT_ERR_AUDIO_FORMAT.
 */
export async function probeAudioFile(file: string): Promise<AudioFileInfo> {
  const fh = await openInput(file);
  try {
    const head = Buffer.alloc(16);
    const { bytesRead } = await fh.read(head, 0, 16, 0);
    let kind = sniffAudio(head.subarray(0, bytesRead));
    if (kind === undefined && bytesRead >= 10 && id3v2Length(head) > 0) {
      // A long ID3v2 tag: look for fLaC right after it.
      const at = id3v2Length(head);
      const m = Buffer.alloc(4);
      const r = await fh.read(m, 0, 4, at);
      if (r.bytesRead === 4 && isFlacMarker(m)) kind = 'flac';
    }
    if (kind === 'flac') {
      const i = await readFlacInfo(fh, file);
      return { kind, sampleRateHz: i.sampleRateHz, channels: i.channels, bitsPerSample: i.bitsPerSample, frames: i.frames, durationMs: i.durationMs };
    }
    if (kind === 'wav') {
      const i = await readWavInfo(fh, file);
      return { kind, sampleRateHz: i.sampleRateHz, channels: i.channels, bitsPerSample: i.bitsPerSample, frames: i.frames, durationMs: i.durationMs };
    }
    const size = (await fh.stat()).size;
    const magic = head.subarray(0, Math.min(bytesRead, 4));
    const shown = [...magic].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
    throw new AffectError('AFFECT_ERR_AUDIO_FORMAT', `${file}: not a WAV or FLAC file (${size} bytes, starts with "${shown}")`, {
      stage: 'audio-file',
      hint: 'circumplex reads WAV (RIFF/WAVE) and FLAC files; convert others with: sox INPUT -r 16000 -c 1 -b 16 out.wav',
    });
  } finally {
    await fh.close();
  }
}

/**
 * Emits a WAV or FLAC file (told apart by content) as 16 kHz mono {@link AudioChunk}s. Cold: each
 * subscription probes and reads the file anew. Errors are AffectErrors naming the file.
 */
export function audioFileSource(file: string, opts: Partial<AudioFileSourceOptions> = {}): Observable<AudioChunk> {
  return defer(() => from(probeAudioFile(file))).pipe(switchMap((info) => (info.kind === 'flac' ? flacFileSource(file, opts) : wavFileSource(file, opts))));
}
