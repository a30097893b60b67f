import type { AuthEvent, Gateway, HubObserver, Logger } from '@tether/server';
import type { AdminStatsDto, AuthEventDto, PublishedEventDto } from '../domain/dto.js';
import { toConnectionDto } from './device.js';

/** Admins hold the root grant; publishing to it reaches exactly the admins' connections. */
const ADMIN_SCOPE = '*';
const RECENT_AUTH_EVENTS = 200;
/** The dashboard lists at most this many connections: the push goes out every second. */
const MAX_LISTED_CONNECTIONS = 500;
/** User-addressed events kept for the dashboard's "recent events" list (ids to look up deliveries by). */
const RECENT_PUBLISHED = 20;
/** Dashboard disconnects remembered, to say who revoked a session in a user's timeline. */
const RECENT_DISCONNECTS = 200;
/** A revocation this long after a dashboard disconnect of the same user is taken to be its doing. */
const DISCONNECT_WINDOW_MS = 10_000;

/**
 * The admin dashboard's data: live connections (from the hub), auth events (from the gateway's
 * feed) and events per second (from a hub observer), pushed to admins over Tether itself —
 * `admin_stats` once a second and `auth_event` as they happen, both to scope `*`. It also keeps the
 * last events the helpdesk addressed to users by id (`admin_stats.recentEvents`), so an operator has
 * event ids to look up in the delivery record, and the dashboard's own disconnects, so a user's
 * timeline can say an administrator revoked their session.
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
  /** Newest first. */
  private readonly published: PublishedEventDto[] = [];
  private readonly disconnects: { userId: string; by: string; at: number }[] = [];
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

  constructor(
    private readonly intervalMs = 1000,
    /** The gateway's clock (timeline entries are stamped with it). */
    private readonly now: () => number = Date.now,
  ) {}

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
      connections: all.slice(0, MAX_LISTED_CONNECTIONS).map(toConnectionDto),
      totalConnections: all.length,
      ...this.lastRate,
      recentEvents: [...this.published],
    };
  }

  /** An event the helpdesk addressed to users by id was published (`HelpdeskPublisher`). */
  eventPublished(event: PublishedEventDto): void {
    this.published.unshift(event);
    if (this.published.length > RECENT_PUBLISHED) this.published.pop();
  }

  /** An admin disconnected a user from the dashboard (about to: call it before `disconnectUser`). */
  disconnectedByAdmin(userId: string, by: string): void {
    this.disconnects.push({ userId, by, at: this.now() });
    if (this.disconnects.length > RECENT_DISCONNECTS) this.disconnects.shift();
  }

  /** The admin whose dashboard disconnect revoked a session of the user at `at`, if one did. */
  revokedBy(userId: string, at: number): string | null {
    for (let i = this.disconnects.length - 1; i >= 0; i--) {
      const d = this.disconnects[i]!;
      if (d.userId === userId && at >= d.at && at - d.at <= DISCONNECT_WINDOW_MS) return d.by;
    }
    return null;
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
