/**
 * `/v1/telephony/twilio` with a real server, the real engine (default speech model, Silero VAD) and
 * real ws clients speaking Twilio's Media Streams format: a two-track call made from espeak-ng
 * speech, μ-law encoded here, yields frames and at least one turn on `<callSid>:inbound` and
 * `<callSid>:outbound`; bad messages close only their own call with a clear code and reason; a caller
 * who turns angry (real RAVDESS speech at telephone quality) raises an escalation alert on their track
 * only.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { createEngine, type Engine } from '../../src/engine.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { concat, silence, speak } from '../helpers/vad-audio.js';
import { twilioStart, twilioStop } from '../../src/server/twilio-messages.js';
import { connect, silentLogger, startServer, type TestClient } from '../helpers/server-helpers.js';
import { speechDataRoot } from '../helpers/speech-corpus.js';
import { twilioPayloads } from '../helpers/twilio-audio.js';
import { audioSeconds, ravdessClips } from '../../bench/lib/ravdess.js';

const TOKEN = 'twilio-test-token';
let engine: Engine;
let server: RunningServer;
beforeAll(async () => {
  engine = await createEngine({ device: 'cpu', logger: silentLogger });
  server = await startServer({
    tokens: [{ token: TOKEN, scopes: ['publish', 'subscribe'] }],
    onIngestStream: (id, audio$) => audio$.pipe(engine.pipeline(id, { whenBusy: 'queue', maxQueue: 64 })),
  });
});
afterAll(async () => {
  await server?.close();
  await engine?.close();
});

/** A subscriber to every stream on the shared server, once its hello is in. */
async function subscribeAll(): Promise<TestClient> {
  const sub: TestClient = connect(server, `/v1/stream?token=${TOKEN}`);
  await sub.opened;
  sub.send({ type: 'subscribe', streamIds: ['*'] });
  await sub.until((c) => c.of('hello').length > 0);
  return sub;
}

