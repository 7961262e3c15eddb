/**
 * Warm-up at `serve` start, before the port opens: the first live calls otherwise pay for
 * everything that runs for the first time (issue 13, docs/bench.md "session 5"). On a fresh server
 * the first seconds of a 200-call burst lost windows while the ONNX sessions ran their first
 * batches of each size (ORT plans and grows its memory per input shape: a first batch of 32
 * windows took 2–5 × a later one) and the JavaScript of the ingest path and the per-stream stages
 * ran unoptimised. The warm-up runs, on synthetic noise:
 *
 * 1. the speech model at batch sizes up to {@link WARM_UP_DEFAULTS}`.speechBatches` (its batcher's
 *    sizes, concurrently, so they batch as live streams do), several rounds;
 * 2. the voice activity detector with many streams at once (its batches of hundreds of frames);
 * 3. 32 streams × 10 s (noise and near-silence in turns) through the whole per-stream pipeline
 *    (windowing, VAD stage and gate, speech stage, smoothing, turns), paced by a flow so that no
 *    window is skipped, and 100 s of μ-law packets through the ingest decoder (μ-law, 8 → 16 kHz
 *    resampler), as `/v1/telephony/twilio` and `/v1/ingest` feed them: enough runs of the per-window
 *    code for V8 to optimise it (8 streams × 3 s made no measurable difference, on a loaded box);
 * 4. ({@link warmUpServer}) the network path: 64 Twilio calls over real loopback sockets into a
 *    throw-away server, with subscribers (ws framing, the Twilio handler, the hub, the sends).
 *
 * Nothing of it reaches a subscriber, the hub or the recording of the real server; the VAD's
 * counters are put back, so `/metrics` starts at zero. A failure is an {@link AffectError} naming
 * the step.
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { AffectError, toAffectError } from '../core/errors.js';
import { getLogger, type Logger } from '../core/log.js';
import { PIPELINE_SAMPLE_RATE_HZ } from '../core/types.js';
import { float32ToMulaw } from '../streams/audio.js';
import type { Engine } from './engine.js';
import WebSocket from 'ws';
import { FrameDecoder, type IngestStats } from './server/ingest.js';
import { AffectServer } from './server/ws-server.js';
import { twilioConnected, twilioMedia, twilioStart, twilioStop } from './server/twilio-messages.js';
import { FlowControl, MAX_FLOW_CHUNK_MS } from '../streams/flow.js';
import { pacedFileSource } from '../streams/sources/wav-file.js';

/** How much the warm-up runs. */
export interface WarmUpOptions {
  /** Concurrent speech windows per round (each round waits for the last); sizes of the batches it makes. */
  speechBatches: readonly number[];
  /** Rounds over `speechBatches`. */
  speechRounds: number;
  /** Concurrent VAD streams per round (each one hop of audio). */
  vadStreams: readonly number[];
  /** Streams run through the whole pipeline at once, and seconds of audio each. */
  pipelineStreams: number;
  pipelineSeconds: number;
  /** Seconds of 8 kHz μ-law (20 ms packets) through the ingest decoder. */
  ingestSeconds: number;
  logger?: Logger;
}

export const WARM_UP_DEFAULTS: WarmUpOptions = {
  speechBatches: [1, 4, 8, 16, 32],
  speechRounds: 2,
  vadStreams: [16, 64, 256],
  pipelineStreams: 32,
  pipelineSeconds: 10,
  ingestSeconds: 100,
};

/** What the warm-up ran and how long each step took (ms). */
export interface WarmUpReport {
  speechWindows: number;
  vadRequests: number;
  pipelineFrames: number;
  ingestPackets: number;
  ms: { speech: number; vad: number; pipeline: number; ingest: number; total: number };
}

/** Deterministic noise at about -26 dBFS (above the VAD's energy gate, so its model runs). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return out;
}

/** Snapshots the VAD's counters; the function returned puts them back (so `/metrics` starts at zero). */
function keepVadCounters(engine: Engine): () => void {
  const vad = engine.vad;
  const counters = vad && 'stats' in vad && typeof vad.stats === 'object' && vad.stats !== null ? (vad.stats as Record<string, number>) : undefined;
  const before = counters ? { ...counters } : undefined;
  return () => {
    if (counters && before) Object.assign(counters, before);
  };
}

