/**
 * Voice activity: the detector port, its options, and the `detectVoice` stage that stamps each
 * analysis window with the fraction of it that is speech and reports speech segments (start/end in
 * audio ms) when they end.
 *
 * Per 32 ms frame the detector gives a speech probability p. Frames are labelled with hysteresis
 * (as Silero's own get_speech_timestamps does): a segment starts at the first frame with
 * p >= threshold; inside a segment a frame counts as speech while p >= negThreshold; the segment
 * ends at the start of the first run of frames below negThreshold that lasts minSilenceMs. Segments
 * shorter than minSpeechMs are discarded: they are not reported, and their frames do not count as
 * speech in `voiced` (a segment's frames count once it has lasted minSpeechMs, so a window that ends
 * in the first minSpeechMs of speech counts that speech only from the next window on). This keeps
 * clicks, line noise bursts and the onset of hold music from moving the trajectory.
 */
import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import { AffectError } from '../core/errors.js';
import type { FlowControl } from './flow.js';
import { samplesToMs, type AudioWindow } from '../core/types.js';
import type { VoiceDetector, VadDropReason } from '../models/ports.js';

/** Options for voice activity (stage and hold). */
export interface VadOptions {
  /** Probability at which a speech segment starts. Default 0.5. */
  threshold: number;
  /** Probability below which a frame inside a segment is silence. Default threshold - 0.15. */
  negThreshold?: number;
  /** Silence (ms of audio) that ends a segment. Default 300. */
  minSilenceMs: number;
  /** Segments shorter than this (ms) are not reported and their frames are not speech. Default 300. */
  minSpeechMs: number;
  /** Windows whose voiced fraction is below this do not move the smoothed trajectory. Default 0.2. */
  minVoicedFraction: number;
  /** Time constant (ms of audio) with which the confidence of held frames decays. Default 2000. */
  holdTauMs: number;
  /**
   * Windows below minVoicedFraction skip the speech model and fusion (their frames are held anyway,
   * so the model's answer would not be used); such frames carry no `speech` part. Default true;
   * false runs the model on every window (held frames then carry its unused per-window estimate).
   */
  skipSpeechModel: boolean;
}

export const DEFAULT_VAD: VadOptions = { threshold: 0.5, minSilenceMs: 300, minSpeechMs: 300, minVoicedFraction: 0.2, holdTauMs: 2000, skipSpeechModel: true };

/** Validates and completes VAD options (RangeError naming the option). */
export function resolveVadOptions(opts: Partial<VadOptions> = {}): Required<VadOptions> {
  const o = { ...DEFAULT_VAD, ...opts };
  const neg = o.negThreshold ?? Math.max(0.01, o.threshold - 0.15);
  if (!(o.threshold > 0 && o.threshold < 1)) throw new RangeError(`vad: threshold must be in (0, 1), got ${o.threshold}`);
  if (!(neg > 0 && neg <= o.threshold)) throw new RangeError(`vad: negThreshold must be in (0, threshold], got ${neg}`);
  if (!(o.minSilenceMs >= 0) || !Number.isFinite(o.minSilenceMs)) throw new RangeError(`vad: minSilenceMs must be >= 0, got ${o.minSilenceMs}`);
  if (!(o.minSpeechMs >= 0) || !Number.isFinite(o.minSpeechMs)) throw new RangeError(`vad: minSpeechMs must be >= 0, got ${o.minSpeechMs}`);
  if (!(o.minVoicedFraction >= 0 && o.minVoicedFraction <= 1)) throw new RangeError(`vad: minVoicedFraction must be in [0, 1], got ${o.minVoicedFraction}`);
  if (!(o.holdTauMs > 0) || !Number.isFinite(o.holdTauMs)) throw new RangeError(`vad: holdTauMs must be > 0, got ${o.holdTauMs}`);
  if (typeof o.skipSpeechModel !== 'boolean') throw new RangeError(`vad: skipSpeechModel must be true or false, got ${String(o.skipSpeechModel)}`);
  return { ...o, negThreshold: neg };
}

/**
 * A window with its voiced fraction (0..1). `droppedBefore`: windows the VAD stage dropped since the
 * previous window it let through (the speech stage adds them to the frame's `droppedWindows`).
 */
