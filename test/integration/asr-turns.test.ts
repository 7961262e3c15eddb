/**
 * Turns end-pointed by ASR final results (issue 13 item 4): with a speech recogniser on, each
 * non-empty final result of REAL libvosk (the tiny test model built by test/helpers, which hears
 * "hello" in loud stretches and finalises on trailing silence) ends one turn that spans the final's
 * words and carries its text — with voice activity detection on or off. Without ASR, turns stay
 * end-pointed by the VAD. With --turn-endpointing vad on a live call, each VAD-ended turn waits for
 * the final the recogniser end-points after it and carries its words. When the recogniser dies (a
 * real libvosk abort), later turns are end-pointed by the VAD.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';
import { concat, silence, speak, writeWav } from '../helpers/vad-audio.js';
import { WebSocket } from 'ws';
import { createEngine } from '../../src/engine.js';
import { twilioMedia, twilioStart, twilioStop } from '../../src/server/twilio-messages.js';
import { connect, silentLogger, sleep, startServer } from '../helpers/server-helpers.js';
import { twilioPayloads } from '../helpers/twilio-audio.js';

const BIN = 'bin/circumplex.mjs';
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete env.CIRCUMPLEX_VOSK_MODEL;
const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-asr-turns-'));
const WAV = path.join(dir, 'two.wav');
let vosk: string;
let spans: Array<[number, number]>;
let audio: Float32Array;

function run(args: string[]): ServerMessage[] {
  const r = spawnSync(process.execPath, [BIN, 'run', '--input', WAV, '--json', ...args], { env, maxBuffer: 64 * 1024 * 1024, timeout: 90_000 });
  expect(r.status, r.stderr.toString()).toBe(0);
  return serverMessages(r.stdout);
}

beforeAll(() => {
  vosk = buildTinyVoskModel(path.join(dir, 'vosk-tiny'));
  // Two utterances between silences long enough for the recogniser to finalise each.
  const c = concat([
    silence(1, 1),
    speak('Thank you for calling, how can I help you today?'),
    silence(2, 2),
    speak('My internet has been down for three days.'),
    silence(2, 3),
  ]);
  spans = [c.spans[1]!, c.spans[3]!];
  audio = c.samples;
  writeWav(WAV, [c.samples]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Checks that every non-empty final ends exactly one turn, with its words' span and its text. */
function expectTurnsFromFinals(msgs: ServerMessage[]): void {
  const finals = msgs.filter((m): m is Extract<ServerMessage, { type: 'transcript' }> => m.type === 'transcript' && m.final && m.text.trim() !== '');
  const turns = msgs.filter((m): m is Extract<ServerMessage, { type: 'turn' }> => m.type === 'turn');
  expect(finals.length).toBe(2);
  expect(turns.length).toBe(finals.length);
  finals.forEach((f, k) => {
    const t = turns[k]!;
    expect(t.transcript).toBe(f.text.trim());
    const words = f.words ?? [];
    expect(words.length).toBeGreaterThan(0);
    expect(t.startMs).toBe(Math.min(...words.map((w) => w.startMs)));
    expect(t.endMs).toBe(Math.max(...words.map((w) => w.endMs)));
    // The turn goes out after the final it comes from (same stream, later seq), in audio time order.
    expect(t.seq).toBeGreaterThan(f.seq);
    expect(t.tMs).toBeGreaterThanOrEqual(f.tMs);
    // And it lies on the utterance the recogniser heard (the tiny model's words are energy blips, so
    // its first "hello" can come well after the speech starts): inside it, give or take, covering half of it.
    const [s, e] = spans[k]!;
    expect(t.startMs, `turn ${k} start`).toBeGreaterThanOrEqual(s - 300);
    expect(t.endMs, `turn ${k} end`).toBeLessThanOrEqual(e + 800);
    expect(Math.min(t.endMs, e) - Math.max(t.startMs, s), `turn ${k} overlap`).toBeGreaterThanOrEqual((e - s) / 2);
    expect(t.frames).toBeGreaterThan(4);
  });
}

describe('turns end-pointed by ASR final results', () => {
  it('with ASR and VAD on: one turn per non-empty final, spanning its words, carrying its text', () => {
    expectTurnsFromFinals(run(['--asr-model', vosk, '--text-model', 'none']));
  });

  it('with ASR and --vad off: the finals still end turns (no VAD needed)', () => {
    const msgs = run(['--asr-model', vosk, '--text-model', 'none', '--vad', 'off']);
    expectTurnsFromFinals(msgs);
    expect(msgs.some((m) => m.type === 'affect' && m.voiced !== undefined)).toBe(false);
  });

  it('with ASR and --turn-endpointing vad: the voice activity ends the turns, not the finals', () => {
    const msgs = run(['--asr-model', vosk, '--text-model', 'none', '--turn-endpointing', 'vad']);
    expect(msgs.filter((m) => m.type === 'transcript' && m.final && m.text.trim() !== '')).toHaveLength(2);
    const turns = msgs.filter((m) => m.type === 'turn');
    expect(turns).toHaveLength(2);
    turns.forEach((t, k) => {
      if (t.type !== 'turn') throw new Error('not a turn');
      expect(Math.abs(t.startMs - spans[k]![0])).toBeLessThanOrEqual(200);
      expect(Math.abs(t.endMs - spans[k]![1])).toBeLessThanOrEqual(200);
    });
  });

  it('--turn-endpointing takes only auto, vad or asr', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--input', WAV, '--json', '--turn-endpointing', 'words'], { env, timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toMatch(/--turn-endpointing <mode>' argument 'words' is invalid\. Allowed choices are auto, vad, asr/);
  });

  it('without ASR, turns are end-pointed by the VAD (no transcript)', () => {
    const turns = run([]).filter((m) => m.type === 'turn');
    expect(turns).toHaveLength(2);
    turns.forEach((t, k) => {
      if (t.type !== 'turn') throw new Error('not a turn');
      expect(t.transcript).toBeUndefined();
      expect(Math.abs(t.startMs - spans[k]![0])).toBeLessThanOrEqual(200);
      expect(Math.abs(t.endMs - spans[k]![1])).toBeLessThanOrEqual(200);
    });
  });
});

