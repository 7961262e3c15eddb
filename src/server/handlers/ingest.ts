/**
 * `/v1/ingest`: one publisher connection. The protocol itself (start, audio, stop, formats,
 * per-frame errors) is the pure {@link IngestSession}; this handler wires it to the socket, the rate
 * limit (4029), the hub's claim on the stream id (one publisher per stream: on one node, or in the
 * whole cluster with a backplane) and the pipeline (`onIngestStream`).
 *
 * Steps run strictly in arrival order. A cluster hub's claim is asynchronous: while it is on its
 * way, later frames (and a disconnect) wait in a queue behind it, so no audio is lost or reordered.
 */
import { Subject, type Observable } from 'rxjs';
import type { RawData, WebSocket } from 'ws';
import { CLOSE_CODES, type IngestReply } from '../../../core/protocol.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk, type PipelineEvent } from '../../../core/types.js';
import { toAffectError } from '../../../core/errors.js';
import type { Grant } from '../auth.js';
import { type ServerContext, TokenBucket, toBytes } from '../context.js';
import type { ClaimResult } from '../hub.js';
import { IngestSession, type IngestAction } from '../ingest.js';
import type { FanOut } from './fan-out.js';

type Step = IngestAction | { kind: 'disconnected' };

/** Most audio (s) a publisher may send while its stream waits to open (a cluster claim, or the previous publisher's pipeline ending). */
export const MAX_WAITING_AUDIO_S = 30;
const MAX_WAITING_SAMPLES = MAX_WAITING_AUDIO_S * PIPELINE_SAMPLE_RATE_HZ;

