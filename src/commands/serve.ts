/**
 * `circumplex serve`: loads the models once, runs the local input (WAV or FLAC file, microphone, stdin, or
 * none) through the affect pipeline and serves the frames to WebSocket subscribers at
 * `ws://127.0.0.1:PORT/v1/stream`, with `/v1/ingest` for live calls, `/healthz`, `/metrics` and the
 * dashboard at `/`.
 *
 *   circumplex serve --input talk.wav --realtime --port 8787
 *   circumplex serve --input mic --record session.jsonl
 *   circumplex serve --input call.wav --channels-as-streams --realtime   # streams file:ch0 (left), file:ch1 (right)
 *   CIRCUMPLEX_TOKENS='s3cr3t-sub:subscribe;s3cr3t-pub:publish' circumplex serve --input none --host 0.0.0.0
 *   circumplex serve --input none --backplane redis://10.0.0.5:6379/0   # one node of a cluster (docs/deploy.md)
 *
 * SIGINT/SIGTERM: stop the input, end every stream (status 'ended'), close clients with 1001, flush
 * the recording, release the models, exit 0 — or exit 1 if that takes longer than 5 s.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Option, type Command } from 'commander';
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
import { type Observable, Subscription, tap } from 'rxjs';
import { openLocalInput } from './local-input.js';
import { loadConfig, parseOriginList } from '../../core/config.js';
import type { Engine } from '../engine.js';
import { AffectError, toAffectError } from '../../core/errors.js';
import { getLogger, setLogLevel } from '../../core/log.js';
import { assertUniqueTokens, parseTokenSpec, readTokenFile, tokenFileExposure, type TokenEntry } from '../server/auth.js';
import type { Hub } from '../server/hub.js';
import type { VadCounters } from '../server/metrics.js';
import { DEFAULT_REDIS_HUB, RedisHub, parseBackplaneUrl } from '../server/redis-hub.js';
import { AffectServer, type RunningServer } from '../server/ws-server.js';
import { assertExposureAllowed } from '../server/options.js';
import { FlowControl } from '../../streams/flow.js';
import { checkRecorder, createMicSource, retryRecorder, type RecorderName } from '../../streams/sources/mic.js';
import { PIPELINE_SAMPLE_RATE_HZ, samplesToMs, type AudioChunk } from '../../core/types.js';
import { warmUp, warmUpServer } from '../warm-up.js';

/** Parsed `serve` options. */
export interface ServeCommandOptions extends EscalationFlags, SmoothingFlags {
  input: string;
  /** Voice activity detection (default 'on': Silero; 'lite': the distilled detector). */
  vad?: VadFlag;
  realtime: boolean;
  /** Pacing factor of a file input; given, it implies `realtime` (as `replay --speed` does). Default 1. */
  speed?: number;
  port: number;
  host: string;
  record?: string;
  /** `--record-overwrite`: replace a non-empty `--record` file (default: refuse it, AFFECT_ERR_CONFIG). */
  recordOverwrite?: boolean;
  tokensFile?: string;
  /** `--max-streams`: ingest streams analysed at once before new ones are refused (4013). */
  maxStreams?: number;
  /** Serve on a non-loopback host without tokens anyway (protected mode off). */
  insecure?: boolean;
  allowedOrigins?: string;
  tlsCert?: string;
  tlsKey?: string;
  device?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  speechModel: string;
  fusion: string;
  textModel?: string;
  asrModel?: string;
  streamId?: string;
  windowMs: number;
  hopMs: number;
  /** Raw stdin's rate (default 16000); with a WAV/FLAC it must match the header. */
  rate?: number;
  /** Raw stdin's channels (default 1); with a WAV/FLAC it must match the header. */
  channels?: number;
  /** One stream per channel of a multi-channel file or stdin (`<stream-id>:ch0`, …). */
  channelsAsStreams?: boolean;
  recorder: RecorderName;
  exitOnEnd: boolean;
  heartbeatMs: number;
  ringSize: number;
  /** Redis backplane URL (or CIRCUMPLEX_BACKPLANE): nodes share streams. */
  backplane?: string;
  /** With a backplane: a node silent this long (ms) is taken for dead and its streams may move. Default 5000. */
  nodeTtlMs?: number;
}

