import type { IncomingHttpHeaders } from 'node:http';
import { TetherError } from '@tether/protocol';

/**
 * The browser-origin policy for socket handshakes (cross-site WebSocket hijacking defence).
 *
 * - no `Origin` header: a non-browser client (native app, server). Allowed, but it may not use a
 *   cookie, since only a browser attaches cookies on its own;
 * - `Origin` present and allowed: a browser page we trust; every token source is open to it;
 * - `Origin` present and not allowed: refused outright with `ORIGIN_FORBIDDEN`, whatever token it
 *   carries, because a hostile page could otherwise ride the victim's cookie.
 */
export type OriginVerdict = 'absent' | 'allowed';

/**
 * Whether `origin` may open a socket. `allowed` empty means same origin as the `Host` header;
 * `*` allows every origin. Same origin compares host and port only: behind a TLS-terminating proxy
 * the server cannot know the scheme the browser used.
 */
export function isOriginAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false; // includes the opaque origin "null" (sandboxed frames, file://)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  if (allowed.length === 0) return host !== undefined && parsed.host === host.toLowerCase();
  return allowed.includes(parsed.origin);
}

/** Applies the policy to a handshake's headers; throws `TetherError('ORIGIN_FORBIDDEN')` when refused. */
export function checkOrigin(headers: IncomingHttpHeaders, allowed: readonly string[]): OriginVerdict {
  const origin = headers.origin;
  if (origin === undefined || origin === '') return 'absent';
  if (isOriginAllowed(origin, headers.host, allowed)) return 'allowed';
  throw new TetherError('ORIGIN_FORBIDDEN');
}
