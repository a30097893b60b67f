import { createHash } from 'node:crypto';
import { grantCovers, scopeAncestry } from '@tether/protocol';
import type { PublishEnvelope } from '../hub/types.js';

/**
 * Stream names. One namespace per kind of addressee, so a user id, a scope and a channel that are
 * spelt alike stay apart: `u:<user id>`, `s:<scope path>` (`s:*` for the root), `c:<channel>`.
 */
export const userStream = (userId: string): string => `u:${userId}`;
export const scopeStream = (scope: string): string => `s:${scope}`;
export const channelStream = (channel: string): string => `c:${channel}`;

/**
 * The streams an event is appended to, each once: its users, its scopes and every ancestor of each
 * (so a grant reads exactly one stream, and an admin holding `*` reads one), its channels.
 */
export function streamsOf(envelope: PublishEnvelope): string[] {
  const out = new Set<string>();
  for (const user of envelope.to.users) out.add(userStream(user));
  for (const scope of envelope.to.scopes) for (const grant of scopeAncestry(scope)) out.add(scopeStream(grant));
  for (const channel of envelope.to.channels) out.add(channelStream(channel));
  return [...out];
}

/** The streams a connection reads: its user's, one per scope it reads, one per joined channel. */
export function streamsRead(userId: string, scopeReads: readonly string[], channels: Iterable<string>): string[] {
  const out = [userStream(userId)];
  for (const scope of scopeReads) out.push(scopeStream(scope));
  for (const channel of channels) out.push(channelStream(channel));
  return out;
}

/**
 * The scopes a connection reads: its grants (or the narrowed set it asked for) without those another
 * one covers — `ke` makes `ke/muranga` redundant, since every event below `ke/muranga` is in `s:ke`.
 */
export function readScopes(scopes: readonly string[]): string[] {
  const unique = [...new Set(scopes)];
  return unique.filter((scope) => !unique.some((other) => other !== scope && grantCovers(other, scope)));
}

/** A stream's key in a position: 8 base64url characters of its name's SHA-256 (names may be long). */
export function streamKey(stream: string): string {
  return createHash('sha256').update(stream).digest('base64url').slice(0, KEY_CHARS);
}

const KEY_CHARS = 8;
/** Epochs are 8 base64url characters (48 random bits); this one stands for `NO_EPOCH` on the wire. */
export const EPOCH_CHARS = 8;
const NO_EPOCH_WIRE = '0'.repeat(EPOCH_CHARS);
const VERSION = '2';
/**
 * Longest position accepted from a client: 1 + grants + channels entries (a connection may join at
 * most 1000 channels) of about 20 characters each.
 */
export const MAX_POSITION_CHARS = 32 * 1024;

/** A decoded position: stream key → cursor. */
export type PositionCursors = Map<string, { epoch: string; offset: number }>;

/**
 * Encodes a connection's cursors as its position: `2.` then one entry per stream, `.`-separated,
 * each the stream's key, its epoch and its offset in base 36 — URL-safe, about 20 characters a
 * stream, opaque to clients.
 */
export function encodePosition(entries: Iterable<{ key: string; epoch: string; offset: number }>): string {
  let out = VERSION;
  for (const { key, epoch, offset } of entries) {
    out += '.' + key + (epoch === '' ? NO_EPOCH_WIRE : epoch) + offset.toString(36);
  }
  return out;
}

/** The cursors of a position, or undefined when it is not one of ours (an old format, garbage). */
export function decodePosition(position: string): PositionCursors | undefined {
  if (position.length > MAX_POSITION_CHARS) return undefined;
  const parts = position.split('.');
  if (parts[0] !== VERSION) return undefined;
  const out: PositionCursors = new Map();
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (!ENTRY.test(part)) return undefined;
    const epoch = part.slice(KEY_CHARS, KEY_CHARS + EPOCH_CHARS);
    const offset = parseInt(part.slice(KEY_CHARS + EPOCH_CHARS), 36);
    if (!Number.isSafeInteger(offset)) return undefined;
    out.set(part.slice(0, KEY_CHARS), { epoch: epoch === NO_EPOCH_WIRE ? '' : epoch, offset });
  }
  return out;
}

const ENTRY = new RegExp(`^[A-Za-z0-9_-]{${KEY_CHARS + EPOCH_CHARS}}[0-9a-z]{1,11}$`);
