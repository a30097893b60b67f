import { randomUUID } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { Gateway } from '@tether/server';
import type { AreasRepository } from './db/areas-repo.js';
import type { TicketsRepository } from './db/tickets-repo.js';
import { demoAreas } from './domain/admin-tree.js';
import type { HelpdeskService } from './domain/helpdesk-service.js';

export interface DemoStaff {
  email: string;
  password: string;
  name: string;
  role: 'admin' | 'eo';
  /** The admin-tree path the EO is assigned to (`*` for admins). */
  scope: string;
}

/** Demo accounts. The passwords are public (README): never seed them outside a demo. */
export const DEMO_STAFF: readonly DemoStaff[] = [
  { email: 'admin@helpdesk.demo', password: 'admin-demo', name: 'Amina Admin', role: 'admin', scope: '*' },
  {
    email: 'eo.muranga@helpdesk.demo',
    password: 'eo-demo',
    name: 'Wanjiku',
    role: 'eo',
    scope: 'ke/muranga',
  },
  {
    email: 'eo.kiharu@helpdesk.demo',
    password: 'eo-demo',
    name: 'Kamau',
    role: 'eo',
    scope: 'ke/muranga/kiharu',
  },
  {
    email: 'eo.mbiri@helpdesk.demo',
    password: 'eo-demo',
    name: 'Njeri',
    role: 'eo',
    scope: 'ke/muranga/kiharu/mbiri',
  },
  {
    email: 'eo.nakuru@helpdesk.demo',
    password: 'eo-demo',
    name: 'Chebet',
    role: 'eo',
    scope: 'ke/nakuru',
  },
  {
    email: 'eo.njoro@helpdesk.demo',
    password: 'eo-demo',
    name: 'Otieno',
    role: 'eo',
    scope: 'ke/nakuru/njoro',
  },
];

const DEMO_TICKETS = [
  {
    ward: 'ke/muranga/kiharu/mbiri',
    name: 'Esther N.',
    body: 'Which certified seed variety is best for the short rains?',
  },
  {
    ward: 'ke/muranga/kiharu/township',
    name: 'Samuel M.',
    body: 'My dairy cow has ticks all over, what spray should I use?',
  },
  {
    ward: 'ke/muranga/kiharu/murarandia',
    name: 'Lucy W.',
    body: 'When is the subsidised fertilizer coming to our ward?',
  },
  {
    ward: 'ke/muranga/kandara/ruchu',
    name: 'John K.',
    body: 'Where can I sell 20 bags of beans? What is the price this week?',
  },
  {
    ward: 'ke/nakuru/njoro/mauche',
    name: 'Grace C.',
    body: 'I found worms eating the maize funnel, is it fall armyworm?',
  },
  { ward: 'ke/nakuru/molo/turi', name: 'Peter O.', body: 'One of my cows has stopped giving milk since Monday.' },
];

/**
 * Idempotent demo data: the admin tree, one account per staff level, and a few open tickets
 * (only into an empty helpdesk). Users already present (same email) are left as they are.
 */
export async function seedDemo(deps: {
  gateway: Gateway;
  areas: AreasRepository;
  tickets: TicketsRepository;
  service: HelpdeskService;
}): Promise<void> {
  const { gateway } = deps;
  await deps.areas.ensure(demoAreas());
  const users = gateway.users;
  if (users === undefined)
    throw new TetherError('INTERNAL', 'The demo needs the built-in token service (a signing key)');
  for (const s of DEMO_STAFF) {
    if ((await users.findByEmail(s.email)) !== undefined) continue;
    await users.create({ email: s.email, password: s.password, name: s.name, role: s.role, scopes: [s.scope] });
  }
  if ((await deps.tickets.listForGrants(['*'], 'seed', 'open', 1)).length > 0) return;
  for (const t of DEMO_TICKETS) {
    await deps.service.openTicket({
      customerId: `guest:${randomUUID()}`,
      customerName: t.name,
      ward: t.ward,
      body: t.body,
    });
  }
}
