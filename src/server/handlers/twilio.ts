/**
 * `/v1/telephony/twilio`: Twilio Media Streams (bidirectional `<Stream>` or `<Start><Stream>`)
 * pointed at circumplex unchanged. Each track of a call becomes its own circumplex stream,
 * `<callSid>:inbound` (the caller) and `<callSid>:outbound` (the agent / the other leg).
 *
 * Messages (JSON text frames, as Twilio sends them):
 * - `connected` {protocol, version}: accepted, nothing to do.
 * - `start` {streamSid, start: {streamSid, callSid, tracks, mediaFormat: {encoding, sampleRate, channels}}}:
 *   opens one stream per track; the media format must be `audio/x-mulaw`, 8000 Hz, 1 channel.
 * - `media` {media: {track, chunk, timestamp, payload}}: base64 μ-law bytes of one track, decoded
 *   and resampled to 16 kHz into that track's pipeline. `track` `inbound`/`outbound`.
 *   `timestamp` (ms since the stream started, per track) keeps audio time true: when it is ahead of
 *   the audio received so far (packets lost upstream), the gap is filled with silence (μ-law zero
 *   through the track's decoder) up to {@link TWILIO_MAX_FILL_MS}; a longer gap advances the
 *   track's clock without samples (the windows restart on the new audio); a jump of more than
 *   {@link TWILIO_MAX_GAP_MS} is taken only when the timestamp is no later than the time since the
 *   call's `start` arrived (plus {@link TWILIO_CLOCK_SLACK_MS}): Twilio may send no packets for a
 *   silent track, so a track can be quiet for minutes; a timestamp ahead of the wall clock is a
 *   broken clock and closes the call (1002). A timestamp behind (late
 *   or reordered packet) is not rewound: the audio is appended. Without a timestamp nothing is filled.
 *   A track's 16 kHz audio enters its pipeline in coalesced chunks, not one per 20 ms packet: a chunk
 *   goes out as soon as it reaches the end of the next analysis hop (where a window can complete) or
 *   {@link TWILIO_MAX_COALESCE_MS} of audio, so no frame waits for coalescing, and the pipeline runs
 *   once per hop instead of once per packet.
 * - `mark`, `dtmf`: accepted and ignored.
 * - `stop`: ends every track's stream; the socket closes with 1000.
 *
 * Errors close only this call's socket (other calls go on): bad JSON, an unknown event, media
 * before start, a second start, an unknown track or bad base64 close with 1002 (protocol error);
 * a media format other than 8 kHz mono μ-law with 1003 (unsupported data); a track whose stream id
 * is busy with 1008 (policy). The close reason names the problem.
 *
 * Auth: the `token` query parameter (Twilio `<Stream url="wss://…/v1/telephony/twilio?token=…">`)
 * or an `Authorization: Bearer` header, with the `publish` scope for the call's stream ids.
 */
import { Subject, type Observable } from 'rxjs';
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { CLOSE_CODES } from '../../../core/protocol.js';
import { PIPELINE_SAMPLE_RATE_HZ, type AudioChunk, type PipelineEvent } from '../../../core/types.js';
import { toAffectError } from '../../../core/errors.js';
import type { Grant } from '../auth.js';
import { type ServerContext, TokenBucket, fitCloseReason, toText } from '../context.js';
import type { ClaimResult } from '../hub.js';
import { FrameDecoder, type IngestStats } from '../ingest.js';
import type { FanOut } from './fan-out.js';
import { MAX_WAITING_AUDIO_S } from './ingest.js';

/** The path Twilio's `<Stream url>` points at. */
export const TWILIO_PATH = '/v1/telephony/twilio';

/** Close code for a media format circumplex cannot take (RFC 6455 1003, unsupported data). */
export const TWILIO_CLOSE_UNSUPPORTED = 1003;

/** Longest timestamp gap (ms) filled with silence samples; longer gaps only advance the clock. */
export const TWILIO_MAX_FILL_MS = 2000;
/**
 * Longest timestamp jump (ms ahead of the track's audio) a media message may make on its own word.
 * A longer one is a silent stretch only if the call has run that long ({@link TWILIO_CLOCK_SLACK_MS});
 * otherwise it is a broken clock and the call closes with 1002 (unbounded, one media message stamped
 * 1e300 ran the server out of memory).
 */
