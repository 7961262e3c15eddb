/**
 * The real CLI (`node bin/circumplex.mjs run`) on the shipped WAV with the real ONNX speech fixture
 * in a worker thread: wire format, ranges, seq continuity, values that move with the audio,
 * different inputs → different trajectories, 44.1 kHz stereo ≈ 16 kHz mono, stdin mode, errors,
 * and a JSONL recording that stays valid when the process is SIGKILLed mid-run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AffectMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import type { AffectFrameMessage } from '../../core/protocol.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';
import { writeWav } from '../helpers/vad-audio.js';

const SPEECH = 'test/fixtures/audio/speech.wav';
const BIN = 'bin/circumplex.mjs';
const dir = mkdtempSync(path.join(tmpdir(), 'core-cli-'));
const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
// The speech-only runs below must not pick up a developer's Vosk model.
delete env.CIRCUMPLEX_VOSK_MODEL;

function run(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [BIN, 'run', ...args], { env, input, maxBuffer: 64 * 1024 * 1024, timeout: 90_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
function frames(stdout: string): AffectFrameMessage[] {
  return (
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string })
      // With voice activity detection on (the default), turn messages come between the frames.
      .filter((m) => m.type === 'affect')
      .map((m) => AffectMessage.parse(m))
  );
}
/** Mean and max distance between two trajectories, frame by frame. */
function distance(a: AffectFrameMessage[], b: AffectFrameMessage[]) {
  const n = Math.min(a.length, b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) continue;
    const d = Math.hypot(x.valence - y.valence, x.arousal - y.arousal);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / n, max };
}
const std = (xs: number[]) => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length);
};

let base: AffectFrameMessage[] = [];
let baseStderr = '';
const S44 = path.join(dir, 'speech-44k1-stereo.wav');
const OTHER = path.join(dir, 'other.wav');

