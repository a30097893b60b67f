import type { IncomingHttpHeaders } from 'node:http';
import { TetherError } from '@tether/protocol';

/**
 * The browser-origin policy for socket handshakes (cross-site WebSocket hijacking defence) and for
 * the cookie-authenticated `/auth` routes (cross-site request forgery defence).
 *
 * - no `Origin` header: a non-browser client (native app, server). Allowed, but it may not use a
 *   cookie on a socket, since only a browser attaches cookies on its own;
 * - `Origin` present and allowed: a browser page we trust; every token source is open to it;
 * - `Origin` present and not allowed: refused outright with `ORIGIN_FORBIDDEN`, whatever token it
 *   carries, because a hostile page could otherwise ride the victim's cookie.
 */
export type OriginVerdict = 'absent' | 'allowed';

export interface OriginPolicy {
  /** `ALLOWED_ORIGINS`: empty means same origin only; `*` allows every origin. */
  allowed: readonly string[];
  /**
   * `PUBLIC_HOSTS`: the names this gateway is reached by. "Same origin" is judged by the `Host`
   * header, which a DNS-rebinding page controls (it points its own name at the gateway's address):
   * `Origin` = `Host` = `rebind.example` proves nothing unless `rebind.example` is one of these.
   * An entry `name` matches any port, `name:port` only that port.
   */
  publicHosts: readonly string[];
}

/** Whether a `Host` header value (`name[:port]`) is one of the public hosts. */
export function isPublicHost(host: string, publicHosts: readonly string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(`http://${host}`);
  } catch {
    return false;
  }
  if (parsed.username !== '' || parsed.pathname !== '/') return false;
  return publicHosts.some((entry) => {
    const e = entry.toLowerCase();
    return e === parsed.hostname || e === parsed.host;
  });
}

/**
 * Whether `origin` may open a socket or use the refresh cookie. With `ALLOWED_ORIGINS` empty, the
 * page must be of the same origin — same host and port as the `Host` header, and that host one of
 * `PUBLIC_HOSTS`. Same origin compares host and port only: behind a TLS-terminating proxy the server
 * cannot know the scheme the browser used.
 */
export function isOriginAllowed(origin: string, host: string | undefined, policy: OriginPolicy): boolean {
  const { allowed } = policy;
  if (allowed.includes('*')) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false; // includes the opaque origin "null" (sandboxed frames, file://)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  if (allowed.length > 0) return allowed.includes(parsed.origin);
  return host !== undefined && parsed.host === host.toLowerCase() && isPublicHost(host, policy.publicHosts);
}

/**
 * Applies the policy to a request's headers; throws `TetherError('ORIGIN_FORBIDDEN')` when refused.
 * Without `Origin`, a browser's `Sec-Fetch-Site: cross-site` (or `same-site`: a sibling subdomain is
 * another origin) is refused too: browsers that omit `Origin` on some requests still send it.
 */
export function checkOrigin(headers: IncomingHttpHeaders, policy: OriginPolicy): OriginVerdict {
  const origin = headers.origin;
  if (origin === undefined || origin === '') {
    const site = headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') throw new TetherError('ORIGIN_FORBIDDEN');
    return 'absent';
  }
  if (isOriginAllowed(origin, headers.host, policy)) return 'allowed';
  throw new TetherError('ORIGIN_FORBIDDEN');
}
