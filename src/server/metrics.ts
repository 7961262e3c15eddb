/**
 * Prometheus metrics for one server (its own prom-client Registry, so several servers in one
 * process — tests — do not collide). Served at GET /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The server's metrics. Names are documented in docs/server.md. */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Audio frames received on /v1/ingest, by result (accepted | rejected). */
  readonly ingestFrames = new Counter({ name: 'circumplex_ingest_frames_total', help: 'Ingest frames by result', labelNames: ['result'], registers: [this.registry] });
  /** Ingest frames rejected, by reason (empty, misaligned, bad-json, ...). */
  readonly ingestRejected = new Counter({ name: 'circumplex_ingest_rejected_total', help: 'Ingest frames rejected, by reason', labelNames: ['reason'], registers: [this.registry] });
  /** Ingest samples repaired: non_finite (replaced by 0) or clipped. */
  readonly ingestSamplesRepaired = new Counter({ name: 'circumplex_ingest_samples_repaired_total', help: 'Ingest samples that were NaN/Inf or clipped', labelNames: ['kind'], registers: [this.registry] });
  /** Messages published by the hub (frames in), by type. */
  readonly framesPublished = new Counter({ name: 'circumplex_frames_published_total', help: 'Stream messages published, by type', labelNames: ['type'], registers: [this.registry] });
  /** Messages sent to subscribers (frames out), by type. */
  readonly framesSent = new Counter({ name: 'circumplex_frames_sent_total', help: 'Messages sent to subscribers, by type', labelNames: ['type'], registers: [this.registry] });
  /** Frames not delivered, by reason: coalesced (slow subscriber), slow_consumer (closed), invalid (NaN etc.), pipeline (model stage drops). */
  readonly framesDropped = new Counter({ name: 'circumplex_frames_dropped_total', help: 'Frames dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  /** Open connections, by endpoint (stream | ingest). */
  readonly connections = new Gauge({ name: 'circumplex_connections', help: 'Open WebSocket connections', labelNames: ['endpoint'], registers: [this.registry] });
  /** Closed connections by endpoint and reason. */
  readonly closes = new Counter({ name: 'circumplex_connections_closed_total', help: 'Closed connections, by endpoint and reason', labelNames: ['endpoint', 'reason'], registers: [this.registry] });
  /** Refused upgrades/requests, by reason (missing-token, bad-token, scope, origin, path, shutting-down). */
  readonly refused = new Counter({ name: 'circumplex_refused_total', help: 'Refused upgrades, by reason', labelNames: ['reason'], registers: [this.registry] });
  /** Wall time from the arrival of the audio that ends a window to the publication of its frame. */
  readonly inferenceLatency = new Histogram({
    name: 'circumplex_inference_latency_seconds',
    help: 'Audio arrival to affect frame publication',
    // No stream label: call ids are unbounded, and a label per call would grow the registry forever.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** 1 for the execution provider each model runs on. */
  readonly modelProvider = new Gauge({ name: 'circumplex_model_provider', help: 'Execution provider per model (value 1)', labelNames: ['model', 'provider'], registers: [this.registry] });
  /** Recorder (microphone) restarts. */
  readonly recorderRestarts = new Counter({ name: 'circumplex_recorder_restarts_total', help: 'Audio recorder restarts', registers: [this.registry] });

  constructor() {
    // Includes nodejs_eventloop_lag_seconds and the event-loop lag percentiles.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }
}
