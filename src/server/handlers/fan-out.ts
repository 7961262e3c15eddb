/**
 * The hub side of the server: fans hub events out to subscribers, and publishes pipeline events
 * (`publish`, `attach`) with the inference-latency measurement (`markArrivals`).
 */
import { type Observable, type OperatorFunction, type Subscription, tap } from 'rxjs';
import type { AudioChunk, PipelineEvent } from '../../../core/types.js';
import { samplesToMs } from '../../../core/types.js';
import { type AffectError, toAffectError } from '../../../core/errors.js';
import { CLOSE_CODES, type IngestReply } from '../../../core/protocol.js';
import type { ServerContext } from '../context.js';
import type { OpenStreamInfo } from '../hub.js';

/** Publishing entry points of one server. */
export interface FanOut {
  /** Publishes one event on an open stream; invalid values are dropped and counted, never thrown. */
  publish: (streamId: string, event: PipelineEvent) => void;
  /**
   * Opens a stream and publishes a pipeline's events on it, ending it when the pipeline ends.
   * `endMessage` (the `ended` status' message) may be a function, read when the pipeline completes
   * (a Twilio track knows only then whether the call stopped or its socket closed).
   */
  attach: (
    info: OpenStreamInfo,
    events$: Observable<PipelineEvent>,
    endMessage?: string | (() => string),
    onDone?: (err?: AffectError) => void,
  ) => Subscription;
  /** Records when audio arrives, for the inference-latency histogram. */
  markArrivals: (streamId: string) => OperatorFunction<AudioChunk, AudioChunk>;
  /** Stops fanning out (shutdown). */
  stop: () => void;
}

/** Least wall time (ms) between two log lines about frames the hub refused on one stream. */
export const REFUSED_FRAME_LOG_MS = 10_000;

