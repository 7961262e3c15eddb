/**
 * Readers of the dashboard's test window (`window.circumplex`, clients/dashboard/app.js) for the
 * browser tests, so each test file does not declare its own copy of the shape and the casts.
 */
import type { Page } from 'playwright-core';

/** One stream as the page holds it. */
export interface PageStream {
  id: string;
  lastSeq: number;
  points: number;
  lines: number;
  state: string | null;
  error: string | null;
}

/** `window.circumplex` as app.js defines it. */
export interface DashboardWindow {
  circumplex: {
    readonly connection: string;
    readonly selected: string;
    readonly stats: { duplicates: number; reconnects: number };
    streams(): PageStream[];
    pointPixel(): { x: number; y: number } | null;
    trailLength(): number;
    termCount(): number;
    dominancePoints(): number;
  };
}

// Each function body runs in the browser: it may use types from here, nothing else from this module.
export const pageStreams = (page: Page): Promise<PageStream[]> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.streams());
export const pageStream = async (page: Page, id: string): Promise<PageStream | undefined> => (await pageStreams(page)).find((s) => s.id === id);
export const pageConnection = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.connection);
export const pageSelected = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.selected);
export const pageStats = (page: Page): Promise<{ duplicates: number; reconnects: number }> =>
  page.evaluate(() => (window as unknown as DashboardWindow).circumplex.stats);
export const pagePointPixel = (page: Page): Promise<{ x: number; y: number } | null> =>
  page.evaluate(() => (window as unknown as DashboardWindow).circumplex.pointPixel());
export const pageTrailLength = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.trailLength());
export const pageTermCount = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.termCount());
export const pageDominancePoints = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as DashboardWindow).circumplex.dominancePoints());
