/**
 * Test helpers for the clients suites.
 *
 * - `startFlakyProxy`: a TCP proxy on loopback in front of a real server, whose `cut()` destroys
 *   every proxied connection (a real network drop, not a mock) so reconnect + resume can be tested
 *   against the real AffectServer.
 * - `startRealServer`: the real AffectServer on loopback, quiet.
 * - `affectEvent` / `movingPoint` / `transcriptEvent`: synthetic pipeline events to publish into
 *   the real hub (the pipeline itself is tested elsewhere; here the point is the wire).
 */
import net from 'node:net';
import { pino } from 'pino';
import { AffectServer, type AffectServerOptions, type RunningServer } from '../../src/server/ws-server.js';
import type { PipelineEvent } from '../../core/types.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';

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

/** Starts the real AffectServer on 127.0.0.1 with an ephemeral port, quiet logs and a short close. */
export async function startRealServer(opts: Partial<AffectServerOptions> = {}): Promise<RunningServer> {
  return AffectServer.start({ port: 0, logger: pino({ level: 'silent' }), closeTimeoutMs: 300, ...opts });
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}
