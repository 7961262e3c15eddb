/**
 * Cross-stream dynamic batching: `submit(item)` calls from every live stream are gathered into one
 * batch per model, dispatched when `maxBatch` items are waiting or the oldest has waited
 * `maxWaitMs`, with at most `maxInFlight` batches in flight (default one); each caller gets its own
 * result back.
 *
 * The queue is bounded (`maxQueue`): rxjs has no backpressure, so when the model cannot keep up a
 * new item is rejected at once with a recoverable AFFECT_ERR_INFERENCE, which the pipeline counts
 * as a dropped window. Nothing waits without a bound.
 */
import { AffectError } from '../core/errors.js';

/** Batching options. */
export interface BatcherOptions {
  /** Largest batch sent to the model. Default 16. */
  maxBatch: number;
  /** Longest an item waits for others before a partial batch goes (ms). Default 10. */
  maxWaitMs: number;
  /** Most items waiting (not counting the batch in flight); more are rejected. Default 4 × maxBatch. */
  maxQueue: number;
  /** Stage name for errors. Default `model`. */
  stage: string;
  /**
   * Batches in flight at once. Default 1. With 2 the next batch is already at the model while the
   * caller's thread handles the previous one's results (or is busy with other work): the model does
   * not sit idle waiting for a busy event loop to collect a result before it gets more work.
   */
  maxInFlight: number;
}

/** Defaults for {@link BatcherOptions}. */
export const DEFAULT_BATCHER: BatcherOptions = { maxBatch: 16, maxWaitMs: 10, maxQueue: 64, stage: 'model', maxInFlight: 1 };

/** Counters a batcher keeps (for metrics and the benchmark). */
export interface BatcherStats {
  /** Items accepted. */
  submitted: number;
  /** Items rejected because the queue was full. */
  rejected: number;
  /** Batches run. */
  batches: number;
  /** Items run in those batches. */
  batchedItems: number;
  /** Largest batch run. */
  maxBatchSeen: number;
}

interface Waiting<I, O> {
  readonly item: I;
  resolve(out: O): void;
  reject(err: unknown): void;
}

/** Runs a whole batch: one output per input, in order. */
export type BatchRunner<I, O> = (items: readonly I[]) => Promise<readonly O[]>;

/** The dynamic batcher. */
export class DynamicBatcher<I, O> {
  private readonly opts: BatcherOptions;
  private queue: Array<Waiting<I, O>> = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly stats: BatcherStats = { submitted: 0, rejected: 0, batches: 0, batchedItems: 0, maxBatchSeen: 0 };

  constructor(
    private readonly run: BatchRunner<I, O>,
    opts: { readonly [K in keyof BatcherOptions]?: BatcherOptions[K] | undefined } = {},
  ) {
    // Unset (undefined) fields take their defaults, so callers can pass load options through as is.
    const set = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<BatcherOptions>;
    const maxBatch = set.maxBatch ?? DEFAULT_BATCHER.maxBatch;
    this.opts = { ...DEFAULT_BATCHER, maxQueue: 4 * maxBatch, ...set };
    const o = this.opts;
    if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1) throw new RangeError(`DynamicBatcher: maxBatch must be an integer >= 1, got ${o.maxBatch}`);
    if (!Number.isFinite(o.maxWaitMs) || o.maxWaitMs < 0) throw new RangeError(`DynamicBatcher: maxWaitMs must be >= 0, got ${o.maxWaitMs}`);
    if (!Number.isInteger(o.maxQueue) || o.maxQueue < 1) throw new RangeError(`DynamicBatcher: maxQueue must be an integer >= 1, got ${o.maxQueue}`);
    if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1)
      throw new RangeError(`DynamicBatcher: maxInFlight must be an integer >= 1, got ${o.maxInFlight}`);
  }

  /** The effective options. */
  get options(): Readonly<BatcherOptions> {
    return this.opts;
  }

  /** Items waiting (not in flight). */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues one item; resolves with its output. Rejects at once (recoverable) when the queue is full. */
  submit(item: I): Promise<O> {
    if (this.closed) {
      return Promise.reject(new AffectError('AFFECT_ERR_INFERENCE', 'model is closed', { recoverable: false, stage: this.opts.stage }));
    }
    if (this.queue.length >= this.opts.maxQueue) {
      this.stats.rejected += 1;
      return Promise.reject(
        new AffectError('AFFECT_ERR_INFERENCE', `${this.opts.stage}: queue full (${this.opts.maxQueue} waiting), window dropped`, {
          recoverable: true,
          stage: this.opts.stage,
          hint: 'the model cannot keep up with the live streams: use a faster device (--device), fewer streams, or a larger --max-batch',
        }),
      );
    }
    this.stats.submitted += 1;
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Rejects everything waiting and refuses new items. The batch in flight finishes. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.queue;
    this.queue = [];
    for (const w of waiting)
      w.reject(new AffectError('AFFECT_ERR_INFERENCE', 'model closed before this window ran', { recoverable: false, stage: this.opts.stage }));
  }

  private schedule(): void {
    if (this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    if (this.queue.length >= this.opts.maxBatch || this.opts.maxWaitMs === 0) {
      this.dispatch();
      return;
    }
    // the first item of a new batch starts the wait clock
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.dispatch();
    }, this.opts.maxWaitMs);
  }

  private dispatch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.inFlight += 1;
    this.stats.batches += 1;
    this.stats.batchedItems += batch.length;
    this.stats.maxBatchSeen = Math.max(this.stats.maxBatchSeen, batch.length);
    void this.run(batch.map((w) => w.item))
      .then(
        (outs) => {
          if (outs.length !== batch.length) throw new Error(`batch runner returned ${outs.length} outputs for ${batch.length} inputs`);
          batch.forEach((w, i) => w.resolve(outs[i] as O));
        },
        (err: unknown) => {
          throw err;
        },
      )
      .catch((err: unknown) => {
        const e =
          err instanceof AffectError
            ? err
            : new AffectError('AFFECT_ERR_INFERENCE', `${this.opts.stage}: ${err instanceof Error ? err.message : String(err)}`, {
                recoverable: true,
                stage: this.opts.stage,
                cause: err,
              });
        for (const w of batch) w.reject(e);
      })
      .finally(() => {
        this.inFlight -= 1;
        // items that arrived while the batch ran have waited at least that long: send them now
        if (this.queue.length > 0 && !this.closed) this.dispatch();
      });
  }
}
