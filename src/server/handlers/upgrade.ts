/**
 * The HTTP upgrade: path routing, Host (DNS rebinding) and browser-origin checks, token and scope, all before a WebSocket
 * opens (401/403/404, 503 while shutting down). A refused upgrade is counted and logged, never with
 * the token.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { INGEST_PATH, STREAM_PATH } from '../../../core/protocol.js';
import { type AuthFailure, type Grant, isFailure, requestUrl } from '../auth.js';
import type { ServerContext } from '../context.js';
import { TWILIO_PATH } from './twilio.js';

/** One WebSocket endpoint: its ws server (noServer) and what to do with an accepted socket. */
export interface UpgradeRoute {
  readonly wss: WebSocketServer;
  /** The scope a token needs for this endpoint. */
  readonly scope: 'subscribe' | 'publish';
  readonly onConnection: (ws: WebSocket, grant: Grant, url: URL) => void;
}

/** Refused upgrades logged one by one per window; the rest are summed up in one line when it ends. */
export const REFUSAL_LOGS_PER_WINDOW = 20;
/** The window (ms) of {@link REFUSAL_LOGS_PER_WINDOW}. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

/** Writes a plain HTTP refusal on an upgrade socket and closes it. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, extra: Record<string, string> = {}): void {
  const text = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  const body = JSON.stringify({ error: message });
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...extra };
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${head}\r\n\r\n${body}`);
}

/** The `upgrade` listener: routes `/v1/stream`, `/v1/ingest` and `/v1/telephony/twilio` to their handlers once allowed. */
export function createUpgradeHandler(
  ctx: ServerContext,
  routes: { stream: UpgradeRoute; ingest: UpgradeRoute; twilio?: UpgradeRoute },
): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { auth, metrics, log } = ctx;
  // Anyone can send refused upgrades as fast as they can connect: one warning each let one client
  // write megabytes of log a second (synchronously, to stderr) and bury everything else in it.
  let logged = 0;
  let suppressed: Record<string, number> = {};
  let windowTimer: NodeJS.Timeout | undefined;
  const logRefusal = (fields: Record<string, unknown>) => {
    if (!windowTimer) {
      windowTimer = setTimeout(() => {
        windowTimer = undefined;
        logged = 0;
        const counts = suppressed;
        suppressed = {};
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        if (total > 0) log.warn({ suppressed: total, reasons: counts, windowMs: REFUSAL_LOG_WINDOW_MS }, 'more upgrades refused (not logged one by one)');
      }, REFUSAL_LOG_WINDOW_MS);
      windowTimer.unref();
    }
    if (logged < REFUSAL_LOGS_PER_WINDOW) {
      logged++;
      log.warn(fields, 'upgrade refused');
    } else {
      const reason = String(fields.reason);
      suppressed[reason] = (suppressed[reason] ?? 0) + 1;
    }
  };
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = requestUrl(req);
    const refuse = (f: AuthFailure | { status: 400 | 404 | 503; reason: string; message: string }) => {
      metrics.refused.inc({ reason: f.reason });
      logRefusal({ path: url?.pathname, reason: f.reason, origin: req.headers.origin, remote: req.socket.remoteAddress });
      refuseUpgrade(socket, f.status, f.message, f.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
    };
    if (ctx.closing) return refuse({ status: 503, reason: 'shutting-down', message: 'server is shutting down' });
    if (!url) return refuse({ status: 400, reason: 'bad-url', message: 'the request target is not a valid URL path' });
    const route =
      url.pathname === STREAM_PATH ? routes.stream : url.pathname === INGEST_PATH ? routes.ingest : url.pathname === TWILIO_PATH ? routes.twilio : undefined;
    if (!route) return refuse({ status: 404, reason: 'path', message: `no WebSocket endpoint at ${url.pathname}` });
    const badHost = auth.checkHost(req);
    if (badHost) return refuse(badHost);
    const badOrigin = auth.checkOrigin(req);
    if (badOrigin) return refuse(badOrigin);
    const grant = auth.verify(req);
    if (isFailure(grant)) return refuse(grant);
    if (route.scope === 'subscribe' ? !grant.canSubscribeSome() : !grant.canPublishSome()) {
      return refuse({ status: 403, reason: 'scope', message: `token lacks the "${route.scope}" scope` });
    }
    route.wss.handleUpgrade(req, socket, head, (ws) => route.onConnection(ws, grant, url));
  };
}
