/**
 * The dashboard in a real browser (Debian's chromium via playwright-core) against the real
 * AffectServer, in the situations a presenter meets outside the happy path: a hand-edited URL, a
 * bookmarked stream that starts after the page is opened,
 * a page left open while hundreds of calls come and go, a server that needs a token the URL lacks, and a server that restarts under the page (its streams start again at seq 0: the page must draw the
 * new run whole, whether the stream is back before the page reconnects or only after).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from '../../src/server/ws-server.js';
import { launchChromium } from '../helpers/chromium.js';
import { affectEvent, freePort, movingPoint, startFlakyProxy, startRealServer, transcriptEvent } from '../helpers/clients-protocol-server.js';
import { untilPage as until } from '../helpers/until.js';
import { pageStream as readPageStream, pageStreams, pageConnection, pageSelected, pageStats } from '../helpers/dashboard-page.js';

const HOP_MS = 250;

let context: BrowserContext;
let page: Page;
let userDataDir: string;
const pageErrors: string[] = [];
const servers: RunningServer[] = [];

async function serverOn(port = 0, opts: Parameters<typeof startRealServer>[0] = {}): Promise<RunningServer> {
  const s = await startRealServer({ port, ...opts });
  servers.push(s);
  return s;
}

function publishMoving(server: RunningServer, streamId: string, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    const p = movingPoint(i);
    server.hub.publish(streamId, affectEvent(streamId, i * HOP_MS, p.valence, p.arousal));
  }
}

const pageStream = (id: string) => readPageStream(page, id);
const connection = () => pageConnection(page);

describe('dashboard robustness in chromium', () => {
  beforeAll(async () => {
    ({ context, page, userDataDir } = await launchChromium({ width: 1280, height: 720 }, pageErrors));
  });

  afterAll(async () => {
    await context?.close();
    for (const s of servers) await s.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('a malformed #stream= in the URL is ignored instead of stopping the page', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, 'stage', 0, 5);
    await page.goto(`${server.httpUrl}#stream=50%`);
    await until(async () => (await connection()) === 'open');
    await until(async () => (await pageStream('stage'))?.points === 5);
    expect(await pageSelected(page)).toBe('stage');
    expect(pageErrors).toEqual([]);
  });

  for (const when of ['before', 'after'] as const) {
    it(`after a server restart, draws every frame of a stream that starts again ${when} the page reconnects`, async () => {
      const port = await freePort();
      let server = await serverOn(port);
      server.hub.openStream({ streamId: 'mic', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
      await page.goto(server.httpUrl);
      await until(async () => (await connection()) === 'open');
      publishMoving(server, 'mic', 0, 30);
      await until(async () => (await pageStream('mic'))?.lastSeq === 29);

      await server.close();
      await until(async () => (await connection()) !== 'open');
      server = await serverOn(port);
      const reopen = () => server.hub.openStream({ streamId: 'mic', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
      if (when === 'before') {
        reopen();
        publishMoving(server, 'mic', 0, 5); // seqs 0-4, published before the page is back
      }
      await until(async () => (await connection()) === 'open', 15_000);
      // The subscribe goes out after hello: wait until the server has it (a frame on another stream
      // arrives live), as a stream that opens in between is not the point here.
      server.hub.openStream({ streamId: 'barrier', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
      let b = 0;
      await until(async () => {
        publishMoving(server, 'barrier', b++, 1);
        return ((await pageStream('barrier'))?.lastSeq ?? -1) >= 0;
      });
      if (when === 'after') {
        reopen();
        publishMoving(server, 'mic', 0, 5);
      }
      publishMoving(server, 'mic', 5, 20);
      // The new run is seqs 0-24: all 25 are drawn, none twice.
      await until(async () => (await pageStream('mic'))?.lastSeq === 24);
      expect((await pageStream('mic'))?.points).toBe(25);
      expect((await pageStats(page)).duplicates).toBe(0);
      expect(pageErrors).toEqual([]);
    });
  }

  it('on a server that refuses the page (no token, or a wrong one) says so and how to fix it, not "cannot reach"', async () => {
    const server = await serverOn(0, { tokens: [{ token: 'sub-token-123', scopes: ['subscribe'] }] });
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, 'stage', 0, 3);
    const banner = page.locator('#banner');
    await page.goto(server.httpUrl);
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toContain('refused the connection');
    expect(await banner.textContent()).toContain('?token=');
    expect(await banner.textContent()).not.toContain('Cannot reach');
    await page.goto(`${server.httpUrl}?token=not-the-token`);
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toContain('token in the URL is unknown');
    await page.goto(`${server.httpUrl}?token=sub-token-123`);
    await until(async () => (await pageStream('stage'))?.points === 3);
    expect(await banner.isHidden()).toBe(true);
    // A server that is really gone still reads as unreachable.
    await server.close();
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toMatch(/Disconnected from the server/);
    expect(pageErrors).toEqual([]);
  });

  it('left open while hundreds of calls come and go, keeps at most 256 ended streams (the oldest go), and every live one', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'supervisor', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, 'supervisor', 0, 3);
    await page.goto(`${server.httpUrl}#stream=supervisor`);
    await until(async () => (await pageStream('supervisor'))?.points === 3);
    for (let c = 0; c < 300; c++) {
      const id = `call-${String(c).padStart(3, '0')}`;
      server.hub.openStream({ streamId: id, hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 8000 });
      publishMoving(server, id, 0, 2);
      server.hub.endStream(id, 'call ended');
    }
    server.hub.openStream({ streamId: 'late-call', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 8000 });
    publishMoving(server, 'late-call', 0, 2);
    await until(async () => (await pageStream('late-call'))?.points === 2);
    const ids = (await pageStreams(page)).map((s) => s.id);
    expect(ids).toHaveLength(256 + 2);
    expect(ids).toContain('supervisor');
    expect(ids).not.toContain('call-043');
    expect(ids).toContain('call-044');
    expect(ids).toContain('call-299');
    expect(await page.locator('#stream-select option').count()).toBe(256 + 2);
    expect(pageErrors).toEqual([]);
  });

  it('a bookmarked #stream= that starts after the page opened is shown when it appears, and the bookmark is kept meanwhile', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'backup-mic', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, 'backup-mic', 0, 3);
    await page.goto(`${server.httpUrl}#stream=stage`);
    await until(async () => (await pageStream('backup-mic'))?.points === 3);
    const selected = () => pageSelected(page);
    expect(await selected()).toBe('backup-mic'); // something to look at meanwhile
    expect(new URL(page.url()).hash).toBe('#stream=stage');
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, 'stage', 0, 3);
    await expect.poll(selected).toBe('stage');
    // The user's own choice then sticks, and goes into the URL.
    await page.selectOption('#stream-select', 'backup-mic');
    await expect.poll(() => new URL(page.url()).hash).toBe('#stream=backup-mic');
    publishMoving(server, 'stage', 3, 3);
    await page.waitForTimeout(200);
    expect(await selected()).toBe('backup-mic');
    expect(pageErrors).toEqual([]);
  });

  it('keeps the yellow banner of a degraded stream while frames still flow, until the stream says it is live again', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    server.hub.openStream({ streamId: 'booth', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    await page.goto(`${server.httpUrl}#stream=stage`);
    await until(async () => (await connection()) === 'open');
    publishMoving(server, 'stage', 0, 3);
    publishMoving(server, 'booth', 0, 3);
    // As the pipeline does under overload: the status, then frames keep coming (with a widened hop).
    const message = 'inference is slower than the audio: hop widened to 500 ms (1 window(s) skipped)';
    server.hub.publish('stage', { kind: 'status', streamId: 'stage', tMs: 3 * HOP_MS, state: 'degraded', message });
    publishMoving(server, 'stage', 3, 8);
    await until(async () => (await pageStream('stage'))?.points === 11);
    // Look at the other stream and come back: the stage stream is still degraded.
    await page.selectOption('#stream-select', 'booth');
    await page.selectOption('#stream-select', 'stage');
    await page.waitForTimeout(100);
    const banner = page.locator('#banner');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.getAttribute('data-kind')).toBe('warn');
    expect(await banner.textContent()).toContain(message);
    expect(await page.locator('#stream-state').textContent()).toBe('degraded');
    server.hub.publish('stage', { kind: 'status', streamId: 'stage', tMs: 11 * HOP_MS, state: 'live', message: 'inference keeps up with the audio again' });
    publishMoving(server, 'stage', 11, 2);
    await expect.poll(() => banner.isHidden()).toBe(true);
    expect(await page.locator('#stream-state').textContent()).toBe('live');
    expect(pageErrors).toEqual([]);
  });

  it('a stream that ends and starts again (its publisher reconnecting) reads live again, and its frames are drawn', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'call-1', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 8000 });
    await page.goto(`${server.httpUrl}#stream=call-1`);
    await until(async () => (await connection()) === 'open');
    publishMoving(server, 'call-1', 0, 3);
    server.hub.endStream('call-1', 'publisher stopped');
    await expect.poll(() => page.locator('#stream-state').textContent()).toBe('ended');
    server.hub.openStream({ streamId: 'call-1', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 8000 });
    await expect.poll(() => page.locator('#stream-state').textContent()).toBe('live');
    publishMoving(server, 'call-1', 3, 3);
    await until(async () => (await pageStream('call-1'))?.points === 6);
    expect(await page.locator('#stream-state').textContent()).toBe('live');
    expect(await page.locator('#stream-select option').first().textContent()).toBe('call-1');
    expect(pageErrors).toEqual([]);
  });

  it('long unbroken text from the server (a 128-character stream id, transcript, alert reason, status) never widens the page', async () => {
    const server = await serverOn();
    const id = 'x'.repeat(128);
    server.hub.openStream({ streamId: id, hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    publishMoving(server, id, 0, 4);
    server.hub.publish(id, transcriptEvent(id, 1000, 'y'.repeat(3000)));
    const alert = {
      streamId: id,
      tMs: 1000,
      alert: 'escalation' as const,
      reason: 'r'.repeat(2000),
      sustainedMs: 3000,
      velocity: { valence: -0.1, arousal: 0.1 },
    };
    server.hub.publish(id, { kind: 'alert', alert });
    server.hub.publish(id, { kind: 'status', streamId: id, tMs: 1000, state: 'degraded', message: 'm'.repeat(2000) });
    for (const [width, height] of [
      [1280, 720],
      [820, 1000],
    ] as const) {
      await page.setViewportSize({ width, height });
      await page.goto(server.httpUrl);
      await until(async () => (await pageStream(id))?.lines === 2);
      await expect.poll(() => page.locator('#alert').isVisible()).toBe(true);
      await page.waitForTimeout(100);
      const m = await page.evaluate(() => ({
        scrollW: document.documentElement.scrollWidth,
        innerW: window.innerWidth,
        conn: document.getElementById('conn')?.getBoundingClientRect().right ?? Infinity,
        button: document.getElementById('fullscreen')?.getBoundingClientRect().right ?? Infinity,
      }));
      expect(m.scrollW).toBeLessThanOrEqual(m.innerW);
      // The connection pill and the full-screen button are still on screen.
      expect(m.conn).toBeLessThanOrEqual(m.innerW);
      expect(m.button).toBeLessThanOrEqual(m.innerW);
    }
    await page.screenshot({ path: 'test-results/dashboard-long-text.png' });
    await page.setViewportSize({ width: 1280, height: 720 });
    expect(pageErrors).toEqual([]);
  });

  it('a call that starts while the page is cut off: every frame it published meanwhile is drawn', async () => {
    const server = await serverOn();
    server.hub.openStream({ streamId: 'stage', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 16000 });
    const proxy = await startFlakyProxy(server.port);
    try {
      await page.goto(`http://127.0.0.1:${proxy.port}/#stream=stage`);
      await until(async () => (await connection()) === 'open');
      publishMoving(server, 'stage', 0, 3);
      await until(async () => (await pageStream('stage'))?.points === 3);
      proxy.setRefusing(true);
      proxy.cut();
      await until(async () => (await connection()) === 'closed');
      server.hub.openStream({ streamId: 'call-7', hopMs: HOP_MS, windowMs: 1000, sampleRateHz: 8000 });
      publishMoving(server, 'call-7', 0, 6);
      publishMoving(server, 'stage', 3, 2);
      proxy.setRefusing(false);
      await until(async () => (await connection()) === 'open', 15_000);
      await until(async () => (await pageStream('call-7'))?.points === 6);
      await until(async () => (await pageStream('stage'))?.points === 5);
      expect((await pageStats(page)).duplicates).toBe(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
