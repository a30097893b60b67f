import type { FastifyInstance } from 'fastify';
import type { StaffDto } from '../domain/dto.js';
import type { DashboardFeed } from '../realtime/dashboard-feed.js';
import { adminOf, type Authenticate } from './caller.js';
import { idParam } from './schemas.js';

export interface AdminRouteDeps {
  authenticate: Authenticate;
  feed: DashboardFeed;
  listStaff: () => Promise<StaffDto[]>;
  /** Closes every live connection of the user (AUTH_REVOKED) and refuses its earlier tokens. */
  disconnectUser: (userId: string) => Promise<number>;
}

/** The dashboard's first render and its one action; live updates come over Tether (`admin_stats`, `auth_event`). */
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
    const disconnected = await deps.disconnectUser(userId);
    request.log.info(
      { event: 'admin_disconnect', by: admin.userId, userId, disconnected },
      'user disconnected from the dashboard',
    );
    return { disconnected };
  });
}
