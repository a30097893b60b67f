import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isSocketIoPath, isWsPath } from './upgrade-paths.js';

/**
 * Upgrades on any path the two transports do not answer would otherwise hang (node hands an upgrade
 * to its listeners and closes nothing): answer 404 and close. This holds during shutdown too — the
 * transports keep answering their own paths until the server is gone.
 */
export function refuseUnknownUpgrade(request: IncomingMessage, socket: Duplex): void {
  if (isWsPath(request.url) || isSocketIoPath(request.url)) return;
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}
