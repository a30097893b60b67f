import { hashPassword } from '../auth/passwords.js';
import type { Store } from '../store/types.js';

/** A demo account. The passwords are public on purpose: `--demo` is for a laptop, never production. */
export interface DemoUser {
  email: string;
  password: string;
  name: string;
  role: string;
  scopes: string[];
  channels: string[];
}

/** The demo accounts `tether serve --demo` creates (and the README lists). */
export const DEMO_USERS: readonly DemoUser[] = [
  {
    email: 'admin@example.com',
    password: 'admin-demo-pass',
    name: 'Demo Admin',
    role: 'admin',
    scopes: ['*'],
    channels: ['*'],
  },
  {
    email: 'agent@example.com',
    password: 'agent-demo-pass',
    name: 'Demo Agent',
    role: 'agent',
    scopes: ['ke/muranga'],
    channels: ['support:*'],
  },
  {
    email: 'ward@example.com',
    password: 'ward-demo-pass',
    name: 'Demo Ward Officer',
    role: 'agent',
    scopes: ['ke/muranga/kiharu/ward-5'],
    channels: ['project:42'],
  },
  {
    email: 'user@example.com',
    password: 'user-demo-pass',
    name: 'Demo User',
    role: 'user',
    scopes: [],
    channels: ['project:42'],
  },
];

/**
 * Creates the demo users that are missing; existing accounts (same email) are left untouched,
 * so running it at every start is harmless. Returns each demo account with whether it was created.
 *
 * @example
 *   const seeded = await seedDemoUsers(gatewayInternals(gateway).store);
 *   for (const u of seeded) console.warn(`${u.email} / ${u.password}`);
 */
export async function seedDemoUsers(
  store: Store,
  users: readonly DemoUser[] = DEMO_USERS,
): Promise<(DemoUser & { id: string; created: boolean })[]> {
  const out: (DemoUser & { id: string; created: boolean })[] = [];
  for (const demo of users) {
    const existing = await store.users.findByEmail(demo.email);
    if (existing !== undefined) {
      out.push({ ...demo, id: existing.id, created: false });
      continue;
    }
    const user = await store.users.create({
      email: demo.email,
      name: demo.name,
      role: demo.role,
      scopes: demo.scopes,
      channels: demo.channels,
      passwordHash: await hashPassword(demo.password),
    });
    out.push({ ...demo, id: user.id, created: true });
  }
  return out;
}
