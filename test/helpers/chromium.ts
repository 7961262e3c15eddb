/**
 * The real browser the dashboard and browser-example tests drive: Debian's chromium (installed by
 * scripts/setup-system.sh), launched headless by playwright-core. The tests never download a browser.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Headless flags: no GPU, no QUIC, no first-run, background networking, component updates or sync. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** CI installs chromium (scripts/setup-system.sh); without it a browser test fails loudly (this throws, naming what to run) rather than skip. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: run scripts/setup-system.sh (apt-get install chromium); the browser tests never download a browser`);
}

/**
 * Launches headless chromium with a fresh profile folder (the caller removes `userDataDir` when done)
 * and returns its first page, whose uncaught errors go into `pageErrors`.
 */
export async function launchChromium(
  viewport: { width: number; height: number },
  pageErrors: string[],
): Promise<{ context: BrowserContext; page: Page; userDataDir: string }> {
  requireChromium();
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { context, page, userDataDir };
}
