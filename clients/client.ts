/**
 * A typed client for the circumplex stream endpoint (`/v1/stream`, subprotocol `circumplex.v1`) that
 * runs in browsers and in Node: it speaks to the socket through a small {@link SocketTransport}, by
 * default the standard `WebSocket` (browsers, Node >= 22); `circumplex/client` in Node (the
 * `node-client.ts` entry) makes the `ws` package the default, with upgrade headers and pings.
 *
 * - connects, waits for `hello`, then subscribes to the stream ids it was given (`['*']` by default);
 * - reconnects with exponential backoff + jitter when the connection drops, and resumes with
 *   `resumeFrom` = the last seq it saw per stream, so the server replays what is still in its ring;
 * - never hands out a frame twice: anything at or below the last seq of its stream is dropped
 *   (counted in `stats.duplicates`), so a resume that overlaps is harmless;
 * - frames come out as an RxJS `Observable` (`frames$`, hot) or as an async iterable
 *   (`for await (const f of client)`), the latter through a bounded drop-oldest queue.
 *
 * Imports no Node module and nothing from the server: only rxjs, the wire types in ./protocol.ts
 * and the error class (core/errors.ts, itself import-free), so a browser bundle can take it as is.
 */
import { Observable, Subject, BehaviorSubject, filter } from 'rxjs';
import { AffectError } from '../core/errors.js';
import {
  SUBPROTOCOL,
  STREAM_PATH,
  CLOSE_CODES,
  MAX_IDS_PER_MESSAGE,
  ServerMessageSchema,
  type ServerMessage,
  type StreamEventMessage,
  type StreamInfo,
} from '../core/protocol.js';

export * from '../core/protocol.js';

/** What a transport reports to the client. */
export interface SocketEvents {
  /** The connection opened (the subprotocol is then known). */
  open(): void;
  /** A message arrived: its text, or null for a binary one (ignored, but it counts as activity). */
  message(text: string | null): void;
  /** The server pinged (transports that can see pings; it counts as activity). */
  ping(): void;
  /** Something failed; a `close` follows. */
  error(err: Error): void;
  /** The connection closed with this code (1006: dropped without a close frame). */
  close(code: number): void;
}

/** One WebSocket connection as the client uses it. */
export interface ClientSocket {
  /** The subprotocol the server picked ('' before open or when it picked none). */
  readonly protocol: string;
  /** 0 connecting, 1 open, 2 closing, 3 closed (the WebSocket readyState values). */
  readonly readyState: number;
  send(text: string): void;
  /** Closes with a code (transports that cannot send a code map it to 1000). */
  close(code: number): void;
  /** Drops the connection at once, without a closing handshake where the transport allows. */
  terminate(): void;
  /** Stops reporting events (the user closed the client); later errors are swallowed. */
  detach(): void;
  /**
   * False when the transport cannot see the server's pings (browsers answer them but do not
   * report them): the idle timeout is then off, or a quiet stream would look like a dead connection.
   */
  readonly seesPings: boolean;
}

/** Opens one connection: `headers` go on the upgrade request where the transport can send them. */
export type SocketTransport = (url: string, protocol: string, headers: Readonly<Record<string, string>>, events: SocketEvents) => ClientSocket;

/** The subset of the standard WebSocket the browser transport needs. */
interface StandardWebSocket {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number): void;
  addEventListener(type: string, listener: (ev: { data?: unknown; code?: number }) => void): void;
  removeEventListener(type: string, listener: (ev: { data?: unknown; code?: number }) => void): void;
}

/**
 * The standard `WebSocket` (`globalThis.WebSocket`: browsers, Deno, Node >= 22) as a transport.
 * Browsers cannot set upgrade headers (pass a token another way, e.g. the proxy) nor see pings,
 * and only let a client close with 1000 or 3000-4999.
 */
