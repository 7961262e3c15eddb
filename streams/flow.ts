/**
 * Credit-based flow control for offline inputs. rxjs has no backpressure, so a file read "as fast as
 * possible" would flood a bounded model stage and everything past the bound would be dropped. With a
 * FlowControl the source waits (`ready()`) while the model stage has `highWater` windows pending, so
 * an offline run is lossless and its queues stay bounded. Live sources never wait: they rely on the
 * drop/coalesce policy instead.
 */

/**
 * Most audio (ms) a source that honours a FlowControl emits between two waits on it. The model
 * stage's queue is sized from it (highWater + the windows one such chunk can complete), so an
 * offline run stays lossless even with a short hop; a source must split bigger reads.
 */
export const MAX_FLOW_CHUNK_MS = 100;

/** Options for {@link FlowControl}. */
export interface FlowControlOptions {
  /** Windows that may be pending in the model stage before the source pauses. Default 4. */
  highWater: number;
}

export const DEFAULT_FLOW_CONTROL: FlowControlOptions = { highWater: 4 };

/** Counts windows pending in a stage and lets a source wait for room. */
export class FlowControl {
  readonly highWater: number;
  private pendingCount = 0;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(opts: Partial<FlowControlOptions> = {}) {
    const { highWater } = { ...DEFAULT_FLOW_CONTROL, ...opts };
    if (!Number.isInteger(highWater) || highWater < 1) throw new RangeError(`FlowControl: highWater must be an integer >= 1, got ${highWater}`);
    this.highWater = highWater;
  }

  /** Windows pending now. */
  get pending(): number {
    return this.pendingCount;
  }

  /** True when the source may send more audio. */
  hasRoom(): boolean {
    return this.closed || this.pendingCount < this.highWater;
  }

  /** A stage took a window. */
  acquire(): void {
    this.pendingCount++;
  }

  /** A stage finished (or dropped) a window. */
  release(): void {
    if (this.pendingCount > 0) this.pendingCount--;
    if (this.hasRoom()) this.wake();
  }

  /** Resolves when there is room. */
  ready(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Releases every waiter for good (the consumer went away). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
