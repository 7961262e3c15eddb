/**
 * Twilio capacity (`npm run bench -- --sections twilio`, or `npx tsx bench/twilio.ts 25,50,100`):
 * a real `circumplex serve --input none` child process with the default models, and from this
 * process N simulated calls on `/v1/telephony/twilio`, two tracks each (inbound + outbound), each
 * track one 20 ms μ-law packet per 20 ms of wall clock (Twilio's own framing: base64 JSON media
 * messages with timestamps), while one subscriber reads every stream on `/v1/stream` (`TWILIO_BENCH_SUBSCRIBERS=per-call`: one subscriber per call, on its two tracks, as an agent per call would). The two parties
 * take turns (5 s of the shipped speech WAV, then 5 s of line silence at -65 dBFS, the other track
 * the opposite), as in a call. Calls start staggered over one hop (as independent calls do, so
 * their windows do not all complete in the same 20 ms; `TWILIO_BENCH_ALIGNED=1` starts them
 * together). Messages are pre-encoded and sent unmasked, both tracks of a call in one write, to keep
 * the generator's share of the cores small. Levels run one after another on the same server.
 *
 * Per level: affect frames received ÷ windows expected, windows dropped (the frames'
 * droppedWindows: VAD queue or speech stage), latency (from the wall time the packet holding a
 * window's last sample was due to the frame's arrival at the subscriber), the server's CPU (all
 * its threads, from /proc; the JS main thread's alone; the busiest other threads), this generator's own CPU and how late it sent packets (the generator
 * shares the 2 cores: when it is late the level is not a fair test and says so), and the VAD
 * counters scraped from /metrics. A level holds when ≥ 97 % of the windows arrive, none is dropped,
 * p95 latency ≤ budget, and the generator kept time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import type { ServerMessage } from '../core/protocol.js';
import { REPO_ROOT } from '../core/config.js';
import { float32ToMulaw, resample } from '../streams/audio.js';
import { twilioConnected, twilioMedia, twilioStart, twilioStop } from '../src/server/twilio-messages.js';

/** Options for {@link benchTwilio}. */
export interface TwilioBenchOptions {
  /** Concurrent calls per level (two tracks each), tried in order until one breaks. */
  levels: number[];
  /** Seconds of audio each call sends per level. */
  durationS: number;
  /** Speech model the server loads (default: serve's default). */
  speechModel?: string;
  /** Voice activity on the server (`--vad`). Default true. */
  vad: boolean;
  /** p95 latency budget, ms. Default 350 (hop 250 + 100). */
  budgetMs: number;
  /** Seconds to wait for the streams to end after the last packet. */
  drainS: number;
  /** Go on with the next level after one breaks. Default false. */
  continueAfterBreak: boolean;
  /**
   * Calls start at staggered times (spread over one hop), so their windows complete spread over
   * the hop as independent calls' do. false: every call's windows complete in the same 20 ms (a
   * burst of one window per track every hop). Default true.
   */
  staggerStarts: boolean;
  /**
   * Who reads the frames: 'one' subscriber on every stream (`?streams=*`, a supervisor's dashboard or
   * a recorder), or 'per-call': one subscriber per call on its two tracks (an agent per call). Default 'one'.
   */
  subscribers: 'one' | 'per-call';
}

export const DEFAULT_TWILIO_BENCH: TwilioBenchOptions = {
  levels: [25, 50, 100, 150, 200],
  durationS: 20,
  vad: true,
  budgetMs: 350,
  drainS: 15,
  continueAfterBreak: false,
  staggerStarts: true,
  subscribers: 'one',
};

