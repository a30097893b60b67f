import type { PresenceEntry } from '@tether/server';
import type { ConnectionDto } from '../domain/dto.js';

/** A short, human name for a user agent ("Chrome on Linux"), for the dashboard's device column. */
export function describeDevice(userAgent: string | undefined): string {
  if (userAgent === undefined || userAgent.length === 0) return 'unknown';
  const ua = userAgent;
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Chrom(e|ium)\//.test(ua)
      ? 'Chrome'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /Safari\//.test(ua)
          ? 'Safari'
          : /^node|undici|axios|socket\.io|ws\//i.test(ua)
            ? 'Server client'
            : ua.split(/[\s/]/)[0]!;
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad|iOS/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : undefined;
  return os === undefined ? browser : `${browser} on ${os}`;
}

/** A live connection as the dashboard lists it (no user agent string, a device name instead). */
export function toConnectionDto(s: PresenceEntry): ConnectionDto {
  return {
    sessionId: s.sessionId,
    userId: s.userId,
    transport: s.transport,
    connectedAt: s.connectedAt,
    expiresAt: s.expiresAt,
    ip: s.ip,
    device: describeDevice(s.userAgent),
    isGuest: s.isGuest,
    node: s.node,
  };
}
