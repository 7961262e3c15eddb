/**
 * Real-time factor of each stage and of the whole pipeline on one stream (RTF = wall time / audio
 * time; below 1 is faster than real time). Stages are timed alone on the same audio the pipeline
 * gets, one call at a time, so the numbers add up to roughly the pipeline's cost per hop.
 */
import { lastValueFrom, toArray } from 'rxjs';
import type { Engine } from '../../src/engine.js';
import { FlowControl } from '../../streams/flow.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import { PIPELINE_SAMPLE_RATE_HZ, type PipelineEvent } from '../../core/types.js';
import type { SpeechAffectOutput, SpeechRecognizerFactory, TextAffectModel } from '../../models/ports.js';
import { SPEECH_WAV, pacedSource, round } from '../lib/common.js';

/** One stage's timing. */
export interface StageRtf {
  readonly stage: string;
  /** Calls made. */
  readonly calls: number;
  /** Mean wall time per call, ms. */
  readonly meanMs: number;
  /** Audio the calls stand for, seconds. */
  readonly audioSeconds: number;
  readonly rtf: number;
  readonly note?: string;
}

/** The section's result. */
export interface RtfSection {
  readonly audioSeconds: number;
  readonly windowMs: number;
  readonly hopMs: number;
  readonly stages: readonly StageRtf[];
  /** The whole pipeline (windowing, speech model, fusion, smoothing, labelling), offline, lossless. */
  readonly pipeline: { readonly wallMs: number; readonly frames: number; readonly droppedWindows: number; readonly rtf: number };
  readonly notTimed: ReadonlyArray<{ readonly stage: string; readonly reason: string }>;
}

/** Options for {@link benchRtf}. */
export interface RtfOptions {
  /** Audio to push through, seconds (the test recording is looped). */
  audioSeconds: number;
  /** A text model to time (one call per second of audio, ~10-word windows), if loaded. */
  textModel?: TextAffectModel;
  /** Why the text stage is skipped, when no text model is given. */
  textSkipReason?: string;
  /** A Vosk recogniser factory to time (100 ms chunks, one accept at a time), if loaded. */
  asr?: SpeechRecognizerFactory;
  /** Says which Vosk model that is (e.g. the repo's tiny test model). */
  asrLabel?: string;
  /** Why the ASR stage is skipped, when no factory is given. */
  asrSkipReason?: string;
}

const TEXT_WINDOWS = [
  'i am so happy to see you again today',
  'this is really frustrating and i am tired of waiting',
  'well i guess that is fine with me',
  'oh no that is terrible news i am scared',
  'we won the game this is amazing',
];

/** Waits for `p` at most `ms` (a component's close must not hang the benchmark); true if it settled. */
export async function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => (t = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(t);
  return settled;
}

