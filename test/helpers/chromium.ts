/**
 * The real browser the dashboard and browser-example tests drive: Debian's chromium (installed by
 * scripts/setup-system.sh), launched headless by playwright-core. The tests never download a browser.
 */
import { existsSync } from 'node:fs';

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