async function step<T>(name: string, run: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  try {
    return [await run(), performance.now() - t0];
  } catch (err) {
    const e = toAffectError(err);
    throw new AffectError(e.code, `warm-up (${name}) failed: ${e.message}`, {
      cause: err,
      hint: 'the models loaded but could not run; check the model files and --device, or set CIRCUMPLEX_WARM_UP=off to start without it (the error then comes with the first stream)',
    });
  }
}

/** Runs the models, the per-stream pipeline and the ingest decoder once over synthetic audio. */
export async function warmUp(engine: Engine, opts: Partial<WarmUpOptions> = {}): Promise<WarmUpReport> {
  const o: WarmUpOptions = { ...WARM_UP_DEFAULTS, ...opts };
  const logger = o.logger ?? getLogger();
  const t0 = performance.now();
  const windowSamples = engine.speech.windowSamples ?? Math.round((engine.options.windowMs * PIPELINE_SAMPLE_RATE_HZ) / 1000);
  const hopSamples = Math.round((engine.options.hopMs * PIPELINE_SAMPLE_RATE_HZ) / 1000);

  const [speechWindows, speechMs] = await step('speech model', async () => {
    let n = 0;
    for (let r = 0; r < o.speechRounds; r++) {
      for (const b of o.speechBatches) {
        await Promise.all(Array.from({ length: b }, (_, i) => engine.speech.infer(noise(windowSamples, 1 + i))));
        n += b;
      }
    }
    return n;
  });

  const vad = engine.vad;
  const restoreVadCounters = keepVadCounters(engine);
  const [vadRequests, vadMs] = await step('voice activity detector', async () => {
    if (!vad) return 0;
    let n = 0;
    for (const k of o.vadStreams) {
      await Promise.all(Array.from({ length: k }, (_, i) => lastValueFrom(from(vad.stream().probabilities(noise(hopSamples, 7 + i))))));
      n += k;
    }
    return n;
  });

  const [pipelineFrames, pipelineMs] = await step('stream pipeline', async () => {
    // The text path (ASR) keeps per-stream recognisers: not started for synthetic streams.
    if (engine.hasTextPath || o.pipelineStreams === 0) return 0;
    const runs = Array.from({ length: o.pipelineStreams }, (_, s) => {
      const streamId = `warm-up:${s}`;
      // Noise and near-silence in turns (1 s each): both the VAD's model path and its energy gate run.
      const audio = noise(Math.round(o.pipelineSeconds * PIPELINE_SAMPLE_RATE_HZ), 100 + s);
      for (let i = 0; i < audio.length; i++) if (Math.floor(i / PIPELINE_SAMPLE_RATE_HZ) % 2 === 1) audio[i]! *= 1e-4;
      // Paced by a flow as offline files are (emitted at once, the live policy would skip windows).
      const flow = new FlowControl();
      const chunks$ = pacedFileSource(
        'warm-up',
        { streamId, chunkMs: MAX_FLOW_CHUNK_MS, realtime: false, speed: 1, flow },
        async (out) => {
          const n = out.framesPerChunk(PIPELINE_SAMPLE_RATE_HZ);
          for (let at = 0; at < audio.length && !out.stopped(); at += n) {
            await out.next({ streamId, startSample: at, samples: audio.subarray(at, at + n) }, at + n, PIPELINE_SAMPLE_RATE_HZ);
          }
          out.complete(null);
        },
        () => undefined,
      );
      return lastValueFrom(chunks$.pipe(engine.pipeline(streamId, { whenBusy: 'queue', flow }), toArray()));
    });
    const events = await Promise.all(runs);
    return events.reduce((n, ev) => n + ev.filter((e) => e.kind === 'affect').length, 0);
  });
  restoreVadCounters();

  const [ingestPackets, ingestMs] = await step('ingest decoder', () => {
    const stats: IngestStats = { framesAccepted: 0, framesRejected: 0, samplesNonFinite: 0, samplesClipped: 0, samplesOut: 0 };
    const dec = new FrameDecoder({ encoding: 'mulaw', sampleRateHz: 8000, channels: 1 });
    const packet = Buffer.alloc(160);
    const packets = Math.round(o.ingestSeconds * 50);
    for (let k = 0; k < packets; k++) {
      for (let i = 0; i < 160; i++) packet[i] = (k * 31 + i * 7) & 0xff;
      const r = dec.decode(packet, stats);
      if ('reason' in r) throw new AffectError('AFFECT_ERR_INFERENCE', `ingest decoder refused a μ-law packet: ${r.message}`);
    }
    dec.flush();
    return Promise.resolve(packets);
  });

  const report: WarmUpReport = {
    speechWindows,
    vadRequests,
    pipelineFrames,
    ingestPackets,
    ms: {
      speech: Math.round(speechMs),
      vad: Math.round(vadMs),
      pipeline: Math.round(pipelineMs),
      ingest: Math.round(ingestMs),
      total: Math.round(performance.now() - t0),
    },
  };
  logger.info(report, `warmed up in ${report.ms.total} ms (speech model, voice activity detector, stream pipeline, ingest decoder)`);
  return report;
}

