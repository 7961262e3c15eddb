/**
 * The package as a user gets it (issue 15 item 1): `npm pack` (its prepack runs `npm run build`) →
 * the tarball installed with `npm ci --offline` into an empty project → `npx circumplex run --input
 * <wav> --json` → a TypeScript consumer, compiled by tsc with strict settings, imports `circumplex`,
 * `circumplex/client` and `circumplex/protocol` with their types and runs the engine in-process.
 *
 * Offline on a fresh clone: the empty project's lockfile is the repository's package-lock.json with
 * the dev-only entries dropped and the tarball as its one dependency, so every package comes from
 * the npm cache that `npm ci` filled, at the versions the repository pins. Slow part: the install
 * (about 20-90 s on 2 busy cores; see the report for measured times).
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AffectMessage, ServerMessageSchema, type AffectFrameMessage } from '../../core/protocol.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const WAV = path.join(REPO, 'test', 'fixtures', 'audio', 'speech.wav');
const NPM_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  ONNXRUNTIME_NODE_INSTALL: 'skip',
  ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};
const RUN_ENV: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_LOG_LEVEL: 'warn' };
delete RUN_ENV.CIRCUMPLEX_VOSK_MODEL;

let dir: string;
let proj: string;
let tarball: string;
const timings: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[name] = Math.round(performance.now() - t0);
  }
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the test worker (long sync spawns starve vitest's RPC). */
function spawnAsync(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ status, stdout, stderr: err && status === null ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = NPM_ENV, timeoutMs = 300_000): Promise<string> {
  const r = await spawnAsync(cmd, args, cwd, env, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}) in ${cwd}:\n${r.stderr}\n${r.stdout.slice(-4000)}`);
  return r.stdout;
}

/** The affect frames of `run --json` / the consumer output (turn lines and the summary are not frames). */
function affectFrames(jsonl: string): AffectFrameMessage[] {
  return jsonl
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string })
    .filter((m) => m.type === 'affect')
    .map((m) => AffectMessage.parse(m));
}

/** The TypeScript consumer: everything it uses comes from the package's entry points. */
const CONSUMER_TS = `
import { readFileSync } from 'node:fs';
import {
  audioFileSource,
  createAudioFeed,
  createEngine,
  createEscalationDetector,
  toWire,
  AffectError,
  AffectServer,
  type RunningServer,
  FlowControl,
  type AffectPoint,
  type PipelineEvent,
} from 'circumplex';
import { CircumplexClient, streamUrl, SUBPROTOCOL, type ConnectionState, type StreamEventMessage } from 'circumplex/client';
import { ServerMessageSchema, PROTOCOL_VERSION, type AffectFrameMessage } from 'circumplex/protocol';
import { SocketIoBridge, type BridgeStats } from 'circumplex/socketio-bridge';

const wav = process.argv[2] ?? '';
const engine = await createEngine({ device: 'cpu' });
// The same stream id as the CLI's default, so the frames can be compared with run --json.
const feed = createAudioFeed(engine, { streamId: 'input', mode: 'offline' });
const lines: string[] = [];
let seq = 0;
// The escalation detector on received wire frames (README): they type-check as its input.
const detector = createEscalationDetector({}, 0.5);
let wireAlerts = 0;
const done = new Promise<void>((resolve, reject) => {
  feed.frames$.subscribe({
    next: (e: PipelineEvent) => {
      const wire: StreamEventMessage = toWire('input', seq++, e);
      const checked = ServerMessageSchema.parse(wire);
      lines.push(JSON.stringify(checked));
      if (e.kind === 'affect') {
        const p: AffectPoint = e.point;
        const f: AffectFrameMessage = checked as AffectFrameMessage;
        if (f.valence !== p.valence) throw new Error('wire frame differs from the point');
        if (detector.push(f)) wireAlerts++;
      }
    },
    error: reject,
    complete: resolve,
  });
});
audioFileSource(wav, { streamId: 'input' }).subscribe({
  next: (c) => void feed.write(c.samples),
  complete: () => void feed.end(),
});
await done;
// The file recipe of the package's doc comment (src/index.ts): a shared FlowControl, no window skipped.
const flow = new FlowControl({ highWater: 4 });
let piped = 0;
let pipedDropped = 0;
await new Promise<void>((resolve, reject) => {
  audioFileSource(wav, { streamId: 'piped', flow })
    .pipe(engine.pipeline('piped', { whenBusy: 'queue', flow }))
    .subscribe({
      next: (e: PipelineEvent) => {
        if (e.kind !== 'affect') return;
        piped++;
        pipedDropped += e.point.droppedWindows;
      },
      error: reject,
      complete: resolve,
    });
});
await engine.close();

