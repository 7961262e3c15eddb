/**
 * The message loop shared by the model workers (ONNX and transformers.js): runs requests as they
 * come, and on `close` releases the model only once every started run has settled, then answers
 * `closed` and closes the port. A `close` can arrive while a run is pending (ORT defers run() to a
 * setImmediate): releasing under it, or the host's terminate() landing mid-run, aborted the
 * process with 'terminate called after throwing an instance of Napi::Error' (seen when
 * `run | head` closed early). Runs that arrive after `close` are refused.
 */
import type { MessagePort } from 'node:worker_threads';

/** What a worker plugs into {@link serveRunsUntilClose}. */
export interface RunLoop<M extends { readonly type: string }> {
  /** Handles one non-close message; posts its own result or error and never rejects. */
  run(msg: M): Promise<void>;
  /** Answers a message that arrived after `close` (e.g. a run-error 'model is closing'). */
  refuse(msg: M): void;
  /** Releases the session or model; called once, after every started run has settled. */
  release(): unknown;
}

/** Serves `port` until a `{ type: 'close' }` message, as described above. */
export function serveRunsUntilClose<M extends { readonly type: string }>(port: MessagePort, loop: RunLoop<M>): void {
  const inflight = new Set<Promise<void>>();
  let closing = false;
  port.on('message', (msg: M) => {
    if (msg.type === 'close') {
      closing = true;
      void Promise.allSettled([...inflight])
        .then(() => loop.release())
        .finally(() => {
          port.postMessage({ type: 'closed' });
          port.close();
        });
      return;
    }
    if (closing) {
      loop.refuse(msg);
      return;
    }
    const run = loop.run(msg);
    inflight.add(run);
    void run.finally(() => inflight.delete(run));
  });
}
