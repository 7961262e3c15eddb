/**
 * `circumplex run`: one input (WAV or FLAC file, or raw s16le on stdin) through the affect pipeline
 * as fast as the models allow, one line per frame on stdout, a summary on stderr.
 *
 *   circumplex run --input talk.wav --json
 *   circumplex run --input talk.flac --json
 *   sox talk.mp3 -t raw -r 16000 -c 1 -e signed -b 16 - | circumplex run --input - --rate 16000 --json
 *   sox talk.mp3 -t wav - | circumplex run --input - --json          # a WAV on stdin: rate/channels from its header
 *   circumplex run --input call.wav --channels-as-streams --json     # stereo: input:ch0 (left), input:ch1 (right)
 */
import type { Command } from 'commander';
import {
  addEscalationOptions,
  addSmoothingOptions,
  addModelOptions,
  addSpeechStreamingOption,
  checkRecordFree,
  checkRecordIsNotInput,
  fileOption,
  numberOption,
  openRecorderAndEngine,
  streamIdOption,
  type EscalationFlags,
  type SmoothingFlags,
  type VadFlag,
} from './options.js';
import { merge, Subscription } from 'rxjs';
import { openLocalInput } from './local-input.js';
import type { Observable } from 'rxjs';
import { AffectError } from '../../core/errors.js';
import { loadConfig } from '../../core/config.js';
import { getLogger, setLogLevel } from '../../core/log.js';
import { toWire } from '../server/hub.js';
import { FlowControl } from '../../streams/flow.js';
import { PIPELINE_SAMPLE_RATE_HZ, type PipelineEvent } from '../../core/types.js';
import type { StreamEventMessage } from '../../core/protocol.js';

/** Parsed `run` options. */
export interface RunCommandOptions extends EscalationFlags, SmoothingFlags {
  input: string;
  /** Raw stdin's rate (default 16000); with a WAV/FLAC it must match the header. */
  rate?: number;
  /** Raw stdin's channels (default 1); with a WAV/FLAC it must match the header. */
  channels?: number;
  json: boolean;
  record?: string;
  /** `--record-overwrite`: replace a non-empty `--record` file (default: refuse it, AFFECT_ERR_CONFIG). */
  recordOverwrite?: boolean;
  windowMs: number;
  hopMs: number;
  device?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  speechModel: string;
  fusion: string;
  textModel?: string;
  asrModel?: string;
  streamId: string;
  realtime: boolean;
  /** Voice activity detection (default 'on': Silero; 'lite': the distilled detector). */
  vad?: VadFlag;
  /** One stream per channel of a multi-channel input (`<stream-id>:ch0`, …). */
  channelsAsStreams?: boolean;
  /** `--speech-streaming` (default 'off'). */
  speechStreaming?: 'off' | 'cached' | 'frames' | 'chunked';
}

/** What a run did (also printed on stderr). */
export interface RunSummary {
  frames: number;
  droppedWindows: number;
  audioSeconds: number;
  wallSeconds: number;
  /** wall time / audio time: below 1 is faster than real time. */
  realTimeFactor: number;
  /** Seconds spent loading models before the first chunk (not in wallSeconds). */
  loadSeconds: number;
}

/** Registers `circumplex run`. */
export function register(program: Command): void {
  const cmd = program
    .command('run')
    .description('Track affect in a WAV or FLAC file (any rate/channels) or raw s16le on stdin; one line per frame')
    .requiredOption('-i, --input <file>', 'WAV or FLAC file (told apart by content), or - for stdin (a WAV by its header, else raw s16le)')
    .option(
      '--rate <hz>',
      'sample rate of raw stdin input (default 16000); with a WAV or FLAC it must match the header',
      numberOption('--rate', 1000, true, 768_000),
    )
    .option('--channels <n>', 'channels of raw stdin input (default 1); with a WAV or FLAC it must match the header', numberOption('--channels', 1, true, 32))
    .option('--json', 'one JSON wire message (core/protocol.ts) per line on stdout', false)
    .option('--record <file>', 'also write every message to a JSONL file (an existing non-empty file is refused)', fileOption('--record'))
    .option('--record-overwrite', 'replace the --record file when it already holds something', false)
    .option('--window-ms <ms>', 'analysis window length, ms of audio', numberOption('--window-ms', 1, false, 60_000), 1000)
    .option('--hop-ms <ms>', 'hop between frames, ms of audio', numberOption('--hop-ms', 1, false, 60_000), 250)
    .option('--stream-id <id>', 'stream id in the output', streamIdOption('--stream-id'), 'input')
    .option('--realtime', 'pace the file at real-time speed (live drop policy)', false)
    .option(
      '--channels-as-streams',
      'analyse each channel of a stereo (multi-channel) file or raw stdin as its own stream: <stream-id>:ch0, <stream-id>:ch1, … (call recordings: usually agent left, caller right)',
      false,
    );
  addSmoothingOptions(addEscalationOptions(addSpeechStreamingOption(addModelOptions(cmd)))).action(async (opts: RunCommandOptions) => {
    await runCommand(opts);
  });
}