// Bad input comes back as an AffectError with a code.
let code = '';
try {
  await createEngine({ device: 'cpu', speechModel: 'no-such-model' });
} catch (err) {
  if (err instanceof AffectError) code = err.code;
}

// The Node client (ws transport) against a port nobody listens on: it gives up, closed.
const client = CircumplexClient.connect('http://127.0.0.1:9', { reconnect: false, helloTimeoutMs: 2000 });
let state: ConnectionState = client.state$.value;
try {
  await client.waitOpen();
} catch {
  state = client.state$.value;
}
// The embeddable server (docs/server.md "Programmatic use"): a client connects to it and gets its hello.
const server: RunningServer = await AffectServer.start({ port: 0 });
const local = CircumplexClient.connect(server.httpUrl, { reconnect: false, helloTimeoutMs: 5000 });
await local.waitOpen();
const served = local.state$.value;
local.close();
await server.close();
// The socket.io bridge in front of the client, towards a socket.io server nobody runs: nothing goes out.
const bridge = SocketIoBridge.start(client.frames$, { url: 'http://127.0.0.1:9', socketOptions: { reconnection: false } });
const bridgeStats: BridgeStats = bridge.stats;
bridge.close();
process.stdout.write(lines.join('\\n') + '\\n');
process.stderr.write(
  JSON.stringify({ code, state, served, url: streamUrl('http://localhost:8787'), SUBPROTOCOL, PROTOCOL_VERSION, forwarded: bridgeStats.forwarded, piped, pipedDropped, wireAlerts }) + '\\n',
);
`;

const CONSUMER_TSCONFIG = (typeRoot: string) => ({
  compilerOptions: {
    target: 'ES2022',
    module: 'node16',
    moduleResolution: 'node16',
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    // Checks the package's .d.ts files too, not only the consumer.
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [typeRoot],
    outDir: 'out',
  },
  files: ['consumer.ts', 'agent-loop.ts'],
});

/** Every module specifier imported by a compiled file, followed through relative imports. */
function importGraph(entry: string): { files: string[]; bare: Set<string> } {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(
      /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
    )) {
      const spec = m[1] ?? m[2] ?? m[3] ?? '';
      if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec));
      else bare.add(spec);
    }
  };
  walk(entry);
  return { files: [...seen], bare };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'circumplex-pack-'));
  // npm pack runs prepack (npm run build: clean dist, tsc with declarations, schema).
  const packed = await timed('pack', () => sh('npm', ['pack', '--pack-destination', dir], REPO, NPM_ENV, 240_000));
  const name = packed.trim().split('\n').pop() ?? '';
  tarball = path.join(dir, name);
  expect(existsSync(tarball), `npm pack made ${tarball}`).toBe(true);

  proj = path.join(dir, 'consumer');
  mkdirSync(proj);
  const spec = `file:../${name}`;
  const repoLock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { circumplex: spec } },
    'node_modules/circumplex': {
      version: pkg.version,
      resolved: spec,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [k, v] of Object.entries(repoLock.packages)) if (k !== '' && !v.dev) packages[k] = v;
  writeFileSync(
    path.join(proj, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { circumplex: spec } }, null, 2),
  );
  writeFileSync(
    path.join(proj, 'package-lock.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2),
  );
  await timed('install', () => sh('npm', ['ci', '--offline', '--no-audit', '--no-fund'], proj, NPM_ENV, 400_000));
}, 700_000);

afterAll(() => {
  process.stdout.write(`package-install timings (ms): ${JSON.stringify(timings)}\n`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball, installed offline into an empty project', () => {
  let cliOut = '';

  it('holds the compiled code, its declarations and the runtime assets, and no TypeScript sources or downloads', () => {
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    for (const f of [
      'package/bin/circumplex.mjs',
      'package/dist/src/cli.js',
      'package/dist/src/index.js',
      'package/dist/src/index.d.ts',
      'package/dist/clients/client.d.ts',
      'package/dist/core/protocol.d.ts',
      'package/dist/models/worker/ort-worker.js',
      'package/dist/models/worker/vad-worker.js',
      'package/models/speech-va/model.onnx',
      'package/models/silero-vad/silero-vad-seq.onnx',
      'package/models/vad-lite/vad-lite.onnx',
      'package/models/text-emobank/onnx/model.onnx',
      'package/models/text-emobank/tokenizer.json',
      'package/clients/dashboard/index.html',
      'package/clients/protocol.schema.json',
    ]) {
      expect(list, f).toContain(f);
    }
    expect(list.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(list.filter((f) => f.includes('models/weights/') || f.startsWith('package/test/'))).toEqual([]);
    // Build-time scripts (fixture graphs, the ONNX builder on the onnx-proto devDependency, the schema and terms generators).
    expect(list.filter((f) => /^package\/dist\/(models\/(onnx|fixtures)\/|clients\/build-)/.test(f))).toEqual([]);
    const installed = path.join(proj, 'node_modules', 'circumplex');
    expect(existsSync(path.join(installed, 'src')), 'no src/ in the installed package (the bin must use dist)').toBe(false);
    expect(readdirSync(path.join(proj, 'node_modules', '.bin'))).toContain('circumplex');
  });

  it('`npx circumplex run --input <wav> --json` runs the compiled CLI with the bundled model', async () => {
    const r = await timed('cli', () => spawnAsync('npx', ['--offline', 'circumplex', 'run', '--input', WAV, '--json'], proj, RUN_ENV, 120_000));
    expect(r.status, r.stderr).toBe(0);
    cliOut = r.stdout;
    const frames = affectFrames(cliOut);
    // 19.1 s of speech at the default 250 ms hop after a 1 s window: about 73 frames.
    expect(frames.length).toBeGreaterThan(60);
    expect(new Set(frames.map((f) => f.label)).size).toBeGreaterThan(1);
    expect(r.stderr).toMatch(/real-time factor/);
    expect(r.stderr).not.toMatch(/tsx|\.ts:/);
  });

  it('a strict TypeScript consumer compiles against the entry points and runs the engine in-process', async () => {
    writeFileSync(path.join(proj, 'consumer.ts'), CONSUMER_TS);
    // The agent example as written (imports 'circumplex'), compiled against the installed package.
    copyFileSync(path.join(REPO, 'examples', 'agent', 'agent-loop.ts'), path.join(proj, 'agent-loop.ts'));
    writeFileSync(path.join(proj, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG(path.join(REPO, 'node_modules', '@types')), null, 2));
    await timed('tsc', () => sh(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], proj));
    const r = await timed('consumer', () => spawnAsync(process.execPath, ['out/consumer.js', WAV], proj, RUN_ENV, 120_000));
    expect(r.status, r.stderr).toBe(0);
    const lastLine = r.stderr.trim().split('\n').pop() ?? '';
    const facts = JSON.parse(lastLine) as Record<string, string | number>;
    expect(facts).toEqual({
      code: 'AFFECT_ERR_CONFIG',
      state: 'closed',
      served: 'open',
      url: 'ws://localhost:8787/v1/stream',
      SUBPROTOCOL: 'circumplex.v1',
      PROTOCOL_VERSION: expect.stringMatching(/^1\./),
      forwarded: 0,
      piped: affectFrames(cliOut).length,
      pipedDropped: 0,
      wireAlerts: expect.any(Number),
    });
    for (const line of r.stdout.trim().split('\n')) expect(ServerMessageSchema.safeParse(JSON.parse(line)).success).toBe(true);
    // The in-process feed (offline mode) gives the frames the CLI gives for the same file.
    const mine = affectFrames(r.stdout);
    const cli = affectFrames(cliOut);
    expect(mine.length).toBe(cli.length);
    for (const [i, f] of mine.entries()) {
      const c = cli[i]!;
      expect(f.tMs).toBe(c.tMs);
      expect(f.valence).toBeCloseTo(c.valence, 4);
      expect(f.arousal).toBeCloseTo(c.arousal, 4);
      expect(f.label).toBe(c.label);
    }
  });

  it('the agent example, compiled against the installed package, answers every caller turn', async () => {
    const r = await timed('agent', () => spawnAsync(process.execPath, ['out/agent-loop.js', WAV, '--json'], proj, RUN_ENV, 120_000));
    expect(r.status, r.stderr).toBe(0);
    const decisions = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { style: string; endMs: number });
    expect(decisions.length).toBeGreaterThanOrEqual(2);
    expect(r.stderr).toContain(`agent: ${decisions.length} turns answered`);
  });

  it('`circumplex serve` from the installed package serves the dashboard and chart.js (resolved from the hoisted dependency)', async () => {
    const { spawn } = await import('node:child_process');
    const serve = spawn(process.execPath, [path.join(proj, 'node_modules', 'circumplex', 'bin', 'circumplex.mjs'), 'serve', '--port', '0'], {
      cwd: proj,
      env: RUN_ENV,
    });
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let err = '';
        serve.stderr.on('data', (d: Buffer) => {
          err += String(d);
          const m = /dashboard (http:\/\/\S+?)[,)]/.exec(err);
          if (m?.[1]) resolve(m[1]);
        });
        serve.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<canvas');
      const chart = await fetch(new URL('/vendor/chart.umd.js', base));
      expect(chart.status).toBe(200);
      expect((await chart.text()).length).toBeGreaterThan(100_000);
      expect((await fetch(new URL('/terms.json', base))).status).toBe(200);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => serve.once('exit', r));
    }
  });

  it('ships the docs its error hints and README point to, and the LICENSE', () => {
    const pkgDir = path.join(proj, 'node_modules', 'circumplex');
    const shipped = readdirSync(path.join(pkgDir, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(path.join(pkgDir, 'dist', f), 'utf8'));
    const named = new Set<string>();
    for (const text of [...shipped, readFileSync(path.join(pkgDir, 'README.md'), 'utf8')]) {
      for (const m of text.matchAll(/\bdocs\/[\w-]+\.md\b/g)) named.add(m[0]);
    }
    expect(named.size).toBeGreaterThanOrEqual(5);
    expect([...named].filter((d) => !existsSync(path.join(pkgDir, d)))).toEqual([]);
    expect(readFileSync(path.join(pkgDir, 'LICENSE'), 'utf8')).toMatch(/MIT License/);
  });

  it('no shipped JavaScript imports a package the install does not bring (devDependencies such as onnx-proto)', () => {
    const pkgDir = path.join(proj, 'node_modules', 'circumplex');
    const meta = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      optionalDependencies: Record<string, string>;
    };
    const allowed = new Set([...Object.keys(meta.dependencies), ...Object.keys(meta.optionalDependencies), 'circumplex']);
    const files = [
      path.join(pkgDir, 'bin', 'circumplex.mjs'),
      ...readdirSync(path.join(pkgDir, 'dist'), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.js'))
        .map((f) => path.join(pkgDir, 'dist', f)),
    ];
    const bad: string[] = [];
    for (const file of files) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(
        /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g,
      )) {
        const spec = m[1] ?? m[2] ?? m[3] ?? '';
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec);
        // tsx only runs from TypeScript sources: the bin loads it in a checkout (src/ beside dist/), inside
        // a try, and the worker host names it in the bootstrap of a .ts worker.
        if (name === 'tsx' && (file.endsWith('circumplex.mjs') || file.endsWith(path.join('models', 'worker', 'host.js')))) continue;
        if (!allowed.has(name)) bad.push(`${path.relative(pkgDir, file)}: ${spec}`);
      }
    }
    expect(files.length).toBeGreaterThan(50);
    expect(bad).toEqual([]);
  });

  it('circumplex/client resolves to a browser-safe module outside Node (no node: modules, no ws)', () => {
    const pkgDir = path.join(proj, 'node_modules', 'circumplex');
    const exportsMap = (JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, { default: string }>> })
      .exports;
    const browserEntry = exportsMap['./client']?.default?.default ?? '';
    const { files, bare } = importGraph(path.join(pkgDir, browserEntry));
    expect(files.length).toBeGreaterThan(2);
    expect([...bare].sort()).toEqual(['rxjs', 'zod']);
  });
});
