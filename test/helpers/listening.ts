/**
 * Waiting for a spawned `circumplex serve` / `replay` to listen: they print
 * `listening on ws://127.0.0.1:PORT/…` (wss:// with TLS) on stderr once the port is bound.
 */
import type { ChildProcess } from 'node:child_process';

/** A spawned server that is listening: its port, and everything it has written on stderr so far (it keeps collecting). */
export interface ListeningChild {
  port: number;
  stderr: () => string;
}

/**
 * Collects the child's stderr and resolves once its listening line names the port; rejects, quoting
 * stderr, when the child exits first or does not listen within `timeoutMs`. `what` names it in errors.
 */
export function waitForListening(child: ChildProcess, what: string, timeoutMs = 60_000): Promise<ListeningChild> {
  let err = '';
  const stderr = () => err;
  return new Promise<ListeningChild>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on wss?:\/\/127\.0\.0\.1:(\d+)\//.exec(err);
      if (m) resolve({ port: Number(m[1]), stderr });
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening:\n${err}`)));
    setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs / 1000} s:\n${err}`)), timeoutMs).unref();
  });
}