/** Runs the command; resolves with the summary at end of input. Errors are AffectErrors. */
export async function runCommand(
  opts: RunCommandOptions,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<RunSummary> {
  const env = loadConfig();
  setLogLevel(env.logLevel);
  const logger = getLogger().child({ cmd: 'run', streamId: opts.streamId });
  if (opts.hopMs > opts.windowMs) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--hop-ms (${opts.hopMs}) must not exceed --window-ms (${opts.windowMs})`, {
      hint: 'use a hop at most as long as the window, e.g. --window-ms 1000 --hop-ms 250',
    });
  }
  // Offline input is lossless: the source waits for the speech stage (bounded by the flow).
  const flow = opts.realtime ? undefined : new FlowControl({ highWater: 4 });
  // Check the input before loading any model, so a bad path fails in milliseconds. A WAV on stdin is
  // told apart by its header; --channels-as-streams gives `<stream-id>:ch0`, `<stream-id>:ch1`, …
  if (opts.input !== '-') checkRecordIsNotInput(opts.record, opts.input);
  checkRecordFree(opts.record, opts.recordOverwrite);
  const local = await openLocalInput(opts, { logger, ...(flow ? { flow } : {}) });
  const channelIds = local.streams.map((s) => s.streamId);

  const tLoad = performance.now();
  const { recorder, engine } = await openRecorderAndEngine(opts, env, logger);
  const pipelineOpts = opts.realtime ? { whenBusy: 'latest' as const } : { whenBusy: 'queue' as const, ...(flow ? { flow } : {}) };
  // The recording announces each stream's timing first, as serve's does (replay reads it back).
  for (const id of channelIds)
    recorder?.writeStream({ streamId: id, hopMs: opts.hopMs, windowMs: opts.windowMs, sampleRateHz: PIPELINE_SAMPLE_RATE_HZ, state: 'live', lastSeq: -1 });
  const events$: Observable<PipelineEvent> = merge(...local.streams.map((s) => s.audio$.pipe(engine.pipeline(s.streamId, pipelineOpts))));
  const seqs = new Map<string, number>();

  const summary: RunSummary = {
    frames: 0,
    droppedWindows: 0,
    audioSeconds: 0,
    wallSeconds: 0,
    realTimeFactor: 0,
    loadSeconds: (performance.now() - tLoad) / 1000,
  };
  const t0 = performance.now();
  const sub = new Subscription();
  const stopSignals = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping');
    sub.unsubscribe();
    recorder?.close();
    void engine.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stopSignals);
  process.once('SIGTERM', stopSignals);
  // A closed stdout (e.g. `| head`) ends the run quietly, like other Unix tools, instead of an
  // unhandled EPIPE crash.
  let outClosed = false;
  try {
    await new Promise<void>((resolve, reject) => {
      const onOutError = (e: NodeJS.ErrnoException): void => {
        if (e.code !== 'EPIPE') return reject(new AffectError('AFFECT_ERR_INTERNAL', `writing output failed: ${e.message}`, { cause: e }));
        outClosed = true;
        sub.unsubscribe();
        resolve();
      };
      out.on('error', onOutError);
      sub.add(() => out.off('error', onOutError));
      sub.add(
        events$.subscribe({
          next: (event: PipelineEvent) => {
            // One seq per stream, shared by every message of the stream (as the hub does).
            const id = eventStreamId(event);
            const seq = seqs.get(id) ?? 0;
            seqs.set(id, seq + 1);
            const msg: StreamEventMessage = toWire(id, seq, event);
            recorder?.write(msg);
            if (msg.type === 'affect') {
              summary.frames++;
              summary.droppedWindows += msg.droppedWindows;
            }
            if (outClosed) return;
            if (opts.json) out.write(`${JSON.stringify(msg)}\n`);
            else out.write(`${channelIds.length > 1 ? `${msg.streamId}  ` : ''}${humanLine(msg)}\n`);
          },
          error: reject,
          complete: resolve,
        }),
      );
    });
  } finally {
    flow?.close();
    sub.unsubscribe();
    process.off('SIGINT', stopSignals);
    process.off('SIGTERM', stopSignals);
    recorder?.close();
    await engine.close();
  }
  summary.audioSeconds = local.samplesSeen() / PIPELINE_SAMPLE_RATE_HZ;
  summary.wallSeconds = (performance.now() - t0) / 1000;
  summary.realTimeFactor = summary.audioSeconds > 0 ? summary.wallSeconds / summary.audioSeconds : 0;
  err.write(
    `circumplex run: ${summary.frames} frames, ${summary.droppedWindows} dropped windows, ${summary.audioSeconds.toFixed(2)} s audio in ${summary.wallSeconds.toFixed(2)} s wall, real-time factor ${summary.realTimeFactor.toFixed(3)} (models loaded in ${summary.loadSeconds.toFixed(2)} s)\n`,
  );
  // An empty file or pipe is almost always a broken input (an unset variable, a failed upstream
  // command): not a success with 0 frames, which a script would take for a quiet speaker.
  if (local.samplesSeen() === 0) {
    throw new AffectError('AFFECT_ERR_INPUT', `${opts.input === '-' ? 'stdin' : opts.input}: no audio (0 samples), nothing was analysed`, {
      hint: opts.input === '-' ? 'check the command feeding stdin' : 'check that the file holds audio (its data chunk is empty)',
    });
  }
  return summary;
}

/** The stream a pipeline event belongs to. */
function eventStreamId(e: PipelineEvent): string {
  switch (e.kind) {
    case 'affect':
      return e.point.streamId;
    case 'transcript':
      return e.transcript.streamId;
    case 'status':
      return e.streamId;
    case 'turn':
      return e.turn.streamId;
    case 'alert':
      return e.alert.streamId;
  }
}

const sign = (v: number): string => (v >= 0 ? '+' : '') + v.toFixed(2);

/** A compact terminal line for one message. */
export function humanLine(msg: StreamEventMessage): string {
  const t = `${(msg.tMs / 1000).toFixed(2).padStart(7)}s`;
  switch (msg.type) {
    case 'affect':
      return `${t}  valence ${sign(msg.valence)}  arousal ${sign(msg.arousal)}${msg.dominance === undefined ? '' : `  dominance ${sign(msg.dominance)}`}  conf ${msg.confidence.toFixed(2)}  ${msg.label.padEnd(10)} intensity ${msg.intensity.toFixed(2)}${msg.droppedWindows ? `  (dropped ${msg.droppedWindows})` : ''}`;
    case 'transcript':
      return `${t}  ${msg.final ? 'final' : 'partial'}: ${msg.text}`;
    case 'status':
      return `${t}  [${msg.state}] ${msg.message}`;
    case 'turn':
      return `${t}  turn ${(msg.startMs / 1000).toFixed(2)}-${(msg.endMs / 1000).toFixed(2)}s  ${msg.label}  mean v ${sign(msg.mean.valence)} a ${sign(msg.mean.arousal)}  peak v ${sign(msg.peak.valence)} a ${sign(msg.peak.arousal)}  conf ${msg.confidence.toFixed(2)}${msg.transcript ? `  "${msg.transcript}"` : ''}`;
    case 'alert':
      return `${t}  ALERT ${msg.alert}: ${msg.reason}`;
  }
}
