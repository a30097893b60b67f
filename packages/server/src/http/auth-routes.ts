import type { CookieSerializeOptions } from '@fastify/cookie';
import { TetherError } from '@tether/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { TokenService, RequestMeta } from '../auth/token-service.js';
import type { Authenticator, Principal } from '../auth/types.js';
import type { Config } from '../config/index.js';
import { LoginThrottle } from '../auth/login-throttle.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { checkOrigin } from '../transports/origin.js';
import { perMinuteBucket, type LimiterFactory, type RateLimiter } from '../util/rate-limit.js';
import type { ApiOperation } from './openapi.js';
import { installJsonBodyParser, parseBody } from './validate.js';

/** The refresh cookie: httpOnly, SameSite=Strict, sent only to `/auth/*`. */
export const REFRESH_COOKIE = 'refresh_token';
const COOKIE_PATH = '/auth';

export interface AuthRouteDeps {
  config: Config;
  /** Absent when the gateway only verifies an app's own tokens: login, refresh, logout and guest answer 404. */
  tokens: TokenService | undefined;
  authenticator: Authenticator;
  logger: Logger;
  /** Where the limits keep their buckets: this node, or Redis in cluster mode (one budget for all nodes). */
  limiters: LimiterFactory;
  clock: Clock;
}

// The bodies as parsed below; the OpenAPI document (`authOperations`) describes these same objects.
export const loginBody = z.object({
  email: z.string().trim().min(1).max(320),
  password: z.string().min(1).max(1024),
});
// Any string is accepted here: an empty or unknown one is the service's REFRESH_INVALID, not a 400.
export const refreshBody = z.object({ refresh_token: z.string().max(4096).optional() });
export const mobileRefreshBody = z.object({ refresh_token: z.string().max(4096) });
// Nothing here chooses the guest id (other fields are dropped); `cookie: true` asks for the refresh
// cookie, which a body-mode page must never get: on a shared origin it would replace a signed-in user's.
export const guestBody = z.object({ cookie: z.boolean().optional() });

const tokenPair = {
  access_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int().describe('seconds until the access token expires'),
};
const tokensAnswer = z.object({ ...tokenPair, refresh_token: z.string() });
const loginAnswer = tokensAnswer.extend({
  user: z.object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.string(),
    scopes: z.array(z.string()),
  }),
});
const guestAnswer = z.object({
  ...tokenPair,
  refresh_token: z.string().optional().describe('absent when guest sessions are off (GUEST_SESSION_TTL_SECONDS=0)'),
  guest_id: z.string().describe('the guest user id (`guest:<uuid>`)'),
});
const cookieNote = 'Refused with 403 ORIGIN_FORBIDDEN from a foreign Origin (or Sec-Fetch-Site: cross-site).';

