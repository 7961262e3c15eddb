/**
 * StreamHub: the pure (socket-free) heart of the server. It turns pipeline events into wire
 * messages with one monotonically increasing `seq` per stream, keeps a bounded ring of recent
 * messages per stream for resume, and fans messages out to listeners (WebSocket subscribers, the
 * JSONL recorder, bridges). Everything is synchronous, so a listener sees messages in seq order and
 * a resume that reads the ring and then listens can neither miss nor duplicate a frame.
 */
import type { StreamEventMessage, StreamInfo } from '../../core/protocol.js';
import type { PipelineEvent, StreamState } from '../../core/types.js';
import { AffectError } from '../../core/errors.js';

/** Options for {@link StreamHub}. */
export interface StreamHubOptions {
  /** Messages kept per stream for resume (bounded memory: ringSize × ~400 bytes). Default 2048. */
  ringSize: number;
  /**
   * Ended streams kept (for late resume) before the oldest ended one is forgotten, so a server
   * that sees many short calls does not grow without bound. Default 256.
   */
  maxEndedStreams: number;
  /**
   * Ring size for streams mirrored from other nodes (`mirrorStream`/`mirrorMessage`); undefined =
   * ringSize. A cluster hub keeps a short one: resumes are served from the backplane's log.
   * A mirrored stream that this hub opens (it moved here) grows to ringSize.
   */
  mirrorRingSize?: number;
}

/** Defaults for {@link StreamHubOptions}. */
export const DEFAULT_STREAM_HUB: StreamHubOptions = { ringSize: 2048, maxEndedStreams: 256 };

/** What a stream's producer declares when it opens. */
export interface OpenStreamInfo {
  streamId: string;
  hopMs: number;
  windowMs: number;
  sampleRateHz: number;
  /**
   * The stream's seq carries on after this one when it is higher than the hub's own last seq (a
   * cluster hub passes the cluster's last seq, so a stream that moved node continues it).
   */
  fromSeq?: number;
}

/** What a hub listener is told, synchronously and in order. */
export type HubEvent =
  | { readonly type: 'message'; readonly message: StreamEventMessage }
  /** A stream was opened (or reopened after it ended). */
  | { readonly type: 'stream'; readonly stream: StreamInfo }
  /** A stream ended: its last message (a status 'ended') has already been delivered. */
  | { readonly type: 'ended'; readonly streamId: string };

/** A hub listener. Must not throw; errors are caught and reported through `onListenerError`. */
export type HubListener = (event: HubEvent) => void;

/** The result of a ring lookup for resume. */
export interface SinceResult {
  /** Every message still in the ring with seq > the asked seq, in order. */
  readonly messages: StreamEventMessage[];
  /** Messages after the asked seq that were already evicted from the ring. */
  readonly missed: number;
}

/** The answer to {@link Hub.claim}: may this node publish that stream? */
export type ClaimResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** stream-busy: another live node publishes it; backplane-down: the cluster cannot be asked. */
      readonly reason: 'stream-busy' | 'backplane-down';
      readonly message: string;
    };

/** A cluster hub's link to its backplane, for `/healthz` and `/metrics`. */
export interface BackplaneStatus {
  /** Backplane kind, e.g. `redis`. */
  readonly kind: string;
  /** Where it connects, without credentials (e.g. `redis://127.0.0.1:6379/0`). */
  readonly target: string;
  /** True while connected and in sync. */
  readonly up: boolean;
  /** This node's id in the cluster (the server's sessionId by default). */
  readonly nodeId: string;
  /** Messages of this node's streams not yet written to the backplane (bounded: ringSize per stream). */
  readonly pendingWrites: number;
  /** Times the link was lost since start. */
  readonly disconnects: number;
  /** Messages of this node's streams that were never written (evicted while the backplane was away). */
  readonly droppedWrites: number;
  /** While not up: what failed and the backplane's answer (e.g. `write failed: OOM command not allowed …`). */
  readonly error?: string;
  /**
   * How late this node reads the other nodes' messages: the largest age (ms, by the backplane's
   * clock) of what a read returned, over the last minute; about 0 when it keeps up.
   */
  readonly feedLagMs: number;
}

