import { TetherError } from '@tether/protocol';
import type { Principal } from '@tether/server';
import type { FastifyRequest } from 'fastify';
import type { Actor } from '../domain/helpdesk-service.js';

/** Verifies a bearer access token (staff or guest): what every API route starts with. */
export type Authenticate = (token: string) => Promise<Principal>;

export interface Caller {
  principal: Principal;
  userId: string;
  name: string;
}

/**
 * The caller of an API route, from `Authorization: Bearer <access token>` — the same token the
 * page's realtime connection uses, verified with the gateway's authenticator (signature, expiry,
 * revocation), so a kicked or logged-out session is refused here too.
 */
export async function callerOf(request: FastifyRequest, authenticate: Authenticate): Promise<Caller> {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
  if (match === null) throw new TetherError('AUTH_REQUIRED');
  return callerFromPrincipal(await authenticate(match[1]!));
}

/** The caller a verified principal names (an API route's token, or a realtime connection's). */
export function callerFromPrincipal(principal: Principal): Caller {
  const claimed = principal.claims['name'];
  return {
    principal,
    userId: principal.userId,
    name: typeof claimed === 'string' && claimed.length > 0 ? claimed : principal.userId,
  };
}

/** Who acts in the domain: the caller with its grants. */
export const actorOf = (caller: Caller): Actor => ({
  userId: caller.userId,
  name: caller.name,
  grants: caller.principal.scopes,
});

/** A signed-in staff member (not a guest). */
export async function staffOf(request: FastifyRequest, authenticate: Authenticate): Promise<Caller> {
  return asStaff(await callerOf(request, authenticate));
}

/** The caller, when staff (not a guest); FORBIDDEN otherwise. */
export function asStaff(caller: Caller): Caller {
  if (caller.principal.isGuest) throw new TetherError('FORBIDDEN', 'Staff only');
  return caller;
}

/** An admin: holds the root grant, as the dashboard's live feed (published to `*`) requires. */
export async function adminOf(request: FastifyRequest, authenticate: Authenticate): Promise<Caller> {
  const caller = await staffOf(request, authenticate);
  if (!caller.principal.scopes.includes('*')) throw new TetherError('FORBIDDEN', 'Admins only');
  return caller;
}

/** A guest customer. */
export async function guestOf(request: FastifyRequest, authenticate: Authenticate): Promise<Caller> {
  const caller = await callerOf(request, authenticate);
  if (!caller.principal.isGuest) throw new TetherError('FORBIDDEN', 'The customer page is for guests');
  return caller;
}