/** Subscribes the server to its hub and returns its publishing entry points. */
export function createFanOut(ctx: ServerContext): FanOut {
  const { hub, metrics, subscribers, log } = ctx;
  /** Per-stream wall times of audio arrivals: [audio ms at chunk end, performance.now()], bounded. */
  const arrivals = new Map<string, [number, number][]>();
  /** Per live stream: frames the hub refused since its last log line, and when that line went out. */
  const refusedFrames = new Map<string, { unlogged: number; loggedAt: number }>();

  hub.onListenerError = (err) => log.error({ err }, 'hub listener failed');
  hub.onForget = (streamId) => {
    for (const s of subscribers) s.forget(streamId);
  };
  hub.onLost = (streamId, message) => {
    // Its publisher learns that its audio no longer makes the cluster's stream (it may retry later).
    const ws = ctx.publishers.get(streamId);
    if (!ws) return;
    ctx.publishers.delete(streamId);
    const reply: IngestReply = { type: 'error', code: 'AFFECT_ERR_PROTOCOL', reason: 'stream-busy', message, recoverable: false };
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
    ws.close(CLOSE_CODES.policy, 'stream busy');
  };
  const stop = hub.subscribe((ev) => {
    if (ev.type === 'message') {
      metrics.framesPublished.inc({ type: ev.message.type });
      for (const s of subscribers) s.deliver(ev.message);
    } else if (ev.type === 'stream') {
      ctx.streamLog(ev.stream.streamId).info({ stream: ev.stream }, 'stream opened');
      for (const s of subscribers) if (s.wants(ev.stream.streamId)) s.sendControl({ type: 'stream', stream: ev.stream });
    } else {
      ctx.streamLog(ev.streamId).info('stream ended');
      ctx.forgetStreamLog(ev.streamId);
      refusedFrames.delete(ev.streamId);
    }
  });

  const publish = (streamId: string, event: PipelineEvent): void => {
    try {
      const msg = hub.publish(streamId, event);
      if (msg.type === 'status' && msg.state !== 'ended' && msg.state !== 'error') {
        // A stream's state changes (overload widened its hop, the text path stopped, it recovered)
        // reached subscribers only: logged once per change, with the stream id, for whoever runs it
        // ('ended' and 'error' have their own lines).
        ctx.streamLog(streamId)[msg.state === 'live' ? 'info' : 'warn']({ state: msg.state, tMs: msg.tMs, why: msg.message }, 'stream state changed');
      }
      if (msg.type === 'affect') {
        if (msg.droppedWindows > 0) metrics.framesDropped.inc({ reason: 'pipeline' }, msg.droppedWindows);
        if (msg.hopMs !== undefined) {
          metrics.hopWidened.inc();
          metrics.effectiveHop.observe(msg.hopMs / 1000);
        }
        const arr = arrivals.get(streamId);
        if (arr) {
          // The first chunk whose end reaches the frame's time carried the audio that completed it;
          // older chunks can no longer complete a frame (tMs only grows).
          while (arr.length > 1 && (arr[0]?.[0] ?? Infinity) < msg.tMs - 1e-6) arr.shift();
          const hit = arr[0];
          if (hit && hit[0] >= msg.tMs - 1e-6) metrics.inferenceLatency.observe((performance.now() - hit[1]) / 1000);
        }
      }
    } catch (err) {
      const e = toAffectError(err);
      const ended = e.code === 'AFFECT_ERR_STREAM_UNKNOWN' && hub.stream(streamId)?.state === 'ended';
      metrics.framesDropped.inc({ reason: ended ? 'after_end' : 'invalid' });
      if (ended) return ctx.streamLog(streamId).debug({ err: e }, 'dropped a frame the hub refused');
      // A stage that went bad refuses every frame: one error line per frame was 4 a second per stream
      // (1600 a second at 400 tracks). Log the first, then at most one per REFUSED_FRAME_LOG_MS, counting the rest.
      const now = performance.now();
      const r = refusedFrames.get(streamId);
      if (r && now - r.loggedAt < REFUSED_FRAME_LOG_MS) {
        r.unlogged++;
        return;
      }
      ctx.streamLog(streamId).error({ err: e, droppedSinceLastLine: r?.unlogged ?? 0 }, 'dropped a frame the hub refused');
      if (hub.stream(streamId)) refusedFrames.set(streamId, { unlogged: 0, loggedAt: now });
    }
  };

  const lastT = (streamId: string): number => {
    const last = hub.since(streamId, (hub.stream(streamId)?.lastSeq ?? 0) - 1).messages.at(-1);
    return last?.tMs ?? 0;
  };

  const attach = (
    info: OpenStreamInfo,
    events$: Observable<PipelineEvent>,
    endMessage: string | (() => string) = 'stream ended',
    onDone?: (err?: AffectError) => void,
  ): Subscription => {
    hub.openStream(info);
    const l = ctx.streamLog(info.streamId);
    // While this pipeline runs, a new publisher of the stream waits for it to end (ctx.claim).
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    ctx.pipelines.set(info.streamId, done);
    const endText = (): string => (typeof endMessage === 'function' ? endMessage() : endMessage);
    const subscription = events$.subscribe({
      next: (ev) => publish(info.streamId, ev),
      error: (err: unknown) => {
        const e = toAffectError(err);
        l.error({ err: e, code: e.code }, 'pipeline failed');
        publish(info.streamId, { kind: 'status', streamId: info.streamId, tMs: lastT(info.streamId), state: 'error', message: `${e.code}: ${e.message}` });
        for (const s of subscribers)
          if (s.wants(info.streamId)) s.sendControl({ type: 'error', code: e.code, message: e.message, recoverable: false, streamId: info.streamId });
        hub.endStream(info.streamId, 'ended after an error');
        arrivals.delete(info.streamId);
        onDone?.(e);
      },
      complete: () => {
        hub.endStream(info.streamId, endText());
        arrivals.delete(info.streamId);
        onDone?.();
      },
    });
    // Ended, failed or unsubscribed (runs at once if the pipeline already ended).
    subscription.add(() => {
      if (ctx.pipelines.get(info.streamId) === done) {
        ctx.pipelines.delete(info.streamId);
        // Stopped early (unsubscribed): end the stream too, or it stayed 'live' in the hub for good
        // (live streams are never forgotten) and its subscribers never got its final status.
        if (hub.stream(info.streamId)?.state !== 'ended') {
          hub.endStream(info.streamId, endText());
          arrivals.delete(info.streamId);
        }
      }
      ended();
    });
    return subscription;
  };

  const markArrivals = (streamId: string): OperatorFunction<AudioChunk, AudioChunk> =>
    tap((c) => {
      let arr = arrivals.get(streamId);
      if (!arr) arrivals.set(streamId, (arr = []));
      arr.push([samplesToMs(c.startSample + c.samples.length), performance.now()]);
      // Bounded: about a minute of 20 ms chunks.
      if (arr.length > 4096) arr.splice(0, arr.length - 4096);
    });

  return { publish, attach, markArrivals, stop: () => void stop() };
}