export type VoicedWindow = AudioWindow & { readonly voiced: number; readonly droppedBefore?: number };

/** A speech segment that has ended. */
export interface VoiceSegment {
  readonly streamId: string;
  /** Audio ms of the segment's first speech frame. */
  readonly startMs: number;
  /** Audio ms where the closing silence began (or the end of the audio). */
  readonly endMs: number;
  /** Audio ms of the window end at which the end was known (frames up to here may belong to the segment). */
  readonly detectedAtMs: number;
}

/** Options of {@link detectVoice}. */
export interface DetectVoiceOptions extends VadOptions {
  /** Called with each speech segment as soon as its end is known (and at the end of the audio). */
  onSegment?: (s: VoiceSegment) => void;
  /** Credit counter of an offline run: a window holds one while it waits for the detector, so the source pauses. */
  flow?: FlowControl;
  /**
   * Most windows waiting for the detector (not counting the one in it). A live stream whose detector
   * falls behind drops the oldest waiting window past this bound (counted: `onDrop`, the detector's
   * counters, and `droppedBefore` on the next window, so frames report it in `droppedWindows`); its
   * audio is a gap for the detector (see {@link detectVoice}). With a flow (offline)
   * nothing is dropped: the source waits. Default 8 (2 s at the default hop).
   */
  maxPendingWindows?: number;
  /** Called for each window the stage drops. */
  onDrop?: (window: AudioWindow, reason: VadDropReason, err?: unknown) => void;
}

/** Default of {@link DetectVoiceOptions.maxPendingWindows}. */
export const DEFAULT_VAD_MAX_PENDING_WINDOWS = 8;

/** Frame labels kept for windows (bounded: a little more than one window). */
const MAX_FRAMES_KEPT = 4096;

/** A speech segment in frames: [startFrame, endFrame), endFrame where the closing silence began. */
export type FrameSegment = readonly [startFrame: number, endFrame: number];

/**
 * The hysteresis of {@link detectVoice} on its own (the module comment): takes each frame's speech
 * probability in order, labels the frames, and returns the segments as they close. A segment's frames
 * count as speech only once it has lasted minSpeechMs. Keeps the labels of the last `maxKept` frames
 * (the stage: a little more than one window; a bench that wants every frame: Infinity).
 */
export class FrameLabeller {
  private readonly labels: boolean[] = [];
  private first = 0; // frame index of labels[0]
  private end = 0; // frames labelled so far
  private triggered = false;
  private segStart = 0;
  private silenceRun = 0;
  private confirmed = false;
  private readonly candidates: number[] = [];
  private readonly silenceFrames: number;
  private readonly minSpeechFrames: number;

  constructor(
    private readonly o: Required<VadOptions>,
    readonly frameSamples: number,
    private readonly maxKept = MAX_FRAMES_KEPT,
  ) {
    const frameMs = samplesToMs(frameSamples);
    this.silenceFrames = Math.max(1, Math.ceil(o.minSilenceMs / frameMs));
    this.minSpeechFrames = Math.max(1, Math.ceil(o.minSpeechMs / frameMs));
  }

  /** Frames labelled so far. */
  get frames(): number {
    return this.end;
  }

  /** Labels the next frames; returns the segments that closed among them and lasted minSpeechMs. */
  push(probs: ArrayLike<number>): FrameSegment[] {
    const o = this.o;
    const closed: FrameSegment[] = [];
    for (let i = 0; i < probs.length; i++) {
      const p = probs[i]!;
      const k = this.end++;
      let speech = false;
      if (!this.triggered) {
        if (p >= o.threshold) {
          this.triggered = true;
          this.confirmed = false;
          this.candidates.length = 0;
          this.segStart = k;
          this.silenceRun = 0;
          speech = true;
        }
      } else if (p >= o.negThreshold) {
        this.silenceRun = 0;
        speech = true;
      } else if (++this.silenceRun >= this.silenceFrames) {
        const seg = this.close(k - this.silenceRun + 1);
        if (seg) closed.push(seg);
      }
      this.labels.push(false);
      if (speech) {
        if (this.confirmed) this.labels[k - this.first] = true;
        else this.candidates.push(k);
      }
      // Confirmed once the speech so far (up to the current silence run) lasts minSpeechMs.
      if (this.triggered && !this.confirmed && speech && k - this.segStart + 1 >= this.minSpeechFrames) {
        this.confirmed = true;
        for (const c of this.candidates) if (c >= this.first) this.labels[c - this.first] = true;
        this.candidates.length = 0;
      }
    }
    if (this.labels.length > this.maxKept) {
      const cut = this.labels.length - this.maxKept;
      this.labels.splice(0, cut);
      this.first += cut;
    }
    return closed;
  }