export function standardWebSocketTransport(ctor?: new (url: string, protocols: string) => StandardWebSocket): SocketTransport {
  return (url, protocol, _headers, events) => {
    const WS = ctor ?? (globalThis as { WebSocket?: new (url: string, protocols: string) => StandardWebSocket }).WebSocket;
    if (!WS) {
      throw new AffectError('AFFECT_ERR_CONFIG', 'no WebSocket implementation: globalThis.WebSocket is undefined', {
        hint: "in Node, import the client from 'circumplex/client' (uses the ws package) or pass transport: standardWebSocketTransport(YourWebSocket)",
      });
    }
    const ws = new WS(url, protocol);
    ws.binaryType = 'arraybuffer';
    let attached = true;
    const on: Record<string, (ev: { data?: unknown; code?: number }) => void> = {
      open: () => attached && events.open(),
      message: (ev) => attached && events.message(typeof ev.data === 'string' ? ev.data : null),
      error: () => attached && events.error(new Error(`WebSocket error on ${url}`)),
      close: (ev) => attached && events.close(ev.code ?? 1006),
    };
    for (const [type, fn] of Object.entries(on)) ws.addEventListener(type, fn);
    return {
      get protocol() {
        return ws.protocol;
      },
      get readyState() {
        return ws.readyState;
      },
      send: (text) => ws.send(text),
      close: (code) => ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000),
      terminate: () => ws.close(),
      seesPings: false,
      detach: () => {
        attached = false;
        for (const [type, fn] of Object.entries(on)) ws.removeEventListener(type, fn);
      },
    };
  };
}

/** The transport clients get when none is given: the standard WebSocket unless a platform entry set another. */
let defaultTransport: SocketTransport = standardWebSocketTransport();

/** Sets the transport of clients created without one (the Node entry sets the `ws` transport). */
export function setDefaultTransport(transport: SocketTransport): void {
  defaultTransport = transport;
}

/** Where the client is in its life. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of {@link CircumplexClient}. */
export interface CircumplexClientOptions {
  /** Stream ids to subscribe to; `['*']` means every stream, present and future. Default `['*']`. */
  streamIds: readonly string[];
  /** Reconnect after an unexpected close. Default true. */
  reconnect: boolean;
  /** First reconnect delay in ms. Default 250. */
  initialBackoffMs: number;
  /** Upper bound of the reconnect delay in ms. Default 10 000. */
  maxBackoffMs: number;
  /** Growth of the delay per failed attempt. Default 2. */
  backoffFactor: number;
  /** Random spread of each delay, as a fraction (0.2 = ±20 %), so many clients don't reconnect in step. Default 0.2. */
  jitter: number;
  /** Give up after this many failed attempts in a row (Infinity: never). Default Infinity. */
  maxRetries: number;
  /** Frames each async iterator may hold before it drops the oldest (counted in `stats.iteratorDropped`). Default 10 000. */
  iteratorQueueSize: number;
  /** Extra headers for the upgrade request (e.g. `Authorization: Bearer …`). Default none. */
  headers: Readonly<Record<string, string>>;
  /** Fail a connection attempt that has not received `hello` after this many ms. Default 10 000. */
  helloTimeoutMs: number;
  /**
   * On the first connection, also get what the server still has of streams that were already
   * running (their ring), not just frames from now on. Default false.
   */
  fromStart: boolean;
  /**
   * Drop and reconnect a connection that has been silent (no message, no ping) this long, so a
   * half-open TCP connection is noticed. The server pings every 15 s by default. 0 turns it off;
   * so does a transport that cannot see pings (the browser's WebSocket).
   * Default 45 000.
   */
  idleTimeoutMs: number;
  /**
   * Ended streams whose last seq and info the client keeps (to drop duplicates if one is reopened
   * and resumed); past it the one that ended first is forgotten, as the server forgets ended streams
   * beyond its own bound (256), so a long-lived `'*'` subscriber does not grow with every call the
   * server ever carried. Keep it at least the server's. Default 1024.
   */
  maxEndedStreams: number;
  /** How to open connections. Default: the platform's (the `ws` package in Node, the standard WebSocket in browsers). */
  transport?: SocketTransport;
}

