/**
 * Prometheus metrics for one server (its own prom-client Registry, so several servers in one
 * process — tests — do not collide), and the process's default metrics (heap, GC, event-loop lag),
 * collected once per process. Served at GET /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackplaneStatus } from './hub.js';

/** Text path counters summed over streams (streams/text-path.ts `TextPathStats`). */
export interface TextPathCounters {
  readonly droppedSamples: number;
  readonly coalescedWindows: number;
  readonly textModelErrors: number;
}

/** ASR host counters (models/asr/vosk-factory.ts `VoskFactoryStats`). */
export interface AsrCounters {
  readonly hostsStarted: number;
  readonly hostDeaths: number;
  readonly watchdogKills: number;
  readonly openRecognizers: number;
  /** A host runs with the model loaded (false while it is dead or restarting): `/healthz` reads it. */
  readonly hostUp: boolean;
  /** Why the last host died or a restart failed, without the model folder's path. */
  readonly lastHostError?: string;
}

/** Voice activity detector counters (models/silero-vad.ts `SileroVadStats`). */
export interface VadCounters {
  readonly modelFrames: number;
  readonly gatedFrames: number;
  readonly rejectedFrames: number;
  readonly batches: number;
  readonly batchedRequests: number;
  readonly droppedWindowsOverflow: number;
  readonly droppedWindowsError: number;
}

let processRegistry: Registry | undefined;

/**
 * The process's default metrics, collected once: prom-client cannot stop a collection (its GC
 * observer and event-loop monitor live for good and hold their registry), so one per server kept
 * every closed server — its hub and rings too — reachable, and sampling the event loop, for as long
 * as the process ran (reproduced: 200 start/close cycles, +70 KB of heap and a monitor each).
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // Includes nodejs_eventloop_lag_seconds and the event-loop lag percentiles.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
  }
  return processRegistry;
}

/** A counter whose value is read from `read()` at scrape time (the count lives elsewhere). */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number | undefined): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (v !== undefined && Number.isFinite(v) && v > 0) this.inc(v);
    },
  });
}

/**
 * A gauge with one label, set from `source` at each scrape: `read` gives the label's value and the
 * gauge's; absent while the source gives nothing (no backplane, no speech recognition), so a server
 * without the part does not read as "down".
 */
function scrapedGauge<S, L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: L,
  source: () => S | undefined,
  read: (s: S) => readonly [labelValue: string, value: number],
): Gauge<L> {
  return new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      const s = source();
      this.reset();
      if (s === undefined) return;
      const [v, x] = read(s);
      this.set({ [label]: v } as Record<L, string>, x);
    },
  });
}

/** A gauge labelled with the backplane's kind, set from its status at each scrape (absent while there is no backplane). */
function backplaneGauge(
  registry: Registry,
  name: string,
  help: string,
  source: () => BackplaneStatus | undefined,
  read: (b: BackplaneStatus) => number,
): Gauge<'kind'> {
  return scrapedGauge(registry, name, help, 'kind', source, (b) => [b.kind, read(b)]);
}

