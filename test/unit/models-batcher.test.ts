import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../models/batcher.js';
import { AffectError } from '../../core/errors.js';

/** A runner that records batch sizes and answers x → 2x after `delayMs`. */
function doubler(delayMs = 5) {
  const sizes: number[] = [];
  const run = async (items: readonly number[]): Promise<number[]> => {
    sizes.push(items.length);
    await new Promise((r) => setTimeout(r, delayMs));
    return items.map((x) => 2 * x);
  };
  return { sizes, run };
}

describe('DynamicBatcher', () => {
  it('gathers concurrent submissions into one batch and splits results back in order', async () => {
    const d = doubler();
    const b = new DynamicBatcher(d.run, { maxBatch: 8, maxWaitMs: 20 });
    const out = await Promise.all([1, 2, 3, 4, 5].map((x) => b.submit(x)));
    expect(out).toEqual([2, 4, 6, 8, 10]);
    expect(d.sizes).toEqual([5]);
    expect(b.stats.maxBatchSeen).toBe(5);
  });

  it('dispatches at maxBatch without waiting and keeps one batch in flight', async () => {
    const d = doubler(20);
    const b = new DynamicBatcher(d.run, { maxBatch: 4, maxWaitMs: 10_000 });
    const t0 = performance.now();
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
    expect(out).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    // 4 now, then the 4 queued behind it as soon as it finishes, then the 2 left over
    expect(d.sizes).toEqual([4, 4, 2]);
    expect(performance.now() - t0).toBeLessThan(5_000); // never waited for the 10 s maxWaitMs
  });

  it('sends a partial batch after maxWaitMs', async () => {
    const d = doubler();
    const b = new DynamicBatcher(d.run, { maxBatch: 64, maxWaitMs: 15 });
    const p = b.submit(7);
    await new Promise((r) => setTimeout(r, 5));
    expect(d.sizes).toEqual([]); // still waiting for company
    expect(await p).toBe(14);
    expect(d.sizes).toEqual([1]);
  });

  it('rejects with a recoverable AFFECT_ERR_INFERENCE when the queue is full, and counts it', async () => {
    const d = doubler(30);
    const b = new DynamicBatcher(d.run, { maxBatch: 2, maxWaitMs: 0, maxQueue: 2 });
    const accepted = [b.submit(1), b.submit(2), b.submit(3)]; // first goes in flight at once
    await Promise.resolve();
    const settled = await Promise.allSettled([...accepted, b.submit(4), b.submit(5)]);
    const rejected = settled.filter((s) => s.status === 'rejected');
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    const err = (rejected[0] as PromiseRejectedResult).reason as AffectError;
    expect(err).toBeInstanceOf(AffectError);
    expect(err.code).toBe('AFFECT_ERR_INFERENCE');
    expect(err.recoverable).toBe(true);
    expect(b.stats.rejected).toBe(rejected.length);
  });

  it('rejects every item of a failed batch, then goes on', async () => {
    let fail = true;
    const b = new DynamicBatcher(
      async (items: readonly number[]) => {
        if (fail) throw new Error('boom');
        return items.map((x) => x + 1);
      },
      { maxBatch: 4, maxWaitMs: 1 },
    );
    const bad = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(bad.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(((bad[0] as PromiseRejectedResult).reason as AffectError).code).toBe('AFFECT_ERR_INFERENCE');
    fail = false;
    expect(await b.submit(1)).toBe(2);
  });

  it('treats undefined options as unset: defaults apply (maxQueue follows maxBatch)', () => {
    const b = new DynamicBatcher<number, number>(async (xs) => xs, { maxBatch: 8, maxWaitMs: undefined, maxQueue: undefined, stage: 's' });
    expect(b.options).toEqual({ maxBatch: 8, maxWaitMs: 10, maxQueue: 32, stage: 's', maxInFlight: 1 });
  });

  it('validates its options with RangeErrors naming the option', () => {
    const run = async (x: readonly number[]) => x;
    expect(() => new DynamicBatcher(run, { maxBatch: 0 })).toThrow(/maxBatch/);
    expect(() => new DynamicBatcher(run, { maxWaitMs: -1 })).toThrow(/maxWaitMs/);
    expect(() => new DynamicBatcher(run, { maxQueue: 0 })).toThrow(/maxQueue/);
    expect(() => new DynamicBatcher(run, { maxInFlight: 0 })).toThrow(/maxInFlight/);
    expect(() => new DynamicBatcher(run, { maxInFlight: 1.5 })).toThrow(/maxInFlight/);
  });

  it('with maxInFlight 2 sends the next batch while the first still runs, never more than 2 at once', async () => {
    let running = 0;
    let most = 0;
    const starts: number[] = [];
    const run = async (items: readonly number[]): Promise<number[]> => {
      running++;
      most = Math.max(most, running);
      starts.push(performance.now());
      await new Promise((r) => setTimeout(r, 60));
      running--;
      return items.map((x) => x + 1);
    };
    const b = new DynamicBatcher(run, { maxBatch: 4, maxWaitMs: 10_000, maxInFlight: 2 });
    const out = await Promise.all(Array.from({ length: 12 }, (_, i) => b.submit(i)));
    expect(out).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(b.stats.batches).toBe(3);
    expect(most).toBe(2);
    // the second batch went out at once, not after the first's 60 ms; the third waited for a slot
    expect(starts[1]! - starts[0]!).toBeLessThan(30);
    expect(starts[2]! - starts[0]!).toBeGreaterThanOrEqual(50);
  });

  it('close() rejects waiting items and refuses new ones', async () => {
    const b = new DynamicBatcher(async (x: readonly number[]) => x, { maxBatch: 8, maxWaitMs: 1000 });
    const p = b.submit(1);
    b.close();
    await expect(p).rejects.toMatchObject({ code: 'AFFECT_ERR_INFERENCE' });
    await expect(b.submit(2)).rejects.toMatchObject({ code: 'AFFECT_ERR_INFERENCE', recoverable: false });
  });
});
