import type { IncomingHttpHeaders } from 'node:http';
import { WS_BEARER_PROTOCOL_PREFIX } from '@tether/protocol';
import { presentedToken } from '../auth/jwt-format.js';
import type { TokenSource } from '../hub/types.js';
import type { OriginVerdict } from './origin.js';

/** A token found in a handshake and where it came from (logged and shown in presence). */
export interface FoundToken {
  token: string;
  source: TokenSource;
}

/** The parts of a handshake request token extraction looks at. */
export interface HandshakeView {
  headers: IncomingHttpHeaders;
  /** Request URL (path and query). */
  url: string | undefined;
  origin: OriginVerdict;
  allowQueryToken: boolean;
}

/** Name of the cookie carrying an access token for browser clients. */
export const ACCESS_TOKEN_COOKIE = 'access_token';

/**
 * Socket.IO token sources, first found wins (docs/PROTOCOL.md "Socket.IO"): `auth.token` → `Authorization: Bearer`
 * → `access_token` cookie (allowed browser origin only) → `?token=` (only when enabled). Only presence
 * is decided here; the token's shape is checked when it is verified (`assertJwtShape`), as on every
 * path. Throws AUTH_INVALID for an `auth.token` that is not a string.
 */
export function extractSocketIoToken(auth: unknown, view: HandshakeView): FoundToken | undefined {
  const fromAuth = authObjectToken(auth);
  if (fromAuth !== undefined) return { token: fromAuth, source: 'auth' };
  return fromHeader(view) ?? fromCookie(view) ?? fromQuery(view);
}

/**
 * `/ws` token sources, first found wins: `Authorization` header → allowed cookie →
 * `Sec-WebSocket-Protocol: bearer.<token>` → `?token=` (only when enabled). Absent: the client
 * must send `{type:"authenticate"}` as its first frame.
 */
export function extractWsToken(view: HandshakeView): FoundToken | undefined {
  const fromProtocol = bearerSubprotocol(view.headers['sec-websocket-protocol']);
  return (
    fromHeader(view) ??
    fromCookie(view) ??
    (fromProtocol === undefined
      ? undefined
      : { token: fromProtocol.slice(WS_BEARER_PROTOCOL_PREFIX.length), source: 'subprotocol' }) ??
    fromQuery(view)
  );
}

/** The offered `bearer.<token>` subprotocol, if any (the whole protocol string, to echo back). */
export function bearerSubprotocol(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const raw of header.split(',')) {
    const protocol = raw.trim();
    if (protocol.startsWith(WS_BEARER_PROTOCOL_PREFIX) && protocol.length > WS_BEARER_PROTOCOL_PREFIX.length)
      return protocol;
  }
  return undefined;
}

/** Reads one cookie from a `Cookie` header without a dependency (RFC 6265 pairs, `;`-separated). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/** Throws AUTH_INVALID when `auth.token` is there but not a string: a malformed token, not a missing one. */
function authObjectToken(auth: unknown): string | undefined {
  if (typeof auth !== 'object' || auth === null) return undefined;
  return presentedToken((auth as Record<string, unknown>).token);
}

function fromHeader(view: HandshakeView): FoundToken | undefined {
  const header = view.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  return match?.[1] === undefined ? undefined : { token: match[1], source: 'header' };
}

function fromCookie(view: HandshakeView): FoundToken | undefined {
  // Only a browser page from an allowed origin may authenticate with its cookie; a request without
  // Origin is not a browser we can reason about, and a foreign origin was refused before this.
  if (view.origin !== 'allowed') return undefined;
  const token = nonEmpty(readCookie(view.headers.cookie, ACCESS_TOKEN_COOKIE));
  return token === undefined ? undefined : { token, source: 'cookie' };
}

function fromQuery(view: HandshakeView): FoundToken | undefined {
  if (!view.allowQueryToken || view.url === undefined) return undefined;
  const q = view.url.indexOf('?');
  if (q < 0) return undefined;
  const token = nonEmpty(new URLSearchParams(view.url.slice(q + 1)).get('token'));
  return token === undefined ? undefined : { token, source: 'query' };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
