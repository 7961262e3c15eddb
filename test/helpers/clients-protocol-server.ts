/**
 * Test helpers for the clients suites.
 *
 * - `startFlakyProxy`: a TCP proxy on loopback in front of a real server, whose `cut()` destroys
 *   every proxied connection (a real network drop, not a mock) so reconnect + resume can be tested
 *   against the real AffectServer.
 * - `affectEvent` / `moving`: synthetic pipeline events for publishing into a real hub.
 */
import net from 'node:net';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { StreamHub } from '../../src/server/hub.js';
import { PROTOCOL_VERSION, SUBPROTOCOL, STREAM_PATH, ClientMessageSchema } from '../../clients/protocol.js';
import type { PipelineEvent } from '../../streams/types.js';
import { RUSSELL_1980_TERMS } from '../../streams/emotion-terms.js';

/** A loopback TCP proxy that can cut its connections. */
export interface FlakyProxy {
  readonly port: number;
  /** Destroys every open connection (both sides), like a network drop. */
  cut(): void;
  /** While paused, new connections are refused (destroyed at once). */
  setRefusing(refusing: boolean): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (ephemeral port) forwarding to `targetPort`. */
export async function startFlakyProxy(targetPort: number): Promise<FlakyProxy> {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy: no port');
  return {
    port: addr.port,
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    setRefusing(r: boolean) {
      refusing = r;
    },
    get accepted() {
      return accepted;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An affect pipeline event at (valence, arousal), labelled with the nearest Russell term. */
export function affectEvent(streamId: string, tMs: number, valence: number, arousal: number, confidence = 0.8): PipelineEvent {
  const angleDeg = ((Math.atan2(arousal, valence) * 180) / Math.PI + 360) % 360;
  let label = 'neutral';
  let best = Number.POSITIVE_INFINITY;
  for (const t of RUSSELL_1980_TERMS) {
    const d = Math.abs(((t.angleDeg - angleDeg + 540) % 360) - 180);
    if (d < best) {
      best = d;
      label = t.term;
    }
  }
  return {
    kind: 'affect',
    point: {
      streamId,
      tMs,
      valence,
      arousal,
      confidence,
      label,
      intensity: Math.min(1, Math.hypot(valence, arousal)),
      angleDeg,
      modalities: ['speech'],
      speech: { valence, arousal, confidence },
      droppedWindows: 0,
    },
  };
}

/** The i-th point of a deterministic loop around the circumplex (radius 0.3–0.8, period 40 frames). */
export function movingPoint(i: number): { valence: number; arousal: number } {
  const theta = (i / 40) * 2 * Math.PI;
  const r = 0.55 + 0.25 * Math.sin(i / 7);
  return { valence: +(r * Math.cos(theta)).toFixed(4), arousal: +(r * Math.sin(theta)).toFixed(4) };
}

/** A transcript pipeline event. */
export function transcriptEvent(streamId: string, tMs: number, text: string, final = true): PipelineEvent {
  return { kind: 'transcript', transcript: { streamId, tMs, text, final, words: [] } };
}

// ---------------------------------------------------------------------------------------------
// A minimal protocol server (stand-in while src/server/ws-server.ts is not there): real `ws` on
// loopback, real StreamHub, speaks clients/protocol.ts (hello, subscribe + resumeFrom, resumed,
// stream, frames) and serves clients/dashboard/ at / and chart.js at /vendor/chart.umd.js.
// ---------------------------------------------------------------------------------------------

/** What {@link startProtocolServer} returns: the same shape as AffectServer's handle. */
export interface ProtocolServer {
  readonly port: number;
  readonly url: string;
  readonly hub: StreamHub;
  close(): Promise<void>;
}

const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/** Starts the stand-in server on 127.0.0.1 with an ephemeral port. */
export async function startProtocolServer(hub = new StreamHub()): Promise<ProtocolServer> {
  const root = path.resolve('clients/dashboard');
  const httpServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file =
      url.pathname === '/vendor/chart.umd.js'
        ? path.resolve('node_modules/chart.js/dist/chart.umd.js')
        : path.join(root, url.pathname === '/' ? 'index.html' : path.normalize(url.pathname));
    if (!file.startsWith(root) && !file.endsWith('chart.umd.js')) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  httpServer.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== STREAM_PATH) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws));
  });
  const serve = (ws: WsSocket) => {
    const subscribed = new Set<string>();
    const wants = (id: string) => subscribed.has('*') || subscribed.has(id);
    const send = (m: object) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(m));
    const off = hub.subscribe((e) => {
      if (e.type === 'message' && wants(e.message.streamId)) send(e.message);
      else if (e.type === 'stream') send({ type: 'stream', stream: e.stream });
    });
    ws.on('close', off);
    ws.on('message', (data) => {
      const parsed = ClientMessageSchema.safeParse(JSON.parse(String(data)));
      if (!parsed.success) return ws.close(1002);
      const m = parsed.data;
      if (m.type === 'unsubscribe') {
        for (const id of m.streamIds) subscribed.delete(id);
        return;
      }
      for (const id of m.streamIds) subscribed.add(id);
      for (const [id, seq] of Object.entries(m.resumeFrom ?? {})) {
        if (!wants(id)) continue;
        const { messages, missed } = hub.since(id, seq);
        for (const msg of messages) send(msg);
        send({ type: 'resumed', streamId: id, fromSeq: seq, missed });
      }
    });
    send({ type: 'hello', version: PROTOCOL_VERSION, sessionId: 'test', hopMs: 250, streams: hub.streams() });
  };
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const addr = httpServer.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    port: addr.port,
    url: `http://127.0.0.1:${addr.port}`,
    hub,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
