import { randomUUID } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { RefreshFamilyRecord, RefreshTokenRecord } from '../store/types.js';
import {
  hashRefreshToken,
  isRefreshTokenFormat,
  newRefreshToken,
  openGracePair,
  sealGracePair,
} from './refresh-crypto.js';
import type { RefreshMeta, RefreshResult, RequestMeta, TokenContext } from './token-types.js';
import type { SignedToken } from './types.js';

/** What a rotation seals for concurrent callers inside the grace window. */
interface GracePair {
  access_token: string;
  refresh_token: string;
  accessExpiresAt: number;
}

/**
 * Refresh, as seen by two tabs presenting the same token T0 at once:
 *
 *   tab A ── T0 ──▶ rotate(T0 → T1) wins ─────────────────▶ {A1, T1}
 *   tab B ── T0 ──▶ rotate loses / finds T0 used ─▶ used < grace ago: open sealed pair ─▶ {A1, T1}
 *   later ── T0 ──▶ used > grace ago ─▶ reuse: revoke family (T1 refused too) ─▶ REFRESH_REUSED
 *
 * A guest session's family runs the same flow; only the access token differs: the family's guest
 * id with guest claims (never a user's), where a user's family gets the user's current grants.
 */
export function createRefreshFlow(
  ctx: TokenContext,
): (refreshToken: string, meta: RefreshMeta) => Promise<RefreshResult> {
  const { config, store, clock, logger, audit, revokeFamily, signAccess, signGuest } = ctx;

  const refuseRefresh = async (
    reason: string,
    code: 'REFRESH_INVALID' | 'REFRESH_EXPIRED' | 'REFRESH_REUSED',
    meta: RequestMeta,
    record?: RefreshTokenRecord,
  ): Promise<never> => {
    await audit('refresh_failed', {
      userId: record?.userId,
      familyId: record?.familyId,
      ip: meta.ip,
      detail: { reason },
    });
    logger.info(
      { event: 'refresh_failed', reason, userId: record?.userId, familyId: record?.familyId, ip: meta.ip },
      'refresh refused',
    );
    throw new TetherError(code);
  };

  const answerFromGrace = async (
    record: RefreshTokenRecord,
    token: string,
    meta: RequestMeta,
  ): Promise<RefreshResult | undefined> => {
    const graceMs = config.refreshReuseGraceSeconds * 1000;
    if (graceMs <= 0 || record.usedAt === null || record.graceCiphertext === null) return undefined;
    if (clock.now() - record.usedAt > graceMs) return undefined;
    const pair = openGracePair(token, record.id, record.graceCiphertext) as GracePair | undefined;
    if (pair === undefined || typeof pair.access_token !== 'string') return undefined;
    const family = await store.refresh.getFamily(record.familyId);
    if (family === undefined || family.revokedAt !== null) return undefined;
    await audit('refresh', { userId: record.userId, familyId: record.familyId, ip: meta.ip, detail: { grace: true } });
    logger.info(
      { event: 'refresh', userId: record.userId, familyId: record.familyId, ip: meta.ip, grace: true },
      'refresh answered from grace window',
    );
    return {
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      token_type: 'bearer',
      expires_in: Math.max(0, Math.ceil((pair.accessExpiresAt - clock.now()) / 1000)),
      userId: record.userId,
      familyId: record.familyId,
      refreshExpiresAt: family.expiresAt,
    };
  };

  const detectReuse = async (
    record: RefreshTokenRecord,
    family: RefreshFamilyRecord,
    meta: RequestMeta,
  ): Promise<never> => {
    if (await revokeFamily(family, 'reuse')) {
      await audit('refresh_reuse_detected', {
        userId: record.userId,
        familyId: family.id,
        ip: meta.ip,
        detail: { tokenId: record.id },
      });
      logger.warn(
        { event: 'refresh_reuse_detected', userId: record.userId, familyId: family.id, ip: meta.ip },
        'refresh token reused: family revoked',
      );
    }
    throw new TetherError('REFRESH_REUSED');
  };

  /** The user's current grants, unless the user was disabled or kicked since the family began. */
  const signForUser = async (
    record: RefreshTokenRecord,
    family: RefreshFamilyRecord,
    meta: RequestMeta,
  ): Promise<SignedToken> => {
    const user = await store.users.findById(record.userId);
    const revokedBefore = user?.tokensRevokedBefore ?? null;
    if (user === undefined || !user.active || (revokedBefore !== null && family.createdAt < revokedBefore)) {
      await revokeFamily(family, 'user_inactive');
      return refuseRefresh('user_inactive', 'REFRESH_INVALID', meta, record);
    }
    return signAccess(user, family.id);
  };

  const rotateFrom = async (
    record: RefreshTokenRecord,
    token: string,
    meta: RequestMeta,
    retried: boolean,
  ): Promise<RefreshResult> => {
    const now = clock.now();
    const family = await store.refresh.getFamily(record.familyId);
    if (family === undefined) return refuseRefresh('unknown_family', 'REFRESH_INVALID', meta, record);
    // A gateway that stopped serving logins (or guests) stops renewing those sessions too.
    if (!family.guest && !config.loginEnabled) throw new TetherError('LOGIN_DISABLED');
    if (family.guest && !config.guestsEnabled)
      throw new TetherError('NOT_FOUND', 'Guest access is disabled on this gateway');
    if (family.revokedAt !== null) {
      return refuseRefresh(
        `revoked:${family.revokeReason ?? 'unknown'}`,
        family.revokeReason === 'reuse' ? 'REFRESH_REUSED' : 'REFRESH_INVALID',
        meta,
        record,
      );
    }
    if (now >= Math.min(record.expiresAt, family.expiresAt))
      return refuseRefresh('expired', 'REFRESH_EXPIRED', meta, record);
    if (record.usedAt !== null)
      return (await answerFromGrace(record, token, meta)) ?? detectReuse(record, family, meta);

    const access = family.guest ? signGuest(family) : await signForUser(record, family, meta);

    const nextToken = newRefreshToken();
    const nextId = randomUUID();
    const sealed = sealGracePair(token, record.id, {
      access_token: access.token,
      refresh_token: nextToken,
      accessExpiresAt: access.expiresAt,
    } satisfies GracePair);
    const won = await store.refresh.rotate(
      record.id,
      now,
      {
        id: nextId,
        familyId: family.id,
        userId: family.userId,
        tokenHash: hashRefreshToken(nextToken),
        createdAt: now,
        expiresAt: family.expiresAt,
      },
      sealed,
    );
    if (!won) {
      // Another request rotated this token between our read and our write: judge it as used.
      const current = retried ? undefined : await store.refresh.findByHash(record.tokenHash);
      if (current === undefined) return refuseRefresh('rotation_conflict', 'REFRESH_INVALID', meta, record);
      return rotateFrom(current, token, meta, true);
    }
    await audit('refresh', { userId: family.userId, familyId: family.id, ip: meta.ip });
    logger.info(
      { event: 'refresh', userId: family.userId, familyId: family.id, guest: family.guest || undefined, ip: meta.ip },
      'refresh token rotated',
    );
    return {
      access_token: access.token,
      refresh_token: nextToken,
      token_type: 'bearer',
      expires_in: access.expiresIn,
      userId: family.userId,
      familyId: family.id,
      refreshExpiresAt: family.expiresAt,
    };
  };

  return async (refreshToken, meta) => {
    if (typeof refreshToken !== 'string' || !isRefreshTokenFormat(refreshToken))
      return refuseRefresh('malformed', 'REFRESH_INVALID', meta);
    const record = await store.refresh.findByHash(hashRefreshToken(refreshToken));
    if (record === undefined) return refuseRefresh('unknown', 'REFRESH_INVALID', meta);
    await meta.checkFamily?.(record.familyId);
    return rotateFrom(record, refreshToken, meta, false);
  };
}
