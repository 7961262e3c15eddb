/**
 * `circumplex serve` as a real child process: a real ws client against the real engine, SIGTERM
 * with an open recording, a microphone recorder that is killed (a fake `sox` on PATH, a real process
 * and a real kill) and restarted with backoff, a missing model, and ingest of a real WAV.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROTOCOL_VERSION, ServerMessageSchema, type ServerMessage } from '../../core/protocol.js';
import { serverMessages } from '../helpers/json-lines.js';
import { REPO_ROOT } from '../../core/config.js';
import { connect, seqGaps, sleep, toneS16, type TestClient } from '../helpers/server-helpers.js';
import { buildTinyVoskModel } from '../helpers/asr-tiny-vosk-model.js';
import { waitForListening } from '../helpers/listening.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const WAV = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');

interface Serve {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>;
}

const children: ChildProcess[] = [];
const clients: TestClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts `circumplex serve` on a free port and resolves once it prints its URL. */
async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Serve> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let killedAt = 0;
  const origKill = child.kill.bind(child);
  child.kill = (sig?: NodeJS.Signals | number) => ((killedAt = Date.now()), origKill(sig));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, afterMs: Date.now() - killedAt })),
  );
  const { port, stderr } = await waitForListening(child, 'serve');
  return { child, port, stderr, exited };
}

/**
 * Runs `circumplex serve` (free port) until it exits: its exit code (null if it has not exited after
 * `timeoutMs`) and its stderr. Log level `silent` unless `env` says otherwise.
 */
async function serveToExit(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => {
    child.once('exit', (c) => r(c));
    setTimeout(() => r(null), timeoutMs).unref();
  });
  return { code, err };
}

const track = (c: TestClient) => (clients.push(c), c);
// Every message that carries the stream's seq (turn and alert since protocol 1.2.0, with voice activity detection on by default).
const streamMsgs = (ms: ServerMessage[]) =>
  ms.filter((m) => m.type === 'affect' || m.type === 'transcript' || m.type === 'status' || m.type === 'turn' || m.type === 'alert');

