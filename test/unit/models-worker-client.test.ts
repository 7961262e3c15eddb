import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { AffectError } from '../../core/errors.js';
import { firstMessage, providerLoadError, WorkerClient } from '../../models/worker/worker-client.js';

type Reply = { type: 'ready' } | { type: 'echo'; id: number; value: number } | { type: 'run-error'; id: number; message: string } | { type: 'closed' };

/** A real worker thread: echoes `value * 2`, answers `fail` with a run-error, exits on `die`, releases on `close`. */
const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', (m) => {
  if (m.type === 'echo') setTimeout(() => parentPort.postMessage({ type: 'echo', id: m.id, value: m.value * 2 }), m.delayMs ?? 0);
  else if (m.type === 'fail') parentPort.postMessage({ type: 'run-error', id: m.id, message: 'bad input ' + m.id });
  else if (m.type === 'die') process.exit(3);
  else if (m.type === 'close') { parentPort.postMessage({ type: 'closed' }); process.exit(0); }
});
`;

class EchoClient extends WorkerClient<Reply> {
  constructor(worker: Worker) {
    super(worker, 'echo worker', 'echo-stage');
  }
  async echo(value: number, delayMs = 0): Promise<number> {
    const r = await this.request((id) => ({ type: 'echo', id, value, delayMs }));
    if (r.type !== 'echo') throw new Error(`unexpected ${r.type}`);
    return r.value;
  }
  runError(): Promise<Reply> {
    return this.request((id) => ({ type: 'fail', id }));
  }
  die(): void {
    this.worker.postMessage({ type: 'die' });
  }
}

async function start(): Promise<EchoClient> {
  const w = new Worker(WORKER, { eval: true });
  const first = await firstMessage<Reply>(w, (err) => new AffectError('AFFECT_ERR_MODEL_LOAD', String(err)));
  expect(first.type).toBe('ready');
  return new EchoClient(w);
}

describe('WorkerClient (request/reply over a real worker thread)', () => {
  it('matches replies to requests by id, also out of order, and rejects a run-error reply as a recoverable inference error', async () => {
    const c = await start();
    try {
      const slow = c.echo(1, 60);
      const fast = c.echo(2, 0);
      expect(await fast).toBe(4);
      expect(await slow).toBe(2);
      const err = await c.runError().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AffectError);
      expect((err as AffectError).code).toBe('AFFECT_ERR_INFERENCE');
      expect((err as AffectError).message).toMatch(/inference failed: bad input \d+/);
      expect((err as AffectError).recoverable).toBe(true);
      expect(await c.echo(5)).toBe(10); // the worker lives on
    } finally {
      await c.close();
    }
  });

  it('rejects every pending request once when the worker dies, and every later one, as not recoverable', async () => {
    const c = await start();
    const pending = [c.echo(1, 2000), c.echo(2, 2000)];
    c.die();
    const errs = await Promise.all(
      pending.map((p) =>
        p.then(
          () => undefined,
          (e: unknown) => e as AffectError,
        ),
      ),
    );
    for (const e of errs) {
      expect(e).toBeInstanceOf(AffectError);
      if (!e) continue;
      expect(e.message).toContain('echo worker exited with code 3');
      expect(e.recoverable).toBe(false);
      expect(e.hint).toContain('restart circumplex');
    }
    const later = await c.echo(3).then(
      () => undefined,
      (e: unknown) => e as AffectError,
    );
    expect(later?.recoverable).toBe(false);
    await c.close(); // a dead worker closes at once
  });

  it('after close, requests reject with "model is closed"; close is idempotent', async () => {
    const c = await start();
    await Promise.all([c.close(), c.close()]);
    const e = await c.echo(1).then(
      () => undefined,
      (err: unknown) => err as AffectError,
    );
    expect(e?.message).toContain('model is closed');
  });

  it('firstMessage terminates a worker that fails before its first message and throws the start error', async () => {
    const w = new Worker('throw new Error("boom at start")', { eval: true });
    const err = await firstMessage<Reply>(w, (e) => new AffectError('AFFECT_ERR_MODEL_LOAD', `could not start: ${String(e)}`)).then(
      () => undefined,
      (e: unknown) => e as AffectError,
    );
    expect(err?.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(err?.message).toContain('boom at start');
  });

  it('providerLoadError: a device error only when every failed provider is an accelerator', () => {
    expect(providerLoadError('m.onnx', [{ provider: 'webgpu', error: 'no adapter' }], 's', 'fix the file').code).toBe('AFFECT_ERR_DEVICE_UNAVAILABLE');
    const e = providerLoadError('m.onnx', [{ provider: 'cpu', error: 'protobuf parsing failed' }], 's', 'fix the file');
    expect(e.code).toBe('AFFECT_ERR_MODEL_LOAD');
    expect(e.message).toBe('could not create an ONNX Runtime session for m.onnx (cpu: protobuf parsing failed)');
    expect(e.hint).toBe('fix the file');
  });
});
