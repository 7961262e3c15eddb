/**
 * Helpers for the server's integration tests: real `ws` clients on loopback that record every
 * message, and a small deterministic audio→affect pipeline (loudness-driven) so server tests do
 * not depend on model files. The server under test is always the real AffectServer.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { WebSocket, type ClientOptions } from 'ws';
import { pino } from 'pino';
import { SUBPROTOCOL, type ServerMessage } from '../../core/protocol.js';
import type { AudioChunk, PipelineEvent } from '../../core/types.js';
import { AffectServer, type AffectServerOptions, type RunningServer } from '../../src/server/ws-server.js';

export const silentLogger = pino({ level: 'silent' });

/** Starts a real server on a free loopback port. */
export function startServer(opts: Partial<AffectServerOptions> = {}): Promise<RunningServer> {
  return AffectServer.start({ port: 0, logger: silentLogger, ...opts });
}

/** A real WebSocket client that records what it receives. */
export class TestClient {
  readonly messages: ServerMessage[] = [];
  readonly raw: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : (data as Buffer).toString('utf8');
      this.raw.push(text);
      try {
        this.messages.push(JSON.parse(text) as ServerMessage);
      } catch {
        // keep raw only
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    });
    ws.on('close', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Messages of one type. */
  of<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.messages.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }

  /** Resolves when `pred` holds over the received messages (or rejects after timeoutMs). */
  async until(pred: (c: TestClient) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.messages.length} messages: ${JSON.stringify(this.messages.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  close(): void {
    this.ws.close();
  }
}

/** Connects a subscriber (or publisher with path '/v1/ingest'). */
export function connect(
  server: { port: number },
  pathAndQuery = '/v1/stream',
  opts: ClientOptions & { protocols?: string[]; scheme?: string } = {},
): TestClient {
  const { protocols = [SUBPROTOCOL], scheme = 'ws', ...rest } = opts;
  return new TestClient(new WebSocket(`${scheme}://127.0.0.1:${server.port}${pathAndQuery}`, protocols, rest));
}

/** HTTP status of a refused upgrade (or 101 when it opened). */
export async function upgradeStatus(client: TestClient): Promise<number> {
  try {
    await client.opened;
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1;
  }
}

/**
 * A deterministic stand-in pipeline: one affect frame per `hopMs` of audio, with arousal from the
 * audio's loudness (RMS) and valence from its sign balance. Enough to see audio flow through.
 */
export function loudnessPipeline(streamId: string, hopMs = 100): OperatorFunction<AudioChunk, PipelineEvent> {
  const hop = (16000 * hopMs) / 1000;
  return (audio$) =>
    new Observable<PipelineEvent>((sub) => {
      let acc = 0;
      let sumSq = 0;
      let sum = 0;
      let n = 0;
      let t = 0;
      return audio$.subscribe({
        next: (c) => {
          for (const v of c.samples) {
            sumSq += v * v;
            sum += v;
            n++;
            if (++acc === hop) {
              t += hopMs;
              const rms = Math.sqrt(sumSq / n);
              const arousal = Math.max(-1, Math.min(1, rms * 4 - 1));
              const valence = Math.max(-1, Math.min(1, (sum / n) * 10));
              const angle = (Math.atan2(arousal, valence) * 180) / Math.PI;
              sub.next({
                kind: 'affect',
                point: {
                  streamId,
                  tMs: t,
                  valence,
                  arousal,
                  confidence: 0.5,
                  label: arousal > 0 ? 'aroused' : 'calm',
                  intensity: Math.min(1, Math.hypot(valence, arousal)),
                  angleDeg: angle,
                  modalities: ['speech'],
                  droppedWindows: 0,
                },
              });
              acc = 0;
              sumSq = 0;
              sum = 0;
              n = 0;
            }
          }
        },
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      });
    });
}

/** A sine tone as s16le bytes. */
export function toneS16(ms: number, rateHz = 16000, channels = 1, amp = 0.5, freqHz = 220): Buffer {
  const n = Math.round((rateHz * ms) / 1000);
  const buf = Buffer.alloc(n * channels * 2);
  for (let i = 0; i < n; i++) {
    const v = Math.round(Math.sin((2 * Math.PI * freqHz * i) / rateHz) * amp * 32767);
    for (let c = 0; c < channels; c++) buf.writeInt16LE(v, (i * channels + c) * 2);
  }
  return buf;
}

/** Asserts that the seqs per stream are strictly consecutive (gap = coalesced only when allowed). */
export function seqGaps(msgs: ServerMessage[], streamId: string): number[] {
  const seqs = msgs.filter((m) => 'seq' in m && 'streamId' in m && m.streamId === streamId).map((m) => (m as { seq: number }).seq);
  const gaps: number[] = [];
  for (let i = 1; i < seqs.length; i++) if ((seqs[i] ?? 0) !== (seqs[i - 1] ?? 0) + 1) gaps.push(i);
  return gaps;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
