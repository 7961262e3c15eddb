/**
 * The dashboard in a real browser (Debian's chromium via playwright-core, never a downloaded one)
 * against the real AffectServer on loopback. Synthetic affect frames are published into the real hub;
 * the page must draw them: the live point moves on the canvas, the trail fills, the label, transcript
 * and stream selector update; a real network drop (TCP proxy cut) shows as disconnected and the page
 * resumes by itself with no duplicate frames; a stream error is shown. Screenshots go to
 * test-results/dashboard.png (and dashboard-disconnected.png).
 *
 * Then the "new user" path for real: `circumplex serve --input <shipped WAV> --realtime` as a
 * process, the page opened on it, and the point must move (test-results/dashboard-serve.png).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { RunningServer } from '../../src/server/ws-server.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { CHROMIUM, CHROMIUM_ARGS, launchChromium, requireChromium } from '../helpers/chromium.js';
import { affectEvent, movingPoint, startFlakyProxy, startRealServer, transcriptEvent, type FlakyProxy } from '../helpers/clients-protocol-server.js';
import { untilPage as until } from '../helpers/until.js';
import {
  pageConnection,
  pageDominancePoints,
  pagePointPixel,
  pageStats,
  pageStream as readPageStream,
  pageTermCount,
  pageTrailLength,
} from '../helpers/dashboard-page.js';

const HOP_MS = 250;

let server: RunningServer;
let proxy: FlakyProxy;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
let frame = 0;
const pageErrors: string[] = [];
/** Errors the page logs to the browser console, WebSocket ones aside (tests cut the connection on purpose). */
const consoleErrors: string[] = [];

