/**
 * `circumplex watch [URL]`: prints frames live in the terminal, one compact line per frame, or the
 * wire message as JSON per line with `--json` (pipe it into jq or a file). Reconnects and resumes on
 * its own (the node client), so a server restart or a network blip loses nothing still in the
 * server's ring and never prints a frame twice.
 *
 *   circumplex watch                                  # ws://127.0.0.1:8787, every stream
 *   circumplex watch ws://host:8787 --stream mic --json --count 100
 *
 * Frames go to stdout; connection notices go to stderr.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { CircumplexClient } from '../../clients/node-client.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import { AffectError } from '../../core/errors.js';
import { streamIdOption } from './options.js';

/** Parsed `watch` options. */
export interface WatchCommandOptions {
  json: boolean;
  stream?: string[];
  count?: number;
  reconnect: boolean;
  fromStart: boolean;
  token?: string;
}

/** Default server address. */
export const DEFAULT_WATCH_URL = 'ws://127.0.0.1:8787';

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1, got "${v}"`);
    return n;
  };
}

/**
 * `--stream <id...>` takes every following word, a server address too: `watch -s mic ws://h:8787`
 * watched the default server for a stream named "ws://h:8787". Each id must be one the hub accepts
 * (or `*`), and an address gets an error that says where it goes.
 */
function streamIds(v: string, previous: string[] | undefined): string[] {
  if (v.includes('://'))
    throw new InvalidArgumentError(`"${v}" is a server address, not a stream id: put the URL before --stream (circumplex watch URL --stream ID …)`);
  return [...(previous ?? []), v === '*' ? v : streamIdOption('--stream')(v)];
}

const sign = (v: number): string => `${v < 0 ? '-' : '+'}${Math.abs(v).toFixed(2)}`;

/**
 * One compact line for a frame, e.g.
 * `mic #12 3.00s  content      v +0.42  a -0.10  d +0.15  i 0.43  c 0.80  speech+text`
 * (`d` only when the frame carries dominance).
 */
export function formatFrame(m: StreamEventMessage): string {
  const head = `${m.streamId} #${m.seq} ${(m.tMs / 1000).toFixed(2)}s`;
  switch (m.type) {
    case 'affect': {
      const extra = [m.modalities.join('+')];
      if (m.droppedWindows > 0) extra.push(`dropped ${m.droppedWindows}`);
      if (m.coalesced) extra.push(`coalesced ${m.coalesced}`);
      const dominance = m.dominance === undefined ? '' : `  d ${sign(m.dominance)}`;
      return `${head}  ${m.label.padEnd(11)} v ${sign(m.valence)}  a ${sign(m.arousal)}${dominance}  i ${m.intensity.toFixed(2)}  c ${m.confidence.toFixed(2)}  ${extra.join('  ')}`;
    }
    case 'transcript':
      return m.final ? `${head}  "${m.text}"` : `${head}  … ${m.text}`;
    case 'status':
      return `${head}  [${m.state}] ${m.message}`;
    case 'turn':
      return `${head}  turn ${(m.startMs / 1000).toFixed(2)}-${(m.endMs / 1000).toFixed(2)}s ${m.label}  v ${sign(m.mean.valence)}  a ${sign(m.mean.arousal)}  c ${m.confidence.toFixed(2)}${m.transcript ? `  "${m.transcript}"` : ''}`;
    case 'alert':
      return `${head}  ALERT ${m.alert}: ${m.reason}`;
  }
}

/** Registers `circumplex watch`. */
export function register(program: Command): void {
  program
    .command('watch')
    .description('Print live frames from a circumplex server (a compact line per frame, or --json)')
    .argument('[url]', 'server address (ws://, wss://, http:// or https://)', DEFAULT_WATCH_URL)
    .option('--json', 'print each wire message as one JSON line', false)
    .option('-s, --stream <id...>', 'stream ids to watch (default: every stream); give the URL first', streamIds)
    .option('-n, --count <n>', 'exit after this many frames', positiveInt('--count'))
    .option('--no-reconnect', 'exit when the connection drops instead of reconnecting')
    .option('--from-start', 'also print what the server still has of running streams', false)
    .option('--token <token>', 'access token (sent as Authorization: Bearer)')
    .action(async (url: string, opts: WatchCommandOptions) => {
      const code = await watchCommand(url, opts);
      if (code !== 0) process.exitCode = code;
    });
}

/**
 * Watches until SIGINT/SIGTERM, `--count` frames, or (with `--no-reconnect`) the end of the
 * connection. Resolves with the exit code; a client that gives up throws an AffectError.
 */
export async function watchCommand(
  url: string,
  opts: WatchCommandOptions,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
  signal?: AbortSignal,
): Promise<number> {
  const client = CircumplexClient.connect(url, {
    streamIds: opts.stream && opts.stream.length > 0 ? opts.stream : ['*'],
    reconnect: opts.reconnect,
    fromStart: opts.fromStart,
    headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {},
  });
  let printed = 0;
  // One notice per lost connection: the client re-enters 'reconnecting' after every failed
  // attempt, which printed a line per retry while the server was down.
  let wasOpen = false;
  let saidDown = false;
  const stateSub = client.state$.subscribe((s) => {
    if (s === 'open') {
      wasOpen = true;
      saidDown = false;
      err.write(`circumplex watch: connected to ${client.url}\n`);
    } else if (s === 'reconnecting' && !saidDown) {
      saidDown = true;
      err.write(wasOpen ? 'circumplex watch: connection lost; reconnecting…\n' : `circumplex watch: cannot reach ${client.url} yet; retrying…\n`);
      wasOpen = false;
    }
  });
  const errorSub = client.messages$.subscribe((m) => {
    if (m.type === 'error') err.write(`circumplex watch: server error ${m.code}${m.streamId ? ` on "${m.streamId}"` : ''}: ${m.message}\n`);
  });
  const stop = () => client.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const frame of client) {
      out.write(`${opts.json ? JSON.stringify(frame) : formatFrame(frame)}\n`);
      if (opts.count !== undefined && ++printed >= opts.count) break;
    }
    return 0;
  } catch (e) {
    // Without --reconnect, a server that closes normally (1000/1001) is a normal end.
    if (!opts.reconnect && (client.lastCloseCode === 1000 || client.lastCloseCode === 1001)) return 0;
    // A refused upgrade (401 no/unknown token, 403 token without the subscribe scope) is an auth
    // problem, as the README's error table says, not a wrong address.
    const refused = /Unexpected server response: (401|403)/.exec(e instanceof Error ? e.message : '');
    if (refused) {
      throw new AffectError('AFFECT_ERR_AUTH', `watch ${client.url}: the server refused the connection (HTTP ${refused[1]})`, {
        cause: e,
        hint:
          refused[1] === '403'
            ? 'the token lacks the subscribe scope: use a token with subscribe, subscribe:<streamId> or admin'
            : opts.token
              ? 'the server does not know this token: check --token (see docs/server.md "Security")'
              : 'the server needs a token: pass one with --token (see docs/server.md "Security")',
      });
    }
    throw new AffectError('AFFECT_ERR_INPUT', `watch ${client.url}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: 'is `circumplex serve` running there? check the URL, port and --token',
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    stateSub.unsubscribe();
    errorSub.unsubscribe();
    client.close();
  }
}
