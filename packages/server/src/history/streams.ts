import { createHash } from 'node:crypto';
import { ROOT_SCOPE, grantCovers, scopeAncestry } from '@tether/protocol';
import type { PublishEnvelope } from '../hub/types.js';

/**
 * Stream names. One namespace per kind of addressee, so a user id, a scope and a channel that are
 * spelt alike stay apart: `u:<user id>`, `s:<scope path>` (`s:*` for the root), `c:<channel>`.
 */
export const userStream = (userId: string): string => `u:${userId}`;
export const scopeStream = (scope: string): string => `s:${scope}`;
export const channelStream = (channel: string): string => `c:${channel}`;

/** The sub-stream counts `HISTORY_SPREAD` may take (powers of two, so layouts are few and named). */
export const SPREADS = [1, 2, 4, 8, 16, 32, 64] as const;

/**
 * How scope streams are laid out. With a spread of 1 (the store, a standalone Redis) every scope has
 * one stream, `s:<scope>`. With a spread of N > 1 (a Redis Cluster: `HISTORY_SPREAD`), the streams
 * that receive every event below them — `*` and each top-level scope — are each N sub-streams
 * `s:<scope>#<k>/<N>`, and an event addressed to scope X goes to sub-stream `k = fnv1a(X) mod N` of
 * each of them (the other ancestors of X keep one stream). A reader of `*` or of a top-level grant
 * reads its N sub-streams together. Events to one scope always share a sub-stream, so each scope's
 * events keep their order; N sub-streams hash to N slots, so the root's appends spread over the
 * shards instead of all landing on one. `#` cannot occur in a scope, so no name is ambiguous.
 */
export class StreamLayout {
  static readonly SINGLE = new StreamLayout(1);
  /** scope → the streams its readers read; shared, so connections reading a scope share its names. */
  private readonly streamCache = new Map<string, readonly string[]>();

  constructor(readonly spread: number) {
    if (!(SPREADS as readonly number[]).includes(spread))
      throw new Error(`spread must be one of ${SPREADS.join(', ')}`);
  }

  /** Whether `scope`'s stream is split into sub-streams in this layout. */
  spreads(scope: string): boolean {
    return this.spread > 1 && (scope === ROOT_SCOPE || !scope.includes('/'));
  }

  /** The sub-stream index of events addressed to `scope` (FNV-1a, 32 bits, of its UTF-16 units). */
  bucket(scope: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < scope.length; i++) {
      h ^= scope.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return (h >>> 0) % this.spread;
  }

  /**
   * The streams a reader of `scope` reads: its one stream, or its sub-streams. The array (and its
   * strings) is shared by every caller: thousands of connections reading one scope hold one copy
   * of its stream names.
   */
  scopeStreams(scope: string): readonly string[] {
    let names = this.streamCache.get(scope);
    if (names === undefined) {
      names = this.spreads(scope)
        ? Array.from({ length: this.spread }, (_, k) => subStream(scope, k, this.spread))
        : [scopeStream(scope)];
      if (this.streamCache.size >= 10_000) this.streamCache.clear();
      this.streamCache.set(scope, names);
    }
    return names;
  }

  /**
   * The streams an event is appended to, each once: its users, its scopes and every ancestor of each
   * (so a grant reads exactly one stream — or one sub-stream set —, and an admin holding `*` reads
   * `*`'s), its channels.
   */
  streamsOf(envelope: PublishEnvelope): string[] {
    const out = new Set<string>();
    for (const user of envelope.to.users) out.add(userStream(user));
    for (const scope of envelope.to.scopes) {
      const k = this.spread > 1 ? this.bucket(scope) : 0;
      for (const grant of scopeAncestry(scope)) {
        out.add(this.spreads(grant) ? subStream(grant, k, this.spread) : scopeStream(grant));
      }
    }
    for (const channel of envelope.to.channels) out.add(channelStream(channel));
    return [...out];
  }

  /** The streams a connection reads: its user's, those of each scope it reads, one per joined channel. */
  streamsRead(userId: string, scopeReads: readonly string[], channels: Iterable<string>): string[] {
    const out = [userStream(userId)];
    for (const scope of scopeReads) out.push(...this.scopeStreams(scope));
    for (const channel of channels) out.push(channelStream(channel));
    return out;
  }

  /** The first part of a position in this layout: positions of another layout are not continued. */
  get positionTag(): string {
    return this.spread === 1 ? VERSION : `${VERSION}s${this.spread}`;
  }
}

const subStream = (scope: string, k: number, spread: number): string => `s:${scope}#${k}/${spread}`;

/** The scope of a scope stream's name (`s:*#3/8` → `*`), or undefined for another kind of stream. */
export function streamScope(stream: string): string | undefined {
  if (!stream.startsWith('s:')) return undefined;
  const hash = stream.indexOf('#', 2);
  return hash < 0 ? stream.slice(2) : stream.slice(2, hash);
}

/**
 * The scopes a connection reads: its grants (or the narrowed set it asked for) without those another
 * one covers — `ke` makes `ke/muranga` redundant, since every event below `ke/muranga` is in `s:ke`.
 */