/**
 * Flags of a local input that mean nothing for the input given are refused, not ignored: `--input
 * none --exit-on-end` served for good (there is no local input to end), and `--stream-id`,
 * `--rate`, `--channels`, `--realtime` or `--speed` without a file or stdin did nothing.
 */
export function checkLocalInputFlags(
  kind: 'mic' | 'stdin' | 'none' | 'file',
  opts: Pick<ServeCommandOptions, 'exitOnEnd' | 'streamId' | 'rate' | 'channels' | 'realtime' | 'speed'>,
): void {
  const given = (flags: Array<[boolean, string]>) => flags.filter(([on]) => on).map(([, name]) => name);
  const pacing: Array<[boolean, string]> = [
    [opts.realtime, '--realtime'],
    [opts.speed !== undefined, '--speed'],
  ];
  const raw: Array<[boolean, string]> = [
    [opts.rate !== undefined, '--rate'],
    [opts.channels !== undefined, '--channels'],
  ];
  const bad =
    kind === 'none'
      ? given([[opts.exitOnEnd, '--exit-on-end'], [opts.streamId !== undefined, '--stream-id'], ...pacing, ...raw])
      : kind === 'mic'
        ? given([...pacing, ...raw])
        : [];
  if (bad.length === 0) return;
  throw new AffectError(
    'AFFECT_ERR_CONFIG',
    `${bad.join(', ')} ${bad.length === 1 ? 'applies' : 'apply'} to a local ${kind === 'mic' ? 'file or stdin input' : 'input'}, and --input is ${kind}, so ${bad.length === 1 ? 'it' : 'they'} would do nothing`,
    {
      hint:
        kind === 'none'
          ? 'give --input FILE, "-" or "mic" to serve a local input, or drop the flag (ingest streams are named by their publishers and end when they do)'
          : 'the microphone is live and recorded at 16 kHz mono: drop the flag',
    },
  );
}

/** How long a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 5000;

/** Registers `circumplex serve`. */
export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('Serve live affect frames over WebSockets (ws://127.0.0.1:8787/v1/stream), with ingest, metrics and the dashboard')
    .option('-i, --input <src>', 'WAV or FLAC file, "mic", "-" (stdin: a WAV by its header, else raw s16le) or "none" (ingest only)', 'none')
    .option('--realtime', 'pace a file input at real-time speed', false)
    .option('--speed <x>', 'pace a file input at x times real time (implies --realtime; 2 = twice as fast) (default: 1)', numberOption('--speed', 0.01))
    .option('-p, --port <port>', 'TCP port (0: any free port)', numberOption('--port', 0, true, 65535), 8787)
    .option('--host <host>', 'interface to bind (default loopback only; 0.0.0.0 opens it: needs tokens, or --insecure)', '127.0.0.1')
    .option('--insecure', 'allow a non-loopback --host without tokens (anyone who can reach it may subscribe and publish)', false)
    .option('--record <file>', 'write every published message to a JSONL file (an existing non-empty file is refused)', fileOption('--record'))
    .option('--record-overwrite', 'replace the --record file when it already holds something', false)
    .option('--tokens-file <file>', 'JSON token file [{ "token", "scopes" }] (or CIRCUMPLEX_TOKENS / CIRCUMPLEX_TOKENS_FILE)')
    .option('--allowed-origins <list>', 'comma-separated browser origins (or CIRCUMPLEX_ALLOWED_ORIGINS)')
    .option('--tls-cert <file>', 'PEM certificate: serve https/wss (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--stream-id <id>', 'stream id of the local input (default: "mic", "stdin" or "file")', streamIdOption('--stream-id'))
    .option('--window-ms <ms>', 'analysis window length, ms of audio', numberOption('--window-ms', 1, false, 60_000), 1000)
    .option('--hop-ms <ms>', 'hop between frames, ms of audio', numberOption('--hop-ms', 1, false, 60_000), 250)
    .option(
      '--rate <hz>',
      'sample rate of raw stdin input (default 16000); with a WAV or FLAC it must match the header',
      numberOption('--rate', 1000, true, 768_000),
    )
    .option('--channels <n>', 'channels of raw stdin input (default 1); with a WAV or FLAC it must match the header', numberOption('--channels', 1, true, 32))
    .option(
      '--channels-as-streams',
      'analyse each channel of a stereo (multi-channel) file or stdin as its own stream: <stream-id>:ch0, <stream-id>:ch1, … (call recordings: usually agent left, caller right)',
      false,
    )
    .addOption(new Option('--recorder <name>', 'microphone recorder program').choices(['sox', 'rec', 'arecord']).default('sox'))
    .option('--exit-on-end', 'exit when the local input ends (for scripts) instead of serving until SIGINT/SIGTERM', false)
    .option('--heartbeat-ms <ms>', 'WebSocket ping interval; peers missing a pong are dropped', numberOption('--heartbeat-ms', 10, true, 2 ** 31 - 1), 15_000)
    .option('--ring-size <n>', 'messages kept per stream for resume', numberOption('--ring-size', 1, true), 2048)
    .option(
      '--max-streams <n>',
      'most ingest streams analysed at once (its measured real-time capacity; npm run bench -- --encoders ... reports it); a stream beyond it is refused with close code 4013 (default: unlimited)',
      numberOption('--max-streams', 1, true),
    )
    .option(
      '--backplane <url>',
      'share streams with other serve nodes through Redis >= 7: redis://[user:pass@]host:port[/db] or rediss:// (or CIRCUMPLEX_BACKPLANE)',
    )
    .option(
      '--node-ttl-ms <ms>',
      `with --backplane: a node silent this long is taken for dead, and its streams may move to another node (default: ${DEFAULT_REDIS_HUB.nodeTtlMs})`,
      numberOption('--node-ttl-ms', 500, true, 600_000),
    );
  addSmoothingOptions(addEscalationOptions(addSpeechStreamingOption(addModelOptions(cmd)))).action(async (opts: ServeCommandOptions) => {
    const code = await serveCommand(opts);
    // Model worker threads and timers must not keep a stopped server alive.
    process.exit(code);
  });
}

