import { normalizeScope } from '@tether/protocol';
import type { Principal } from '../auth/types.js';
import { channelAllowed } from './channels.js';
import type { HubSession } from './session.js';
import type { TransportKind } from './types.js';

/** key → set of sessions; empty sets are dropped so the map only holds live keys. */
export class SetIndex<V> {
  private readonly map = new Map<string, Set<V>>();

  add(key: string, value: V): void {
    let set = this.map.get(key);
    if (set === undefined) {
      set = new Set<V>();
      this.map.set(key, set);
    }
    set.add(value);
  }

  delete(key: string, value: V): void {
    const set = this.map.get(key);
    if (set === undefined) return;
    set.delete(value);
    if (set.size === 0) this.map.delete(key);
  }

  get(key: string): ReadonlySet<V> | undefined {
    return this.map.get(key);
  }

  count(key: string): number {
    return this.map.get(key)?.size ?? 0;
  }

  /** Number of distinct keys. */
  get size(): number {
    return this.map.size;
  }
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
   * Replaces the session's principal (same user): scope grants and family are re-indexed and
   * channel subscriptions the new patterns no longer allow are dropped. Returns the dropped channels.
   */
  replacePrincipal(session: HubSession, principal: Principal): string[] {
    this.unindexPrincipal(session);
    session.principal = { ...principal, scopes: normalizeGrants(principal.scopes) };
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
