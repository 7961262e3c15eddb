/**
 * Issue 13 item 6 papercuts of recordings and replay:
 * - recordings carry each stream's windowMs/hopMs (a `stream` line, the message subscribers get),
 *   and replay announces the stream with them (it used to infer the hop and assume a 1 s window);
 * - `replay --loop` for on-stage demos: pass after pass until SIGTERM, seqs and times carrying on
 *   (one long gapless stream for subscribers), ended cleanly at the stop;
 * - a recorded call that reconnected (the same stream opened twice) replays as live: the reopen's
 *   `stream` message, and the second part paced from its own restarted audio time.
 * Real `run --record`, a real `replay` child process and a real ws subscriber on loopback.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerMessageSchema } from '../../core/protocol.js';
import { readRecording } from '../../src/commands/replay.js';
import { REPO_ROOT } from '../../core/config.js';
import { WebSocket } from 'ws';
import { JsonlRecorder } from '../../src/record.js';
import { twilioMedia, twilioStart, twilioStop } from '../../src/server/twilio-messages.js';
import { connect, loudnessPipeline, sleep, startServer } from '../helpers/server-helpers.js';
import { twilioPayloads } from '../helpers/twilio-audio.js';
import { waitForListening } from '../helpers/listening.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const SPEECH = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env.CIRCUMPLEX_TOKENS;
delete env.CIRCUMPLEX_TOKENS_FILE;
delete env.CIRCUMPLEX_VOSK_MODEL;
const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-replay-loop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A short recording made by the real `run --record` with a 2 s window and a 500 ms hop (made once). */
let recorded: string | undefined;
function recordRun(): string {
  if (recorded) return recorded;
  const rec = path.join(dir, 'run.jsonl');
  // 4 s of the speech fixture on stdin (raw): short, and a known number of frames.
  const pcm = readFileSync(SPEECH).subarray(44, 44 + 4 * 32000);
  const r = spawnSync(process.execPath, [BIN, 'run', '--input', '-', '--window-ms', '2000', '--hop-ms', '500', '--stream-id', 'stage', '--record', rec], {
    cwd: REPO_ROOT,
    env,
    input: pcm,
    timeout: 90_000,
  });
  expect(r.status, r.stderr.toString()).toBe(0);
  return (recorded = rec);
}

describe('recordings carry windowMs/hopMs', () => {
  it('run --record writes a stream line with the window and hop; replay reads them back instead of guessing', () => {
    const rec = recordRun();
    const first = JSON.parse(readFileSync(rec, 'utf8').split('\n')[0]!) as unknown;
    expect(first).toEqual({ type: 'stream', stream: { streamId: 'stage', hopMs: 500, windowMs: 2000, sampleRateHz: 16000, state: 'live', lastSeq: -1 } });
    const r = readRecording(rec);
    expect(r.streams).toHaveLength(1);
    expect(r.streams[0]).toMatchObject({ streamId: 'stage', hopMs: 500, windowMs: 2000 });
    // The stream line is not a message to republish.
    expect(r.messages.every((m) => m.message.type !== ('stream' as string))).toBe(true);
    // An older recording (no stream line) still works: hop inferred from the frames, window unknown.
    const old = path.join(dir, 'old.jsonl');
    writeFileSync(old, readFileSync(rec, 'utf8').split('\n').slice(1).join('\n'));
    expect(readRecording(old).streams[0]).toMatchObject({ streamId: 'stage', hopMs: 500, windowMs: undefined });
  });
});

describe('replay of a file that is not a recording', () => {
  it('a binary file (a WAV given by mistake) is one AFFECT_ERR_INPUT naming it, not hundreds of bad lines quoting its bytes', () => {
    let err: unknown;
    try {
      readRecording(SPEECH);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'AFFECT_ERR_INPUT',
      message: `${SPEECH} is a binary file (starts with "RIFF"), not a recording (JSONL: one wire message per line)`,
    });
    expect((err as Error).message).not.toMatch(/bad line/);
  });
});