export const TWILIO_MAX_GAP_MS = 60_000;
/**
 * How far (ms) a media timestamp may run ahead of the wall-clock time since the call's `start`
 * arrived, for a jump longer than {@link TWILIO_MAX_GAP_MS} to be taken as a silent stretch (the
 * `start` message itself may arrive a little after the stream started).
 */
export const TWILIO_CLOCK_SLACK_MS = 10_000;
/**
 * Most media (μ-law bytes, both tracks together: MAX_WAITING_AUDIO_S, as on the ingest endpoint, of a two-track call) a call may send while its
 * streams wait to open (a cluster claim, or a previous pipeline of the same ids still ending); more
 * closes the call with 1008.
 */
export const TWILIO_MAX_HELD_BYTES = MAX_WAITING_AUDIO_S * 8000 * 2;
/** Most audio (ms) a track holds before passing it to its pipeline (it passes earlier at each hop end). */
export const TWILIO_MAX_COALESCE_MS = 250;
/** Timestamp lead (ms) below which no silence is inserted (timestamps are whole ms; a packet is 20 ms). */
const GAP_TOLERANCE_MS = 5;
/** One byte of μ-law silence (decodes to 0). */
const MULAW_SILENCE = 0xff;

const Sid = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9]+$/, 'letters and digits only');
const Track = z.enum(['inbound', 'outbound']);
const Connected = z.object({ event: z.literal('connected') }).loose();
const Start = z
  .object({
    event: z.literal('start'),
    streamSid: z.string().optional(),
    start: z
      .object({
        streamSid: z.string().min(1),
        callSid: Sid,
        tracks: z.array(Track).min(1).max(2),
        mediaFormat: z.object({ encoding: z.string(), sampleRate: z.number(), channels: z.number() }).loose(),
      })
      .loose(),
  })
  .loose();
const Media = z
  .object({
    event: z.literal('media'),
    media: z
      .object({
        track: z.string(),
        payload: z.string().max(1_000_000),
        chunk: z.union([z.string(), z.number()]).optional(),
        timestamp: z.union([z.string(), z.number()]).optional(),
      })
      .loose(),
  })
  .loose();
const Other = z.object({ event: z.enum(['mark', 'dtmf', 'stop']) }).loose();

/**
 * Decodes a base64 payload, or undefined when it is not strict base64 (`[A-Za-z0-9+/]*` and up to
 * two `=`, length a multiple of 4). Node's decoder skips characters outside the alphabet and stops
 * at `=`, so any such character leaves fewer bytes than the length implies; `-` and `_` (base64url,
 * which Node accepts) are refused outright. Cheaper than a regular expression over every packet.
 */
export function strictBase64(p: string): Buffer | undefined {
  if (p.length === 0 || p.length % 4 !== 0 || p.includes('-') || p.includes('_')) return undefined;
  const pad = p.charCodeAt(p.length - 1) === 61 ? (p.charCodeAt(p.length - 2) === 61 ? 2 : 1) : 0;
  const bytes = Buffer.from(p, 'base64');
  return bytes.length === (p.length / 4) * 3 - pad ? bytes : undefined;
}

/** A message id field (chunk, timestamp): absent, a string or a number. */
const idOk = (v: unknown): boolean => v === undefined || typeof v === 'string' || typeof v === 'number';

/** A well-formed media message without zod's cost, or undefined (then zod parses it and words the error). */
function fastMedia(json: unknown): z.infer<typeof Media> | undefined {
  const media = (json as { media?: unknown }).media;
  if (typeof media !== 'object' || media === null) return undefined;
  const { track, payload, chunk, timestamp } = media as Record<string, unknown>;
  if (typeof track !== 'string' || typeof payload !== 'string' || payload.length > 1_000_000) return undefined;
  if (!idOk(chunk) || !idOk(timestamp)) return undefined;
  return json as z.infer<typeof Media>;
}

