import { REVOCATION_MESSAGES } from '@tether/protocol';
import type { TokenService } from './auth/token-service.js';
import type { RevocationState } from './auth/types.js';
import { toPublicUser, type NewUserInput, type PublicUser, type UserPatchInput } from './auth/user-admin.js';
import type { Hub, PresenceEntry } from './hub/types.js';
import type { Store } from './store/types.js';
import type { Clock } from './util/clock.js';

export interface AdminDeps {
  hub: Hub;
  store: Store;
  tokens: TokenService | undefined;
  revocations: RevocationState;
  clock: Clock;
  /** Connections of a user on every node (this node's in single-node mode). */
  presenceAll(userId: string): Promise<PresenceEntry[]>;
}

/** The built-in user store, as an app provisions users (the same operations as `/v1/users`). */
export interface GatewayUsers {
  /** Throws CONFLICT for a taken email, VALIDATION_FAILED for a bad scope. */
  create(input: NewUserInput): Promise<PublicUser>;
  /** New grants apply to the user's live connections at once; `active: false` revokes every session. NOT_FOUND for an unknown id. */
  update(id: string, patch: UserPatchInput): Promise<PublicUser>;
  get(id: string): Promise<PublicUser | undefined>;
  findByEmail(email: string): Promise<PublicUser | undefined>;
  /** In creation order. */
  list(options?: { limit?: number; offset?: number }): Promise<PublicUser[]>;
}

/**
 * The operations behind `/v1/users`: kicking a user and the built-in user store, with their effects on
 * live connections (revocation closes sockets, new grants apply at once).
 */
export function createAdminOperations(deps: AdminDeps): {
  disconnectUser(userId: string): Promise<number>;
  /** Also `gateway.users`: the same operations for apps and for the HTTP API. */
  users: GatewayUsers | undefined;
} {
  const { hub, store, tokens, revocations, clock, presenceAll } = deps;

  const disconnectUser = async (userId: string): Promise<number> => {
    // Count first: afterwards the sessions are gone.
    const count = (await presenceAll(userId)).length;
    if (tokens !== undefined && ((await store.users.findById(userId)) !== undefined || isGuestId(userId))) {
      // Persists "revoked before now", revokes refresh families (a guest's too: else its session
      // would renew past the kick), closes live connections (onUserRevoked).
      await tokens.revokeUser(userId, 'api_disconnect');
    } else {
      // A subject of an app's own backend: refuse its earlier tokens (kept in the store, so a restart
      // keeps refusing them) and close its sockets.
      const now = clock.now();
      await store.subjects.revoke(userId, now);
      revocations.revokeUser(userId, now);
      hub.disconnectUser(userId, 'AUTH_REVOKED', REVOCATION_MESSAGES.api_disconnect);
    }
    return count;
  };

  const users: GatewayUsers | undefined =
    tokens === undefined
      ? undefined
      : {
          create: (input) => tokens.createUser(input),
          update: async (id, patch) => {
            const user = await tokens.updateUser(id, patch);
            if (patch.scopes !== undefined || patch.channels !== undefined) {
              hub.updateGrants(id, { scopes: user.scopes, channels: user.channels });
            }
            return user;
          },
          get: (id) => tokens.getUser(id),
          findByEmail: async (email) => {
            const user = await store.users.findByEmail(email);
            return user === undefined ? undefined : toPublicUser(user);
          },
          list: async (query = {}) => (await store.users.list(query)).map(toPublicUser),
        };

  return { disconnectUser, users };
}

/** The ids `/auth/guest` makes (`guest:<uuid>`); an app's own subject of that shape only gains a family check. */
function isGuestId(userId: string): boolean {
  return userId.startsWith('guest:');
}
