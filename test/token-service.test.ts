import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TetherError, type ErrorCode } from '@tether/protocol';
import { createAuthenticator } from '../packages/server/src/auth/authenticator.js';
import { createSigner, createVerifier } from '../packages/server/src/auth/jwt.js';
import { loadKeys } from '../packages/server/src/auth/keys.js';
import { createRevocationState } from '../packages/server/src/auth/revocations.js';
import { createTokenService, type TokenService } from '../packages/server/src/auth/token-service.js';
import type { Authenticator } from '../packages/server/src/auth/types.js';
import { configFrom, type SettingName } from '../packages/server/src/config/index.js';
import { openStore, type OpenStore } from '../packages/server/src/store/index.js';
import type { Clock } from '../packages/server/src/util/clock.js';
import { createLogger } from '../packages/server/src/util/logger.js';

/** A clock the test moves by hand; the signer, verifier, revocations and service all read it. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = Date.now();
  return {
    now: () => now,
    advance: (ms) => void (now += ms),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
}

interface Harness {
  tokens: TokenService;
  store: OpenStore;
  auth: Authenticator;
  clock: ReturnType<typeof manualClock>;
  familiesRevoked: { familyId: string; reason: string }[];
  usersRevoked: { userId: string; reason: string }[];
  logs: string[];
  close(): Promise<void>;
}

async function harness(env: Partial<Record<SettingName, string>> = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tether-tokens-'));
  const config = configFrom({
    DATA_DIR: dataDir,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    JWT_EXPIRATION_SECONDS: '60',
    ...env,
  });
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(line) });
  const clock = manualClock();
  const store = await openStore(config, logger, clock);
  const keys = await loadKeys(config, logger);
  const signer = createSigner(keys, config, clock)!;
  const revocations = createRevocationState(clock);
  const auth = createAuthenticator(createVerifier(keys, config, clock), revocations);
  const familiesRevoked: Harness['familiesRevoked'] = [];
  const usersRevoked: Harness['usersRevoked'] = [];
  const tokens = createTokenService({
    config,
    store,
    signer,
    clock,
    logger,
    revocations,
    onFamilyRevoked: (familyId, reason) => familiesRevoked.push({ familyId, reason }),
    onUserRevoked: (userId, reason) => usersRevoked.push({ userId, reason }),
  });
  return {
    tokens,
    store,
    auth,
    clock,
    familiesRevoked,
    usersRevoked,
    logs,
    async close() {
      tokens.stopMaintenance();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (err instanceof TetherError) return err.code;
    throw err;
  }
}

const META = { ip: '198.51.100.7', userAgent: 'vitest' };
const PASSWORD = 'correct horse battery staple';

describe('token service', () => {
  let h: Harness;
  const secrets: string[] = [];
  let userId: string;

  beforeAll(async () => {
    h = await harness();
    const user = await h.tokens.createUser({
      email: 'Ada@Example.com',
      password: PASSWORD,
      name: 'Ada',
      role: 'agent',
      scopes: ['ke/muranga/', 'ke'],
      channels: ['project:42'],
    });
    userId = user.id;
    expect(user).toEqual({
      id: userId,
      email: 'ada@example.com',
      name: 'Ada',
      role: 'agent',
      scopes: ['ke/muranga', 'ke'],
      channels: ['project:42'],
      active: true,
    });
  });
  afterAll(() => h.close());

  const login = async () => {
    const result = await h.tokens.login('ada@example.com', PASSWORD, META);
    secrets.push(result.access_token, result.refresh_token);
    return result;
  };
  const refresh = async (token: string) => {
    const result = await h.tokens.refresh(token, META);
    secrets.push(result.access_token, result.refresh_token);
    return result;
  };

  it("login returns an access token with the user's claims, a refresh token and the public user", async () => {
    const result = await login();
    expect(result).toMatchObject({
      token_type: 'bearer',
      expires_in: 60,
      user: { id: userId, email: 'ada@example.com', name: 'Ada', role: 'agent', scopes: ['ke/muranga', 'ke'] },
    });
    expect(result.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const principal = await h.auth.authenticate(result.access_token);
    expect(principal).toMatchObject({
      userId,
      isGuest: false,
      role: 'agent',
      channels: ['project:42'],
      sessionFamilyId: result.familyId,
    });
    expect(principal.claims).toMatchObject({ name: 'Ada', email: 'ada@example.com' });
  });

  it('a wrong password, an unknown email and a disabled user are all INVALID_CREDENTIALS', async () => {
    expect(await codeOf(h.tokens.login('ada@example.com', 'wrong password', META))).toBe('INVALID_CREDENTIALS');
    expect(await codeOf(h.tokens.login('nobody@example.com', PASSWORD, META))).toBe('INVALID_CREDENTIALS');
    const other = await h.tokens.createUser({ email: 'off@example.com', password: PASSWORD, name: 'Off' });
    await h.tokens.updateUser(other.id, { active: false });
    expect(await codeOf(h.tokens.login('off@example.com', PASSWORD, META))).toBe('INVALID_CREDENTIALS');
    const failures = await h.store.audit.list({ type: 'login_failed' });
    expect(failures.map((f) => f.detail?.reason).sort()).toEqual(['inactive', 'unknown_email', 'wrong_password']);
  });

  it('an unknown email costs about as much time as a wrong password', async () => {
    const time = async (email: string) => {
      const start = performance.now();
      await codeOf(h.tokens.login(email, 'wrong password', META));
      return performance.now() - start;
    };
    await time('nobody@example.com'); // the dummy hash is computed once, on first use
    const known = await time('ada@example.com');
    const unknown = await time('nobody@example.com');
    // Both run one scrypt of the same cost; a skipped hash would be ~100× faster.
    expect(unknown).toBeGreaterThan(known / 4);
  });

  it('refresh rotates: a new pair each time, the old refresh token marked used', async () => {
    const first = await login();
    const second = await refresh(first.refresh_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.familyId).toBe(first.familyId);
    expect(second.refreshExpiresAt).toBe(first.refreshExpiresAt);
    const third = await refresh(second.refresh_token);
    expect(third.familyId).toBe(first.familyId);
    expect((await h.auth.authenticate(third.access_token)).sessionFamilyId).toBe(first.familyId);
  });

  it('reusing a rotated token after the grace window revokes the family, and its newest token is refused too', async () => {
    const first = await login();
    const second = await refresh(first.refresh_token);
    h.clock.advance(3_000); // default grace is 2 s
    expect(await codeOf(h.tokens.refresh(first.refresh_token, META))).toBe('REFRESH_REUSED');
    expect(await codeOf(h.tokens.refresh(second.refresh_token, META))).toBe('REFRESH_REUSED');
    expect(h.familiesRevoked).toContainEqual({ familyId: first.familyId, reason: 'reuse' });
    expect(await codeOf(h.auth.authenticate(second.access_token))).toBe('AUTH_REVOKED');
    const detected = await h.store.audit.list({ type: 'refresh_reuse_detected' });
    expect(detected.map((d) => d.familyId)).toContain(first.familyId);
  });

  it('two concurrent refreshes with one token inside the grace window both get the same new pair', async () => {
    const first = await login();
    const [a, b] = await Promise.all([refresh(first.refresh_token), refresh(first.refresh_token)]);
    expect(a.refresh_token).toBe(b.refresh_token);
    expect(a.access_token).toBe(b.access_token);
    h.clock.advance(1_500);
    const late = await refresh(first.refresh_token); // still inside 2 s: the same pair again
    expect(late.refresh_token).toBe(a.refresh_token);
    const next = await refresh(a.refresh_token); // and the shared successor works
    expect(next.familyId).toBe(first.familyId);
  });

  it('an unknown or garbage refresh token is REFRESH_INVALID', async () => {
    expect(await codeOf(h.tokens.refresh(randomBytes(32).toString('base64url'), META))).toBe('REFRESH_INVALID');
    expect(await codeOf(h.tokens.refresh('not a token', META))).toBe('REFRESH_INVALID');
    expect(await codeOf(h.tokens.refresh('', META))).toBe('REFRESH_INVALID');
  });

  it('logout by refresh token revokes the family and its access tokens', async () => {
    const session = await login();
    expect(await h.tokens.logout(session.refresh_token, undefined, META)).toBe(session.familyId);
    expect(h.familiesRevoked).toContainEqual({ familyId: session.familyId, reason: 'logout' });
    expect(await codeOf(h.tokens.refresh(session.refresh_token, META))).toBe('REFRESH_INVALID');
    expect(await codeOf(h.auth.authenticate(session.access_token))).toBe('AUTH_REVOKED');
  });

  it('logout by access token alone revokes the session it belongs to', async () => {
    const session = await login();
    const principal = await h.auth.authenticate(session.access_token);
    expect(await h.tokens.logout(undefined, principal, META)).toBe(session.familyId);
    expect(await codeOf(h.tokens.refresh(session.refresh_token, META))).toBe('REFRESH_INVALID');
    const audit = await h.store.audit.list({ type: 'logout', userId });
    expect(audit.map((a) => a.familyId)).toContain(session.familyId);
  });

  it('revokeUser refuses every earlier token and refresh of the user, and a new login works', async () => {
    const a = await login();
    const b = await login();
    h.clock.advance(1);
    await h.tokens.revokeUser(userId, 'api_disconnect');
    expect(h.usersRevoked).toContainEqual({ userId, reason: 'api_disconnect' });
    expect(await codeOf(h.auth.authenticate(a.access_token))).toBe('AUTH_REVOKED');
    expect(await codeOf(h.tokens.refresh(b.refresh_token, META))).toBe('REFRESH_INVALID');
    expect((await h.store.users.findById(userId))?.tokensRevokedBefore).toBe(h.clock.now());
    h.clock.advance(1);
    const fresh = await login();
    expect((await h.auth.authenticate(fresh.access_token)).userId).toBe(userId);
  });

  it('disabling a user revokes all sessions; re-enabling lets them sign in again', async () => {
    const user = await h.tokens.createUser({ email: 'bo@example.com', password: PASSWORD, name: 'Bo', scopes: ['*'] });
    const session = await h.tokens.login('BO@example.com', PASSWORD, META);
    secrets.push(session.access_token, session.refresh_token);
    h.clock.advance(1);
    const disabled = await h.tokens.updateUser(user.id, { active: false, scopes: ['ke'] });
    expect(disabled).toMatchObject({ active: false, scopes: ['ke'] });
    expect(h.usersRevoked).toContainEqual({ userId: user.id, reason: 'user_disabled' });
    expect(await codeOf(h.auth.authenticate(session.access_token))).toBe('AUTH_REVOKED');
    expect(await codeOf(h.tokens.refresh(session.refresh_token, META))).toBe('REFRESH_INVALID');
    expect(await h.store.audit.list({ type: 'user_disabled', userId: user.id })).toHaveLength(1);
    h.clock.advance(1);
    await h.tokens.updateUser(user.id, { active: true, password: 'another fine password' });
    h.clock.advance(1);
    expect(await codeOf(h.tokens.login('bo@example.com', PASSWORD, META))).toBe('INVALID_CREDENTIALS');
    const again = await h.tokens.login('bo@example.com', 'another fine password', META);
    secrets.push(again.access_token, again.refresh_token);
    expect((await h.auth.authenticate(again.access_token)).scopes).toEqual(['ke']);
  });

  it('user provisioning refuses a taken email, a bad scope and an unknown id', async () => {
    expect(await codeOf(h.tokens.createUser({ email: 'ADA@example.com', password: PASSWORD, name: 'Dup' }))).toBe(
      'CONFLICT',
    );
    expect(
      await codeOf(
        h.tokens.createUser({ email: 'x@example.com', password: PASSWORD, name: 'X', scopes: ['bad scope!'] }),
      ),
    ).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.tokens.updateUser('no-such-id', { name: 'x' }))).toBe('NOT_FOUND');
    expect(await h.tokens.getUser('no-such-id')).toBeUndefined();
    expect(JSON.stringify(await h.tokens.getUser(userId))).not.toContain('scrypt');
  });

  it('a guest gets a signed guest token with the configured channels and no scopes', async () => {
    const guest = await h.tokens.guest(META);
    secrets.push(guest.access_token);
    expect(guest).toMatchObject({ token_type: 'bearer', expires_in: 3600 });
    expect(guest.guest_id).toMatch(/^guest:[0-9a-f-]{36}$/);
    const principal = await h.auth.authenticate(guest.access_token);
    expect(principal).toMatchObject({ userId: guest.guest_id, isGuest: true, scopes: [] });
    expect(await h.store.audit.list({ type: 'guest_issued', userId: guest.guest_id })).toHaveLength(1);
  });

  it('the audit log and the logs never contain token material', async () => {
    const rows = JSON.stringify(await h.store.audit.list({ limit: 10_000 }));
    const logs = h.logs.join('');
    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(rows).not.toContain(secret);
      expect(logs).not.toContain(secret);
      // Not even a recognisable piece of a token (e.g. a JWT signature).
      expect(logs).not.toContain(secret.slice(-20));
    }
    expect(logs).not.toContain(PASSWORD);
    expect(rows).not.toContain(PASSWORD);
  });
});

describe('token service lifetimes and settings', () => {
  it('a refresh token past the family lifetime is REFRESH_EXPIRED', async () => {
    const h = await harness({ JWT_REFRESH_EXPIRATION_SECONDS: '1' });
    try {
      await h.tokens.createUser({ email: 'e@example.com', password: PASSWORD, name: 'E' });
      const session = await h.tokens.login('e@example.com', PASSWORD, META);
      h.clock.advance(1_000);
      expect(await codeOf(h.tokens.refresh(session.refresh_token, META))).toBe('REFRESH_EXPIRED');
      const failed = await h.store.audit.list({ type: 'refresh_failed' });
      expect(failed[0]?.detail).toEqual({ reason: 'expired' });
    } finally {
      await h.close();
    }
  });

  it('with a zero grace window, a second concurrent refresh counts as reuse', async () => {
    const h = await harness({ REFRESH_REUSE_GRACE_SECONDS: '0' });
    try {
      await h.tokens.createUser({ email: 'z@example.com', password: PASSWORD, name: 'Z' });
      const session = await h.tokens.login('z@example.com', PASSWORD, META);
      const outcomes = await Promise.all([
        codeOf(h.tokens.refresh(session.refresh_token, META)),
        codeOf(h.tokens.refresh(session.refresh_token, META)),
      ]);
      expect(outcomes.sort()).toEqual(['REFRESH_REUSED', 'resolved']);
      expect(h.familiesRevoked).toEqual([{ familyId: session.familyId, reason: 'reuse' }]);
    } finally {
      await h.close();
    }
  });

  it('guests get the configured channels and lifetime', async () => {
    const h = await harness({ GUEST_CHANNELS: 'support:*', GUEST_TOKEN_TTL_SECONDS: '120' });
    try {
      const guest = await h.tokens.guest(META);
      expect(guest.expires_in).toBe(120);
      expect((await h.auth.authenticate(guest.access_token)).channels).toEqual(['support:*']);
    } finally {
      await h.close();
    }
  });

  it('purgeExpired removes families that ended more than a day ago', async () => {
    const h = await harness({ JWT_REFRESH_EXPIRATION_SECONDS: '60' });
    try {
      await h.tokens.createUser({ email: 'p@example.com', password: PASSWORD, name: 'P' });
      const session = await h.tokens.login('p@example.com', PASSWORD, META);
      expect(await h.tokens.purgeExpired()).toBe(0);
      h.clock.advance(25 * 3600_000);
      expect(await h.tokens.purgeExpired()).toBe(2); // one family, one token
      expect(await codeOf(h.tokens.refresh(session.refresh_token, META))).toBe('REFRESH_INVALID');
    } finally {
      await h.close();
    }
  });

  it('the same maintenance purges audit events older than AUDIT_RETENTION_DAYS', async () => {
    const h = await harness({ AUDIT_RETENTION_DAYS: '1' });
    try {
      await h.tokens.createUser({ email: 'q@example.com', password: PASSWORD, name: 'Q' });
      await h.tokens.login('q@example.com', PASSWORD, META);
      expect((await h.store.audit.list()).length).toBeGreaterThan(0);
      h.clock.advance(2 * 86_400_000);
      await h.tokens.purgeExpired();
      expect(await h.store.audit.list()).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
