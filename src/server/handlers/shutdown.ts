/**
 * Liveness timers (ping/pong heartbeat, the slow-subscriber flush tick) and the graceful close:
 * stop accepting, close publishers first (so their streams end while subscribers still listen),
 * then everyone with 1001, wait at most closeTimeoutMs, terminate the rest.
 */
import type http from 'node:http';
import type { WebSocketServer } from 'ws';
import { CLOSE_CODES } from '../../../core/protocol.js';
import { type ServerContext, fitCloseReason } from '../context.js';

/** Starts the heartbeat and the flush tick; returns a function that stops both. */
export function startLiveness(ctx: ServerContext): () => void {
  const { o, sockets, alive, deadPeers, subscribers } = ctx;
  const heartbeat = setInterval(() => {
    for (const ws of sockets) {
      if (alive.get(ws) === false) {
        // Counted and logged once, under its endpoint, by the close listener (ctx.track).
        deadPeers.add(ws);
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
  return () => {
    clearInterval(heartbeat);
    clearInterval(flusher);
  };
}

/** What the close has to stop. */
export interface ShutdownParts {
  readonly server: http.Server;
  readonly wss: readonly WebSocketServer[];
  readonly stopTimers: () => void;
  readonly stopFanOut: () => void;
}

/** The server's `close(reason)`: idempotent, resolves once everything is closed. */
export function createShutdown(ctx: ServerContext, parts: ShutdownParts): (reason?: string) => Promise<void> {
  const { o, log, publishers, sockets } = ctx;
  return (reason = 'server shutting down') => {
    ctx.closing ??= (async () => {
      parts.stopTimers();
      // Stop accepting: no new connections; upgrades that race in get 503 from the handler.
      parts.server.close();
      // Publishers first, so their streams end (status 'ended') while subscribers still listen.
      // A close reason over 123 bytes makes ws throw: cut it (close(reason) takes any string).
      const why = fitCloseReason(reason);
      for (const ws of publishers.values()) ws.close(CLOSE_CODES.goingAway, why);
      for (const ws of sockets) ws.close(CLOSE_CODES.goingAway, why);
      const deadline = Date.now() + o.closeTimeoutMs;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const ws of sockets) ws.terminate();
      parts.stopFanOut();
      for (const w of parts.wss) w.close();
      parts.server.closeAllConnections();
      log.info('closed');
    })();
    return ctx.closing;
  };
}