describe('circumplex serve (real process, real engine)', () => {
  it('serves a WAV input: hello, then ordered gapless affect frames in range; resume from -1 replays the start; SIGTERM with an open recording flushes it and exits 0', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'serve-'));
    const rec = path.join(dir, 'rec.jsonl');
    const s = await serve(['--input', WAV, '--realtime', '--speed', '4', '--record', rec, '--stream-id', 'talk', '--heartbeat-ms', '150']);
    const c = track(connect(s));
    await c.opened;
    await c.until((x) => x.of('hello').length === 1);
    expect(c.of('hello')[0]).toMatchObject({ version: PROTOCOL_VERSION, hopMs: 250 });
    expect(c.of('hello')[0]?.streams[0]).toMatchObject({ streamId: 'talk', state: 'live' });
    // Resume from -1: whatever was published before we subscribed is replayed, then live frames.
    c.send({ type: 'subscribe', streamIds: ['talk'], resumeFrom: { talk: -1 } });
    await c.until((x) => x.of('affect').length >= 12, 30_000, '12 frames');
    s.child.kill('SIGTERM');
    const exit = await s.exited;
    expect(exit.code).toBe(0);
    expect(exit.afterMs).toBeLessThan(5000);
    // 1001 from the shutdown, not 1006: the 150 ms heartbeats while the model ran did not drop a healthy peer.
    expect((await c.closed).code).toBe(1001);

    for (const m of c.messages) expect(() => ServerMessageSchema.parse(m)).not.toThrow();
    const got = streamMsgs(c.messages);
    expect(got.map((m) => (m as { seq: number }).seq)).toEqual(got.map((_, i) => i));
    expect(seqGaps(c.messages, 'talk')).toEqual([]);
    const affect = c.of('affect');
    for (let i = 1; i < affect.length; i++) expect(affect[i]?.tMs).toBeGreaterThan(affect[i - 1]?.tMs ?? 0);
    for (const a of affect) {
      expect(Math.abs(a.valence)).toBeLessThanOrEqual(1);
      expect(Math.abs(a.arousal)).toBeLessThanOrEqual(1);
      expect(a.modalities).toContain('speech');
    }
    // The recording: every line parses, seqs 0..n without gaps, ends with the shutdown status.
    const lines = readFileSync(rec, 'utf8').trimEnd().split('\n');
    const parsedLines = lines.map((l) => ServerMessageSchema.parse(JSON.parse(l)));
    // The stream's timing comes first (a `stream` line: replay announces the stream from it).
    expect(parsedLines[0]).toMatchObject({ type: 'stream', stream: { streamId: 'talk', hopMs: 250, windowMs: 1000 } });
    const recorded = parsedLines.filter((m) => m.type !== 'stream');
    expect(recorded.map((m) => (m as { seq: number }).seq)).toEqual(recorded.map((_, i) => i));
    expect(recorded.at(-1)).toMatchObject({ type: 'status', state: 'ended' });
    expect((recorded.at(-1) as { message: string }).message).toMatch(/SIGTERM/);
    // A stream ended by the shutdown itself is not announced as "still serving subscribers".
    expect(s.stderr()).not.toMatch(/still serving/);
    // What the subscriber got is exactly the recording's prefix.
    expect(got).toEqual(recorded.slice(0, got.length));
  });

  it('restarts a killed microphone recorder with backoff and tells subscribers (recorder-restarting, then live)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-sox-'));
    const audio = path.join(dir, 'tone.raw');
    writeFileSync(audio, toneS16(100, 16000, 1, 0.3));
    const pids = path.join(dir, 'pids');
    const sox = path.join(dir, 'sox');
    // A stand-in recorder: 100 ms of tone every 100 ms, like `sox -d` would send.
    writeFileSync(sox, `#!/bin/bash\necho $$ >> "${pids}"\nwhile :; do cat "${audio}"; sleep 0.1; done\n`);
    chmodSync(sox, 0o755);
    const s = await serve(['--input', 'mic', '--hop-ms', '250'], { PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}` });
    const c = track(connect(s, '/v1/stream?streams=mic'));
    await c.opened;
    await c.until((x) => x.of('affect').length >= 2, 30_000, 'first frames');
    const first = Number(readFileSync(pids, 'utf8').trim().split('\n')[0]);
    process.kill(first, 'SIGKILL');
    await c.until((x) => x.of('status').some((m) => m.state === 'recorder-restarting'), 10_000, 'restarting status');
    await c.until((x) => x.of('status').some((m) => m.state === 'live'), 10_000, 'live again');
    const before = c.of('affect').length;
    await c.until((x) => x.of('affect').length >= before + 2, 10_000, 'frames after restart');
    expect(readFileSync(pids, 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(2);
    expect(seqGaps(c.messages, 'mic')).toEqual([]);
    const restarting = c.of('status').find((m) => m.state === 'recorder-restarting');
    expect(restarting?.message).toMatch(/restart 1 in \d+ ms/);
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(metrics).toMatch(/circumplex_recorder_restarts_total 1/);
    expect(metrics, 'no ASR here: the host-up gauge is absent, not 0').not.toMatch(/^circumplex_asr_host_up\{/m);
    const latencyCount = Number(/circumplex_inference_latency_seconds_count (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(latencyCount).toBeGreaterThan(0);
    expect(metrics).toMatch(/circumplex_model_provider\{model="speech-va",provider="cpu"\} 1/);
    // Audio time keeps going across the restart.
    const ts = c.of('affect').map((a) => a.tMs);
    for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeGreaterThan(ts[i - 1] ?? 0);
    // SIGINT (Ctrl-C) shuts down as gracefully as SIGTERM.
    s.child.kill('SIGINT');
    const exit = await s.exited;
    expect(exit.code).toBe(0);
    expect(exit.afterMs).toBeLessThan(5000);
    expect((await c.closed).code).toBe(1001);
    expect(c.of('status').at(-1)).toMatchObject({ state: 'ended', message: expect.stringMatching(/SIGINT/) });
    // The fake recorder was stopped with the server.
    await sleep(300);
    for (const pid of readFileSync(pids, 'utf8').trim().split('\n').map(Number)) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('fails fast with AFFECT_ERR_MODEL_MISSING and a hint when a model file is missing', async () => {
    const { code, err } = await serveToExit(['--speech-model', 'wav2vec2-msp-dim'], {
      CIRCUMPLEX_MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'nomodels-')),
    });
    expect(code).toBe(2);
    expect(err).toMatch(/AFFECT_ERR_MODEL_MISSING/);
    expect(err).toMatch(/hint:/);
    expect(err).not.toMatch(/listening on/);
  });

  it('refuses a bad token file and a missing input file before loading anything', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const bad = path.join(dir, 'tokens.json');
    writeFileSync(bad, JSON.stringify([{ token: 'short', scopes: ['subscribe'] }]));
    for (const args of [
      ['--tokens-file', bad],
      ['--input', path.join(dir, 'missing.wav')],
    ]) {
      const { code, err } = await serveToExit(args);
      expect(code).toBe(2);
      expect(err).toMatch(/AFFECT_ERR_(CONFIG|INPUT)/);
    }
    expect(existsSync(bad)).toBe(true);
  });

  it('refuses TLS files that are not PEM with AFFECT_ERR_CONFIG before listening (was: unexpected error + stack trace)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tls-'));
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'not a pem file\n');
    const { code, err } = await serveToExit(['--tls-cert', junk, '--tls-key', junk]);
    expect(code, err).toBe(2);
    expect(err).toMatch(/AFFECT_ERR_CONFIG: cannot use --tls-cert .*junk\.pem/);
    expect(err).not.toMatch(/unexpected error|listening on/);
  });

  it('a crash of a running serve is one JSON log line at fatal with the stack (Node printed a multi-line plain trace), then one plain line; exit 1', async () => {
    // A bug that throws once serve listens, planted by a preloaded module.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'serve-crash-'));
    const plant = path.join(dir, 'crash.mjs');
    writeFileSync(
      plant,
      `const write = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
  if (String(chunk).includes('listening on')) setImmediate(() => { throw new Error('boom: a bug\\nits second line'); });
  return write(chunk, ...rest);
};\n`,
    );
    const { code, err } = await serveToExit([], {
      CIRCUMPLEX_LOG_LEVEL: 'warn',
      CIRCUMPLEX_WARM_UP: 'off',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(plant).href}`,
    });
    expect(code).toBe(1);
    const after = err.slice(err.indexOf('listening on')).split('\n').slice(1).filter(Boolean);
    expect(after.at(-1)).toBe('circumplex: unexpected error: boom: a bug');
    const records = after.slice(0, -1).map((l) => JSON.parse(l) as { level: number; msg: string; err: { stack: string } });
    expect(records).toEqual([expect.objectContaining({ level: 60, msg: 'unexpected error; exiting' })]);
    expect(records[0]?.err.stack).toMatch(/boom: a bug\nits second line\n\s+at /);
  });

  it('refuses a --record path it cannot write before listening, and exits (it used to print the error and hang)', async () => {
    const { code, err } = await serveToExit(['--input', WAV, '--record', path.join(os.tmpdir(), 'no-such-dir-for-record', 'x.jsonl')], {}, 15_000);
    expect(code, err).toBe(2);
    expect(err).toMatch(/AFFECT_ERR_INPUT: cannot open record file/);
    expect(err).not.toMatch(/listening on/);
  });

  it('--exit-on-end after a failed input exits 1 and says why on stderr, even with logging off (it used to say only "failed")', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', '-', '--exit-on-end'], {
      cwd: REPO_ROOT,
      env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'silent', CIRCUMPLEX_WARM_UP: 'off' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    // Raw s16le cut in the middle of a sample: the stdin source fails at its end.
    child.stdin?.end(readFileSync(WAV).subarray(44, 44 + 32001));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code, err).toBe(1);
    expect(err).toMatch(/stream "stdin" failed \(AFFECT_ERR_AUDIO_FORMAT: stdin ended with 1 byte\(s\) of an incomplete s16le frame[^\n]*\); exiting/);
  });

  it('--speed paces a file without --realtime too (as replay --speed does); it used to be ignored, the file ran at full speed', async () => {
    // The 19.1 s WAV at 4× real time takes at least 4.7 s to serve; unpaced it takes well under a second.
    const s = await serve(['--input', WAV, '--speed', '4', '--exit-on-end'], { CIRCUMPLEX_WARM_UP: 'off' });
    const t0 = Date.now();
    const exit = await s.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThan(4500);
  });

  it('local-input flags that mean nothing for the input are config errors (--input none --exit-on-end served for good)', async () => {
    const none = await serveToExit(['--input', 'none', '--exit-on-end', '--stream-id', 'x'], { CIRCUMPLEX_WARM_UP: 'off' });
    expect(none.code).toBe(2);
    expect(none.err).toContain('AFFECT_ERR_CONFIG: --exit-on-end, --stream-id apply to a local input, and --input is none, so they would do nothing');
    const mic = await serveToExit(['--input', 'mic', '--realtime', '--rate', '8000'], { CIRCUMPLEX_WARM_UP: 'off' });
    expect(mic.code).toBe(2);
    expect(mic.err).toContain('AFFECT_ERR_CONFIG: --realtime, --rate apply to a local file or stdin input, and --input is mic');
  });

  it('--node-ttl-ms without a backplane is a config error (it was accepted and did nothing)', async () => {
    const { code, err } = await serveToExit(['--input', WAV, '--exit-on-end', '--node-ttl-ms', '9000'], { CIRCUMPLEX_WARM_UP: 'off' });
    expect(code).toBe(2);
    expect(err).toContain('AFFECT_ERR_CONFIG: --node-ttl-ms only applies with a backplane');
  });

  it('serves raw s16le from stdin losslessly and exits 0 at its end with --exit-on-end', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'stdin-'));
    const rec = path.join(dir, 'rec.jsonl');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', '-', '--exit-on-end', '--record', rec], {
      cwd: REPO_ROOT,
      env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    children.push(child);
    // 3 s of the speech WAV, header removed, in one burst: stdin is read through a bounded flow, not dropped.
    child.stdin?.end(readFileSync(WAV).subarray(44, 44 + 3 * 32000));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    const lines = serverMessages(readFileSync(rec, 'utf8'));
    // windows of 1 s every 250 ms over 3 s: ends at 1.0, 1.25, ..., 3.0 s
    expect(lines.filter((m) => m.type === 'affect').map((m) => (m as { tMs: number }).tMs)).toEqual([1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750, 3000]);
    expect(lines.at(-1)).toMatchObject({ type: 'status', state: 'ended', message: 'input ended' });
  });

  it('--smoothing and --tau-ms reach the served streams (as in run): none publishes the fused point itself, the default is kalman-cv at 1 s; a bad filter is a usage error', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'smooth-'));
    const served = async (args: string[]): Promise<Array<Extract<ServerMessage, { type: 'affect' }>>> => {
      const rec = path.join(dir, `${args.join('') || 'default'}.jsonl`);
      const { code, err } = await serveToExit(['--input', WAV, '--exit-on-end', '--vad', 'off', '--record', rec, ...args], { CIRCUMPLEX_LOG_LEVEL: 'warn' });
      expect(code, err).toBe(0);
      return serverMessages(readFileSync(rec, 'utf8')).filter((m): m is Extract<ServerMessage, { type: 'affect' }> => m.type === 'affect');
    };
    // speech only: the fused point is the speech part's, so with no filter every frame that carries information is exactly it
    const gap = (f: Extract<ServerMessage, { type: 'affect' }>): number =>
      Math.max(Math.abs(f.valence - (f.speech?.valence ?? NaN)), Math.abs(f.arousal - (f.speech?.arousal ?? NaN)));
    const raw = await served(['--smoothing', 'none']);
    const informative = raw.filter((f) => (f.speech?.confidence ?? 0) > 0);
    expect(informative.length).toBeGreaterThan(60);
    expect(Math.max(...informative.map(gap))).toBeLessThan(1e-9);
    const smoothed = await served([]);
    expect(smoothed.length).toBe(raw.length);
    expect(smoothed.filter((f) => gap(f) > 1e-3).length).toBeGreaterThan(smoothed.length / 2);
    // the default is the constant-velocity Kalman filter at tau 1 s: the same frames, velocity included
    const strip = (fs: typeof raw) => fs.map(({ valence, arousal, confidence, velocity, tMs }) => ({ valence, arousal, confidence, velocity, tMs }));
    expect(strip(await served(['--smoothing', 'kalman-cv', '--tau-ms', '1000']))).toEqual(strip(smoothed));
    expect(strip(await served(['--smoothing', 'one-euro']))).not.toEqual(strip(smoothed));
    // a slower constant-velocity Kalman filter: its state velocity, and a trajectory further from the raw points
    const slow = await served(['--smoothing', 'kalman-cv', '--tau-ms', '3000']);
    expect(slow.every((f) => f.velocity !== undefined && Number.isFinite(f.velocity.valence))).toBe(true);
    const mean = (fs: typeof raw): number => fs.reduce((a, f) => a + gap(f), 0) / fs.length;
    expect(mean(slow)).toBeGreaterThan(mean(smoothed));
    const bad = await serveToExit(['--smoothing', 'median']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/option '--smoothing <filter>' argument 'median' is invalid/);
    expect(bad.err).not.toMatch(/listening on/);
  }, 120_000);

  it('runs an ingested WAV (header in the first frame) through the real engine, with tokens', async () => {
    const s = await serve(['--input', 'none'], { CIRCUMPLEX_TOKENS: 'sub-token-123:subscribe;pub-token-123:publish' });
    const sub = track(connect(s, '/v1/stream?streams=call&token=sub-token-123'));
    await sub.opened;
    const pub = track(connect(s, '/v1/ingest', { headers: { Authorization: 'Bearer pub-token-123' } }));
    await pub.opened;
    pub.send({ type: 'start', streamId: 'call', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    const wav = readFileSync(WAV);
    // 4 s of the file in 20 ms frames; the first carries the WAV header, which the server strips.
    const bytesPerMs = 32;
    const first = wav.subarray(0, 44 + 20 * bytesPerMs);
    pub.ws.send(first);
    // Paced at 4x real time, as a live call would arrive (a burst would make the live policy drop windows).
    for (let off = first.length; off < Math.min(wav.length, 44 + 4000 * bytesPerMs); off += 20 * bytesPerMs) {
      pub.ws.send(wav.subarray(off, off + 20 * bytesPerMs));
      await sleep(5);
    }
    pub.send({ type: 'stop' });
    await sub.until((x) => x.of('status').some((m) => m.state === 'ended'), 30_000, 'ended');
    // 4 s at a 250 ms hop: ~13 windows; every one is a frame or counted in droppedWindows.
    const frames = sub.of('affect');
    expect(frames.length + frames.reduce((n, a) => n + a.droppedWindows, 0)).toBeGreaterThanOrEqual(12);
    expect(frames.length).toBeGreaterThanOrEqual(6);
    expect(seqGaps(sub.messages, 'call')).toEqual([]);
    const replies = pub.raw.map((r) => JSON.parse(r) as { type: string; framesRejected?: number });
    expect(replies.at(-1)).toMatchObject({ type: 'stopped', framesRejected: 0 });
    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
  });

  it('with CIRCUMPLEX_VOSK_MODEL (no --asr-model): transcripts, text and ASR counters in /metrics; the ASR host dies with a SIGKILLed server', async () => {
    const vosk = buildTinyVoskModel(path.join(mkdtempSync(path.join(os.tmpdir(), 'serve-asr-')), 'vosk-tiny'));
    const s = await serve(['--input', WAV], { CIRCUMPLEX_VOSK_MODEL: vosk });
    // The offline file runs to its end, then the server keeps serving.
    const t0 = Date.now();
    while (!/stream "file" ended/.test(s.stderr()) && Date.now() - t0 < 60_000) await sleep(100);
    expect(s.stderr()).toMatch(/stream "file" ended/);
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    const value = (name: string): number => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics);
      if (!m) throw new Error(`${name} not in /metrics:\n${metrics.slice(0, 2000)}`);
      return Number(m[1]);
    };
    expect(value('circumplex_asr_hosts_started_total')).toBe(1);
    expect(value('circumplex_asr_host_deaths_total')).toBe(0);
    expect(value('circumplex_asr_watchdog_kills_total')).toBe(0);
    // The file's stream ended: its recogniser was freed.
    expect(value('circumplex_asr_open_recognizers')).toBe(0);
    // An offline file is paced, never dropped; every window is scored.
    expect(value('circumplex_asr_dropped_samples_total')).toBe(0);
    expect(value('circumplex_text_windows_coalesced_total')).toBeGreaterThanOrEqual(0);
    expect(value('circumplex_text_model_errors_total')).toBe(0);
    expect(metrics).toMatch(/circumplex_frames_published_total\{type="transcript"\} [1-9]/);

    // The ASR host is a child of the server; a SIGKILLed server must not leave it behind.
    const hostPids = readFileSync(`/proc/${s.child.pid}/task/${s.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((pid) => existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vosk-host'));
    expect(hostPids).toHaveLength(1);
    s.child.kill('SIGKILL');
    await s.exited;
    const t1 = Date.now();
    while (existsSync(`/proc/${hostPids[0]}/cmdline`) && readFileSync(`/proc/${hostPids[0]}/stat`, 'utf8').split(' ')[2] !== 'Z' && Date.now() - t1 < 10_000)
      await sleep(50);
    const gone = !existsSync(`/proc/${hostPids[0]}/cmdline`) || readFileSync(`/proc/${hostPids[0]}/stat`, 'utf8').split(' ')[2] === 'Z';
    expect(gone).toBe(true);
  });

  it('/healthz reports the ASR host: degraded (still 200) while it is dead, ok again once a new stream restarted it', async () => {
    // Speech recognition used to be invisible here: a dead host left /healthz at "ok".
    const vosk = buildTinyVoskModel(path.join(mkdtempSync(path.join(os.tmpdir(), 'serve-asr-health-')), 'vosk-tiny'));
    const s = await serve(['--input', 'none', '--asr-model', vosk]);
    const health = async () => {
      const res = await fetch(`http://127.0.0.1:${s.port}/healthz`);
      const text = await res.text();
      return { code: res.status, text, body: JSON.parse(text) as { status: string; asr?: Record<string, unknown> } };
    };
    const before = await health();
    expect(before.code).toBe(200);
    expect(before.body.status).toBe('ok');
    expect(before.body.asr).toEqual({ up: true, restarts: 0, hostDeaths: 0, watchdogKills: 0 });

    // A real crash of the real host (a child of the server).
    const hostPid = readFileSync(`/proc/${s.child.pid}/task/${s.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number)
      .find((pid) => existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vosk-host'));
    expect(hostPid).toBeDefined();
    process.kill(hostPid!, 'SIGKILL');
    let down = await health();
    for (const t0 = Date.now(); down.body.status !== 'degraded' && Date.now() - t0 < 10_000; down = await health()) await sleep(50);
    expect(down.code).toBe(200);
    expect(down.body.status).toBe('degraded');
    expect(down.body.asr).toMatchObject({ up: false, restarts: 0, hostDeaths: 1, watchdogKills: 0, lastError: expect.stringMatching(/SIGKILL/) as unknown });
    expect(down.text).not.toContain(vosk);
    const hostUp = async () =>
      /^circumplex_asr_host_up\{recogniser="vosk"\} (\d)$/m.exec(await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text())?.[1];
    expect(await hostUp()).toBe('0');

    // Restarts are lazy: the next stream that needs a recogniser starts a new host (after the backoff).
    const pub = track(connect(s, '/v1/ingest'));
    await pub.opened;
    pub.send({ type: 'start', streamId: 'after-crash', encoding: 's16le', sampleRateHz: 16000, channels: 1 });
    pub.ws.send(toneS16(500));
    let up = await health();
    for (const t0 = Date.now(); up.body.status !== 'ok' && Date.now() - t0 < 30_000; up = await health()) await sleep(100);
    expect(up.body.status).toBe('ok');
    expect(up.body.asr).toMatchObject({ up: true, restarts: 1, hostDeaths: 1 });
    expect(await hostUp()).toBe('1');
    s.child.kill('SIGTERM');
    await s.exited;
  });
});
