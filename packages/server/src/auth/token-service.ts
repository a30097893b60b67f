import { randomUUID } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { Config } from '../config/index.js';
import type { AuditEventType, RefreshFamilyRecord, Store, UserRecord } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import { hashRefreshToken, isRefreshTokenFormat, newRefreshToken } from './refresh-crypto.js';
import { createRefreshFlow } from './refresh-flow.js';
import type { GuestResult, LoginResult, RefreshMeta, RefreshResult, RequestMeta, TokenContext } from './token-types.js';
import type { AccessClaims, Principal, RevocationState, TokenSigner } from './types.js';
import { createUserAdmin, type UserAdmin } from './user-admin.js';

export type { PublicUser, NewUserInput, UserPatchInput } from './user-admin.js';
export type { GuestResult, LoginResult, RefreshMeta, RefreshResult, RequestMeta, TokenPair } from './token-types.js';

export interface TokenServiceDeps {
  config: Config;
  store: Store;
  signer: TokenSigner;
  clock: Clock;
  logger: Logger;
  revocations: RevocationState;
  /** Close the family's live connections (AUTH_REVOKED). */
  onFamilyRevoked(familyId: string, reason: string): void;
  /** Close every live connection of the user (AUTH_REVOKED). */
  onUserRevoked(userId: string, reason: string): void;
}

/**
 * The built-in token service behind `/auth/*` and user provisioning: passwords, access tokens,
 * rotating refresh tokens grouped in families, reuse detection, guests, revocation.
 */
export interface TokenService extends UserAdmin {
  /** Throws INVALID_CREDENTIALS for an unknown email, a wrong password or a disabled user alike. */
  login(email: string, password: string, meta: RequestMeta): Promise<LoginResult>;
  /** Rotates; REFRESH_INVALID / REFRESH_EXPIRED / REFRESH_REUSED on failure (the flow is drawn in `refresh-flow.ts`). */
  refresh(refreshToken: string, meta: RefreshMeta): Promise<RefreshResult>;
  /** Revokes the session (by refresh token, else the access token's `sid`). Returns the family revoked, if any. */
  logout(
    refreshToken: string | undefined,
    principal: Principal | undefined,
    meta?: RequestMeta,
  ): Promise<string | undefined>;
  /** Refuses every token of the user issued before now and revokes all their families. */
  revokeUser(userId: string, reason: string): Promise<void>;
  /**
   * A new guest with a server-made id. With guest sessions on (`GUEST_SESSION_TTL_SECONDS` > 0) it also
   * gets a refresh token whose family belongs to the guest id: `refresh` then renews the SAME guest.
   */
  guest(meta: RequestMeta): Promise<GuestResult>;
  /** Deletes families and tokens that ended more than a day ago. Returns rows removed. */
  purgeExpired(): Promise<number>;
  startMaintenance(intervalMs?: number): void;
  stopMaintenance(): void;
}

/** Expired families are kept this long so a late refresh still learns REFRESH_EXPIRED, not REFRESH_INVALID. */
const EXPIRED_RETENTION_MS = 24 * 3600_000;
const MAINTENANCE_INTERVAL_MS = 3600_000;

