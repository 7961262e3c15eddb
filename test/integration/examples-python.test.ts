/**
 * examples/python/subscribe.py (Debian's /usr/bin/python3 with python3-websockets) against a real
 * `circumplex serve --input <wav> --realtime` process, through a loopback TCP proxy that cuts the
 * connection mid-stream: the script must reconnect, resume by seq and print every frame exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerMessageSchema } from '../../core/protocol.js';
import { startFlakyProxy, type FlakyProxy } from '../helpers/clients-protocol-server.js';
import { waitForListening } from '../helpers/listening.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(REPO, 'examples', 'python', 'subscribe.py');

let serve: ChildProcess | undefined;
let py: ChildProcess | undefined;
let proxy: FlakyProxy | undefined;

afterAll(async () => {
  py?.kill('SIGKILL');
  await proxy?.close();
  if (serve && serve.exitCode === null) {
    serve.kill('SIGTERM');
    await new Promise((r) => serve?.once('exit', r));
  }
});

/** Starts `circumplex serve` on a free port and resolves to its port. */
async function startServe(): Promise<number> {
  serve = spawn(process.execPath, ['bin/circumplex.mjs', 'serve', '--input', 'test/fixtures/audio/speech.wav', '--realtime', '--port', '0'], {
    cwd: REPO,
    env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn', CIRCUMPLEX_DEVICE: 'cpu' },
  });
  return (await waitForListening(serve, 'serve')).port;
}

describe('examples/python/subscribe.py', () => {
  it('subscribes to a live serve, survives a cut connection by resuming from its last seq, prints each frame once', async () => {
    expect(existsSync(PYTHON), 'Debian python3 (scripts/setup-system.sh installs it with python3-websockets)').toBe(true);
    const port = await startServe();
    proxy = await startFlakyProxy(port);
    const COUNT = 24;
    py = spawn(PYTHON, [SCRIPT, '--url', `http://127.0.0.1:${proxy.port}`, '--json', '--from-start', '--count', String(COUNT), '--max-backoff', '0.5'], {
      cwd: REPO,
    });
    const lines: string[] = [];
    let stderr = '';
    let cutAt = -1;
    py.stderr?.on('data', (d: Buffer) => (stderr += String(d)));
    let buf = '';
    py.stdout?.on('data', (d: Buffer) => {
      buf += String(d);
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) {
        if (l.trim() === '') continue;
        lines.push(l);
        // A network drop after 8 frames, while the server keeps publishing in real time.
        if (lines.length === 8 && cutAt < 0) {
          cutAt = lines.length;
          proxy?.cut();
        }
      }
    });
    const code = await new Promise<number | null>((resolve) => py?.once('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(cutAt).toBe(8);
    expect(lines).toHaveLength(COUNT);
    const msgs = lines.map((l) => ServerMessageSchema.parse(JSON.parse(l)));
    const seqs = msgs.map((m) => ('seq' in m ? m.seq : -1));
    // --from-start on a fresh stream: seqs 0, 1, 2, … with no gap and no repeat across the cut.
    expect(seqs).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(msgs.filter((m) => m.type === 'affect').length).toBeGreaterThan(COUNT / 2);
    const connects = stderr.split('\n').filter((l) => l.includes('connected to'));
    expect(connects).toHaveLength(2);
    expect(connects[0]).toContain('resuming {"file": -1}');
    // The second connection resumed from the last seq printed before the cut (or a later one, if
    // frames already in flight were read before the socket closed).
    const resumedFrom = Number(/resuming \{"file": (\d+)\}/.exec(connects[1] ?? '')?.[1]);
    expect(resumedFrom).toBeGreaterThanOrEqual(7);
    expect(stderr).toMatch(/connection lost/);
    expect(stderr).toMatch(new RegExp(`${COUNT} frames, \\d+ duplicates dropped, 0 seqs missing, 2 connection\\(s\\)`));
    expect(proxy.accepted).toBe(2);
  });
});