/** How much {@link warmUpServer} runs. */
export interface ServerWarmUpOptions {
  /** Simulated Twilio calls (two tracks each), each with its own subscriber, plus one subscriber on every stream. */
  calls: number;
  /** Seconds of audio each call sends. */
  seconds: number;
  /** How many times faster than real time the calls send (below the ingest rate limit: 100 messages a second per call in real time). */
  speed: number;
  /** Hop and window of the ingest streams (serve's). */
  ingestStreamTiming: { hopMs: number; windowMs: number };
  /**
   * The speech model's cost per window (ms), e.g. from {@link warmUp}'s report: fewer calls (or none)
   * when the calls' windows would take longer than `modelBudgetMs` of model time, so a heavy encoder
   * does not start the real server behind a backlog. Unknown: `calls` as given.
   */
  modelMsPerWindow?: number;
  /** Model time the calls' windows may take (ms). */
  modelBudgetMs: number;
  /** How long to wait for the calls' streams to end after the last packet (ms); then it goes on with a warning. */
  drainMs: number;
  logger?: Logger;
}

export const SERVER_WARM_UP_DEFAULTS: Omit<ServerWarmUpOptions, 'ingestStreamTiming'> = {
  calls: 64,
  seconds: 3,
  speed: 4,
  modelBudgetMs: 4000,
  drainMs: 10_000,
};

/** What {@link warmUpServer} ran. */
export interface ServerWarmUpReport {
  calls: number;
  mediaMessages: number;
  framesReceived: number;
  /** Call tracks whose stream had not ended after `drainMs` (the warm-up went on without them). */
  unfinishedTracks: number;
  ms: number;
}

/**
 * Runs the network path once before `serve` opens its port: a throw-away server on a loopback port
 * (its own hub and metrics, the same engine and pipeline hook as `serve`), `calls` simulated Twilio
 * calls sending μ-law media messages over real sockets, one subscriber per call and one on every
 * stream. On a fresh server the first seconds of a 200-call level stalled the event loop for
 * 50–300 ms at a time while this code (ws framing, the Twilio handler, the hub, the subscribers'
 * sends) ran unoptimised, and lost windows there (docs/bench.md, session 6). Nothing reaches the real
 * server; the VAD's counters are put back.
 */