/** One track of the call: its stream, decoder and audio subject. */
interface TrackState {
  readonly streamId: string;
  readonly decoder: FrameDecoder;
  /** This track's own counts (packets, samples out), logged when its stream ends. */
  readonly stats: IngestStats;
  audio$: Subject<AudioChunk> | undefined;
  /** 16 kHz sample index of the next sample to send (the first one `pending` holds). */
  nextSample: number;
  /** Decoded 16 kHz audio not yet sent to the pipeline (coalescing), `pendingLen` samples. */
  pending: Float32Array;
  pendingLen: number;
  /** Packets accepted into `raw` and `pending`, counted in the metrics when `pending` is sent. */
  pendingPackets: number;
  /**
   * μ-law bytes received and not yet decoded, `rawLen` of them: decoded together when they reach
   * the next hop end or the coalescing bound (see `rawDue`), one decoder and resampler call per hop
   * instead of one per 20 ms packet, with the same samples at the same time.
   */
  raw: Uint8Array;
  rawLen: number;
  /** The 16 kHz sample index where the windows are aligned (0, or where audio resumed after a long gap). */
  hopBase: number;
  /** μ-law bytes (8 kHz samples) of this track so far, received or filled: the track's clock. */
  bytes8k: number;
  /** The message of the stream's `ended` status: why the call ended (set when it does). */
  endMessage: string;
  /** Timestamp gaps filled (or skipped, when longer than TWILIO_MAX_FILL_MS) and their ms. */
  gaps: number;
  gapMs: number;
}

/** Why a Twilio call's message was rejected (the `reason` of circumplex_ingest_rejected_total). */
export type TwilioRejectReason =
  | 'bad-json'
  | 'bad-message'
  | 'unknown-event'
  | 'binary'
  | 'unsupported-format'
  | 'already-started'
  | 'not-started'
  | 'unknown-track'
  | 'forbidden'
  | 'bad-base64'
  | 'bad-timestamp'
  | 'bad-audio'
  | 'backlog';