/**
 * What the server needs from a hub. Two implementations: {@link StreamHub} (in-process, the
 * default: one node owns its streams) and `RedisHub` (src/server/redis-hub.ts: nodes share streams
 * through Redis Streams). The synchronous methods work on this node's view; `history` and `claim`
 * may need the cluster and so may return a Promise.
 */
export interface Hub {
  /** Ring size and ended-stream bound. */
  readonly opts: StreamHubOptions;
  /** Called when a listener throws (the hub keeps going for the others). */
  onListenerError: (err: unknown) => void;
  /**
   * Called when the hub forgets an ended stream (beyond maxEndedStreams): a stream of that id opened
   * later starts again at seq 0, so whoever remembers seqs of the old one must forget them.
   */
  onForget: (streamId: string) => void;
  /**
   * Called when a stream this node publishes is found to be another node's (a cluster hub: both
   * took the id while this node was cut off from the backplane, and the other won): the stream has
   * ended here, and the server refuses its publisher. Never called by the in-process hub.
   */
  onLost: (streamId: string, message: string) => void;
  /** Opens (or reopens) a stream this node publishes; see {@link StreamHub.openStream}. */
  openStream(info: OpenStreamInfo): StreamInfo;
  /** Pipeline event → wire message with the stream's next seq, stored and fanned out. */
  publish(streamId: string, event: PipelineEvent): StreamEventMessage;
  /** Publishes an already-sequenced message (replay). */
  publishMessage(message: StreamEventMessage): StreamEventMessage;
  /** Ends a stream with a final status 'ended'. */
  endStream(streamId: string, message?: string, tMs?: number): void;
  /** Every stream this hub knows (a cluster hub: every stream of the cluster). */
  streams(): StreamInfo[];
  /** One stream's facts, or undefined. */
  stream(streamId: string): StreamInfo | undefined;
  /** Messages after `seq` in this node's ring (synchronous, local). */
  since(streamId: string, seq: number): SinceResult;
  /** Messages after `seq` for a resuming subscriber: the ring here, the shared log in a cluster. */
  history(streamId: string, seq: number): SinceResult | Promise<SinceResult>;
  /**
   * Asks for the right to publish `streamId` from this node (before {@link openStream}). The
   * in-process hub always grants it at once; a cluster hub refuses while another live node publishes
   * it, and carries the stream's seq on from the cluster's last one.
   */
  claim(streamId: string): ClaimResult | Promise<ClaimResult>;
  /** Adds a listener; returns a function that removes it. */
  subscribe(listener: HubListener): () => void;
  /** The backplane link, or undefined for the in-process hub. */
  backplane(): BackplaneStatus | undefined;
  /** Releases the hub's connections (the in-process hub has none). Idempotent. */
  close(): Promise<void>;
}

const CLAIM_OK: ClaimResult = { ok: true };

/** Fixed-capacity ring of messages ordered by seq. */
class Ring {
  private readonly buf: (StreamEventMessage | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.buf = new Array<StreamEventMessage | undefined>(capacity);
  }