/** One level's figures. */
export interface TwilioLevel {
  calls: number;
  tracks: number;
  windowsExpected: number;
  framesReceived: number;
  framesRatio: number;
  droppedWindows: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Server CPU, cores (all threads), over the sending period. */
  serverCores: number;
  /** Server CPU per track-second of audio, ms. */
  serverCpuMsPerTrackSecond: number;
  /** The server's JavaScript main thread (sockets, decoding, RxJS pipelines, fan-out), cores: at 1 it is saturated. */
  mainThreadCores: number;
  /** Main-thread CPU per track-second of audio, ms. */
  mainThreadMsPerTrackSecond: number;
  /** The server's busiest other threads (ONNX workers and their pools, V8's GC/compiler helpers), cores each, highest first. */
  otherThreadsCores: number[];
  /** This process's CPU (the call generator and the subscriber), cores. */
  generatorCores: number;
  /** How late the generator sent packets (ms after due): p95 and max. */
  sendLagMs: { p95: number; max: number };
  /** VAD counters during the level (from /metrics): frames run / gated / rejected, windows dropped by the VAD stage. */
  vad: { modelFrames: number; gatedFrames: number; rejectedFrames: number; droppedWindows: number; meanBatch: number | null };
  /**
   * Per second of call time (a frame's window end, `tMs`): frames, windows dropped, p95 latency (ms).
   * Shows where in a level the losses fall (e.g. its first seconds, while the calls start).
   */
  timeline: { s: number; frames: number; dropped: number; p95Ms: number }[];
  /** The level held (see the module comment); else why not. */
  holds: boolean;
  why: string[];
}

/** What {@link benchTwilio} measured. */
export interface TwilioBenchResult {
  options: TwilioBenchOptions;
  levels: TwilioLevel[];
  /** Largest level that held (calls), 0 if none. */
  heldCalls: number;
  /** First level that broke, and why. */
  brokeAt: { calls: number; why: string[] } | null;
  note: string;
}

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const WAV = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r1 = (v: number) => Math.round(v * 10) / 10;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** utime + stime of a process (all threads), or of one thread with `tid`, ms. */
function procCpuMs(pid: number, tid?: number): number {
  const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (1-based) are utime and stime; `rest` starts at field 3.
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}

/** CPU ms of every thread of a process, by thread id. */
function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), procCpuMs(pid, Number(tid)));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Sums a metric's samples (optionally those with a label value) in Prometheus text. */
function metric(text: string, name: string, label?: string): number {
  let s = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (label && !rest.includes(label)) continue;
    s += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return s;
}

/** 20 ms μ-law packets (base64) of the two parties: [inbound, outbound], `seconds` long, turns of 5 s. */
function conversation(seconds: number): [string[], string[]] {
  const wav = readFileSync(WAV);
  const pcm = wav.subarray(wav.indexOf('data') + 8);
  const s16 = new Float32Array(pcm.length >> 1);
  for (let i = 0; i < s16.length; i++) s16[i] = pcm.readInt16LE(2 * i) / 32768;
  const speech = float32ToMulaw(resample(s16, 16000, 8000));
  let seed = 7;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 2 * 10 ** (-65 / 20) * Math.sqrt(3);
  const quiet = float32ToMulaw(Float32Array.from({ length: 8000 * 10 }, noise));
  const n = Math.round(seconds * 50);
  const tracks: [string[], string[]] = [[], []];
  for (let k = 0; k < n; k++) {
    const turn = Math.floor((k * 20) / 5000) % 2;
    for (const t of [0, 1] as const) {
      const speaking = turn === t;
      const src = speaking ? speech : quiet;
      const off = ((k * 160) % (src.length - 160)) | 0;
      tracks[t].push(Buffer.from(src.subarray(off, off + 160)).toString('base64'));
    }
  }
  return tracks;
}

async function startServe(o: TwilioBenchOptions): Promise<{ child: ChildProcess; port: number }> {
  // TWILIO_BENCH_NODE_ARGS: extra node flags for the server (e.g. --cpu-prof --cpu-prof-dir=DIR to profile it).
  const nodeArgs = (process.env['TWILIO_BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, BIN, 'serve', '--input', 'none', '--port', '0', '--device', 'cpu', '--vad', o.vad ? 'on' : 'off'];
  if (o.speechModel) args.push('--speech-model', o.speechModel);
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
      const m = /listening on ws:\/\/[^:]+:(\d+)\//.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${err}`)));
    setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 90_000).unref();
  });
  return { child, port };
}