/** The server's metrics. Names are documented in docs/server.md. */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Audio frames received on /v1/ingest, by result (accepted | rejected). */
  readonly ingestFrames = new Counter({
    name: 'circumplex_ingest_frames_total',
    help: 'Ingest frames by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /** Ingest frames rejected, by reason (empty, misaligned, bad-json, ...). */
  readonly ingestRejected = new Counter({
    name: 'circumplex_ingest_rejected_total',
    help: 'Ingest frames rejected, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  /** Ingest samples repaired: non_finite (replaced by 0) or clipped. */
  readonly ingestSamplesRepaired = new Counter({
    name: 'circumplex_ingest_samples_repaired_total',
    help: 'Ingest samples that were NaN/Inf or clipped',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  /** Messages published by the hub (frames in), by type. */
  readonly framesPublished = new Counter({
    name: 'circumplex_frames_published_total',
    help: 'Stream messages published, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  /** Messages sent to subscribers (frames out), by type. */
  readonly framesSent = new Counter({
    name: 'circumplex_frames_sent_total',
    help: 'Messages sent to subscribers, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  /** Frames not delivered, by reason: coalesced (slow subscriber), slow_consumer (closed), invalid (NaN etc.), pipeline (model stage drops). */
  readonly framesDropped = new Counter({
    name: 'circumplex_frames_dropped_total',
    help: 'Frames dropped, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  /** Frames whose hop overload widened (the model stage could not keep up), and their effective hop. */
  readonly hopWidened = new Counter({
    name: 'circumplex_hop_widened_frames_total',
    help: 'Affect frames whose hop was widened because inference could not keep up',
    registers: [this.registry],
  });
  readonly effectiveHop = new Histogram({
    name: 'circumplex_effective_hop_seconds',
    help: 'Effective hop of frames whose hop overload widened (audio seconds since the previous frame)',
    buckets: [0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
    registers: [this.registry],
  });
  /** Open connections, by endpoint (stream | ingest | twilio). */
  readonly connections = new Gauge({
    name: 'circumplex_connections',
    help: 'Open WebSocket connections',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  /** Closed connections by endpoint and reason. */
  readonly closes = new Counter({
    name: 'circumplex_connections_closed_total',
    help: 'Closed connections, by endpoint and reason',
    labelNames: ['endpoint', 'reason'],
    registers: [this.registry],
  });
  /** Refused upgrades/requests (missing-token, bad-token, scope, origin, path, bad-url, shutting-down) and publisher starts (over-capacity, stream-busy, backplane-down, no-pipeline), by reason. */
  readonly refused = new Counter({
    name: 'circumplex_refused_total',
    help: 'Refused upgrades, requests and publisher starts, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  /** Wall time from the arrival of the audio that ends a window to the publication of its frame. */
  readonly inferenceLatency = new Histogram({
    name: 'circumplex_inference_latency_seconds',
    help: 'Audio arrival to affect frame publication',
    // No stream label: call ids are unbounded, and a label per call would grow the registry forever.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** 1 for the execution provider each model runs on. */
  readonly modelProvider = new Gauge({
    name: 'circumplex_model_provider',
    help: 'Execution provider per model (value 1)',
    labelNames: ['model', 'provider'],
    registers: [this.registry],
  });
  /** Recorder (microphone) restarts. */
  readonly recorderRestarts = new Counter({ name: 'circumplex_recorder_restarts_total', help: 'Audio recorder restarts', registers: [this.registry] });

  private backplaneSource: (() => BackplaneStatus | undefined) | undefined;
  /** 1 while the cluster backplane (Redis) is connected, 0 while it is down; absent without one. */
  readonly backplaneUp = backplaneGauge(
    this.registry,
    'circumplex_backplane_up',
    'Backplane (Redis) link: 1 up, 0 down',
    () => this.backplaneSource?.(),
    (b) => (b.up ? 1 : 0),
  );
  /** Messages of this node's streams not yet written to the backplane. */
  readonly backplanePendingWrites = backplaneGauge(
    this.registry,
    'circumplex_backplane_pending_writes',
    "Messages of this node's streams waiting to be written to the backplane",
    () => this.backplaneSource?.(),
    (b) => b.pendingWrites,
  );
  /** How late this node reads other nodes' messages from the backplane (largest over the last minute). */
  readonly backplaneFeedLag = backplaneGauge(
    this.registry,
    'circumplex_backplane_feed_lag_seconds',
    "Largest age of other nodes' messages when this node read them from the backplane, over the last minute",
    () => this.backplaneSource?.(),
    (b) => b.feedLagMs / 1000,
  );
  /** Times the backplane link was lost. */
  readonly backplaneDisconnects = mirroredCounter(
    this.registry,
    'circumplex_backplane_disconnects_total',
    'Times the backplane link was lost',
    () => this.backplaneSource?.()?.disconnects,
  );
  /** Messages evicted from the ring before the backplane got them (long outages). */
  readonly backplaneDroppedWrites = mirroredCounter(
    this.registry,
    'circumplex_backplane_dropped_writes_total',
    'Messages never written to the backplane (evicted while it was down)',
    () => this.backplaneSource?.()?.droppedWrites,
  );

  /** Reads the hub's backplane state at every scrape (nothing is exported without a backplane). */
  watchBackplane(source: () => BackplaneStatus | undefined): void {
    this.backplaneSource = source;
  }

  private textSource: (() => TextPathCounters | undefined) | undefined;
  private asrSource: (() => AsrCounters | undefined) | undefined;
  /** ASR audio (samples) dropped because the recogniser fell behind (live streams; offline never drops). */
  readonly asrDroppedSamples = mirroredCounter(
    this.registry,
    'circumplex_asr_dropped_samples_total',
    'Audio samples dropped before the speech recogniser (it fell behind)',
    () => this.textSource?.()?.droppedSamples,
  );
  /** Text windows replaced by a newer one before the text model saw them. */
  readonly textWindowsCoalesced = mirroredCounter(
    this.registry,
    'circumplex_text_windows_coalesced_total',
    'Text windows coalesced (replaced by a newer one) before the text model',
    () => this.textSource?.()?.coalescedWindows,
  );
  /** Failed text model calls (the window was skipped). */
  readonly textModelErrors = mirroredCounter(
    this.registry,
    'circumplex_text_model_errors_total',
    'Text model calls that failed (window skipped)',
    () => this.textSource?.()?.textModelErrors,
  );
  /** ASR host processes started (1 + restarts). */
  readonly asrHostsStarted = mirroredCounter(
    this.registry,
    'circumplex_asr_hosts_started_total',
    'Vosk ASR host processes started',
    () => this.asrSource?.()?.hostsStarted,
  );
  /** ASR hosts that died unasked (crash or watchdog kill). */
  readonly asrHostDeaths = mirroredCounter(
    this.registry,
    'circumplex_asr_host_deaths_total',
    'Vosk ASR host processes that died (crash or watchdog)',
    () => this.asrSource?.()?.hostDeaths,
  );
  /** ASR hosts killed by the watchdog (libvosk hung). */
  readonly asrWatchdogKills = mirroredCounter(
    this.registry,
    'circumplex_asr_watchdog_kills_total',
    'Vosk ASR hosts killed by the request watchdog',
    () => this.asrSource?.()?.watchdogKills,
  );
  /** Recognisers open in the ASR host (one per stream with transcripts). */
  readonly asrOpenRecognizers = new Gauge({
    name: 'circumplex_asr_open_recognizers',
    help: 'Vosk recognisers currently open',
    registers: [this.registry],
    collect: () => {
      const v = this.asrSource?.()?.openRecognizers;
      this.asrOpenRecognizers.set(v ?? 0);
    },
  });

  /**
   * 1 while the ASR host runs with its model loaded, 0 while it is dead or restarting (streams then
   * go on speech-only; `/healthz` says `degraded`). Labelled `recogniser="vosk"` and absent without
   * speech recognition, so a server without ASR does not read as "down".
   */
  readonly asrHostUp = scrapedGauge(
    this.registry,
    'circumplex_asr_host_up',
    'Speech recognition host: 1 up, 0 dead or restarting (absent without ASR)',
    'recogniser',
    () => this.asrSource?.(),
    (a) => ['vosk', a.hostUp ? 1 : 0],
  );

  /**
   * Reads the text path's and the ASR factory's counters at every scrape (e.g. `engine.textStats`,
   * `engine.asrStats`). Without a source the metrics read 0. `/healthz` reads the ASR source too
   * (its `asr` object and `degraded` while the host is down).
   */
  watchTextPath(text: () => TextPathCounters | undefined, asr: () => AsrCounters | undefined): void {
    this.textSource = text;
    this.asrSource = asr;
  }

  /** The ASR factory's counters now, or undefined when the server runs without ASR (no source, or it has none). */
  asrCounters(): AsrCounters | undefined {
    return this.asrSource?.();
  }

  private vadSource: (() => VadCounters | undefined) | undefined;
  /** Frames the voice activity detector ran through its model, or skipped below the energy gate. */
  readonly vadFrames = new Counter({
    name: 'circumplex_vad_frames_total',
    help: 'Voice activity frames, by result: model (run through Silero), gated (below the energy gate), rejected (queue full)',
    labelNames: ['result'],
    registers: [this.registry],
    collect: () => {
      const v = this.vadSource?.();
      this.vadFrames.reset();
      if (!v) return;
      this.vadFrames.inc({ result: 'model' }, v.modelFrames);
      this.vadFrames.inc({ result: 'gated' }, v.gatedFrames);
      this.vadFrames.inc({ result: 'rejected' }, v.rejectedFrames);
    },
  });
  /** Windows the VAD stage dropped before the speech model, by reason (overflow: the stream's VAD queue was full; error: the detector refused or failed them). */
  readonly vadWindowsDropped = new Counter({
    name: 'circumplex_vad_windows_dropped_total',
    help: 'Windows dropped by the voice activity stage, by reason (overflow | error)',
    labelNames: ['reason'],
    registers: [this.registry],
    collect: () => {
      const v = this.vadSource?.();
      this.vadWindowsDropped.reset();
      if (!v) return;
      this.vadWindowsDropped.inc({ reason: 'overflow' }, v.droppedWindowsOverflow);
      this.vadWindowsDropped.inc({ reason: 'error' }, v.droppedWindowsError);
    },
  });
  /** Batched VAD requests sent to the worker (mean streams per batch = circumplex_vad_batched_requests_total / this). */
  readonly vadBatches = mirroredCounter(
    this.registry,
    'circumplex_vad_batches_total',
    'Batched voice activity requests (all streams together) sent to the VAD worker',
    () => this.vadSource?.()?.batches,
  );
  /** Stream requests carried by those batches. */
  readonly vadBatchedRequests = mirroredCounter(
    this.registry,
    'circumplex_vad_batched_requests_total',
    'Stream requests carried by the batched VAD requests',
    () => this.vadSource?.()?.batchedRequests,
  );

  /** Reads the voice activity detector's counters at every scrape (e.g. `engine.vad.stats`). */
  watchVad(source: () => VadCounters | undefined): void {
    this.vadSource = source;
  }

  constructor() {
    processMetrics();
  }

  /** What GET /metrics serves: this server's metrics and the process's, in the Prometheus text format. */
  render(): Promise<string> {
    return Registry.merge([this.registry, processMetrics()]).metrics();
  }

  /** The content type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
