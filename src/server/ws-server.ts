/**
 * AffectServer: one HTTP(S) server on one port serving
 * - `/v1/stream` — WebSocket subscribers (subprotocol `circumplex.v1`),
 * - `/v1/ingest` — WebSocket audio publishers (see ingest.ts),
 * - `/healthz`, `/metrics` (Prometheus), and the dashboard (`/`, `/vendor/chart.umd.js`).
 *
 * Security: binds 127.0.0.1 unless told otherwise; tokens with scopes and the origin allowlist are
 * checked in the HTTP upgrade before a WebSocket opens (401/403); `maxPayload` per endpoint;
 * per-connection message rate limits (close 4029); optional TLS.
 * Delivery: ping/pong heartbeat (dead peers terminated), per-socket buffer caps with affect
 * coalescing and a 4008 close for slow consumers, resume from the hub's ring.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { Subject, type Observable, type OperatorFunction, type Subscription, tap } from 'rxjs';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import {
  CLOSE_CODES,
  ClientMessageSchema,
  INGEST_PATH,
  PROTOCOL_VERSION,
  STREAM_PATH,
  SUBPROTOCOL,
  type IngestReply,
} from '../../clients/protocol.js';
import type { AudioChunk, PipelineEvent } from '../../streams/types.js';
import { PIPELINE_SAMPLE_RATE_HZ, samplesToMs } from '../../streams/types.js';
import { REPO_ROOT } from '../config.js';
import { AffectError, toAffectError } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { Authenticator, Grant, isFailure, type AuthFailure, type TokenEntry } from './auth.js';
import { StreamHub, type OpenStreamInfo } from './hub.js';
import { IngestSession, type IngestFormat } from './ingest.js';
import { ServerMetrics } from './metrics.js';
import { DEFAULT_DELIVERY, Subscriber, closeSlow, type DeliveryOptions } from './subscriber.js';

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
  /** The hub to serve (default: a new one with `ringSize`). */
  hub: StreamHub | undefined;
  /** Resume ring per stream (messages). Default 2048. */
  ringSize: number;
  /** Accepted tokens; empty = no auth (the server warns when not on loopback). */
  tokens: TokenEntry[];
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

/** A running server. */
export interface RunningServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** `ws://host:port/v1/stream` (or wss). */
  readonly url: string;
  /** `http://host:port/` (or https): the dashboard. */
  readonly httpUrl: string;
  readonly hub: StreamHub;
  readonly metrics: ServerMetrics;
  /** Server instance id, sent in `hello`. */
  readonly sessionId: string;
  /**
   * Publishes a pipeline's events on a stream (opens it; ends it when the pipeline completes or
   * fails). Returns the subscription (unsubscribe to stop early).
   */
  attach(info: OpenStreamInfo, events$: Observable<PipelineEvent>, endMessage?: string, onDone?: (err?: AffectError) => void): Subscription;
  /** Operator that records when audio arrives, for the inference-latency histogram. Put it before the pipeline. */
  markArrivals(streamId: string): OperatorFunction<AudioChunk, AudioChunk>;
  /** Publishes one event on an open stream; invalid values are dropped and counted, never thrown. */
  publish(streamId: string, event: PipelineEvent): void;
  /** Per-subscriber delivery state (for /healthz, tests and debugging). */
  subscriberStats(): { bufferedBytes: number; pendingFrames: number; closed: boolean }[];
  /** Stops accepting, closes clients with 1001, waits at most closeTimeoutMs, then terminates the rest. */
  close(reason?: string): Promise<void>;
}

