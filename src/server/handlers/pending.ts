/**
 * A cap on the connections one remote address holds open before sending a whole request (headers
 * of a GET or an upgrade). Node drops such a connection only after `headersTimeout` (60 s), with no
 * limit on how many: one client opening idle or trickling connections (slowloris) could take every
 * file descriptor of the process (its open-files limit), after which no subscriber, publisher or
 * health check could connect and the backplane could not reconnect. A real client sends its request
 * at once, so even many clients behind one proxy address hold few such connections at a time.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { ServerContext } from '../context.js';

/** Default of `maxPendingConnectionsPerAddress`: most connections one remote address may hold open before their first request is complete. */
export const DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS = 256;

/** Installs the cap on `server` (plain or TLS: a TLS request's socket is matched to its TCP socket). */
export function limitPendingConnections(server: http.Server, ctx: Pick<ServerContext, 'metrics' | 'o'>): void {
  const cap = ctx.o.maxPendingConnectionsPerAddress ?? DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS;
  const pending = new Map<string, number>();
  const addressOf = new WeakMap<Socket, string>();
  const settle = (sock: Socket): void => {
    const address = addressOf.get(sock);
    if (address === undefined) return;
    addressOf.delete(sock);
    const n = (pending.get(address) ?? 1) - 1;
    if (n <= 0) pending.delete(address);
    else pending.set(address, n);
  };
  server.on('connection', (sock: Socket) => {
    const address = sock.remoteAddress ?? '';
    const n = (pending.get(address) ?? 0) + 1;
    if (n > cap) {
      ctx.metrics.refused.inc({ reason: 'pending-connections' });
      sock.destroy();
      return;
    }
    pending.set(address, n);
    addressOf.set(sock, address);
    sock.once('close', () => settle(sock));
  });
  const requested = (req: http.IncomingMessage): void => {
    const sock = req.socket as Socket & { _parent?: Socket };
    settle(sock._parent ?? sock);
  };
  server.on('request', requested);
  server.on('upgrade', requested);
}
