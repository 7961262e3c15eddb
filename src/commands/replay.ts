/**
 * `circumplex replay FILE.jsonl`: serves a recorded session (from `serve --record` / `run --record`)
 * to subscribers exactly as it was published: the same messages with the same stream ids and seqs,
 * through the real server (dashboard, resume, watch and the bridge all work as live).
 *
 *   circumplex replay session.jsonl --realtime          # at the pace it was recorded (audio time)
 *   circumplex replay session.jsonl --speed 4 --port 9000
 *   circumplex replay session.jsonl --no-wait --exit-on-end
 *
 * By default playback starts when the first subscriber connects (so a demo opened in a browser
 * starts from the beginning), and the server keeps serving after the end until Ctrl-C. Without
 * --realtime or --speed, messages are published as fast as possible. Every stream's messages stay
 * in the resume ring (it is sized to the recording), so a late subscriber can still get them all.
 *
 * A recording is one wire message (core/protocol.ts: affect | transcript | status, with streamId
 * and seq) per line. A bad line stops with an error naming the file and line number.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { numberOption } from './options.js';
import { z } from 'zod';
import { AffectMessage, AlertMessage, StatusMessage, StreamMessage, TranscriptMessage, TurnMessage, type StreamEventMessage } from '../../core/protocol.js';
import { AffectError } from '../../core/errors.js';
import { getLogger, setLogLevel } from '../../core/log.js';
import { loadConfig } from '../../core/config.js';
import { STREAM_ID, STREAM_ID_RULE, type Hub } from '../server/hub.js';
import { AffectServer, type RunningServer } from '../server/ws-server.js';
import { loadTokens } from './serve.js';

/** Parsed `replay` options. */
export interface ReplayCommandOptions {
  realtime: boolean;
  speed?: number;
  port: number;
  host: string;
  /** Serve on a non-loopback host without tokens anyway (protected mode off). */
  insecure?: boolean;
  wait: boolean;
  exitOnEnd: boolean;
  /** Start again at the end, until Ctrl-C (on-stage demos): seqs and times carry on from pass to pass. */
  loop?: boolean;
}

/** One message of a recording and the line it came from. */
export interface RecordedMessage {
  readonly line: number;
  readonly message: StreamEventMessage;
  /**
   * The stream was opened again just before this message (a `stream` line after the stream's
   * messages: a publisher or a Twilio call reconnected with the same id), with this hop and window.
   * Replay opens it again there (subscribers get the `stream` message, as live) and paces it from
   * there: the new publisher's audio time starts again.
   */
  readonly reopen?: { readonly hopMs: number; readonly windowMs: number };
}

/** A parsed recording. */
export interface Recording {
  readonly file: string;
  readonly messages: readonly RecordedMessage[];
  /**
   * Stream ids in order of first appearance, with their hop and window (ms of audio): from the
   * recording's `stream` lines, or for recordings without them the hop inferred from the frames
   * (median gap) and `windowMs` undefined.
   */
  readonly streams: readonly {
    streamId: string;
    hopMs: number;
    windowMs: number | undefined;
    count: number;
    firstSeq: number;
    lastSeq: number;
    firstTMs: number;
    lastTMs: number;
  }[];
}

const RecordedLine = z.discriminatedUnion('type', [AffectMessage, TranscriptMessage, StatusMessage, TurnMessage, AlertMessage, StreamMessage]);

/** Wait after the first subscriber connects before playback starts (ms). */
const SUBSCRIBE_GRACE_MS = 250;

/**
 * Shortest wall time of one `--loop` pass (ms). A recording whose messages all share one time (a
 * single frame, say), or a huge --speed, would otherwise be published pass after pass without ever
 * yielding: a spin that ignored Ctrl-C and wrote "pass N done" lines to stderr without end.
 */
const MIN_LOOP_PASS_MS = 100;

/** Problems reported at once before giving up (the rest are counted). */
const MAX_REPORTED = 5;

/**
 * Reads and checks a recording: every non-empty line must be a stream message, and seqs must
 * increase per stream (the hub would refuse them otherwise). Throws one AffectError naming the file
 * and the line number of each problem (the first few).
 */
