/**
 * What the server's handler modules share: options, logger, hub, metrics, auth and the live
 * connection sets of one running AffectServer. Built once by `AffectServer.start`; each endpoint's
 * handler (src/server/handlers/*) gets it instead of closing over one big function's locals.
 */
import type { RawData, WebSocket } from 'ws';
import { CLOSE_CODES } from '../../core/protocol.js';
import type { Logger } from '../../core/log.js';
import type { Authenticator } from './auth.js';
import type { ClaimResult, Hub } from './hub.js';
import type { ServerMetrics } from './metrics.js';
import type { AffectServerOptions, RateLimit } from './options.js';
import type { Subscriber } from './subscriber.js';

/** The state one running server shares between its handlers. */
export interface ServerContext {
  /** Options with defaults applied. */
  readonly o: AffectServerOptions;
  /** The server's logger (`component: server`). */
  readonly log: Logger;
  readonly hub: Hub;
  readonly metrics: ServerMetrics;
  readonly auth: Authenticator;
  /** Server instance id, sent in `hello`. */
  readonly sessionId: string;
  /** Date.now() at start. */
  readonly startedAt: number;
  /** Connected `/v1/stream` subscribers. */
  readonly subscribers: Set<Subscriber>;
  /** The publisher socket of each stream ingested here. */
  readonly publishers: Map<string, WebSocket>;
  /** Every open WebSocket (both endpoints), for heartbeat and shutdown. */
  readonly sockets: Set<WebSocket>;
  /** Heartbeat: did the socket answer since the last ping? */
  readonly alive: WeakMap<WebSocket, boolean>;
  /** Sockets the heartbeat terminated (missed pong): their close counts as `dead-peer`, not `abnormal`. */
  readonly deadPeers: WeakSet<WebSocket>;
  /** Streams whose pipeline runs here, each with a Promise that settles once that pipeline has ended. */
  readonly pipelines: Map<string, Promise<void>>;
  /**
   * Asks the hub for the right to publish a stream, after the pipeline still finishing on that id
   * here (a publisher that just stopped or vanished) has ended the stream; a stream whose previous
   * pipeline is not done after {@link PIPELINE_DRAIN_WAIT_MS} is refused as busy.
   */
  claim(streamId: string): ClaimResult | Promise<ClaimResult>;
  /** Set once close() has started. */
  closing: Promise<void> | undefined;
  /** A child logger with `streamId` (cached while the stream is live in the hub). */
  streamLog(streamId: string): Logger;
  /** Forgets a stream's cached logger (it ended). */
  forgetStreamLog(streamId: string): void;
  /** Counts a new socket and keeps its heartbeat and close metrics. */
  track(ws: WebSocket, endpoint: 'stream' | 'ingest' | 'twilio'): void;
  /** Closes a connection that went over its message rate limit (4029); `ids` (streamId, callSid) go in its log line. */
  rateLimited(ws: WebSocket, endpoint: string, ids?: Record<string, string | undefined>): void;
}

/** Longest wait (ms) for a stream's previous pipeline to end before a new publisher of that id is refused. */
export const PIPELINE_DRAIN_WAIT_MS = 10_000;

