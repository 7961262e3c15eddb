/**
 * Dominance end to end over real sockets (protocol 1.1.0): real AffectServer on loopback → node
 * client (zod-validated) → socket.io bridge → a real socket.io server. Frames with dominance keep
 * it at every hop; frames without it arrive without the key (no fake 0).
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Server as IoServer } from 'socket.io';
import { CircumplexClient } from '../../clients/node-client.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import { SocketIoBridge } from '../../clients/socketio-bridge.js';
import type { PipelineEvent } from '../../core/types.js';
import { affectEvent, startRealServer } from '../helpers/clients-protocol-server.js';
import { until } from '../helpers/until.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function event(i: number, dominance: number | undefined): PipelineEvent {
  const e = affectEvent('stage', i * 250, 0.3, -0.1);
  if (e.kind !== 'affect' || dominance === undefined) return e;
  return {
    kind: 'affect',
    point: { ...e.point, dominance, modalities: ['speech', 'text'], text: { valence: 0.3, arousal: -0.1, confidence: 0.5, dominance } },
  };
}

describe('dominance through server, node client and socket.io bridge', () => {
  it('arrives where it was published and is absent where it was not', async () => {
    const server = await startRealServer();
    cleanups.push(() => server.close());
    server.hub.openStream({ streamId: 'stage', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const httpServer = http.createServer();
    const io = new IoServer(httpServer);
    const bridged: StreamEventMessage[] = [];
    io.on('connection', (socket) => socket.onAny((_event: string, msg: StreamEventMessage) => bridged.push(msg)));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => void io.close(() => resolve())));
    const addr = httpServer.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');

    const client = CircumplexClient.connect(server.url);
    cleanups.push(() => client.close());
    const received: StreamEventMessage[] = [];
    client.frames$.subscribe((m) => received.push(m));
    const bridge = SocketIoBridge.start(client.frames$, { url: `http://127.0.0.1:${addr.port}`, socketOptions: { transports: ['websocket'] } });
    cleanups.push(() => bridge.close());
    await client.waitOpen();
    await until(() => bridge.connected);

    const dominances = [0.5, undefined, -0.75];
    dominances.forEach((d, i) => server.hub.publish('stage', event(i, d)));
    await until(() => received.length === 3 && bridged.length === 3);
    for (const got of [received, bridged]) {
      const affect = got.filter((m) => m.type === 'affect');
      expect(affect.map((m) => ('dominance' in m ? m.dominance : 'absent'))).toEqual([0.5, 'absent', -0.75]);
      expect(affect.map((m) => m.text?.dominance ?? 'absent')).toEqual([0.5, 'absent', -0.75]);
    }
    expect(client.stats.invalidMessages).toBe(0);
  });
});