/** Defaults of {@link CircumplexClientOptions}. */
export const DEFAULT_CLIENT: CircumplexClientOptions = {
  streamIds: ['*'],
  reconnect: true,
  initialBackoffMs: 250,
  maxBackoffMs: 10_000,
  backoffFactor: 2,
  jitter: 0.2,
  maxRetries: Number.POSITIVE_INFINITY,
  iteratorQueueSize: 10_000,
  headers: {},
  helloTimeoutMs: 10_000,
  fromStart: false,
  idleTimeoutMs: 45_000,
  maxEndedStreams: 1024,
};

/** Counters a client keeps; read them with {@link CircumplexClient.stats}. */
export interface ClientStats {
  /** Stream frames handed out (affect + transcript + status). */
  frames: number;
  /** Frames dropped because their seq was already seen (resume overlap). */
  duplicates: number;
  /** Seq numbers skipped over (server coalesced for a slow consumer, or ring no longer had them). */
  gaps: number;
  /** Frames the server said were gone from its ring on resume (`resumed.missed`). */
  missedOnResume: number;
  /** Successful connections after the first. */
  reconnects: number;
  /** Frames dropped (oldest first) by async iterators whose consumer fell behind. */
  iteratorDropped: number;
  /** Server messages that failed validation (ignored). */
  invalidMessages: number;
}

/** WebSocket readyState values (the same in every implementation). */
const CONNECTING = 0;
const OPEN = 1;

/** Close codes after which retrying would fail the same way. */
const NO_RETRY_CLOSE_CODES: ReadonlySet<number> = new Set([CLOSE_CODES.protocolError, 1003, 1008]);

/** Upgrade refusals that retrying will not fix (bad token, wrong path, wrong subprotocol). */
const NO_RETRY_HTTP = /Unexpected server response: (400|401|403|404)/;

/**
 * Normalises a server address to the stream endpoint: `http(s)://` becomes `ws(s)://`, and a bare
 * host (path `/`) gets `/v1/stream`.
 */
export function streamUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_INPUT', `not a valid URL: ${JSON.stringify(url)}`, {
      cause: err,
      hint: 'give the server address, e.g. ws://localhost:8787 or http://localhost:8787',
    });
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new AffectError('AFFECT_ERR_INPUT', `unsupported URL scheme "${u.protocol}" in ${url}`, {
      hint: 'use ws://, wss://, http:// or https://',
    });
  }
  if (u.pathname === '/' || u.pathname === '') u.pathname = STREAM_PATH;
  return u.toString();
}

function validate(o: CircumplexClientOptions): void {
  checkStreamIds(o.streamIds, 'streamIds');
  if (o.streamIds.length === 0) throw new RangeError('CircumplexClient: streamIds must not be empty');
  if (!(o.initialBackoffMs > 0)) throw new RangeError(`CircumplexClient: initialBackoffMs must be > 0, got ${o.initialBackoffMs}`);
  if (!(o.maxBackoffMs >= o.initialBackoffMs)) {
    throw new RangeError(`CircumplexClient: maxBackoffMs must be >= initialBackoffMs, got ${o.maxBackoffMs}`);
  }
  if (!(o.backoffFactor >= 1)) throw new RangeError(`CircumplexClient: backoffFactor must be >= 1, got ${o.backoffFactor}`);
  if (!(o.jitter >= 0 && o.jitter < 1)) throw new RangeError(`CircumplexClient: jitter must be in [0, 1), got ${o.jitter}`);
  if (!(o.maxRetries >= 0)) throw new RangeError(`CircumplexClient: maxRetries must be >= 0, got ${o.maxRetries}`);
  if (!(Number.isInteger(o.iteratorQueueSize) && o.iteratorQueueSize > 0)) {
    throw new RangeError(`CircumplexClient: iteratorQueueSize must be a positive integer, got ${o.iteratorQueueSize}`);
  }
  if (!(o.helloTimeoutMs > 0)) throw new RangeError(`CircumplexClient: helloTimeoutMs must be > 0, got ${o.helloTimeoutMs}`);
  if (!(o.idleTimeoutMs >= 0)) throw new RangeError(`CircumplexClient: idleTimeoutMs must be >= 0, got ${o.idleTimeoutMs}`);
  if (!(Number.isInteger(o.maxEndedStreams) && o.maxEndedStreams >= 0)) {
    throw new RangeError(`CircumplexClient: maxEndedStreams must be an integer >= 0, got ${o.maxEndedStreams}`);
  }
}