/** Handles accepted `/v1/telephony/twilio` sockets. */
export function createTwilioHandler(ctx: ServerContext, fanOut: FanOut): (ws: WebSocket, grant: Grant) => void {
  const { o, publishers, metrics } = ctx;
  const hopN = Math.max(1, Math.round((o.ingestStreamTiming.hopMs * PIPELINE_SAMPLE_RATE_HZ) / 1000));
  const coalesceMax = Math.max(1, Math.min(hopN, Math.round((TWILIO_MAX_COALESCE_MS * PIPELINE_SAMPLE_RATE_HZ) / 1000)));

  /** Sends a track's coalesced audio to its pipeline. */
  const flushPending = (t: TrackState): void => {
    if (t.pendingPackets > 0) {
      metrics.ingestFrames.inc({ result: 'accepted' }, t.pendingPackets);
      t.pendingPackets = 0;
    }
    const n = t.pendingLen;
    if (n === 0) return;
    t.pendingLen = 0;
    const startSample = t.nextSample;
    t.nextSample += n;
    t.audio$?.next({ streamId: t.streamId, startSample, samples: t.pending.slice(0, n) });
  };
  /** Samples a track can take before it sends: up to the next hop end (where a window can complete) or the coalescing bound. */
  const room = (t: TrackState): number => {
    const end = t.nextSample + t.pendingLen;
    const toHop = hopN - ((((end - t.hopBase) % hopN) + hopN) % hopN);
    return Math.min(toHop, coalesceMax - t.pendingLen);
  };
  /**
   * Decodes a track's held μ-law bytes and adds the samples; the decoder's error message if it
   * refused them (μ-law has none but an empty frame, which `rawLen` rules out).
   */
  const decodeRaw = (t: TrackState): string | undefined => {
    if (t.rawLen === 0) return undefined;
    const r = t.decoder.decode(t.raw.subarray(0, t.rawLen), t.stats);
    t.rawLen = 0;
    if ('reason' in r) return r.message;
    addSamples(t, r.samples);
    return undefined;
  };
  /** Holds μ-law bytes for a track (the decoder and resampler copy what they read). */
  const appendRaw = (t: TrackState, bytes: Uint8Array | number, n: number): void => {
    if (t.rawLen + n > t.raw.length) {
      const grown = new Uint8Array(Math.max(2 * t.raw.length, t.rawLen + n));
      grown.set(t.raw.subarray(0, t.rawLen));
      t.raw = grown;
    }
    if (typeof bytes === 'number') t.raw.fill(bytes, t.rawLen, t.rawLen + n);
    else t.raw.set(bytes, t.rawLen);
    t.rawLen += n;
  };
  /**
   * The held bytes reach the next hop end (or the coalescing bound): decoding them now sends that
   * audio on exactly when decoding every packet did. The resampler (8 → 16 kHz) turns R more bytes
   * into 2R more output samples once its look-ahead is filled, and the samples still held back for
   * it are already counted behind `nextSample + pendingLen`.
   */
  const rawDue = (t: TrackState): boolean => (t.rawLen * PIPELINE_SAMPLE_RATE_HZ) / 8000 >= room(t);
  /** Adds decoded 16 kHz samples to a track; sends them on at a hop end or at the coalescing bound. */
  const addSamples = (t: TrackState, samples: Float32Array): void => {
    if (samples.length === 0 || !t.audio$) return;
    t.stats.samplesOut += samples.length;
    let at = 0;
    while (at < samples.length) {
      const r = room(t);
      const m = Math.min(r, samples.length - at);
      t.pending.set(samples.subarray(at, at + m), t.pendingLen);
      t.pendingLen += m;
      at += m;
      if (m === r) flushPending(t);
    }
  };

  return (ws, grant) => {
    // Its own endpoint label: Twilio calls counted as 'ingest' could not be told from /v1/ingest publishers.
    ctx.track(ws, 'twilio');
    const bucket = new TokenBucket(o.ingestRateLimit);
    let tracks: Map<string, TrackState> | undefined;
    let callSid: string | undefined;
    /** performance.now() when the call's start arrived: media timestamps cannot run ahead of it for long. */
    let startedAt = 0;
    let closed = false;
    /** fail() ran: this call is refused (closed is also set when the socket goes). */
    let failed = false;
    let limited = false;
    /** Media that arrived while a claim was on its way (asynchronous hub), in order. */
    const held: Array<() => void> = [];
    /** μ-law bytes of the media in `held`. */
    let heldBytes = 0;
    let claiming = false;

    /**
     * Ends the call. `rejected` (a stable label) when a message of it broke the protocol: that
     * message counts as a rejected ingest frame, by reason. Refusals (busy, over capacity, backplane
     * down: circumplex_refused_total) and failed pipelines are no rejected frame; they were counted
     * as one, and no Twilio rejection had a reason in circumplex_ingest_rejected_total.
     */
    const fail = (code: number, reason: string, rejected?: TwilioRejectReason): void => {
      if (closed) return;
      if (rejected) {
        metrics.ingestFrames.inc({ result: 'rejected' });
        metrics.ingestRejected.inc({ reason: rejected });
      }
      ctx.log.warn({ callSid, reason }, 'twilio stream refused');
      failed = true;
      finishAll('twilio stream failed');
      closed = true;
      // Close reasons are limited to 123 bytes (not characters: a quoted track or event name may be UTF-8).
      if (ws.readyState === ws.OPEN) ws.close(code, fitCloseReason(reason));
    };
    const finishAll = (message: string): void => {
      // While claims are on their way the stream ids stay this socket's; the claims' answer ends them.
      if (!tracks || claiming) return;
      for (const t of tracks.values()) {
        // Every track's stream id is free again, opened or not (a refused or never-opened track too).
        if (publishers.get(t.streamId) === ws) publishers.delete(t.streamId);
        // Bytes held for decoding go out first (the decoder cannot refuse non-empty μ-law; a refusal here drops them).
        decodeRaw(t);
        flushPending(t);
        if (!t.audio$) continue;
        const s = t.audio$;
        t.audio$ = undefined;
        t.endMessage = message;
        const tail = t.decoder.flush();
        if (tail.length > 0) {
          t.stats.samplesOut += tail.length;
          s.next({ streamId: t.streamId, startSample: t.nextSample, samples: tail });
        }
        // The track's own counts: the call's other track logs its own line.
        ctx.streamLog(t.streamId).info({ stats: t.stats, timestampGaps: t.gaps, timestampGapMs: t.gapMs }, message);
        s.complete();
      }
    };

    const open = (t: TrackState, claim: ClaimResult): boolean => {
      if (!claim.ok) {
        // Once per call (its other track's refusal finds it closed).
        if (!closed) metrics.refused.inc({ reason: claim.reason });
        fail(CLOSE_CODES.policy, claim.reason === 'stream-busy' ? `stream ${t.streamId} busy` : 'backplane down');
        return false;
      }
      const hook = o.onIngestStream;
      if (!hook) return false;
      const subject = new Subject<AudioChunk>();
      let events$: Observable<PipelineEvent>;
      try {
        events$ = hook(t.streamId, subject.pipe(fanOut.markArrivals(t.streamId)), { encoding: 'mulaw', sampleRateHz: 8000, channels: 1 });
      } catch (err) {
        // Thrown inside the socket's message handler, it would have been an uncaught exception.
        // fail() ends the call, which frees every track's stream id.
        fail(CLOSE_CODES.internalError, `pipeline failed: ${toAffectError(err).message}`);
        return false;
      }
      t.audio$ = subject;
      fanOut.attach(
        { streamId: t.streamId, sampleRateHz: PIPELINE_SAMPLE_RATE_HZ, ...o.ingestStreamTiming },
        events$,
        () => t.endMessage,
        (e) => {
          if (e) fail(CLOSE_CODES.internalError, `pipeline failed: ${e.message}`);
        },
      );
      ctx.streamLog(t.streamId).info({ callSid }, 'twilio track started');
      return true;
    };

    const onStart = (m: z.infer<typeof Start>): void => {
      if (tracks) return fail(CLOSE_CODES.protocolError, 'second start on one media stream', 'already-started');
      const f = m.start.mediaFormat;
      if (f.encoding !== 'audio/x-mulaw' || f.sampleRate !== 8000 || f.channels !== 1) {
        return fail(
          TWILIO_CLOSE_UNSUPPORTED,
          `media format ${f.encoding} ${f.sampleRate} Hz ${f.channels} ch: only audio/x-mulaw 8000 Hz 1 ch`,
          'unsupported-format',
        );
      }
      if (!o.onIngestStream) return fail(CLOSE_CODES.internalError, 'this server has no pipeline for ingest streams');
      callSid = m.start.callSid;
      startedAt = performance.now();
      const ts = new Map<string, TrackState>();
      for (const track of new Set(m.start.tracks)) {
        const streamId = `${m.start.callSid}:${track}`;
        if (!grant.canPublish(streamId)) return fail(CLOSE_CODES.policy, `token may not publish ${streamId}`, 'forbidden');
        if (publishers.has(streamId)) {
          metrics.refused.inc({ reason: 'stream-busy' });
          return fail(CLOSE_CODES.policy, `stream ${streamId} busy`);
        }
        ts.set(track, {
          streamId,
          decoder: new FrameDecoder({ encoding: 'mulaw', sampleRateHz: 8000, channels: 1 }),
          stats: { framesAccepted: 0, framesRejected: 0, samplesNonFinite: 0, samplesClipped: 0, samplesOut: 0 },
          audio$: undefined,
          nextSample: 0,
          pending: new Float32Array(coalesceMax + 4096),
          pendingLen: 0,
          pendingPackets: 0,
          raw: new Uint8Array(Math.ceil((coalesceMax * 8000) / PIPELINE_SAMPLE_RATE_HZ) + 1024),
          rawLen: 0,
          hopBase: 0,
          endMessage: 'call ended',
          bytes8k: 0,
          gaps: 0,
          gapMs: 0,
        });
      }
      // Capacity (serve --max-streams) counts Twilio tracks like ingest streams: refuse the whole call rather than slow every stream down.
      const cap = o.maxIngestStreams;
      if (cap !== undefined && publishers.size + ts.size > cap) {
        metrics.refused.inc({ reason: 'over-capacity' });
        return fail(CLOSE_CODES.overCapacity, `over capacity: ${publishers.size} stream(s) running, this call needs ${ts.size} (--max-streams ${cap})`);
      }
      tracks = ts;
      for (const t of ts.values()) publishers.set(t.streamId, ws);
      // Claim every track; media waits behind asynchronous (cluster) claims, in order.
      const claims = [...ts.values()].map((t) => {
        try {
          return ctx.claim(t.streamId);
        } catch (err) {
          const down: ClaimResult = { ok: false, reason: 'backplane-down', message: toAffectError(err).message };
          return down;
        }
      });
      const states = [...ts.values()];
      if (claims.every((c) => !(c instanceof Promise))) {
        states.forEach((t, i) => open(t, claims[i] as ClaimResult));
        return;
      }
      claiming = true;
      void Promise.all(
        claims.map((c) =>
          Promise.resolve(c).catch((err: unknown): ClaimResult => ({ ok: false, reason: 'backplane-down', message: toAffectError(err).message })),
        ),
      ).then((done) => {
        claiming = false;
        // Every granted claim is opened, even when the call is already gone (socket closed, refused,
        // another track busy): the stream then ends at once, which frees its id on this node and
        // releases the claim in the cluster. Leaving a granted claim unopened kept the ids busy.
        states.forEach((t, i) => {
          if (done[i]!.ok) open(t, done[i]!);
        });
        const refused = done.find((c): c is Extract<ClaimResult, { ok: false }> => !c.ok);
        if (refused && !closed) {
          metrics.refused.inc({ reason: refused.reason });
          return fail(CLOSE_CODES.policy, refused.reason === 'stream-busy' ? `stream busy: ${refused.message}` : 'backplane down');
        }
        if (refused || failed) return finishAll(failed ? 'twilio stream failed' : 'twilio socket closed');
        // Media, stop and close that arrived meanwhile, in order (a socket close finishes the tracks).
        heldBytes = 0;
        for (const h of held.splice(0)) h();
      });
    };

    const onMedia = (m: z.infer<typeof Media>): void => {
      if (!tracks) return fail(CLOSE_CODES.protocolError, 'media before start', 'not-started');
      const t = tracks.get(m.media.track);
      if (!t) return fail(CLOSE_CODES.protocolError, `media for track "${m.media.track}" that start did not announce`, 'unknown-track');
      const p = m.media.payload;
      const bytes = strictBase64(p);
      if (!bytes) return fail(CLOSE_CODES.protocolError, `bad base64 payload in media ${String(m.media.chunk ?? '')}`.trim(), 'bad-base64');
      const tsRaw = m.media.timestamp;
      const tsMs = tsRaw === undefined || tsRaw === '' ? undefined : Number(tsRaw);
      if (tsMs !== undefined && !(Number.isFinite(tsMs) && tsMs >= 0))
        return fail(CLOSE_CODES.protocolError, `bad media timestamp ${JSON.stringify(tsRaw)}`.slice(0, 100), 'bad-timestamp');
      if (claiming) {
        // Bounded: media sent faster than real time while the streams wait to open would pile up here.
        heldBytes += bytes.length;
        if (heldBytes > TWILIO_MAX_HELD_BYTES)
          return fail(CLOSE_CODES.policy, `more than ${MAX_WAITING_AUDIO_S} s of media arrived before the call's streams could open`, 'backlog');
        held.push(() => pushMedia(t, bytes, tsMs));
      } else pushMedia(t, bytes, tsMs);
    };

    /** One media packet of a track into its decoder and on towards the pipeline (gaps filled first). */
    const pushMedia = (t: TrackState, bytes: Buffer, tsMs: number | undefined): void => {
      if (closed && !t.audio$) return;
      // Packets lost upstream: the timestamp is ahead of this track's audio. Fill with silence.
      const lead = tsMs === undefined ? 0 : tsMs - t.bytes8k / 8;
      // A long jump is a track that sent nothing while silent, as long as the clock it claims has passed.
      if (lead > TWILIO_MAX_GAP_MS) {
        const sinceStart = performance.now() - startedAt;
        if ((tsMs ?? 0) > sinceStart + TWILIO_CLOCK_SLACK_MS)
          return fail(
            CLOSE_CODES.protocolError,
            `media timestamp ${tsMs} jumps ${Math.round(lead)} ms ahead of the track's audio (over ${TWILIO_MAX_GAP_MS}) and past the call's ${Math.round(sinceStart)} ms`,
            'bad-timestamp',
          );
      }
      if (lead > GAP_TOLERANCE_MS) {
        const n = Math.round(lead * 8);
        t.gaps++;
        t.gapMs += lead;
        t.bytes8k += n;
        if (lead <= TWILIO_MAX_FILL_MS) {
          appendRaw(t, MULAW_SILENCE, n);
        } else {
          // A long gap: the clock moves on without samples (windows restart on the new audio, aligned there).
          const err = decodeRaw(t);
          if (err !== undefined) return fail(CLOSE_CODES.protocolError, err, 'bad-audio');
          flushPending(t);
          t.nextSample += Math.round((n * PIPELINE_SAMPLE_RATE_HZ) / 8000);
          t.hopBase = t.nextSample;
        }
      }
      appendRaw(t, bytes, bytes.length);
      t.stats.framesAccepted++;
      t.pendingPackets++;
      t.bytes8k += bytes.length;
      if (rawDue(t)) {
        const err = decodeRaw(t);
        if (err !== undefined) return fail(CLOSE_CODES.protocolError, err, 'bad-audio');
      }
    };

    /** Parses a message with its schema; on failure closes the call naming the first problem. */
    const parse = <T>(schema: z.ZodType<T>, json: unknown, event: unknown): T | undefined => {
      const r = schema.safeParse(json);
      if (r.success) return r.data;
      const iss = r.error.issues[0];
      fail(CLOSE_CODES.protocolError, `bad ${String(event)} message: ${iss ? `${iss.path.join('.')} ${iss.message}` : 'invalid'}`, 'bad-message');
      return undefined;
    };

    ws.on('close', () => {
      if (claiming) held.push(() => finishAll('twilio socket closed'));
      else finishAll('twilio socket closed');
      closed = true;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      ctx.alive.set(ws, true);
      if (closed || limited) return;
      if (!bucket.take()) {
        limited = true;
        return ctx.rateLimited(ws, 'twilio', { callSid });
      }
      if (isBinary) return fail(TWILIO_CLOSE_UNSUPPORTED, 'binary frame: Twilio media streams send JSON text', 'binary');
      let json: unknown;
      try {
        json = JSON.parse(toText(data));
      } catch {
        return fail(CLOSE_CODES.protocolError, 'not JSON', 'bad-json');
      }
      const event = typeof json === 'object' && json !== null ? (json as { event?: unknown }).event : undefined;
      // The hot path (50 media messages a second per track): checked by hand, zod only to word an error.
      if (event === 'media') {
        const m = fastMedia(json) ?? parse(Media, json, event);
        if (m) onMedia(m);
        return;
      }
      switch (event) {
        case 'connected':
          parse(Connected, json, event);
          return;
        case 'start': {
          const m = parse(Start, json, event);
          if (m) onStart(m);
          return;
        }
        case 'mark':
        case 'dtmf':
          parse(Other, json, event);
          return;
        case 'stop': {
          if (!parse(Other, json, event)) return;
          const end = (): void => {
            finishAll('call stopped');
            closed = true;
            setImmediate(() => ws.close(CLOSE_CODES.normal, 'stopped'));
          };
          if (claiming) held.push(end);
          else end();
          return;
        }
        default:
          return fail(CLOSE_CODES.protocolError, `unknown event ${JSON.stringify(event)}`.slice(0, 100), 'unknown-event');
      }
    });
  };
}
