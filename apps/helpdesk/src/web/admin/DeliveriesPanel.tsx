import { useEffect, useState, type FormEvent } from 'react';
import { TetherError, type ApiClient } from '@tether/client';
import type { DeliveryReportDto, PublishedEventDto, UserDeliveriesDto } from '../../server/domain/dto.js';
import { formatTime } from '../router.js';
import { describeEvent, describePath, describePush, formatDelay } from './words.js';

/** While an event is this young and an addressed user has not acknowledged it, the panel looks again… */
const WATCH_MS = 120_000;
/** …this often: receipts come a moment after delivery, recoveries when a device reconnects. */
const WATCH_EVERY_MS = 2000;

type Lookup =
  | { kind: 'idle' }
  | { kind: 'loading'; id: string }
  | { kind: 'found'; report: DeliveryReportDto }
  | { kind: 'missing'; id: string }
  | { kind: 'failed'; id: string };

/**
 * An event's deliveries: search an event id (or pick one the helpdesk just sent to users) and see,
 * per addressed user, each device it was written to, how (live, or recovered on a reconnect), when,
 * and when the SDK on it acknowledged it; the pushes sent; how many deliveries are unacknowledged.
 */
export function DeliveriesPanel({
  api,
  recent,
  label,
  onOpenUser,
}: {
  api: ApiClient;
  /** Events the helpdesk addressed to users by id, newest first (`admin_stats.recentEvents`). */
  recent: PublishedEventDto[];
  label: (userId: string) => string;
  onOpenUser: (userId: string) => void;
}) {
  const [query, setQuery] = useState('');
  // `n` makes the same id a new look-up (search again, Refresh).
  const [wanted, setWanted] = useState<{ id: string; n: number } | null>(null);
  const [lookup, setLookup] = useState<Lookup>({ kind: 'idle' });

  const lookUp = (id: string) => {
    setQuery(id);
    setWanted((w) => ({ id, n: (w?.n ?? 0) + 1 }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const id = query.trim();
    if (id.length > 0) lookUp(id);
  };

  useEffect(() => {
    if (wanted === null) return;
    const { id } = wanted;
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A refresh keeps the report on screen until the new one is in.
    setLookup((l) => (l.kind === 'found' && l.report.id === id ? l : { kind: 'loading', id }));
    const load = async () => {
      try {
        const report = await api.get<DeliveryReportDto>(`/api/admin/events/${encodeURIComponent(id)}/deliveries`);
        if (!live) return;
        setLookup({ kind: 'found', report });
        const young = report.publishedAt !== null && Date.now() - report.publishedAt < WATCH_MS;
        if (young && report.users.some((u) => !u.acknowledged)) timer = setTimeout(() => void load(), WATCH_EVERY_MS);
      } catch (err) {
        if (!live) return;
        setLookup(
          err instanceof TetherError && err.code === 'NOT_FOUND' ? { kind: 'missing', id } : { kind: 'failed', id },
        );
      }
    };
    void load();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [api, wanted]);

  const current = wanted?.id ?? null;
  return (
    <section className="panel wide" data-testid="deliveries-panel">
      <h2>Deliveries</h2>
      <form className="search" role="search" onSubmit={submit} data-testid="delivery-search">
        <input
          name="event-id"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          placeholder="Event id, e.g. a message id"
          aria-label="Event id"
          autoComplete="off"
          spellCheck={false}
        />
        <button type="submit">Show deliveries</button>
      </form>
      <div className="deliveries">
        <div className="delivery-result" aria-live="polite">
          {lookup.kind === 'idle' && (
            <p className="muted">Search an event id, or pick one of the recent events, to see which devices got it.</p>
          )}
          {lookup.kind === 'loading' && <p className="muted">Looking up {lookup.id}…</p>}
          {lookup.kind === 'missing' && (
            <p className="error" data-testid="delivery-missing">
              Nothing is recorded for event <code>{lookup.id}</code>. Deliveries are recorded for events addressed to
              users by id, and kept for a limited time.
            </p>
          )}
          {lookup.kind === 'failed' && <p className="error">Could not look up {lookup.id} (offline?). Try again.</p>}
          {lookup.kind === 'found' && (
            <Report
              report={lookup.report}
              label={label}
              onOpenUser={onOpenUser}
              onRefresh={() => lookUp(lookup.report.id)}
            />
          )}
        </div>
        <div className="recent-events">
          <h3>Recent events to users</h3>
          {recent.length === 0 ? (
            <p className="muted small">
              None yet. Direct messages, read receipts and what a customer is sent appear here as the helpdesk sends
              them.
            </p>
          ) : (
            <ol data-testid="recent-events">
              {recent.map((e) => (
                <li key={e.id}>
                  <button
                    className={e.id === current ? 'recent-event selected' : 'recent-event'}
                    onClick={() => lookUp(e.id)}
                    data-testid="recent-event"
                    data-event-id={e.id}
                    title="Show its deliveries"
                  >
                    <span>
                      <span className="time">{formatTime(e.at)}</span> <strong>{describeEvent(e.event)}</strong>{' '}
                      <span className="muted">to {e.users.map(label).join(', ')}</span>
                    </span>
                    <code className="event-id">{e.id}</code>
                  </button>
                </li>
              ))}
            </ol>
          )}
        </div>
      </div>
    </section>
  );
}

function Report({
  report,
  label,
  onOpenUser,
  onRefresh,
}: {
  report: DeliveryReportDto;
  label: (userId: string) => string;
  onOpenUser: (userId: string) => void;
  onRefresh: () => void;
}) {
  return (
    <div data-testid="delivery-report" data-event-id={report.id} data-unacknowledged={report.unacknowledged}>
      <p className="delivery-summary">
        <strong>{describeEvent(report.event)}</strong>
        {report.event !== null && <span className="muted"> ({report.event})</span>}
        {report.publishedAt !== null && <> · sent {formatTime(report.publishedAt)}</>} ·{' '}
        <span
          className={report.unacknowledged > 0 ? 'warn' : 'ok'}
          data-testid="unacknowledged"
          title="Deliveries to a device that has not reported the event reached the app"
        >
          {report.unacknowledged} not acknowledged
        </span>{' '}
        <button className="link" onClick={onRefresh} data-testid="delivery-refresh">
          Refresh
        </button>
      </p>
      <p className="muted small">
        Event <code className="event-id">{report.id}</code>
      </p>
      {report.users.map((u) => (
        <UserDeliveries key={u.userId} user={u} label={label} onOpenUser={onOpenUser} />
      ))}
    </div>
  );
}

function UserDeliveries({
  user,
  label,
  onOpenUser,
}: {
  user: UserDeliveriesDto;
  label: (userId: string) => string;
  onOpenUser: (userId: string) => void;
}) {
  return (
    <article
      className="delivery-user"
      data-testid="delivery-user"
      data-user-id={user.userId}
      data-acknowledged={user.acknowledged}
    >
      <h3>
        {label(user.userId)}{' '}
        <span className={user.acknowledged ? 'pill pill-ok' : 'pill pill-warn'}>
          {user.acknowledged ? 'acknowledged' : 'not acknowledged'}
        </span>{' '}
        <button
          className="link"
          onClick={() => onOpenUser(user.userId)}
          data-testid="open-timeline"
          data-user-id={user.userId}
        >
          Timeline
        </button>
      </h3>
      {user.devices.length === 0 ? (
        <p className="muted small">
          No device of theirs has received it: none was connected. It is replayed to one that reconnects in time.
        </p>
      ) : (
        <table className="records">
          <thead>
            <tr>
              <th>Device</th>
              <th>Transport</th>
              <th>Node</th>
              <th>Path</th>
              <th>Delivered</th>
              <th>Acknowledged</th>
            </tr>
          </thead>
          <tbody>
            {user.devices.map((d) => (
              <tr
                key={d.sessionId}
                data-testid="delivery-device"
                data-session-id={d.sessionId}
                data-path={d.path}
                data-acknowledged={d.acknowledgedAt !== null}
              >
                <td data-label="Device">
                  {d.deviceName}{' '}
                  <span className="muted small" title={`Login session ${d.device}`}>
                    {d.device.slice(0, 8)}
                  </span>
                </td>
                <td data-label="Transport">{d.transport}</td>
                <td data-label="Node">{d.node}</td>
                <td data-label="Path">{describePath(d.path)}</td>
                <td data-label="Delivered">{formatTime(d.deliveredAt)}</td>
                <td data-label="Acknowledged" data-testid="acknowledged-at">
                  {d.acknowledgedAt === null ? (
                    <span className="warn">not acknowledged</span>
                  ) : (
                    <>
                      {formatTime(d.acknowledgedAt)}{' '}
                      <span className="muted small">{formatDelay(d.acknowledgedAt - d.deliveredAt)} after</span>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {user.pushes.length > 0 && (
        <ul className="pushes">
          {user.pushes.map((p, i) => (
            <li key={`${p.at}-${i}`} data-testid="delivery-push">
              <span className="time">{formatTime(p.at)}</span> {describePush(p.reason)}
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}
