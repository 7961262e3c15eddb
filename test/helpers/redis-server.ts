/**
 * A real `redis-server` (Debian's, >= 7) for backplane tests: started on a free loopback port with
 * no persistence (`--save '' --appendonly no`), stopped by the test, and killed when the test
 * process exits, whatever happens. A missing redis-server fails the test with a clear message
 * (scripts/setup-system.sh installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** One redis-server process (restartable on the same port). */
export class TestRedis {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly port: number,
    readonly password: string | undefined,
    /** PEM files: serve TLS only (rediss://) on `port`. */
    readonly tls: { certFile: string; keyFile: string } | undefined,
  ) {}

  /** Starts redis-server on a free port and waits until it answers. */
  static async start(opts: { password?: string; tls?: { certFile: string; keyFile: string } } = {}): Promise<TestRedis> {
    const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (which.error || which.status !== 0) {
      throw new Error('redis-server is not installed: run `bash scripts/setup-system.sh` (Debian package redis-server >= 7)');
    }
    const r = new TestRedis(await freePort(), opts.password, opts.tls);
    await r.restart();
    return r;
  }

  /** `redis://[:password@]127.0.0.1:port/0`. */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://${this.password ? `:${encodeURIComponent(this.password)}@` : ''}127.0.0.1:${this.port}/0`;
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (again) on the same port, with an empty dataset (no persistence). */
  async restart(): Promise<void> {
    if (this.alive) return;
    const args = this.tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.certFile, '--tls-key-file', this.tls.keyFile, '--tls-auth-clients', 'no']
      : ['--port', String(this.port)];
    args.push('--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no');
    if (this.password) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000)));
    const deadline = Date.now() + 10_000;
    while (!(await (this.tls ? listening(this.port) : answers(this.port)))) {
      if (!this.alive) throw new Error(`redis-server exited at start:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${this.port} in 10 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Kills the process (SIGKILL: an abrupt loss, nothing flushed) and waits for its exit. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || !this.alive) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  /** Stops the process. */
  stop(): Promise<void> {
    return this.kill();
  }
}

/** Does something answer PING (or NOAUTH) on that port? */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Does something accept TCP connections on that port (TLS servers: no plain PING)? */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