  push(m: StreamEventMessage): void {
    const end = (this.start + this.count) % this.capacity;
    this.buf[end] = m;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  at(i: number): StreamEventMessage {
    const m = this.buf[(this.start + i) % this.capacity];
    if (m === undefined) throw new Error('ring index out of range');
    return m;
  }

  get size(): number {
    return this.count;
  }

  /** A larger ring holding the same messages. */
  grown(capacity: number): Ring {
    const r = new Ring(capacity);
    for (let i = 0; i < this.count; i++) r.push(this.at(i));
    return r;
  }
}

interface StreamEntry {
  info: StreamInfo;
  ring: Ring;
}

/** Stream ids: what the ingest endpoint allows, so ids are safe in logs, metrics and URLs. */
/**
 * Valid stream ids: 1–128 of `A-Z a-z 0-9 . _ : -` (also checked by the CLI's --stream-id), except
 * `__proto__`: JSON objects keyed by stream id (a subscriber's `resumeFrom`) cannot carry that key, so
 * such a stream could never resume.
 */
export const STREAM_ID = /^(?!__proto__$)[A-Za-z0-9._:-]{1,128}$/;

/** {@link STREAM_ID} in words, for error messages. */
export const STREAM_ID_RULE = '1-128 letters, digits and . _ : - (not __proto__)';

function checkUnit(name: string, v: number, lo: number, hi: number, streamId: string): number {
  if (!Number.isFinite(v) || v < lo || v > hi) {
    // A pipeline bug must not reach subscribers as a silent wrong value.
    throw new AffectError('AFFECT_ERR_INTERNAL', `stream "${streamId}": ${name} must be a finite number in [${lo}, ${hi}], got ${v}`, {
      recoverable: true,
      stage: 'hub',
      hint: 'this frame was dropped (counted as drop reason "invalid"); report it as a bug',
    });
  }
  return v;
}

/**
 * Per-stream sequencing, ring buffers and fan-out. Create one per server.
 *
 * ```ts
 * const hub = new StreamHub();
 * hub.openStream({ streamId: 'mic', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
 * const msg = hub.publish('mic', event); // msg.seq = 0, 1, 2, ...
 * ```
 */
export class StreamHub implements Hub {
  readonly opts: StreamHubOptions;
  private readonly entries = new Map<string, StreamEntry>();
  private readonly listeners = new Set<HubListener>();
  /** Called when a listener throws (the hub keeps going for the others). */
  onListenerError: (err: unknown) => void = () => {};
  onForget: (streamId: string) => void = () => {};
  onLost: (_streamId: string, _message: string) => void = () => {};

  constructor(opts: Partial<StreamHubOptions> = {}) {
    this.opts = { ...DEFAULT_STREAM_HUB, ...opts };
    if (!Number.isInteger(this.opts.ringSize) || this.opts.ringSize < 1) {
      throw new RangeError(`StreamHub: ringSize must be an integer >= 1, got ${this.opts.ringSize}`);
    }
    const m = this.opts.mirrorRingSize;
    if (m !== undefined && (!Number.isInteger(m) || m < 1)) throw new RangeError(`StreamHub: mirrorRingSize must be an integer >= 1, got ${m}`);
    if (!Number.isInteger(this.opts.maxEndedStreams) || this.opts.maxEndedStreams < 0) {
      throw new RangeError(`StreamHub: maxEndedStreams must be an integer >= 0, got ${this.opts.maxEndedStreams}`);
    }
  }

  /**
   * Opens a stream, or reopens one that ended (a publisher reconnecting): the seq counter and the
   * ring are kept, so subscribers can resume across the gap. Opening a live stream updates its info.
   */
  openStream(info: OpenStreamInfo): StreamInfo {
    if (!STREAM_ID.test(info.streamId)) {
      throw new AffectError('AFFECT_ERR_INPUT', `invalid stream id "${info.streamId}"`, {
        hint: `use ${STREAM_ID_RULE}`,
      });
    }
    for (const k of ['hopMs', 'windowMs', 'sampleRateHz'] as const) {
      if (!(Number.isFinite(info[k]) && info[k] > 0)) throw new RangeError(`StreamHub.openStream: ${k} must be > 0, got ${info[k]}`);
    }
    const existing = this.entries.get(info.streamId);
    const stream: StreamInfo = {
      streamId: info.streamId,
      hopMs: info.hopMs,
      windowMs: info.windowMs,
      sampleRateHz: info.sampleRateHz,
      state: 'live',
      lastSeq: Math.max(existing?.info.lastSeq ?? -1, info.fromSeq ?? -1),
    };
    if (existing) existing.info = stream;
    else this.entries.set(info.streamId, { info: stream, ring: new Ring(this.opts.ringSize) });
    if (existing && existing.ring.capacity < this.opts.ringSize) existing.ring = existing.ring.grown(this.opts.ringSize);
    this.emit({ type: 'stream', stream: { ...stream } });
    return { ...stream };
  }