/** A Twilio-side socket: JSON text frames, no subprotocol. */
class TwilioCall {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(query = `?token=${TOKEN}`, headers: Record<string, string> = {}, port = server.port) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/v1/telephony/twilio${query}`, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_q, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }
  send(m: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }
  start(callSid: string, tracks: string[] = ['inbound', 'outbound'], mediaFormat = { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 }): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      sequenceNumber: '1',
      streamSid: `MZ${callSid}`,
      start: { streamSid: `MZ${callSid}`, accountSid: 'AC0123', callSid, tracks, customParameters: {}, mediaFormat },
    });
  }
}

/** Sends both tracks interleaved, 20 ms per message per track, at `speed` × real time. */
async function play(call: TwilioCall, callSid: string, inbound: string[], outbound: string[], speed = 5): Promise<void> {
  const n = Math.max(inbound.length, outbound.length);
  let seq = 2;
  const batch = 10; // messages per track between pauses (200 ms of audio)
  for (let i = 0; i < n; i++) {
    const ts = String(i * 20);
    if (inbound[i])
      call.send({
        event: 'media',
        sequenceNumber: String(seq++),
        media: { track: 'inbound', chunk: String(i + 1), timestamp: ts, payload: inbound[i] },
        streamSid: `MZ${callSid}`,
      });
    if (outbound[i])
      call.send({
        event: 'media',
        sequenceNumber: String(seq++),
        media: { track: 'outbound', chunk: String(i + 1), timestamp: ts, payload: outbound[i] },
        streamSid: `MZ${callSid}`,
      });
    if (i % batch === batch - 1) await new Promise((r) => setTimeout(r, (batch * 20) / speed));
  }
  call.send({ event: 'mark', sequenceNumber: String(seq++), streamSid: `MZ${callSid}`, mark: { name: 'end' } });
  call.send({ event: 'stop', sequenceNumber: String(seq), streamSid: `MZ${callSid}`, stop: { accountSid: 'AC0123', callSid } });
}

describe('Twilio Media Streams ingest', () => {
  let inbound: string[];
  let outbound: string[];
  let agentOnsetMs: number;
  beforeAll(() => {
    // Caller speaks first, then the agent answers: each track is silence around its own speech.
    const a = speak('Hello, I have been waiting for twenty minutes and my order never arrived.');
    const b = speak('I am sorry to hear that, let me check it for you right away.');
    const caller = concat([silence(0.8, 11), a, silence(b.length / 16000 + 1.5, 12)]).samples;
    const agent = concat([silence(a.length / 16000 + 1.3, 13), b, silence(1.0, 14)]).samples;
    agentOnsetMs = (a.length / 16000 + 1.3) * 1000;
    inbound = twilioPayloads(caller);
    outbound = twilioPayloads(agent);
  });

  it('a two-track call gives frames and turns on <callSid>:inbound and <callSid>:outbound, then ends both', async () => {
    const sub = await subscribeAll();
    const callSid = 'CA1111111111';
    const call = new TwilioCall();
    await call.opened;
    call.start(callSid);
    await play(call, callSid, inbound, outbound);
    expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
    const ended = (id: string) => (c: TestClient) => c.of('status').some((s) => s.streamId === id && s.state === 'ended');
    await sub.until((c) => ended(`${callSid}:inbound`)(c) && ended(`${callSid}:outbound`)(c), 60_000, 'both tracks to end');
    for (const track of ['inbound', 'outbound']) {
      const id = `${callSid}:${track}`;
      const frames = sub.of('affect').filter((f) => f.streamId === id);
      expect(frames.length, id).toBeGreaterThan(20);
      expect(frames.every((f) => f.voiced !== undefined)).toBe(true);
      const turns = sub.of('turn').filter((t) => t.streamId === id);
      expect(turns.length, `turns on ${id}`).toBeGreaterThanOrEqual(1);
    }
    // The caller's turn comes before the agent's (the call's order), in each track's audio time.
    const firstIn = sub.of('turn').find((t) => t.streamId === `${callSid}:inbound`)!;
    const firstOut = sub.of('turn').find((t) => t.streamId === `${callSid}:outbound`)!;
    expect(firstIn.startMs).toBeLessThan(firstOut.startMs);
    expect(firstIn.startMs).toBeGreaterThan(500);
    sub.close();
  });

  it('an agent track that sends nothing for 3 minutes (Twilio may send no packets for a silent side) gives its later turn at its true time', async () => {
    // Before: any timestamp jump over 60 s closed the whole call with 1002, caller's track included.
    // The call's clock is performance.now() since its start arrived: moved on here instead of waiting.
    const realNow = performance.now.bind(performance);
    let offsetMs = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + offsetMs);
    try {
      const sub = await subscribeAll();
      const callSid = 'CA7777777777';
      const call = new TwilioCall();
      await call.opened;
      call.start(callSid);
      const media = (track: string, k: number, tsMs: number, payload: string) =>
        call.send({ event: 'media', media: { track, chunk: String(k + 1), timestamp: String(tsMs), payload }, streamSid: `MZ${callSid}` });
      // The caller's whole track and the agent's first second (silence), then nothing from the agent.
      for (let i = 0; i < inbound.length; i++) {
        media('inbound', i, i * 20, inbound[i]!);
        if (i < 50) media('outbound', i, i * 20, outbound[i]!);
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 40));
      }
      const skipMs = 180_000;
      offsetMs = skipMs + 30_000;
      for (let i = 50; i < outbound.length; i++) {
        media('outbound', i, i * 20 + skipMs, outbound[i]!);
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 40));
      }
      call.send({ event: 'stop', streamSid: `MZ${callSid}`, stop: { callSid } });
      expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
      const ended = (id: string) => (c: TestClient) => c.of('status').some((st) => st.streamId === id && st.state === 'ended');
      await sub.until((c) => ended(`${callSid}:inbound`)(c) && ended(`${callSid}:outbound`)(c), 60_000, 'both tracks to end');
      expect(sub.of('status').filter((st) => st.state === 'error')).toEqual([]);
      const agentTurns = sub.of('turn').filter((t) => t.streamId === `${callSid}:outbound`);
      expect(agentTurns.length).toBeGreaterThanOrEqual(1);
      // The agent spoke after its 1.3 s pause behind the caller's words, 3 minutes later on its clock.
      const speechAt = skipMs + agentOnsetMs;
      expect(agentTurns[0]!.startMs).toBeGreaterThan(skipMs);
      expect(Math.abs(agentTurns[0]!.startMs - speechAt)).toBeLessThan(1500);
      expect(
        sub
          .of('affect')
          .filter((f) => f.streamId === `${callSid}:outbound`)
          .at(-1)!.tMs,
      ).toBeGreaterThan(skipMs);
      expect(sub.of('turn').filter((t) => t.streamId === `${callSid}:inbound`).length).toBeGreaterThanOrEqual(1);
      sub.close();
    } finally {
      clock.mockRestore();
    }
  });

  it('bad messages close only their own call with a clear code; a call alongside goes on', async () => {
    const sub = await subscribeAll();
    const good = new TwilioCall(`?x=1`, { authorization: `Bearer ${TOKEN}` });
    await good.opened;
    good.start('CA2222222222', ['inbound']);
    const goodDone = play(good, 'CA2222222222', inbound, [], 5);

    const cases: Array<[string, (c: TwilioCall) => void, number, RegExp]> = [
      ['unknown event', (c) => c.send({ event: 'hangup' }), 1002, /unknown event "hangup"/],
      ['not JSON', (c) => c.send('{nope'), 1002, /not JSON/],
      ['media before start', (c) => c.send({ event: 'media', media: { track: 'inbound', payload: inbound[0] } }), 1002, /media before start/],
      [
        'bad base64',
        (c) => {
          c.start('CA3333333333', ['inbound']);
          c.send({ event: 'media', media: { track: 'inbound', payload: '@@@notbase64' } });
        },
        1002,
        /bad base64/,
      ],
      [
        'wrong media format',
        (c) => c.start('CA4444444444', ['inbound'], { encoding: 'audio/l16', sampleRate: 16000, channels: 1 }),
        1003,
        /only audio\/x-mulaw 8000 Hz/,
      ],
      [
        'unknown track',
        (c) => {
          c.start('CA5555555555', ['inbound']);
          c.send({ event: 'media', media: { track: 'outbound', payload: inbound[0] } });
        },
        1002,
        /track "outbound"/,
      ],
      [
        'start without callSid',
        (c) =>
          c.send({
            event: 'start',
            start: { streamSid: 'MZ1', tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
          }),
        1002,
        /start\.callSid/,
      ],
    ];
    for (const [what, act, code, reason] of cases) {
      const c = new TwilioCall();
      await c.opened;
      act(c);
      const closed = await c.closed;
      expect(closed.code, what).toBe(code);
      expect(closed.reason, what).toMatch(reason);
    }
    // No token: refused at the upgrade.
    const anon = new TwilioCall('');
    await expect(anon.opened).rejects.toMatchObject({ statusCode: 401 });

    await goodDone;
    expect(await good.closed).toEqual({ code: 1000, reason: 'stopped' });
    await sub.until((c) => c.of('status').some((s) => s.streamId === 'CA2222222222:inbound' && s.state === 'ended'), 60_000, 'the good call to end');
    expect(sub.of('affect').filter((f) => f.streamId === 'CA2222222222:inbound').length).toBeGreaterThan(20);
    expect(sub.of('turn').filter((t) => t.streamId === 'CA2222222222:inbound').length).toBeGreaterThanOrEqual(1);
    sub.close();
  });

  it('a pipeline hook that throws closes that call with 1011 naming the failure; the server goes on taking calls', async () => {
    let throwFor = 'CA3333333333';
    const srv = await startServer({
      onIngestStream: (id, audio$) => {
        if (id.startsWith(throwFor)) throw new Error('no pipeline for you');
        return audio$.pipe(engine.pipeline(id, { whenBusy: 'queue', maxQueue: 64 }));
      },
    });
    try {
      const call = async (callSid: string) => {
        const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/v1/telephony/twilio`);
        const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
        await new Promise((r, j) => ws.once('open', r).once('error', j));
        ws.send(twilioStart(callSid, { tracks: ['inbound'] }));
        return { ws, closed };
      };
      const bad = await call('CA3333333333');
      expect(await bad.closed).toEqual({ code: 1011, reason: 'pipeline failed: no pipeline for you' });
      // The id is free again, and the next call (same id, hook now working) runs.
      throwFor = 'none';
      const ok = await call('CA3333333333');
      ok.ws.send(twilioStop('MZCA3333333333', 2));
      expect(await ok.closed).toEqual({ code: 1000, reason: 'stopped' });
    } finally {
      await srv.close();
    }
  });
});

