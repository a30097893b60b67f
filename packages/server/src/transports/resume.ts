import type { ResumeRequest } from '@tether/protocol';
import { MAX_POSITION_CHARS } from '../history/streams.js';
import { readNarrow } from '../hub/narrow.js';
/** Channels a handshake may ask to resume (the hub's per-connection cap applies too). */
const MAX_RESUME_CHANNELS = 1000;

/**
 * The resume part of a handshake (Socket.IO `auth.position`/`auth.channels`/`auth.narrow`, `/ws`
 * authenticate frame fields or `?position=&channels=a,b&narrow=x,y`). Malformed values are ignored,
 * never fatal: a client with a bad position simply starts fresh (`recovered: false`), a bad
 * narrowing receives every scope granted.
 */
export function readResume(position: unknown, channels: unknown, narrow?: unknown): ResumeRequest | undefined {
  const out: ResumeRequest = {};
  if (typeof position === 'string' && position.length > 0 && position.length <= MAX_POSITION_CHARS)
    out.position = position;
  const list = typeof channels === 'string' ? channels.split(',') : Array.isArray(channels) ? channels : [];
  const names = list.filter((c): c is string => typeof c === 'string' && c.length > 0).slice(0, MAX_RESUME_CHANNELS);
  if (names.length > 0) out.channels = [...new Set(names)];
  const scopes = readNarrow(typeof narrow === 'string' ? narrow.split(',') : narrow);
  if (scopes !== undefined && narrow !== undefined) out.narrow = scopes;
  return out.position === undefined && out.channels === undefined && out.narrow === undefined ? undefined : out;
}

/** `position` and `channels` from a URL's query string. */
export function resumeFromQuery(url: string | undefined): ResumeRequest | undefined {
  const q = url?.indexOf('?') ?? -1;
  if (url === undefined || q < 0) return undefined;
  const params = new URLSearchParams(url.slice(q + 1));
  return readResume(
    params.get('position') ?? undefined,
    params.get('channels') ?? undefined,
    params.get('narrow') ?? undefined,
  );
}
