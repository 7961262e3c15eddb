/**
 * An attacker on the network (or a web page in a local browser) against a real AffectServer on
 * loopback: real sockets, real HTTP requests and WebSocket upgrades.
 */
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTokenSpec } from '../../src/server/auth.js';
import { REFUSAL_LOG_WINDOW_MS, REFUSAL_LOGS_PER_WINDOW } from '../../src/server/handlers/upgrade.js';
import { RedisHub } from '../../src/server/redis-hub.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { TestRedis } from '../helpers/redis-server.js';
import { connect, silentLogger, startServer, upgradeStatus } from '../helpers/server-helpers.js';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A plain GET with the given headers: status and body. */
function get(port: number, path: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? -1, body }));
      })
      .on('error', reject);
  });
}

describe('DNS rebinding against a loopback server without tokens', () => {
  // A page on evil.example whose name now resolves to 127.0.0.1: its browser sends its own host and a matching Origin.
  const rebound = (port: number) => ({ host: `evil.example:${port}`, origin: `http://evil.example:${port}` });

  it('refuses upgrades (stream and ingest) and HTTP requests whose Host is not a loopback name, with 403', async () => {
    server = await startServer();
    const { host, origin } = rebound(server.port);
    for (const path of ['/v1/stream?streams=*', '/v1/ingest']) {
      const c = connect(server, path, { headers: { Host: host }, origin });
      expect(await upgradeStatus(c), path).toBe(403);
    }
    for (const path of ['/healthz', '/metrics', '/']) {
      const r = await get(server.port, path, { Host: host });
      expect(r.status, path).toBe(403);
      expect((JSON.parse(r.body) as { error: string }).error).toMatch(/host evil\.example is not allowed.*localhost/);
    }
    expect(await server.metrics.render()).toMatch(/circumplex_refused_total\{reason="host"\} 5/);
  });

  it('still answers to localhost, 127.0.0.1, [::1] and the hosts of allowed origins', async () => {
    server = await startServer();
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`, 'app.localhost']) {
      expect((await get(server.port, '/healthz', { Host: host })).status, host).toBe(200);
    }
    const c = connect(server, '/v1/stream', { headers: { Host: `localhost:${server.port}` }, origin: `http://localhost:${server.port}` });
    expect(await upgradeStatus(c)).toBe(101);
    c.close();
    await server.close();
    server = await startServer({ allowedOrigins: ['https://dash.example'] });
    expect((await get(server.port, '/healthz', { Host: 'dash.example' })).status).toBe(200);
    const d = connect(server, '/v1/stream', { headers: { Host: 'dash.example' }, origin: 'https://dash.example' });
    expect(await upgradeStatus(d)).toBe(101);
    d.close();
  });

  it('with tokens the Host is not checked (a rebinding page has no token)', async () => {
    server = await startServer({ tokens: [{ token: 'sub-token-123', scopes: ['subscribe'] }] });
    const { host, origin } = rebound(server.port);
    expect(await upgradeStatus(connect(server, '/v1/stream', { headers: { Host: host }, origin }))).toBe(401);
    const c = connect(server, '/v1/stream', { headers: { Host: host, Authorization: 'Bearer sub-token-123' }, origin });
    expect(await upgradeStatus(c)).toBe(101);
    c.close();
  });
});

