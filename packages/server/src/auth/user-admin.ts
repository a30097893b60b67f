import { normalizeScope, TetherError } from '@tether/protocol';
import type { Store, UserPatch, UserRecord } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { hashPassword } from './passwords.js';
import type { RevocationState } from './types.js';

/** A user as the API shows it: never the password hash. */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  role: string;
  scopes: string[];
  channels: string[];
  active: boolean;
}

export interface NewUserInput {
  email: string;
  password: string;
  name: string;
  role?: string;
  scopes?: string[];
  channels?: string[];
}

export interface UserPatchInput {
  name?: string;
  role?: string;
  scopes?: string[];
  channels?: string[];
  active?: boolean;
  password?: string;
}

/** Provisioning for `POST /v1/users` and `PATCH /v1/users/{id}`. */
export interface UserAdmin {
  /** Throws CONFLICT for a taken email, VALIDATION_FAILED for a bad scope. */
  createUser(input: NewUserInput): Promise<PublicUser>;
  /** `active:false` revokes every session of the user; NOT_FOUND for an unknown id. */
  updateUser(id: string, patch: UserPatchInput): Promise<PublicUser>;
  getUser(id: string): Promise<PublicUser | undefined>;
}

export function toPublicUser(user: UserRecord): PublicUser {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    scopes: user.scopes,
    channels: user.channels,
    active: user.active,
  };
}

/** Normalizes scope grants; the first invalid one is a VALIDATION_FAILED naming it. */
export function normalizeScopes(scopes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const scope of scopes) {
    const normalized = normalizeScope(scope);
    if (normalized === undefined)
      throw new TetherError(
        'VALIDATION_FAILED',
        `scopes: ${JSON.stringify(scope.slice(0, 80))} is not a valid scope path`,
      );
    out.add(normalized);
  }
  return [...out];
}

function checkPassword(password: string): void {
  if (password.length === 0) throw new TetherError('VALIDATION_FAILED', 'password: must not be empty');
}

export function createUserAdmin(deps: {
  store: Store;
  clock: Clock;
  logger: Logger;
  revocations: RevocationState;
  revokeUser(userId: string, reason: string): Promise<void>;
}): UserAdmin {
  const { store, logger } = deps;
  return {
    async createUser(input) {
      if (!input.email.includes('@')) throw new TetherError('VALIDATION_FAILED', 'email: must be an email address');
      checkPassword(input.password);
      const user = await store.users.create({
        email: input.email,
        name: input.name,
        role: input.role ?? 'user',
        scopes: normalizeScopes(input.scopes ?? []),
        channels: [...new Set(input.channels ?? [])],
        passwordHash: await hashPassword(input.password),
      });
      logger.info({ event: 'user_created', userId: user.id, role: user.role }, 'user created');
      return toPublicUser(user);
    },

    async updateUser(id, input) {
      const before = await store.users.findById(id);
      if (before === undefined) throw new TetherError('NOT_FOUND', 'No such user');
      const patch: UserPatch = {};
      if (input.name !== undefined) patch.name = input.name;
      if (input.role !== undefined) patch.role = input.role;
      if (input.scopes !== undefined) patch.scopes = normalizeScopes(input.scopes);
      if (input.channels !== undefined) patch.channels = [...new Set(input.channels)];
      if (input.active !== undefined) patch.active = input.active;
      if (input.password !== undefined) {
        checkPassword(input.password);
        patch.passwordHash = await hashPassword(input.password);
      }
      const after = await store.users.update(id, patch);
      if (after === undefined) throw new TetherError('NOT_FOUND', 'No such user');
      if (before.active && !after.active) {
        await deps.revokeUser(id, 'user_disabled');
      } else if (!before.active && after.active) {
        // Tokens issued from now on count again; older ones stay refused (tokensRevokedBefore).
        deps.revocations.restoreUser(id, deps.clock.now());
        logger.info({ event: 'user_enabled', userId: id }, 'user re-enabled');
      }
      const changed = Object.keys(input).filter((k) => k !== 'password');
      logger.info(
        { event: 'user_updated', userId: id, fields: changed, passwordChanged: input.password !== undefined },
        'user updated',
      );
      return toPublicUser((await store.users.findById(id)) ?? after);
    },

    async getUser(id) {
      const user = await store.users.findById(id);
      return user === undefined ? undefined : toPublicUser(user);
    },
  };
}
