import type { Gateway, PresenceEntry, TimelineEntry } from '@tether/server';
import type { DeliveryReportDto, TimelineDto } from '../domain/dto.js';
import { describeDevice, toConnectionDto } from './device.js';

/** Addressed users whose devices get a name from their timeline (an event to thousands stays one query each for the first few). */
const MAX_NAMED_USERS = 20;
/** Timeline entries read to name a user's devices. */
const NAMING_ENTRIES = 200;

/**
 * Device names ("Chrome on Linux") by connection and by login session, from the user agents of the
 * connects in a user's timeline and of their live connections. Tether's record names a device by
 * its login session id, which says nothing to a person.
 */
class DeviceNames {
  private readonly bySession = new Map<string, string>();
  private readonly byDevice = new Map<string, string>();

  add(entries: readonly TimelineEntry[], live: readonly PresenceEntry[]): this {
    for (const e of entries) {
      if (e.kind !== 'connect') continue;
      const agent = e.detail?.['userAgent'];
      const name = describeDevice(typeof agent === 'string' ? agent : undefined);
      this.bySession.set(e.sessionId, name);
      this.byDevice.set(e.device, name);
    }
    for (const s of live) this.bySession.set(s.sessionId, describeDevice(s.userAgent));
    return this;
  }

  of(sessionId: string, device: string): string {
    return this.bySession.get(sessionId) ?? this.byDevice.get(device) ?? 'unknown';
  }
}

/**
 * An event's delivery record (`gateway.deliveries`) for the dashboard: which device of which
 * addressed user got it, how, and its receipt, each device named. Undefined when nothing is recorded.
 */
export async function deliveryView(
  gateway: Pick<Gateway, 'deliveries' | 'timeline'>,
  eventId: string,
): Promise<DeliveryReportDto | undefined> {
  const report = await gateway.deliveries(eventId);
  if (report === undefined) return undefined;
  const names = new DeviceNames();
  const timelines = await Promise.all(
    report.users.slice(0, MAX_NAMED_USERS).map((u) => gateway.timeline(u.userId, { limit: NAMING_ENTRIES })),
  );
  for (const t of timelines) names.add(t.entries, t.devices);
  return {
    id: report.id,
    event: report.event,
    publishedAt: report.publishedAt,
    unacknowledged: report.unacknowledged,
    users: report.users.map((u) => ({
      userId: u.userId,
      acknowledged: u.acknowledged,
      pushes: u.pushes,
      devices: u.devices.map((d) => ({
        sessionId: d.sessionId,
        device: d.device,
        deviceName: names.of(d.sessionId, d.device),
        transport: d.transport,
        node: d.node,
        path: d.path,
        deliveredAt: d.deliveredAt,
        acknowledgedAt: d.acknowledgedAt,
      })),
    })),
  };
}

/**
 * A user's connection timeline (`gateway.timeline`) for the dashboard: entries oldest first with
 * device names, the live connections with their heartbeat round trip, and, for a revocation the
 * dashboard caused, the administrator who did it (`revokedBy`).
 */
export async function timelineView(
  gateway: Pick<Gateway, 'timeline'>,
  userId: string,
  options: { limit: number; before?: number },
  revokedBy: (userId: string, at: number) => string | null,
): Promise<TimelineDto> {
  const timeline = await gateway.timeline(userId, options);
  const names = new DeviceNames().add(timeline.entries, timeline.devices);
  return {
    userId: timeline.userId,
    reconnectsLastHour: timeline.reconnectsLastHour,
    entries: timeline.entries.map((e) => ({
      id: e.id,
      at: e.at,
      kind: e.kind,
      sessionId: e.sessionId,
      device: e.device,
      deviceName: names.of(e.sessionId, e.device),
      transport: e.transport,
      node: e.node,
      code: e.code,
      reason: e.reason,
      detail: e.detail,
      revokedBy: e.kind === 'revoked' ? revokedBy(userId, e.at) : null,
    })),
    devices: timeline.devices.map((s) => ({ ...toConnectionDto(s), rttMs: s.rttMs ?? null })),
  };
}
