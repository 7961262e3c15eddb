/**
 * Forwards circumplex frames to an existing socket.io server (socket.io-client), for apps that
 * already speak socket.io.
 *
 * Bounded on purpose (rxjs has no backpressure, and socket.io-client would otherwise buffer every
 * emit made while disconnected, without limit, and flush them all at once on reconnect):
 * - frames are only emitted while the socket is connected; otherwise they wait in a drop-oldest
 *   buffer of `maxBuffered` frames (drops are counted);
 * - every emit goes through a token bucket (`maxRatePerSec`, `burst`), so the backlog after a
 *   reconnect drains at a bounded rate instead of in one burst. Frames stay in order.
 *
 * ```ts
 * const client = CircumplexClient.connect('ws://localhost:8787');
 * const bridge = SocketIoBridge.start(client.frames$, { url: 'http://localhost:3000', namespace: '/affect' });
 * ```
 */
import type { Observable, Subscription } from 'rxjs';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { StreamEventMessage } from '../core/protocol.js';

/** Event names per message type; `null` skips that type. */
export interface BridgeEventNames {
  affect: string | null;
  transcript: string | null;
  status: string | null;
  /** Since protocol 1.2.0; default `turn` (also when an older caller's events object leaves it out). */
  turn?: string | null;
  /** Since protocol 1.2.0; default `alert`. */
  alert?: string | null;
}

/** Options of {@link SocketIoBridge}. */
export interface SocketIoBridgeOptions {
  /** The socket.io server, e.g. `http://localhost:3000`. Required. */
  url: string;
  /** socket.io namespace to emit in. Default `/`. */
  namespace: string;
  /** Event name per message type. Default `affect`, `transcript`, `status`, `turn`, `alert`. */
  events: BridgeEventNames;
  /** Only forward these stream ids (undefined: every stream). Default undefined. */
  streamIds: readonly string[] | undefined;
  /** Frames kept while disconnected (or while the rate limit holds them); the oldest go first. Default 1000. */
  maxBuffered: number;
  /** Sustained emit rate, frames per second (also the drain rate after a reconnect). Default 50. */
  maxRatePerSec: number;
  /** Frames that may go out back to back before the rate applies. Default 10. */
  burst: number;
  /** Passed to socket.io-client's `io()` (auth, path, transports, reconnection delays…). Default {}. */
  socketOptions: Partial<ManagerOptions & SocketOptions>;
}

/** Defaults of {@link SocketIoBridgeOptions} (all but `url`). */
export const DEFAULT_SOCKETIO_BRIDGE: Omit<SocketIoBridgeOptions, 'url'> = {
  namespace: '/',
  events: { affect: 'affect', transcript: 'transcript', status: 'status', turn: 'turn', alert: 'alert' },
  streamIds: undefined,
  maxBuffered: 1000,
  maxRatePerSec: 50,
  burst: 10,
  socketOptions: {},
};

/** Counters of a bridge. */
export interface BridgeStats {
  /** Frames emitted to the socket.io server. */
  forwarded: number;
  /** Frames dropped (oldest first) because the buffer was full. */
  dropped: number;
  /** Frames waiting now. */
  buffered: number;
  /** Frames not forwarded by choice (type mapped to null, or stream not in `streamIds`). */
  skipped: number;
  /** Times the socket (re)connected. */
  connects: number;
}

function validate(o: SocketIoBridgeOptions): void {
  if (typeof o.url !== 'string' || o.url.length === 0) throw new RangeError('SocketIoBridge: url is required');
  if (!o.namespace.startsWith('/')) throw new RangeError(`SocketIoBridge: namespace must start with "/", got "${o.namespace}"`);
  if (!(Number.isInteger(o.maxBuffered) && o.maxBuffered > 0))
    throw new RangeError(`SocketIoBridge: maxBuffered must be a positive integer, got ${o.maxBuffered}`);
  if (!(Number.isFinite(o.maxRatePerSec) && o.maxRatePerSec > 0)) throw new RangeError(`SocketIoBridge: maxRatePerSec must be > 0, got ${o.maxRatePerSec}`);
  if (!(Number.isInteger(o.burst) && o.burst >= 1)) throw new RangeError(`SocketIoBridge: burst must be an integer >= 1, got ${o.burst}`);
  for (const [k, v] of Object.entries(o.events)) {
    if (v !== null && (typeof v !== 'string' || v.length === 0)) throw new RangeError(`SocketIoBridge: events.${k} must be a non-empty string or null`);
  }
}