beforeAll(() => {
  // Inputs made here, deterministically, with the tools the project relies on.
  execFileSync('sox', ['-R', '-q', SPEECH, '-r', '44100', '-c', '2', S44]);
  const raw = path.join(dir, 'other-22k.wav');
  execFileSync('espeak-ng', [
    '-v',
    'en-us+f3',
    '-s',
    '190',
    '-p',
    '70',
    '-w',
    raw,
    "Oh no. I lost everything today and nobody cares. Wow, that's amazing, we won the big prize, let's celebrate! Now I just want to sleep quietly.",
  ]);
  execFileSync('sox', ['-R', '-q', raw, '-r', '16000', '-c', '1', OTHER]);
  const r = run(['--input', SPEECH, '--json']);
  expect(r.code, r.stderr).toBe(0);
  base = frames(r.stdout);
  baseStderr = r.stderr;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('circumplex run --json on the shipped WAV', () => {
  it('prints one wire-format affect frame per hop with contiguous seq and audio-time stamps', () => {
    // 19.14 s: windows end at 1.00, 1.25, ... 19.00 s (73) plus one for the 140 ms tail.
    expect(base.length).toBe(74);
    // With voice activity detection on (the default), turn messages share the stream's seq, so
    // frames' seqs increase but skip the turns'.
    expect(base[0]?.seq).toBe(0);
    base.forEach((f, i) => {
      if (i > 0) expect(f.seq).toBeGreaterThan(base[i - 1]!.seq);
      expect(f.streamId).toBe('input');
      expect(f.type).toBe('affect');
      expect(f.droppedWindows).toBe(0); // offline runs are lossless
      // Windows voice activity holds (voiced < 0.2) skip the speech model: no speech part on those frames.
      expect(f.modalities).toEqual((f.voiced ?? 0) < 0.2 ? [] : ['speech']);
    });
    expect(base.filter((f) => f.modalities.length === 1).length).toBeGreaterThan(base.length / 2);
    expect(base[0]?.tMs).toBe(1000);
    for (let i = 1; i < 73; i++) expect((base[i]?.tMs ?? 0) - (base[i - 1]?.tMs ?? 0)).toBe(250);
    expect(base[73]?.tMs).toBeCloseTo(19140.5, 0);
  });

  it('keeps every value in range and consistent with the circumplex geometry', () => {
    for (const f of base) {
      expect(Math.abs(f.valence)).toBeLessThanOrEqual(1);
      expect(Math.abs(f.arousal)).toBeLessThanOrEqual(1);
      expect(f.confidence).toBeGreaterThanOrEqual(0);
      expect(f.confidence).toBeLessThanOrEqual(1);
      expect(f.intensity).toBeCloseTo(Math.min(1, Math.hypot(f.valence, f.arousal)), 9);
      const angle = ((Math.atan2(f.arousal, f.valence) * 180) / Math.PI + 360) % 360;
      expect(Math.abs(((f.angleDeg - angle + 540) % 360) - 180)).toBeLessThan(1e-6);
      expect(f.label).toMatch(/^[a-z ]+$/);
    }
  });

  it('moves with the audio: values vary over the file and the smoothed track follows the raw model output', () => {
    expect(std(base.map((f) => f.valence))).toBeGreaterThan(0.02);
    expect(std(base.map((f) => f.arousal))).toBeGreaterThan(0.02);
    expect(std(base.map((f) => f.confidence))).toBeGreaterThan(0.01);
    // Smoothing: the smoothed track varies less than the raw speech estimates it follows.
    const raw = base.map((f) => f.speech?.valence ?? 0);
    expect(std(base.map((f) => f.valence))).toBeLessThan(std(raw));
  });

  it('prints a summary with the real-time factor on stderr', () => {
    const m = /(\d+) frames, (\d+) dropped windows, ([\d.]+) s audio in ([\d.]+) s wall, real-time factor ([\d.]+)/.exec(baseStderr);
    expect(m, baseStderr).not.toBeNull();
    expect(Number(m?.[1])).toBe(74);
    expect(Number(m?.[3])).toBeCloseTo(19.14, 1);
    expect(Number(m?.[5])).toBeGreaterThan(0);
  });

  it('gives a different trajectory for a different input', () => {
    const r = run(['--input', OTHER, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const other = frames(r.stdout);
    expect(other.length).toBeGreaterThan(20);
    const d = distance(base, other);
    const same = distance(base, frames(run(['--input', SPEECH, '--json']).stdout));
    expect(same.max).toBe(0); // deterministic
    expect(d.mean).toBeGreaterThan(0.15);
  });

  it('gives nearly the same trajectory for the same speech at 44.1 kHz stereo', () => {
    const r = run(['--input', S44, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s44 = frames(r.stdout);
    expect(s44.length).toBe(base.length);
    s44.forEach((f, i) => expect(f.tMs).toBeCloseTo(base[i]?.tMs ?? -1, 0));
    const d = distance(base, s44);
    const other = distance(base, frames(run(['--input', OTHER, '--json']).stdout));
    expect(d.mean).toBeLessThan(0.08);
    expect(d.mean).toBeLessThan(other.mean / 4);
  });

  it('reads raw s16le from stdin (--input -) with the same result as the file, and at a declared 44.1 kHz stereo', () => {
    const pcm = execFileSync('sox', ['-R', '-q', SPEECH, '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-'], { maxBuffer: 64 * 1024 * 1024 });
    const r = run(['--input', '-', '--rate', '16000', '--json'], pcm);
    expect(r.code, r.stderr).toBe(0);
    const fromStdin = frames(r.stdout);
    expect(fromStdin.length).toBe(base.length);
    expect(distance(base, fromStdin).max).toBeLessThan(1e-9);

    const pcm44 = execFileSync('sox', ['-R', '-q', S44, '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-'], { maxBuffer: 64 * 1024 * 1024 });
    const r44 = run(['--input', '-', '--rate', '44100', '--channels', '2', '--json'], pcm44);
    expect(r44.code, r44.stderr).toBe(0);
    expect(distance(base, frames(r44.stdout)).mean).toBeLessThan(0.08);
  });

  it('stays lossless offline with a short hop: stdin (big pipe reads) at --hop-ms 100, a file at --hop-ms 5', () => {
    const pcm = execFileSync('sox', ['-R', '-q', SPEECH, '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-'], { maxBuffer: 64 * 1024 * 1024 });
    const fromFile = run(['--input', SPEECH, '--hop-ms', '100', '--json']);
    const fromStdin = run(['--input', '-', '--hop-ms', '100', '--json'], pcm);
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stderr).toMatch(/ 0 dropped windows/);
    expect(fromStdin.stdout).not.toMatch(/"degraded"/);
    expect(distance(frames(fromFile.stdout), frames(fromStdin.stdout)).max).toBeLessThan(1e-9);
    const short = run(['--input', SPEECH, '--hop-ms', '5', '--json']);
    expect(short.code, short.stderr).toBe(0);
    expect(short.stderr).toMatch(/ 0 dropped windows/);
  });

  it('prints compact human lines without --json, and records the same messages with --record', () => {
    const rec = path.join(dir, 'run.jsonl');
    const r = run(['--input', SPEECH, '--speech-model', 'speech-fixture', '--record', rec, '--smoothing', 'kalman', '--tau-ms', '500']);
    expect(r.code, r.stderr).toBe(0);
    // Turn lines (voice activity detection, on by default) come between the frame lines.
    const lines = r.stdout
      .trimEnd()
      .split('\n')
      .filter((l) => !/^\s+\d+\.\d\ds {2}turn /.test(l));
    expect(lines.length).toBe(74);
    // The speech fixture (asked for by name: the default speech-va has none) has a dominance output, so the line shows it (protocol 1.1.0).
    expect(lines[0]).toMatch(
      /^\s+1\.00s {2}valence [+-]\d\.\d\d {2}arousal [+-]\d\.\d\d {2}dominance [+-]\d\.\d\d {2}conf \d\.\d\d {2}[a-z ]+ intensity \d\.\d\d$/,
    );
    const lines0 = serverMessages(readFileSync(rec, 'utf8'));
    // The first line announces the stream's timing (replay reads it back); the rest are the messages.
    expect(lines0[0]).toEqual({ type: 'stream', stream: { streamId: 'input', hopMs: 250, windowMs: 1000, sampleRateHz: 16000, state: 'live', lastSeq: -1 } });
    const recorded = lines0.slice(1);
    expect(recorded.filter((m) => m.type === 'affect').length).toBe(74);
    expect(recorded.length).toBe(r.stdout.trimEnd().split('\n').length);
    expect(recorded.map((m) => ('seq' in m ? m.seq : -1))).toEqual([...Array(recorded.length).keys()]);
  });

  it('exits 2 with a clear AffectError for a missing file, a non-WAV, bad options and a bad stdin frame', () => {
    const missing = run(['--input', path.join(dir, 'missing.wav'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/AFFECT_ERR_INPUT: cannot read input .*missing\.wav: no such file/);
    expect(missing.stderr).toMatch(/hint:/);
    expect(missing.stdout).toBe('');
    const notWav = run(['--input', 'package.json']);
    expect(notWav.code).toBe(2);
    expect(notWav.stderr).toMatch(/AFFECT_ERR_AUDIO_FORMAT: package\.json: not a WAV or FLAC file \(\d+ bytes, starts with "\{/);
    const hop = run(['--input', SPEECH, '--window-ms', '500', '--hop-ms', '1000']);
    expect(hop.code).toBe(2);
    expect(hop.stderr).toMatch(/AFFECT_ERR_CONFIG: --hop-ms \(1000\) must not exceed --window-ms \(500\)/);
    const odd = run(['--input', '-', '--channels', '2', '--json'], Buffer.alloc(64002));
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/AFFECT_ERR_AUDIO_FORMAT: stdin ended with 2 byte\(s\) of an incomplete s16le frame/);
    // No audio at all (an empty pipe, a WAV whose data chunk is empty) is an error, not a success with 0 frames.
    const empty = run(['--input', '-', '--json'], Buffer.alloc(0));
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/AFFECT_ERR_INPUT: stdin: no audio \(0 samples\), nothing was analysed/);
    const zeroWav = path.join(dir, 'zero.wav');
    writeWav(zeroWav, [new Float32Array(0)], 16000);
    const zero = run(['--input', zeroWav, '--json']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/AFFECT_ERR_INPUT: .*zero\.wav: no audio \(0 samples\)/);
    expect(zero.stdout).toBe('');
  });
});

describe('--record survives SIGKILL', () => {
  it('leaves valid JSONL (every line parses) when the process is killed mid-run', async () => {
    const rec = path.join(dir, 'killed.jsonl');
    // --realtime makes the run last ~19 s, so it is certainly killed in the middle.
    const child = spawn(process.execPath, [BIN, 'run', '--input', SPEECH, '--realtime', '--json', '--record', rec], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frames within 60 s')), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString().split('\n').length - 1;
        if (seen >= 6) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', () => reject(new Error('exited before it was killed')));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    expect(existsSync(rec)).toBe(true);
    const text = readFileSync(rec, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    // After the stream line (hopMs/windowMs), frames.
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({ type: 'stream', stream: { hopMs: 250, windowMs: 1000 } });
    const lines = text.split('\n').slice(1, -1);
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(lines.length).toBeLessThan(74);
    lines.forEach((l, i) => expect(AffectMessage.parse(JSON.parse(l)).seq).toBe(i));
  });
});

describe('run with the text path (tiny repo-built Vosk model + text classifier fixture)', () => {
  it('interleaves transcripts with affect frames under one contiguous seq, and fuses text into frames', () => {
    const vosk = buildTinyVoskModel(path.join(dir, 'vosk-tiny'));
    const r = run(['--input', SPEECH, '--json', '--asr-model', vosk, '--text-model', 'text-classifier-fixture']);
    expect(r.code, r.stderr).toBe(0);
    const msgs = serverMessages(r.stdout);
    expect(msgs.map((m) => ('seq' in m ? m.seq : -1))).toEqual([...Array(msgs.length).keys()]);
    const affect = msgs.filter((m) => m.type === 'affect');
    const transcripts = msgs.filter((m) => m.type === 'transcript');
    expect(affect.length).toBe(74);
    expect(transcripts.length).toBeGreaterThan(0);
    const fused = affect.filter((m) => m.modalities.includes('text'));
    expect(fused.length).toBeGreaterThan(0);
    for (const m of fused) expect(m.text).toBeDefined();
  });

  it('--asr-model alone: both modalities in the frames (default text model) and transcript lines; two runs give identical output', () => {
    const vosk = buildTinyVoskModel(path.join(dir, 'vosk-tiny-2'));
    const a = run(['--input', SPEECH, '--json', '--asr-model', vosk]);
    expect(a.code, a.stderr).toBe(0);
    const msgs = serverMessages(a.stdout);
    const affect = msgs.filter((m) => m.type === 'affect');
    expect(affect.length).toBe(74);
    expect(msgs.filter((m) => m.type === 'transcript').length).toBeGreaterThan(0);
    const both = affect.filter((m) => m.modalities.includes('speech') && m.modalities.includes('text'));
    // Text joins once the first words are heard (~3 s in) and stays: most frames carry both.
    expect(both.length).toBeGreaterThan(affect.length / 2);
    // Offline text sync: the same file gives byte-identical output (frames, fused text, transcript order).
    const b = run(['--input', SPEECH, '--json', '--asr-model', vosk]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
  });

  it('CIRCUMPLEX_VOSK_MODEL stands in for --asr-model', () => {
    const vosk = buildTinyVoskModel(path.join(dir, 'vosk-tiny-3'));
    const r = spawnSync(process.execPath, [BIN, 'run', '--input', SPEECH, '--json'], {
      env: { ...env, CIRCUMPLEX_VOSK_MODEL: vosk },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 90_000,
    });
    expect(r.status, r.stderr.toString()).toBe(0);
    const msgs = serverMessages(r.stdout);
    expect(msgs.some((m) => m.type === 'transcript')).toBe(true);
    expect(msgs.some((m) => m.type === 'affect' && m.modalities.includes('text'))).toBe(true);
  });

  it('without any ASR model, logs exactly one line saying the run is speech-only and how to add text', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--input', SPEECH, '--json'], {
      env: { ...env, CIRCUMPLEX_LOG_LEVEL: 'info' },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 90_000,
    });
    expect(r.status, r.stderr.toString()).toBe(0);
    const lines = r.stderr
      .toString()
      .split('\n')
      .filter((l) => /speech-only/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/--asr-model/);
    expect(lines[0]).toMatch(/CIRCUMPLEX_VOSK_MODEL/);
  });

  it('--text-model without an ASR model is a clear configuration error', () => {
    const noVosk: NodeJS.ProcessEnv = { ...env };
    delete noVosk.CIRCUMPLEX_VOSK_MODEL;
    const r = spawnSync(process.execPath, [BIN, 'run', '--input', SPEECH, '--text-model', 'text-classifier-fixture'], { env: noVosk });
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toMatch(/AFFECT_ERR_CONFIG: --text-model text-classifier-fixture needs words to read/);
  });

  it('an unknown --text-model is named as such, before the missing ASR model and before any model loads', () => {
    const noVosk: NodeJS.ProcessEnv = { ...env, CIRCUMPLEX_LOG_LEVEL: 'info' };
    delete noVosk.CIRCUMPLEX_VOSK_MODEL;
    for (const cmd of [
      ['run', '--input', SPEECH],
      ['serve', '--port', '0'],
    ]) {
      const r = spawnSync(process.execPath, [BIN, ...cmd, '--text-model', 'nosuch'], { env: noVosk, timeout: 60_000 });
      const err = r.stderr.toString();
      expect(r.status, err).toBe(2);
      expect(err).toMatch(/AFFECT_ERR_CONFIG: --text-model: unknown text-.* model "nosuch"\. Should be one of: .*text-emobank/);
      expect(err).not.toMatch(/needs words to read/);
      expect(err).not.toMatch(/speech model loaded/);
    }
  });
});
