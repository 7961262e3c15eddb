/**
 * One `/v1/stream` subscriber: its subscriptions, per-stream dedup (never the same seq twice),
 * resume from the hub's ring, and slow-consumer handling. Above `softBufferBytes` of unsent data
 * affect frames coalesce to the latest per stream (the next delivered frame says how many it
 * replaced in `coalesced`); transcripts, status, hello and errors are never dropped. Above
 * `hardBufferBytes`, or when stuck above the soft limit for `maxStallMs`, the socket is closed
 * with CLOSE_CODES.slowConsumer (4008) and terminated after a grace period.
 *
 * Resume reads the hub's history, which a cluster hub fetches from its backplane (a Promise): while
 * it is on its way, live messages of that stream are held back (bounded), then sent after the
 * replay, so the subscriber still gets every seq once and in order.
 */
import type { WebSocket } from 'ws';
import { CLOSE_CODES, type AffectFrameMessage, type ServerMessage, type StreamEventMessage } from '../../core/protocol.js';
import type { Hub, SinceResult } from './hub.js';
import type { Grant } from './auth.js';
import type { ServerMetrics } from './metrics.js';

// DeliveryOptions live in options.ts, whose types the package exports without `ws`.
export { DEFAULT_DELIVERY, type DeliveryOptions } from './options.js';
import type { DeliveryOptions } from './options.js';

/** Live messages one stream may hold back while its resume waits for the backplane. */
const MAX_HELD_DURING_RESUME = 10_000;

/** A connected subscriber. The server owns it; it never throws into the hub. */
export class Subscriber {
  /** Explicit stream ids. */
  readonly ids = new Set<string>();
  /** Subscribed to every stream (present and future) the token allows. */
  wildcard = false;
  /** Last seq sent per stream: nothing at or below it is sent again (no duplicates on resume). */
  private readonly lastSent = new Map<string, number>();
  /** Latest held-back affect frame per stream, and how many it replaced. */
  private readonly pending = new Map<string, AffectFrameMessage>();
  private readonly coalesced = new Map<string, number>();
  private overSoftSince: number | undefined;
  /** Streams with a resume in flight: live messages held back until the replay is sent, and resumes asked meanwhile. */
  private readonly resuming = new Map<string, { held: StreamEventMessage[]; next: number[] }>();
  closed = false;
  alive = true;
  /** The socket is corked until the end of this turn of the event loop (see corkForTick). */
  private corked = false;

  constructor(
    readonly ws: WebSocket,
    readonly grant: Grant,
    private readonly opts: DeliveryOptions,
    private readonly metrics: ServerMetrics,
    private readonly onSlow: (sub: Subscriber, why: string) => void,
  ) {}

  /** Does this subscriber want messages of that stream? */
  wants(streamId: string): boolean {
    return (this.wildcard || this.ids.has(streamId)) && this.grant.canSubscribe(streamId);
  }

  /** True when frames are waiting for the socket to drain. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Delivery state for stats. */
  stats(): { bufferedBytes: number; pendingFrames: number; closed: boolean } {
    return { bufferedBytes: this.ws.bufferedAmount, pendingFrames: this.pending.size, closed: this.closed };
  }

  /** Sends a control message (hello, error, stream, resumed): never coalesced. */
  sendControl(msg: ServerMessage): void {
    this.raw(msg);
  }

  /** Delivers a live stream message, coalescing affect frames when the socket is backed up. */
  deliver(msg: StreamEventMessage): void {
    if (this.closed || !this.wants(msg.streamId)) return;
    if (msg.seq <= (this.lastSent.get(msg.streamId) ?? -1)) return;
    const resuming = this.resuming.get(msg.streamId);
    if (resuming) {
      resuming.held.push(msg);
      // A backplane that never answers must not grow this without bound.
      if (resuming.held.length > MAX_HELD_DURING_RESUME)
        this.onSlow(this, `more than ${MAX_HELD_DURING_RESUME} messages held while a resume waited for the backplane`);
      return;
    }
    if (msg.type === 'affect') {
      if (this.pending.has(msg.streamId) || this.ws.bufferedAmount > this.opts.softBufferBytes) {
        if (this.pending.has(msg.streamId)) {
          this.coalesced.set(msg.streamId, (this.coalesced.get(msg.streamId) ?? 0) + 1);
          this.metrics.framesDropped.inc({ reason: 'coalesced' });
        }
        this.pending.set(msg.streamId, msg);
        this.overSoftSince ??= Date.now();
        return;
      }
      this.sendStream(msg);
    } else {
      // Keep seq order: a held-back affect frame of this stream goes out before the newer message.
      this.flushStream(msg.streamId);
      this.sendStream(msg);
    }
    this.checkLimits();
  }

