/**
 * Plain HTTP routes: `/healthz` (liveness, JSON; 503 while shutting down, `degraded` while a
 * backplane or the ASR host is down), `/readyz` (readiness for load balancers: 503 while shutting down or at
 * `--max-streams` capacity), `/metrics` (Prometheus, behind the `metrics` scope), everything else
 * to the static files.
 */
import type http from 'node:http';
import { PROTOCOL_VERSION } from '../../../core/protocol.js';
import { isFailure, requestUrl } from '../auth.js';
import type { ServerContext } from '../context.js';
import type { AsrCounters } from '../metrics.js';
import type { StaticHandler } from './static.js';

/**
 * Most streams listed by `/healthz` (live ones first). A load balancer polls it every few seconds:
 * with 3000 streams the body was 416 KB and took ~60 ms of the event loop to build, per probe.
 * `streamCount` still counts them all.
 */
export const MAX_HEALTHZ_STREAMS = 100;

/** Live ingest streams analysed here against `maxIngestStreams` (`serve --max-streams`), as `/healthz` and `/readyz` show them. */
export interface IngestCapacity {
  /** Ingest streams (Twilio tracks included) this node analyses now: what a new `start` is counted against. */
  ingestStreams: number;
  /** `serve --max-streams`, or null when unlimited. */
  maxIngestStreams: number | null;
}

/** The node's ingest capacity as the ingest and Twilio handlers count it (their publisher map). */
export function ingestCapacity(ctx: Pick<ServerContext, 'o' | 'publishers'>): IngestCapacity {
  return { ingestStreams: ctx.publishers.size, maxIngestStreams: ctx.o.maxIngestStreams ?? null };
}

/**
 * Why this node would refuse a new ingest stream now, or undefined when it takes one: shutting
 * down, no analysis pipeline (`replay`), or at `--max-streams` capacity (a `start` would be closed
 * with 4013; `streams` free slots are needed, 2 for a two-track call). `/healthz` stays 200
 * then (the node is alive and serves its streams); `/readyz` answers 503 so a load balancer sends
 * new calls elsewhere.
 */
export function notReadyReason(ctx: Pick<ServerContext, 'o' | 'publishers' | 'closing'>, streams = 1): string | undefined {
  if (ctx.closing) return 'shutting down';
  // `replay` and other servers without an analysis pipeline refuse every ingest start ('no-pipeline').
  if (!ctx.o.onIngestStream) return 'takes no ingest streams (no analysis pipeline: a replay or subscribe-only server)';
  const { ingestStreams, maxIngestStreams } = ingestCapacity(ctx);
  if (maxIngestStreams !== null && ingestStreams + streams > maxIngestStreams) {
    const need = streams === 1 ? '' : `; ${streams} needed`;
    return `at capacity: ${ingestStreams} of ${maxIngestStreams} ingest streams (--max-streams ${maxIngestStreams})${need}`;
  }
  return undefined;
}

/** Most slots `/readyz?streams=N` may ask for (a call of many tracks; beyond it the question is a typo). */
const MAX_READY_STREAMS = 64;

/** The speech recogniser's state as `/healthz` shows it (a server running with an ASR model). */
export interface AsrHealth {
  /** The ASR host runs with its model loaded. False while it is dead or restarting: streams then go on speech-only, and `/healthz` says `degraded`. */
  up: boolean;
  /** Hosts started after the first (restart attempts after a crash or a watchdog kill). */
  restarts: number;
  /** Hosts that died unasked (crash or watchdog kill). */
  hostDeaths: number;
  /** Of those, killed by the watchdog (libvosk hung). */
  watchdogKills: number;
  /** Why the last host died or a restart failed (operators only, as the backplane's details). */
  lastError?: string;
}

/** `/healthz`'s `asr` object from the ASR factory's counters; `lastError` only for `opsDetail`. */
export function asrHealth(c: AsrCounters, opsDetail: boolean): AsrHealth {
  return {
    up: c.hostUp,
    restarts: Math.max(0, c.hostsStarted - 1),
    hostDeaths: c.hostDeaths,
    watchdogKills: c.watchdogKills,
    ...(opsDetail && c.lastHostError !== undefined ? { lastError: c.lastHostError } : {}),
  };
}

