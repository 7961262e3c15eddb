/**
 * The circumplex wire protocol, typed once. Imports nothing from the server, so browser and node
 * clients can use it as is.
 *
 * Versioning: the major version is the WebSocket subprotocol (`circumplex.v1`), negotiated in the
 * upgrade; the full semver travels in `hello`. Adding a field is a minor bump; a rename or removal
 * means `circumplex.v2`, with v1 still served for one release.
 *
 * Endpoints (same port): `/v1/stream` (subscribers), `/v1/ingest` (audio publishers),
 * `/healthz`, `/metrics`, `/` (dashboard).
 */
import { z } from 'zod';

/**
 * 1.1.0 (additive): `affect` frames and their `speech`/`text` parts may carry `dominance`
 * (submissive -1 .. dominant +1) when a model supplies it; clients must tolerate its absence.
 *
 * 1.2.0 (additive): `affect` frames may carry `voiced` (fraction of the window that is speech, with
 * voice activity detection on) and `velocity` {valence, arousal} per second; new stream messages
 * `turn` (a voiced segment ended, with its affect summary) and `alert` (e.g. escalation). Clients
 * must ignore message types they do not know.
 *
 * 1.3.0 (additive): an `affect` frame may carry `hopMs`, its effective hop (audio ms since the
 * stream's previous frame) when the server's model stage could not keep up and widened the hop;
 * `/v1/ingest` may refuse a stream beyond the server's capacity with close code 4013 (overCapacity).
 */
export const PROTOCOL_VERSION = '1.3.0';
export const SUBPROTOCOL = 'circumplex.v1';
export const STREAM_PATH = '/v1/stream';
export const INGEST_PATH = '/v1/ingest';

/** Close codes the server uses, besides the standard 1000/1001/1011. */
export const CLOSE_CODES = {
  /** Normal end: the server is done. */
  normal: 1000,
  /** Server shutting down. */
  goingAway: 1001,
  /** The peer broke the protocol (bad JSON, unknown type). */
  protocolError: 1002,
  /** A message was larger than maxPayload. */
  tooBig: 1009,
  /** Fatal server-side error for this connection. */
  internalError: 1011,
  /** The subscriber fell too far behind (buffered bytes over the hard limit). */
  slowConsumer: 4008,
  /** Too many messages per second from this connection. */
  rateLimited: 4029,
  /** Policy violation (e.g. a second publisher for a stream id that already has one, or a scope the token lacks). */
  policy: 1008,
  /** The server holds as many streams as it can analyse in real time (`serve --max-streams`); try later or another node (since 1.3.0). */
  overCapacity: 4013,
} as const;

// zod 4 numbers are finite (NaN and ±Infinity fail), and min/max (unlike refine) carry over into
// the generated JSON Schema (clients/protocol.schema.json).
const finite = z.number();
const unit = z.number().min(-1, 'must be in [-1, 1]').max(1, 'must be in [-1, 1]');
const prob = z.number().min(0, 'must be in [0, 1]').max(1, 'must be in [0, 1]');

/** One modality's contribution; `dominance` only when that modality's model predicts it (since 1.1.0). */
export const ModalitySchema = z.object({ valence: unit, arousal: unit, confidence: prob, dominance: unit.optional() });
export type ModalityMessage = z.infer<typeof ModalitySchema>;

/** Facts about a stream, sent in `hello` and `stream` messages. */
export const StreamInfoSchema = z.object({
  streamId: z.string(),
  hopMs: finite,
  windowMs: finite,
  sampleRateHz: finite,
  state: z.enum(['live', 'degraded', 'recorder-restarting', 'ended', 'error']),
  /** Last seq published on the stream, -1 if none. */
  lastSeq: z.number().int(),
});
export type StreamInfo = z.infer<typeof StreamInfoSchema>;

export const HelloMessage = z.object({
  type: z.literal('hello'),
  version: z.string(),
  sessionId: z.string(),
  hopMs: finite,
  streams: z.array(StreamInfoSchema),
});

