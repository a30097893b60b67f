import type { RevocationState } from '../auth/types.js';
import type { HubAction } from '../hub/types.js';

/**
 * Cluster-wide commands, sent on `<prefix>:ctl` to every node. Revocation-state updates go to all
 * nodes (any node may see the revoked token next); closes and grant changes are applied by the
 * nodes holding the user's connections and ignored elsewhere (a lookup in an empty index).
 */
export type ControlMessage =
  /** A hub action (disconnect, family, grants) another node applied: `LocalHub.apply` repeats it. */
  | (HubAction & { from: string })
  /** `before: null` stands for Infinity (a disabled user), which JSON cannot carry. */
  | { t: 'revoke-user'; from: string; userId: string; before: number | null }
  | { t: 'restore-user'; from: string; userId: string; after: number }
  | { t: 'revoke-family'; from: string; familyId: string; until: number };

/**
 * A revocation state whose updates are applied here and sent to every other node, which applies
 * them with `applyRevocation` — so a token refused on one node is refused on all of them.
 * While Redis is down an update stays local; nodes reload the persisted state from the shared
 * store when Redis returns (see the gateway's reconnect handler).
 */
export function clusterRevocations(
  local: RevocationState,
  nodeId: string,
  send: (message: ControlMessage) => void,
): RevocationState {
  return {
    revokeUser(userId, beforeMs) {
      local.revokeUser(userId, beforeMs);
      send({ t: 'revoke-user', from: nodeId, userId, before: Number.isFinite(beforeMs) ? beforeMs : null });
    },
    restoreUser(userId, afterMs) {
      local.restoreUser(userId, afterMs);
      send({ t: 'restore-user', from: nodeId, userId, after: afterMs });
    },
    revokeFamily(familyId, untilMs) {
      local.revokeFamily(familyId, untilMs);
      send({ t: 'revoke-family', from: nodeId, familyId, until: untilMs });
    },
    isRevoked: (principal) => local.isRevoked(principal),
    revocationOf: (principal) => local.revocationOf(principal),
  };
}

/** Applies a revocation update from another node; returns false for other message types. */
export function applyRevocation(local: RevocationState, message: ControlMessage): boolean {
  switch (message.t) {
    case 'revoke-user':
      local.revokeUser(message.userId, message.before ?? Number.POSITIVE_INFINITY);
      return true;
    case 'restore-user':
      local.restoreUser(message.userId, message.after);
      return true;
    case 'revoke-family':
      local.revokeFamily(message.familyId, message.until);
      return true;
    default:
      return false;
  }
}
