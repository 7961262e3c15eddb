/**
 * `/v1/stream`: one subscriber connection. Sends `hello` (the streams the token may see), takes
 * `subscribe` / `unsubscribe` (with resume), enforces the message rate limit (4029) and protocol
 * errors (1002); delivery, coalescing and the slow-consumer close live in {@link Subscriber}.
 */
import type { RawData, WebSocket } from 'ws';
import { CLOSE_CODES, ClientMessageSchema, PROTOCOL_VERSION } from '../../../core/protocol.js';
import type { Grant } from '../auth.js';
import { type ServerContext, TokenBucket, toText } from '../context.js';
import { Subscriber, closeSlow } from '../subscriber.js';

/**
 * Most explicit stream ids one connection may subscribe to (`*` covers any number). Unbounded, a
 * client sending 256 new ids per message within the rate limit grew the server's heap by about
 * 16 MB every 20 s, for as long as it stayed connected.
 */
export const MAX_SUBSCRIBED_IDS = 1024;

/**
 * A subscribe this soon after `hello` also gets, from their first message, the streams that opened
 * after the hello (the client could not know them, so could not resume them): what they published
 * during the hello → subscribe round trip used to be lost. Later subscribes are live from then on.
 */
export const NEW_STREAM_REPLAY_MS = 10_000;

/** Handles accepted `/v1/stream` sockets. */
export function createSubscriberHandler(ctx: ServerContext): (ws: WebSocket, grant: Grant, url: URL) => void {
  const { o, hub, log, subscribers } = ctx;

  const subscribe = (sub: Subscriber, ids: string[], resumeFrom: Record<string, number> | undefined, since?: { at: number; ids: Set<string> }): void => {
    let refused = 0;
    for (const id of ids) {
      if (id === '*') sub.wildcard = true;
      else if (!sub.grant.canSubscribe(id))
        sub.sendControl({ type: 'error', code: 'AFFECT_ERR_AUTH', message: `token may not subscribe to stream "${id}"`, recoverable: true, streamId: id });
      else if (sub.ids.size < MAX_SUBSCRIBED_IDS || sub.ids.has(id)) sub.ids.add(id);
      else refused++;
    }
    if (refused > 0) {
      sub.sendControl({
        type: 'error',
        code: 'AFFECT_ERR_PROTOCOL',
        message: `not subscribed to ${refused} of the stream ids: a connection may subscribe to at most ${MAX_SUBSCRIBED_IDS} ids; unsubscribe some first, or subscribe to "*"`,
        recoverable: true,
      });
    }
    for (const [id, from] of Object.entries(resumeFrom ?? {})) {
      if (sub.wants(id)) sub.resume(hub, id, from);
    }
    if (since && Date.now() - since.at <= NEW_STREAM_REPLAY_MS) {
      const asked = ids.includes('*') ? hub.streams().map((st) => st.streamId) : ids;
      for (const id of asked) {
        if (since.ids.has(id) || Object.hasOwn(resumeFrom ?? {}, id) || !sub.wants(id) || hub.stream(id) === undefined) continue;
        since.ids.add(id); // once
        sub.resume(hub, id, -1);
      }
    }
  };

  return (ws, grant, url) => {
    ctx.track(ws, 'stream');
    const sub = new Subscriber(ws, grant, o.delivery, ctx.metrics, (s, why) => {
      log.warn({ why }, 'closing slow subscriber');
      closeSlow(s, o.delivery.slowCloseGraceMs);
    });
    subscribers.add(sub);
    ws.once('close', () => {
      sub.markClosed();
      subscribers.delete(sub);
    });
    const bucket = new TokenBucket(o.streamRateLimit);
    const visible = hub.streams().filter((s) => grant.canSubscribe(s.streamId));
    sub.sendControl({
      type: 'hello',
      version: PROTOCOL_VERSION,
      sessionId: ctx.sessionId,
      hopMs: visible[0]?.hopMs ?? o.ingestStreamTiming.hopMs,
      streams: visible,
    });
    const sinceHello = { at: Date.now(), ids: new Set(visible.map((st) => st.streamId)) };
    // `?streams=a,b` or `?streams=*` subscribes at connect (for tools that cannot send a message).
    const q = url.searchParams.get('streams');
    if (q) subscribe(sub, q.split(',').filter(Boolean), undefined);

    ws.on('message', (data: RawData, isBinary: boolean) => {
      ctx.alive.set(ws, true);
      if (sub.closed) return;
      if (!bucket.take()) return ctx.rateLimited(ws, 'stream');
      const fail = (message: string) => {
        sub.sendControl({ type: 'error', code: 'AFFECT_ERR_PROTOCOL', message, recoverable: false });
        sub.markClosed();
        ws.close(CLOSE_CODES.protocolError, 'protocol error');
      };
      if (isBinary) return fail('binary frames are not accepted on /v1/stream; send JSON subscribe/unsubscribe');
      let json: unknown;
      try {
        json = JSON.parse(toText(data));
      } catch {
        return fail('message is not valid JSON');
      }
      const parsed = ClientMessageSchema.safeParse(json);
      if (!parsed.success) {
        return fail(
          `not a client message (subscribe | unsubscribe): ${parsed.error.issues
            .slice(0, 3)
            .map((i) => `${i.path.join('.') || 'message'}: ${i.message}`)
            .join('; ')}`,
        );
      }
      const msg = parsed.data;
      if (msg.type === 'subscribe') subscribe(sub, msg.streamIds, msg.resumeFrom, sinceHello);
      else
        for (const id of msg.streamIds) {
          if (id === '*') sub.wildcard = false;
          else sub.ids.delete(id);
        }
    });
  };
}