  /** The end of the audio: closes an open segment (returned if it lasted minSpeechMs). */
  finish(): FrameSegment | undefined {
    return this.triggered ? this.close(this.end - this.silenceRun) : undefined;
  }

  /** Whether frame k is labelled speech (false for frames no longer kept or not yet labelled). */
  isSpeech(k: number): boolean {
    return this.labels[k - this.first] === true;
  }

  /** Fraction of the frames whose centre lies in [startSample, endSample) that are speech (0 if none is kept). */
  voicedFraction(startSample: number, endSample: number): number {
    const F = this.frameSamples;
    const a = Math.max(this.first, Math.ceil((startSample - F / 2) / F));
    const b = Math.min(this.end, Math.floor((endSample - F / 2) / F) + 1);
    if (b <= a) return 0;
    let n = 0;
    for (let k = a; k < b; k++) if (this.labels[k - this.first]) n++;
    return n / (b - a);
  }

  private close(endFrame: number): FrameSegment | undefined {
    this.triggered = false;
    this.candidates.length = 0;
    const start = this.segStart;
    return samplesToMs((endFrame - start) * this.frameSamples) >= this.o.minSpeechMs ? [start, endFrame] : undefined;
  }
}

/**
 * AudioWindow → VoicedWindow. Feeds each window's new samples to the detector in order (one
 * detector call per window, never overlapping), keeps the frame labels, and stamps the window with
 * the fraction of its frames that are speech. Bounded: see {@link DetectVoiceOptions.maxPendingWindows}.
 *
 * A gap before a window (windows dropped, or a source whose clock jumped past a silent stretch) is
 * silence: the frame it starts in and the one it ends in go to the detector padded with zeros, and
 * the whole frames between are labelled silence (probability 0, as the energy gate gives zeros)
 * without being allocated or run, so a gap of minutes costs a few frames, not minutes of zeros.
 */
