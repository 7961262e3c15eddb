/** Polling waits for tests: resolve once `cond` holds, throw if it has not within `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, pollMs = 10): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** {@link until} for a browser page: each check is a round trip into the page, so poll every 50 ms, for 10 s by default. */
export const untilPage = (cond: () => Promise<boolean>, ms = 10_000): Promise<void> => until(cond, ms, 50);
