import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createVerifier as createFastVerifier, type Algorithm, type VerifierOptions } from 'fast-jwt';
import buildGetJwks from 'get-jwks';
import { TetherError } from '@tether/protocol';
import { TokenBucket } from '../util/rate-limit.js';
import { systemClock, type Clock } from '../util/clock.js';
import { decodeHeader, invalidToken } from './jwt-format.js';
import { keyAlgorithms } from './keys.js';
import { shown } from './refusal-reason.js';

export interface JwksVerifierOptions {
  /** `JWT_JWKS_URL`. */
  url: string;
  /** Asymmetric algorithms accepted (checked before any fetch). */
  algorithms: readonly Algorithm[];
  /** fast-jwt options shared with the other verifiers (iss, aud, required claims). */
  verifierOptions: Partial<VerifierOptions>;
  clock?: Clock;
  /** How long a fetched key is used before it is looked up again (a removed key stays usable up to 2×). */
  ttlMs?: number;
  /** Fetches for kids never seen before, per minute (a burst of the same size). */
  unknownKidFetchesPerMinute?: number;
  /** A JWKS fetch slower than this fails the waiting tokens with INTERNAL (default 5 s). */
  fetchTimeoutMs?: number;
}

interface KidVerifier {
  verify: (token: string) => unknown;
  freshUntil: number;
}

const MAX_KIDS = 100;

/**
 * Verifies tokens issued by an application's backend against its JWKS.
 *
 * Keys are fetched through get-jwks (cached by alg and kid, stale copy used if the endpoint fails).
 * A token with an unknown kid triggers a refetch, so key rotation is picked up at once; such refetches
 * are rate-limited so a flood of made-up kids cannot turn the gateway into a load generator against
 * the app's endpoint. Each fetched key gets its own synchronous fast-jwt verifier, kept for the TTL:
 * the hot path then costs what a fixed public key costs (no PEM parsing per token).
 *
 * Errors: `AUTH_INVALID` for an algorithm outside the allow-list, a missing or unknown kid, or a key
 * that does not fit the algorithm; `INTERNAL` (retryable) when the JWKS cannot be fetched — the
 * gateway's problem, not the token's, and it must not sign users out.
 */
export function createJwksVerifier(options: JwksVerifierOptions): (token: string) => Promise<unknown> {
  const clock = options.clock ?? systemClock;
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const url = new URL(options.url);
  const domain = `${url.origin}/`;
  const getJwks = buildGetJwks({
    jwksPath: `${url.pathname.slice(1)}${url.search}` || undefined,
    issuersWhitelist: [domain],
    ttl: ttlMs,
    max: MAX_KIDS,
  });
  const perMinute = options.unknownKidFetchesPerMinute ?? 10;
  const unknownKidBudget = new TokenBucket(perMinute, perMinute / 60, clock);
  const verifiers = new Map<string, KidVerifier>();

  async function fetchVerifier(alg: string, kid: string, cacheKey: string): Promise<KidVerifier> {
    const known =
      verifiers.has(cacheKey) ||
      getJwks.cache.get(cacheKey) !== undefined ||
      getJwks.staleCache.get(cacheKey) !== undefined;
    // Refused without a fetch: for the operator, still an unknown kid.
    if (!known && unknownKidBudget.take() > 0)
      throw invalidToken({ check: 'kid', got: shown(kid), problem: 'unknown' });
    let jwk: object;
    try {
      jwk = await withTimeout(getJwks.getJwk({ domain, alg, kid }), options.fetchTimeoutMs ?? 5_000, clock);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'JWK_NOT_FOUND' || code === 'NO_JWKS')
        throw invalidToken({ check: 'kid', got: shown(kid), problem: 'unknown' });
      throw new TetherError('INTERNAL', 'Token verification keys are unavailable; try again later', { cause: error });
    }
    const pem = publicPemFor(jwk, alg);
    if (pem === undefined) throw invalidToken({ check: 'kid', got: shown(kid), problem: 'unusable_key' });
    const entry: KidVerifier = {
      verify: createFastVerifier({ ...options.verifierOptions, key: pem, algorithms: [alg as Algorithm] }),
      freshUntil: clock.now() + ttlMs,
    };
    verifiers.delete(cacheKey);
    if (verifiers.size >= MAX_KIDS) verifiers.delete(verifiers.keys().next().value as string);
    verifiers.set(cacheKey, entry);
    return entry;
  }

  return async (token) => {
    const { alg, kid } = decodeHeader(token);
    if (typeof alg !== 'string' || !options.algorithms.includes(alg as Algorithm))
      throw invalidToken({ check: 'alg', got: shown(alg), allowed: options.algorithms });
    if (typeof kid !== 'string' || kid.length === 0)
      throw invalidToken({ check: 'kid', got: shown(kid), problem: 'missing' });
    if (kid.length > 256) throw invalidToken({ check: 'kid', got: shown(kid), problem: 'too_long' });
    const cacheKey = getJwks.generateCacheKey(alg, kid, domain);
    let entry = verifiers.get(cacheKey);
    if (entry === undefined || clock.now() >= entry.freshUntil) entry = await fetchVerifier(alg, kid, cacheKey);
    return entry.verify(token);
  };
}

/** The JWK as a PEM public key when it is a signing key that fits `alg`; undefined otherwise. */
function publicPemFor(jwk: object, alg: string): string | undefined {
  const use = (jwk as { use?: unknown }).use;
  if (use !== undefined && use !== 'sig') return undefined;
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    if (!keyAlgorithms(key, 'JWT_JWKS_URL').includes(alg as Algorithm)) return undefined;
    return key.export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    // Not a usable public key (unsupported curve, short RSA modulus, broken members).
    return undefined;
  }
}

/** get-jwks' fetch has no deadline of its own: a hanging endpoint must not hang every connect. */
function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(new Error(`JWKS fetch took longer than ${ms} ms`)), ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}