export function detectVoice(detector: VoiceDetector, opts: Partial<DetectVoiceOptions> = {}): OperatorFunction<AudioWindow, VoicedWindow> {
  const o = resolveVadOptions(opts);
  const F = detector.frameSamples;
  if (!Number.isInteger(F) || F < 1) throw new RangeError(`vad: frameSamples must be an integer >= 1, got ${F}`);
  if (opts.maxPendingWindows !== undefined && !(Number.isInteger(opts.maxPendingWindows) && opts.maxPendingWindows >= 1)) {
    throw new RangeError(`vad: maxPendingWindows must be an integer >= 1, got ${opts.maxPendingWindows}`);
  }
  return (windows$) =>
    new Observable<VoicedWindow>((sub) => {
      const vs = detector.stream();
      let streamId = '';
      let fedTo = 0; // samples handed to the detector (or buffered) so far
      let pending = new Float32Array(0); // < F samples waiting for a full frame
      const labeller = new FrameLabeller(o, F);
      const report = (seg: FrameSegment | undefined, detectedAtMs: number): void => {
        if (seg) opts.onSegment?.({ streamId, startMs: samplesToMs(seg[0] * F), endMs: samplesToMs(seg[1] * F), detectedAtMs });
      };
      const label = (probs: Float32Array, detectedAtMs: number): void => {
        for (const seg of labeller.push(probs)) report(seg, detectedAtMs);
      };
      const voicedOf = (w: AudioWindow): number => labeller.voicedFraction(w.startSample, w.endSample);
      const maxPending = opts.maxPendingWindows ?? DEFAULT_VAD_MAX_PENDING_WINDOWS;
      // Waiting windows with the drops (of windows before them in audio time) they will report.
      const waiting: Array<{ w: AudioWindow; before: number }> = [];
      let busy: Subscription | undefined;
      let running = false;
      let upstreamDone = false;
      let dropped = 0; // windows the detector refused since the last one emitted
      const emit = (w: AudioWindow, before: number): void => {
        const d = dropped + before;
        dropped = 0;
        sub.next({ ...w, voiced: voicedOf(w), ...(d > 0 ? { droppedBefore: d } : {}) });
        opts.flow?.release();
      };
      const dropWindow = (w: AudioWindow, reason: VadDropReason, err?: unknown): void => {
        detector.countDroppedWindow?.(reason);
        opts.onDrop?.(w, reason, err);
        opts.flow?.release();
      };
      const next = (): void => {
        while (!running) {
          const head = waiting.shift();
          if (!head) {
            if (upstreamDone) finish();
            return;
          }
          const { w, before } = head;
          streamId = w.streamId;
          // New samples of this window (windows overlap). A gap before it: zeros up to the end of the
          // pending frame and in the frame the window starts in; the whole frames between are silent.
          const gap = Math.max(0, w.startSample - fedTo);
          const headFrames = gap > 0 && pending.length > 0 ? 1 : 0;
          const padHead = headFrames * (F - pending.length);
          const silentFrames = gap > padHead ? Math.floor((gap - padHead) / F) : 0;
          const fed = gap - silentFrames * F;
          const skip = Math.max(0, fedTo - w.startSample);
          const fresh = skip < w.samples.length ? w.samples.subarray(skip) : new Float32Array(0);
          const buf = new Float32Array(pending.length + fed + fresh.length);
          buf.set(pending);
          buf.set(fresh, pending.length + fed);
          fedTo = Math.max(fedTo, w.startSample + w.samples.length);
          const whole = Math.floor(buf.length / F) * F;
          pending = buf.slice(whole);
          // The detector's probabilities with the silent frames put back in place.
          const withSilence = (p: Float32Array): Float32Array => {
            if (silentFrames === 0) return p;
            const all = new Float32Array(p.length + silentFrames);
            all.set(p.subarray(0, headFrames));
            all.set(p.subarray(headFrames), headFrames + silentFrames);
            return all;
          };
          if (whole === 0) {
            if (silentFrames > 0) label(new Float32Array(silentFrames), w.tMs);
            emit(w, before);
            continue;
          }
          let input: ObservableInput<Float32Array>;
          try {
            input = vs.probabilities(buf.subarray(0, whole));
          } catch (err) {
            input = Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
          running = true;
          let got: Float32Array | undefined;
          busy = from(input).subscribe({
            next: (p) => {
              got ??= p;
            },
            error: (err: unknown) => {
              if (!(err instanceof AffectError) || !err.recoverable) {
                sub.error(err);
                return;
              }
              // The detector refused (queue full) or failed these frames: they count as silence, the window is dropped.
              label(new Float32Array(whole / F + silentFrames), w.tMs);
              running = false;
              dropped += before + 1;
              dropWindow(w, 'error', err);
              next();
            },
            complete: () => {
              label(withSilence(got ?? new Float32Array(whole / F)), w.tMs);
              running = false;
              emit(w, before);
              next();
            },
          });
        }
      };
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        report(labeller.finish(), samplesToMs(fedTo));
        sub.complete();
      };
      const upstream = windows$.subscribe({
        next: (w) => {
          opts.flow?.acquire();
          waiting.push({ w, before: 0 });
          // Live streams: past the bound, the oldest waiting window goes (offline runs wait instead);
          // the window after it reports the drop.
          if (!opts.flow) {
            while (waiting.length > maxPending) {
              const old = waiting.shift()!;
              waiting[0]!.before += old.before + 1;
              dropWindow(old.w, 'overflow');
            }
          }
          next();
        },
        error: (err: unknown) => sub.error(err),
        complete: () => {
          upstreamDone = true;
          if (!running && waiting.length === 0) finish();
        },
      });
      return () => {
        upstream.unsubscribe();
        busy?.unsubscribe();
        // Ended, failed or unsubscribed: a detector batching across streams stops waiting for this one.
        vs.close?.();
      };
    });
}