/** 16 kHz mono float samples of `files` played one after another (sox decodes FLAC/WAV and resamples). */
function decode(files: readonly string[]): Float32Array {
  const raw = execFileSync('sox', ['-R', '-q', ...files, '-t', 'raw', '-r', '16000', '-c', '1', '-e', 'signed', '-b', '16', '-'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const s16 = new Int16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  return Float32Array.from(s16, (x) => x / 32768);
}

describe('escalation alerts over Twilio (real speech, telephone quality)', () => {
  // Its own server, taking media at 12× real time (the default limit, 500 messages a second, is 5×).
  let fast: RunningServer;
  beforeAll(async () => {
    fast = await startServer({
      tokens: [{ token: TOKEN, scopes: ['publish', 'subscribe'] }],
      ingestRateLimit: { perSec: 2000, burst: 4000 },
      onIngestStream: (id, audio$) => audio$.pipe(engine.pipeline(id, { whenBusy: 'queue', maxQueue: 64 })),
    });
  });
  afterAll(async () => {
    await fast?.close();
  });

  it('a caller who turns angry raises an escalation alert on <callSid>:inbound within 12 s; the agent who turns happy raises none', async () => {
    // RAVDESS actor 01 (the shipped speech model's training data: this checks the path, not the model):
    // the calm and neutral clips twice over, then angry clips on the caller's track and happy ones on the agent's.
    const clips = (codes: string[]) => ravdessClips(path.join(speechDataRoot(), 'ravdess', 'flac'), '01', codes);
    const calm = [...clips(['01', '02']), ...clips(['01', '02'])];
    const onsetMs = audioSeconds(calm) * 1000;
    const caller = twilioPayloads(decode([...calm, ...clips(['05'])]));
    const agent = twilioPayloads(decode([...calm, ...clips(['03'])]));
    const sub: TestClient = connect(fast, `/v1/stream?token=${TOKEN}`);
    await sub.opened;
    sub.send({ type: 'subscribe', streamIds: ['*'] });
    await sub.until((c) => c.of('hello').length > 0);
    const callSid = 'CA3333333333';
    const call = new TwilioCall(`?token=${TOKEN}`, {}, fast.port);
    await call.opened;
    call.start(callSid);
    await play(call, callSid, caller, agent, 12);
    expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
    const ended = (id: string) => (c: TestClient) => c.of('status').some((s) => s.streamId === id && s.state === 'ended');
    await sub.until((c) => ended(`${callSid}:inbound`)(c) && ended(`${callSid}:outbound`)(c), 90_000, 'both tracks to end');
    expect(sub.of('affect').filter((f) => f.streamId === `${callSid}:inbound`).length).toBeGreaterThan(400);
    const alerts = sub.of('alert');
    const inbound = alerts.filter((a) => a.streamId === `${callSid}:inbound`);
    expect(inbound).toHaveLength(1);
    expect(inbound[0]!.alert).toBe('escalation');
    expect(inbound[0]!.tMs).toBeGreaterThan(onsetMs);
    expect(inbound[0]!.tMs).toBeLessThan(onsetMs + 12_000);
    expect(inbound[0]!.reason).toMatch(/^arousal up .* and valence down /);
    expect(alerts.filter((a) => a.streamId === `${callSid}:outbound`)).toEqual([]);
    sub.close();
  }, 120_000);
});
