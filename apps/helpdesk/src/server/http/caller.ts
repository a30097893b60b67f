import { TetherError } from '@tether/protocol';
import type { Principal } from '@tether/server';
import type { FastifyRequest } from 'fastify';

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
  const principal = await authenticate(match[1]!);
  const claimed = principal.claims['name'];
  return {
    principal,
    userId: principal.userId,
    name: typeof claimed === 'string' && claimed.length > 0 ? claimed : principal.userId,
  };
}

/** A signed-in staff member (not a guest). */
export async function staffOf(request: FastifyRequest, authenticate: Authenticate): Promise<Caller> {
  const caller = await callerOf(request, authenticate);
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
