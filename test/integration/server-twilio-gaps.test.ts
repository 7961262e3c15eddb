/**
 * `/v1/telephony/twilio` details with a real server and real ws clients (a recording pipeline that
 * keeps every audio chunk, so the test sees exactly what the pipeline got):
 * - media `timestamp` gaps (packets lost upstream) are filled with silence so audio time stays true;
 *   gaps longer than TWILIO_MAX_FILL_MS advance the clock without samples; a bad timestamp closes 1002.
 * - packets reach the pipeline coalesced into hop-aligned chunks, decoded once per hop: each hop with
 *   the packet that completes it, the audio equal to decoding the whole call at once.
 * - with a Redis backplane (real redis-server), a socket that closes while its claims are on their
 *   way does not leave the call's stream ids busy: the same call can start again on that node and
 *   on another node.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { delay, tap } from 'rxjs';
import { float32ToMulaw, mulawToFloat32, resample } from '../../streams/audio.js';
import type { AudioChunk } from '../../core/types.js';
import { RedisHub } from '../../src/server/redis-hub.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { TWILIO_MAX_COALESCE_MS, TWILIO_MAX_FILL_MS, TWILIO_MAX_GAP_MS, TWILIO_MAX_HELD_BYTES } from '../../src/server/handlers/twilio.js';
import { TestRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';
import { connect, loudnessPipeline, silentLogger, sleep, startServer, type TestClient } from '../helpers/server-helpers.js';

/** Chunks each stream's pipeline received, by stream id. */
const received = new Map<string, AudioChunk[]>();
const recording = (id: string) => (audio$: import('rxjs').Observable<AudioChunk>) =>
  audio$.pipe(
    tap((c) => {
      const l = received.get(id) ?? [];
      l.push({ ...c, samples: c.samples.slice() });
      received.set(id, l);
    }),
    loudnessPipeline(id, 100),
  );