describe('/healthz with tokens configured', () => {
  it("shows the backplane's target, node id and error only to a token that may read /metrics; anyone gets its kind and state", async () => {
    const redis = await TestRedis.start();
    const hub = await RedisHub.connect({ url: redis.url, keyPrefix: `sec${process.pid}:`, logger: silentLogger });
    try {
      server = await startServer({
        hub,
        tokens: [
          { token: 'metrics-token-123', scopes: ['metrics'] },
          { token: 'sub-token-123', scopes: ['subscribe'] },
        ],
      });
      const health = async (headers: Record<string, string>) =>
        (await (await fetch(`${server!.httpUrl}healthz`, { headers })).json()) as { status: string; backplane: Record<string, unknown> };
      const callers: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong-token-123' }, { Authorization: 'Bearer sub-token-123' }];
      for (const headers of callers) {
        const h = await health(headers);
        expect(h.status).toBe('ok');
        expect(h.backplane).toEqual({ kind: 'redis', up: true });
        expect(JSON.stringify(h)).not.toContain(String(redis.port));
      }
      const ops = await health({ Authorization: 'Bearer metrics-token-123' });
      expect(ops.backplane).toMatchObject({ kind: 'redis', up: true, target: `redis://127.0.0.1:${redis.port}/0`, nodeId: expect.any(String) });
    } finally {
      await server?.close();
      server = undefined;
      await hub.close();
      await redis.stop();
    }
  });
});

describe('/healthz with tokens configured: the ASR host', () => {
  it('shows why the ASR host died only to a token that may read /metrics; anyone sees it down and the node degraded', async () => {
    server = await startServer({
      tokens: [
        { token: 'metrics-token-123', scopes: ['metrics'] },
        { token: 'sub-token-123', scopes: ['subscribe'] },
      ],
    });
    // The counters as serve wires them (engine.asrStats, a live object); the real host's death is in server-process.test.ts.
    const asr = {
      hostsStarted: 1,
      hostDeaths: 1,
      watchdogKills: 1,
      openRecognizers: 0,
      hostUp: false,
      lastHostError: 'libvosk did not answer within 15000 ms (hung)',
    };
    server.metrics.watchTextPath(
      () => undefined,
      () => asr,
    );
    const health = async (headers: Record<string, string>) => {
      const res = await fetch(`${server!.httpUrl}healthz`, { headers });
      return { code: res.status, body: (await res.json()) as { status: string; asr: Record<string, unknown> } };
    };
    const callers: Record<string, string>[] = [{}, { Authorization: 'Bearer sub-token-123' }];
    for (const headers of callers) {
      const h = await health(headers);
      expect(h.code).toBe(200);
      expect(h.body.status).toBe('degraded');
      expect(h.body.asr).toEqual({ up: false, restarts: 0, hostDeaths: 1, watchdogKills: 1 });
    }
    const ops = await health({ Authorization: 'Bearer metrics-token-123' });
    expect(ops.body.asr).toMatchObject({ up: false, lastError: asr.lastHostError });
    asr.hostUp = true;
    asr.hostsStarted = 2;
    expect((await health({})).body).toMatchObject({ status: 'ok', asr: { up: true, restarts: 1 } });
  });
});

