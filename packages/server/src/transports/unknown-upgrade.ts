import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SOCKET_IO_PATH, WS_PATH } from '@tether/protocol';

/** Upgrades on any path other than the two transports' would otherwise hang: answer 404 and close. */
export function refuseUnknownUpgrade(request: IncomingMessage, socket: Duplex): void {
  const path = (request.url ?? '').split('?')[0] ?? '';
  if (path === WS_PATH || path === SOCKET_IO_PATH || path.startsWith(SOCKET_IO_PATH + '/')) return;
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}
