/**
 * `npm run bench -- --quick` end to end: the real CLI in a child process (real ONNX session in a
 * worker, real ws server and clients on loopback), bounded in time, then the JSON report's shape
 * and internal consistency. Timing values are not asserted (speed targets live in the benchmark
 * itself), only that they are measured, finite and coherent.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';
import type { BenchReport } from '../../bench/run-bench.js';

let dir: string;
let stdout = '';
let stderr = '';
let code: number | null = null;
let report: BenchReport;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bench-'));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'run-bench.ts'), '--quick', '--out', dir], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(killer);
  const files = (await readdir(dir)).filter((f) => /^bench-.*-quick\.json$/.test(f));
  expect(files, `report files in ${dir}; stderr:\n${stderr}`).toHaveLength(1);
  report = JSON.parse(await readFile(path.join(dir, files[0]!), 'utf8')) as BenchReport;
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const finite = (v: unknown): void => {
  expect(typeof v).toBe('number');
  expect(Number.isFinite(v)).toBe(true);
};

describe('npm run bench -- --quick', () => {
  it('exits 0 and prints the summary table', () => {
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/real-time factor/);
    expect(stdout).toMatch(/end-to-end latency/);
    expect(stdout).toMatch(/fan-out/);
    expect(stdout).toMatch(/report: /);
  });

  it('writes a report with machine, config and every section', () => {
    expect(report).toMatchObject({ kind: 'circumplex.bench', version: 1, quick: true });
    expect(report.machine.logicalCores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(report.config).toMatchObject({ device: 'cpu', provider: 'cpu', speechModel: 'speech-va', fusion: 'late', hopMs: 250 });
    expect(report.config.budgetMs).toBe(report.config.hopMs + 100);
    expect(Object.keys(report.sections).sort()).toEqual(['batch', 'batching', 'efficiency', 'fanout', 'gpu', 'latency', 'load', 'rtf', 'scaling', 'smoothing']);
    finite(report.wallSeconds);
    expect(report.wallSeconds).toBeLessThan(90);
  });

  it('has real-time factors per stage and for the pipeline', () => {
    const rtf = report.sections.rtf!;
    if ('skipped' in rtf) throw new Error(rtf.skipped);
    // decode, speech model, fusion always; text model (text-embed-fixture) and speech recognition
    // (tiny Vosk model) are timed, or listed as not timed with the reason.
    const timed = rtf.stages.map((s) => s.stage.split(' (')[0]);
    expect(timed.slice(0, 3)).toEqual(['decode', 'speech model', 'fusion']);
    for (const stage of ['text model', 'speech recognition']) {
      const skipped = rtf.notTimed.find((n) => n.stage.startsWith(stage));
      expect(timed.includes(stage) !== (skipped !== undefined), `${stage}: timed or skipped, not both`).toBe(true);
      if (skipped) expect(skipped.reason.length).toBeGreaterThan(0);
    }
    for (const s of rtf.stages) {
      finite(s.rtf);
      expect(s.rtf).toBeGreaterThan(0);
      expect(s.calls).toBeGreaterThan(0);
    }
    // 5 s of audio, 1 s windows every 250 ms: 17 windows, all of them framed offline (lossless).
    expect(rtf.pipeline.frames).toBe(17);
    expect(rtf.pipeline.droppedWindows).toBe(0);
    finite(rtf.pipeline.rtf);
  });

  it('measures end-to-end latency on every frame of a real-time stream', () => {
    const lat = report.sections.latency!;
    if ('skipped' in lat) throw new Error(lat.skipped);
    // 3 s stream: frames at 1.0, 1.25, … 3.0 s.
    expect(lat.framesExpected).toBe(9);
    expect(lat.framesReceived + lat.droppedWindows).toBe(9);
    expect(lat.latencyMs.n).toBe(lat.framesReceived);
    const l = lat.latencyMs;
    for (const v of [l.p50, l.p95, l.p99, l.max]) finite(v);
    expect(l.p50!).toBeLessThanOrEqual(l.p95!);
    expect(l.p95!).toBeLessThanOrEqual(l.p99!);
    expect(l.p99!).toBeLessThanOrEqual(l.max!);
    expect(l.p50!).toBeGreaterThan(0);
    finite(lat.cpuCoresPerStream);
  });

  it('scales streams by doubling and reports CPU and RSS per stream', () => {
    const sc = report.sections.scaling!;
    if ('skipped' in sc) throw new Error(sc.skipped);
    expect(sc.levels.length).toBeGreaterThan(0);
    sc.levels.forEach((lv, i) => {
      expect(lv.streams).toBe(2 ** i);
      finite(lv.cpuCoresPerStream);
      finite(lv.rssPerStreamMiB);
      expect(lv.framesReceived + lv.droppedWindows).toBeLessThanOrEqual(lv.framesExpected);
    });
    expect(sc.maxStreamsWithinBudget).toBe(Math.max(0, ...sc.levels.filter((l) => l.withinBudget).map((l) => l.streams)));
    expect(sc.stoppedBecause.length).toBeGreaterThan(0);
  });

  it('compares the pipeline with the bare session and sweeps batch sizes', () => {
    const e = report.sections.efficiency!;
    if ('skipped' in e) throw new Error(e.skipped);
    finite(e.efficiency);
    expect(e.efficiency).toBeCloseTo(e.pipeline.windowsPerSec / e.bare.windowsPerSec, 2);
    expect(e.bare.batchSize).toBe(Math.max(1, Math.round(e.pipeline.meanBatch)));
    const b = report.sections.batch!;
    if ('skipped' in b) throw new Error(b.skipped);
    expect(b.points.map((p) => p.batchSize)).toEqual([1, 8, 32]);
    for (const p of b.points) finite(p.windowsPerSec);
  });

  it('measures fan-out against a bare ws loop with every subscriber served', () => {
    const f = report.sections.fanout!;
    if ('skipped' in f) throw new Error(f.skipped);
    expect(f.map((p) => p.subscribers)).toEqual([1, 100]);
    for (const p of f) {
      expect(p.bareWs.delivered).toBe(p.subscribers * p.frames);
      expect(p.bareWs.complete).toBe(p.subscribers);
      expect(p.server.complete).toBe(p.subscribers);
      // Every frame is delivered or accounted for as coalesced.
      expect(p.server.delivered + p.server.coalesced).toBe(p.subscribers * p.frames);
      finite(p.ratio);
    }
  });

  it('includes the models and server benchmarks (or says why not)', () => {
    for (const k of ['batching', 'load'] as const) {
      const v = report.sections[k] as Record<string, unknown> | undefined;
      expect(v).toBeDefined();
      if (typeof v?.['skipped'] === 'string') continue;
      if (k === 'batching') expect(Array.isArray(v?.['rows'])).toBe(true);
      else expect(v).toMatchObject({ gaps: 0 });
    }
  });

  it('scores every trajectory filter on synthetic trajectories; the default (kalman-cv) carries the best velocity at every noise level; the default escalation detector fires on escalations and not on noise', () => {
    const sm = report.sections.smoothing!;
    const sds = [...new Set(sm.rows.map((r) => r.noiseSd))];
    expect(sds).toEqual([0.1, 0.2, 0.3]);
    for (const sd of sds) {
      const at = sm.rows.filter((r) => r.noiseSd === sd && r.tauMs === 1000);
      expect(at.map((r) => r.filter).sort()).toEqual(['ema', 'kalman', 'kalman-cv', 'one-euro']);
      const cv = at.find((r) => r.filter === 'kalman-cv')!;
      // smoothing helps: below the measurement noise — the default filter at every noise level, every filter
      // from sd 0.2 (at 0.1 a 1 s EMA lags steps and ramps by about as much as it removes: 0.099–0.107)
      expect(cv.positionRmse).toBeLessThan(sd);
      for (const r of at) {
        finite(r.positionRmse);
        if (sd >= 0.2) expect(r.positionRmse).toBeLessThan(sd);
      }
      for (const r of at) if (r !== cv) expect(cv.velocityRmse).toBeLessThan(r.velocityRmse);
    }
    // escalation alerts through the pipeline's stages. The default detector (shift, on the default
    // filter) catches most clear escalations at every independent noise level, more than the velocity
    // detector does, with no alert on constant affect, correlated noise included; the velocity detector
    // on one-euro's finite-difference velocity never fires, and on correlated noise it fires falsely.
    const esc = (method: string, filter: string, noise: string, sd: number, tauMs = 1000) =>
      sm.escalation.find((r) => r.method === method && r.filter === filter && r.noise === noise && r.noiseSd === sd && r.tauMs === tauMs)!;
    for (const sd of sds) {
      const shift = esc('shift', 'kalman-cv', 'iid', sd);
      expect(shift.detected).toBeGreaterThan(shift.episodes / 2);
      expect(shift.detected).toBeGreaterThan(esc('velocity', 'kalman-cv', 'iid', sd).detected);
      expect(esc('velocity', 'one-euro', 'iid', sd).detected).toBe(0);
    }
    for (const r of sm.escalation.filter((r) => r.method === 'shift')) {
      expect(r.falseAlarmsPerHour, `${r.filter} ${r.noise} ${r.noiseSd}`).toBe(0);
      expect(r.startAlarms, `${r.filter} ${r.noise} ${r.noiseSd}`).toBe(0);
    }
    expect(esc('velocity', 'kalman-cv', 'overlap', 0.3).falseAlarmsPerHour).toBeGreaterThan(0);
    // Onset: the default detector needs history, so an escalation 10 s into a stream is caught less often
    // than one 40 s in, at every noise level; a clear one (iid 0.1) 40 s in nearly always.
    const onset = (noise: string, sd: number, restS: number) => sm.escalationOnset.find((r) => r.noise === noise && r.noiseSd === sd && r.restS === restS)!;
    expect(sm.escalationOnset.every((r) => r.method === 'shift' && r.filter === 'kalman-cv' && r.tauMs === 1000)).toBe(true);
    for (const [noise, sd] of [
      ['iid', 0.1],
      ['iid', 0.2],
      ['iid', 0.3],
      ['overlap', 0.3],
    ] as const)
      expect(onset(noise, sd, 10).detected, `${noise} ${sd}`).toBeLessThan(onset(noise, sd, 40).detected);
    expect(onset('iid', 0.1, 40).detected).toBeGreaterThan(0.9 * onset('iid', 0.1, 40).episodes);
    // the 40 s rows are the escalation rows' own episodes
    expect(onset('iid', 0.2, 40).detected).toBe(esc('shift', 'kalman-cv', 'iid', 0.2).detected);
  });

  it('skips the GPU section with a clear note when CUDA is not available', () => {
    const g = report.sections.gpu!;
    if (report.machine.gpu === null) expect('skipped' in g && g.skipped).toMatch(/CUDA provider is not installed/);
  });
});