async function runLevel(port: number, pid: number, calls: number, o: TwilioBenchOptions, packets: [string[], string[]], level: number): Promise<TwilioLevel> {
  const hopMs = 250;
  const windowMs = 1000;
  const tracks = calls * 2;
  const sid = (c: number) => `CA${String(level).padStart(3, '0')}${String(c).padStart(7, '0')}`;
  const t0ByStream = new Map<string, number>();
  const latencies: number[] = [];
  const bySecond: { frames: number; dropped: number; latencies: number[] }[] = [];
  let frames = 0;
  let dropped = 0;
  const ended = new Set<string>();
  const onFrame = (data: WebSocket.RawData): void => {
    const now = performance.now();
    const m = JSON.parse((data as Buffer).toString('utf8')) as ServerMessage;
    if (m.type === 'affect') {
      const t0 = t0ByStream.get(m.streamId);
      if (t0 === undefined) return;
      frames++;
      dropped += m.droppedWindows;
      latencies.push(now - (t0 + m.tMs));
      const b = (bySecond[Math.floor(m.tMs / 1000)] ??= { frames: 0, dropped: 0, latencies: [] });
      b.frames++;
      b.dropped += m.droppedWindows;
      b.latencies.push(now - (t0 + m.tMs));
    } else if (m.type === 'status' && m.state === 'ended' && t0ByStream.has(m.streamId)) ended.add(m.streamId);
  };
  const subUrls =
    o.subscribers === 'one'
      ? [`ws://127.0.0.1:${port}/v1/stream?streams=*`]
      : Array.from({ length: calls }, (_, c) => `ws://127.0.0.1:${port}/v1/stream?streams=${sid(c)}:inbound,${sid(c)}:outbound`);
  const subs = await Promise.all(
    subUrls.map(async (url) => {
      const sub = new WebSocket(url);
      sub.on('message', onFrame);
      await new Promise<void>((resolve, reject) => {
        sub.once('open', () => resolve());
        sub.once('error', reject);
      });
      return sub;
    }),
  );
  const sockets = await Promise.all(
    Array.from({ length: calls }, async () => {
      // An all-zero mask: ws then skips masking (the generator's own CPU), and the server's unmasking is a no-op.
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/telephony/twilio`, { generateMask: (mask: Buffer) => void mask.fill(0) });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return ws;
    }),
  );
  const n = packets[0].length;
  const slots = 10; // calls spread over the 20 ms packet period
  // Staggered starts: call c also starts lag(c) whole packets late, so the calls' window ends (every
  // hop) spread over the hop as they do for calls that start at independent times. Aligned: every
  // call's windows complete within the same 20 ms (a burst of one window per track each hop).
  const hopPackets = Math.max(1, Math.round(hopMs / 20));
  const lag = (c: number): number => (o.staggerStarts ? Math.floor(c / slots) % hopPackets : 0);
  const maxLag = o.staggerStarts ? Math.min(hopPackets, Math.ceil(calls / slots)) - 1 : 0;
  const streamSid = (c: number) => `MZ${sid(c)}`;
  const offset = (c: number) => (c * 137) % n; // each call at its own place in the conversation
  // Every media message pre-encoded (the generator shares the cores with the server: keep it cheap).
  const msgs = Array.from({ length: calls }, (_, c) =>
    Array.from({ length: n }, (_, k) => {
      const p = (k + offset(c)) % n;
      return [Buffer.from(twilioMedia(streamSid(c), 'inbound', k, packets[0][p]!)), Buffer.from(twilioMedia(streamSid(c), 'outbound', k, packets[1][p]!))] as [
        Buffer,
        Buffer,
      ];
    }),
  );
  const stopMsg = Buffer.from(twilioStop('x'));
  const metricsBefore = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const start = performance.now() + 50;
  sockets.forEach((ws, c) => {
    ws.send(twilioConnected());
    ws.send(twilioStart(sid(c), { streamSid: streamSid(c) }));
    const callStart = start + (c % slots) * (20 / slots) + lag(c) * 20;
    t0ByStream.set(`${sid(c)}:inbound`, callStart);
    t0ByStream.set(`${sid(c)}:outbound`, callStart);
  });
  const cpu0 = procCpuMs(pid);
  const main0 = procCpuMs(pid, pid);
  const threads0 = threadCpuMs(pid);
  const gen0 = process.cpuUsage();
  const lags: number[] = [];
  // Text frames, unmasked (an all-zero mask: the server unmasks nothing), both tracks of a call in one write.
  const opts = { binary: false, mask: true } as const;
  const sockOf = (ws: WebSocket) => (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  for (let step = 0; step < n + maxLag; step++) {
    for (let s = 0; s < slots; s++) {
      // Step `step` of the calls in slot s is due at start + slot offset + (step + 1) × 20 ms; a call sends its packet step - lag(c).
      const due = start + s * (20 / slots) + (step + 1) * 20;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const late = performance.now() - due;
      if (s === 0) lags.push(late);
      for (let c = s; c < calls; c += slots) {
        const k = step - lag(c);
        if (k < 0 || k >= n) continue;
        const ws = sockets[c]!;
        const [a, b] = msgs[c]![k]!;
        const sock = sockOf(ws);
        sock.cork();
        ws.send(a, opts);
        ws.send(b, opts);
        if (k === n - 1) ws.send(stopMsg, opts);
        sock.uncork();
      }
    }
  }
  const wallS = (performance.now() - start) / 1000;
  const cpu1 = procCpuMs(pid);
  const main1 = procCpuMs(pid, pid);
  const threads1 = threadCpuMs(pid);
  const gen = process.cpuUsage(gen0);
  const deadline = performance.now() + o.drainS * 1000;
  while (performance.now() < deadline && ended.size < tracks) await sleep(50);
  const metricsAfter = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const ws of sockets) ws.terminate();
  for (const sub of subs) sub.terminate();
  const d = (name: string, label?: string) => metric(metricsAfter, name, label) - metric(metricsBefore, name, label);
  const sorted = latencies.sort((a, b) => a - b);
  const lagSorted = lags.sort((a, b) => a - b);
  const windowsPerTrack = Math.floor((o.durationS * 1000 - windowMs) / hopMs) + 1;
  const windowsExpected = windowsPerTrack * tracks;
  const batches = d('circumplex_vad_batches_total');
  const lvl: TwilioLevel = {
    calls,
    tracks,
    windowsExpected,
    framesReceived: frames,
    framesRatio: r3(frames / windowsExpected),
    droppedWindows: dropped,
    latencyMs: { p50: r1(quantile(sorted, 0.5)), p95: r1(quantile(sorted, 0.95)), p99: r1(quantile(sorted, 0.99)), max: r1(sorted.at(-1) ?? Number.NaN) },
    serverCores: r3((cpu1 - cpu0) / 1000 / wallS),
    serverCpuMsPerTrackSecond: r3((cpu1 - cpu0) / (tracks * o.durationS)),
    mainThreadCores: r3((main1 - main0) / 1000 / wallS),
    mainThreadMsPerTrackSecond: r3((main1 - main0) / (tracks * o.durationS)),
    otherThreadsCores: [...threads1]
      .filter(([tid]) => tid !== pid)
      .map(([tid, ms]) => (ms - (threads0.get(tid) ?? 0)) / 1000 / wallS)
      .filter((c) => c >= 0.005)
      .sort((a, b) => b - a)
      .slice(0, 8)
      .map(r3),
    generatorCores: r3((gen.user + gen.system) / 1e6 / wallS),
    sendLagMs: { p95: r1(quantile(lagSorted, 0.95)), max: r1(lagSorted.at(-1) ?? Number.NaN) },
    vad: {
      modelFrames: d('circumplex_vad_frames_total', 'result="model"'),
      gatedFrames: d('circumplex_vad_frames_total', 'result="gated"'),
      rejectedFrames: d('circumplex_vad_frames_total', 'result="rejected"'),
      droppedWindows: d('circumplex_vad_windows_dropped_total'),
      meanBatch: batches > 0 ? r1(d('circumplex_vad_batched_requests_total') / batches) : null,
    },
    timeline: Array.from(bySecond, (b, sec) => ({
      s: sec,
      frames: b?.frames ?? 0,
      dropped: b?.dropped ?? 0,
      p95Ms: b
        ? r1(
            quantile(
              b.latencies.sort((x, y) => x - y),
              0.95,
            ),
          )
        : Number.NaN,
    })),
    holds: false,
    why: [],
  };
  if (lvl.framesRatio < 0.97) lvl.why.push(`only ${(lvl.framesRatio * 100).toFixed(1)} % of the windows arrived as frames`);
  if (lvl.droppedWindows > 0) lvl.why.push(`${lvl.droppedWindows} windows dropped`);
  if (!(lvl.latencyMs.p95 <= o.budgetMs)) lvl.why.push(`p95 latency ${lvl.latencyMs.p95} ms > ${o.budgetMs} ms`);
  if (!(lvl.sendLagMs.p95 <= 20)) lvl.why.push(`the generator itself ran late (p95 ${lvl.sendLagMs.p95} ms): the machine is saturated`);
  lvl.holds = lvl.why.length === 0;
  return lvl;
}

/** Runs the levels; the server process is always stopped before this resolves. */
export async function benchTwilio(
  opts: Partial<TwilioBenchOptions> = {},
  log: (l: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<TwilioBenchResult> {
  const o: TwilioBenchOptions = { ...DEFAULT_TWILIO_BENCH, ...opts };
  if (!(o.durationS >= 2)) throw new RangeError(`benchTwilio: durationS must be >= 2, got ${o.durationS}`);
  if (o.levels.length === 0 || !o.levels.every((l) => Number.isInteger(l) && l > 0))
    throw new RangeError(`benchTwilio: levels must be positive integers, got ${o.levels.join(',')}`);
  const packets = conversation(o.durationS);
  const { child, port } = await startServe(o);
  const levels: TwilioLevel[] = [];
  let brokeAt: TwilioBenchResult['brokeAt'] = null;
  try {
    for (const [i, calls] of o.levels.entries()) {
      log(`[bench] twilio: ${calls} calls (${2 * calls} tracks) × ${o.durationS} s, vad ${o.vad ? 'on' : 'off'}`);
      const lvl = await runLevel(port, child.pid!, calls, o, packets, i);
      levels.push(lvl);
      log(
        `[bench] twilio: ${calls} calls: frames ${(lvl.framesRatio * 100).toFixed(1)} %, dropped ${lvl.droppedWindows}, p95 ${lvl.latencyMs.p95} ms, server ${lvl.serverCores} cores (${lvl.serverCpuMsPerTrackSecond} ms per track-s; main thread ${lvl.mainThreadCores} cores, ${lvl.mainThreadMsPerTrackSecond} ms per track-s; other threads ${lvl.otherThreadsCores.join(' ')}), generator ${lvl.generatorCores} cores, ${lvl.holds ? 'holds' : `breaks: ${lvl.why.join('; ')}`}`,
      );
      if (!lvl.holds && !brokeAt) brokeAt = { calls, why: lvl.why };
      if (!lvl.holds && !o.continueAfterBreak) break;
      await sleep(1500); // let the previous level's streams end
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => {
      if (child.exitCode !== null) return r(undefined);
      child.once('exit', r);
      setTimeout(() => {
        child.kill('SIGKILL');
        r(undefined);
      }, 6000).unref();
    });
  }
  const held = levels.filter((l) => l.holds).map((l) => l.calls);
  return {
    options: o,
    levels,
    heldCalls: held.length ? Math.max(...held) : 0,
    brokeAt,
    note: "server and call generator share the machine (2 cores here); generatorCores is the generator's share",
  };
}

// `npx tsx bench/twilio.ts [levels] [seconds] [vad on|off]` runs it alone, e.g. `npx tsx bench/twilio.ts 50,100,200 20 on`.
if (process.argv[1]?.endsWith('twilio.ts')) {
  const [lv, dur, vad] = process.argv.slice(2);
  benchTwilio({
    ...(lv ? { levels: lv.split(',').map(Number) } : {}),
    ...(dur ? { durationS: Number(dur) } : {}),
    ...(vad ? { vad: vad !== 'off' } : {}),
    continueAfterBreak: process.env['TWILIO_BENCH_CONTINUE'] === '1',
    staggerStarts: process.env['TWILIO_BENCH_ALIGNED'] !== '1',
    subscribers: process.env['TWILIO_BENCH_SUBSCRIBERS'] === 'per-call' ? 'per-call' : 'one',
  }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