describe('token lists that could not work as written', () => {
  it('a token written with spaces around it (`tok : subscribe`) is trimmed and works as a Bearer token; one with inner whitespace is refused', async () => {
    const tokens = parseTokenSpec(' dash-board-1 : subscribe ; calls-12345:publish');
    expect(tokens.map((t) => t.token)).toEqual(['dash-board-1', 'calls-12345']);
    server = await startServer({ tokens });
    const c = connect(server, '/v1/stream', { headers: { Authorization: 'Bearer dash-board-1' } });
    expect(await upgradeStatus(c)).toBe(101);
    c.close();
    expect(() => parseTokenSpec('dash board-1:subscribe')).toThrow(/CIRCUMPLEX_TOKENS: a token must not contain whitespace/);
  });

  it('a token listed twice is refused, naming the entries but not the token (only the first listing’s scopes applied)', async () => {
    const twice = parseTokenSpec('dash-board-1:subscribe;other-token-1:publish;dash-board-1:metrics', 'CIRCUMPLEX_TOKENS');
    await expect(startServer({ tokens: twice })).rejects.toThrow(/tokens\[2\] repeats the token of tokens\[0\]; only one entry's scopes would apply/);
    await expect(startServer({ tokens: twice })).rejects.not.toThrow(/dash-board-1/);
  });
});

describe('a flood of refused upgrades', () => {
  it('logs the first REFUSAL_LOGS_PER_WINDOW one by one and sums up the rest once the window ends; metrics count them all', async () => {
    const lines: { msg: string; reason?: string; suppressed?: number; reasons?: Record<string, number> }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as (typeof lines)[number]);
        cb();
      },
    });
    server = await startServer({ logger: pino({ level: 'info' }, sink), tokens: [{ token: 'sub-token-123', scopes: ['subscribe'] }] });
    const n = 150;
    for (let i = 0; i < n; i += 25) {
      const batch = Array.from({ length: 25 }, (_, k) =>
        upgradeStatus(connect(server!, '/v1/stream', i + k < 100 ? { headers: { Authorization: 'Bearer wrong-token-1' } } : {})),
      );
      expect(new Set(await Promise.all(batch))).toEqual(new Set([401]));
    }
    expect(lines.filter((l) => l.msg === 'upgrade refused')).toHaveLength(REFUSAL_LOGS_PER_WINDOW);
    await new Promise((r) => setTimeout(r, REFUSAL_LOG_WINDOW_MS + 500));
    const summary = lines.filter((l) => l.msg === 'more upgrades refused (not logged one by one)');
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ suppressed: n - REFUSAL_LOGS_PER_WINDOW, reasons: { 'bad-token': 100 - REFUSAL_LOGS_PER_WINDOW, 'missing-token': 50 } });
    expect(await server.metrics.render()).toMatch(/circumplex_refused_total\{reason="bad-token"\} 100\n/);
    // A new window logs again.
    expect(await upgradeStatus(connect(server, '/v1/stream'))).toBe(401);
    expect(lines.filter((l) => l.msg === 'upgrade refused')).toHaveLength(REFUSAL_LOGS_PER_WINDOW + 1);
  }, 30_000);
});

describe('connections held open without a request (slowloris)', () => {
  /** Opens a TCP connection from `localAddress`; resolves once connected, with a promise of its close. */
  const open = (port: number, localAddress: string) =>
    new Promise<{ sock: net.Socket; closed: Promise<void> }>((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress });
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      sock.on('error', () => {});
      sock.once('connect', () => resolve({ sock, closed }));
      sock.once('close', () => reject(new Error('closed before connecting')));
    });

  it('one address may hold maxPendingConnectionsPerAddress connections without a whole request; more are closed at once, others are served', async () => {
    await expect(startServer({ maxPendingConnectionsPerAddress: 0 })).rejects.toThrow(/maxPendingConnectionsPerAddress must be an integer >= 1, got 0/);
    const cap = 64;
    server = await startServer({ maxPendingConnectionsPerAddress: cap });
    const held: { sock: net.Socket; closed: Promise<void> }[] = [];
    for (let i = 0; i < cap; i++) held.push(await open(server.port, '127.0.0.2'));
    // One trickles a header now and then: still pending.
    held[0]!.sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const extra = await Promise.all(Array.from({ length: 5 }, () => open(server!.port, '127.0.0.2')));
    const outcome = await Promise.race([
      Promise.all(extra.map((e) => e.closed)).then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still open'), 2000)),
    ]);
    expect(outcome).toBe('closed');
    expect(await server.metrics.render()).toMatch(/circumplex_refused_total\{reason="pending-connections"\} 5\n/);
    // Another address is served, over HTTP and WebSocket.
    expect((await get(server.port, '/healthz', { Host: '127.0.0.1' })).status).toBe(200);
    const c = connect(server, '/v1/stream');
    expect(await upgradeStatus(c)).toBe(101);
    c.close();
    // A held connection that completes its request frees its place.
    const answered = new Promise<string>((r) => held[0]!.sock.once('data', (d: Buffer) => r(d.toString())));
    held[0]!.sock.write('\r\n');
    expect(await answered).toMatch(/^HTTP\/1\.1 200/);
    const again = await open(server.port, '127.0.0.2');
    const still = await Promise.race([again.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 500))]);
    expect(still).toBe('open');
    for (const h of [...held, again]) h.sock.destroy();
  });
});