/** Times decoding, the speech model, fusion, the text model (if any) and the whole pipeline. */
export async function benchRtf(engine: Engine, samples: Float32Array, opts: RtfOptions): Promise<RtfSection> {
  const { windowMs, hopMs } = engine.options;
  const audioSamples = Math.round(opts.audioSeconds * PIPELINE_SAMPLE_RATE_HZ);
  const stages: StageRtf[] = [];
  const notTimed: { stage: string; reason: string }[] = [];

  // Decoding: the WAV source itself (file → 16 kHz mono float), as fast as it goes.
  {
    const t0 = performance.now();
    const chunks = await lastValueFrom(wavFileSource(SPEECH_WAV, { streamId: 'rtf', chunkMs: 100 }).pipe(toArray()));
    const ms = performance.now() - t0;
    const secs = chunks.reduce((n, c) => n + c.samples.length, 0) / PIPELINE_SAMPLE_RATE_HZ;
    stages.push({
      stage: 'decode (wav file)',
      calls: chunks.length,
      meanMs: round(ms / chunks.length, 4),
      audioSeconds: round(secs, 2),
      rtf: round(ms / 1000 / secs, 5),
    });
  }

  // Speech model: one window per hop, one call at a time (no batching partner: single stream).
  const win = Math.round((windowMs * PIPELINE_SAMPLE_RATE_HZ) / 1000);
  const hop = Math.round((hopMs * PIPELINE_SAMPLE_RATE_HZ) / 1000);
  const windows: Float32Array[] = [];
  for (let end = win; end <= audioSamples; end += hop) {
    const w = new Float32Array(win);
    for (let i = 0; i < win; i++) w[i] = samples[(end - win + i) % samples.length] as number;
    windows.push(w);
  }
  const outs: SpeechAffectOutput[] = [];
  {
    const t0 = performance.now();
    for (const w of windows) outs.push(await engine.speech.infer(w));
    const ms = performance.now() - t0;
    const secs = (windows.length * hopMs) / 1000;
    stages.push({
      stage: `speech model (${engine.speech.id}, ${engine.speech.provider})`,
      calls: windows.length,
      meanMs: round(ms / windows.length, 3),
      audioSeconds: secs,
      rtf: round(ms / 1000 / secs, 5),
      note: 'one window per hop',
    });
  }

  // Fusion: one call per window.
  {
    const t0 = performance.now();
    for (const s of outs) await engine.fusion.fuse({ speech: s });
    const ms = performance.now() - t0;
    const secs = (outs.length * hopMs) / 1000;
    stages.push({
      stage: `fusion (${engine.fusion.id})`,
      calls: outs.length,
      meanMs: round(ms / outs.length, 4),
      audioSeconds: secs,
      rtf: round(ms / 1000 / secs, 6),
    });
  }

  // Text model: about one text window per second of speech.
  if (opts.textModel) {
    const n = Math.max(1, Math.round(opts.audioSeconds));
    await opts.textModel.infer(TEXT_WINDOWS[0] as string); // warm-up: the first run allocates the session's buffers
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await opts.textModel.infer(TEXT_WINDOWS[i % TEXT_WINDOWS.length] as string);
    const ms = performance.now() - t0;
    stages.push({
      stage: `text model (${opts.textModel.id}, ${opts.textModel.provider})`,
      calls: n,
      meanMs: round(ms / n, 3),
      audioSeconds: n,
      rtf: round(ms / 1000 / n, 5),
      note: 'assumes one ~10-word text window per second of speech',
    });
  } else {
    notTimed.push({ stage: 'text model', reason: opts.textSkipReason ?? 'no text model loaded' });
  }
  // Speech recognition: libvosk in its host process, 100 ms chunks, one accept in flight.
  if (opts.asr) {
    const rec = await opts.asr.create('rtf-asr');
    try {
      const chunk = Math.round(PIPELINE_SAMPLE_RATE_HZ / 10);
      let calls = 0;
      const t0 = performance.now();
      for (let pos = 0; pos + chunk <= audioSamples; pos += chunk) {
        const c = new Float32Array(chunk);
        for (let i = 0; i < chunk; i++) c[i] = samples[(pos + i) % samples.length] as number;
        await rec.accept(c);
        calls++;
      }
      await rec.finish();
      const ms = performance.now() - t0;
      const secs = (calls * chunk) / PIPELINE_SAMPLE_RATE_HZ;
      stages.push({
        stage: `speech recognition (${opts.asr.id}, ${opts.asr.provider})`,
        calls,
        meanMs: round(ms / calls, 3),
        audioSeconds: round(secs, 2),
        rtf: round(ms / 1000 / secs, 5),
        ...(opts.asrLabel ? { note: opts.asrLabel } : {}),
      });
    } finally {
      await bounded(rec.close(), 5000);
    }
  } else {
    notTimed.push({ stage: 'speech recognition (Vosk)', reason: opts.asrSkipReason ?? 'no Vosk model loaded' });
  }

  // Whole pipeline, offline and lossless (flow control), as fast as it goes.
  const flow = new FlowControl({ highWater: 4 });
  const t0 = performance.now();
  const events: PipelineEvent[] = await lastValueFrom(
    pacedSource(samples, { streamId: 'rtf', durationMs: opts.audioSeconds * 1000, realtime: false, flow, chunkMs: 100 })
      .pipe(engine.pipeline('rtf', { whenBusy: 'queue', flow }))
      .pipe(toArray()),
  );
  const wallMs = performance.now() - t0;
  flow.close();
  const frames = events.filter((e) => e.kind === 'affect');
  const dropped = frames.reduce((n, e) => n + (e.kind === 'affect' ? e.point.droppedWindows : 0), 0);
  return {
    audioSeconds: opts.audioSeconds,
    windowMs,
    hopMs,
    stages,
    pipeline: { wallMs: round(wallMs, 1), frames: frames.length, droppedWindows: dropped, rtf: round(wallMs / 1000 / opts.audioSeconds, 5) },
    notTimed,
  };
}