/** A Twilio-side socket. */
class TwilioCall {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(port: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/v1/telephony/twilio`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }
  send(m: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }
  start(callSid: string, tracks = ['inbound']): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      streamSid: `MZ${callSid}`,
      start: { streamSid: `MZ${callSid}`, callSid, tracks, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
    });
  }
  media(track: string, k: number, payload: string, timestamp: unknown = String(k * 20)): void {
    this.send({ event: 'media', media: { track, chunk: String(k + 1), timestamp, payload } });
  }
  stop(): void {
    this.send({ event: 'stop', stop: {} });
  }
}

/** A 440 Hz tone as 20 ms μ-law packets (base64), `n` of them. */
function tonePackets(n: number): string[] {
  const x = Float32Array.from({ length: n * 160 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  const mu = float32ToMulaw(x);
  return Array.from({ length: n }, (_, k) => Buffer.from(mu.subarray(k * 160, (k + 1) * 160)).toString('base64'));
}

const rms = (x: Float32Array, a: number, b: number): number => {
  let s = 0;
  for (let i = a; i < b; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, b - a));
};

describe('Twilio call logs', () => {
  it("each track's end-of-call log line carries that track's own packets, samples and gaps, not the call's totals", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const server = await startServer({ logger, onIngestStream: (id, audio$) => recording(id)(audio$) });
    try {
      const pk = tonePackets(60);
      const call = new TwilioCall(server.port);
      await call.opened;
      call.start('CALOG0000001', ['inbound', 'outbound']);
      // The caller sends 60 packets; the agent 20, then (after 500 ms lost upstream) 10 more.
      for (let k = 0; k < 60; k++) {
        call.media('inbound', k, pk[k]!);
        if (k < 20 || (k >= 45 && k < 55)) call.media('outbound', k, pk[k]!);
      }
      call.stop();
      expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
      const ended = (id: string) => lines.find((l) => l.streamId === id && l.msg === 'call stopped');
      await until(() => ended('CALOG0000001:inbound') !== undefined && ended('CALOG0000001:outbound') !== undefined);
      const samplesOf = (id: string) => received.get(id)!.reduce((n, c) => n + c.samples.length, 0);
      const want = { inbound: { packets: 60, gaps: 0, gapMs: 0 }, outbound: { packets: 30, gaps: 1, gapMs: 500 } };
      for (const [track, w] of Object.entries(want)) {
        const id = `CALOG0000001:${track}`;
        const line = ended(id) as { stats: { framesAccepted: number; samplesOut: number }; timestampGaps: number; timestampGapMs: number };
        expect(line.stats.framesAccepted, id).toBe(w.packets);
        // Every 16 kHz sample the track's pipeline got (its gap's silence included), the resampler's tail too.
        expect(line.stats.samplesOut, id).toBe(samplesOf(id));
        expect([line.timestampGaps, line.timestampGapMs], id).toEqual([w.gaps, w.gapMs]);
      }
    } finally {
      await server.close();
    }
  });
});

describe('Twilio call end', () => {
  it("the tracks' ended status says how the call ended: stop (call stopped) or a socket closed without one (twilio socket closed)", async () => {
    const server = await startServer({ onIngestStream: (id, audio$) => recording(id)(audio$) });
    try {
      const sub: TestClient = connect(server, '/v1/stream?streams=*');
      await sub.opened;
      const pk = tonePackets(20);
      const ended = (id: string) => sub.of('status').find((s) => s.streamId === id && s.state === 'ended');
      for (const [callSid, hangUp] of [
        ['CAEND0000001', false],
        ['CAEND0000002', true],
      ] as const) {
        const call = new TwilioCall(server.port);
        await call.opened;
        call.start(callSid, ['inbound', 'outbound']);
        for (let k = 0; k < 20; k++) for (const track of ['inbound', 'outbound']) call.media(track, k, pk[k]!);
        if (hangUp) call.ws.close();
        else call.stop();
        await call.closed;
        for (const track of ['inbound', 'outbound']) {
          const id = `${callSid}:${track}`;
          await sub.until(() => ended(id) !== undefined, 10_000, `${id} to end`);
          expect(ended(id)!.message, id).toBe(hangUp ? 'twilio socket closed' : 'call stopped');
        }
      }
      sub.close();
    } finally {
      await server.close();
    }
  });
});

describe('Twilio media: timestamps, coalescing and decoding', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ onIngestStream: (id, audio$) => recording(id)(audio$) });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a 500 ms gap becomes 500 ms of silence; a gap past the fill limit moves the clock without samples', async () => {
    expect(TWILIO_MAX_FILL_MS).toBe(2000);
    const sub: TestClient = connect(server, '/v1/stream');
    await sub.opened;
    sub.send({ type: 'subscribe', streamIds: ['*'] });
    const pk = tonePackets(350);
    const call = new TwilioCall(server.port);
    await call.opened;
    call.start('CAGAP0000001');
    // Packets 0..49 (0–1 s), lost 50..74 (500 ms), 75..124 (1.5–2.5 s), lost 125..299 (3.5 s), 300..349 (6–7 s).
    for (let k = 0; k < 350; k++) if (k < 50 || (k >= 75 && k < 125) || k >= 300) call.media('inbound', k, pk[k]!);
    call.stop();
    expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
    const id = 'CAGAP0000001:inbound';
    await sub.until((c) => c.of('status').some((s) => s.streamId === id && s.state === 'ended'), 10_000, 'the call to end');
    const chunks = received.get(id)!;
    // Contiguous 16 kHz audio up to the long gap, then a jump to 6.0 s.
    const jump = chunks.findIndex((c, i) => i > 0 && c.startSample !== chunks[i - 1]!.startSample + chunks[i - 1]!.samples.length);
    expect(jump).toBeGreaterThan(0);
    const before = chunks.slice(0, jump);
    expect(before[0]!.startSample).toBe(0);
    const audio = new Float32Array(before.reduce((n, c) => n + c.samples.length, 0));
    let at = 0;
    for (const c of before) {
      audio.set(c.samples, at);
      at += c.samples.length;
    }
    // 0–2.5 s at 16 kHz (the resampler may hold back a few samples until the next packet).
    expect(audio.length).toBeGreaterThanOrEqual(40_000 - 32);
    expect(audio.length).toBeLessThanOrEqual(40_000);
    // Tone, then silence exactly where the lost packets were, then tone again.
    expect(rms(audio, 1000, 15_000)).toBeGreaterThan(0.15);
    expect(rms(audio, 16_000 + 64, 24_000 - 64)).toBeLessThan(0.001);
    expect(rms(audio, 24_000 + 64, 39_000)).toBeGreaterThan(0.15);
    // After the 3.5 s gap (longer than the fill limit) the audio resumes at its true time, 6.0 s.
    expect(chunks[jump]!.startSample).toBeGreaterThanOrEqual(96_000 - 32);
    expect(chunks[jump]!.startSample).toBeLessThanOrEqual(96_000);
    const last = chunks.at(-1)!;
    expect(last.startSample + last.samples.length).toBeGreaterThanOrEqual(112_000 - 32);
    expect(last.startSample + last.samples.length).toBeLessThanOrEqual(112_000 + 32);
    sub.close();
  });

  it('a late (behind) timestamp is appended, not rewound; a bad timestamp closes the call with 1002', async () => {
    const pk = tonePackets(20);
    const call = new TwilioCall(server.port);
    await call.opened;
    call.start('CAGAP0000002');
    for (let k = 0; k < 10; k++) call.media('inbound', k, pk[k]!);
    call.media('inbound', 10, pk[10]!, '100'); // behind: 200 ms of audio already
    call.media('inbound', 11, pk[11]!, '220'); // back on the clock (220 = 11 packets + the late one)
    call.stop();
    expect((await call.closed).code).toBe(1000);
    await sleep(50);
    const chunks = received.get('CAGAP0000002:inbound')!;
    const end = chunks.at(-1)!.startSample + chunks.at(-1)!.samples.length;
    // 12 packets = 240 ms = 3840 samples, none filled, none lost.
    expect(end).toBeGreaterThanOrEqual(3840 - 32);
    expect(end).toBeLessThanOrEqual(3840);

    const bad = new TwilioCall(server.port);
    await bad.opened;
    bad.start('CAGAP0000003');
    bad.media('inbound', 0, pk[0]!, 'soon');
    const closed = await bad.closed;
    expect(closed.code).toBe(1002);
    expect(closed.reason).toMatch(/bad media timestamp "soon"/);
  });

  it('a timestamp more than TWILIO_MAX_GAP_MS ahead closes the call with 1002 naming it; no gap is passed on', async () => {
    // Unbounded, one packet stamped 1e300 made the VAD stage allocate the whole gap: the server ran out of memory.
    expect(TWILIO_MAX_GAP_MS).toBe(60_000);
    const pk = tonePackets(3);
    for (const [sid, ts] of [
      ['CAJUMP000001', '1e300'],
      ['CAJUMP000002', String(40 + TWILIO_MAX_GAP_MS + 1)],
    ] as const) {
      const call = new TwilioCall(server.port);
      await call.opened;
      call.start(sid);
      call.media('inbound', 0, pk[0]!);
      call.media('inbound', 1, pk[1]!);
      call.media('inbound', 2, pk[2]!, ts);
      const closed = await call.closed;
      expect(closed.code).toBe(1002);
      expect(closed.reason).toMatch(/^media timestamp \S+ jumps \d+(e\+\d+)? ms ahead of the track's audio \(over 60000\) and past the call's \d+ ms$/);
      await sleep(50);
      const chunks = received.get(`${sid}:inbound`) ?? [];
      const end = chunks.reduce((m, c) => Math.max(m, c.startSample + c.samples.length), 0);
      expect(end).toBeLessThanOrEqual(640);
    }
    // Just under the bound is a gap like any other: the clock moves on.
    const call = new TwilioCall(server.port);
    await call.opened;
    call.start('CAJUMP000003');
    call.media('inbound', 0, pk[0]!);
    call.media('inbound', 1, pk[1]!, String(20 + TWILIO_MAX_GAP_MS));
    call.stop();
    expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
    await sleep(50);
    const last = received.get('CAJUMP000003:inbound')!.at(-1)!;
    expect(last.startSample + last.samples.length).toBeGreaterThan(16 * TWILIO_MAX_GAP_MS);
  });

  it('a track that sent nothing for minutes (Twilio may send no packets while a side is silent) goes on once that time has passed', async () => {
    // Before: any jump over TWILIO_MAX_GAP_MS closed the whole call (both tracks) with 1002, so an
    // agent track quiet for a minute ended the caller's analysis too. The call's clock is
    // performance.now() since its start arrived; the test moves it 5 minutes on instead of waiting.
    const pk = tonePackets(3);
    const realNow = performance.now.bind(performance);
    let offsetMs = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + offsetMs);
    try {
      const call = new TwilioCall(server.port);
      await call.opened;
      call.start('CASILENT0001', ['inbound', 'outbound']);
      call.media('inbound', 0, pk[0]!);
      call.media('outbound', 0, pk[0]!);
      await sleep(200); // the start is taken (the call's clock starts) before the clock moves on
      offsetMs = 300_000;
      const jump = String(20 + 300_000);
      call.media('outbound', 1, pk[1]!, jump);
      call.media('inbound', 1, pk[1]!);
      call.media('outbound', 2, pk[2]!, String(40 + 300_000));
      call.stop();
      expect(await call.closed).toEqual({ code: 1000, reason: 'stopped' });
      await sleep(50);
      // The outbound clock moved on 5 minutes without 5 minutes of samples; the inbound track was untouched.
      const out = received.get('CASILENT0001:outbound')!;
      const last = out.at(-1)!;
      expect(last.startSample + last.samples.length).toBeGreaterThan(16 * 300_000);
      expect(out.reduce((n, c) => n + c.samples.length, 0)).toBeLessThan(16 * 1000);
      const inb = received.get('CASILENT0001:inbound')!;
      expect(inb.at(-1)!.startSample + inb.at(-1)!.samples.length).toBeLessThanOrEqual(16 * 60);

      // The same jump on a call that has not run that long is a broken clock: 1002, as before.
      offsetMs = 0;
      const early = new TwilioCall(server.port);
      await early.opened;
      early.start('CASILENT0002');
      early.media('inbound', 0, pk[0]!);
      early.media('inbound', 1, pk[1]!, jump);
      const closed = await early.closed;
      expect(closed.code).toBe(1002);
      expect(closed.reason).toMatch(/jumps \d+ ms ahead of the track's audio \(over 60000\) and past the call's \d+ ms$/);
    } finally {
      clock.mockRestore();
    }
  });

  it('coalesces 20 ms packets into chunks that end at the hop ends (250 ms), contiguous and complete', async () => {
    const hopN = (TWILIO_MAX_COALESCE_MS * 16000) / 1000;
    expect(hopN).toBe(4000); // the server's default hop is 250 ms too
    const pk = tonePackets(55); // 1.1 s
    const call = new TwilioCall(server.port);
    await call.opened;
    call.start('CAGAP0000004');
    for (let k = 0; k < 55; k++) call.media('inbound', k, pk[k]!);
    call.stop();
    expect((await call.closed).code).toBe(1000);
    await sleep(50);
    const chunks = received.get('CAGAP0000004:inbound')!;
    // 55 packets (17 600 samples) in; out one chunk per hop (4 × 4000), the rest at stop, then the resampler's tail.
    expect(chunks.slice(0, 4).map((c) => [c.startSample, c.samples.length])).toEqual([0, 1, 2, 3].map((h) => [h * hopN, hopN]));
    expect(chunks.length).toBeLessThanOrEqual(6);
    let at = 0;
    for (const c of chunks) {
      expect(c.startSample).toBe(at);
      expect(c.samples.length).toBeLessThanOrEqual(hopN);
      at += c.samples.length;
    }
    expect(at).toBe(55 * 320);
  });

  it('a hop reaches the pipeline with the packet that completes it, and the audio equals decoding the whole call at once', async () => {
    const pk = tonePackets(60);
    const id = 'CAONCE000001:inbound';
    const call = new TwilioCall(server.port);
    await call.opened;
    call.start('CAONCE000001');
    const chunksNow = async () => {
      await sleep(150);
      return (received.get(id) ?? []).map((c) => [c.startSample, c.samples.length]);
    };
    // 12 packets = 240 ms: the first hop (4000 samples at 16 kHz) is not complete yet.
    for (let k = 0; k < 12; k++) call.media('inbound', k, pk[k]!);
    expect(await chunksNow()).toEqual([]);
    // The 13th packet (260 ms) completes it: it goes out now, not with a later packet.
    call.media('inbound', 12, pk[12]!);
    expect(await chunksNow()).toEqual([[0, 4000]]);
    // A 100 ms timestamp gap (filled with μ-law silence), then the rest.
    for (let k = 13; k < 60; k++) call.media('inbound', k, pk[k]!, String((k < 30 ? k : k + 5) * 20));
    call.stop();
    expect((await call.closed).code).toBe(1000);
    await sleep(50);
    const chunks = received.get(id)!;
    const got = new Float32Array(chunks.reduce((n, c) => n + c.samples.length, 0));
    let at = 0;
    for (const c of chunks) {
      expect(c.startSample).toBe(at);
      got.set(c.samples, at);
      at += c.samples.length;
    }
    const bytes = Buffer.concat([
      ...pk.slice(0, 30).map((p) => Buffer.from(p, 'base64')),
      Buffer.alloc(5 * 160, 0xff),
      ...pk.slice(30).map((p) => Buffer.from(p, 'base64')),
    ]);
    const want = resample(mulawToFloat32(bytes), 8000, 16000);
    expect(got.length).toBe(want.length);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('a close reason that quotes a non-ASCII event or track is cut to 123 bytes, not characters: the call closes 1002, the server goes on', async () => {
    // `ws` throws on a close reason over 123 bytes; cut to 120 characters, 100 "é" (2 bytes each) took the process down.
    const event = new TwilioCall(server.port);
    await event.opened;
    event.send({ event: 'é'.repeat(100) });
    const e = await event.closed;
    expect(e.code).toBe(1002);
    expect(e.reason).toMatch(/^unknown event "é+$/);
    expect(Buffer.byteLength(e.reason)).toBeLessThanOrEqual(123);

    const track = new TwilioCall(server.port);
    await track.opened;
    track.start('CAUTF8000001');
    track.media('€'.repeat(60), 0, tonePackets(1)[0]!);
    const t = await track.closed;
    expect(t.code).toBe(1002);
    expect(t.reason).toMatch(/^media for track "€+$/);
    expect(Buffer.byteLength(t.reason)).toBeLessThanOrEqual(123);

    // Still serving: a good call goes through.
    const ok = new TwilioCall(server.port);
    await ok.opened;
    ok.start('CAUTF8000002');
    ok.media('inbound', 0, tonePackets(1)[0]!);
    ok.stop();
    expect(await ok.closed).toEqual({ code: 1000, reason: 'stopped' });
  });
});

describe('Twilio: a call whose streams wait to open', () => {
  it(
    'a call of the same callSid right after another waits for its streams to end; past TWILIO_MAX_HELD_BYTES of waiting media it is closed with 1008',
    { timeout: 20_000 },
    async () => {
      // The previous call's pipelines still finishing (a 300 ms delay) make the next call's claims wait.
      const server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 100), delay(300)) });
      try {
        const sub: TestClient = connect(server, '/v1/stream?streams=*');
        await sub.opened;
        const pk = tonePackets(50);
        const call = async (): Promise<TwilioCall> => {
          const c = new TwilioCall(server.port);
          await c.opened;
          c.start('CAWAIT000001');
          return c;
        };
        const first = await call();
        for (let k = 0; k < 50; k++) first.media('inbound', k, pk[k]!);
        first.stop();
        expect((await first.closed).code).toBe(1000);
        // At once a call of the same callSid floods while it waits: closed, nothing piles up.
        expect(TWILIO_MAX_HELD_BYTES).toBe(480_000);
        const big = Buffer.alloc(160_000, 0xff).toString('base64');
        const flood = await call();
        for (let k = 0; k < 4; k++) flood.media('inbound', k, big, String(k * 20_000));
        expect(await flood.closed).toEqual({ code: 1008, reason: "more than 30 s of media arrived before the call's streams could open" });
        // Once the flood's (empty) stream has ended, the next call goes on, with all its audio.
        await sub.until((c) => c.of('status').filter((m) => m.state === 'ended').length === 2, 5000, 'the flood to end');
        const second = await call();
        for (let k = 0; k < 50; k++) second.media('inbound', k, pk[k]!);
        second.stop();
        expect((await second.closed).code).toBe(1000);
        await sub.until((c) => c.of('status').filter((m) => m.state === 'ended').length === 3, 5000, 'the calls to end');
        // The first call's 10 frames (1 s at a 100 ms hop), its end, the flood's (empty) end, the second call's 10 frames.
        expect(sub.messages.filter((m) => m.type === 'affect' || m.type === 'status').map((m) => (m.type === 'status' ? m.state : m.type))).toEqual([
          ...Array<string>(10).fill('affect'),
          'ended',
          'ended',
          ...Array<string>(10).fill('affect'),
          'ended',
        ]);
        sub.close();
      } finally {
        await server.close();
      }
    },
  );
});

describe('Twilio with a Redis backplane: a socket closed while its claims are pending', () => {
  let redis: TestRedis;
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(async () => {
    for (const s of servers) {
      await s.close();
      await s.hub.close();
    }
    await redis?.stop();
  });

  it('leaves no stream id busy: the call starts again on the same node and on another node', async () => {
    const keyPrefix = `tw${process.pid}:`;
    const nodeOf = async () => {
      const hub = await RedisHub.connect({ url: redis.url, keyPrefix, nodeHeartbeatMs: 100, nodeTtlMs: 2000, maxReconnectDelayMs: 300, logger: silentLogger });
      const s = await startServer({ hub, onIngestStream: (id, audio$) => recording(id)(audio$) });
      servers.push(s);
      return s;
    };
    const a = await nodeOf();
    const b = await nodeOf();
    const callSid = 'CACLAIM00001';
    // Hold Redis' writes so the claims stay pending while the socket goes away.
    const admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    try {
      const first = new TwilioCall(a.port);
      await first.opened;
      await admin.call('CLIENT', 'PAUSE', '400', 'WRITE');
      first.start(callSid, ['inbound', 'outbound']);
      await sleep(60);
      first.ws.terminate();
      await first.closed;
      await sleep(600); // the pause ends, the claims are answered
    } finally {
      admin.disconnect();
    }
    const pk = tonePackets(30);
    const play = async (port: number): Promise<{ code: number; reason: string }> => {
      const c = new TwilioCall(port);
      await c.opened;
      c.start(callSid, ['inbound', 'outbound']);
      for (let k = 0; k < 30; k++) {
        c.media('inbound', k, pk[k]!);
        c.media('outbound', k, pk[k]!);
      }
      c.stop();
      return c.closed;
    };
    // The same node takes the call again (before the fix: 1008 "stream CACLAIM00001:inbound busy").
    expect(await play(a.port)).toEqual({ code: 1000, reason: 'stopped' });
    // Another node can take it too once A has ended it (the claim is released in Redis).
    let onB = { code: 0, reason: '' };
    for (let i = 0; i < 40; i++) {
      onB = await play(b.port);
      if (onB.code === 1000) break;
      await sleep(100);
    }
    expect(onB).toEqual({ code: 1000, reason: 'stopped' });
  });
});
