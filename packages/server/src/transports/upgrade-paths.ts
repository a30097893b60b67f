import { SOCKET_IO_PATH, WS_PATH } from '@tether/protocol';

/**
 * Which upgrade requests each transport answers, in one place: an upgrade nobody answers is never
 * closed, so the unknown-path guard must refuse exactly what the transports leave.
 */
export function isWsPath(url: string | undefined): boolean {
  const path = pathOf(url);
  return path === WS_PATH || path === WS_PATH + '/';
}

/** engine.io claims every URL under `<path>/` (its own prefix test); `/socket.io` itself is not one. */
export function isSocketIoPath(url: string | undefined): boolean {
  return (url ?? '').startsWith(SOCKET_IO_PATH + '/');
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
