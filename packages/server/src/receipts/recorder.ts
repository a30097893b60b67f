import type { ErrorCode } from '@tether/protocol';
import type { RefusalReason } from '../auth/refusal-reason.js';
import type { CloseReason, DeliveryPath, DeliveryTracker, HubObserver, OutboundEvent, Session } from '../hub/types.js';
import type { PushEvent } from '../push/push-fallback.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { DeliveryRow, DeliveryStore, PendingPushRow, TimelineKind, TimelineRow } from './delivery-store.js';
import type { DeliveryReport, DeviceDelivery, TimelineEntry, TimelineReport, UserDeliveries } from './types.js';

/** Which deliveries are recorded: none, those of events addressed to users by id, or every one. */
export type DeliveryRecordMode = 'off' | 'users' | 'all';

export interface DeliveryRecordSettings {
  mode: DeliveryRecordMode;
  /** Rows older than this are deleted (deliveries and timeline). */
  retentionMs: number;
  /** Each table keeps at most about this many rows (the oldest go first). */
  maxRows: number;
  /** A recorded delivery without a receipt this long counts as unacknowledged (metric). */
  receiptTimeoutMs: number;
  /** Push a user-addressed event to the user's devices when no device acknowledged it this long after publish; undefined: off. */
  pushAfterMs: number | undefined;
  /** How often buffered rows are written (default 200 ms). */
  flushMs?: number;
}

/** What the recorder reports to Prometheus (`observability/metrics.ts`). */
export interface ReceiptMetrics {
  /** Publish (or arrival on this node) to receipt, for a delivery this node wrote. */
  receiptLatency(seconds: number): void;
  /** Recorded deliveries that got no receipt within the receipt timeout. */
  unacknowledged(count: number, transport: string): void;
  /** Read at each scrape: recorded deliveries waiting for their receipt. */
  awaiting(read: () => number): void;
  /** A push sent because no device acknowledged an event in time. */
  receiptPush(): void;
  /** Rows dropped because the write buffer was full (the store fell behind). */
  dropped(count: number): void;
  /**
   * A device (a login session: its token's refresh family) connected while another of its
   * connections was open on this node, or within an hour after its last one here closed.
   */
  reconnection(transport: string): void;
}

/** Sends a push for a user and event, whatever the user's presence (push fallback's `pushNow`). */
export type Pusher = (userId: string, event: PushEvent) => Promise<void>;

/** Rows written per transaction unless the store says otherwise; a flush of more writes several, a turn apart. */
const WRITE_SLICE_ROWS = 250;
/** Rows waiting to be written at most; past this they are dropped and counted (memory bound). */
const MAX_BUFFERED_ROWS = 100_000;
/** Recorded deliveries waiting for a receipt at most (memory bound: ~150 bytes each). */
const MAX_AWAITING = 200_000;
/** Devices remembered for the reconnection count (after their last connection closed). */
const MAX_DEVICES_SEEN = 100_000;
/** Event ids this node recorded a delivery of, so a receipt for one on a later connection still counts. */
const MAX_RECENT_EVENTS = 100_000;
const HOUR_MS = 3_600_000;
const HOUR_S = 3_600;
const PRUNE_EVERY_MS = 60_000;
const MAX_PUSHES_PER_SWEEP = 200;
const MAX_DELIVERY_ROWS_READ = 20_000;

interface Awaiting {
  /** `performance.now()` of the publish (or of the event's arrival on this node). */
  publishedAt: number;
  /** clock ms when written. */
  at: number;
  transport: string;
  /** Its delivery row: a receipt that comes while the row is still held is written on it. */
  row: DeliveryRow;
}

/**
 * Delivery rows wait this long for their receipt before they are written (the SDK sends receipts
 * within 100 ms): one row with both times instead of a delivery row and an `ack` row.
 */
const HOLD_FOR_RECEIPT_MS = 400;