class TokenBucket {
  private tokens: number;
  private last = performance.now();
  constructor(private readonly limit: RateLimit) {
    this.tokens = limit.burst;
  }
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function validate(o: AffectServerOptions): void {
  const positive = (name: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`AffectServer: ${name} must be > 0, got ${v}`);
  };
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError(`AffectServer: port must be an integer in 0..65535, got ${o.port}`);
  positive('streamMaxPayloadBytes', o.streamMaxPayloadBytes);
  positive('ingestMaxPayloadBytes', o.ingestMaxPayloadBytes);
  positive('heartbeatMs', o.heartbeatMs);
  // Node turns a timer delay above 2^31-1 into 1 ms: a ping every millisecond that drops every peer.
  if (o.heartbeatMs > 2 ** 31 - 1) throw new RangeError(`AffectServer: heartbeatMs must be <= ${2 ** 31 - 1}, got ${o.heartbeatMs}`);
  positive('flushIntervalMs', o.flushIntervalMs);
  positive('closeTimeoutMs', o.closeTimeoutMs);
  positive('streamRateLimit.perSec', o.streamRateLimit.perSec);
  positive('streamRateLimit.burst', o.streamRateLimit.burst);
  positive('ingestRateLimit.perSec', o.ingestRateLimit.perSec);
  positive('ingestRateLimit.burst', o.ingestRateLimit.burst);
  positive('delivery.softBufferBytes', o.delivery.softBufferBytes);
  if (!(o.delivery.hardBufferBytes > o.delivery.softBufferBytes)) {
    throw new RangeError(`AffectServer: delivery.hardBufferBytes must be > softBufferBytes, got ${o.delivery.hardBufferBytes} <= ${o.delivery.softBufferBytes}`);
  }
}