/** The OpenAPI description of the routes below (`openapi.ts`). */
export const authOperations: readonly ApiOperation[] = [
  {
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    summary: 'Sign in with email and password',
    description: `Answers the tokens and sets the refresh cookie. ${cookieNote}`,
    tag: 'auth',
    body: loginBody,
    responses: { 200: { description: 'Signed in', schema: loginAnswer } },
    errors: ['LOGIN_DISABLED', 'INVALID_CREDENTIALS', 'RATE_LIMITED', 'ORIGIN_FORBIDDEN'],
  },
  {
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refresh',
    summary: 'Rotate a refresh token (body or cookie) for new tokens',
    description: `Without \`refresh_token\` in the body the cookie is used and rotated. ${cookieNote}`,
    tag: 'auth',
    security: ['refreshCookie', 'none'],
    body: refreshBody,
    bodyRequired: false,
    responses: { 200: { description: 'New tokens', schema: tokensAnswer } },
    errors: [
      'REFRESH_INVALID',
      'REFRESH_EXPIRED',
      'REFRESH_REUSED',
      'RATE_LIMITED',
      'LOGIN_DISABLED',
      'NOT_FOUND',
      'ORIGIN_FORBIDDEN',
    ],
  },
  {
    method: 'post',
    path: '/auth/refresh-mobile',
    operationId: 'refreshMobile',
    summary: 'Rotate a refresh token given in the body (native apps)',
    tag: 'auth',
    body: mobileRefreshBody,
    responses: { 200: { description: 'New tokens', schema: tokensAnswer } },
    errors: ['REFRESH_INVALID', 'REFRESH_EXPIRED', 'REFRESH_REUSED', 'RATE_LIMITED', 'LOGIN_DISABLED', 'NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/auth/logout',
    operationId: 'logout',
    summary: 'End a session (its refresh family) and revoke its access tokens',
    description: `Identified by the refresh token (body or cookie) or by the access token. ${cookieNote}`,
    tag: 'auth',
    security: ['refreshCookie', 'bearer', 'none'],
    body: refreshBody,
    bodyRequired: false,
    responses: { 204: { description: 'Signed out' } },
    errors: ['AUTH_REQUIRED', 'AUTH_INVALID', 'AUTH_EXPIRED', 'LOGIN_DISABLED', 'ORIGIN_FORBIDDEN'],
  },
  {
    method: 'post',
    path: '/auth/guest',
    operationId: 'guest',
    summary: 'Start a guest session (a server-issued guest id)',
    description: `\`cookie: true\` also sets the refresh cookie. ${cookieNote}`,
    tag: 'auth',
    body: guestBody,
    bodyRequired: false,
    responses: { 200: { description: 'A guest session', schema: guestAnswer } },
    errors: ['NOT_FOUND', 'RATE_LIMITED', 'ORIGIN_FORBIDDEN'],
  },
];

/**
 * `/auth/login`, `/auth/refresh`, `/auth/refresh-mobile`, `/auth/logout`, `/auth/guest` as in the
 * contract. Errors are thrown as `TetherError`; the gateway's error handler answers them with the
 * registry's status and `{code, message}` (and `Retry-After` for RATE_LIMITED). Expects
 * `@fastify/cookie` to be registered on `app`.
 */
export async function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps): Promise<void> {
  const { config, authenticator } = deps;
  const { limiters } = deps;
  const loginThrottle = new LoginThrottle({
    limiters,
    perMinute: config.authRatePerMinute,
    freeFailures: config.loginFreeFailures,
    backoffMaxMs: config.loginBackoffMaxSeconds * 1000,
    clock: deps.clock,
    logger: deps.logger,
  });
  const refreshPerIp = limiters.bucket('refresh-ip', perMinuteBucket(config.authRatePerMinute));
  const refreshPerFamily = limiters.bucket('refresh-family', perMinuteBucket(config.authRatePerMinute));
  // Guests are anonymous by design; the limit only stops one address from minting tokens in bulk.
  const guestPerIp = limiters.bucket('guest-ip', perMinuteBucket(config.authRatePerMinute * 10));

  const loginService = (): TokenService => {
    if (!config.loginEnabled || deps.tokens === undefined) throw new TetherError('LOGIN_DISABLED');
    return deps.tokens;
  };
  // Refresh and logout serve users' and guests' sessions; the service refuses the kind switched off.
  const sessionService = (): TokenService => {
    if ((!config.loginEnabled && !config.guestsEnabled) || deps.tokens === undefined)
      throw new TetherError('LOGIN_DISABLED');
    return deps.tokens;
  };

  await app.register(async (scope) => {
    // /auth/refresh (cookie), /auth/logout and /auth/guest take no body, and many HTTP clients
    // still send `Content-Type: application/json`: an empty body here is "no body".
    installJsonBodyParser(scope, config.maxJsonDepth, { allowEmpty: true });

    // The routes that read or set the refresh cookie answer only pages of an allowed origin (or
    // clients that are not browsers): SameSite=Strict alone lets a sibling subdomain (same site,
    // another origin) refresh, log out, or plant a cookie of its own (login CSRF).
    // `/auth/refresh-mobile` takes its token in the body only and needs no such check.
    const originPolicy = { allowed: config.allowedOrigins, publicHosts: config.publicHosts };
    const cookieRoute = {
      onRequest: async (request: FastifyRequest) => void checkOrigin(request.headers, originPolicy),
    };

    scope.post('/auth/login', cookieRoute, async (request, reply) => {
      const tokens = loginService();
      const body = parseBody(loginBody, request.body);
      const account = body.email.toLowerCase();
      await loginThrottle.admit(account, request.ip);
      const result = await tokens.login(body.email, body.password, meta(request)).catch(async (err: unknown) => {
        if (err instanceof TetherError && err.code === 'INVALID_CREDENTIALS')
          await loginThrottle.failed(account, request.ip);
        throw err;
      });
      await loginThrottle.succeeded(account, request.ip);
      setRefreshCookie(request, reply, config, result.refresh_token, result.refreshExpiresAt);
      void reply.header('cache-control', 'no-store');
      return {
        access_token: result.access_token,
        refresh_token: result.refresh_token,
        token_type: result.token_type,
        expires_in: result.expires_in,
        user: result.user,
      };
    });

    const refresh = async (request: FastifyRequest, reply: FastifyReply, mobile: boolean) => {
      const tokens = sessionService();
      const body = mobile ? parseBody(mobileRefreshBody, request.body) : parseBody(refreshBody, request.body);
      const fromCookie = !mobile && body.refresh_token === undefined;
      const token = body.refresh_token ?? (mobile ? undefined : request.cookies[REFRESH_COOKIE]);
      await limit(refreshPerIp, request.ip);
      if (token === undefined) throw new TetherError('REFRESH_INVALID', 'No refresh token presented');
      try {
        const result = await tokens.refresh(token, {
          ...meta(request),
          checkFamily: (familyId) => limit(refreshPerFamily, familyId),
        });
        // The rotated token goes back the way it came: a body-mode client (a guest page beside a
        // signed-in tab of the same origin) must not overwrite the cookie of another session.
        if (fromCookie) setRefreshCookie(request, reply, config, result.refresh_token, result.refreshExpiresAt);
        void reply.header('cache-control', 'no-store');
        return {
          access_token: result.access_token,
          refresh_token: result.refresh_token,
          token_type: result.token_type,
          expires_in: result.expires_in,
        };
      } catch (err) {
        // A cookie that can never work again should not be sent again.
        if (fromCookie && err instanceof TetherError && err.code.startsWith('REFRESH_'))
          clearRefreshCookie(request, reply, config);
        throw err;
      }
    };
    scope.post('/auth/refresh', cookieRoute, (request, reply) => refresh(request, reply, false));
    scope.post('/auth/refresh-mobile', (request, reply) => refresh(request, reply, true));

    scope.post('/auth/logout', cookieRoute, async (request, reply) => {
      const tokens = sessionService();
      const body = parseBody(refreshBody, request.body);
      const refreshToken = body.refresh_token ?? request.cookies[REFRESH_COOKIE];
      // As for refresh: a session ended by a body token leaves the cookie (another session's) alone.
      const clearCookie = (): void => {
        if (body.refresh_token === undefined) clearRefreshCookie(request, reply, config);
      };
      const principal = await principalFor(request, authenticator, refreshToken !== undefined);
      if (principal === 'already-revoked') {
        clearCookie();
        return reply.code(204).send();
      }
      if (refreshToken === undefined && principal === undefined) throw new TetherError('AUTH_REQUIRED');
      await tokens.logout(refreshToken, principal, meta(request));
      clearCookie();
      return reply.code(204).send();
    });

    scope.post('/auth/guest', cookieRoute, async (request, reply) => {
      if (!config.guestsEnabled || deps.tokens === undefined)
        throw new TetherError('NOT_FOUND', 'Guest access is disabled on this gateway');
      const body = parseBody(guestBody, request.body);
      await limit(guestPerIp, request.ip);
      const result = await deps.tokens.guest(meta(request));
      if (body.cookie === true && result.refresh_token !== undefined && result.refreshExpiresAt !== undefined)
        setRefreshCookie(request, reply, config, result.refresh_token, result.refreshExpiresAt);
      void reply.header('cache-control', 'no-store');
      return {
        access_token: result.access_token,
        refresh_token: result.refresh_token,
        token_type: result.token_type,
        expires_in: result.expires_in,
        guest_id: result.guest_id,
      };
    });
  });
}

