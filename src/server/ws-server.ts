/**
 * AffectServer: one HTTP(S) server on one port serving
 * - `/v1/stream` — WebSocket subscribers (subprotocol `circumplex.v1`),
 * - `/v1/ingest` — WebSocket audio publishers (see ingest.ts),
 * - `/v1/telephony/twilio` — Twilio Media Streams, one stream per call track (handlers/twilio.ts),
 * - `/healthz` (liveness), `/readyz` (readiness: room for a new ingest stream), `/metrics` (Prometheus), and the dashboard (`/`, `/vendor/chart.umd.js`).
 *
 * Security: binds 127.0.0.1 unless told otherwise; tokens with scopes and the origin allowlist are
 * checked in the HTTP upgrade before a WebSocket opens (401/403); `maxPayload` per endpoint;
 * per-connection message rate limits (close 4029); optional TLS.
 * Delivery: ping/pong heartbeat (dead peers terminated), per-socket buffer caps with affect
 * coalescing and a 4008 close for slow consumers, resume from the hub's ring.
 *
 * This file assembles the server; each endpoint has its own handler module in ./handlers
 * (http-routes, static, upgrade, subscribe, ingest, fan-out, shutdown), sharing one
 * {@link ServerContext}. The hub is the in-process {@link StreamHub} by default, or any {@link Hub}
 * (a cluster hub such as `RedisHub` shares streams between nodes).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { networkInterfaces } from 'node:os';
import type { Observable, OperatorFunction, Subscription } from 'rxjs';
import { WebSocketServer } from 'ws';
import { STREAM_PATH, SUBPROTOCOL } from '../../core/protocol.js';
import type { AudioChunk, PipelineEvent } from '../../core/types.js';
import { AffectError } from '../../core/errors.js';
import { getLogger } from '../../core/log.js';
import { Authenticator, isLoopbackHost } from './auth.js';
import { createContext, type ServerContext } from './context.js';
import { createFanOut } from './handlers/fan-out.js';
import { createRequestHandler } from './handlers/http-routes.js';
import { createPublisherHandler } from './handlers/ingest.js';
import { createTwilioHandler } from './handlers/twilio.js';
import { limitPendingConnections } from './handlers/pending.js';
import { createShutdown, startLiveness } from './handlers/shutdown.js';
import { createStaticHandler } from './handlers/static.js';
import { createSubscriberHandler } from './handlers/subscribe.js';
import { createUpgradeHandler } from './handlers/upgrade.js';
import { StreamHub, type Hub, type OpenStreamInfo } from './hub.js';
import { ServerMetrics } from './metrics.js';
import { assertExposureAllowed, DEFAULT_AFFECT_SERVER, validateServerOptions, type AffectServerOptions } from './options.js';
import { DEFAULT_DELIVERY } from './subscriber.js';

export { DEFAULT_AFFECT_SERVER, type AffectServerOptions, type IngestStreamHook, type RateLimit } from './options.js';

/** A running server. */
export interface RunningServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** `ws://host:port/v1/stream` (or wss). */
  readonly url: string;
  /** `http://host:port/` (or https): the dashboard. */
  readonly httpUrl: string;
  /** The stream URL on the address actually bound, e.g. `ws://0.0.0.0:8787/v1/stream` for `--host 0.0.0.0`. */
  readonly boundUrl: string;
  /** Stream URLs on every interface the bound address covers (one per local address for a wildcard). */
  readonly interfaceUrls: readonly string[];
  /** For startup lines: the bound URL, plus the interfaces for a wildcard bind. */
  readonly listening: string;
  readonly hub: Hub;
  readonly metrics: ServerMetrics;
  /** Server instance id, sent in `hello`. */
  readonly sessionId: string;
  /**
   * Publishes a pipeline's events on a stream (opens it; ends it when the pipeline completes or
   * fails). Returns the subscription: unsubscribe to stop early, which ends the stream too (status
   * 'ended' with `endMessage`). `close()` does not stop attached pipelines: unsubscribe yours.
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

/** The WebSocket affect server. */
export const AffectServer = {
  /** Starts the server and resolves once it listens. */
  async start(options: Partial<AffectServerOptions> = {}): Promise<RunningServer> {
    const o: AffectServerOptions = {
      ...DEFAULT_AFFECT_SERVER,
      ...options,
      delivery: { ...DEFAULT_DELIVERY, ...options.delivery },
    };
    validateServerOptions(o);
    // Protected mode: off loopback, tokens or an explicit `insecure`.
    assertExposureAllowed(o.host, o.tokens.length > 0, o.insecure);
    const log = (o.logger ?? getLogger()).child({ component: 'server' });
    const hub = o.hub ?? new StreamHub({ ringSize: o.ringSize });
    const auth = new Authenticator({ tokens: o.tokens, allowedOrigins: o.allowedOrigins, loopbackBind: isLoopbackHost(o.host) });
    const sessionId = randomUUID();
    const ctx: ServerContext = createContext({ o, log, hub, metrics: new ServerMetrics(), auth, sessionId });
    ctx.metrics.watchBackplane(() => hub.backplane());

    if (!isLoopbackHost(o.host) && !auth.enabled) {
      log.warn(
        { host: o.host },
        'serving on a non-loopback interface WITHOUT tokens (--insecure): anyone who can reach it can subscribe and publish; set CIRCUMPLEX_TOKENS or --tokens-file',
      );
    }

    const onRequest = createRequestHandler(ctx, createStaticHandler(o.dashboardDir));
    const server = o.tls
      ? https.createServer({ cert: readTls(o.tls.certFile, 'certificate'), key: readTls(o.tls.keyFile, 'key') }, onRequest)
      : http.createServer(onRequest);
    limitPendingConnections(server, ctx);
    // After anything that may throw but listen (TLS files): a failed start must not leave this listener on a given hub.
    const fanOut = createFanOut(ctx);

    const handleProtocols = (protocols: Set<string>): string | false => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false);
    const streamWss = new WebSocketServer({
      noServer: true,
      maxPayload: o.streamMaxPayloadBytes,
      perMessageDeflate: false,
      handleProtocols,
      clientTracking: false,
    });
    // Ingest skips ws's UTF-8 check so a text frame with bad bytes costs that frame (bad-json), not the call.
    const ingestWss = new WebSocketServer({
      noServer: true,
      maxPayload: o.ingestMaxPayloadBytes,
      perMessageDeflate: false,
      handleProtocols,
      clientTracking: false,
      skipUTF8Validation: true,
    });
    const onPublisher = createPublisherHandler(ctx, fanOut);
    // Twilio Media Streams: JSON text frames, no subprotocol (handlers/twilio.ts).
    const twilioWss = new WebSocketServer({ noServer: true, maxPayload: o.ingestMaxPayloadBytes, perMessageDeflate: false, clientTracking: false });
    const onTwilio = createTwilioHandler(ctx, fanOut);
    server.on(
      'upgrade',
      createUpgradeHandler(ctx, {
        stream: { wss: streamWss, scope: 'subscribe', onConnection: createSubscriberHandler(ctx) },
        ingest: { wss: ingestWss, scope: 'publish', onConnection: (ws, grant) => onPublisher(ws, grant) },
        twilio: { wss: twilioWss, scope: 'publish', onConnection: (ws, grant) => onTwilio(ws, grant) },
      }),
    );
    try {
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
    } catch (err) {
      // Nothing of a server that never listened may go on running (a given hub stays the caller's).
      fanOut.stop();
      throw err;
    }
    // Started once listening: a start that failed (port in use) left its heartbeat and 25 ms flush
    // tick running for good, each holding the whole server.
    const stopTimers = startLiveness(ctx);
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : o.port;
    const hostForUrl = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
    const url = `${o.tls ? 'wss' : 'ws'}://${hostForUrl}:${port}${STREAM_PATH}`;
    const httpUrl = `${o.tls ? 'https' : 'http'}://${hostForUrl}:${port}/`;
    // What was actually bound: the address itself, and for a wildcard every interface it covers.
    const bound = typeof addr === 'object' && addr ? addr.address : o.host;
    const wsUrlFor = (h: string): string => `${o.tls ? 'wss' : 'ws'}://${h.includes(':') ? `[${h}]` : h}:${port}${STREAM_PATH}`;
    const wildcard = bound === '0.0.0.0' || bound === '::';
    const boundUrl = wsUrlFor(bound);
    const interfaceUrls = wildcard ? interfaceAddresses(bound === '::').map(wsUrlFor) : [boundUrl];
    log.info({ url, httpUrl, boundUrl, interfaceUrls, auth: auth.enabled, tls: Boolean(o.tls) }, 'listening');

    const close = createShutdown(ctx, { server, wss: [streamWss, ingestWss, twilioWss], stopTimers, stopFanOut: fanOut.stop });

    return {
      port,
      url,
      httpUrl,
      boundUrl,
      interfaceUrls,
      listening: wildcard ? `${boundUrl} (all interfaces: ${interfaceUrls.join(', ')})` : boundUrl,
      hub,
      metrics: ctx.metrics,
      sessionId,
      attach: fanOut.attach,
      markArrivals: fanOut.markArrivals,
      publish: (id, ev) => fanOut.publish(id, ev),
      subscriberStats: () => [...ctx.subscribers].map((s) => s.stats()),
      close,
    };
  },
};

function readTls(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_CONFIG', `cannot read TLS ${what} ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'pass PEM files with --tls-cert and --tls-key',
    });
  }
}

/** Local interface addresses (IPv4 only unless `ipv6`), loopback first. */
function interfaceAddresses(ipv6: boolean): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' || (ipv6 && a.family === 'IPv6' && !a.address.startsWith('fe80'))) out.push(a.address);
  }
  return out.sort((x, y) => Number(isLoopbackHost(y)) - Number(isLoopbackHost(x)));
}