/** A smoothed affect frame. `seq` is per stream and shared by every message of that stream. */
export const AffectMessage = z.object({
  type: z.literal('affect'),
  streamId: z.string(),
  seq: z.number().int().nonnegative(),
  tMs: finite,
  valence: unit,
  arousal: unit,
  confidence: prob,
  /**
   * Submissive (-1) to dominant (+1), smoothed like valence and arousal; present only when a model
   * of this frame supplies it (e.g. a text regression model), absent otherwise (since 1.1.0).
   */
  dominance: unit.optional(),
  /** Nearest of Russell's (1980) 28 terms, or 'neutral' when intensity < 0.1 (no meaningful direction). */
  label: z.string(),
  intensity: prob,
  angleDeg: finite,
  modalities: z.array(z.enum(['speech', 'text'])),
  speech: ModalitySchema.optional(),
  text: ModalitySchema.optional(),
  /** Windows dropped by the model stage (inference slower than audio) since the previous frame. */
  droppedWindows: z.number().int().nonnegative(),
  /**
   * Effective hop of this frame, ms of audio since the stream's previous frame, present only when
   * overload widened it beyond the stream's `hopMs` (the model stage skipped windows; since 1.3.0).
   */
  hopMs: z.number().positive().optional(),
  /**
   * Fraction of the window that is speech (0..1), when voice activity detection is on (since 1.2.0).
   * Below the hold fraction (default 0.2) the frame repeats the last point, confidence decaying;
   * the speech model does not run on such a window, so the frame carries no `speech` part
   * (`modalities` is [] without ASR; with ASR it lists `text` while the latest text estimate, which
   * the hold does not move either, is still within its age limit).
   */
  voiced: prob.optional(),
  /** Rate of change of the smoothed valence/arousal, per second of audio (since 1.2.0). */
  velocity: z.object({ valence: finite, arousal: finite }).optional(),
  /** Frames this subscriber did not get because it was too slow (coalesced), since its last frame. */
  coalesced: z.number().int().nonnegative().optional(),
});

export const WordSchema = z.object({ word: z.string(), startMs: finite, endMs: finite, conf: finite });

export const TranscriptMessage = z.object({
  type: z.literal('transcript'),
  streamId: z.string(),
  seq: z.number().int().nonnegative(),
  tMs: finite,
  text: z.string(),
  final: z.boolean(),
  words: z.array(WordSchema),
});

/** Valence/arousal (and dominance when the frames had it) summarising a turn. */
export const AffectSummarySchema = z.object({ valence: unit, arousal: unit, dominance: unit.optional() });

/** A voiced segment ended (voice activity end-pointing), with the affect over it (since 1.2.0). */
export const TurnMessage = z.object({
  type: z.literal('turn'),
  streamId: z.string(),
  seq: z.number().int().nonnegative(),
  /** Audio ms of the frame after which the turn's end was known (>= endMs; keeps the stream in time order). */
  tMs: finite,
  startMs: finite,
  endMs: finite,
  durationMs: finite,
  /** Mean of the turn's voiced frames. */
  mean: AffectSummarySchema,
  /** Per dimension, the frame value furthest from 0 (signed). */
  peak: AffectSummarySchema,
  /** Nearest term to the mean. */
  label: z.string(),
  confidence: prob,
  /** Frames summarised. */
  frames: z.number().int().nonnegative(),
  /** Final transcripts heard during the turn, when ASR is on. */
  transcript: z.string().optional(),
});

/** Something a supervisor or agent should know about a stream (since 1.2.0). */
export const AlertMessage = z.object({
  type: z.literal('alert'),
  streamId: z.string(),
  seq: z.number().int().nonnegative(),
  tMs: finite,
  /** 'escalation': arousal rising while valence falls, sustained. Clients must tolerate other values. */
  alert: z.string(),
  reason: z.string(),
  sustainedMs: finite,
  velocity: z.object({ valence: finite, arousal: finite }),
});

export const StatusMessage = z.object({
  type: z.literal('status'),
  streamId: z.string(),
  seq: z.number().int().nonnegative(),
  tMs: finite,
  state: z.enum(['live', 'degraded', 'recorder-restarting', 'ended', 'error']),
  message: z.string(),
});

/** A new stream appeared (e.g. a publisher started on the ingest endpoint). */
export const StreamMessage = z.object({ type: z.literal('stream'), stream: StreamInfoSchema });

export const ErrorMessage = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  recoverable: z.boolean(),
  streamId: z.string().optional(),
});

/** Sent once a resume has replayed everything still in the ring for a stream. */
export const ResumedMessage = z.object({
  type: z.literal('resumed'),
  streamId: z.string(),
  fromSeq: z.number().int(),
  /** Frames the subscriber asked for that were no longer in the ring. */
  missed: z.number().int().nonnegative(),
});