export async function warmUpServer(
  engine: Engine,
  opts: Partial<ServerWarmUpOptions> & Pick<ServerWarmUpOptions, 'ingestStreamTiming'>,
): Promise<ServerWarmUpReport> {
  const o: ServerWarmUpOptions = { ...SERVER_WARM_UP_DEFAULTS, ...opts };
  const logger = o.logger ?? getLogger();
  const t0 = performance.now();
  const restoreVadCounters = keepVadCounters(engine);
  const [report] = await step('network path', async () => {
    // The text path (ASR) keeps per-stream recognisers: not started for synthetic calls.
    const none: ServerWarmUpReport = { calls: 0, mediaMessages: 0, framesReceived: 0, unfinishedTracks: 0, ms: 0 };
    if (engine.hasTextPath) return none;
    const { hopMs, windowMs } = o.ingestStreamTiming;
    const windowsPerTrack = Math.max(1, Math.floor((o.seconds * 1000 - windowMs) / hopMs) + 1);
    const calls =
      o.modelMsPerWindow !== undefined && o.modelMsPerWindow > 0
        ? Math.min(o.calls, Math.floor(o.modelBudgetMs / (o.modelMsPerWindow * 2 * windowsPerTrack)))
        : o.calls;
    if (calls <= 0) return none;
    const server = await AffectServer.start({
      port: 0,
      host: '127.0.0.1',
      ingestStreamTiming: o.ingestStreamTiming,
      onIngestStream: (id, audio$) => audio$.pipe(engine.pipeline(id, { whenBusy: 'latest' })),
      logger: logger.child({ component: 'warm-up' }, { level: 'warn' }),
    });
    const sockets: WebSocket[] = [];
    const open = async (path: string): Promise<WebSocket> => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { perMessageDeflate: false });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return ws;
    };
    try {
      let frames = 0;
      const ended = new Set<string>();
      const count = (data: unknown): void => {
        const m = JSON.parse(String(data)) as { type?: string; state?: string; streamId?: string };
        if (m.type === 'affect') frames++;
        else if (m.type === 'status' && m.state === 'ended' && m.streamId) ended.add(m.streamId);
      };
      const sid = (c: number) => `CAwarmup${String(c).padStart(4, '0')}`;
      (await open('/v1/stream?streams=*')).on('message', count);
      await Promise.all(
        Array.from({ length: calls }, async (_, c) => (await open(`/v1/stream?streams=${sid(c)}:inbound,${sid(c)}:outbound`)).on('message', () => undefined)),
      );
      const callSockets = await Promise.all(Array.from({ length: calls }, () => open('/v1/telephony/twilio')));
      // A call the server closes before its stop (a pipeline that fails, a refused start) fails the warm-up at once.
      let refused: string | undefined;
      let stopping = false;
      for (const ws of callSockets)
        ws.once('close', (code, reason) => {
          if (!stopping || code !== 1000) refused ??= `the server closed a warm-up call with ${code} ${String(reason)}`.trim();
        });
      // 20 ms μ-law packets, base64, encoded once (every call sends the same): noise on one track
      // while the other is near-silent, 1 s turns.
      const packets = Math.round(o.seconds * 50);
      const payloads = [0, 1].map((track) =>
        Array.from({ length: packets }, (_, k) => {
          const x = noise(160, 1000 + k * 2 + track);
          if ((Math.floor(k / 50) + track) % 2 === 1) for (let i = 0; i < x.length; i++) x[i]! *= 1e-3;
          return Buffer.from(float32ToMulaw(x)).toString('base64');
        }),
      );
      callSockets.forEach((ws, c) => {
        ws.send(twilioConnected());
        ws.send(twilioStart(sid(c), { accountSid: 'ACwarmup' }));
      });
      const stepMs = 20 / o.speed;
      const start = performance.now();
      for (let k = 0; k < packets && refused === undefined; k++) {
        callSockets.forEach((ws, c) => {
          ws.send(twilioMedia(`MZ${sid(c)}`, 'inbound', k, payloads[0]![k]!));
          ws.send(twilioMedia(`MZ${sid(c)}`, 'outbound', k, payloads[1]![k]!));
        });
        const wait = start + (k + 1) * stepMs - performance.now();
        await new Promise((r) => (wait > 1 ? setTimeout(r, wait) : setImmediate(r)));
      }
      stopping = true;
      for (const [c, ws] of callSockets.entries()) if (ws.readyState === WebSocket.OPEN) ws.send(twilioStop(`MZ${sid(c)}`, 2 * packets + 2));
      const deadline = performance.now() + o.drainMs;
      while (ended.size < 2 * calls && refused === undefined && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (refused !== undefined) throw new AffectError('AFFECT_ERR_INFERENCE', refused);
      const unfinishedTracks = 2 * calls - ended.size;
      // Every track ended and not one frame: the pipeline runs but delivers nothing.
      if (frames === 0 && unfinishedTracks === 0) throw new AffectError('AFFECT_ERR_INFERENCE', 'no affect frame came back from the warm-up calls');
      if (unfinishedTracks > 0)
        logger.warn(
          { unfinishedTracks },
          `${unfinishedTracks} warm-up call track(s) still running after ${o.drainMs} ms; going on without them (the model is slower than the warm-up assumed)`,
        );
      return { calls, mediaMessages: packets * 2 * calls, framesReceived: frames, unfinishedTracks, ms: 0 };
    } finally {
      for (const ws of sockets) ws.terminate();
      await server.close('warm-up done');
    }
  });
  restoreVadCounters();
  report.ms = Math.round(performance.now() - t0);
  logger.info(report, `warmed up the network path in ${report.ms} ms (${report.calls} Twilio calls, ${report.framesReceived} frames to subscribers)`);
  return report;
}