/** The `request` listener of the server's HTTP(S) server. */
export function createRequestHandler(ctx: ServerContext, serveStatic: StaticHandler): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { hub, metrics, auth } = ctx;
  return (req, res) => {
    const url = requestUrl(req);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    if (!url) return json(400, { error: 'the request target is not a valid URL path' });
    // DNS rebinding: a loopback server without tokens answers only to loopback host names.
    const badHost = auth.checkHost(req);
    if (badHost) {
      metrics.refused.inc({ reason: badHost.reason });
      return json(badHost.status, { error: badHost.message });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
    if (url.pathname === '/healthz') {
      const backplane = hub.backplane();
      const asr = metrics.asrCounters();
      // A node whose backplane or speech recogniser is down still serves affect on its own streams
      // (speech-only without the recogniser): degraded, not down (200).
      const degraded = (backplane !== undefined && !backplane.up) || (asr !== undefined && !asr.hostUp);
      const status = ctx.closing ? 'shutting-down' : degraded ? 'degraded' : 'ok';
      // Health checks need no token, but with tokens configured the stream list (call ids) is only
      // what the caller's token may subscribe to, as in `hello`: none without a valid token.
      const grant = auth.enabled ? auth.verify(req) : undefined;
      const visible = hub.streams().filter((st) => !grant || (!isFailure(grant) && grant.canSubscribe(st.streamId)));
      const live = visible.filter((st) => st.state !== 'ended');
      const streams =
        visible.length <= MAX_HEALTHZ_STREAMS ? visible : [...live, ...visible.filter((st) => st.state === 'ended')].slice(0, MAX_HEALTHZ_STREAMS);
      // The backplane's details (the Redis host and port, node id, Redis's error text with addresses)
      // are for operators: with tokens configured, only a token that may read /metrics gets them;
      // anyone else (a load balancer's health check) gets its kind and whether it is up.
      const opsDetail = !grant || (!isFailure(grant) && grant.canReadMetrics());
      return json(ctx.closing ? 503 : 200, {
        status,
        version: PROTOCOL_VERSION,
        sessionId: ctx.sessionId,
        uptimeS: Math.round((Date.now() - ctx.startedAt) / 1000),
        streams,
        streamCount: { live: live.length, ended: visible.length - live.length },
        ...(streams.length < visible.length ? { streamsTruncated: true } : {}),
        subscribers: ctx.subscribers.size,
        publishers: ctx.publishers.size,
        capacity: ingestCapacity(ctx),
        ...(backplane ? { backplane: opsDetail ? backplane : { kind: backplane.kind, up: backplane.up } } : {}),
        ...(asr ? { asr: asrHealth(asr, opsDetail) } : {}),
        memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      });
    }
    if (url.pathname === '/readyz') {
      // Readiness, not liveness: may this node be given a new call? Like /healthz it needs no token
      // (a load balancer has none), and it lists no streams.
      // `?streams=N`: ready only with N free slots (a Twilio call needs 2, one per track). Default 1.
      const asked = url.searchParams.get('streams');
      const streams = asked === null ? 1 : Number(asked);
      if (!(Number.isInteger(streams) && streams >= 1 && streams <= MAX_READY_STREAMS)) {
        return json(400, {
          error: `/readyz?streams= must be an integer from 1 to ${MAX_READY_STREAMS} (free ingest slots needed, e.g. 2 for a two-track call), got ${JSON.stringify(asked)}`,
        });
      }
      const reason = notReadyReason(ctx, streams);
      const capacity = ingestCapacity(ctx);
      return reason === undefined ? json(200, { ready: true, capacity }) : json(503, { ready: false, reason, capacity });
    }
    if (url.pathname === '/metrics') {
      const grant = auth.verify(req);
      if (isFailure(grant)) {
        metrics.refused.inc({ reason: grant.reason });
        return json(grant.status, { error: grant.message });
      }
      if (!grant.canReadMetrics()) {
        // Counted like the other refusals (a scraper set up with the wrong token shows up here).
        metrics.refused.inc({ reason: 'scope' });
        return json(403, { error: 'token lacks the "metrics" scope' });
      }
      metrics.render().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
        (err: unknown) => json(500, { error: String(err) }),
      );
      return;
    }
    serveStatic(req, res, url);
  };
}