/**
 * The delivery record, the connection timeline and push on a missing receipt.
 *
 * The hub calls `sent` for each event it writes and `receipt` for each receipt a connection sends;
 * both only append to a buffer, written to the store every `flushMs` in one transaction. Its
 * `observer` turns connection lifecycle into timeline rows. A sweep each second counts deliveries
 * whose receipt did not come, pushes due pending pushes, and now and then deletes old rows.
 *
 * Push on a missing receipt: the publishing node records, for each addressed user that has a live
 * connection, a pending push due `pushAfterMs` later, in the store (so it survives a restart and any
 * node may send it). When due, the node that deletes the row sends it, unless an `ack` row of any
 * device of that user exists: at most one push per event and user.
 *
 * @example
 *   const recorder = new DeliveryRecorder({ store, settings, nodeId, clock, logger });
 *   const hub = createHub({ …, deliveries: recorder, observer: combineObservers(metrics.observer, recorder.observer) });
 *   recorder.start();
 */
export class DeliveryRecorder implements DeliveryTracker {
  readonly observer: HubObserver;
  private deliveriesBuffer: DeliveryRow[] = [];
  /** Delivery rows held for their receipt, oldest first. */
  private held: DeliveryRow[] = [];
  /** Delivery rows released from `held` to be written: a receipt after that is an `ack` row of its own. */
  private readonly written = new WeakSet<DeliveryRow>();
  private timelineBuffer: TimelineRow[] = [];
  private pendingBuffer: PendingPushRow[] = [];
  private readonly awaiting = new Map<string, Awaiting>();
  private readonly recentEvents = new Set<string>();
  /**
   * Refresh family → when its last connection on this node closed, in whole seconds (a small
   * integer: a time in ms would be a boxed number per entry). Written at close, not at connect: a
   * device that is connected is found through the hub (`openInFamily`), so idle connections cost
   * this map nothing.
   */
  private readonly devicesSeen = new Map<string, number>();
  private flushTimer: TimerHandle | undefined;
  private sweepTimer: TimerHandle | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private lastPrune = 0;
  private pusher: Pusher | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      store: DeliveryStore;
      settings: DeliveryRecordSettings;
      nodeId: string;
      clock: Clock;
      logger: Logger;
      metrics?: ReceiptMetrics;
      /**
       * Live connections of a refresh family on this node, the one just opened included (the
       * hub's `openInFamily`): a device reconnecting before its old connection is known dead.
       */
      openInFamily?: (familyId: string) => number;
    },
  ) {
    deps.metrics?.awaiting(() => this.awaiting.size);
    this.observer = {
      onSessionOpened: (session) => {
        this.countReconnection(session);
        this.timeline(session, 'connect', null, null, {
          userAgent: session.info.userAgent,
          tokenSource: session.info.tokenSource,
        });
      },
      onReauth: (session, ok, code, reason) =>
        ok
          ? this.timeline(session, 'reauth', null, null, { expiresAt: session.principal.expiresAt })
          : this.timeline(session, 'reauth_failed', code ?? null, reason?.check ?? null),
      onExpiryWarning: (session) =>
        this.timeline(session, 'warning', null, null, { expiresAt: session.principal.expiresAt }),
      onSessionClosed: (session, reason, code, message) => {
        this.rememberDevice(session);
        this.closed(session, reason, code, message);
      },
    };
  }

  /** Starts the sweep; `pusher` sends pushes for missing receipts (absent: none are sent). */
  start(pusher?: Pusher): void {
    this.pusher = pusher;
    const { pushAfterMs } = this.deps.settings;
    const every = Math.max(50, Math.min(1000, pushAfterMs === undefined ? 1000 : Math.floor(pushAfterMs / 4)));
    const arm = (): void => {
      if (this.stopped) return;
      this.sweepTimer = this.deps.clock.setTimeout(() => {
        this.sweepTimer = undefined;
        void this.sweep().finally(arm);
      }, every);
      this.sweepTimer.unref?.();
    };
    arm();
  }

  // --- hot path ---------------------------------------------------------------------------------

  sent(session: Session, event: OutboundEvent, path: DeliveryPath): void {
    if (!this.records(event, session.userId)) return;
    const at = this.deps.clock.now();
    const row = this.row(session, event.id, path, at, null);
    this.push(this.held, row);
    if (this.awaiting.size < MAX_AWAITING)
      this.awaiting.set(awaitKey(session.id, event.id), {
        publishedAt: event.publishedAt,
        at,
        transport: session.transport,
        row,
      });
    if (this.recentEvents.size >= MAX_RECENT_EVENTS) this.recentEvents.delete(first(this.recentEvents)!);
    this.recentEvents.add(event.id);
  }

  receipt(session: Session, ids: readonly string[]): void {
    const now = performance.now();
    const at = this.deps.clock.now();
    for (const id of ids) {
      const key = awaitKey(session.id, id);
      const waiting = this.awaiting.get(key);
      if (waiting !== undefined) {
        this.awaiting.delete(key);
        this.deps.metrics?.receiptLatency((now - waiting.publishedAt) / 1000);
        if (!this.written.has(waiting.row)) {
          waiting.row.acked_at = at;
          continue;
        }
      } else if (!this.recentEvents.has(id)) {
        // Not a delivery this node recorded (an unrecorded scope event, or one recorded elsewhere).
        continue;
      }
      this.push(this.deliveriesBuffer, this.row(session, id, 'ack', at, null));
    }
  }

  private records(event: OutboundEvent, userId: string): boolean {
    const { mode } = this.deps.settings;
    if (mode === 'all') return true;
    if (mode === 'off') return false;
    const users = event.users;
    if (users === undefined) return false;
    if (users.length <= 8) return users.includes(userId);
    event.userSet ??= new Set(users);
    return event.userSet.has(userId);
  }

  // --- publishing node --------------------------------------------------------------------------

  /** The publishing node records which users a user-addressed event was for, once. */
  addressed(event: { id: string; event: string; users: readonly string[] }): void {
    if (this.deps.settings.mode === 'off') return;
    const at = this.deps.clock.now();
    // Held like delivery rows, so they are written with them (one row per event: delivery-store.ts).
    for (const userId of new Set(event.users))
      this.push(this.held, {
        event_id: event.id,
        user_id: userId,
        session_id: '',
        device: '',
        kind: 'addressed',
        at,
        transport: '',
        node: this.deps.nodeId,
        detail: event.event,
        acked_at: null,
      });
  }

  /** A user with a live connection: push the event if no device of theirs acknowledges it in time. */
  schedulePush(userId: string, event: PushEvent): void {
    const after = this.deps.settings.pushAfterMs;
    if (after === undefined) return;
    this.push(this.pendingBuffer, {
      event_id: event.id,
      user_id: userId,
      due_at: this.deps.clock.now() + after,
      body: JSON.stringify({ event: event.event, data: event.data }),
    });
  }

  /** A push was sent for the event and user (`offline` or `no_receipt`). */
  pushed(eventId: string, userId: string, reason: 'offline' | 'no_receipt'): void {
    if (this.deps.settings.mode === 'off') return;
    this.push(this.deliveriesBuffer, {
      event_id: eventId,
      user_id: userId,
      session_id: '',
      device: 'push',
      kind: 'push',
      at: this.deps.clock.now(),
      transport: 'push',
      node: this.deps.nodeId,
      detail: reason,
      acked_at: null,
    });
  }

  // --- queries ----------------------------------------------------------------------------------

  /** The record of one event, or undefined when nothing was recorded for it (unknown, or past retention). */
  async deliveries(eventId: string): Promise<DeliveryReport | undefined> {
    await this.flush();
    const rows = await this.deps.store.deliveriesOf(eventId, MAX_DELIVERY_ROWS_READ);
    if (rows.length === 0) return undefined;
    let name: string | null = null;
    let publishedAt: number | null = null;
    const users = new Map<string, UserDeliveries & { bySession: Map<string, DeviceDelivery> }>();
    const user = (userId: string) => {
      let entry = users.get(userId);
      if (entry === undefined) {
        entry = { userId, acknowledged: false, devices: [], pushes: [], bySession: new Map() };
        users.set(userId, entry);
      }
      return entry;
    };
    const acks: typeof rows = [];
    for (const row of rows) {
      const entry = user(row.user_id);
      switch (row.kind) {
        case 'addressed':
          name ??= row.detail;
          publishedAt ??= row.at;
          break;
        case 'push':
          entry.pushes.push({ at: row.at, reason: row.detail ?? 'offline' });
          break;
        case 'ack':
          acks.push(row);
          break;
        case 'live':
        case 'recovery': {
          if (entry.bySession.has(row.session_id)) break;
          const device: DeviceDelivery = {
            sessionId: row.session_id,
            device: row.device,
            transport: row.transport,
            node: row.node,
            path: row.kind,
            deliveredAt: row.at,
            acknowledgedAt: row.acked_at,
          };
          entry.bySession.set(row.session_id, device);
          entry.devices.push(device);
          if (row.acked_at !== null) entry.acknowledged = true;
          break;
        }
      }
    }
    for (const ack of acks) {
      const entry = user(ack.user_id);
      entry.acknowledged = true;
      // The receipt of the connection it was written to; else (sent after a reconnect) the same device's.
      const target =
        entry.bySession.get(ack.session_id) ??
        entry.devices.find((d) => d.device === ack.device && d.acknowledgedAt === null);
      if (target !== undefined) target.acknowledgedAt ??= ack.at;
    }
    let unacknowledged = 0;
    const out: UserDeliveries[] = [];
    for (const { bySession: _, ...entry } of users.values()) {
      unacknowledged += entry.devices.filter((d) => d.acknowledgedAt === null).length;
      out.push(entry);
    }
    return { id: eventId, event: name, publishedAt, users: out, unacknowledged };
  }

  /** The newest `limit` timeline entries of a user (before entry id `before`), oldest first. */
  async timelineOf(
    userId: string,
    options: { limit: number; before?: number },
  ): Promise<Omit<TimelineReport, 'devices'>> {
    await this.flush();
    const rows = await this.deps.store.timelineOf(userId, options.limit, options.before);
    const since = await this.deps.store.connectsSince(userId, this.deps.clock.now() - HOUR_MS);
    const entries: TimelineEntry[] = rows.reverse().map((row) => ({
      id: row.id,
      at: row.at,
      kind: row.kind,
      sessionId: row.session_id,
      device: row.device,
      transport: row.transport,
      node: row.node,
      code: row.code,
      reason: row.reason,
      detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
    }));
    return { userId, entries, reconnectsLastHour: Math.max(0, since.connects - since.devices) };
  }

  // --- buffer and sweep -------------------------------------------------------------------------

  /** Writes everything buffered (held rows too); resolves once it is in the store. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeBuffered(true));
    return this.flushing;
  }

  /** Writes what is buffered and stops the sweep (pending pushes stay in the store for the next start). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer !== undefined) this.deps.clock.clearTimeout(this.sweepTimer);
    if (this.flushTimer !== undefined) this.deps.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush();
  }

  private async writeBuffered(all: boolean): Promise<void> {
    if (this.flushTimer !== undefined) this.deps.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.release(all);
    const deliveries = this.deliveriesBuffer;
    const timeline = this.timelineBuffer;
    const pending = this.pendingBuffer;
    if (deliveries.length + timeline.length + pending.length === 0) {
      if (this.held.length > 0) this.armFlush();
      return;
    }
    this.deliveriesBuffer = [];
    this.timelineBuffer = [];
    this.pendingBuffer = [];
    try {
      // In slices (WRITE_SLICE_ROWS unless the store sets its own), one transaction each, with a turn
      // between them: a store that writes on this thread holds the event loop, and one transaction of
      // a busy flush (thousands of timeline rows in a reauth storm) held it for 30–90 ms, which every
      // delivery waited out. The embedded record's worker takes a whole flush at once.
      const slices = writeSlices({ deliveries, timeline, pending }, this.deps.store.writeSliceRows ?? WRITE_SLICE_ROWS);
      for (const [n, slice] of slices.entries()) {
        if (n > 0) await new Promise((resolve) => setImmediate(resolve));
        try {
          await this.deps.store.write(slice);
        } catch (err) {
          const rows = slice.deliveries.length + slice.timeline.length + slice.pending.length;
          this.deps.logger.warn({ component: 'receipts', err, rows }, 'delivery record write failed; rows dropped');
          this.deps.metrics?.dropped(rows);
        }
      }
    } finally {
      if (this.held.length > 0) this.armFlush();
    }
  }

  /** Moves held delivery rows whose wait is over (all of them when `all`) to the write buffer. */
  private release(all: boolean): void {
    const due = this.deps.clock.now() - HOLD_FOR_RECEIPT_MS;
    let i = 0;
    while (i < this.held.length && (all || this.held[i]!.at <= due)) {
      const row = this.held[i++]!;
      this.written.add(row);
      this.deliveriesBuffer.push(row);
    }
    if (i > 0) this.held = this.held.slice(i);
  }

  private push<T>(buffer: T[], row: T): void {
    if (this.buffered() >= MAX_BUFFERED_ROWS) {
      this.deps.metrics?.dropped(1);
      return;
    }
    buffer.push(row);
    this.armFlush();
  }

  private armFlush(): void {
    if (this.flushTimer !== undefined || this.stopped) return;
    this.flushTimer = this.deps.clock.setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing.then(() => this.writeBuffered(false));
    }, this.deps.settings.flushMs ?? 200);
    this.flushTimer.unref?.();
  }

  private buffered(): number {
    return this.deliveriesBuffer.length + this.held.length + this.timelineBuffer.length + this.pendingBuffer.length;
  }

  private async sweep(): Promise<void> {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    this.countUnacknowledged(now);
    try {
      if (this.pusher !== undefined && this.deps.settings.pushAfterMs !== undefined) await this.pushDue(now);
      if (now - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = now;
        const deleted = await this.deps.store.prune(now - this.deps.settings.retentionMs, this.deps.settings.maxRows);
        if (deleted > 0) this.deps.logger.debug({ component: 'receipts', deleted }, 'delivery record pruned');
      }
    } catch (err) {
      this.deps.logger.warn({ component: 'receipts', err }, 'delivery record sweep failed');
    }
  }

  private countUnacknowledged(now: number): void {
    const deadline = now - this.deps.settings.receiptTimeoutMs;
    const late = new Map<string, number>();
    // Insertion order is write order: stop at the first one still in time.
    for (const [key, waiting] of this.awaiting) {
      if (waiting.at > deadline) break;
      this.awaiting.delete(key);
      late.set(waiting.transport, (late.get(waiting.transport) ?? 0) + 1);
    }
    for (const [transport, count] of late) this.deps.metrics?.unacknowledged(count, transport);
  }

  private async pushDue(now: number): Promise<void> {
    // This node's own receipts first, so they count before any of its pending pushes is judged.
    await this.flush();
    const due = await this.deps.store.duePushes(now, MAX_PUSHES_PER_SWEEP);
    for (const pending of due) {
      if (this.stopped) return;
      const acked = await this.deps.store.acknowledged(pending.event_id, pending.user_id);
      // Whoever deletes the row decides: another node (or an earlier sweep) may have taken it.
      if (!(await this.deps.store.claimPush(pending.event_id, pending.user_id)) || acked) continue;
      const body = JSON.parse(pending.body) as { event: string; data: Record<string, unknown> };
      this.deps.metrics?.receiptPush();
      this.deps.logger.info(
        { component: 'receipts', eventId: pending.event_id, userId: pending.user_id },
        'no device acknowledged the event in time: pushing',
      );
      // Not awaited: a slow webhook must not hold up the next sweep (the pusher logs its failures).
      void this.pusher!(pending.user_id, { id: pending.event_id, ...body });
    }
  }

  // --- timeline ---------------------------------------------------------------------------------

  private closed(session: Session, reason: CloseReason, code: ErrorCode | null, message: string | undefined): void {
    const kind: TimelineKind = reason === 'expired' ? 'expired' : reason === 'revoked' ? 'revoked' : 'disconnect';
    // A revocation says why (administrator, disabled account, sign-out, refresh reuse): kept with it.
    this.timeline(session, kind, code, reason, kind === 'revoked' && message !== undefined ? { message } : undefined);
  }

  private timeline(
    session: Session,
    kind: TimelineKind,
    code: ErrorCode | string | null,
    reason: CloseReason | RefusalReason['check'] | null,
    detail?: Record<string, unknown>,
  ): void {
    if (this.deps.settings.mode === 'off') return;
    this.push(this.timelineBuffer, {
      user_id: session.userId,
      session_id: session.id,
      device: deviceOf(session),
      kind,
      code,
      reason,
      transport: session.transport,
      node: this.deps.nodeId,
      at: this.deps.clock.now(),
      detail: detail === undefined ? null : JSON.stringify(detail),
    });
  }

  /**
   * Counts a reconnection: the device has another connection open here (it came back before its
   * old one was found dead, as a phone changing networks does), or its last one here closed less
   * than an hour ago. A connection without a refresh family is never recognised as the same device.
   */
  private countReconnection(session: Session): void {
    const device = session.principal.sessionFamilyId;
    if (device === undefined) return;
    const closedAt = this.devicesSeen.get(device);
    const again =
      (this.deps.openInFamily?.(device) ?? 0) > 1 ||
      (closedAt !== undefined && nowSeconds(this.deps.clock) - closedAt < HOUR_S);
    if (again) this.deps.metrics?.reconnection(session.transport);
  }

  /** A connection closed: its device is remembered for an hour (the newest last, the oldest forgotten first). */
  private rememberDevice(session: Session): void {
    const device = session.principal.sessionFamilyId;
    if (device === undefined) return;
    this.devicesSeen.delete(device);
    if (this.devicesSeen.size >= MAX_DEVICES_SEEN) this.devicesSeen.delete(first(this.devicesSeen.keys())!);
    this.devicesSeen.set(device, nowSeconds(this.deps.clock));
  }

  private row(
    session: Session,
    eventId: string,
    kind: DeliveryRow['kind'],
    at: number,
    detail: string | null,
  ): DeliveryRow {
    return {
      event_id: eventId,
      user_id: session.userId,
      session_id: session.id,
      device: deviceOf(session),
      kind,
      at,
      transport: session.transport,
      node: this.deps.nodeId,
      detail,
      acked_at: null,
    };
  }
}