/** Writes a plain HTTP refusal on an upgrade socket and closes it. */
function refuseUpgrade(socket: Duplex, status: number, message: string, extra: Record<string, string> = {}): void {
  const text = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  const body = JSON.stringify({ error: message });
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...extra };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${head}\r\n\r\n${body}`);
}

/** The WebSocket affect server. */
export const AffectServer = {
  /** Starts the server and resolves once it listens. */
  async start(options: Partial<AffectServerOptions> = {}): Promise<RunningServer> {
    const o: AffectServerOptions = {
      ...DEFAULT_AFFECT_SERVER,
      ...options,
      delivery: { ...DEFAULT_DELIVERY, ...options.delivery },
    };
    validate(o);
    const log = (o.logger ?? getLogger()).child({ component: 'server' });
    const hub = o.hub ?? new StreamHub({ ringSize: o.ringSize });
    const metrics = new ServerMetrics();
    const auth = new Authenticator({ tokens: o.tokens, allowedOrigins: o.allowedOrigins });
    const sessionId = randomUUID();
    const startedAt = Date.now();
    const subscribers = new Set<Subscriber>();
    const publishers = new Map<string, WebSocket>();
    const sockets = new Set<WebSocket>();
    const alive = new WeakMap<WebSocket, boolean>();
    const streamLogs = new Map<string, Logger>();
    /** Per-stream wall times of audio arrivals: [audio ms at chunk end, performance.now()], bounded. */
    const arrivals = new Map<string, [number, number][]>();
    let closing: Promise<void> | undefined;

    if (!LOOPBACK.has(o.host) && !auth.enabled) {
      log.warn({ host: o.host }, 'serving on a non-loopback interface WITHOUT tokens: anyone who can reach it can subscribe and publish; set CIRCUMPLEX_TOKENS or --tokens-file');
    }

    const streamLog = (id: string): Logger => {
      let l = streamLogs.get(id);
      if (!l) streamLogs.set(id, (l = log.child({ streamId: id })));
      return l;
    };

    hub.onListenerError = (err) => log.error({ err }, 'hub listener failed');
    const offHub = hub.subscribe((ev) => {
      if (ev.type === 'message') {
        metrics.framesPublished.inc({ type: ev.message.type });
        for (const s of subscribers) s.deliver(ev.message);
      } else if (ev.type === 'stream') {
        streamLog(ev.stream.streamId).info({ stream: ev.stream }, 'stream opened');
        for (const s of subscribers) if (s.wants(ev.stream.streamId)) s.sendControl({ type: 'stream', stream: ev.stream });
      } else {
        streamLog(ev.streamId).info('stream ended');
        streamLogs.delete(ev.streamId);
      }
    });

    const publish = (streamId: string, event: PipelineEvent): void => {
      try {
        const msg = hub.publish(streamId, event);
        if (msg.type === 'affect') {
          if (msg.droppedWindows > 0) metrics.framesDropped.inc({ reason: 'pipeline' }, msg.droppedWindows);
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
        streamLog(streamId)[ended ? 'debug' : 'error']({ err: e }, 'dropped a frame the hub refused');
      }
    };

    const attach = (info: OpenStreamInfo, events$: Observable<PipelineEvent>, endMessage = 'stream ended', onDone?: (err?: AffectError) => void): Subscription => {
      hub.openStream(info);
      const l = streamLog(info.streamId);
      return events$.subscribe({
        next: (ev) => publish(info.streamId, ev),
        error: (err: unknown) => {
          const e = toAffectError(err);
          l.error({ err: e, code: e.code }, 'pipeline failed');
          publish(info.streamId, { kind: 'status', streamId: info.streamId, tMs: lastT(info.streamId), state: 'error', message: `${e.code}: ${e.message}` });
          for (const s of subscribers) if (s.wants(info.streamId)) s.sendControl({ type: 'error', code: e.code, message: e.message, recoverable: false, streamId: info.streamId });
          hub.endStream(info.streamId, 'ended after an error');
          arrivals.delete(info.streamId);
          onDone?.(e);
        },
        complete: () => {
          hub.endStream(info.streamId, endMessage);
          arrivals.delete(info.streamId);
          onDone?.();
        },
      });
    };

    const lastT = (streamId: string): number => {
      const last = hub.since(streamId, (hub.stream(streamId)?.lastSeq ?? 0) - 1).messages.at(-1);
      return last?.tMs ?? 0;
    };

    const markArrivals = (streamId: string): OperatorFunction<AudioChunk, AudioChunk> =>
      tap((c) => {
        let arr = arrivals.get(streamId);
        if (!arr) arrivals.set(streamId, (arr = []));
        arr.push([samplesToMs(c.startSample + c.samples.length), performance.now()]);
        // Bounded: about a minute of 20 ms chunks.
        if (arr.length > 4096) arr.splice(0, arr.length - 4096);
      });

    // ---- HTTP: health, metrics, dashboard -------------------------------------------------
    const dashboardDir = path.resolve(o.dashboardDir);
    const chartJs = path.join(REPO_ROOT, 'node_modules', 'chart.js', 'dist', 'chart.umd.js');
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const url = new URL(req.url ?? '/', 'http://x');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
      if (url.pathname === '/healthz') {
        return json(closing ? 503 : 200, {
          status: closing ? 'shutting-down' : 'ok',
          version: PROTOCOL_VERSION,
          sessionId,
          uptimeS: Math.round((Date.now() - startedAt) / 1000),
          streams: hub.streams(),
          subscribers: subscribers.size,
          publishers: publishers.size,
          memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
        });
      }
      if (url.pathname === '/metrics') {
        const grant = auth.verify(req);
        if (isFailure(grant)) {
          metrics.refused.inc({ reason: grant.reason });
          return json(grant.status, { error: grant.message });
        }
        if (!grant.canReadMetrics()) return json(403, { error: 'token lacks the "metrics" scope' });
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
          (err: unknown) => json(500, { error: String(err) }),
        );
        return;
      }
      let file: string;
      if (url.pathname === '/vendor/chart.umd.js') file = chartJs;
      else {
        const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
        file = path.resolve(dashboardDir, '.' + rel);
        // Never serve outside the dashboard folder (../ tricks).
        if (!file.startsWith(dashboardDir + path.sep)) return json(404, { error: 'not found' });
      }
      let size: number;
      try {
        const st = statSync(file);
        if (!st.isFile()) return json(404, { error: 'not found' });
        size = st.size;
      } catch {
        return json(404, { error: 'not found' });
      }
      res.writeHead(200, { 'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': size, 'Cache-Control': 'no-cache' });
      if (req.method === 'HEAD') return void res.end();
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    };

    const server = o.tls
      ? https.createServer({ cert: readTls(o.tls.certFile, 'certificate'), key: readTls(o.tls.keyFile, 'key') }, onRequest)
      : http.createServer(onRequest);

    // ---- WebSockets -----------------------------------------------------------------------
    const handleProtocols = (protocols: Set<string>): string | false => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false);
    const streamWss = new WebSocketServer({ noServer: true, maxPayload: o.streamMaxPayloadBytes, perMessageDeflate: false, handleProtocols, clientTracking: false });
    // Ingest skips ws's UTF-8 check so a text frame with bad bytes costs that frame (bad-json), not the call.
    const ingestWss = new WebSocketServer({ noServer: true, maxPayload: o.ingestMaxPayloadBytes, perMessageDeflate: false, handleProtocols, clientTracking: false, skipUTF8Validation: true });

    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      const url = new URL(req.url ?? '/', 'http://x');
      const refuse = (f: AuthFailure | { status: 404 | 503; reason: string; message: string }) => {
        metrics.refused.inc({ reason: f.reason });
        log.warn({ path: url.pathname, reason: f.reason, origin: req.headers.origin, remote: req.socket.remoteAddress }, 'upgrade refused');
        refuseUpgrade(socket, f.status, f.message, f.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
      };
      if (closing) return refuse({ status: 503, reason: 'shutting-down', message: 'server is shutting down' });
      const isStream = url.pathname === STREAM_PATH;
      if (!isStream && url.pathname !== INGEST_PATH) return refuse({ status: 404, reason: 'path', message: `no WebSocket endpoint at ${url.pathname}` });
      const badOrigin = auth.checkOrigin(req);
      if (badOrigin) return refuse(badOrigin);
      const grant = auth.verify(req);
      if (isFailure(grant)) return refuse(grant);
      if (isStream ? !grant.canSubscribeSome() : !grant.canPublishSome()) {
        return refuse({ status: 403, reason: 'scope', message: `token lacks the "${isStream ? 'subscribe' : 'publish'}" scope` });
      }
      const wss = isStream ? streamWss : ingestWss;
      wss.handleUpgrade(req, socket, head, (ws) => (isStream ? onSubscriber(ws, grant, url) : onPublisher(ws, grant)));
    });

    const track = (ws: WebSocket, endpoint: 'stream' | 'ingest') => {
      sockets.add(ws);
      alive.set(ws, true);
      metrics.connections.inc({ endpoint });
      ws.on('pong', () => alive.set(ws, true));
      ws.on('error', (err) => log.debug({ err, endpoint }, 'socket error'));
      ws.once('close', (code) => {
        sockets.delete(ws);
        metrics.connections.dec({ endpoint });
        metrics.closes.inc({ endpoint, reason: closeReason(code) });
      });
    };

    const onSubscriber = (ws: WebSocket, grant: Grant, url: URL): void => {
      track(ws, 'stream');
      const sub = new Subscriber(ws, grant, o.delivery, metrics, (s, why) => {
        log.warn({ why }, 'closing slow subscriber');
        closeSlow(s, o.delivery.slowCloseGraceMs);
      });
      subscribers.add(sub);
      ws.once('close', () => {
        sub.markClosed();
        subscribers.delete(sub);
      });
      const bucket = new TokenBucket(o.streamRateLimit);
      const visible = hub.streams().filter((s) => grant.canSubscribe(s.streamId));
      sub.sendControl({ type: 'hello', version: PROTOCOL_VERSION, sessionId, hopMs: visible[0]?.hopMs ?? o.ingestStreamTiming.hopMs, streams: visible });
      // `?streams=a,b` or `?streams=*` subscribes at connect (for tools that cannot send a message).
      const q = url.searchParams.get('streams');
      if (q) subscribe(sub, q.split(',').filter(Boolean), undefined);

      ws.on('message', (data: RawData, isBinary: boolean) => {
        alive.set(ws, true);
        if (sub.closed) return;
        if (!bucket.take()) return rateLimited(ws, 'stream');
        const fail = (message: string) => {
          sub.sendControl({ type: 'error', code: 'AFFECT_ERR_PROTOCOL', message, recoverable: false });
          sub.markClosed();
          ws.close(CLOSE_CODES.protocolError, 'protocol error');
        };
        if (isBinary) return fail('binary frames are not accepted on /v1/stream; send JSON subscribe/unsubscribe');
        let json: unknown;
        try {
          json = JSON.parse(toText(data));
        } catch {
          return fail('message is not valid JSON');
        }
        const parsed = ClientMessageSchema.safeParse(json);
        if (!parsed.success) {
          return fail(`not a client message (subscribe | unsubscribe): ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ')}`);
        }
        const msg = parsed.data;
        if (msg.type === 'subscribe') subscribe(sub, msg.streamIds, msg.resumeFrom);
        else for (const id of msg.streamIds) id === '*' ? (sub.wildcard = false) : sub.ids.delete(id);
      });
    };

    const subscribe = (sub: Subscriber, ids: string[], resumeFrom: Record<string, number> | undefined): void => {
      for (const id of ids) {
        if (id === '*') sub.wildcard = true;
        else if (sub.grant.canSubscribe(id)) sub.ids.add(id);
        else sub.sendControl({ type: 'error', code: 'AFFECT_ERR_AUTH', message: `token may not subscribe to stream "${id}"`, recoverable: true, streamId: id });
      }
      for (const [id, from] of Object.entries(resumeFrom ?? {})) {
        if (sub.wants(id)) sub.resume(hub, id, from);
      }
    };

    const rateLimited = (ws: WebSocket, endpoint: string) => {
      log.warn({ endpoint }, 'closing a connection over its message rate limit');
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'error', code: 'AFFECT_ERR_RATE_LIMIT', message: 'too many messages per second', recoverable: false }));
        ws.close(CLOSE_CODES.rateLimited, 'rate limited');
      }
    };

    const onPublisher = (ws: WebSocket, grant: Grant): void => {
      track(ws, 'ingest');
      const session = new IngestSession({ canPublish: (id) => grant.canPublish(id) });
      const bucket = new TokenBucket(o.ingestRateLimit);
      let audio$: Subject<AudioChunk> | undefined;
      let streamId: string | undefined;
      let limited = false;
      const reply = (r: IngestReply) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(r));
      };
      const finish = (message: string) => {
        if (!audio$ || !streamId) return;
        const s = audio$;
        audio$ = undefined;
        if (publishers.get(streamId) === ws) publishers.delete(streamId);
        streamLog(streamId).info({ stats: session.stats }, message);
        // Completing the audio lets the pipeline flush its last window; attach() then ends the stream.
        s.complete();
      };
      ws.on('close', () => {
        // A publisher that vanished without `stop`: still deliver the resampler's tail.
        for (const a of session.finish()) if (a.kind === 'audio') audio$?.next({ streamId: streamId ?? '', startSample: a.startSample, samples: a.samples });
        finish('publisher disconnected');
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        alive.set(ws, true);
        if (limited) return;
        if (!bucket.take()) {
          limited = true;
          return rateLimited(ws, 'ingest');
        }
        const before = [session.stats.samplesNonFinite, session.stats.samplesClipped, session.stats.framesAccepted] as const;
        for (const a of session.handle(toBytes(data), isBinary)) {
          switch (a.kind) {
            case 'reply':
              reply(a.reply);
              break;
            case 'reject':
              metrics.ingestFrames.inc({ result: 'rejected' });
              metrics.ingestRejected.inc({ reason: a.reason });
              break;
            case 'start': {
              const busy = publishers.get(a.streamId);
              if (busy && busy !== ws) {
                reply({ type: 'error', code: 'AFFECT_ERR_PROTOCOL', reason: 'stream-busy', message: `stream "${a.streamId}" already has a publisher`, recoverable: false });
                ws.close(CLOSE_CODES.policy, 'stream busy');
                return;
              }
              if (!o.onIngestStream) {
                reply({ type: 'error', code: 'AFFECT_ERR_CONFIG', reason: 'no-pipeline', message: 'this server has no pipeline for ingest streams', recoverable: false });
                ws.close(CLOSE_CODES.internalError, 'no pipeline');
                return;
              }
              publishers.set(a.streamId, ws);
              streamId = a.streamId;
              const subject = new Subject<AudioChunk>();
              audio$ = subject;
              let events$: Observable<PipelineEvent>;
              try {
                events$ = o.onIngestStream(a.streamId, subject.pipe(markArrivals(a.streamId)), a.format);
              } catch (err) {
                const e = toAffectError(err);
                reply({ type: 'error', code: e.code, message: e.message, recoverable: false });
                ws.close(CLOSE_CODES.internalError, 'pipeline failed');
                return;
              }
              attach({ streamId: a.streamId, sampleRateHz: PIPELINE_SAMPLE_RATE_HZ, ...o.ingestStreamTiming }, events$, 'publisher stopped', (e) => {
                // The pipeline failed (e.g. inference error): tell the publisher and stop taking its audio.
                if (!e || ws.readyState !== ws.OPEN) return;
                audio$ = undefined;
                if (publishers.get(a.streamId) === ws) publishers.delete(a.streamId);
                reply({ type: 'error', code: e.code, message: e.message, recoverable: false });
                ws.close(CLOSE_CODES.internalError, 'pipeline failed');
              });
              streamLog(a.streamId).info({ format: a.format }, 'publisher started');
              break;
            }
            case 'audio':
              audio$?.next({ streamId: streamId ?? '', startSample: a.startSample, samples: a.samples });
              break;
            case 'stop':
              finish('publisher stopped');
              setImmediate(() => ws.close(CLOSE_CODES.normal, 'stopped'));
              break;
          }
        }
        const nf = session.stats.samplesNonFinite - before[0];
        const cl = session.stats.samplesClipped - before[1];
        const ok = session.stats.framesAccepted - before[2];
        if (ok > 0) metrics.ingestFrames.inc({ result: 'accepted' }, ok);
        if (nf > 0) metrics.ingestSamplesRepaired.inc({ kind: 'non_finite' }, nf);
        if (cl > 0) metrics.ingestSamplesRepaired.inc({ kind: 'clipped' }, cl);
      });
    };

    // ---- timers -----------------------------------------------------------------------------
    const heartbeat = setInterval(() => {
      for (const ws of sockets) {
        if (alive.get(ws) === false) {
          log.info('terminating a peer that missed its pong');
          metrics.closes.inc({ endpoint: 'any', reason: 'dead-peer' });
          ws.terminate();
          continue;
        }
        alive.set(ws, false);
        try {
          ws.ping();
        } catch {
          ws.terminate();
        }
      }
    }, o.heartbeatMs);
    heartbeat.unref();
    const flusher = setInterval(() => {
      for (const s of subscribers) if (s.hasPending || !s.closed) s.flush();
    }, o.flushIntervalMs);
    flusher.unref();

    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new AffectError('AFFECT_ERR_CONFIG', `cannot listen on ${o.host}:${o.port}: ${err.code ?? err.message}`, {
            cause: err,
            hint: err.code === 'EADDRINUSE' ? 'another process uses that port; pick another with --port' : 'check --host and --port',
          }),
        ),
      );
      server.listen(o.port, o.host, () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : o.port;
    const hostForUrl = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
    const url = `${o.tls ? 'wss' : 'ws'}://${hostForUrl}:${port}${STREAM_PATH}`;
    const httpUrl = `${o.tls ? 'https' : 'http'}://${hostForUrl}:${port}/`;
    log.info({ url, httpUrl, auth: auth.enabled, tls: Boolean(o.tls) }, 'listening');

    const close = (reason = 'server shutting down'): Promise<void> => {
      closing ??= (async () => {
        clearInterval(heartbeat);
        clearInterval(flusher);
        // Stop accepting: no new connections; upgrades that race in get 503 from the handler.
        server.close();
        // Publishers first, so their streams end (status 'ended') while subscribers still listen.
        for (const ws of publishers.values()) ws.close(CLOSE_CODES.goingAway, reason);
        for (const ws of sockets) ws.close(CLOSE_CODES.goingAway, reason);
        const deadline = Date.now() + o.closeTimeoutMs;
        while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        for (const ws of sockets) ws.terminate();
        offHub();
        streamWss.close();
        ingestWss.close();
        server.closeAllConnections();
        log.info('closed');
      })();
      return closing;
    };

    return {
      port,
      url,
      httpUrl,
      hub,
      metrics,
      sessionId,
      attach,
      markArrivals,
      publish: (id, ev) => publish(id, ev),
      subscriberStats: () => [...subscribers].map((s) => s.stats()),
      close,
    };
  },
};

function readTls(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_CONFIG', `cannot read TLS ${what} ${file}: ${(err as Error).message}`, { cause: err, hint: 'pass PEM files with --tls-cert and --tls-key' });
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

function toText(data: RawData): string {
  return Buffer.from(toBytes(data)).toString('utf8');
}

function closeReason(code: number): string {
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
    case 1006:
      return 'abnormal';
    default:
      return String(code);
  }
}