export function createTokenService(deps: TokenServiceDeps): TokenService {
  const { config, store, signer, clock, logger } = deps;
  const accessTtlMs = config.accessTtlSeconds * 1000;
  const guestTtlMs = config.guestTokenTtlSeconds * 1000;
  let maintenance: ReturnType<Clock['setTimeout']> | undefined;

  const audit: TokenContext['audit'] = (type, fields) =>
    store.audit.record({
      type,
      userId: fields.userId ?? null,
      familyId: fields.familyId ?? null,
      ip: fields.ip ?? null,
      detail: fields.detail ?? null,
      at: clock.now(),
    });

  const signAccess = (user: UserRecord, familyId: string) => {
    const claims: AccessClaims = {
      sub: user.id,
      sid: familyId,
      role: user.role,
      scopes: user.scopes,
      channels: user.channels,
      name: user.name,
      email: user.email,
    };
    return signer.sign(claims, config.accessTtlSeconds);
  };

  /** Claims as `/auth/guest` first issued them: the server's guest id, no scopes, the guest channels. */
  const signGuest = (family: RefreshFamilyRecord) => {
    const claims: AccessClaims = {
      sub: family.userId,
      sid: family.id,
      guest: true,
      scopes: [],
      channels: config.guestChannels,
    };
    // No guest token outlives its session: at the family's end the guest id is over.
    const leftSeconds = Math.ceil((family.expiresAt - clock.now()) / 1000);
    return signer.sign(claims, Math.max(1, Math.min(config.guestTokenTtlSeconds, leftSeconds)));
  };

  /** A new family for `subject` with its first refresh token (login, or a guest session). */
  const startFamily = async (subject: string, guest: boolean, ttlSeconds: number, meta: RequestMeta) => {
    const now = clock.now();
    const family = await store.refresh.createFamily({
      id: randomUUID(),
      userId: subject,
      guest,
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      userAgent: meta.userAgent?.slice(0, 512) ?? null,
      ip: meta.ip ?? null,
    });
    const refreshToken = newRefreshToken();
    await store.refresh.insertToken({
      id: randomUUID(),
      familyId: family.id,
      userId: subject,
      tokenHash: hashRefreshToken(refreshToken),
      createdAt: now,
      expiresAt: family.expiresAt,
    });
    return { family, refreshToken };
  };

  /** Revokes a family everywhere: store, this node's access-token check, live connections. */
  const revokeFamily = async (family: RefreshFamilyRecord, reason: string): Promise<boolean> => {
    const now = clock.now();
    const changed = await store.refresh.revokeFamily(family.id, reason, now);
    // Its access tokens live at most one access (or guest) token lifetime past now.
    deps.revocations.revokeFamily(family.id, now + (family.guest ? guestTtlMs : accessTtlMs));
    if (changed) deps.onFamilyRevoked(family.id, reason);
    return changed;
  };

  const refresh = createRefreshFlow({ config, store, clock, logger, audit, revokeFamily, signAccess, signGuest });

  const revokeUser = async (userId: string, reason: string): Promise<void> => {
    const now = clock.now();
    const user = await store.users.update(userId, { tokensRevokedBefore: now });
    // A guest (or an app backend's subject) has no user row: its instant is kept beside, so a restart keeps it.
    if (user === undefined) await store.subjects.revoke(userId, now);
    const families = await store.refresh.revokeUserFamilies(userId, reason, now);
    // A disabled user's tokens are refused whenever they were issued; a kicked user may sign in again.
    deps.revocations.revokeUser(userId, user !== undefined && !user.active ? Number.POSITIVE_INFINITY : now);
    deps.onUserRevoked(userId, reason);
    const type: AuditEventType = reason === 'user_disabled' ? 'user_disabled' : 'revoke_user';
    await audit(type, { userId, detail: { reason, families: families.length } });
    logger.info({ event: type, userId, reason, families: families.length }, 'user tokens revoked');
  };

  const purgeExpired = async (): Promise<number> => {
    const removed = await store.refresh.purgeExpired(clock.now() - EXPIRED_RETENTION_MS);
    if (removed > 0) logger.info({ event: 'refresh_purge', removed }, 'expired refresh tokens purged');
    const audited = await store.audit.purge(clock.now() - config.auditRetentionDays * 86_400_000);
    if (audited > 0) logger.info({ event: 'audit_purge', removed: audited }, 'old audit events purged');
    return removed + audited;
  };

  const admin = createUserAdmin({ store, clock, logger, revocations: deps.revocations, revokeUser });

  return {
    ...admin,
    revokeUser,

    async login(email, password, meta) {
      const user = await store.users.findByEmail(email);
      // Unknown emails verify against a dummy hash: the answer takes as long as a wrong password.
      const matches = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
      if (user === undefined || !matches || !user.active) {
        const reason = user === undefined ? 'unknown_email' : !matches ? 'wrong_password' : 'inactive';
        await audit('login_failed', { userId: user?.id, ip: meta.ip, detail: { reason } });
        logger.info({ event: 'login_failed', reason, userId: user?.id, ip: meta.ip }, 'login refused');
        throw new TetherError('INVALID_CREDENTIALS');
      }
      if (needsRehash(user.passwordHash))
        await store.users.update(user.id, { passwordHash: await hashPassword(password) });

      const { family, refreshToken } = await startFamily(user.id, false, config.refreshTtlSeconds, meta);
      const access = signAccess(user, family.id);
      await audit('login_ok', { userId: user.id, familyId: family.id, ip: meta.ip });
      logger.info({ event: 'login_ok', userId: user.id, familyId: family.id, ip: meta.ip }, 'login');
      return {
        access_token: access.token,
        refresh_token: refreshToken,
        token_type: 'bearer',
        expires_in: access.expiresIn,
        user: { id: user.id, email: user.email, name: user.name, role: user.role, scopes: user.scopes },
        familyId: family.id,
        refreshExpiresAt: family.expiresAt,
      };
    },

    refresh,

    async logout(refreshToken, principal, meta = {}) {
      let family: RefreshFamilyRecord | undefined;
      if (refreshToken !== undefined && isRefreshTokenFormat(refreshToken)) {
        const record = await store.refresh.findByHash(hashRefreshToken(refreshToken));
        if (record !== undefined) family = await store.refresh.getFamily(record.familyId);
      }
      if (family === undefined && principal?.sessionFamilyId !== undefined) {
        const candidate = await store.refresh.getFamily(principal.sessionFamilyId);
        // Only the family's own user or guest may end it (an external issuer could mint any `sid`).
        if (candidate?.userId === principal.userId && candidate.guest === principal.isGuest) family = candidate;
      }
      if (family === undefined) return undefined;
      const changed = await revokeFamily(family, 'logout');
      if (changed) {
        await audit('logout', { userId: family.userId, familyId: family.id, ip: meta.ip });
        logger.info({ event: 'logout', userId: family.userId, familyId: family.id, ip: meta.ip }, 'logout');
      }
      return family.id;
    },

    async guest(meta) {
      // The id is made here and only here: no request field can choose it.
      const guestId = `guest:${randomUUID()}`;
      if (config.guestSessionTtlSeconds === 0) {
        const claims: AccessClaims = { sub: guestId, guest: true, scopes: [], channels: config.guestChannels };
        const access = signer.sign(claims, config.guestTokenTtlSeconds);
        await audit('guest_issued', { userId: guestId, ip: meta.ip });
        logger.debug({ event: 'guest_issued', userId: guestId, ip: meta.ip }, 'guest token issued');
        return { access_token: access.token, token_type: 'bearer', expires_in: access.expiresIn, guest_id: guestId };
      }
      const { family, refreshToken } = await startFamily(guestId, true, config.guestSessionTtlSeconds, meta);
      const access = signGuest(family);
      await audit('guest_issued', { userId: guestId, familyId: family.id, ip: meta.ip });
      logger.debug(
        { event: 'guest_issued', userId: guestId, familyId: family.id, ip: meta.ip },
        'guest session started',
      );
      return {
        access_token: access.token,
        refresh_token: refreshToken,
        token_type: 'bearer',
        expires_in: access.expiresIn,
        guest_id: guestId,
        familyId: family.id,
        refreshExpiresAt: family.expiresAt,
      };
    },

    purgeExpired,

    startMaintenance(intervalMs = MAINTENANCE_INTERVAL_MS) {
      if (maintenance !== undefined) return;
      const tick = () => {
        maintenance = clock.setTimeout(() => {
          purgeExpired().then(
            () => maintenance !== undefined && tick(),
            (err: unknown) => {
              logger.error({ err }, 'refresh purge failed');
              if (maintenance !== undefined) tick();
            },
          );
        }, intervalMs);
        // The purge must never keep a process alive on its own.
        maintenance.unref?.();
      };
      tick();
    },

    stopMaintenance() {
      if (maintenance !== undefined) clock.clearTimeout(maintenance);
      maintenance = undefined;
    },
  };
}