  /** Turns a pipeline event into its wire message with the stream's next seq, stores and fans it out. */
  publish(streamId: string, event: PipelineEvent): StreamEventMessage {
    const entry = this.entry(streamId);
    if (entry.info.state === 'ended') {
      // Nothing may follow a stream's final status (e.g. a pipeline flushing after a shutdown ended it).
      throw new AffectError('AFFECT_ERR_STREAM_UNKNOWN', `stream "${streamId}" has ended`, {
        recoverable: true,
        stage: 'hub',
        hint: 'open the stream again (hub.openStream) before publishing on it',
      });
    }
    const seq = entry.info.lastSeq + 1;
    const message = toWire(streamId, seq, event);
    this.commit(entry, message);
    return message;
  }

  /**
   * Publishes an already-sequenced message (replay of a recording): keeps its seq, which must be
   * greater than the stream's last one.
   */
  publishMessage(message: StreamEventMessage): StreamEventMessage {
    const entry = this.entry(message.streamId);
    if (!Number.isInteger(message.seq) || message.seq <= entry.info.lastSeq) {
      throw new AffectError('AFFECT_ERR_INPUT', `stream "${message.streamId}": seq ${message.seq} is not after the last seq ${entry.info.lastSeq}`, {
        hint: 'replayed messages must be in increasing seq order',
      });
    }
    this.commit(entry, { ...message });
    return message;
  }

  /**
   * Ends a stream: publishes a status 'ended' message (unless the last message already was one)
   * and tells listeners. The stream stays listed (state 'ended') so late subscribers can resume.
   */
  endStream(streamId: string, message = 'stream ended', tMs?: number): void {
    const entry = this.entries.get(streamId);
    if (!entry || entry.info.state === 'ended') return;
    const last = entry.ring.size > 0 ? entry.ring.at(entry.ring.size - 1) : undefined;
    const lastT = last?.tMs ?? 0;
    this.commit(entry, toWire(streamId, entry.info.lastSeq + 1, { kind: 'status', streamId, tMs: tMs ?? lastT, state: 'ended', message }));
    this.emit({ type: 'ended', streamId });
    this.forgetEnded();
  }

  /**
   * Cluster mirror: opens, or updates, a stream another node announced (its `lastSeq` is kept when
   * higher than ours), and tells listeners like {@link openStream} does.
   */
  mirrorStream(info: StreamInfo): void {
    if (!STREAM_ID.test(info.streamId)) return;
    const existing = this.entries.get(info.streamId);
    const stream: StreamInfo = { ...info, lastSeq: Math.max(existing?.info.lastSeq ?? -1, info.lastSeq) };
    // An announcement that changes nothing (a node re-announcing its streams after an outage) is not news.
    if (existing && (Object.keys(stream) as (keyof StreamInfo)[]).every((k) => existing.info[k] === stream[k])) return;
    if (existing) existing.info = stream;
    else this.entries.set(info.streamId, { info: stream, ring: new Ring(this.mirrorRing) });
    if (stream.state === 'ended') this.forgetEnded();
    else this.emit({ type: 'stream', stream: { ...stream } });
  }

  /**
   * Cluster mirror: a message another node published. Ignored (false) unless its seq is after the
   * stream's last one, so nothing is delivered twice; a final status 'ended' ends the stream here
   * too. A stream never announced is created with the default timing.
   */
  mirrorMessage(message: StreamEventMessage): boolean {
    if (!STREAM_ID.test(message.streamId)) return false;
    let entry = this.entries.get(message.streamId);
    if (!entry) {
      const info: StreamInfo = { streamId: message.streamId, hopMs: 250, windowMs: 1000, sampleRateHz: 16000, state: 'live', lastSeq: -1 };
      entry = { info, ring: new Ring(this.mirrorRing) };
      this.entries.set(message.streamId, entry);
    }
    if (!Number.isInteger(message.seq) || message.seq <= entry.info.lastSeq) return false;
    this.commit(entry, message);
    if (message.type === 'status' && message.state === 'ended') {
      this.emit({ type: 'ended', streamId: message.streamId });
      this.forgetEnded();
    }
    return true;
  }

