/**
 * The warm-up `serve` runs before its port opens (src/warm-up.ts): it runs the real models, the
 * per-stream pipeline and the ingest decoder on synthetic audio, leaves the VAD counters at zero,
 * names the failing step when a model cannot run, and is skipped with CIRCUMPLEX_WARM_UP=off.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { lastValueFrom, NEVER, toArray } from 'rxjs';
import { REPO_ROOT } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';
import { createEngine, type Engine } from '../../src/engine.js';
import { warmUp, warmUpServer, WARM_UP_DEFAULTS } from '../../src/warm-up.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import { FlowControl } from '../../streams/flow.js';
import { waitForListening } from '../helpers/listening.js';

const BIN = path.join(REPO_ROOT, 'bin', 'circumplex.mjs');
const silent = async () => (await import('pino')).pino({ level: 'silent' });

let engine: Engine;
beforeAll(async () => {
  engine = await createEngine({ device: 'cpu', logger: await silent() });
});
afterAll(async () => {
  await engine.close();
});
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('warmUp', () => {
  it('runs the speech model at every batch size, the VAD, whole pipelines and the μ-law decoder; VAD counters stay at zero; the engine still works', async () => {
    const r = await warmUp(engine, { logger: await silent() });
    const perRound = WARM_UP_DEFAULTS.speechBatches.reduce((a, b) => a + b, 0);
    expect(r.speechWindows).toBe(perRound * WARM_UP_DEFAULTS.speechRounds);
    expect(r.vadRequests).toBe(WARM_UP_DEFAULTS.vadStreams.reduce((a, b) => a + b, 0));
    // Every window of every stream is an affect frame (paced by a flow, none skipped): 1 s windows every 250 ms.
    expect(r.pipelineFrames).toBe(WARM_UP_DEFAULTS.pipelineStreams * ((WARM_UP_DEFAULTS.pipelineSeconds - 1) * 4 + 1));
    expect(r.ingestPackets).toBe(WARM_UP_DEFAULTS.ingestSeconds * 50);
    expect(r.ms.total).toBeGreaterThan(0);
    const stats = (engine.vad as unknown as { stats: Record<string, number> }).stats;
    expect(stats['frames']).toBe(0);
    expect(stats['batches']).toBe(0);
    // A real stream afterwards: its frames as on a fresh engine.
    const flow = new FlowControl();
    const events = await lastValueFrom(
      wavFileSource('test/fixtures/audio/speech.wav', { streamId: 'after', flow }).pipe(engine.pipeline('after', { whenBusy: 'queue', flow }), toArray()),
    );
    expect(events.filter((e) => e.kind === 'affect')).toHaveLength(74);
    expect(stats['frames']).toBeGreaterThan(0);
  }, 60_000);

  it('names the step that failed and says how to start without it', async () => {
    const broken = {
      ...engine,
      options: engine.options,
      vad: undefined,
      hasTextPath: false,
      speech: { ...engine.speech, windowSamples: 16000, infer: () => Promise.reject(new Error('session exploded')) },
    } as unknown as Engine;
    const err = await warmUp(broken, { logger: await silent() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).message).toBe('warm-up (speech model) failed: session exploded');
    expect((err as AffectError).hint).toMatch(/CIRCUMPLEX_WARM_UP=off/);
  });
});

describe('warmUpServer', () => {
  it('runs Twilio calls and subscribers through a throw-away loopback server: every track ends, frames reach the subscribers, VAD counters stay at zero', async () => {
    const stats = (engine.vad as unknown as { stats: Record<string, number> }).stats;
    const before = { ...stats };
    const r = await warmUpServer(engine, { calls: 8, seconds: 3, ingestStreamTiming: { hopMs: 250, windowMs: 1000 }, logger: await silent() });
    expect(r.calls).toBe(8);
    expect(r.mediaMessages).toBe(8 * 2 * 150);
    // 16 tracks × 9 windows (3 s, 1 s windows every 250 ms) at most; 'latest' may skip some at 4× real time.
    expect(r.framesReceived).toBeGreaterThan(0);
    expect(r.framesReceived).toBeLessThanOrEqual(16 * 9);
    expect(stats).toEqual(before);
  }, 60_000);

  it('runs fewer calls, or none, for a model too slow for them, and goes on with a warning when streams do not end in time', async () => {
    const timing = { hopMs: 250, windowMs: 1000 };
    // 3 s → 9 windows a track, 18 a call: a 100 ms model fits 2 calls into 4 s of model time, a 500 ms one none.
    expect((await warmUpServer(engine, { calls: 8, ingestStreamTiming: timing, modelMsPerWindow: 100, logger: await silent() })).calls).toBe(2);
    const none = await warmUpServer(engine, { calls: 8, ingestStreamTiming: timing, modelMsPerWindow: 500, logger: await silent() });
    expect(none).toMatchObject({ calls: 0, mediaMessages: 0, framesReceived: 0 });
    // A pipeline that never completes: the warm-up waits drainMs, then returns saying so.
    const stuck = { ...engine, hasTextPath: false, vad: undefined, pipeline: () => () => NEVER } as unknown as Engine;
    const t0 = Date.now();
    const r = await warmUpServer(stuck, { calls: 2, seconds: 1, ingestStreamTiming: timing, drainMs: 500, logger: await silent() });
    expect(r).toMatchObject({ calls: 2, unfinishedTracks: 4, framesReceived: 0 });
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 60_000);

  it('names the step when the pipeline fails', async () => {
    const broken = {
      ...engine,
      hasTextPath: false,
      vad: undefined,
      pipeline: () => () => {
        throw new Error('pipeline exploded');
      },
    } as unknown as Engine;
    const err = await warmUpServer(broken, { calls: 2, seconds: 1, ingestStreamTiming: { hopMs: 250, windowMs: 1000 }, logger: await silent() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).message).toBe('warm-up (network path) failed: the server closed a warm-up call with 1011 pipeline failed: pipeline exploded');
  }, 30_000);
});

describe('serve', () => {
  const start = async (env: NodeJS.ProcessEnv) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--input', 'none', '--port', '0', '--device', 'cpu'], {
      cwd: REPO_ROOT,
      env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    const { stderr } = await waitForListening(child, 'serve');
    child.kill('SIGTERM');
    return stderr();
  };

  it('warms up before it reports listening, and not with CIRCUMPLEX_WARM_UP=off', async () => {
    const on = await start({});
    const warmed = on.indexOf('warmed up in');
    expect(warmed).toBeGreaterThan(-1);
    expect(warmed).toBeLessThan(on.indexOf('listening on'));
    const network = on.indexOf('warmed up the network path in');
    expect(network).toBeGreaterThan(warmed);
    expect(network).toBeLessThan(on.indexOf('listening on'));
    const off = await start({ CIRCUMPLEX_WARM_UP: 'off' });
    expect(off).toMatch(/listening on/);
    expect(off).not.toMatch(/warmed up in/);
  }, 90_000);
});
