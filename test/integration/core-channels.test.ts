/**
 * `run --channels-as-streams`: a stereo call recording (agent left, caller right, made here from
 * espeak-ng speech at known times) is analysed as two streams, `<id>:ch0` and `<id>:ch1`, each
 * with its own frames, seq and turns at its own speaker's times; raw stereo on stdin gives the
 * same; a mono input is a clear configuration error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerMessageSchema, type ServerMessage } from '../../clients/protocol.js';
import { concat, silence, speak, wavBytes, writeWav } from '../helpers/vad-audio.js';

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
const parse = (stdout: string): ServerMessage[] => stdout.trim().split('\n').map((l) => ServerMessageSchema.parse(JSON.parse(l)));

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
    const msgs = parse(r.stdout);
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
    const fromFile = parse(run(['--input', STEREO, '--channels-as-streams', '--stream-id', 'call', '--json']).stdout);
    const turns = (ms: ServerMessage[]) => ms.flatMap((m) => (m.type === 'turn' ? [[m.streamId, m.startMs, m.endMs]] : [])).sort();
    expect(turns(parse(r.stdout))).toEqual(turns(fromFile));
  });

  it('a mono input is a clear configuration error', () => {
    const r = run(['--input', MONO, '--channels-as-streams']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AFFECT_ERR_CONFIG: --channels-as-streams needs an input with 2 or more channels; .*mono\.wav has 1/);

  });
});