  private get mirrorRing(): number {
    return this.opts.mirrorRingSize ?? this.opts.ringSize;
  }

  /** Forgets the oldest ended streams beyond the bound (Map order = opening order). */
  private forgetEnded(): void {
    let ended = 0;
    for (const e of this.entries.values()) if (e.info.state === 'ended') ended++;
    for (const [id, e] of this.entries) {
      if (ended <= this.opts.maxEndedStreams) break;
      if (e.info.state === 'ended') {
        this.entries.delete(id);
        ended--;
        this.onForget(id);
      }
    }
  }

  /** Facts about every stream the hub knows (live and ended). */
  streams(): StreamInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e.info }));
  }

  /** One stream's facts, or undefined. */
  stream(streamId: string): StreamInfo | undefined {
    const e = this.entries.get(streamId);
    return e ? { ...e.info } : undefined;
  }

  /**
   * Messages after `seq` still in the stream's ring (for resume), and how many after `seq` were
   * already evicted. A `seq` beyond the stream's last seq (a subscriber from another server run)
   * returns nothing and missed 0.
   */
  since(streamId: string, seq: number): SinceResult {
    const entry = this.entries.get(streamId);
    if (!entry || entry.ring.size === 0 || seq >= entry.info.lastSeq) return { messages: [], missed: 0 };
    const ring = entry.ring;
    const first = ring.at(0).seq;
    const messages: StreamEventMessage[] = [];
    // Binary search the first index with seq > asked (seqs in the ring are increasing).
    let lo = 0;
    let hi = ring.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring.at(mid).seq > seq) hi = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < ring.size; i++) messages.push(ring.at(i));
    const missed = Math.max(0, first - seq - 1);
    return { messages, missed };
  }

  /** Resume history: the ring (one node has every message of its streams). */
  history(streamId: string, seq: number): SinceResult {
    return this.since(streamId, seq);
  }

  /** Always granted: on one node the server itself refuses a second publisher of a stream. */
  claim(_streamId: string): ClaimResult {
    return CLAIM_OK;
  }

  /** No backplane. */
  backplane(): undefined {
    return undefined;
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Adds a listener; returns a function that removes it. */
  subscribe(listener: HubListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private entry(streamId: string): StreamEntry {
    const entry = this.entries.get(streamId);
    if (!entry) {
      throw new AffectError('AFFECT_ERR_STREAM_UNKNOWN', `stream "${streamId}" was never opened`, {
        hint: 'call hub.openStream({ streamId, ... }) before publishing',
      });
    }
    return entry;
  }

  private commit(entry: StreamEntry, message: StreamEventMessage): void {
    entry.info.lastSeq = message.seq;
    if (message.type === 'status') entry.info.state = message.state;
    else if (entry.info.state === 'ended') entry.info.state = 'live';
    entry.ring.push(message);
    this.emit({ type: 'message', message });
  }

  private emit(event: HubEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}

/** PipelineEvent → wire message (checks every number, so no NaN reaches a subscriber). */
export function toWire(streamId: string, seq: number, event: PipelineEvent): StreamEventMessage {
  switch (event.kind) {
    case 'affect': {
      const p = event.point;
      const modality = (m: { valence: number; arousal: number; confidence: number; dominance?: number } | undefined, name: string) =>
        m === undefined
          ? undefined
          : {
              valence: checkUnit(`${name}.valence`, m.valence, -1, 1, streamId),
              arousal: checkUnit(`${name}.arousal`, m.arousal, -1, 1, streamId),
              confidence: checkUnit(`${name}.confidence`, m.confidence, 0, 1, streamId),
              // Optional since protocol 1.1.0: only when the modality's model supplies it.
              ...(m.dominance !== undefined ? { dominance: checkUnit(`${name}.dominance`, m.dominance, -1, 1, streamId) } : {}),
            };
      const speech = modality(p.speech, 'speech');
      const text = modality(p.text, 'text');
      const angle = p.angleDeg;
      if (!Number.isFinite(angle)) checkUnit('angleDeg', angle, -Infinity, Infinity, streamId);
      const dropped = p.droppedWindows;
      if (!Number.isInteger(dropped) || dropped < 0) checkUnit('droppedWindows', dropped, 0, Number.MAX_SAFE_INTEGER, streamId);
      return {
        type: 'affect',
        streamId,
        seq,
        tMs: checkUnit('tMs', p.tMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        valence: checkUnit('valence', p.valence, -1, 1, streamId),
        arousal: checkUnit('arousal', p.arousal, -1, 1, streamId),
        confidence: checkUnit('confidence', p.confidence, 0, 1, streamId),
        ...(p.dominance !== undefined ? { dominance: checkUnit('dominance', p.dominance, -1, 1, streamId) } : {}),
        label: p.label,
        intensity: checkUnit('intensity', p.intensity, 0, 1, streamId),
        angleDeg: angle,
        modalities: [...p.modalities],
        ...(speech ? { speech } : {}),
        ...(text ? { text } : {}),
        droppedWindows: dropped,
        // Since protocol 1.3.0: the effective hop, when overload widened it.
        ...(p.hopMs !== undefined ? { hopMs: checkUnit('hopMs', p.hopMs, 0, Number.MAX_SAFE_INTEGER, streamId) } : {}),
        // Since protocol 1.2.0: with voice activity detection on, and from the smoother.
        ...(p.voiced !== undefined ? { voiced: checkUnit('voiced', p.voiced, 0, 1, streamId) } : {}),
        ...(p.velocity !== undefined
          ? {
              velocity: {
                valence: checkUnit('velocity.valence', p.velocity.valence, -Infinity, Infinity, streamId),
                arousal: checkUnit('velocity.arousal', p.velocity.arousal, -Infinity, Infinity, streamId),
              },
            }
          : {}),
      };
    }
    case 'turn': {
      const t = event.turn;
      const summary = (s: { valence: number; arousal: number; dominance?: number }, name: string) => ({
        valence: checkUnit(`${name}.valence`, s.valence, -1, 1, streamId),
        arousal: checkUnit(`${name}.arousal`, s.arousal, -1, 1, streamId),
        ...(s.dominance !== undefined ? { dominance: checkUnit(`${name}.dominance`, s.dominance, -1, 1, streamId) } : {}),
      });
      return {
        type: 'turn',
        streamId,
        seq,
        tMs: checkUnit('tMs', t.tMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        startMs: checkUnit('startMs', t.startMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        endMs: checkUnit('endMs', t.endMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        durationMs: checkUnit('durationMs', t.durationMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        mean: summary(t.mean, 'mean'),
        peak: summary(t.peak, 'peak'),
        label: t.label,
        confidence: checkUnit('confidence', t.confidence, 0, 1, streamId),
        frames: t.frames,
        ...(t.transcript !== undefined ? { transcript: t.transcript } : {}),
      };
    }
    case 'alert': {
      const a = event.alert;
      return {
        type: 'alert',
        streamId,
        seq,
        tMs: checkUnit('tMs', a.tMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        alert: a.alert,
        reason: a.reason,
        sustainedMs: checkUnit('sustainedMs', a.sustainedMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        velocity: {
          valence: checkUnit('velocity.valence', a.velocity.valence, -Infinity, Infinity, streamId),
          arousal: checkUnit('velocity.arousal', a.velocity.arousal, -Infinity, Infinity, streamId),
        },
      };
    }
    case 'transcript': {
      const t = event.transcript;
      return {
        type: 'transcript',
        streamId,
        seq,
        tMs: checkUnit('tMs', t.tMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        text: t.text,
        final: t.final,
        words: t.words.map((w) => ({ word: w.word, startMs: w.startMs, endMs: w.endMs, conf: w.conf })),
      };
    }
    case 'status':
      return {
        type: 'status',
        streamId,
        seq,
        tMs: checkUnit('tMs', event.tMs, 0, Number.MAX_SAFE_INTEGER, streamId),
        state: event.state satisfies StreamState,
        message: event.message,
      };
  }
}