/**
 * Reads tokens from CIRCUMPLEX_TOKENS, CIRCUMPLEX_TOKENS_FILE and --tokens-file (all merged);
 * `warn` hears of a token file other users may read or write.
 */
export function loadTokens(
  env: { tokens: string | undefined; tokensFile: string | undefined },
  tokensFile: string | undefined,
  warn: (message: string) => void = () => {},
): TokenEntry[] {
  const out: TokenEntry[] = [];
  if (env.tokens) out.push(...parseTokenSpec(env.tokens));
  for (const f of [env.tokensFile, tokensFile]) {
    if (!f) continue;
    out.push(...readTokenFile(f));
    const exposed = tokenFileExposure(f);
    if (exposed) warn(exposed);
  }
  assertUniqueTokens(out, 'CIRCUMPLEX_TOKENS, CIRCUMPLEX_TOKENS_FILE and --tokens-file');
  return out;
}

/**
 * Runs the server until SIGINT/SIGTERM (or the end of the input with --exit-on-end). Resolves with
 * the exit code. Startup problems throw AffectErrors (printed by the CLI with their hint).
 */
export async function serveCommand(opts: ServeCommandOptions, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const env = loadConfig();
  setLogLevel(env.logLevel);
  const logger = getLogger().child({ cmd: 'serve' });
  if (opts.hopMs > opts.windowMs) {
    throw new AffectError('AFFECT_ERR_CONFIG', `--hop-ms (${opts.hopMs}) must not exceed --window-ms (${opts.windowMs})`, {
      hint: 'e.g. --window-ms 1000 --hop-ms 250',
    });
  }
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
    throw new AffectError('AFFECT_ERR_CONFIG', '--tls-cert and --tls-key go together', { hint: 'pass both PEM files, or neither for plain ws://' });
  }
  for (const f of [opts.tlsCert, opts.tlsKey]) {
    if (f) {
      try {
        readFileSync(f);
      } catch (e) {
        throw new AffectError('AFFECT_ERR_CONFIG', `cannot read TLS file ${f}: ${(e as Error).message}`, { hint: 'check the --tls-cert / --tls-key paths' });
      }
    }
  }
  if (opts.tlsCert && opts.tlsKey) {
    // Readable is not enough: a file that is not PEM, or a key that does not match the certificate,
    // failed later inside https.createServer as 'unexpected error' with a stack trace.
    try {
      createSecureContext({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) });
    } catch (e) {
      throw new AffectError('AFFECT_ERR_CONFIG', `cannot use --tls-cert ${opts.tlsCert} with --tls-key ${opts.tlsKey}: ${(e as Error).message}`, {
        cause: e,
        hint: 'pass a PEM certificate and its matching PEM private key (e.g. openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem)',
      });
    }
  }
  const tokens = loadTokens(env, opts.tokensFile, (m) => logger.warn(m));
  // Protected mode, checked before anything loads: off loopback, tokens or --insecure.
  assertExposureAllowed(opts.host, tokens.length > 0, opts.insecure === true);
  const allowedOrigins = opts.allowedOrigins !== undefined ? parseOriginList(opts.allowedOrigins, '--allowed-origins') : env.allowedOrigins;
  const input = opts.input;
  const kind = input === 'mic' ? 'mic' : input === '-' ? 'stdin' : input === 'none' ? 'none' : 'file';
  const streamId = opts.streamId ?? kind;
  // Check the input before loading models, so a bad path or a missing recorder fails in milliseconds.
  // A file or stdin (a WAV by its header, else raw s16le) is one stream, or one per channel with
  // --channels-as-streams (`<stream-id>:ch0`, `<stream-id>:ch1`, … as in `run`).
  if (opts.channelsAsStreams && kind !== 'file' && kind !== 'stdin') {
    throw new AffectError('AFFECT_ERR_CONFIG', `--channels-as-streams needs a multi-channel file or stdin input, not --input ${input}`, {
      hint: 'e.g. --input call.wav --channels-as-streams',
    });
  }
  checkLocalInputFlags(kind, opts);
  // --speed X paces like --realtime at X (it used to be ignored without --realtime: the file ran at full speed).
  const realtime = opts.realtime || opts.speed !== undefined;
  // Offline (not --realtime) files and stdin are read losslessly, paced by the model through a bounded flow.
  const flow: FlowControl | undefined = kind === 'stdin' || (kind === 'file' && !realtime) ? new FlowControl({ highWater: 4 }) : undefined;
  if (kind === 'file') checkRecordIsNotInput(opts.record, input);
  // Before the input, the backplane, the models and the port: a rerun must not wipe the last recording.
  checkRecordFree(opts.record, opts.recordOverwrite);
  const local =
    kind === 'file' || kind === 'stdin'
      ? await openLocalInput({ ...opts, streamId, realtime, speed: opts.speed ?? 1 }, { logger, ...(flow ? { flow } : {}) })
      : undefined;
  if (kind === 'mic') checkRecorder(opts.recorder);

  // The backplane first: an unreachable Redis or a bad URL fails in milliseconds, before the models load.
  const backplane = opts.backplane ?? env.backplane;
  // `--backplane "$REDIS_URL"` with the variable unset must not start a lone node that shares nothing.
  if (opts.backplane !== undefined && opts.backplane.trim() === '') {
    throw new AffectError('AFFECT_ERR_CONFIG', '--backplane: empty URL (an unset variable?)', {
      hint: 'give redis://[user:password@]host:port[/db] (or rediss://), or leave --backplane out to run this node alone',
    });
  }
  if (backplane) parseBackplaneUrl(backplane, opts.backplane ? '--backplane' : 'CIRCUMPLEX_BACKPLANE');
  else if (opts.nodeTtlMs !== undefined) {
    throw new AffectError(
      'AFFECT_ERR_CONFIG',
      '--node-ttl-ms only applies with a backplane (--backplane or CIRCUMPLEX_BACKPLANE): a single node has no peers to time out',
      {
        hint: 'drop --node-ttl-ms, or add --backplane redis://HOST:6379/0 (docs/deploy.md)',
      },
    );
  }
  const nodeTtlMs = opts.nodeTtlMs ?? DEFAULT_REDIS_HUB.nodeTtlMs;
  const hub: Hub | undefined = backplane
    ? await RedisHub.connect({ url: backplane, ringSize: opts.ringSize, nodeTtlMs, nodeHeartbeatMs: Math.max(100, Math.floor(nodeTtlMs / 5)), logger })
    : undefined;

  // The recording opens before the models load and the port opens: opened after listening, a bad
  // path left a listening server behind and the process hung.
  let opened: Awaited<ReturnType<typeof openRecorderAndEngine>>;
  try {
    opened = await openRecorderAndEngine(opts, env, logger);
  } catch (e) {
    await hub?.close();
    throw e;
  }
  const { recorder, engine } = opened;
  // Before the port opens: the first calls must not pay for first runs (models, pipeline, ingest).
  if (env.warmUp === 'on') {
    try {
      const w = await warmUp(engine, { logger });
      await warmUpServer(engine, {
        ingestStreamTiming: { hopMs: opts.hopMs, windowMs: opts.windowMs },
        ...(w.speechWindows > 0 ? { modelMsPerWindow: w.ms.speech / w.speechWindows } : {}),
        logger,
      });
    } catch (e) {
      recorder?.close();
      await engine.close();
      await hub?.close();
      throw e;
    }
  }

  let server: RunningServer;
  try {
    server = await AffectServer.start({
      port: opts.port,
      host: opts.host,
      tokens,
      insecure: opts.insecure === true,
      allowedOrigins,
      tls: opts.tlsCert && opts.tlsKey ? { certFile: opts.tlsCert, keyFile: opts.tlsKey } : undefined,
      heartbeatMs: opts.heartbeatMs,
      ringSize: opts.ringSize,
      hub,
      ingestStreamTiming: { hopMs: opts.hopMs, windowMs: opts.windowMs },
      ...(opts.maxStreams !== undefined ? { maxIngestStreams: opts.maxStreams } : {}),
      // Live calls: the speech stage keeps only the latest window when inference falls behind.
      onIngestStream: (id, audio$) => audio$.pipe(engine.pipeline(id, { whenBusy: 'latest' })),
      logger,
    });
  } catch (e) {
    recorder?.close();
    await engine.close();
    await hub?.close();
    throw e;
  }
  server.metrics.modelProvider.set({ model: engine.speech.id, provider: engine.speech.provider }, 1);
  // Text path and ASR host counters (dropped ASR audio, coalesced windows, text model errors, host restarts) at every scrape.
  server.metrics.watchTextPath(
    () => engine.textStats,
    () => engine.asrStats,
  );
  // Silero VAD counters (frames run/gated/rejected, batches, windows dropped by the VAD stage).
  server.metrics.watchVad(() => (engine.vad && 'stats' in engine.vad ? (engine.vad.stats as VadCounters) : undefined));

  const offRecorder = recorder
    ? server.hub.subscribe((ev) => {
        if (ev.type === 'message') recorder.write(ev.message);
        // Each stream's hopMs/windowMs, when it opens (replay announces the stream from it).
        else if (ev.type === 'stream') recorder.writeStream(ev.stream);
      })
    : undefined;

  // The address actually bound (for 0.0.0.0: every interface it covers), not a loopback URL.
  err.write(`circumplex serve: listening on ${server.listening}  (dashboard ${server.httpUrl}, ingest ${server.url.replace(/\/v1\/stream$/, '/v1/ingest')})\n`);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let inputSub: Subscription | undefined;
  let shuttingDown = false;

  const shutdown = async (why: string, code: number): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ why }, 'shutting down');
    // Whatever happens below, the process exits within the deadline.
    setTimeout(() => {
      logger.error('graceful shutdown took too long; exiting');
      recorder?.close();
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    // End every live stream, so subscribers and the recording see a final status 'ended' that says
    // why (first: an attached input stopped by unsubscribing ends its stream with its own message).
    for (const s of server.hub.streams()) if (s.state !== 'ended') server.hub.endStream(s.streamId, why);
    inputSub?.unsubscribe();
    flow?.close();
    await server.close(why);
    await server.hub.close().catch((e: unknown) => logger.warn({ err: e }, 'closing the backplane failed'));
    offRecorder?.();
    recorder?.close();
    await engine.close().catch((e: unknown) => logger.warn({ err: e }, 'closing the engine failed'));
    resolveDone(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => void shutdown(`server shutting down (${signal})`, 0);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // Anything that fails once the server is listening must close it again, or the process would keep
  // listening with nothing behind it (and never exit).
  try {
    if (kind !== 'none') {
      let lastSample = 0;
      let restarting = false;
      // A fatal recorder error (e.g. no audio input device): serve stops instead of restarting forever.
      let micFatal: unknown;
      const inputs: Array<{ streamId: string; audio$: Observable<AudioChunk> }> = [];
      let pipelineOpts: Parameters<Engine['pipeline']>[1] = { whenBusy: 'latest' };
      if (local) {
        // Offline (not --realtime) files and stdin are lossless: the source waits for the model (bounded flow).
        inputs.push(...local.streams);
        if (flow) pipelineOpts = { whenBusy: 'queue', flow };
      } else {
        const audio$ = createMicSource({ streamId, recorder: opts.recorder }).pipe(
          tap((c) => {
            lastSample = c.startSample + c.samples.length;
            if (restarting) {
              restarting = false;
              server.publish(streamId, { kind: 'status', streamId, tMs: samplesToMs(lastSample), state: 'live', message: 'recorder restarted' });
            }
          }),
          retryRecorder({
            onRestart: (attempt, e, delayMs) => {
              restarting = true;
              server.metrics.recorderRestarts.inc();
              logger.warn({ attempt, delayMs, err: e }, 'recorder died; restarting');
              server.publish(streamId, {
                kind: 'status',
                streamId,
                tMs: samplesToMs(lastSample),
                state: 'recorder-restarting',
                message: `${e instanceof Error ? e.message : String(e)}; restart ${attempt} in ${delayMs} ms`,
              });
            },
          }),
          tap({ error: (e: unknown) => void (micFatal = e) }),
        );
        inputs.push({ streamId, audio$ });
      }
      const endMessage = kind === 'file' ? 'input file ended' : 'input ended';
      // With a backplane each stream id must be free in the whole cluster (no other node publishing it).
      for (const { streamId: id } of inputs) {
        const claim = await server.hub.claim(id);
        if (!claim.ok) {
          throw new AffectError('AFFECT_ERR_CONFIG', `cannot publish the local input as stream "${id}": ${claim.message}`, {
            hint: 'pick another --stream-id',
          });
        }
      }
      // One stream, or one per channel (--channels-as-streams): all must end before --exit-on-end exits.
      const open = new Set(inputs.map((i) => i.streamId));
      let anyFailed = false;
      const offEnd = server.hub.subscribe((ev) => {
        if (ev.type !== 'ended' || !open.has(ev.streamId)) return;
        open.delete(ev.streamId);
        // Ended by our own shutdown (SIGINT/SIGTERM): nothing is "still serving", say nothing.
        if (shuttingDown) return offEnd();
        if (micFatal !== undefined) {
          offEnd();
          err.write(`circumplex serve: --input mic cannot record; exiting: ${toAffectError(micFatal, 'AFFECT_ERR_RECORDER').describe()}\n`);
          void shutdown('microphone failed', 2);
          return;
        }
        // The error status carries the reason (code and message); say it here too, not only in the JSON log.
        const error = server.hub.since(ev.streamId, -1).messages.flatMap((m) => (m.type === 'status' && m.state === 'error' ? [m.message] : []))[0];
        const failed = error !== undefined;
        anyFailed ||= failed;
        const last = open.size === 0;
        err.write(
          `circumplex serve: stream "${ev.streamId}" ${failed ? `failed (${error})` : 'ended'}; ${!last ? `${open.size} local stream(s) still running` : opts.exitOnEnd ? 'exiting' : 'still serving subscribers (Ctrl-C to stop)'}\n`,
        );
        if (!last) return;
        offEnd();
        if (opts.exitOnEnd) void shutdown(anyFailed ? 'input failed' : endMessage, anyFailed ? 1 : 0);
      });
      const subs = new Subscription();
      inputSub = subs;
      for (const { streamId: id, audio$ } of inputs) {
        const events$ = audio$.pipe(server.markArrivals(id), engine.pipeline(id, pipelineOpts));
        // attach() ends the stream in the hub when the input completes or fails (watched above).
        subs.add(server.attach({ streamId: id, hopMs: opts.hopMs, windowMs: opts.windowMs, sampleRateHz: PIPELINE_SAMPLE_RATE_HZ }, events$, endMessage));
      }
    }
  } catch (e) {
    await shutdown('start-up failed', 2);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw e;
  }

  const code = await done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code;
}