export function readRecording(file: string): Recording {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AffectError('AFFECT_ERR_INPUT', `cannot read recording ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'give the path of a .jsonl file written by `circumplex serve --record` or `run --record`',
    });
  }
  // A binary file (a WAV given by mistake) is one clear error, not hundreds of "bad lines" quoting
  // its bytes (control characters included) to the terminal.
  if (text.includes('\u0000')) {
    const head = readHead(text);
    throw new AffectError('AFFECT_ERR_INPUT', `${file} is a binary file${head}, not a recording (JSONL: one wire message per line)`, {
      stage: 'replay',
      hint: 'give the .jsonl file written by `circumplex serve --record` or `run --record`; to analyse audio use `circumplex run --input FILE`',
    });
  }
  const lines = text.split('\n');
  const messages: RecordedMessage[] = [];
  const problems: string[] = [];
  let problemCount = 0;
  const lastSeq = new Map<string, number>();
  // Stream facts from `stream` lines (the first one of each stream: how it was opened).
  const declared = new Map<string, { hopMs: number; windowMs: number }>();
  // A `stream` line after a stream's messages: it was opened again, before its next message.
  const reopened = new Map<string, { hopMs: number; windowMs: number }>();
  const problem = (line: number, what: string) => {
    problemCount++;
    if (problems.length < MAX_REPORTED) problems.push(`${file}:${line}: ${what}`);
  };
  for (const [i, raw] of lines.entries()) {
    const lineNo = i + 1;
    const s = raw.trim();
    if (s === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(s);
    } catch (err) {
      problem(lineNo, `not valid JSON (${(err as Error).message})`);
      continue;
    }
    const parsed = RecordedLine.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 3).map((iss) => `${iss.path.join('.') || 'message'}: ${iss.message}`);
      problem(lineNo, `not a stream message (affect | transcript | status | turn | alert | stream): ${issues.join('; ')}`);
      continue;
    }
    const d = parsed.data;
    if (d.type === 'stream') {
      const { streamId, hopMs, windowMs } = d.stream;
      if (!(hopMs > 0 && windowMs > 0)) problem(lineNo, `stream "${streamId}": hopMs and windowMs must be > 0, got ${hopMs} and ${windowMs}`);
      else if (!declared.has(streamId)) declared.set(streamId, { hopMs, windowMs });
      else if (lastSeq.has(streamId)) reopened.set(streamId, { hopMs, windowMs });
      continue;
    }
    const m = d;
    // The hub refuses other ids; found only after listening, that used to leave replay hanging.
    if (!STREAM_ID.test(m.streamId)) {
      problem(lineNo, `stream id "${m.streamId.slice(0, 40)}${m.streamId.length > 40 ? '…' : ''}" (${m.streamId.length} characters) is not ${STREAM_ID_RULE}`);
      continue;
    }
    const prev = lastSeq.get(m.streamId);
    if (prev !== undefined && m.seq <= prev) {
      problem(lineNo, `stream "${m.streamId}": seq ${m.seq} is not after the previous seq ${prev}`);
      continue;
    }
    lastSeq.set(m.streamId, m.seq);
    const reopen = reopened.get(m.streamId);
    reopened.delete(m.streamId);
    messages.push({ line: lineNo, message: m, ...(reopen ? { reopen } : {}) });
  }
  if (problemCount > 0) {
    const more = problemCount > problems.length ? `\n  … and ${problemCount - problems.length} more bad lines` : '';
    throw new AffectError('AFFECT_ERR_INPUT', `bad recording: ${problemCount} bad line${problemCount === 1 ? '' : 's'}\n  ${problems.join('\n  ')}${more}`, {
      stage: 'replay',
      hint: 'each line must be one wire message as `serve --record` writes it (core/protocol.ts); fix or delete the lines named above',
    });
  }
  if (messages.length === 0) {
    throw new AffectError('AFFECT_ERR_INPUT', `recording ${file} has no messages`, {
      stage: 'replay',
      hint: 'record a session first: circumplex serve --input talk.wav --record session.jsonl',
    });
  }
  return { file, messages, streams: inferStreams(messages, declared) };
}

/** ` (starts with "RIFF")` for a binary file's first printable bytes, else ''. */
function readHead(text: string): string {
  const m = /^[\x20-\x7e]{2,4}/.exec(text);
  return m ? ` (starts with ${JSON.stringify(m[0])})` : '';
}

/** Stream ids in order of first appearance, their hop and window (declared, else hop inferred from the frames), size and seq/time range. */
function inferStreams(messages: readonly RecordedMessage[], declared: ReadonlyMap<string, { hopMs: number; windowMs: number }>): Recording['streams'] {
  const byStream = new Map<string, { times: number[]; count: number; firstSeq: number; lastSeq: number; firstTMs: number; lastTMs: number }>();
  for (const { message: m } of messages) {
    let e = byStream.get(m.streamId);
    if (!e) byStream.set(m.streamId, (e = { times: [], count: 0, firstSeq: m.seq, lastSeq: m.seq, firstTMs: m.tMs, lastTMs: m.tMs }));
    e.count++;
    e.lastSeq = m.seq;
    e.firstTMs = Math.min(e.firstTMs, m.tMs);
    e.lastTMs = Math.max(e.lastTMs, m.tMs);
    if (m.type === 'affect') e.times.push(m.tMs);
  }
  return [...byStream].map(([streamId, e]) => {
    const gaps = e.times
      .slice(1)
      .map((t, i) => t - (e.times[i] ?? t))
      .filter((g) => g > 0)
      .sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)];
    const d = declared.get(streamId);
    const { times: _times, ...range } = e;
    return { streamId, hopMs: d?.hopMs ?? median ?? 250, windowMs: d?.windowMs, ...range };
  });
}

/** Options for {@link replayInto}. */
export interface ReplayOptions {
  /** Pacing factor in audio time (1 = as recorded); undefined = as fast as possible. */
  speed: number | undefined;
  /** Stops early when aborted. */
  signal?: AbortSignal;
  /** Called after each message is published (progress, tests). */
  onMessage?: (m: RecordedMessage) => void;
  /**
   * Loop pass (0 = the recording as it is). Pass k shifts each stream's seqs by k × its seq span and
   * its times by k × (its time span + one hop), so seqs keep increasing and the clock keeps running;
   * final 'ended' statuses are left out of every pass (the stream ends when the loop stops).
   */
  pass?: number;
  /**
   * Each stream's pacing origin (wall clock and audio time of its first message). Share one map
   * across loop passes so pass k+1 is paced on from pass k (its first message one hop after the
   * last one) instead of starting at once. Default: a fresh map.
   */
  origin?: Map<string, { wallMs: number; tMs: number }>;
}

/**
 * Publishes a recording into a hub with its original seqs (`hub.publishMessage`). With `speed`,
 * each stream is paced by its own audio time: a message goes out `(tMs - first tMs) / speed` ms
 * after the stream's first one, in file order. Streams must already be open (see
 * {@link openRecordedStreams}). Resolves with the number of messages published.
 */
export async function replayInto(hub: Hub, rec: Recording, opts: ReplayOptions): Promise<number> {
  if (opts.speed !== undefined && !(Number.isFinite(opts.speed) && opts.speed > 0)) throw new RangeError(`replay: speed must be > 0, got ${opts.speed}`);
  const origin = opts.origin ?? new Map<string, { wallMs: number; tMs: number }>();
  const pass = opts.pass;
  const spans = new Map(rec.streams.map((s) => [s.streamId, { seq: s.lastSeq - s.firstSeq + 1, tMs: s.lastTMs - s.firstTMs + s.hopMs }]));
  let published = 0;
  for (const r of rec.messages) {
    if (opts.signal?.aborted) break;
    let m = r.message;
    if (pass !== undefined) {
      if (m.type === 'status' && m.state === 'ended') continue;
      const span = spans.get(m.streamId)!;
      m = { ...m, seq: m.seq + pass * span.seq, tMs: m.tMs + pass * span.tMs };
    }
    if (r.reopen) {
      // As live: subscribers learn that the stream started again, and its audio time restarts, so its
      // pacing starts again here (it used to publish a reconnected call's second part at once).
      hub.openStream({ streamId: m.streamId, ...r.reopen, sampleRateHz: 16_000 });
      origin.delete(m.streamId);
    }
    if (opts.speed !== undefined) {
      let o = origin.get(m.streamId);
      if (!o) origin.set(m.streamId, (o = { wallMs: performance.now(), tMs: m.tMs }));
      const dueMs = o.wallMs + (m.tMs - o.tMs) / opts.speed;
      const waitMs = dueMs - performance.now();
      if (waitMs > 1) await sleep(waitMs, opts.signal);
      if (opts.signal?.aborted) break;
    }
    hub.publishMessage(m);
    published++;
    opts.onMessage?.(r);
  }
  return published;
}

/** Opens every stream of a recording in the hub (before subscribers connect, so `hello` lists them). */
export function openRecordedStreams(hub: Hub, rec: Recording, windowMs = 1000): void {
  // The recorded window when the recording has it (a `stream` line), else `windowMs` (older recordings).
  for (const s of rec.streams)
    hub.openStream({ streamId: s.streamId, hopMs: s.hopMs, windowMs: s.windowMs ?? Math.max(windowMs, s.hopMs), sampleRateHz: 16_000 });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Registers `circumplex replay`. */
export function register(program: Command): void {
  program
    .command('replay')
    .description('Serve a recorded session (JSONL from --record) to subscribers exactly as it was published')
    .argument('<file>', 'recording: one wire message per line')
    .option('--realtime', 'pace at the recorded speed (audio time)', false)
    .option('--speed <x>', 'pace at x times the recorded speed (implies pacing)', numberOption('--speed', 0.01))
    .option('-p, --port <port>', 'TCP port (0: any free port)', numberOption('--port', 0, true, 65535), 8787)
    .option('--host <host>', 'interface to bind (default loopback only; 0.0.0.0 opens it: needs tokens, or --insecure)', '127.0.0.1')
    .option('--insecure', 'allow a non-loopback --host without tokens (anyone who can reach it may subscribe)', false)
    .option('--no-wait', 'start at once instead of waiting for the first subscriber')
    .option('--exit-on-end', 'exit after the last message instead of serving until Ctrl-C', false)
    .option('--loop', 'start again at the end until Ctrl-C (on-stage demos; paced at the recorded speed unless --speed): seqs and times carry on', false)
    .action(async (file: string, opts: ReplayCommandOptions) => {
      const code = await replayCommand(file, opts);
      process.exitCode = code;
    });
}

/**
 * Runs a replay server until SIGINT/SIGTERM (or the end with --exit-on-end). Resolves with the exit
 * code; a bad recording throws before anything listens.
 */
export async function replayCommand(
  file: string,
  opts: ReplayCommandOptions,
  err: NodeJS.WritableStream = process.stderr,
  onListening?: (server: RunningServer) => void,
): Promise<number> {
  const env = loadConfig();
  setLogLevel(env.logLevel);
  const logger = getLogger().child({ cmd: 'replay' });
  if (opts.loop && opts.exitOnEnd) {
    throw new AffectError('AFFECT_ERR_CONFIG', '--loop and --exit-on-end contradict each other: a loop has no end', { hint: 'drop one of them' });
  }
  const rec = readRecording(file);
  // A loop is for a stage: paced at the recorded speed unless told otherwise (never a busy loop).
  const speed = opts.speed ?? (opts.realtime || opts.loop ? 1 : undefined);
  const perStream = Math.max(...rec.streams.map((s) => s.count));
  // The ring holds the whole recording (bounded by the file we already hold in memory), so a late
  // subscriber can resume from the start.
  // Same access rules as `serve`: CIRCUMPLEX_TOKENS / CIRCUMPLEX_TOKENS_FILE / CIRCUMPLEX_ALLOWED_ORIGINS.
  const server = await AffectServer.start({
    port: opts.port,
    host: opts.host,
    ringSize: Math.max(2048, perStream),
    tokens: loadTokens(env, undefined, (m) => logger.warn(m)),
    insecure: opts.insecure === true,
    allowedOrigins: env.allowedOrigins,
    logger,
  });
  try {
    openRecordedStreams(server.hub, rec);
  } catch (e) {
    // Never leave a listening server behind an error (the process would not exit).
    await server.close('replay failed');
    throw e;
  }
  err.write(
    `circumplex replay: ${rec.messages.length} messages on ${rec.streams.length} stream(s) (${rec.streams.map((s) => s.streamId).join(', ')}) ` +
      `at ${speed === undefined ? 'full speed' : `${speed}x`}; listening on ${server.listening} (dashboard ${server.httpUrl})\n`,
  );
  onListening?.(server);

  const abort = new AbortController();
  let stopped = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stopped = true;
    abort.abort();
    wake?.();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (opts.wait) {
      err.write('circumplex replay: waiting for the first subscriber (--no-wait to start at once)\n');
      while (!stopped && server.subscriberStats().length === 0) await sleep(50, abort.signal);
      // A connected subscriber sends its subscribe after hello; give it a moment, so playback reaches
      // it live (in file order) rather than as a per-stream resume backlog.
      if (!stopped) await sleep(SUBSCRIBE_GRACE_MS, abort.signal);
    }
    if (!stopped && opts.loop) {
      // Pass after pass until Ctrl-C; seqs and times carry on, so subscribers see one long stream.
      const origin = new Map<string, { wallMs: number; tMs: number }>();
      for (let pass = 0; !stopped; pass++) {
        const passStart = performance.now();
        const n = await replayInto(server.hub, rec, { speed, signal: abort.signal, pass, origin });
        if (n === 0) break;
        if (!stopped) err.write(`circumplex replay: pass ${pass + 1} done (${n} messages); starting again (Ctrl-C to stop)\n`);
        // Never spin: a pass takes at least MIN_LOOP_PASS_MS, and the wait lets signals and sockets in.
        if (!stopped) await sleep(Math.max(0, MIN_LOOP_PASS_MS - (performance.now() - passStart)), abort.signal);
      }
      for (const s of rec.streams) server.hub.endStream(s.streamId, 'replay stopped');
    } else if (!stopped) {
      const started = performance.now();
      const n = await replayInto(server.hub, rec, { speed, signal: abort.signal });
      err.write(`circumplex replay: published ${n} messages in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      if (!opts.exitOnEnd && !stopped) {
        err.write('circumplex replay: end of recording; still serving (Ctrl-C to stop)\n');
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (stopped) resolve();
        });
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server.close('replay finished');
  }
  return 0;
}
