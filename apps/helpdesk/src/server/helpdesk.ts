import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createGateway, runMigrations, type Config, type Gateway, type GatewayOptions } from '@tether/server';
import { AreasRepository } from './db/areas-repo.js';
import { openHelpdeskDb, type HelpdeskDb } from './db/connect.js';
import { DirectMessagesRepository } from './db/direct-messages-repo.js';
import { HELPDESK_MIGRATION_TABLE, HELPDESK_MIGRATIONS } from './db/migrations.js';
import { TicketsRepository } from './db/tickets-repo.js';
import type { StaffDto } from './domain/dto.js';
import { HelpdeskService } from './domain/helpdesk-service.js';
import { registerAdminRoutes } from './http/admin-routes.js';
import { registerGuestRoutes } from './http/guest-routes.js';
import { registerStaffRoutes } from './http/staff-routes.js';
import { registerStaticRoutes } from './http/static-routes.js';
import { registerClientEvents } from './realtime/client-events.js';
import { DashboardFeed } from './realtime/dashboard-feed.js';
import { deliveryView, timelineView } from './realtime/delivery-views.js';
import { HelpdeskPublisher } from './realtime/events.js';
import { seedDemo } from './seed.js';

/** Built web UI. Same relative place from `src/server` (tests) and `dist/server` (npm start). */
export const DEFAULT_PUBLIC_DIR = fileURLToPath(new URL('../../dist/public', import.meta.url));

const STAFF_ROLES = new Set(['admin', 'eo']);

export interface HelpdeskOptions extends Omit<GatewayOptions, 'routes' | 'observer'> {
  /** Seed the demo tree, staff accounts and tickets (default true). */
  seed?: boolean;
  /** Where the built web UI is (default `apps/helpdesk/dist/public`). */
  publicDir?: string;
  /** How often the dashboard gets `admin_stats` (default 1000 ms). */
  statsIntervalMs?: number;
}

export interface Helpdesk {
  readonly gateway: Gateway;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The helpdesk on an embedded Tether gateway: its tables beside Tether's in the same store, its
 * API and web UI on the gateway's HTTP server, its events through `gateway.publish`.
 *
 * @example
 *   const helpdesk = await startHelpdesk(loadConfig(process.env));
 *   console.log(`open ${helpdesk.url}`);
 */
export async function startHelpdesk(config: Config, options: HelpdeskOptions = {}): Promise<Helpdesk> {
  const feed = new DashboardFeed(options.statsIntervalMs, () => options.clock?.now() ?? Date.now());
  let registerRoutes: ((app: FastifyInstance, gateway: Gateway) => Promise<void>) | undefined;
  const gateway = await createGateway(config, {
    ...options,
    observer: feed.observer,
    routes: async (app, gw) => registerRoutes?.(app, gw),
  });
  let own: HelpdeskDb | undefined;

  try {
    // Our tables, through our own connections (Tether's store is its own business).
    own = await openHelpdeskDb(config, gateway.logger);
    const { db } = own;
    await runMigrations(db, own.kind, HELPDESK_MIGRATIONS, HELPDESK_MIGRATION_TABLE);
    const areas = new AreasRepository(db);
    await areas.load();
    const tickets = new TicketsRepository(db, (path) => areas.byPath().get(path)?.name ?? path);
    const dms = new DirectMessagesRepository(db);
    const publisher = new HelpdeskPublisher(
      (request) => gateway.publish(request),
      (event) => feed.eventPublished(event),
    );
    const listStaff = async (): Promise<StaffDto[]> => {
      const users = (await gateway.users?.list({ limit: 1000 })) ?? [];
      return users
        .filter((u) => u.active && STAFF_ROLES.has(u.role))
        .map((u) => ({
          id: u.id,
          name: u.name,
          email: u.email,
          role: u.role,
          scopes: u.scopes,
          area: areas.describe(u.scopes),
        }));
    };
    const service = new HelpdeskService({
      tickets,
      dms,
      areas,
      publisher,
      now: () => options.clock?.now() ?? Date.now(),
      isStaff: async (userId) => {
        const user = await gateway.users?.get(userId);
        return user !== undefined && user.active && STAFF_ROLES.has(user.role);
      },
    });
    if (options.seed ?? true) await seedDemo({ gateway, areas, tickets, service });

    registerClientEvents(gateway, service);
    const authenticate = (token: string) => gateway.authenticate(token);
    registerRoutes = async (app, gw) => {
      registerGuestRoutes(app, { authenticate, service, tickets, areas: () => areas.all() });
      registerStaffRoutes(app, {
        authenticate,
        service,
        tickets,
        dms,
        listStaff,
        describeArea: (s) => areas.describe(s),
      });
      registerAdminRoutes(app, {
        authenticate,
        feed,
        listStaff,
        disconnectUser: (id) => gw.disconnectUser(id),
        deliveries: (id) => deliveryView(gw, id),
        timeline: (id, query) => timelineView(gw, id, query, (userId, at) => feed.revokedBy(userId, at)),
      });
      await registerStaticRoutes(app, options.publicDir ?? DEFAULT_PUBLIC_DIR);
    };
    const { url, port } = await gateway.listen();
    feed.start(gateway);
    return {
      gateway,
      url,
      port,
      async close() {
        feed.stop();
        await gateway.close();
        await own?.close();
      },
    };
  } catch (error) {
    feed.stop();
    await gateway.close();
    await own?.close();
    throw error;
  }
}