/** Stream ids as the protocol takes them (a string would be spread into one id per character). */
function checkStreamIds(ids: unknown, name: string): void {
  if (!Array.isArray(ids)) throw new RangeError(`CircumplexClient: ${name} must be an array of stream ids (['*']: every stream), got ${typeof ids}`);
  ids.forEach((id: unknown, i) => {
    if (typeof id !== 'string' || id.length < 1 || id.length > 128)
      throw new RangeError(`CircumplexClient: ${name}[${i}] must be 1-128 characters, got ${String(id)}`);
  });
}

/** A list of ids cut into messages' worth ({@link MAX_IDS_PER_MESSAGE} each). */
function inParts(ids: readonly string[]): string[][] {
  const parts: string[][] = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_MESSAGE) parts.push(ids.slice(i, i + MAX_IDS_PER_MESSAGE));
  return parts;
}

/** The delay before reconnect attempt `attempt` (0-based), with jitter from `rand` in [0, 1). */
export function backoffDelayMs(
  attempt: number,
  o: Pick<CircumplexClientOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'backoffFactor' | 'jitter'>,
  rand: () => number = Math.random,
): number {
  const base = Math.min(o.maxBackoffMs, o.initialBackoffMs * o.backoffFactor ** attempt);
  return Math.max(0, Math.round(base * (1 + o.jitter * (2 * rand() - 1))));
}

function isStreamEvent(m: ServerMessage): m is StreamEventMessage {
  return m.type === 'affect' || m.type === 'transcript' || m.type === 'status' || m.type === 'turn' || m.type === 'alert';
}

/**
 * A subscriber connection that survives drops. Create it with {@link CircumplexClient.connect}.
 *
 * ```ts
 * const client = CircumplexClient.connect('ws://localhost:8787', { streamIds: ['mic'] });
 * for await (const frame of client) if (frame.type === 'affect') console.log(frame.label);
 * ```
 */
export class CircumplexClient implements AsyncIterable<StreamEventMessage> {
  /** Every valid server message (hello, stream, error, resumed and frames, frames deduplicated). */
  readonly messages$: Observable<ServerMessage>;
  /** Stream frames (affect, transcript, status), in order per stream, each seq at most once. Hot. */
  readonly frames$: Observable<StreamEventMessage>;
  /** Connection state; starts at `connecting`, ends at `closed`. */
  readonly state$: BehaviorSubject<ConnectionState>;

  readonly url: string;
  private readonly opts: CircumplexClientOptions;
  private readonly messagesSubject = new Subject<ServerMessage>();
  private readonly lastSeqs = new Map<string, number>();
  private readonly knownStreams = new Map<string, StreamInfo>();
  /** Ids of streams that ended, in the order they ended (bounded by maxEndedStreams). */
  private readonly endedStreams = new Set<string>();
  private streamIds: string[];
  private ws: ClientSocket | undefined;
  private attempt = 0;
  private everOpened = false;
  private closedByUser = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private lastError: Error | undefined;
  /** Why the client gave up, when it did so on its own (undefined after a user `close()`). */
  failure: Error | undefined;
  /** Close code of the last connection that closed (1006: dropped without a close frame). */
  lastCloseCode: number | undefined;
  private readonly counters: ClientStats = {
    frames: 0,
    duplicates: 0,
    gaps: 0,
    missedOnResume: 0,
    reconnects: 0,
    iteratorDropped: 0,
    invalidMessages: 0,
  };

