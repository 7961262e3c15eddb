/**
 * examples/browser: main.ts bundled by esbuild for the browser (circumplex/client → the standard
 * WebSocket client; the bundle must pull in no Node module and not the ws package), served by the
 * real AffectServer as its page folder, opened in Debian's chromium (playwright-core, never a
 * downloaded browser). Frames published into the real hub must reach the page; a network drop (TCP
 * proxy cut) must be survived with a resume by seq: every frame shown once, in order.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/ws-server.js';
import type { AffectFrameMessage } from '../../core/protocol.js';
import { launchChromium, requireChromium } from '../helpers/chromium.js';
import { affectEvent, movingPoint, startFlakyProxy, startRealServer, type FlakyProxy } from '../helpers/clients-protocol-server.js';
import { untilPage as until } from '../helpers/until.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');

let pageDir: string;
let userDataDir: string;
let server: RunningServer;
let proxy: FlakyProxy;
let context: BrowserContext;
let page: Page;
let inputs: string[] = [];
let bundleBytes = 0;
const pageErrors: string[] = [];

interface PageView {
  frames: AffectFrameMessage[];
  state: string;
  stats: { duplicates: number; reconnects: number; gaps: number };
}
const view = (): Promise<PageView> =>
  page.evaluate(() => {
    const ex = (window as unknown as { example: { frames: unknown[]; state(): string; stats(): unknown } }).example;
    return { frames: ex.frames, state: ex.state(), stats: ex.stats() } as PageView;
  });

let published = 0;
function publish(n: number): void {
  for (let i = 0; i < n; i++, published++) {
    const p = movingPoint(published);
    server.hub.publish('stage', affectEvent('stage', 1000 + published * 250, p.valence, p.arousal));
  }
}

beforeAll(async () => {
  requireChromium();
  pageDir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-example-browser-'));
  mkdirSync(path.join(pageDir, 'dist'));
  copyFileSync(path.join(REPO, 'examples', 'browser', 'index.html'), path.join(pageDir, 'index.html'));
  const r = await build({
    entryPoints: [path.join(REPO, 'examples', 'browser', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    tsconfig: path.join(REPO, 'examples', 'tsconfig.json'),
    outfile: path.join(pageDir, 'dist', 'main.js'),
    metafile: true,
    logLevel: 'silent',
  });
  inputs = Object.keys(r.metafile.inputs);
  bundleBytes = Object.values(r.metafile.outputs)[0]?.bytes ?? 0;
  server = await startRealServer({ dashboardDir: pageDir });
  server.hub.openStream({ streamId: 'stage', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
  proxy = await startFlakyProxy(server.port);
  ({ context, page, userDataDir } = await launchChromium({ width: 900, height: 500 }, pageErrors));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket/.test(m.text())) pageErrors.push(m.text());
  });
  // No ?server=: the page connects to its own host, here the proxy in front of the server.
  await page.goto(`http://127.0.0.1:${proxy.port}/?stream=stage`);
  await until(async () => (await view()).state === 'open');
});

afterAll(async () => {
  await context?.close();
  await proxy?.close();
  await server?.close();
  for (const d of [userDataDir, pageDir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('examples/browser (circumplex/client in chromium)', () => {
  it('bundles for the browser with no Node module and without the ws package', () => {
    expect(inputs.filter((i) => i.startsWith('node:') || /node_modules\/ws\//.test(i))).toEqual([]);
    expect(inputs.some((i) => i.endsWith('clients/client.ts'))).toBe(true);
    expect(inputs.some((i) => i.endsWith('node-client.ts'))).toBe(false);
    expect(bundleBytes).toBeGreaterThan(10_000);
  });

  it('shows live frames, survives a network drop by resuming, and shows each frame once', async () => {
    publish(10);
    await until(async () => (await view()).frames.length === 10);
    proxy.cut();
    await until(async () => (await view()).state !== 'open', 5_000);
    // Published while the page is disconnected: they must come back through the resume.
    publish(6);
    await until(async () => (await view()).state === 'open');
    publish(4);
    await until(async () => (await view()).frames.length >= 20);
    await page.waitForTimeout(300);
    const v = await view();
    expect(v.frames.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const [i, f] of v.frames.entries()) {
      const p = movingPoint(i);
      expect(f.valence).toBeCloseTo(p.valence, 4);
      expect(f.arousal).toBeCloseTo(p.arousal, 4);
    }
    expect(v.stats.reconnects).toBe(1);
    expect(v.stats.gaps).toBe(0);
    const last = v.frames[19]!;
    expect(await page.locator('#label').textContent()).toBe(last.label);
    expect(await page.locator('#state').getAttribute('data-state')).toBe('open');
    expect(proxy.accepted).toBeGreaterThanOrEqual(3); // page + socket, then the reconnect
    mkdirSync(path.join(REPO, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(REPO, 'test-results', 'example-browser.png') });
    expect(pageErrors).toEqual([]);
  });

  it('served from another origin, as examples/README.md runs it: refused (403) unless the server allows that origin', async () => {
    // The page from one server (its own origin), the frames from two others: one with the default
    // same-origin allowlist, one started with the page's origin allowed (--allowed-origins).
    const pageServer = await startRealServer({ dashboardDir: pageDir });
    const origin = `http://127.0.0.1:${pageServer.port}`;
    const strict = await startRealServer();
    const open = await startRealServer({ allowedOrigins: [origin] });
    open.hub.openStream({ streamId: 'stage', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const other = await context.newPage();
    try {
      const state = () => other.locator('#state').getAttribute('data-state');
      await other.goto(`${origin}/?server=ws://127.0.0.1:${strict.port}&stream=stage`);
      await until(async () => (await strict.metrics.registry.getSingleMetricAsString('circumplex_refused_total')).includes('reason="origin"} '));
      expect(await state()).not.toBe('open');
      await other.goto(`${origin}/?server=ws://127.0.0.1:${open.port}&stream=stage`);
      await until(async () => (await state()) === 'open');
      open.hub.publish('stage', affectEvent('stage', 1000, 0.4, 0.2));
      await until(async () => ((await other.locator('#label').textContent()) ?? '…') !== '…');
      // The README step that makes it work.
      expect(readFileSync(path.join(REPO, 'examples', 'README.md'), 'utf8')).toContain('--allowed-origins http://localhost:8000');
    } finally {
      await other.close();
      await Promise.all([pageServer.close(), strict.close(), open.close()]);
    }
  });
});