/** Handles accepted `/v1/ingest` sockets. */
export function createPublisherHandler(ctx: ServerContext, fanOut: FanOut): (ws: WebSocket, grant: Grant) => void {
  const { o, metrics, publishers } = ctx;

  return (ws, grant) => {
    ctx.track(ws, 'ingest');
    const session = new IngestSession({ canPublish: (id) => grant.canPublish(id) });
    const bucket = new TokenBucket(o.ingestRateLimit);
    let audio$: Subject<AudioChunk> | undefined;
    let streamId: string | undefined;
    let limited = false;
    /** Steps waiting behind an unanswered claim, and the audio samples among them. */
    const queue: Step[] = [];
    let queuedSamples = 0;
    /** Closed because too much audio waited (see MAX_WAITING_AUDIO_S). */
    let overflowed = false;
    let waiting = false;
    let refused = false;

    const reply = (r: IngestReply) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(r));
    };
    /**
     * A publisher refused at its start, counted and logged once with its stream id and reason:
     * stream-busy, backplane-down and no-pipeline refusals left neither a log line nor a count.
     */
    const refuse = (id: string, reason: 'stream-busy' | 'backplane-down' | 'no-pipeline' | 'over-capacity', fields: object = {}): void => {
      refused = true;
      metrics.refused.inc({ reason });
      ctx.streamLog(id).warn({ reason, ...fields }, 'publisher refused');
    };
    const finish = (message: string) => {
      if (!audio$ || !streamId) return;
      const s = audio$;
      audio$ = undefined;
      if (publishers.get(streamId) === ws) publishers.delete(streamId);
      ctx.streamLog(streamId).info({ stats: session.stats }, message);
      // Completing the audio lets the pipeline flush its last window; attach() then ends the stream.
      s.complete();
    };

    /** Opens the stream and its pipeline once the claim is granted. */
    const begin = (a: Extract<IngestAction, { kind: 'start' }>, claim: ClaimResult): void => {
      if (!claim.ok) {
        if (publishers.get(a.streamId) === ws) publishers.delete(a.streamId);
        refuse(a.streamId, claim.reason);
        queue.length = 0;
        reply({ type: 'error', code: 'AFFECT_ERR_PROTOCOL', reason: claim.reason, message: claim.message, recoverable: false });
        ws.close(CLOSE_CODES.policy, claim.reason === 'stream-busy' ? 'stream busy' : 'backplane down');
        return;
      }
      const hook = o.onIngestStream;
      if (!hook) return;
      streamId = a.streamId;
      const subject = new Subject<AudioChunk>();
      audio$ = subject;
      let events$: Observable<PipelineEvent>;
      try {
        events$ = hook(a.streamId, subject.pipe(fanOut.markArrivals(a.streamId)), a.format);
      } catch (err) {
        const e = toAffectError(err);
        reply({ type: 'error', code: e.code, message: e.message, recoverable: false });
        ws.close(CLOSE_CODES.internalError, 'pipeline failed');
        return;
      }
      fanOut.attach({ streamId: a.streamId, sampleRateHz: PIPELINE_SAMPLE_RATE_HZ, ...o.ingestStreamTiming }, events$, 'publisher stopped', (e) => {
        // The pipeline failed (e.g. inference error): tell the publisher and stop taking its audio.
        if (!e || ws.readyState !== ws.OPEN) return;
        audio$ = undefined;
        if (publishers.get(a.streamId) === ws) publishers.delete(a.streamId);
        reply({ type: 'error', code: e.code, message: e.message, recoverable: false });
        ws.close(CLOSE_CODES.internalError, 'pipeline failed');
      });
      ctx.streamLog(a.streamId).info({ format: a.format }, 'publisher started');
    };

    /** Runs one step; returns a Promise when the steps after it must wait (an unanswered claim). */
    const step = (a: Step): Promise<void> | undefined => {
      switch (a.kind) {
        case 'reply':
          reply(a.reply);
          return undefined;
        case 'reject':
          metrics.ingestFrames.inc({ result: 'rejected' });
          metrics.ingestRejected.inc({ reason: a.reason });
          return undefined;
        case 'start': {
          const busy = publishers.get(a.streamId);
          if (busy && busy !== ws) {
            refuse(a.streamId, 'stream-busy');
            reply({
              type: 'error',
              code: 'AFFECT_ERR_PROTOCOL',
              reason: 'stream-busy',
              message: `stream "${a.streamId}" already has a publisher`,
              recoverable: false,
            });
            ws.close(CLOSE_CODES.policy, 'stream busy');
            return undefined;
          }
          // Capacity (serve --max-streams): refuse a new stream rather than slow every stream down.
          const cap = o.maxIngestStreams;
          if (cap !== undefined && !publishers.has(a.streamId) && publishers.size >= cap) {
            refuse(a.streamId, 'over-capacity', { streams: publishers.size, maxStreams: cap });
            reply({
              type: 'error',
              code: 'AFFECT_ERR_PROTOCOL',
              reason: 'over-capacity',
              message: `this server already analyses ${publishers.size} stream(s), its capacity (--max-streams ${cap}); try again later or another node`,
              recoverable: false,
            });
            ws.close(CLOSE_CODES.overCapacity, 'over capacity');
            return undefined;
          }
          if (!o.onIngestStream) {
            refuse(a.streamId, 'no-pipeline');
            reply({
              type: 'error',
              code: 'AFFECT_ERR_CONFIG',
              reason: 'no-pipeline',
              message: 'this server has no pipeline for ingest streams',
              recoverable: false,
            });
            ws.close(CLOSE_CODES.internalError, 'no pipeline');
            return undefined;
          }
          publishers.set(a.streamId, ws);
          let claim: ClaimResult | Promise<ClaimResult>;
          try {
            claim = ctx.claim(a.streamId);
          } catch (err) {
            claim = { ok: false, reason: 'backplane-down', message: toAffectError(err).message };
          }
          if (!(claim instanceof Promise)) return void begin(a, claim);
          return claim.then(
            (c) => begin(a, c),
            (err: unknown) => begin(a, { ok: false, reason: 'backplane-down', message: toAffectError(err).message }),
          );
        }
        case 'audio':
          audio$?.next({ streamId: streamId ?? '', startSample: a.startSample, samples: a.samples });
          return undefined;
        case 'stop':
          finish('publisher stopped');
          setImmediate(() => ws.close(CLOSE_CODES.normal, 'stopped'));
          return undefined;
        case 'disconnected':
          // A publisher that vanished without `stop`: still deliver the resampler's tail.
          for (const t of session.finish()) if (t.kind === 'audio') audio$?.next({ streamId: streamId ?? '', startSample: t.startSample, samples: t.samples });
          finish('publisher disconnected');
          return undefined;
      }
    };

    const run = (steps: Step[]): void => {
      // Closed for its backlog: only the disconnect still counts (it ends the stream once it opened).
      queue.push(...(overflowed ? steps.filter((st) => st.kind === 'disconnected') : steps));
      if (waiting && !overflowed) {
        for (const st of steps) if (st.kind === 'audio') queuedSamples += st.samples.length;
        // Bounded: audio sent faster than real time while the stream waits to open would pile up here.
        if (queuedSamples > MAX_WAITING_SAMPLES) {
          overflowed = true;
          queue.length = 0;
          queuedSamples = 0;
          metrics.ingestRejected.inc({ reason: 'backlog' });
          ctx
            .streamLog(session.streamId ?? '')
            .warn({ reason: 'backlog', maxWaitingAudioS: MAX_WAITING_AUDIO_S }, 'publisher closed: audio arrived faster than its stream could open');
          reply({
            type: 'error',
            code: 'AFFECT_ERR_PROTOCOL',
            reason: 'backlog',
            message: `more than ${MAX_WAITING_AUDIO_S} s of audio arrived before the stream could open; send audio in real time`,
            recoverable: false,
          });
          ws.close(CLOSE_CODES.policy, 'backlog');
          return;
        }
      }
      while (!waiting && !refused && queue.length > 0) {
        const next = queue.shift() as Step;
        if (next.kind === 'audio') queuedSamples = Math.max(0, queuedSamples - next.samples.length);
        const wait = step(next);
        if (wait) {
          waiting = true;
          void wait.then(
            () => {
              waiting = false;
              run([]);
            },
            (err: unknown) => {
              // Opening the stream failed after the claim: this connection cannot go on.
              const e = toAffectError(err);
              ctx.log.error({ err: e }, 'ingest start failed');
              for (const [id, w] of publishers) if (w === ws) publishers.delete(id);
              refused = true;
              queue.length = 0;
              reply({ type: 'error', code: e.code, message: e.message, recoverable: false });
              ws.close(CLOSE_CODES.internalError, 'start failed');
            },
          );
        }
      }
    };

    ws.on('close', () => run([{ kind: 'disconnected' }]));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      ctx.alive.set(ws, true);
      if (limited) return;
      if (!bucket.take()) {
        limited = true;
        return ctx.rateLimited(ws, 'ingest', { streamId: session.streamId });
      }
      const before = [session.stats.samplesNonFinite, session.stats.samplesClipped, session.stats.framesAccepted] as const;
      const actions = session.handle(toBytes(data), isBinary);
      const nf = session.stats.samplesNonFinite - before[0];
      const cl = session.stats.samplesClipped - before[1];
      const ok = session.stats.framesAccepted - before[2];
      run(actions);
      if (ok > 0) metrics.ingestFrames.inc({ result: 'accepted' }, ok);
      if (nf > 0) metrics.ingestSamplesRepaired.inc({ kind: 'non_finite' }, nf);
      if (cl > 0) metrics.ingestSamplesRepaired.inc({ kind: 'clipped' }, cl);
    });
  };
}