describe('turns when the speech recogniser fails', () => {
  it('libvosk aborting on its first final (the ASR host dies): the stream goes speech-only and its later turns are end-pointed by the VAD', () => {
    // This model makes libvosk hit a Kaldi assertion at its first final result: a real ASR host death.
    const crashy = buildTinyVoskModel(path.join(dir, 'vosk-crash-on-final'), { crashOnFinal: true });
    const msgs = run(['--asr-model', crashy, '--text-model', 'none']);
    const degraded = msgs.find(
      (m): m is Extract<ServerMessage, { type: 'status' }> => m.type === 'status' && m.state === 'degraded' && /text path stopped/.test(m.message),
    );
    expect(degraded, 'the text path stopped').toBeDefined();
    expect(msgs.some((m) => m.type === 'transcript' && m.final && m.text.trim() !== '')).toBe(false);
    // The second utterance starts after the failure: it still ends in a turn (it used to get none,
    // ASR finals being the only end-pointing left), on the VAD's bounds and without text.
    const turns = msgs.filter((m): m is Extract<ServerMessage, { type: 'turn' }> => m.type === 'turn');
    const second = turns.find((t) => Math.abs(t.startMs - spans[1]![0]) <= 200);
    expect(second, JSON.stringify(turns.map((t) => [t.startMs, t.endMs]))).toBeDefined();
    expect(Math.abs(second!.endMs - spans[1]![1])).toBeLessThanOrEqual(200);
    expect(second!.transcript).toBeUndefined();
    expect(second!.seq).toBeGreaterThan(degraded!.seq);
  });

  it('with --turn-endpointing vad, VAD turns stop waiting for finals once the recogniser died (no final will come)', () => {
    const crashy = buildTinyVoskModel(path.join(dir, 'vosk-crash-on-final-2'), { crashOnFinal: true });
    const msgs = run(['--asr-model', crashy, '--text-model', 'none', '--turn-endpointing', 'vad']);
    expect(msgs.some((m) => m.type === 'status' && m.state === 'degraded' && /text path stopped/.test(m.message))).toBe(true);
    const second = msgs.find((m): m is Extract<ServerMessage, { type: 'turn' }> => m.type === 'turn' && Math.abs(m.startMs - spans[1]![0]) <= 200);
    expect(second).toBeDefined();
    // Out half a window after its end (plus a hop or two), not 2 s later (the wait for a final).
    expect(second!.tMs - second!.endMs).toBeLessThan(1500);
  });
});

describe('a live call with ASR and --turn-endpointing vad', () => {
  it('each VAD-ended turn carries the words of the final the recogniser end-points after it (1 s of trailing silence)', async () => {
    // Vosk's published models wait 0.5–1 s of trailing silence before a final; the VAD ends a segment after 0.3 s,
    // and its turn was due half a window later. 1 s makes the final come after that every time.
    const slow = buildTinyVoskModel(path.join(dir, 'vosk-slow-endpoint'), { endpointSilenceS: [1.0, 1.5, 2.0] });
    const engine = await createEngine({ device: 'cpu', logger: silentLogger, asrModel: slow, textModel: 'none', turnEndpointing: 'vad' });
    const server = await startServer({ onIngestStream: (id, audio$) => audio$.pipe(engine.pipeline(id)) });
    try {
      const sub = connect(server, '/v1/stream?streams=*');
      await sub.opened;
      const callSid = 'CAVADTURNS01';
      const call = new WebSocket(`ws://127.0.0.1:${server.port}/v1/telephony/twilio`);
      await new Promise((resolve, reject) => call.once('open', resolve).once('error', reject));
      call.send(twilioStart(callSid, { tracks: ['inbound'] }));
      // The two utterances as a live call, at 4× real time.
      const packets = twilioPayloads(audio);
      for (let k = 0; k < packets.length; k++) {
        call.send(twilioMedia(`MZ${callSid}`, 'inbound', k, packets[k]!));
        if (k % 10 === 9) await sleep(50);
      }
      call.send(twilioStop(`MZ${callSid}`));
      const id = `${callSid}:inbound`;
      await sub.until((c) => c.of('status').some((s) => s.streamId === id && s.state === 'ended'), 60_000, 'the call to end');
      const finals = sub.of('transcript').filter((t) => t.streamId === id && t.final && t.text.trim() !== '');
      const turns = sub.of('turn').filter((t) => t.streamId === id);
      expect(finals).toHaveLength(2);
      expect(turns).toHaveLength(2);
      turns.forEach((t, k) => {
        expect(t.transcript, `turn ${k}`).toBe(finals[k]!.text.trim());
        expect(t.seq).toBeGreaterThan(finals[k]!.seq);
        // Still the VAD's segment, not the final's words.
        expect(Math.abs(t.endMs - spans[k]![1])).toBeLessThanOrEqual(200);
      });
      sub.close();
    } finally {
      await server.close();
      await engine.close();
    }
  });
});