/** Builds the shared state of one server. */
export function createContext(init: Pick<ServerContext, 'o' | 'log' | 'hub' | 'metrics' | 'auth' | 'sessionId'>): ServerContext {
  const { log, metrics } = init;
  const streamLogs = new Map<string, Logger>();
  const ctx: ServerContext = {
    ...init,
    startedAt: Date.now(),
    subscribers: new Set(),
    publishers: new Map(),
    sockets: new Set(),
    alive: new WeakMap(),
    deadPeers: new WeakSet(),
    pipelines: new Map(),
    claim(id) {
      const prior = ctx.pipelines.get(id);
      if (!prior) return init.hub.claim(id);
      // A publisher reconnecting at once: its old pipeline still flushes and will end the stream.
      // Opening the new one before that ended it under the new publisher, whose audio was then lost.
      const busy: ClaimResult = {
        ok: false,
        reason: 'stream-busy',
        message: `stream "${id}": the previous publisher's audio is still being analysed after ${PIPELINE_DRAIN_WAIT_MS} ms; try again`,
      };
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const after = prior.then(() => {
        clearTimeout(timer);
        return timedOut ? busy : init.hub.claim(id);
      });
      const timeout = new Promise<ClaimResult>((resolve) => {
        timer = setTimeout(() => {
          timedOut = true;
          resolve(busy);
        }, PIPELINE_DRAIN_WAIT_MS);
        // A wait cut short by shutdown must not keep the process alive.
        timer.unref();
      });
      return Promise.race([after, timeout]);
    },
    closing: undefined,
    streamLog(id) {
      const cached = streamLogs.get(id);
      if (cached) return cached;
      const l = log.child({ streamId: id });
      // Cached only while the stream is open in the hub: its end forgets it. A stream that never opens (refused
      // over capacity) or has ended (a pipeline flushing late) would otherwise stay cached for good,
      // one logger per refused or late stream id.
      const known = init.hub.stream(id);
      if (known && known.state !== 'ended') streamLogs.set(id, l);
      return l;
    },
    forgetStreamLog(id) {
      streamLogs.delete(id);
    },
    track(ws, endpoint) {
      ctx.sockets.add(ws);
      ctx.alive.set(ws, true);
      metrics.connections.inc({ endpoint });
      ws.on('pong', () => ctx.alive.set(ws, true));
      ws.on('error', (err) => log.debug({ err, endpoint }, 'socket error'));
      ws.once('close', (code) => {
        ctx.sockets.delete(ws);
        metrics.connections.dec({ endpoint });
        // One close, one count, under its own endpoint: a terminated dead peer was counted twice, as
        // endpoint="any" reason="dead-peer" by the heartbeat and again here as "abnormal" (1006).
        const dead = ctx.deadPeers.has(ws);
        metrics.closes.inc({ endpoint, reason: dead ? 'dead-peer' : closeReason(code) });
        // Logged here, where the endpoint is known (the heartbeat's line did not say which kind of peer died).
        if (dead) log.info({ endpoint }, 'terminated a peer that missed its pong');
      });
    },
    rateLimited(ws, endpoint, ids = {}) {
      // Which publisher or call went over (the line said only the endpoint).
      log.warn({ endpoint, ...ids }, 'closing a connection over its message rate limit');
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'error', code: 'AFFECT_ERR_RATE_LIMIT', message: 'too many messages per second', recoverable: false }));
        ws.close(CLOSE_CODES.rateLimited, 'rate limited');
      }
    },
  };
  return ctx;
}

/** A token bucket: `perSec` sustained, `burst` at once (one per connection). */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  constructor(private readonly limit: RateLimit) {
    this.tokens = limit.burst;
  }
  /** Takes one token; false when the connection is over its rate. */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A ws message as bytes. */
export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** A ws message as UTF-8 text. */
export function toText(data: RawData): string {
  const b = toBytes(data);
  // A Buffer decodes in place; Buffer.from(buffer) would copy it first.
  return (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('utf8');
}

/** The most bytes a WebSocket close reason may have (RFC 6455: 125 bytes of payload less the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason cut to {@link MAX_CLOSE_REASON_BYTES} UTF-8 bytes, never inside a character: `ws`
 * throws (a RangeError out of the message handler, which ends the process) on a longer one, and a
 * reason that quotes what a client sent can hold multi-byte characters.
 */
export function fitCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A close code as a metrics label. */
export function closeReason(code: number): string {
  switch (code) {
    case CLOSE_CODES.normal:
      return 'normal';
    case CLOSE_CODES.goingAway:
      return 'going-away';
    case CLOSE_CODES.protocolError:
      return 'protocol-error';
    case CLOSE_CODES.tooBig:
      return 'too-big';
    case CLOSE_CODES.policy:
      return 'policy';
    case CLOSE_CODES.internalError:
      return 'internal-error';
    case CLOSE_CODES.slowConsumer:
      return 'slow-consumer';
    case CLOSE_CODES.rateLimited:
      return 'rate-limited';
    case CLOSE_CODES.overCapacity:
      return 'over-capacity';
    case 1006:
      return 'abnormal';
    default:
      // 3000–4999 are free for applications: a client closing with codes of its choosing made one
      // time series per code (2000 per endpoint). The standard codes below 3000 that ws accepts are
      // a handful, so they stay as numbers (Twilio's 1003, a bare close's 1005).
      return code >= 3000 ? 'application' : String(code);
  }
}
