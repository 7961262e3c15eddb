/**
 * `replay` and `watch` for real: a session is recorded with the real JsonlRecorder from the real
 * hub, replayed through the real server, and subscribers must get exactly the recorded messages
 * (same seqs). The CLI is also run as a process: `circumplex replay` + `circumplex watch --json`
 * end to end, and a bad recording exits 2 naming file:line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { CircumplexClient } from '../../clients/node-client.js';
import type { StreamEventMessage } from '../../core/protocol.js';
import { readRecording, replayCommand } from '../../src/commands/replay.js';
import { watchCommand } from '../../src/commands/watch.js';
import { JsonlRecorder } from '../../src/record.js';
import type { RunningServer } from '../../src/server/ws-server.js';
import { affectEvent, freePort, movingPoint, startRealServer, transcriptEvent } from '../helpers/clients-protocol-server.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CLI = path.resolve('bin/circumplex.mjs');

/**
 * Records a two-stream session through the real hub + JsonlRecorder; returns the file. The recorder
 * starts after 3 frames of 'stage', so recorded seqs start at 3 there (a replay that re-sequenced
 * from 0 would be caught).
 */
async function recordSession(frames = 20): Promise<string> {
  const file = path.join(dir, `session-${frames}.jsonl`);
  const server = await startRealServer();
  server.hub.openStream({ streamId: 'stage', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
  server.hub.openStream({ streamId: 'booth', hopMs: 500, windowMs: 1000, sampleRateHz: 16000 });
  for (let i = 0; i < 3; i++) server.hub.publish('stage', affectEvent('stage', 0, 0, 0));
  const recorder = new JsonlRecorder(file);
  const off = server.hub.subscribe((ev) => ev.type === 'message' && recorder.write(ev.message));
  for (let i = 0; i < frames; i++) {
    const p = movingPoint(i);
    server.hub.publish('stage', affectEvent('stage', (i + 1) * 250, p.valence, p.arousal));
    if (i % 2 === 0) server.hub.publish('booth', affectEvent('booth', (i / 2 + 1) * 500, -p.valence, p.arousal * 0.5));
    if (i === 5) server.hub.publish('stage', transcriptEvent('stage', 1500, 'hello from the stage'));
  }
  server.hub.endStream('stage', 'input file ended');
  server.hub.endStream('booth', 'input file ended');
  off();
  recorder.close();
  await server.close();
  return file;
}

/**
 * Messages grouped by stream, in order. Seq order within a stream is the protocol's promise; the
 * interleaving across streams can differ when a subscriber's resume replays one stream's backlog
 * before another's.
 */
function byStream(msgs: StreamEventMessage[]): Record<string, StreamEventMessage[]> {
  const out: Record<string, StreamEventMessage[]> = {};
  for (const m of msgs) (out[m.streamId] ??= []).push(m);
  return out;
}

function linesOf(file: string): StreamEventMessage[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StreamEventMessage);
}

/** Collects frames until every stream has its 'ended' status. */
async function collectUntilEnded(client: CircumplexClient, streams: number): Promise<StreamEventMessage[]> {
  const got: StreamEventMessage[] = [];
  let ended = 0;
  for await (const f of client) {
    got.push(f);
    if (f.type === 'status' && f.state === 'ended' && ++ended === streams) break;
  }
  return got;
}

describe('replay', () => {
  it('serves a recording exactly as it was published (same messages, same seqs)', async () => {
    const file = await recordSession(20);
    const recorded = linesOf(file);
    expect(recorded.length).toBe(20 + 10 + 1 + 2);
    expect(recorded[0]).toMatchObject({ streamId: 'stage', seq: 3 });
    let client: CircumplexClient | undefined;
    let got: Promise<StreamEventMessage[]> | undefined;
    const code = await replayCommand(
      file,
      { realtime: false, port: 0, host: '127.0.0.1', wait: true, exitOnEnd: true },
      new PassThrough(),
      (server: RunningServer) => {
        client = CircumplexClient.connect(server.url);
        got = collectUntilEnded(client, 2);
      },
    );
    expect(code).toBe(0);
    const frames = await got;
    client?.close();
    // Same messages with the same seqs, in the same order per stream.
    expect(frames).toHaveLength(recorded.length);
    expect(byStream(frames ?? [])).toEqual(byStream(recorded));
  });

  it('paces by audio time with --speed', async () => {
    const file = await recordSession(12); // stage: 250..3000 ms of audio
    const rec = readRecording(file);
    expect(rec.streams.map((s) => [s.streamId, s.hopMs])).toEqual([
      ['stage', 250],
      ['booth', 500],
    ]);
    let t0 = 0;
    const code = await replayCommand(file, { realtime: false, speed: 5, port: 0, host: '127.0.0.1', wait: false, exitOnEnd: true }, new PassThrough(), () => {
      t0 = performance.now();
    });
    const wallMs = performance.now() - t0;
    expect(code).toBe(0);
    // 2750 ms of audio between the first and last stage frame at 5x: at least 550 ms of wall time.
    expect(wallMs).toBeGreaterThanOrEqual(500);
  });
});

describe('watch', () => {
  it('prints --json lines and compact lines for live frames, and stops after --count', async () => {
    const server = await startRealServer();
    try {
      server.hub.openStream({ streamId: 'mic', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
      const publishSoon = setInterval(() => {
        const seq = (server.hub.stream('mic')?.lastSeq ?? -1) + 1;
        const p = movingPoint(seq);
        server.hub.publish('mic', affectEvent('mic', seq * 250, p.valence, p.arousal));
      }, 20);
      const jsonOut = new PassThrough();
      const textOut = new PassThrough();
      const [a, b] = await Promise.all([
        watchCommand(server.url, { json: true, count: 5, reconnect: true, fromStart: false }, jsonOut, new PassThrough()),
        watchCommand(server.url, { json: false, count: 3, reconnect: true, fromStart: false, stream: ['mic'] }, textOut, new PassThrough()),
      ]);
      clearInterval(publishSoon);
      expect([a, b]).toEqual([0, 0]);
      const json = String(jsonOut.read())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as StreamEventMessage);
      expect(json).toHaveLength(5);
      expect(json.every((m) => m.type === 'affect' && m.streamId === 'mic')).toBe(true);
      const seqs = json.map((m) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 5 }, (_, i) => (seqs[0] ?? 0) + i));
      const text = String(textOut.read()).trim().split('\n');
      expect(text).toHaveLength(3);
      for (const l of text) expect(l).toMatch(/^mic #\d+ \d+\.\d\ds {2}\S+ +v [+-]\d\.\d\d {2}a [+-]\d\.\d\d {2}i \d\.\d\d {2}c 0\.80 {2}speech$/);
    } finally {
      await server.close();
    }
  });

  it('with --no-reconnect ends cleanly when the server shuts down', async () => {
    const server = await startRealServer();
    const out = new PassThrough();
    const run = watchCommand(server.url, { json: true, reconnect: false, fromStart: false }, out, new PassThrough());
    await new Promise((r) => setTimeout(r, 200));
    await server.close();
    await expect(run).resolves.toBe(0);
  });

  it('fails with AFFECT_ERR_AUTH when the server refuses the token (401 none/unknown, 403 no subscribe scope)', async () => {
    const server = await startRealServer({ tokens: [{ token: 'metrics-only-1', scopes: ['metrics'] }] });
    try {
      const watch = (token?: string) =>
        watchCommand(server.url, { json: false, reconnect: true, fromStart: false, ...(token ? { token } : {}) }, new PassThrough(), new PassThrough());
      await expect(watch()).rejects.toMatchObject({
        code: 'AFFECT_ERR_AUTH',
        message: expect.stringMatching(/HTTP 401/),
        hint: expect.stringMatching(/needs a token/),
      });
      // A token was given, so 'pass one with --token' would be wrong advice.
      await expect(watch('wrong-token-1')).rejects.toMatchObject({
        code: 'AFFECT_ERR_AUTH',
        message: expect.stringMatching(/HTTP 401/),
        hint: expect.stringMatching(/does not know this token/),
      });
      await expect(watch('metrics-only-1')).rejects.toMatchObject({
        code: 'AFFECT_ERR_AUTH',
        message: expect.stringMatching(/HTTP 403/),
        hint: expect.stringMatching(/subscribe/),
      });
    } finally {
      await server.close();
    }
  });

  it('says "connection lost" once per lost connection, not once per failed retry', async () => {
    const server = await startRealServer();
    const errOut = new PassThrough();
    let errText = '';
    errOut.on('data', (d: Buffer) => (errText += String(d)));
    const stop = new AbortController();
    const run = watchCommand(server.url, { json: false, reconnect: true, fromStart: false }, new PassThrough(), errOut, stop.signal);
    const t0 = Date.now();
    while (!errText.includes('connected to') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await server.close();
    // Backoff 250, 500, 1000 ms…: at least three failed attempts in 2 s.
    await new Promise((r) => setTimeout(r, 2000));
    stop.abort();
    await run;
    expect(errText.match(/connection lost/g)).toHaveLength(1);
  });

  it('fails with a clear error when nothing listens and it may not reconnect', async () => {
    const port = await freePort();
    await expect(
      watchCommand(`ws://127.0.0.1:${port}`, { json: false, reconnect: false, fromStart: false }, new PassThrough(), new PassThrough()),
    ).rejects.toThrow(new RegExp(`watch ws://127\\.0\\.0\\.1:${port}/v1/stream: .*ECONNREFUSED`));
  });
});

/** Runs the real CLI as a process; resolves with its exit code and output. */
function cli(
  args: string[],
  onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => {
      stderr += String(d);
      onStderr?.(stderr, child);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('CLI processes', () => {
  it('`circumplex replay` + `circumplex watch --json` end to end', async () => {
    const file = await recordSession(8);
    let watch: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
    const replay = cli(['replay', file, '--port', '0', '--speed', '20'], (err, child) => {
      const m = /listening on (ws:\/\/\S+)/.exec(err);
      if (m?.[1] && !watch) {
        watch = cli(['watch', m[1], '--json', '--count', String(linesOf(file).length)]).then((r) => {
          child.kill('SIGINT');
          return r;
        });
      }
    });
    const r = await replay;
    expect(r.code).toBe(0);
    const w = await watch;
    expect(w?.code).toBe(0);
    const got = (w?.stdout ?? '')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StreamEventMessage);
    expect(got).toHaveLength(linesOf(file).length);
    expect(byStream(got)).toEqual(byStream(linesOf(file)));
  });

  it('a bad recording exits 2 naming the file and line', async () => {
    const file = path.join(dir, 'broken.jsonl');
    const good = linesOf(await recordSession(2));
    writeFileSync(file, `${JSON.stringify(good[0])}\n{"type":"affect","streamId":"x"\n`);
    const r = await cli(['replay', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('AFFECT_ERR_INPUT');
    expect(r.stderr).toContain(`${file}:2: not valid JSON`);
    expect(r.stderr).toContain('hint:');
  });
});