  private constructor(url: string, opts: CircumplexClientOptions) {
    this.url = streamUrl(url);
    this.opts = opts;
    this.streamIds = [...opts.streamIds];
    this.state$ = new BehaviorSubject<ConnectionState>('connecting');
    this.messages$ = this.messagesSubject.asObservable();
    this.frames$ = this.messages$.pipe(filter(isStreamEvent));
  }

  /** Starts connecting at once and returns the client; frames flow as soon as it is subscribed. */
  static connect(url: string, opts: Partial<CircumplexClientOptions> = {}): CircumplexClient {
    const merged: CircumplexClientOptions = { ...DEFAULT_CLIENT, ...opts };
    validate(merged);
    const client = new CircumplexClient(url, merged);
    client.open();
    return client;
  }

  /** A copy of the counters. */
  get stats(): ClientStats {
    return { ...this.counters };
  }

  /** Streams announced by the server (in `hello` or `stream` messages). */
  get streams(): StreamInfo[] {
    return [...this.knownStreams.values()];
  }

  /** Last seq handed out for a stream, -1 if none. */
  lastSeq(streamId: string): number {
    return this.lastSeqs.get(streamId) ?? -1;
  }

  /** Resolves once connected and subscribed (after `hello`); rejects if the client closes first. */
  waitOpen(): Promise<void> {
    if (this.state$.value === 'open') return Promise.resolve();
    if (this.state$.value === 'closed') return Promise.reject(this.failure ?? new AffectError('AFFECT_ERR_INPUT', `client for ${this.url} is closed`));
    return new Promise((resolve, reject) => {
      const sub = this.state$.subscribe((s) => {
        if (s === 'open') {
          queueMicrotask(() => sub.unsubscribe());
          resolve();
        } else if (s === 'closed') {
          queueMicrotask(() => sub.unsubscribe());
          reject(this.lastError ?? new AffectError('AFFECT_ERR_INPUT', `client for ${this.url} closed before it connected`));
        }
      });
    });
  }

  /** Adds stream ids to the subscription (kept across reconnects). */
  subscribe(streamIds: readonly string[]): void {
    checkStreamIds(streamIds, 'subscribe(streamIds)');
    const added = streamIds.filter((id) => !this.streamIds.includes(id));
    if (added.length === 0) return;
    this.streamIds.push(...added);
    for (const part of inParts(added)) this.send({ type: 'subscribe', streamIds: part, ...this.resumeFor(part) });
  }

  /** Removes stream ids from the subscription. */
  unsubscribe(streamIds: readonly string[]): void {
    checkStreamIds(streamIds, 'unsubscribe(streamIds)');
    const gone = streamIds.filter((id) => this.streamIds.includes(id));
    if (gone.length === 0) return;
    this.streamIds = this.streamIds.filter((id) => !gone.includes(id));
    for (const part of inParts(gone)) this.send({ type: 'unsubscribe', streamIds: part });
  }

  /** Closes for good: no more reconnects; `frames$` and every iterator complete. Idempotent. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = undefined;
    if (ws && (ws.readyState === OPEN || ws.readyState === CONNECTING)) {
      ws.detach(); // a close during CONNECTING reports an error we don't care about
      ws.close(CLOSE_CODES.normal);
    }
    this.finish();
  }

  /** Frames as an async iterator with a bounded drop-oldest queue (`iteratorQueueSize`). */
  [Symbol.asyncIterator](): AsyncIterator<StreamEventMessage> {
    return this.frames()[Symbol.asyncIterator]();
  }

