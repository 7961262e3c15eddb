import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Authenticator } from '../../src/server/auth.js';
import { closeReason, createContext } from '../../src/server/context.js';
import { StreamHub } from '../../src/server/hub.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import type { AffectServerOptions } from '../../src/server/options.js';
import { CLOSE_CODES } from '../../core/protocol.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';

describe('closeReason (the reason label of circumplex_connections_closed_total)', () => {
  it('names every close code the server uses, as docs/server.md lists them', () => {
    const doc = readFileSync(path.resolve(import.meta.dirname, '..', '..', 'docs', 'server.md'), 'utf8');
    const row = doc.split('\n').find((l) => l.startsWith('| `circumplex_connections_closed_total`')) ?? '';
    for (const [name, code] of Object.entries(CLOSE_CODES)) {
      const reason = closeReason(code);
      expect(reason, `${name} (${code})`).not.toMatch(/^\d+$/);
      expect(row, `${name} (${code}) → ${reason}`).toContain(reason);
    }
  });
});

describe('ServerContext.streamLog', () => {
  it('caches a stream logger only while the hub has the stream open, so refused and ended stream ids leave nothing behind', () => {
    // Every ingest start refused over capacity logged through a cached child logger of a stream that
    // never opened, and it was never forgotten: the heap grew ~3 KB per refusal (33 MB after 9000).
    const hub = new StreamHub();
    const ctx = createContext({
      o: {} as AffectServerOptions,
      log: pino({ level: 'silent' }),
      hub,
      metrics: new ServerMetrics(),
      auth: new Authenticator({ tokens: [], allowedOrigins: undefined }),
      sessionId: 'test',
    });
    // Never opened (refused): a fresh logger each time, none kept.
    expect(ctx.streamLog('refused')).not.toBe(ctx.streamLog('refused'));
    expect(ctx.streamLog('refused').bindings()).toMatchObject({ streamId: 'refused' });
    // Open: one logger, kept until the stream ends.
    hub.openStream({ streamId: 'live', hopMs: 250, windowMs: 1000, sampleRateHz: 16000 });
    const live = ctx.streamLog('live');
    expect(ctx.streamLog('live')).toBe(live);
    hub.endStream('live');
    ctx.forgetStreamLog('live');
    // Ended: a late log line (a pipeline flushing after the end) does not cache it again.
    expect(ctx.streamLog('live')).not.toBe(live);
    expect(ctx.streamLog('live')).not.toBe(ctx.streamLog('live'));
  });
});
