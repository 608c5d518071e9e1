/**
 * Caps on open TCP connections, the limit that comes before any request is read: a client that
 * opens sockets and never finishes a request would otherwise hold file descriptors and memory for
 * as long as the header timeout allows, however the per-key buckets are set. Beyond `perAddress`
 * connections from one remote address, or `total` in all, a new connection gets a 503 in the API's
 * error shape with Retry-After and is closed; the ones already open are untouched. A connection
 * that has sent no byte `silentMs` after it opened is closed: Node's header timeout only starts
 * with the first byte, so a silent socket would otherwise hold its place until the idle timeout
 * (minutes, since a non-streaming generation may write nothing for that long), and a few
 * addresses could fill the total.
 */
import type { Server, Socket } from 'node:net';
import { errorBody } from './errors.js';

export interface ConnectionLimits {
  /** Open connections from one remote address (default 64). */
  perAddress?: number;
  /** Open connections in all (default 1024). */
  total?: number;
  /** Milliseconds a new connection may stay silent before it is closed (default 10,000). */
  silentMs?: number;
}

export interface ConnectionCounter {
  /** Open connections now, in all and from `address`. */
  open(address?: string): number;
  /** Connections refused so far. */
  readonly refused: number;
}

/** The whole HTTP answer a refused connection gets before it is closed. */
function refusal(reason: string): string {
  const body = JSON.stringify(errorBody(503, reason, null, 'too_many_connections'));
  return `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export function limitConnections(server: Server, limits: ConnectionLimits = {}): ConnectionCounter {
  const perAddress = limits.perAddress ?? 64;
  const total = limits.total ?? 1024;
  const silentMs = limits.silentMs ?? 10_000;
  const byAddress = new Map<string, number>();
  let open = 0;
  let refused = 0;
  // A 'connection' listener cannot keep the socket from the HTTP server's own listener, so the
  // event is caught before it is emitted: a refused socket never reaches the HTTP parser.
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'connection') return emit(event, ...args);
    const socket = args[0] as Socket;
    const address = socket.remoteAddress ?? 'unknown';
    const mine = byAddress.get(address) ?? 0;
    if (open >= total || mine >= perAddress) {
      refused++;
      const reason = open >= total
        ? `the server has ${open} open connections, its limit; retry in a moment`
        : `${mine} connections from ${address} are open, the limit per address; close some or retry in a moment`;
      socket.on('error', () => {});
      socket.end(refusal(reason));
      // read and drop what the client sends until it closes its side, or a second has passed
      // (a client that never closes must not hold the socket, nor keep server.close() waiting)
      socket.resume();
      socket.once('end', () => socket.destroy());
      socket.setTimeout(1000, () => socket.destroy());
      return true;
    }
    open++;
    byAddress.set(address, mine + 1);
    // bytesRead counts at the handle, so it sees the bytes that the HTTP parser takes directly
    const silence = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, silentMs);
    silence.unref();
    socket.once('close', () => {
      clearTimeout(silence);
      open--;
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left > 0) byAddress.set(address, left);
      else byAddress.delete(address);
    });
    return emit(event, ...args);
  }) as typeof server.emit;
  return {
    open: (address) => (address === undefined ? open : byAddress.get(address) ?? 0),
    get refused() {
      return refused;
    },
  };
}