function meta(request: FastifyRequest): RequestMeta {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof agent === 'string' ? agent : null };
}

async function limit(limiter: RateLimiter, key: string): Promise<void> {
  const waitMs = await limiter.take(key);
  if (waitMs > 0) throw new TetherError('RATE_LIMITED', undefined, { retryAfterMs: waitMs });
}

/**
 * The access token of a logout request, when one is presented. An invalid or expired one is
 * ignored when a refresh token identifies the session anyway; an already revoked one means the
 * session is over, which is what logout wants.
 */
async function principalFor(
  request: FastifyRequest,
  authenticator: Authenticator,
  haveRefreshToken: boolean,
): Promise<Principal | 'already-revoked' | undefined> {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (match === null) return undefined;
  try {
    return await authenticator.authenticate(match[1]!);
  } catch (err) {
    if (haveRefreshToken) return undefined;
    if (err instanceof TetherError && err.code === 'AUTH_REVOKED') return 'already-revoked';
    throw err;
  }
}

function cookieOptions(request: FastifyRequest, config: Config): CookieSerializeOptions {
  const secure = config.cookieSecure === 'true' || (config.cookieSecure === 'auto' && request.protocol === 'https');
  return { httpOnly: true, sameSite: 'strict', path: COOKIE_PATH, secure };
}

function setRefreshCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  config: Config,
  token: string,
  expiresAt: number,
): void {
  const maxAge = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  void reply.setCookie(REFRESH_COOKIE, token, { ...cookieOptions(request, config), maxAge });
}

function clearRefreshCookie(request: FastifyRequest, reply: FastifyReply, config: Config): void {
  void reply.clearCookie(REFRESH_COOKIE, cookieOptions(request, config));
}
