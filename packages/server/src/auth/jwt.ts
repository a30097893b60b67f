import { randomUUID } from 'node:crypto';
import { createSigner as createFastSigner, createVerifier as createFastVerifier } from 'fast-jwt';
import { TetherError } from '@tether/protocol';
import type { Config } from '../config/index.js';
import { systemClock, type Clock } from '../util/clock.js';
import { principalFromClaims } from './claims.js';
import { createJwksVerifier } from './jwks-verifier.js';
import {
  assertJwtShape,
  decodeHeader,
  decodePayloadForDiagnostics,
  invalidToken,
  malformedToken,
} from './jwt-format.js';
import type { KeyMaterial } from './keys.js';
import { reasonForVerifierError } from './refusal-reason.js';
import type { AccessClaims, Principal, TokenSigner, TokenVerifier } from './types.js';

/**
 * Signs Tether's own access tokens, or returns undefined when the gateway only verifies tokens
 * issued by the app's backend. Every token carries `iss`, `aud`, `iat`, `exp`, a random `jti`,
 * `iat_ms` (issue time in ms: "revoked before now" must not refuse a token issued later in the same
 * second) and, for asymmetric keys, the `kid` header published in the JWKS.
 *
 * @example
 *   const signed = createSigner(keys, config)?.sign({ sub: user.id, sid: family.id, scopes }, config.accessTtlSeconds);
 */
export function createSigner(
  keys: KeyMaterial,
  config: Pick<Config, 'jwt' | 'accessTtlSeconds'>,
  clock: Clock = systemClock,
): TokenSigner | undefined {
  const own = keys.signing;
  if (own === undefined) return undefined;
  const sign = createFastSigner({
    key: own.kind === 'secret' ? own.secret : own.privateKeyPem,
    algorithm: own.algorithm,
    iss: config.jwt.issuer,
    aud: config.jwt.audience,
    kid: own.kind === 'private' ? own.kid : undefined,
  });
  return {
    algorithm: own.algorithm,
    sign(claims: AccessClaims, ttlSeconds: number) {
      if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)
        throw new TetherError('INTERNAL', 'Token lifetime must be a positive integer');
      const now = clock.now();
      const iat = Math.floor(now / 1000);
      const exp = iat + ttlSeconds;
      let token: string;
      try {
        // Our claims last: a caller's object cannot override the time claims or the id.
        token = sign({ ...claims, iat, iat_ms: now, exp, jti: randomUUID() });
      } catch (error) {
        throw new TetherError('INTERNAL', 'Could not sign the token', { cause: error });
      }
      return { token, expiresAt: exp * 1000, expiresIn: ttlSeconds };
    },
  };
}

/** One key path: its fast-jwt verifier, whether it is Tether's own signing key, and its algorithms. */
interface Route {
  readonly verify: (token: string) => unknown;
  readonly own: boolean;
  readonly algorithms: readonly string[];
}

/**
 * Verifies access tokens: signature, algorithm allow-list (never `none`, never HS with a public key),
 * `iss`, `aud`, then `exp` (exact), `nbf` (5 s tolerance) and `sub` against the injected clock.
 * Verifiers are built once (for a JWKS, once per fetched key); no verification result is cached, so
 * a token is re-checked in full every time.
 * With both an own key and an external one, tokens are routed by header: HS tokens (or our `kid`)
 * to the own key, everything else to the external key.
 *
 * @example
 *   const principal = await createVerifier(keys, config).verify(token);
 */
export function createVerifier(
  keys: KeyMaterial,
  config: Pick<Config, 'jwt'>,
  clock: Clock = systemClock,
): TokenVerifier {
  const common = {
    allowedIss: config.jwt.issuer,
    allowedAud: config.jwt.audience,
    requiredClaims: ['iss', 'aud', 'sub', 'exp'],
    // Time claims are checked by principalFromClaims against the injected clock: fast-jwt has one
    // tolerance for both and accepts a token at exactly `exp`.
    ignoreExpiration: true,
    ignoreNotBefore: true,
    cache: false,
  };

  const own: Route | undefined = keys.signing && {
    own: true,
    algorithms: keys.signing.verifyAlgorithms,
    verify: createFastVerifier({
      ...common,
      key: keys.signing.kind === 'secret' ? keys.signing.secret : keys.signing.publicKeyPem,
      algorithms: [...keys.signing.verifyAlgorithms],
    }),
  };

  let external: Route | undefined;
  if (keys.external?.kind === 'public-key') {
    external = {
      own: false,
      algorithms: keys.external.algorithms,
      verify: createFastVerifier({
        ...common,
        key: keys.external.publicKeyPem,
        algorithms: [...keys.external.algorithms],
      }),
    };
  } else if (keys.external?.kind === 'jwks') {
    external = {
      own: false,
      algorithms: keys.external.algorithms,
      verify: createJwksVerifier({
        url: keys.external.url,
        algorithms: keys.external.algorithms,
        verifierOptions: common,
        clock,
      }),
    };
  }

  const route = router(keys, own, external);

  return {
    async verify(token: string): Promise<Principal> {
      assertJwtShape(token);
      const chosen = route(token);
      let payload: unknown;
      try {
        payload = await chosen.verify(token);
      } catch (error) {
        throw toTetherError(error, token, chosen, config);
      }
      return principalFromClaims(payload as Record<string, unknown>, chosen.own, clock.now());
    },
  };
}

function router(keys: KeyMaterial, own: Route | undefined, external: Route | undefined): (token: string) => Route {
  if (own !== undefined && external === undefined) return () => own;
  if (own === undefined && external !== undefined) return () => external;
  if (own === undefined || external === undefined)
    throw new TetherError('INTERNAL', 'No token verification key is configured');
  const ownKid = keys.signing?.kind === 'private' ? keys.signing.kid : undefined;
  return (token) => {
    const header = decodeHeader(token);
    if (ownKid !== undefined) return header.kid === ownKid ? own : external;
    return typeof header.alg === 'string' && header.alg.startsWith('HS') ? own : external;
  };
}

/** fast-jwt codes meaning "this is not a JWT at all" rather than "a JWT we refuse". */
const NOT_A_JWT = new Set(['FAST_JWT_MALFORMED', 'FAST_JWT_INVALID_TYPE', 'FAST_JWT_INVALID_PAYLOAD']);

/** A fast-jwt error as the contract's AUTH_INVALID, carrying the check that failed (for the log only). */
function toTetherError(error: unknown, token: string, route: Route, config: Pick<Config, 'jwt'>): TetherError {
  if (error instanceof TetherError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NOT_A_JWT.has(code)) return malformedToken();
  const reason = reasonForVerifierError(error, {
    header: decodeHeader(token),
    payload: decodePayloadForDiagnostics(token),
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    algorithms: route.algorithms,
  });
  return invalidToken(reason, error);
}