export const ServerMessageSchema = z.discriminatedUnion('type', [
  HelloMessage,
  AffectMessage,
  TranscriptMessage,
  StatusMessage,
  TurnMessage,
  AlertMessage,
  StreamMessage,
  ErrorMessage,
  ResumedMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
export type AffectFrameMessage = z.infer<typeof AffectMessage>;
export type TranscriptFrameMessage = z.infer<typeof TranscriptMessage>;
export type StatusFrameMessage = z.infer<typeof StatusMessage>;
export type TurnFrameMessage = z.infer<typeof TurnMessage>;
export type AlertFrameMessage = z.infer<typeof AlertMessage>;
/** Messages that belong to a stream and carry its `seq`. */
export type StreamEventMessage = AffectFrameMessage | TranscriptFrameMessage | StatusFrameMessage | TurnFrameMessage | AlertFrameMessage;

/** Most stream ids one subscribe or unsubscribe message may list (a client sends a longer list in parts). */
export const MAX_IDS_PER_MESSAGE = 256;

/** Subscriber → server. */
export const SubscribeMessage = z.object({
  type: z.literal('subscribe'),
  /** Stream ids, or ['*'] for every stream, present and future. */
  streamIds: z.array(z.string().min(1).max(128)).min(1).max(MAX_IDS_PER_MESSAGE),
  /** Resume: last seq received per stream; the server replays everything after it that it still has. */
  resumeFrom: z.record(z.string(), z.number().int().min(-1)).optional(),
});
export const UnsubscribeMessage = z.object({
  type: z.literal('unsubscribe'),
  streamIds: z.array(z.string().min(1).max(128)).min(1).max(MAX_IDS_PER_MESSAGE),
});
export const ClientMessageSchema = z.discriminatedUnion('type', [SubscribeMessage, UnsubscribeMessage]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

/** Publisher → server on `/v1/ingest`: opens a stream. Audio follows as binary frames or `audio` messages. */
export const IngestStartMessage = z.object({
  type: z.literal('start'),
  streamId: z
    .string()
    .min(1)
    .max(128)
    // Not __proto__: resumeFrom (a JSON object keyed by stream id) cannot carry that key, so such a stream could never resume.
    .regex(/^(?!__proto__$)[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only, not __proto__'),
  /**
   * `s16le`: signed 16-bit little-endian PCM; `mulaw`: G.711 mu-law bytes (telephony);
   * `f32le`: 32-bit float little-endian PCM (NaN/Inf replaced by 0 and counted, clipped to [-1, 1]).
   */
  encoding: z.enum(['s16le', 'mulaw', 'f32le']),
  sampleRateHz: z.number().int().min(4000).max(192000),
  channels: z.number().int().min(1).max(8),
});
/** Audio as base64 in JSON (as telephony media streams send it). */
export const IngestAudioMessage = z.object({ type: z.literal('audio'), payload: z.string().max(4_000_000) });
export const IngestStopMessage = z.object({ type: z.literal('stop') });
export const IngestMessageSchema = z.discriminatedUnion('type', [IngestStartMessage, IngestAudioMessage, IngestStopMessage]);
export type IngestMessage = z.infer<typeof IngestMessageSchema>;

/** Server → publisher acknowledgements. */
export const IngestReplySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), streamId: z.string(), version: z.string() }),
  z.object({
    type: z.literal('error'),
    code: z.string(),
    message: z.string(),
    recoverable: z.boolean(),
    frame: z.number().optional(),
    reason: z.string().optional(),
  }),
  z.object({
    type: z.literal('stopped'),
    streamId: z.string(),
    framesAccepted: z.number().int().nonnegative(),
    framesRejected: z.number().int().nonnegative(),
    /** Samples that were NaN/Inf (f32le) and were replaced by 0. */
    samplesNonFinite: z.number().int().nonnegative().optional(),
    /** Samples at or beyond full scale (clipped). */
    samplesClipped: z.number().int().nonnegative().optional(),
    /** 16 kHz mono samples the stream got from this publisher (after resampling and downmix). */
    samplesOut: z.number().int().nonnegative().optional(),
  }),
]);
export type IngestReply = z.infer<typeof IngestReplySchema>;

/** Parses a server message, throwing a readable error. */
export function parseServerMessage(data: string): ServerMessage {
  return ServerMessageSchema.parse(JSON.parse(data));
}
