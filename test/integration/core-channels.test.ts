/**
 * `run --channels-as-streams`: a stereo call recording (agent left, caller right, made here from
 * espeak-ng speech at known times) is analysed as two streams, `<id>:ch0` and `<id>:ch1`, each
 * with its own frames, seq and turns at its own speaker's times; raw stereo on stdin gives the
 * same; a mono input is a clear configuration error. `serve --channels-as-streams` publishes the
 * same two streams to a real WebSocket subscriber on loopback. A WAV piped on stdin is recognised
 * by its header (same output as the file), and a --rate that contradicts a WAV header is refused.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerMessageSchema, type ServerMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import { concat, silence, speak, wavBytes, writeWav } from '../helpers/vad-audio.js';
import { connect, sleep } from '../helpers/server-helpers.js';
import { waitForListening } from '../helpers/listening.js';

const BIN = 'bin/circumplex.mjs';
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env.CIRCUMPLEX_VOSK_MODEL;
const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-channels-'));
const STEREO = path.join(dir, 'call.wav');
const MONO = path.join(dir, 'mono.wav');
let left: Float32Array;
let right: Float32Array;
let agentSpan: [number, number];
let callerSpan: [number, number];

function run(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [BIN, 'run', ...args], { env, input, maxBuffer: 64 * 1024 * 1024, timeout: 90_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

beforeAll(() => {
  const agent = speak('Thank you for calling, how can I help you today?');
  const caller = speak('My internet has been down for three days.');
  // Agent speaks first on the left; the caller answers on the right; each channel is silent while the other talks.
  const l = concat([silence(0.8, 21), agent, silence(caller.length / 16000 + 1.6, 22)]);
  const r = concat([silence(agent.length / 16000 + 1.3, 23), caller, silence(1.1, 24)]);
  left = l.samples;
  right = r.samples.subarray(0, left.length);
  agentSpan = l.spans[1]!;
  callerSpan = r.spans[1]!;
  writeWav(STEREO, [left, right]);
  writeWav(MONO, [left]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run --channels-as-streams', () => {
  it('a stereo file gives one stream per channel with its own frames, seqs and turns', () => {
    const r = run(['--input', STEREO, '--channels-as-streams', '--stream-id', 'call', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const msgs = serverMessages(r.stdout);
    for (const [id, span] of [
      ['call:ch0', agentSpan],
      ['call:ch1', callerSpan],
    ] as const) {
      const mine = msgs.filter((m) => 'streamId' in m && m.streamId === id);
      expect(mine.map((m) => ('seq' in m ? m.seq : -1))).toEqual([...Array(mine.length).keys()]);
      expect(mine.filter((m) => m.type === 'affect').length).toBeGreaterThan(20);
      const turns = mine.filter((m) => m.type === 'turn');
      expect(turns, id).toHaveLength(1);
      const t = turns[0]!;
      if (t.type !== 'turn') throw new Error('not a turn');
      expect(Math.abs(t.startMs - span[0]), `${id} start`).toBeLessThanOrEqual(200);
      expect(Math.abs(t.endMs - span[1]), `${id} end`).toBeLessThanOrEqual(200);
    }
    expect(msgs.every((m) => 'streamId' in m && (m.streamId === 'call:ch0' || m.streamId === 'call:ch1'))).toBe(true);
  });

  it('raw stereo s16le on stdin gives the same streams and turns as the file', () => {
    const wav = wavBytes([left, right]);
    const r = run(['--input', '-', '--channels', '2', '--channels-as-streams', '--stream-id', 'call', '--json'], wav.subarray(44));
    expect(r.code, r.stderr).toBe(0);
    const fromFile = serverMessages(run(['--input', STEREO, '--channels-as-streams', '--stream-id', 'call', '--json']).stdout);
    const turns = (ms: ServerMessage[]) => ms.flatMap((m) => (m.type === 'turn' ? [[m.streamId, m.startMs, m.endMs]] : [])).sort();
    expect(turns(serverMessages(r.stdout))).toEqual(turns(fromFile));
  });

  it('a mono input is a clear configuration error', () => {
    const r = run(['--input', MONO, '--channels-as-streams']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AFFECT_ERR_CONFIG: --channels-as-streams needs an input with 2 or more channels; .*mono\.wav has 1/);
  });
});

const turnsOf = (ms: ServerMessage[]) => ms.flatMap((m) => (m.type === 'turn' ? [[m.streamId, m.startMs, m.endMs]] : [])).sort();

describe('WAV on stdin and --rate with WAV input', () => {
  it('a stereo WAV piped on stdin is recognised by its header: same streams and turns as the file (no --channels needed)', () => {
    const r = run(['--input', '-', '--channels-as-streams', '--stream-id', 'call', '--json'], wavBytes([left, right]));
    expect(r.code, r.stderr).toBe(0);
    const fromFile = serverMessages(run(['--input', STEREO, '--channels-as-streams', '--stream-id', 'call', '--json']).stdout);
    expect(turnsOf(serverMessages(r.stdout))).toEqual(turnsOf(fromFile));
    expect(turnsOf(fromFile)).toHaveLength(2);
  });

  it('a mono 8 kHz WAV on stdin gives the frames the same WAV gives as a file (header not read as samples, its rate honoured)', () => {
    const down = new Float32Array(Math.floor(left.length / 2));
    for (let i = 0; i < down.length; i++) down[i] = left[2 * i]!;
    const file = path.join(dir, 'mono8k.wav');
    writeWav(file, [down], 8000);
    const piped = run(['--input', '-', '--json'], wavBytes([down], 8000));
    const direct = run(['--input', file, '--json']);
    expect(piped.code, piped.stderr).toBe(0);
    const frames = (out: string) => serverMessages(out).flatMap((m) => (m.type === 'affect' ? [[m.tMs, m.valence.toFixed(4), m.arousal.toFixed(4)]] : []));
    expect(frames(piped.stdout).length).toBeGreaterThan(20);
    expect(frames(piped.stdout)).toEqual(frames(direct.stdout));
  });

  it('--rate or --channels that contradict a WAV header (file or stdin) are refused, naming both; a matching --rate is accepted', () => {
    const bad = run(['--input', MONO, '--rate', '8000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/AFFECT_ERR_CONFIG: --rate 8000 does not match .*mono\.wav, which says 16000 Hz/);
    const badStdin = run(['--input', '-', '--rate', '44100'], wavBytes([left.subarray(0, 16000)]));
    expect(badStdin.code).toBe(2);
    expect(badStdin.stderr).toMatch(/AFFECT_ERR_CONFIG: --rate 44100 does not match the WAV header on stdin, which says 16000 Hz/);
    const badCh = run(['--input', STEREO, '--channels', '1']);
    expect(badCh.code).toBe(2);
    expect(badCh.stderr).toMatch(/--channels 1 does not match .*call\.wav, which has 2 channel\(s\)/);
    const ok = run(['--input', MONO, '--rate', '16000', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('serve --channels-as-streams', () => {
  it('publishes one stream per channel to a real ws subscriber, each with its frames, gapless seqs and its own turn, then exits 0 with --exit-on-end', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', STEREO, '--channels-as-streams', '--stream-id', 'call', '--exit-on-end'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const { port, stderr } = await waitForListening(child, 'serve');
      const c = connect({ port });
      await c.opened;
      // Resume from -1: anything published before the subscription is replayed, then live messages.
      c.send({ type: 'subscribe', streamIds: ['call:ch0', 'call:ch1'], resumeFrom: { 'call:ch0': -1, 'call:ch1': -1 } });
      const ended = (id: string) => c.messages.some((m) => m.type === 'status' && m.streamId === id && m.state === 'ended');
      await c.until(() => ended('call:ch0') && ended('call:ch1'), 90_000, 'both streams ended');
      expect(await exited, stderr()).toBe(0);
      expect(stderr()).toMatch(/stream "call:ch\d" ended; 1 local stream\(s\) still running/);
      expect(stderr()).toMatch(/stream "call:ch\d" ended; exiting/);
      const msgs = c.messages.map((m) => ServerMessageSchema.parse(m));
      for (const [id, span] of [
        ['call:ch0', agentSpan],
        ['call:ch1', callerSpan],
      ] as const) {
        const mine = msgs.filter((m) => 'streamId' in m && m.streamId === id && 'seq' in m);
        expect(
          mine.map((m) => ('seq' in m ? m.seq : -1)),
          id,
        ).toEqual([...Array(mine.length).keys()]);
        expect(mine.filter((m) => m.type === 'affect').length, id).toBeGreaterThan(20);
        const turns = mine.filter((m) => m.type === 'turn');
        expect(turns, id).toHaveLength(1);
        const t = turns[0]!;
        if (t.type !== 'turn') throw new Error('not a turn');
        expect(Math.abs(t.startMs - span[0]), `${id} start`).toBeLessThanOrEqual(200);
        expect(Math.abs(t.endMs - span[1]), `${id} end`).toBeLessThanOrEqual(200);
      }
      c.ws.terminate();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await sleep(0);
    }
  });

  it('serve --channels-as-streams with a mono file or the microphone is a clear configuration error before listening', () => {
    for (const input of [MONO, 'mic']) {
      const r = spawnSync(process.execPath, [BIN, 'serve', '--port', '0', '--input', input, '--channels-as-streams'], { env, timeout: 60_000 });
      expect(r.status, input).toBe(2);
      expect(r.stderr.toString()).toMatch(/AFFECT_ERR_CONFIG: --channels-as-streams needs/);
      expect(r.stderr.toString()).not.toMatch(/listening on/);
    }
  });
});