describe('replay of a recording with a stream id the hub refuses', () => {
  it('names the lines before anything listens (it used to print the error after listening and hang, even with --exit-on-end)', () => {
    const id = 'x'.repeat(130);
    const rec = path.join(dir, 'long-id.jsonl');
    writeFileSync(
      rec,
      `${JSON.stringify({ type: 'status', streamId: id, seq: 0, tMs: 0, state: 'live', message: 'x' })}\n${JSON.stringify({ type: 'status', streamId: 'ok', seq: 0, tMs: 0, state: 'live', message: 'x' })}\n`,
    );
    const r = spawnSync(process.execPath, [BIN, 'replay', rec, '--no-wait', '--exit-on-end', '--port', '0'], { cwd: REPO_ROOT, env, timeout: 30_000 });
    expect(r.status, r.stderr.toString()).toBe(2);
    expect(r.stderr.toString()).toContain(`${rec}:1: stream id "${'x'.repeat(40)}…" (130 characters) is not 1-128 letters, digits and . _ : -`);
    expect(r.stderr.toString()).not.toMatch(/listening on/);
  });
});

describe('replay --loop', () => {
  it('replays pass after pass with seqs and times carrying on, announces the recorded window, and ends the stream on SIGTERM', async () => {
    const rec = recordRun();
    const recording = readRecording(rec);
    const perPass = recording.messages.filter((m) => !(m.message.type === 'status' && m.message.state === 'ended')).length;
    const frames = recording.messages.filter((m) => m.message.type === 'affect').length;
    expect(frames).toBeGreaterThan(2);
    const child = spawn(process.execPath, [BIN, 'replay', rec, '--loop', '--speed', '8', '--port', '0', '--no-wait'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const { port, stderr } = await waitForListening(child, 'replay');
      const c = connect({ port });
      await c.opened;
      await c.until((x) => x.of('hello').length === 1);
      expect(c.of('hello')[0]!.streams[0]).toMatchObject({ streamId: 'stage', hopMs: 500, windowMs: 2000 });
      c.send({ type: 'subscribe', streamIds: ['stage'], resumeFrom: { stage: -1 } });
      // Three passes' worth of frames.
      await c.until((x) => x.of('affect').length >= 3 * frames, 60_000, 'three passes of frames');
      expect(stderr()).toMatch(/pass 1 done .*starting again/);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await c.closed;
      const msgs = c.messages.map((m) => ServerMessageSchema.parse(m)).filter((m) => 'seq' in m && m.streamId === 'stage');
      const seqs = msgs.map((m) => ('seq' in m ? m.seq : -1));
      // Gapless and increasing over the passes (pass k shifted by k × the recording's seq span).
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
      expect(seqs.length).toBeGreaterThan(2 * perPass);
      const t = c.of('affect').map((m) => m.tMs);
      for (let i = 1; i < t.length; i++) expect(t[i]!, `frame ${i}`).toBeGreaterThan(t[i - 1]!);
      // No 'ended' between passes; the stop ends the stream (or the close came first).
      const ended = msgs.filter((m) => m.type === 'status' && m.state === 'ended');
      expect(ended.length).toBeLessThanOrEqual(1);
      if (ended.length === 1) expect(msgs.at(-1)).toBe(ended[0]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await sleep(0);
    }
  });

  it('--loop on a recording whose messages share one time (a single frame) is paced, not a spin: Ctrl-C stops it', async () => {
    // It used to publish pass after pass without yielding: SIGINT was never handled and stderr
    // filled with "pass N done" lines (gigabytes in minutes).
    const lines = readFileSync(recordRun(), 'utf8').split('\n');
    const one = path.join(dir, 'one-frame.jsonl');
    writeFileSync(one, `${lines[0]}\n${lines.find((l) => l.includes('"type":"affect"'))}\n`);
    for (const speed of [[], ['--speed', '100000']]) {
      const child = spawn(process.execPath, [BIN, 'replay', one, '--loop', '--port', '0', '--no-wait', ...speed], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      try {
        const { stderr } = await waitForListening(child, 'replay');
        await sleep(1000);
        child.kill('SIGINT');
        const code = await Promise.race([exited, sleep(10_000).then(() => 'still running')]);
        expect(code, `${speed.join(' ')}: ${stderr().slice(-500)}`).toBe(0);
        const passes = stderr().match(/pass \d+ done/g) ?? [];
        expect(passes.length).toBeGreaterThan(0);
        // At most one pass per 100 ms (and one hop, 500 ms, at the recorded speed).
        expect(passes.length, speed.join(' ')).toBeLessThan(speed.length ? 30 : 6);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    }
  });

  it('--loop with --exit-on-end is a clear configuration error', () => {
    const rec = recordRun();
    const r = spawnSync(process.execPath, [BIN, 'replay', rec, '--loop', '--exit-on-end', '--port', '0'], { cwd: REPO_ROOT, env, timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toMatch(/AFFECT_ERR_CONFIG: --loop and --exit-on-end contradict each other/);
  });

  it('replay on a non-loopback host without tokens refuses to start unless --insecure (protected mode, as serve)', () => {
    const rec = recordRun();
    const r = spawnSync(process.execPath, [BIN, 'replay', rec, '--host', '0.0.0.0', '--port', '0', '--exit-on-end', '--no-wait'], {
      cwd: REPO_ROOT,
      env,
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toMatch(/AFFECT_ERR_CONFIG: refusing to serve on 0\.0\.0\.0 without tokens/);
    const ok = spawnSync(process.execPath, [BIN, 'replay', rec, '--host', '0.0.0.0', '--insecure', '--port', '0', '--exit-on-end', '--no-wait'], {
      cwd: REPO_ROOT,
      env,
      timeout: 30_000,
    });
    expect(ok.status, ok.stderr.toString()).toBe(0);
    expect(ok.stderr.toString()).toMatch(/listening on ws:\/\/0\.0\.0\.0:\d+\/v1\/stream \(all interfaces: /);
  });
});

describe('replay of a call that reconnected (the same stream opened twice)', () => {
  it("sends the reopened stream's `stream` message as live did, byte for byte per stream, and paces its second part from its own restarted audio time", async () => {
    // Record a real server's call: a Twilio call (3 s), stopped, then the same callSid again (3 s).
    const rec = path.join(dir, 'reconnected.jsonl');
    const recorder = new JsonlRecorder(rec);
    const server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(loudnessPipeline(id, 250)) });
    const off = server.hub.subscribe((ev) => {
      if (ev.type === 'message') recorder.write(ev.message);
      else if (ev.type === 'stream') recorder.writeStream(ev.stream);
    });
    const live = connect(server, '/v1/stream?streams=*');
    await live.opened;
    const tone = twilioPayloads(Float32Array.from({ length: 3 * 16000 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 300 * i) / 16000)));
    const id = 'CARECONNECT1:inbound';
    try {
      for (const leg of [1, 2]) {
        const call = new WebSocket(`ws://127.0.0.1:${server.port}/v1/telephony/twilio`);
        await new Promise((resolve, reject) => call.once('open', resolve).once('error', reject));
        const closed = new Promise((resolve) => call.once('close', resolve));
        call.send(twilioStart('CARECONNECT1', { streamSid: `MZleg${leg}`, tracks: ['inbound'] }));
        tone.forEach((p, k) => call.send(twilioMedia(`MZleg${leg}`, 'inbound', k, p)));
        call.send(twilioStop(`MZleg${leg}`));
        await closed;
        await live.until((c) => c.of('status').filter((s) => s.streamId === id && s.state === 'ended').length === leg, 10_000, `leg ${leg} to end`);
      }
    } finally {
      off();
      recorder.close();
      live.close();
      await server.close();
    }
    const ofStream = (raw: string[]) => raw.filter((l) => l.includes(`"streamId":"${id}"`) && !l.startsWith('{"type":"hello"'));
    // The live subscriber saw: stream, leg 1, ended, stream (reopened, lastSeq carried on), leg 2 (times from 0 again), ended.
    const seen = ofStream(live.raw);
    expect(seen.filter((l) => l.startsWith('{"type":"stream"'))).toHaveLength(2);

    const child = spawn(process.execPath, [BIN, 'replay', rec, '--speed', '2', '--port', '0', '--exit-on-end'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const { port } = await waitForListening(child, 'replay');
      const sub = connect({ port }, '/v1/stream?streams=*');
      const at: number[] = [];
      sub.ws.on('message', () => at.push(performance.now()));
      await sub.opened;
      await sub.closed;
      // Replay announced the stream in its hello; from there on, exactly what the live subscriber got.
      const got = ofStream(sub.raw);
      expect(got).toEqual(seen.slice(1));
      // The second part is paced too: 3 s of audio at 2× takes about 1.5 s (it used to go out at once).
      const leg2At = at[sub.raw.findIndex((l) => l.includes('"state":"ended"')) + 1]!;
      expect(at.at(-1)! - leg2At).toBeGreaterThan(1000);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
