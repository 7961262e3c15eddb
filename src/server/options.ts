/**
 * AffectServer options, their defaults and their checks (one place, shared by the handler modules).
 */
import path from 'node:path';
import type { Observable } from 'rxjs';
import type { AudioChunk, PipelineEvent } from '../../core/types.js';
import { REPO_ROOT } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import { AffectError } from '../../core/errors.js';
import { checkTokenEntries, isLoopbackHost, type TokenEntry } from './auth.js';
import type { Hub } from './hub.js';
import type { IngestFormat } from './ingest.js';

/** Limits for one subscriber's outgoing buffer. */
export interface DeliveryOptions {
  /** Above this many unsent bytes, affect frames coalesce to the latest. Default 256 KiB. */
  softBufferBytes: number;
  /** Above this many unsent bytes, the subscriber is closed with 4008. Default 4 MiB. */
  hardBufferBytes: number;
  /** Continuously above the soft limit this long (ms) also closes with 4008. Default 30 000. */
  maxStallMs: number;
  /** After a 4008 close, how long (ms) to wait for the close handshake before terminate(). Default 5000. */
  slowCloseGraceMs: number;
}

/** Defaults for {@link DeliveryOptions}. */
export const DEFAULT_DELIVERY: DeliveryOptions = {
  softBufferBytes: 256 * 1024,
  hardBufferBytes: 4 * 1024 * 1024,
  maxStallMs: 30_000,
  slowCloseGraceMs: 5000,
};

/** A token bucket: `perSec` sustained, `burst` at once. */
export interface RateLimit {
  perSec: number;
  burst: number;
}

/** Builds the pipeline for an ingest stream: audio in, pipeline events out. */
export type IngestStreamHook = (streamId: string, audio$: Observable<AudioChunk>, format: IngestFormat) => Observable<PipelineEvent>;

/** Options for {@link AffectServer.start}. */
export interface AffectServerOptions {
  /** TCP port; 0 picks a free one. Default 8787. */
  port: number;
  /** Interface to bind. Default 127.0.0.1 (loopback only); use `--host 0.0.0.0` to open it. */
  host: string;
  /**
   * The hub to serve (default: a new in-process {@link StreamHub} with `ringSize`). Pass a cluster hub
   * (e.g. `RedisHub`) to share streams between nodes; the server closes neither kind.
   */
  hub: Hub | undefined;
  /** Resume ring per stream (messages). Default 2048. */
  ringSize: number;
  /** Accepted tokens; empty = no auth (refused off loopback unless `insecure`). */
  tokens: TokenEntry[];
  /**
   * Allow a non-loopback `host` without tokens (anyone who can reach it may subscribe and publish;
   * the server warns). Default false: such a server refuses to start (protected mode).
   */
  insecure: boolean;
  /** Browser origins allowed; undefined = same origin only. */
  allowedOrigins: string[] | undefined;
  /** PEM certificate + key files: serve https/wss. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** Largest message a subscriber may send (bytes; bigger closes with 1009). Default 64 KiB. */
  streamMaxPayloadBytes: number;
  /** Largest message a publisher may send (bytes). Default 1 MiB. */
  ingestMaxPayloadBytes: number;
  /** Subscriber message rate limit. Default 20/s, burst 50. */
  streamRateLimit: RateLimit;
  /** Publisher message rate limit. Default 500/s, burst 1000 (telephony sends 50/s). */
  ingestRateLimit: RateLimit;
  /** Heartbeat: ping every this many ms; a peer that missed the previous pong is terminated. Default 15 000. */
  heartbeatMs: number;
  /** Outgoing-buffer limits per subscriber. */
  delivery: DeliveryOptions;
  /** How often (ms) held-back frames are retried. Default 25. */
  flushIntervalMs: number;
  /** Graceful close: wait this long (ms) for clients to close before terminating them. Default 2000. */
  closeTimeoutMs: number;
  /** Pipeline for ingest streams; without it /v1/ingest refuses `start`. */
  onIngestStream: IngestStreamHook | undefined;
  /**
   * Most ingest streams this node analyses at once (`serve --max-streams`: what the bench measured
   * it holds in real time). A `start` beyond it is refused with close code 4013 (overCapacity)
   * instead of slowing every stream down. Default: unlimited.
   */
  maxIngestStreams?: number;
  /**
   * Most connections one remote address may hold open before its first request is complete
   * (slowloris; see handlers/pending.ts). Default 256: clients send their request at once, but a
   * burst of simultaneous connects from one address (a proxy, a load generator) is pending together.
   */
  maxPendingConnectionsPerAddress?: number;
  /** hopMs/windowMs announced for ingest streams (the engine's). Default 250 / 1000. */
  ingestStreamTiming: { hopMs: number; windowMs: number };
  /** Folder with the dashboard's static files. Default clients/dashboard. */
  dashboardDir: string;
  /** Logger (default: the process logger, child `component: server`). */
  logger: Logger | undefined;
}