export function readScopes(scopes: readonly string[]): readonly string[] {
  const unique = [...new Set(scopes)];
  const reads = unique.filter((scope) => !unique.some((other) => other !== scope && grantCovers(other, scope)));
  // Usually none is dropped (no grant covers another): `scopes` itself, not a copy a connection would hold.
  return reads.length === scopes.length ? scopes : reads;
}

/**
 * A stream's key in a position: 8 base64url characters of its name's SHA-256 (names may be long).
 * Keys of streams many connections read (scopes, channels) are kept, so every reader shares one
 * string and one hash; a user's stream is read by that user's connections only, so its key is not.
 */
export function streamKey(stream: string): string {
  if (stream.startsWith('u:')) return hashKey(stream);
  let key = sharedKeys.get(stream);
  if (key === undefined) {
    key = hashKey(stream);
    if (sharedKeys.size >= SHARED_KEYS_MAX) sharedKeys.clear();
    sharedKeys.set(stream, key);
  }
  return key;
}

const sharedKeys = new Map<string, string>();
const SHARED_KEYS_MAX = 10_000;

function hashKey(stream: string): string {
  return createHash('sha256').update(stream).digest('base64url').slice(0, KEY_CHARS);
}

const KEY_CHARS = 8;
/** Epochs are 8 base64url characters (48 random bits); this one stands for `NO_EPOCH` on the wire. */
export const EPOCH_CHARS = 8;
const NO_EPOCH_WIRE = '0'.repeat(EPOCH_CHARS);
const VERSION = '2';
/**
 * Longest position accepted from a client: 1 + grants + channels entries (a connection may join at
 * most 1000 channels), a spread grant (`*`, top-level) counting HISTORY_SPREAD entries, of about 20
 * characters each. A longer one (dozens of top-level grants at a large spread) is not decoded: that
 * connection resumes with `recovered: false`, never a gap.
 */
export const MAX_POSITION_CHARS = 32 * 1024;

/** A decoded position: stream key → cursor. */
export type PositionCursors = Map<string, { epoch: string; offset: number }>;

/**
 * Encodes a connection's cursors as its position: `2.` (`2s<N>.` in a layout spread over N
 * sub-streams) then one entry per stream, `.`-separated,
 * each the stream's key, its epoch and its offset in base 36 — URL-safe, about 20 characters a
 * stream, opaque to clients.
 */
export function encodePosition(
  entries: Iterable<{ key: string; epoch: string; offset: number }>,
  layout: StreamLayout = StreamLayout.SINGLE,
): string {
  let out = layout.positionTag;
  for (const { key, epoch, offset } of entries) out += encodePositionEntry(key, epoch, offset);
  return out;
}

/** One stream's part of a position (`.` included): what `encodePosition` appends per entry. */
export function encodePositionEntry(key: string, epoch: string, offset: number): string {
  return '.' + key + (epoch === '' ? NO_EPOCH_WIRE : epoch) + offset.toString(36);
}

/** The length of `encodePositionEntry(key, epoch, offset)`. */
export function positionEntryLength(key: string, epoch: string, offset: number): number {
  return 1 + key.length + (epoch === '' ? EPOCH_CHARS : epoch.length) + base36Digits(offset);
}

/**
 * Writes `encodePositionEntry(key, epoch, offset)` into `into` at `at` (one byte per character, all
 * of them URL-safe) and returns where it ends: a recipient's frame gets its position without a string
 * made, kept and thrown away per delivery.
 */
export function writePositionEntry(into: Uint8Array, at: number, key: string, epoch: string, offset: number): number {
  into[at++] = DOT;
  at = writeAscii(into, at, key);
  at = writeAscii(into, at, epoch === '' ? NO_EPOCH_WIRE : epoch);
  const end = at + base36Digits(offset);
  let rest = offset;
  for (let i = end - 1; i >= at; i--) {
    const digit = rest % 36;
    into[i] = digit < 10 ? 48 + digit : 87 + digit; // '0'…'9', 'a'…'z'
    rest = (rest - digit) / 36;
  }
  return end;
}

/** Writes one-byte characters (a position's tag, keys, epochs) into `into` at `at`; returns the end. */
export function writeAscii(into: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) into[at + i] = text.charCodeAt(i);
  return at + text.length;
}

const DOT = 0x2e;

function base36Digits(offset: number): number {
  let digits = 1;
  for (let rest = offset; rest >= 36; rest = Math.floor(rest / 36)) digits++;
  return digits;
}

/**
 * The cursors of a position, or undefined when it is not one of ours (an old format, garbage, or a
 * position made under another stream layout: its streams are not the ones read now).
 */
export function decodePosition(
  position: string,
  layout: StreamLayout = StreamLayout.SINGLE,
): PositionCursors | undefined {
  if (position.length > MAX_POSITION_CHARS) return undefined;
  const parts = position.split('.');
  if (parts[0] !== layout.positionTag) return undefined;
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