/** A running bridge. Create it with {@link SocketIoBridge.start}. */
export class SocketIoBridge {
  /** The socket.io client socket (for listening to its events; do not emit on it yourself). */
  readonly socket: Socket;
  private readonly o: SocketIoBridgeOptions;
  private readonly queue: StreamEventMessage[] = [];
  private readonly sub: Subscription;
  private tokens: number;
  private lastRefill = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private sourceFailed = false;
  /**
   * Why the bridge stopped forwarding for good, undefined while it forwards or retries: the
   * socket.io server refused the connection (e.g. its auth middleware said no) or disconnected the
   * bridge itself (socket.io-client does not reconnect after either, so frames only pile up in
   * the buffer and are dropped from then on), or the source observable errored.
   */
  failure: Error | undefined;
  /** The last connection error socket.io-client reported (it retries after most of them); cleared on connect. */
  lastError: Error | undefined;
  private readonly counters = { forwarded: 0, dropped: 0, skipped: 0, connects: 0 };

  private constructor(source: Observable<StreamEventMessage>, o: SocketIoBridgeOptions) {
    this.o = o;
    this.tokens = o.burst;
    const base = o.url.replace(/\/+$/, '');
    this.socket = io(o.namespace === '/' ? base : `${base}${o.namespace}`, { ...o.socketOptions });
    const where = `socket.io server at ${o.url} (namespace ${o.namespace})`;
    this.socket.on('connect', () => {
      this.counters.connects++;
      this.lastError = undefined;
      if (!this.sourceFailed) this.failure = undefined;
      this.pump();
    });
    this.socket.on('connect_error', (err: Error) => {
      this.lastError = err;
      // Not active: socket.io-client gave up (a middleware error); otherwise it retries by itself.
      if (!this.socket.active) this.failure = new Error(`${where} refused the bridge: ${err.message}`, { cause: err });
    });
    this.socket.on('disconnect', (reason: string) => {
      if (reason === 'io server disconnect' && !this.closed)
        this.failure = new Error(`${where} disconnected the bridge; socket.io does not reconnect after that`);
    });
    this.sub = source.subscribe({
      next: (m) => this.offer(m),
      // A failing source (e.g. a map in front of the bridge that throws) must not crash the process,
      // which rxjs does with an error nobody handles: say why instead; what is buffered still goes out.
      error: (err: unknown) => {
        this.sourceFailed = true;
        this.failure = new Error(`the bridge's source failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    });
  }

  /** Connects to the socket.io server and starts forwarding `source` (e.g. `client.frames$`). */
  static start(source: Observable<StreamEventMessage>, opts: Partial<SocketIoBridgeOptions> & { url: string }): SocketIoBridge {
    const o: SocketIoBridgeOptions = {
      ...DEFAULT_SOCKETIO_BRIDGE,
      ...opts,
      events: { ...DEFAULT_SOCKETIO_BRIDGE.events, ...opts.events },
    };
    validate(o);
    return new SocketIoBridge(source, o);
  }

  /** True while the socket.io connection is up. */
  get connected(): boolean {
    return this.socket.connected;
  }

  /** A copy of the counters. */
  get stats(): BridgeStats {
    return { ...this.counters, buffered: this.queue.length };
  }

  /** Stops forwarding and disconnects. Frames still buffered are dropped (and counted). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.counters.dropped += this.queue.length;
    this.queue.length = 0;
    this.socket.disconnect();
  }

  private offer(m: StreamEventMessage): void {
    if (this.closed) return;
    if ((this.o.events[m.type] ?? null) === null || (this.o.streamIds !== undefined && !this.o.streamIds.includes(m.streamId))) {
      this.counters.skipped++;
      return;
    }
    if (this.queue.length >= this.o.maxBuffered) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.queue.push(m);
    this.pump();
  }

  /** Emits as many queued frames as the token bucket allows, and schedules the rest. */
  private pump(): void {
    if (this.closed || this.timer !== undefined) return;
    const now = performance.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.o.maxRatePerSec);
    this.lastRefill = now;
    // Emit only while connected: socket.io-client would otherwise buffer without bound and burst later.
    while (this.socket.connected && this.queue.length > 0 && this.tokens >= 1) {
      const m = this.queue.shift();
      if (!m) break;
      const event = this.o.events[m.type];
      if (event !== null && event !== undefined) this.socket.emit(event, m);
      this.tokens -= 1;
      this.counters.forwarded++;
    }
    if (this.socket.connected && this.queue.length > 0) {
      const waitMs = Math.max(1, ((1 - this.tokens) / this.o.maxRatePerSec) * 1000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, waitMs);
    }
    // Disconnected: the 'connect' handler pumps again.
  }
}
