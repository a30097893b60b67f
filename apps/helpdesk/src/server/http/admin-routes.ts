import { TetherError } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';
import type { DeliveryReportDto, StaffDto, TimelineDto } from '../domain/dto.js';
import type { DashboardFeed } from '../realtime/dashboard-feed.js';
import { adminOf, type Authenticate } from './caller.js';
import { idParam, parse, TimelineQuery } from './schemas.js';

export interface AdminRouteDeps {
  authenticate: Authenticate;
  feed: DashboardFeed;
  listStaff: () => Promise<StaffDto[]>;
  /** Closes every live connection of the user (AUTH_REVOKED) and refuses its earlier tokens. */
  disconnectUser: (userId: string) => Promise<number>;
  /** An event's delivery record with receipts; undefined when nothing is recorded under the id. */
  deliveries: (eventId: string) => Promise<DeliveryReportDto | undefined>;
  /** A user's connection timeline and live connections. */
  timeline: (userId: string, options: { limit: number; before?: number }) => Promise<TimelineDto>;
}

/**
 * The dashboard's first render, its one action, and its look-ups (an event's deliveries, a user's
 * timeline); live updates come over Tether (`admin_stats`, `auth_event`).
 */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  const { authenticate } = deps;

  app.get('/api/admin/stats', async (request) => {
    await adminOf(request, authenticate);
    return deps.feed.snapshot();
  });

  app.get('/api/admin/auth-events', async (request) => {
    await adminOf(request, authenticate);
    return deps.feed.recentAuthEvents();
  });

  app.get('/api/admin/staff', async (request) => {
    await adminOf(request, authenticate);
    return deps.listStaff();
  });

  app.post('/api/admin/users/:id/disconnect', async (request) => {
    const admin = await adminOf(request, authenticate);
    const userId = idParam(request.params);
    deps.feed.disconnectedByAdmin(userId, admin.name);
    const disconnected = await deps.disconnectUser(userId);
    request.log.info(
      { event: 'admin_disconnect', by: admin.userId, userId, disconnected },
      'user disconnected from the dashboard',
    );
    return { disconnected };
  });

  app.get('/api/admin/events/:id/deliveries', async (request) => {
    await adminOf(request, authenticate);
    const report = await deps.deliveries(idParam(request.params));
    if (report === undefined)
      throw new TetherError(
        'NOT_FOUND',
        'Nothing is recorded under this event id (unknown, not addressed to users, or past the retention)',
      );
    return report;
  });

  app.get('/api/admin/users/:id/timeline', async (request) => {
    await adminOf(request, authenticate);
    const userId = idParam(request.params);
    const { limit, before } = parse(TimelineQuery, request.query);
    return deps.timeline(userId, before === undefined ? { limit } : { limit, before });
  });
}