/** Publishes `n` moving affect frames on `streamId`, `gapMs` apart in wall time. */
async function publishMoving(streamId: string, n: number, gapMs = 20): Promise<void> {
  for (let i = 0; i < n; i++, frame++) {
    const p = movingPoint(frame);
    server.hub.publish(streamId, affectEvent(streamId, frame * HOP_MS, p.valence, p.arousal));
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
}

const pageStream = (id: string) => readPageStream(page, id);
const pointPixel = () => pagePointPixel(page);
const connection = () => pageConnection(page);

describe('dashboard in chromium', () => {
  beforeAll(async () => {
    requireChromium();
    mkdirSync('test-results', { recursive: true });
    server = await startRealServer();
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    server.hub.openStream({ streamId: 'backup-mic', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    // The page goes through a TCP proxy, so the test can cut its connection like a network drop.
    proxy = await startFlakyProxy(server.port);
    ({ context, page, userDataDir } = await launchChromium({ width: 1280, height: 720 }, pageErrors));
    // A failed request (say the favicon chromium asks for) shows here as 'Failed to load resource'.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket/.test(m.text())) consoleErrors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    await until(async () => (await connection()) === 'open');
  });

  afterAll(async () => {
    await context?.close();
    await proxy?.close();
    await server?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('draws the circumplex with every Russell term', async () => {
    const termCount = await pageTermCount(page);
    expect(termCount).toBe(RUSSELL_1980_TERMS.length);
    const options = await page.locator('#stream-select option').allTextContents();
    expect(options.map((o) => o.replace(/ \(.*\)$/, '')).sort()).toEqual(['backup-mic', 'stage']);
    // Loaded without a console error: no 404 for a favicon, a script or chart.js.
    await page.waitForTimeout(500);
    expect(consoleErrors).toEqual([]);
  });

  it('moves the live point, fills the trail and shows label, numbers and transcript', async () => {
    await page.selectOption('#stream-select', 'stage');
    await publishMoving('stage', 12);
    server.hub.publish('stage', transcriptEvent('stage', frame * HOP_MS, 'welcome to the demo'));
    server.hub.publish('stage', transcriptEvent('stage', frame * HOP_MS, 'the point should be mov', false));
    await until(async () => (await pageStream('stage'))?.lastSeq === 13);
    await page.waitForTimeout(100); // one animation frame for the redraw
    const p1 = await pointPixel();
    await publishMoving('stage', 10);
    await until(async () => (await pageStream('stage'))?.points === 22);
    await page.waitForTimeout(100);
    const p2 = await pointPixel();
    expect(p1).not.toBeNull();
    expect(p2).not.toBeNull();
    // The point moved on screen by more than a few pixels.
    expect(Math.hypot((p2?.x ?? 0) - (p1?.x ?? 0), (p2?.y ?? 0) - (p1?.y ?? 0))).toBeGreaterThan(10);
    const trail = await pageTrailLength(page);
    expect(trail).toBe(22);
    // The label is the nearest Russell term of the last frame, as published.
    const last = movingPoint(frame - 1);
    const expected = affectEvent('stage', 0, last.valence, last.arousal);
    const label = await page.locator('#label').textContent();
    expect(expected.kind === 'affect' && label).toBe(expected.kind === 'affect' ? expected.point.label : '');
    expect(await page.locator('#valence-value').textContent()).toBe(`${last.valence >= 0 ? '+' : '−'}${Math.abs(last.valence).toFixed(2)}`);
    // These frames carry no dominance (a speech-only fixture): a muted dash, no dominance line.
    expect(await page.locator('#dominance-value').textContent()).toBe('—');
    expect(await page.locator('#dominance-value').getAttribute('data-present')).toBe('false');
    expect(await pageDominancePoints(page)).toBe(0);
    expect(await page.locator('#transcript-lines li').allTextContents()).toEqual(['welcome to the demo']);
    expect(await page.locator('#transcript-partial').textContent()).toContain('the point should be mov');
    expect(await page.locator('#conn').getAttribute('data-state')).toBe('open');
    await page.screenshot({ path: 'test-results/dashboard.png' });
    expect(pageErrors).toEqual([]);
  });

  it('shows a network drop, then reconnects and resumes with no duplicates', async () => {
    proxy.setRefusing(true);
    proxy.cut();
    await until(async () => (await connection()) === 'closed');
    expect(await page.locator('#banner').isVisible()).toBe(true);
    expect(await page.locator('#conn').textContent()).toMatch(/disconnected/);
    // Frames published while the page is cut off must arrive after it comes back.
    await publishMoving('stage', 8, 0);
    await page.screenshot({ path: 'test-results/dashboard-disconnected.png' });
    proxy.setRefusing(false);
    await until(async () => (await connection()) === 'open', 15_000);
    await until(async () => (await pageStream('stage'))?.points === 30);
    const stats = await pageStats(page);
    expect(stats.reconnects).toBe(1);
    expect(stats.duplicates).toBe(0);
    expect((await pageStream('stage'))?.lastSeq).toBe(server.hub.stream('stage')?.lastSeq);
    expect(await page.locator('#banner').isHidden()).toBe(true);
  });

  it('shows a stream error and the stream state', async () => {
    server.hub.publish('stage', { kind: 'status', streamId: 'stage', tMs: frame * HOP_MS, state: 'error', message: 'AFFECT_ERR_INFERENCE: model crashed' });
    await until(async () => (await pageStream('stage'))?.error !== null);
    await expect.poll(() => page.locator('#banner').textContent()).toContain('model crashed');
    expect(await page.locator('#stream-state').getAttribute('data-state')).toBe('error');
    // Switching to the healthy stream clears the banner.
    await page.selectOption('#stream-select', 'backup-mic');
    await expect.poll(() => page.locator('#banner').isHidden()).toBe(true);
  });

  it('shows an escalation alert on a badge and in the transcript, and takes the badge down 30 s of audio later', async () => {
    await page.selectOption('#stream-select', 'stage');
    await publishMoving('stage', 4);
    const tMs = frame * HOP_MS;
    const reason = 'arousal up 0.45 and valence down 0.46 over the last 3.0 s against the 20 s before (z 5.4)';
    server.hub.publish('stage', {
      kind: 'alert',
      alert: { streamId: 'stage', tMs, alert: 'escalation', reason, sustainedMs: 3000, velocity: { valence: -0.04, arousal: 0.04 } },
    });
    await publishMoving('stage', 4);
    await expect.poll(() => page.locator('#alert').isVisible()).toBe(true);
    expect(await page.locator('#alert').textContent()).toBe(`⚠ escalation at ${(tMs / 1000).toFixed(1)} s — ${reason}`);
    expect(await page.locator('#transcript-lines li.alert').allTextContents()).toEqual([`⚠ escalation: ${reason}`]);
    await page.screenshot({ path: 'test-results/dashboard-alert.png' });
    // A stream without the alert shows no badge.
    await page.selectOption('#stream-select', 'backup-mic');
    await expect.poll(() => page.locator('#alert').isHidden()).toBe(true);
    await page.selectOption('#stream-select', 'stage');
    await expect.poll(() => page.locator('#alert').isVisible()).toBe(true);
    // 30 s of audio later (120 frames at the 250 ms hop) the badge is down; the transcript line stays.
    await publishMoving('stage', 121, 0);
    await expect.poll(() => page.locator('#alert').isHidden()).toBe(true);
    expect(await page.locator('#transcript-lines li.alert').count()).toBe(1);
    expect(pageErrors).toEqual([]);
  });

  it('shows dominance when frames carry it (protocol 1.1.0) and a gap where they do not', async () => {
    await page.selectOption('#stream-select', 'backup-mic');
    const seqBefore = server.hub.stream('backup-mic')?.lastSeq ?? -1;
    const dominances = [0.1, 0.2, 0.3, undefined, 0.4, -0.35];
    dominances.forEach((d, i) => {
      const e = affectEvent('backup-mic', (i + 1) * HOP_MS, 0.3, -0.2);
      if (e.kind !== 'affect') throw new Error('affectEvent must make an affect event');
      // As the late fusion and the text regression model produce it: on the frame and on the text part.
      const point =
        d === undefined
          ? e.point
          : { ...e.point, dominance: d, modalities: ['speech', 'text'] as const, text: { valence: 0.3, arousal: -0.2, confidence: 0.6, dominance: d } };
      server.hub.publish('backup-mic', { kind: 'affect', point });
    });
    await until(async () => (await pageStream('backup-mic'))?.lastSeq === seqBefore + dominances.length);
    await page.waitForTimeout(100);
    expect(await page.locator('#dominance-value').textContent()).toBe('−0.35');
    expect(await page.locator('#dominance-value').getAttribute('data-present')).toBe('true');
    // Five frames have dominance; the one without is a gap, not a 0.
    expect(await pageDominancePoints(page)).toBe(5);
    await page.screenshot({ path: 'test-results/dashboard-dominance.png' });
    expect(pageErrors).toEqual([]);
  });

  it('is usable on a narrow laptop window (stacked, no horizontal overflow)', async () => {
    await page.setViewportSize({ width: 820, height: 1000 });
    await page.selectOption('#stream-select', 'stage');
    await page.waitForTimeout(200);
    const m = await page.evaluate(() => ({
      scrollW: document.documentElement.scrollWidth,
      innerW: window.innerWidth,
      canvasW: document.getElementById('circumplex')?.getBoundingClientRect().width ?? 0,
    }));
    expect(m.scrollW).toBeLessThanOrEqual(m.innerW);
    expect(m.canvasW).toBeGreaterThan(300);
    await page.screenshot({ path: 'test-results/dashboard-narrow.png', fullPage: true });
    await page.setViewportSize({ width: 1280, height: 720 });
  });

  it('projector mode uses larger type', async () => {
    const normal = await page.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));
    await page.evaluate(() => document.documentElement.classList.add('projector'));
    const big = await page.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));
    expect(big).toBeGreaterThan(normal);
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.waitForTimeout(200);
    await page.screenshot({ path: 'test-results/dashboard-projector.png' });
  });
});

describe('dashboard on `circumplex serve` with the shipped WAV', () => {
  let serve: ChildProcess | undefined;
  let ctx: BrowserContext | undefined;
  let dataDir: string | undefined;

  afterAll(async () => {
    await ctx?.close();
    if (serve && serve.exitCode === null) {
      serve.kill('SIGINT');
      await new Promise((r) => serve?.once('exit', r));
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a new user starts serve --realtime, opens the page and the point moves', async () => {
    requireChromium();
    serve = spawn(process.execPath, ['bin/circumplex.mjs', 'serve', '--input', 'test/fixtures/audio/speech.wav', '--realtime', '--port', '0'], {
      env: { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'warn' },
    });
    const httpUrl = await new Promise<string>((resolve, reject) => {
      let err = '';
      serve?.stderr?.on('data', (d: Buffer) => {
        err += String(d);
        const m = /dashboard (http:\/\/\S+?)[,)]/.exec(err);
        if (m?.[1]) resolve(m[1]);
      });
      serve?.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-chromium-'));
    ctx = await chromium.launchPersistentContext(dataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 720 },
    });
    const p = ctx.pages()[0] ?? (await ctx.newPage());
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.goto(httpUrl);
    const pixel = () => pagePointPixel(p);
    const fileStream = () => readPageStream(p, 'file');
    const end = Date.now() + 20_000;
    while (((await fileStream())?.points ?? 0) < 2) {
      if (Date.now() > end) throw new Error('no affect frames reached the page');
      await p.waitForTimeout(100);
    }
    await p.waitForTimeout(100);
    const first = await pixel();
    // Real frames arrive every 250 ms of audio (= wall time with --realtime); give it 2.5 s.
    await p.waitForTimeout(2500);
    const later = await pixel();
    const s = await fileStream();
    expect(s?.points).toBeGreaterThanOrEqual(8);
    expect(first).not.toBeNull();
    expect(later).not.toBeNull();
    expect(Math.hypot((later?.x ?? 0) - (first?.x ?? 0), (later?.y ?? 0) - (first?.y ?? 0))).toBeGreaterThan(1);
    const label = (await p.locator('#label').textContent()) ?? '';
    expect([...RUSSELL_1980_TERMS.map((t) => t.term), 'neutral']).toContain(label);
    expect(await p.locator('#conn').getAttribute('data-state')).toBe('open');
    await p.screenshot({ path: 'test-results/dashboard-serve.png' });
    expect(errors).toEqual([]);
  });
});
