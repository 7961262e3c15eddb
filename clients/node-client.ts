/**
 * The client for Node: everything in ./client.ts (the browser-safe {@link CircumplexClient} and the
 * protocol types), with the `ws` package as the default transport, which adds what browsers lack:
 * upgrade headers (`Authorization: Bearer …`), the server's pings as liveness, the HTTP status of a
 * refused upgrade (so a 401 is not retried) and a hard `terminate()` of a dead connection.
 *
 * `circumplex/client` resolves to this file in Node and to ./client.ts elsewhere (browser bundles).
 *
 * ```ts
 * import { CircumplexClient } from 'circumplex/client';
 * const client = CircumplexClient.connect('ws://localhost:8787', { streamIds: ['mic'] });
 * for await (const frame of client) if (frame.type === 'affect') console.log(frame.label);
 * ```
 */
import WebSocket from 'ws';
import { setDefaultTransport, type SocketTransport } from './client.js';

export * from './client.js';

/** The `ws` package as a {@link SocketTransport}: headers on the upgrade, pings reported, hard terminate. */
export const wsTransport: SocketTransport = (url, protocol, headers, events) => {
  const ws = new WebSocket(url, protocol, { headers: { ...headers } });
  ws.on('open', () => events.open());
  ws.on('ping', () => events.ping());
  ws.on('message', (data, isBinary) => events.message(isBinary ? null : (data as Buffer).toString('utf8')));
  // A refused upgrade (401 no token, 403 no subscribe scope, …): the server says why in the body;
  // put that in the error, after the status ws itself would report ("Unexpected server response: 401").
  ws.on('unexpected-response', (_req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const body = Buffer.concat(chunks).toString('utf8');
      // Not JSON (say an HTML page from a web server at that address): its start, on one line.
      let why = body.replace(/\s+/g, ' ').trim().slice(0, 200);
      try {
        const parsed = JSON.parse(body) as { error?: unknown };
        if (typeof parsed.error === 'string') why = parsed.error;
      } catch {
        // keep the text
      }
      events.error(new Error(`Unexpected server response: ${res.statusCode ?? 0}${why ? ` (${why})` : ''}`));
      ws.terminate();
    };
    // A body that never ends must not hold the refusal up.
    const timer = setTimeout(finish, 2000);
    res.on('data', (chunk: Buffer) => {
      if (size < 4096) chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', finish);
    res.on('error', finish);
    res.on('close', finish);
  });
  ws.on('error', (err) => events.error(err));
  ws.on('close', (code) => events.close(code));
  return {
    get protocol() {
      return ws.protocol;
    },
    get readyState() {
      return ws.readyState;
    },
    send: (text) => ws.send(text),
    close: (code) => ws.close(code),
    terminate: () => ws.terminate(),
    seesPings: true,
    detach: () => {
      ws.removeAllListeners();
      ws.on('error', () => undefined); // a close during CONNECTING emits an error nobody waits for
    },
  };
};

setDefaultTransport(wsTransport);