  /**
   * Resume: sends every history message after max(fromSeq, last sent) and then `resumed`. Replay is
   * not coalesced (the point is zero gaps) but does count toward the hard limit.
   */
  resume(hub: Hub, streamId: string, fromSeq: number): void {
    if (this.closed) return;
    const pending = this.resuming.get(streamId);
    if (pending) {
      pending.next.push(fromSeq);
      return;
    }
    this.flushStream(streamId);
    const from = Math.max(fromSeq, this.lastSent.get(streamId) ?? -1);
    // The client holds every seq up to fromSeq: never send it one of those again, from history or
    // live (after an ingest failover the new node can reuse seqs the dead node delivered but never
    // wrote to the backplane; the client keeps the ones it has). A stream the hub does not know has
    // no seqs to repeat: the fromSeq is from an earlier server run (or another stream of that id),
    // and the stream that opens later under that id starts at 0, so nothing of it is held back.
    if (hub.stream(streamId) !== undefined || this.lastSent.has(streamId)) this.lastSent.set(streamId, from);
    const history = hub.history(streamId, from);
    if (!(history instanceof Promise)) return this.replay(streamId, fromSeq, history);
    const state = { held: [] as StreamEventMessage[], next: [] as number[] };
    this.resuming.set(streamId, state);
    history
      .catch(() => hub.since(streamId, from))
      .then((r) => {
        this.resuming.delete(streamId);
        // The cluster knew the stream after all (its history came back, or this node has mirrored it meanwhile).
        if (!this.lastSent.has(streamId) && (r.messages.length > 0 || hub.stream(streamId) !== undefined)) this.lastSent.set(streamId, from);
        this.replay(streamId, fromSeq, r);
        for (const m of state.held) this.deliver(m);
        for (const f of state.next) this.resume(hub, streamId, f);
      })
      .catch(() => this.onSlow(this, 'resume failed'));
  }

  private replay(streamId: string, fromSeq: number, { messages, missed }: SinceResult): void {
    for (const m of messages) {
      if (this.closed) return;
      if (m.seq <= (this.lastSent.get(streamId) ?? -1)) continue;
      this.sendStream(m);
    }
    this.raw({ type: 'resumed', streamId, fromSeq, missed });
    this.checkLimits();
  }

  /**
   * The hub forgot this (ended) stream: forget its seqs too. A stream opened later under the id
   * starts at seq 0, and a long-lived subscriber used to drop its messages up to the old last seq.
   * Also keeps the per-stream records of a subscriber that outlives many calls bounded.
   */
  forget(streamId: string): void {
    if (this.resuming.has(streamId)) return;
    this.flushStream(streamId);
    this.lastSent.delete(streamId);
    this.coalesced.delete(streamId);
  }

  /** Called on the server's flush tick: sends held-back frames once the socket has drained. */
  flush(): void {
    if (this.closed) return;
    if (this.ws.bufferedAmount <= this.opts.softBufferBytes) {
      for (const id of [...this.pending.keys()]) this.flushStream(id);
      this.overSoftSince = undefined;
    }
    this.checkLimits();
  }

  private flushStream(streamId: string): void {
    const held = this.pending.get(streamId);
    if (!held) return;
    this.pending.delete(streamId);
    this.sendStream(held);
  }

  private sendStream(msg: StreamEventMessage): void {
    if (msg.type === 'affect') {
      const n = this.coalesced.get(msg.streamId) ?? 0;
      if (n > 0) {
        this.coalesced.delete(msg.streamId);
        msg = { ...msg, coalesced: n };
      }
    }
    this.lastSent.set(msg.streamId, msg.seq);
    this.raw(msg);
    this.metrics.framesSent.inc({ type: msg.type });
  }

  private raw(msg: ServerMessage): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.corkForTick();
    this.ws.send(JSON.stringify(msg));
  }

  /**
   * Holds the sends of this turn of the event loop in the socket and writes them together once its
   * I/O callbacks have run (setImmediate, the loop's check phase): one write system call for the
   * frames that, say, 400 call tracks' socket reads and a model batch produced in one turn, instead
   * of one per read callback. Uncorking at the end of each callback (process.nextTick) still made
   * ≈ 750 writes a second for 1600 frames at 200 Twilio calls (strace, docs/bench.md). A frame waits
   * at most for the rest of the turn it was made in.
   */
  private corkForTick(): void {
    if (this.corked) return;
    const sock = (this.ws as unknown as { _socket?: { cork?: () => void; uncork?: () => void } })._socket;
    if (typeof sock?.cork !== 'function' || typeof sock.uncork !== 'function') return;
    this.corked = true;
    sock.cork();
    setImmediate(() => {
      this.corked = false;
      sock.uncork!();
    });
  }

  private checkLimits(): void {
    if (this.closed) return;
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.opts.hardBufferBytes) {
      this.onSlow(this, `buffered ${buffered} bytes > hard limit ${this.opts.hardBufferBytes}`);
    } else if (this.overSoftSince !== undefined && buffered > this.opts.softBufferBytes && Date.now() - this.overSoftSince > this.opts.maxStallMs) {
      this.onSlow(this, `above the soft limit for more than ${this.opts.maxStallMs} ms`);
    } else if (buffered <= this.opts.softBufferBytes && this.pending.size === 0) {
      this.overSoftSince = undefined;
    }
  }

  /** Marks the subscriber closed: nothing more is sent. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    // Frames held back and never sent are lost with the connection: count them.
    if (this.pending.size > 0) this.metrics.framesDropped.inc({ reason: 'slow_consumer' }, this.pending.size);
    this.pending.clear();
  }
}

/** Closes a slow subscriber with the documented code, then terminates it if it never answers. */
export function closeSlow(sub: Subscriber, graceMs: number): void {
  if (sub.closed) return;
  sub.sendControl({ type: 'error', code: 'AFFECT_ERR_SLOW_CONSUMER', message: 'closing: this subscriber reads too slowly', recoverable: false });
  sub.markClosed();
  sub.ws.close(CLOSE_CODES.slowConsumer, 'slow consumer');
  setTimeout(() => sub.ws.terminate(), graceMs).unref();
}