/** Defaults for {@link AffectServerOptions}. */
export const DEFAULT_AFFECT_SERVER: AffectServerOptions = {
  port: 8787,
  host: '127.0.0.1',
  hub: undefined,
  ringSize: 2048,
  tokens: [],
  insecure: false,
  allowedOrigins: undefined,
  tls: undefined,
  streamMaxPayloadBytes: 64 * 1024,
  ingestMaxPayloadBytes: 1024 * 1024,
  streamRateLimit: { perSec: 20, burst: 50 },
  ingestRateLimit: { perSec: 500, burst: 1000 },
  heartbeatMs: 15_000,
  delivery: DEFAULT_DELIVERY,
  flushIntervalMs: 25,
  closeTimeoutMs: 2000,
  onIngestStream: undefined,
  ingestStreamTiming: { hopMs: 250, windowMs: 1000 },
  dashboardDir: path.join(REPO_ROOT, 'clients', 'dashboard'),
  logger: undefined,
};

/**
 * Protected mode: a server bound to a non-loopback interface without tokens would let anyone on the
 * network subscribe and publish, so it refuses to start unless `insecure` is set. Throws
 * AFFECT_ERR_CONFIG naming the host and what to do.
 */
export function assertExposureAllowed(host: string, hasTokens: boolean, insecure: boolean): void {
  if (isLoopbackHost(host) || hasTokens || insecure) return;
  throw new AffectError('AFFECT_ERR_CONFIG', `refusing to serve on ${host} without tokens: anyone who can reach it could subscribe and publish`, {
    hint: 'set CIRCUMPLEX_TOKENS or --tokens-file (see docs/server.md "Security"), bind loopback with --host 127.0.0.1, or pass --insecure to serve openly anyway',
  });
}

/** Longest delay Node's timers take (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks option values; throws a RangeError naming the option (AFFECT_ERR_CONFIG for tokens). */
export function validateServerOptions(o: AffectServerOptions): void {
  const positive = (name: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`AffectServer: ${name} must be > 0, got ${v}`);
  };
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError(`AffectServer: port must be an integer in 0..65535, got ${o.port}`);
  positive('streamMaxPayloadBytes', o.streamMaxPayloadBytes);
  positive('ingestMaxPayloadBytes', o.ingestMaxPayloadBytes);
  // Node turns a timer delay above 2^31-1 into 1 ms: a ping every millisecond that drops every peer,
  // a flush loop every millisecond, a slow subscriber terminated at once.
  const timer = (name: string, v: number) => {
    positive(name, v);
    if (v > MAX_TIMER_MS) throw new RangeError(`AffectServer: ${name} must be <= ${MAX_TIMER_MS}, got ${v}`);
  };
  if (typeof o.host !== 'string' || o.host === '') throw new RangeError(`AffectServer: host must be a host name or address, got ${String(o.host)}`);
  timer('heartbeatMs', o.heartbeatMs);
  timer('flushIntervalMs', o.flushIntervalMs);
  positive('closeTimeoutMs', o.closeTimeoutMs);
  timer('delivery.slowCloseGraceMs', o.delivery.slowCloseGraceMs);
  positive('delivery.maxStallMs', o.delivery.maxStallMs);
  // Announced for every ingest stream: a bad value threw out of the socket's message handler at the
  // first `start` and ended the process.
  positive('ingestStreamTiming.hopMs', o.ingestStreamTiming.hopMs);
  positive('ingestStreamTiming.windowMs', o.ingestStreamTiming.windowMs);
  if (o.onIngestStream !== undefined && typeof o.onIngestStream !== 'function') {
    throw new RangeError(`AffectServer: onIngestStream must be a function (streamId, audio$, format) => events$, got ${typeof o.onIngestStream}`);
  }
  checkTokenEntries(o.tokens, 'AffectServer');
  if (o.allowedOrigins !== undefined && !(Array.isArray(o.allowedOrigins) && o.allowedOrigins.every((x) => typeof x === 'string'))) {
    // A string would be matched as a substring ('https://app.example.com'.includes(origin)).
    throw new RangeError(`AffectServer: allowedOrigins must be an array of origins (or undefined: same origin only), got ${typeof o.allowedOrigins}`);
  }
  positive('streamRateLimit.perSec', o.streamRateLimit.perSec);
  positive('streamRateLimit.burst', o.streamRateLimit.burst);
  positive('ingestRateLimit.perSec', o.ingestRateLimit.perSec);
  positive('ingestRateLimit.burst', o.ingestRateLimit.burst);
  const pendingCap = o.maxPendingConnectionsPerAddress;
  if (pendingCap !== undefined && !(Number.isInteger(pendingCap) && pendingCap >= 1)) {
    throw new RangeError(`AffectServer: maxPendingConnectionsPerAddress must be an integer >= 1, got ${pendingCap}`);
  }
  if (o.maxIngestStreams !== undefined && !(Number.isInteger(o.maxIngestStreams) && o.maxIngestStreams >= 1)) {
    throw new RangeError(`AffectServer: maxIngestStreams must be an integer >= 1, got ${o.maxIngestStreams}`);
  }
  positive('delivery.softBufferBytes', o.delivery.softBufferBytes);
  if (!(o.delivery.hardBufferBytes > o.delivery.softBufferBytes)) {
    throw new RangeError(
      `AffectServer: delivery.hardBufferBytes must be > softBufferBytes, got ${o.delivery.hardBufferBytes} <= ${o.delivery.softBufferBytes}`,
    );
  }
}
