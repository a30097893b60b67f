import { normalizeScope } from '@tether/protocol';
import { isNormalizedScopes, principalWith } from '../auth/claims.js';
import type { Principal } from '../auth/types.js';
import { channelAllowed } from './channels.js';
import type { HubSession } from './session.js';
import type { TransportKind } from './types.js';

/**
 * key → sessions; keys with none are dropped so the map only holds live keys. A key with one
 * value holds it directly and gets a Set from the second: most users and refresh families have one
 * connection, and a one-entry Set costs ~150 bytes (measured with 5,000 idle connections). Values
 * must not themselves be Sets.
 */
export class SetIndex<V> {
  private readonly map = new Map<string, V | Set<V>>();

  add(key: string, value: V): void {
    const held = this.map.get(key);
    if (held === undefined) this.map.set(key, value);
    else if (held instanceof Set) held.add(value);
    else if (held !== value) this.map.set(key, new Set([held, value]));
  }

  delete(key: string, value: V): void {
    const held = this.map.get(key);
    if (held === undefined) return;
    if (!(held instanceof Set)) {
      if (held === value) this.map.delete(key);
      return;
    }
    held.delete(value);
    // Back to one value held directly, so a key's memory follows its current count.
    if (held.size === 1) this.map.set(key, held.values().next().value as V);
  }

  /** Calls `visit` with each of the key's values, allocating nothing (routing: once per publish). */
  forEach(key: string, visit: (value: V) => void): void {
    const held = this.map.get(key);
    if (held === undefined) return;
    if (held instanceof Set) for (const value of held as Set<V>) visit(value);
    else visit(held);
  }

  /**
   * The key's values. A key with one value answers a new one-value Set; callers must not keep it
   * expecting later changes (the hot path uses `forEach`).
   */
  get(key: string): ReadonlySet<V> | undefined {
    const held = this.map.get(key);
    if (held === undefined) return undefined;
    return held instanceof Set ? (held as Set<V>) : new Set([held]);
  }

  count(key: string): number {
    const held = this.map.get(key);
    return held === undefined ? 0 : held instanceof Set ? held.size : 1;
  }

  /** Number of distinct keys. */
  get size(): number {
    return this.map.size;
  }
}

/**
 * For a principal the hub takes over at register: `scopes` itself when already normalized and
 * de-duplicated (a verified token's are, see `scopesOf`), else `normalizeGrants`' copy. Grants
 * coming from elsewhere (grant updates) are copied, since their caller still holds them.
 */
export function adoptGrants(scopes: string[]): string[] {
  return isNormalizedScopes(scopes) ? scopes : normalizeGrants(scopes);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Normalized, de-duplicated scope grants; invalid entries are dropped. */
export function normalizeGrants(scopes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const scope of scopes) {
    const normalized = normalizeScope(scope);
    if (normalized !== undefined) out.add(normalized);
  }
  return [...out];
}

/**
 * Every way the hub finds sessions: by id, user, scope grant, channel and refresh family. Routing
 * reads these maps directly, so its cost is the number of matching sessions, never the total.
 */
export class SessionIndexes {
  readonly byId = new Map<string, HubSession>();
  readonly byUser = new SetIndex<HubSession>();
  readonly byScope = new SetIndex<HubSession>();
  readonly byChannel = new SetIndex<HubSession>();
  readonly byFamily = new SetIndex<HubSession>();
  private readonly transports: Record<TransportKind, number> = { 'socket.io': 0, ws: 0 };
  private guests = 0;

  add(session: HubSession): void {
    this.byId.set(session.id, session);
    this.byUser.add(session.userId, session);
    this.indexPrincipal(session);
    this.transports[session.transport]++;
    if (session.isGuest) this.guests++;
  }

  remove(session: HubSession): void {
    if (this.byId.get(session.id) !== session) return;
    this.byId.delete(session.id);
    this.byUser.delete(session.userId, session);
    this.unindexPrincipal(session);
    for (const channel of session.channels) this.byChannel.delete(channel, session);
    session.clearChannels();
    this.transports[session.transport]--;
    if (session.isGuest) this.guests--;
  }

  /**
   * Makes `principal` the session's when it grants exactly what the current one does — the usual
   * reauth, a fresh token for the same grants: the indexes, the scopes read, the channels joined and
   * the streams stay as they are. False, changing nothing, when the scopes, the channel rights or
   * the refresh family differ: `replacePrincipal` then.
   */
  renewPrincipal(session: HubSession, principal: Principal): boolean {
    const current = session.principal;
    if (
      principal.sessionFamilyId !== current.sessionFamilyId ||
      !sameStrings(principal.scopes, current.scopes) ||
      !sameStrings(principal.channels, current.channels)
    )
      return false;
    session.renew(principal);
    return true;
  }

  /**
   * Replaces the session's principal (same user): scope grants and family are re-indexed and
   * channel subscriptions the new patterns no longer allow are dropped. Returns the dropped channels.
   */
  replacePrincipal(session: HubSession, principal: Principal): string[] {
    this.unindexPrincipal(session);
    session.principal = principalWith(principal, normalizeGrants(principal.scopes));
    session.refreshScopeReads();
    this.indexPrincipal(session);
    const dropped: string[] = [];
    for (const channel of session.channels) {
      if (!channelAllowed(session.principal.channels, channel)) dropped.push(channel);
    }
    for (const channel of dropped) this.unsubscribe(session, channel);
    return dropped;
  }

  /** Narrows the scopes the session receives to `scopes` inside its grants (undefined: all grants). */
  narrow(session: HubSession, scopes: readonly string[] | undefined): void {
    this.unindexPrincipal(session);
    session.setNarrow(scopes);
    this.indexPrincipal(session);
  }

  subscribe(session: HubSession, channel: string): void {
    session.joinChannel(channel);
    this.byChannel.add(channel, session);
  }

  unsubscribe(session: HubSession, channel: string): void {
    session.leaveChannel(channel);
    this.byChannel.delete(channel, session);
  }

  stats(): { sessions: number; users: number; byTransport: Record<TransportKind, number>; guests: number } {
    return {
      sessions: this.byId.size,
      users: this.byUser.size,
      byTransport: { ...this.transports },
      guests: this.guests,
    };
  }

  private indexPrincipal(session: HubSession): void {
    // Indexed by the scopes it reads: the grants, or its narrowed set (routing and streams agree).
    for (const scope of session.scopeReads) this.byScope.add(scope, session);
    const family = session.principal.sessionFamilyId;
    if (family !== undefined) this.byFamily.add(family, session);
  }

  private unindexPrincipal(session: HubSession): void {
    for (const scope of session.scopeReads) this.byScope.delete(scope, session);
    const family = session.principal.sessionFamilyId;
    if (family !== undefined) this.byFamily.delete(family, session);
  }
}
