import type { AuthEvent, Gateway, HubObserver, Logger, PresenceEntry } from '@tether/server';
import type { AdminStatsDto, AuthEventDto, ConnectionDto } from '../domain/dto.js';
import { describeDevice } from './device.js';

/** Admins hold the root grant; publishing to it reaches exactly the admins' connections. */
const ADMIN_SCOPE = '*';
const RECENT_AUTH_EVENTS = 200;
/** The dashboard lists at most this many connections: the push goes out every second. */
const MAX_LISTED_CONNECTIONS = 500;

/**
 * The admin dashboard's data: live connections (from the hub), auth events (from the gateway's
 * feed) and events per second (from a hub observer), pushed to admins over Tether itself —
 * `admin_stats` once a second and `auth_event` as they happen, both to scope `*`.
 *
 * Made before the gateway (its observer goes into `createGateway`'s options), then `start`ed with it.
 */
export class DashboardFeed {
  private publishes = 0;
  private deliveries = 0;
  /** Writes of our own pushes, taken back out of `deliveries` so the chart shows the app's traffic. */
  private ownDeliveries = 0;
  private lastRate = { publishesPerSecond: 0, deliveriesPerSecond: 0 };
  private readonly recent: AuthEventDto[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private gateway: Gateway | undefined;

  /** Counts publishes and connection writes (the dashboard's own pushes are subtracted). */
  readonly observer: HubObserver = {
    onPublish: (_result, event) => {
      if (event !== 'admin_stats' && event !== 'auth_event') this.publishes += 1;
    },
    onDelivered: (count) => {
      this.deliveries += count;
    },
  };

  private logger: Logger | undefined;

  constructor(private readonly intervalMs = 1000) {}

  start(gateway: Gateway): void {
    this.gateway = gateway;
    this.logger = gateway.logger.child({ component: 'dashboard' });
    this.unsubscribe = gateway.onAuthEvent((event) => this.onAuthEvent(event));
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.unsubscribe?.();
    this.timer = undefined;
  }

  /** The current picture, for the dashboard's first render. */
  snapshot(): AdminStatsDto {
    const all = this.gateway?.sessions() ?? [];
    return {
      at: Date.now(),
      connections: all.slice(0, MAX_LISTED_CONNECTIONS).map(toConnection),
      totalConnections: all.length,
      ...this.lastRate,
    };
  }

  recentAuthEvents(): AuthEventDto[] {
    return [...this.recent];
  }

  private tick(): void {
    const seconds = this.intervalMs / 1000;
    const deliveries = Math.max(0, this.deliveries - this.ownDeliveries);
    this.lastRate = { publishesPerSecond: this.publishes / seconds, deliveriesPerSecond: deliveries / seconds };
    this.publishes = 0;
    this.deliveries = 0;
    this.ownDeliveries = 0;
    this.push('admin_stats', this.snapshot() as unknown as Record<string, unknown>);
  }

  private onAuthEvent(event: AuthEvent): void {
    const dto: AuthEventDto = { ...event };
    this.recent.push(dto);
    if (this.recent.length > RECENT_AUTH_EVENTS) this.recent.shift();
    this.push('auth_event', dto as unknown as Record<string, unknown>);
  }

  private push(event: string, data: Record<string, unknown>): void {
    this.gateway?.publish({ event, data, to: { scopes: [ADMIN_SCOPE] } }).then(
      (result) => {
        this.ownDeliveries += result.delivered;
      },
      (error: unknown) => {
        this.logger?.warn({ err: error, event }, 'dashboard push failed');
      },
    );
  }
}

function toConnection(s: PresenceEntry): ConnectionDto {
  return {
    sessionId: s.sessionId,
    userId: s.userId,
    transport: s.transport,
    connectedAt: s.connectedAt,
    expiresAt: s.expiresAt,
    ip: s.ip,
    device: describeDevice(s.userAgent),
    isGuest: s.isGuest,
    node: s.node,
  };
}