/** The login session (refresh family) of the connection's token: one phone across reconnects; else the connection. */
function deviceOf(session: Session): string {
  return session.principal.sessionFamilyId ?? session.id;
}

function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

function awaitKey(sessionId: string, eventId: string): string {
  return `${sessionId}\n${eventId}`;
}

function first<T>(items: Iterable<T>): T | undefined {
  for (const item of items) return item;
  return undefined;
}

type WriteRows = Parameters<DeliveryStore['write']>[0];

/** `rows` cut into slices of at most `size` rows in all, in order (deliveries, then timeline, then pending). */
export function writeSlices(rows: WriteRows, size: number): WriteRows[] {
  const out: WriteRows[] = [];
  const cursor = { deliveries: 0, timeline: 0, pending: 0 };
  const left = () =>
    rows.deliveries.length -
    cursor.deliveries +
    rows.timeline.length -
    cursor.timeline +
    rows.pending.length -
    cursor.pending;
  while (left() > 0) {
    let room = size;
    const take = <T>(list: readonly T[], key: keyof typeof cursor): T[] => {
      const part = list.slice(cursor[key], cursor[key] + room);
      cursor[key] += part.length;
      room -= part.length;
      return part;
    };
    out.push({
      deliveries: take(rows.deliveries, 'deliveries'),
      timeline: take(rows.timeline, 'timeline'),
      pending: take(rows.pending, 'pending'),
    });
  }
  return out;
}