  /** Frames as an async iterable; each call gets its own bounded queue. */
  frames(): AsyncIterable<StreamEventMessage> {
    const queue: StreamEventMessage[] = [];
    const cap = this.opts.iteratorQueueSize;
    let waiting: ((r: IteratorResult<StreamEventMessage>) => void) | undefined;
    let failWaiting: ((err: unknown) => void) | undefined;
    let done = false;
    let error: unknown;
    const sub = this.frames$.subscribe({
      next: (f) => {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w({ value: f, done: false });
          return;
        }
        // Bounded: a consumer that never reads must not grow memory without limit.
        if (queue.length >= cap) {
          queue.shift();
          this.counters.iteratorDropped++;
        }
        queue.push(f);
      },
      error: (err: unknown) => {
        done = true;
        error = err;
        failWaiting?.(err);
      },
      complete: () => {
        done = true;
        // The client gave up (retries exhausted, auth refused): the iterator throws why.
        if (this.failure) {
          error = this.failure;
          failWaiting?.(this.failure);
        } else waiting?.({ value: undefined, done: true });
      },
    });
    const iterator: AsyncIterableIterator<StreamEventMessage> = {
      next: () => {
        const f = queue.shift();
        if (f) return Promise.resolve({ value: f, done: false });
        if (error !== undefined) return Promise.reject(error instanceof Error ? error : new Error('stream failed', { cause: error }));
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          waiting = resolve;
          failWaiting = reject;
        });
      },
      return: () => {
        sub.unsubscribe();
        done = true;
        queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  // ---- connection lifecycle ----

  private open(): void {
    if (this.closedByUser) return;
    this.state$.next(this.everOpened ? 'reconnecting' : 'connecting');
    let failure: Error | undefined;
    // Set when this side gave up on the connection for good (wrong subprotocol): browsers cannot
    // close with 1002, so the close code alone would not tell.
    let fatalHere = false;
    // Liveness: any message or ping re-arms the idle timer; silence past idleTimeoutMs means the
    // connection is dead even if TCP has not noticed, so terminate it and let reconnect run.
    const touch = () => {
      if (this.opts.idleTimeoutMs <= 0 || this.ws !== ws || !ws.seesPings) return;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => {
        failure = new AffectError('AFFECT_ERR_INPUT', `no message or ping from ${this.url} for ${this.opts.idleTimeoutMs} ms`);
        ws.terminate();
      }, this.opts.idleTimeoutMs);
    };
    const transport = this.opts.transport ?? defaultTransport;
    const ws: ClientSocket = transport(
      this.url,
      SUBPROTOCOL,
      { ...this.opts.headers },
      {
        open: () => {
          // A server that picked no subprotocol is accepted by some WebSocket implementations; we
          // insist, so a wrong server fails loudly.
          if (ws.protocol !== SUBPROTOCOL) {
            failure = new AffectError('AFFECT_ERR_PROTOCOL', `server at ${this.url} did not accept subprotocol ${SUBPROTOCOL}`, {
              hint: 'the server speaks another protocol version; upgrade the client or the server',
            });
            fatalHere = true;
            ws.close(CLOSE_CODES.protocolError);
            return;
          }
          touch();
        },
        ping: touch,
        message: (text) => {
          touch();
          if (text === null) return;
          this.onMessage(ws, text);
        },
        error: (err) => {
          failure ??= err;
        },
        close: (code) => {
          if (this.ws !== ws) return;
          this.ws = undefined;
          if (this.helloTimer) clearTimeout(this.helloTimer);
          if (this.idleTimer) clearTimeout(this.idleTimer);
          this.lastCloseCode = code;
          this.lastError = failure ?? new AffectError('AFFECT_ERR_INPUT', `connection to ${this.url} closed (code ${code})`);
          const fatal = fatalHere || NO_RETRY_CLOSE_CODES.has(code) || (failure !== undefined && NO_RETRY_HTTP.test(failure.message));
          if (this.closedByUser) return;
          if (!this.opts.reconnect || fatal || this.attempt >= this.opts.maxRetries) {
            this.finish(this.lastError);
            return;
          }
          const delay = backoffDelayMs(this.attempt, this.opts);
          this.attempt++;
          this.state$.next('reconnecting');
          this.retryTimer = setTimeout(() => this.open(), delay);
        },
      },
    );
    this.ws = ws;
    this.helloTimer = setTimeout(() => {
      failure = new AffectError('AFFECT_ERR_PROTOCOL', `no hello from ${this.url} within ${this.opts.helloTimeoutMs} ms`, {
        hint: 'is this a circumplex server? check the URL and port',
      });
      ws.terminate();
    }, this.opts.helloTimeoutMs);
  }

  private onMessage(ws: ClientSocket, text: string): void {
    let msg: ServerMessage;
    try {
      const parsed = ServerMessageSchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        this.counters.invalidMessages++;
        return;
      }
      msg = parsed.data;
    } catch {
      this.counters.invalidMessages++;
      return;
    }
    switch (msg.type) {
      case 'hello': {
        if (this.helloTimer) clearTimeout(this.helloTimer);
        // On a reconnect: where each stream stood when we last heard of it (absent: new since).
        const before = this.everOpened ? new Map([...this.knownStreams].map(([id, st]) => [id, st.lastSeq])) : undefined;
        const restarted = new Set<string>();
        for (const s of msg.streams) if (this.noteStream(s)) restarted.add(s.streamId);
        // A stream the server no longer lists is gone there (restarted, or forgotten): forget it too.
        const listed = new Set(msg.streams.map((s) => s.streamId));
        for (const id of [...this.knownStreams.keys(), ...this.lastSeqs.keys()]) if (!listed.has(id)) this.forget(id);
        // Subscribe only after hello, so a restarted stream (lower lastSeq) is reset before we resume.
        // In parts: one message lists at most MAX_IDS_PER_MESSAGE ids, and subscribe() may have added more.
        for (const part of inParts(this.streamIds))
          this.sendOn(ws, { type: 'subscribe', streamIds: part, ...this.resumeFor(part, msg.streams, restarted, before) });
        if (this.everOpened) this.counters.reconnects++;
        this.everOpened = true;
        this.attempt = 0;
        this.state$.next('open');
        break;
      }
      case 'stream':
        this.noteStream(msg.stream);
        break;
      case 'resumed':
        this.counters.missedOnResume += msg.missed;
        break;
      case 'affect':
      case 'transcript':
      case 'status':
      case 'turn':
      case 'alert': {
        const last = this.lastSeqs.get(msg.streamId) ?? -1;
        if (msg.seq <= last) {
          this.counters.duplicates++;
          return;
        }
        if (last >= 0 && msg.seq > last + 1) this.counters.gaps += msg.seq - last - 1;
        this.lastSeqs.set(msg.streamId, msg.seq);
        this.counters.frames++;
        this.noteFrame(msg);
        break;
      }
      case 'error':
        break;
    }
    this.messagesSubject.next(msg);
  }

  /**
   * Remembers a stream; if its lastSeq went backwards, the server restarted it, so seqs start over.
   * Returns true in that case.
   */
  private noteStream(s: StreamInfo): boolean {
    this.knownStreams.set(s.streamId, s);
    this.noteEnded(s.streamId, s.state === 'ended');
    const last = this.lastSeqs.get(s.streamId);
    if (last === undefined || s.lastSeq >= last) return false;
    this.lastSeqs.delete(s.streamId);
    return true;
  }

  /** A frame keeps its stream's state current, as the server's hub does: a status sets it, anything else reopens an ended stream. */
  private noteFrame(msg: StreamEventMessage): void {
    const info = this.knownStreams.get(msg.streamId);
    const ended = msg.type === 'status' ? msg.state === 'ended' : false;
    if (info) {
      const state = msg.type === 'status' ? msg.state : info.state === 'ended' ? 'live' : info.state;
      if (state !== info.state) this.knownStreams.set(msg.streamId, { ...info, state, lastSeq: Math.max(info.lastSeq, msg.seq) });
    }
    this.noteEnded(msg.streamId, ended);
  }

  /** Keeps the ended streams in end order and forgets the oldest beyond maxEndedStreams. */
  private noteEnded(streamId: string, ended: boolean): void {
    this.endedStreams.delete(streamId);
    if (!ended) return;
    this.endedStreams.add(streamId);
    for (const id of this.endedStreams) {
      if (this.endedStreams.size <= this.opts.maxEndedStreams) break;
      this.forget(id);
    }
  }

  private forget(streamId: string): void {
    this.knownStreams.delete(streamId);
    this.lastSeqs.delete(streamId);
    this.endedStreams.delete(streamId);
  }

  /**
   * `resumeFrom` for the given ids (every seen stream when subscribing to '*'), or nothing.
   *
   * After `hello` (`announced` given) only the streams it lists are resumed: one it does not list
   * is not on the server (restarted, or forgotten), and our last seq would make the server skip that
   * many frames of a stream that starts again under the same id (its announcement resets our seq).
   * Listed streams resume from our last seq; a stream the server `restarted` from -1 (all of the new
   * run it still has). One we have no seq for yet: on a reconnect (`before` given), from where it
   * stood when we last heard of it, or -1 if it is new since, so what it published while we were
   * away is not lost; on the first connection, from its `lastSeq` at hello time (or -1 with
   * `fromStart`), so frames published between hello and the server reading our subscribe are
   * replayed instead of lost.
   */
  private resumeFor(
    ids: readonly string[],
    announced?: readonly StreamInfo[],
    restarted: ReadonlySet<string> = new Set(),
    before?: ReadonlyMap<string, number>,
  ): { resumeFrom?: Record<string, number> } {
    const all = ids.includes('*');
    const wanted = (id: string) => all || ids.includes(id);
    // A Map, not an object literal: a stream id may be any name, `__proto__` too.
    const resume = new Map<string, number>();
    if (announced === undefined) {
      for (const [id, seq] of this.lastSeqs) if (wanted(id)) resume.set(id, seq);
    } else {
      for (const s of announced) {
        if (!wanted(s.streamId)) continue;
        const seen = this.lastSeqs.get(s.streamId);
        if (seen !== undefined) resume.set(s.streamId, seen);
        else if (this.opts.fromStart || restarted.has(s.streamId)) resume.set(s.streamId, -1);
        else if (before !== undefined) resume.set(s.streamId, Math.min(s.lastSeq, before.get(s.streamId) ?? -1));
        else resume.set(s.streamId, s.lastSeq);
      }
    }
    return resume.size === 0 ? {} : { resumeFrom: Object.fromEntries(resume) };
  }

  private send(msg: object): void {
    if (this.ws && this.state$.value === 'open') this.sendOn(this.ws, msg);
    // Not open: the subscription list is sent after the next hello anyway.
  }

  private sendOn(ws: ClientSocket, msg: object): void {
    if (ws.readyState === OPEN) ws.send(JSON.stringify(msg));
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.helloTimer) clearTimeout(this.helloTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.retryTimer = undefined;
    this.helloTimer = undefined;
    this.idleTimer = undefined;
  }

  private finish(err?: Error): void {
    this.clearTimers();
    if (this.state$.value === 'closed') return;
    // Observables complete either way (an error on a hot Subject would crash subscribers that have
    // no error handler); why it ended is in `failure`, and async iterators throw it.
    if (err && !this.closedByUser) this.failure = err;
    this.state$.next('closed');
    this.messagesSubject.complete();
    this.state$.complete();
  }
}
