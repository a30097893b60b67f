import { useEffect, useRef, useState } from 'react';
import type { ApiClient } from '@tether/client';
import type { TimelineDto, TimelineEntryDto } from '../../server/domain/dto.js';
import { formatTime } from '../router.js';
import { describeTimelineEntry } from './words.js';

/**
 * A user's connection timeline: their live devices now (transport, node, heartbeat round trip) and
 * what happened to their connections, newest first, in plain words (connected, token renewed in
 * place, warned before expiry, expired, signed out, disconnected and why).
 */
export function TimelinePanel({
  api,
  userId,
  people,
  label,
  changedAt,
  focus,
  onOpen,
}: {
  api: ApiClient;
  /** The user shown; null: none chosen yet. */
  userId: string | null;
  /** Who can be chosen in the panel (staff); users opened elsewhere (a guest) are added. */
  people: { id: string; name: string }[];
  label: (userId: string) => string;
  /** When the user's newest auth event came: the timeline is fetched again. */
  changedAt: number | undefined;
  /** Changes each time a person is opened from elsewhere on the dashboard: the panel scrolls into view. */
  focus: number;
  onOpen: (userId: string | null) => void;
}) {
  const [timeline, setTimeline] = useState<TimelineDto | null>(null);
  const [failed, setFailed] = useState(false);
  const [refreshes, setRefreshes] = useState(0);
  const panel = useRef<HTMLElement>(null);
  const scrollWhenLoaded = useRef(false);

  // Opened from a row elsewhere on the dashboard: bring it into view now, and again once it has grown.
  useEffect(() => {
    if (focus === 0) return;
    scrollWhenLoaded.current = true;
    panel.current?.scrollIntoView({ block: 'start' });
  }, [focus]);

  useEffect(() => {
    if (userId === null) return;
    let live = true;
    api.get<TimelineDto>(`/api/admin/users/${encodeURIComponent(userId)}/timeline`).then(
      (t) => {
        if (!live) return;
        setTimeline(t);
        setFailed(false);
      },
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [api, userId, changedAt, refreshes]);

  const shown = timeline !== null && timeline.userId === userId ? timeline : null;
  useEffect(() => {
    if (shown === null || !scrollWhenLoaded.current) return;
    scrollWhenLoaded.current = false;
    panel.current?.scrollIntoView({ block: 'start' });
  }, [shown]);
  return (
    <section className="panel wide" ref={panel} data-testid="timeline-panel" data-user-id={userId ?? ''}>
      <h2>Timeline{userId !== null && <> — {label(userId)}</>}</h2>
      <div className="search">
        <select
          value={userId ?? ''}
          onChange={(e) => onOpen(e.target.value === '' ? null : e.target.value)}
          aria-label="Whose timeline"
          data-testid="timeline-user"
        >
          <option value="">Choose a person…</option>
          {people.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
          {userId !== null && !people.some((p) => p.id === userId) && <option value={userId}>{label(userId)}</option>}
        </select>
        {userId !== null && (
          <button onClick={() => setRefreshes((n) => n + 1)} data-testid="timeline-refresh">
            Refresh
          </button>
        )}
      </div>
      {userId === null ? (
        <p className="muted">
          Choose a person, or open one from Live connections or Deliveries, to see their devices and what happened to
          their connections.
        </p>
      ) : shown === null ? (
        <p className={failed ? 'error' : 'muted'}>{failed ? 'Could not load the timeline (offline?).' : 'Loading…'}</p>
      ) : (
        <Timeline timeline={shown} />
      )}
    </section>
  );
}

function Timeline({ timeline }: { timeline: TimelineDto }) {
  const newestFirst = [...timeline.entries].reverse();
  return (
    <div data-testid="timeline" data-user-id={timeline.userId}>
      <h3>
        Live now <span className="count">{timeline.devices.length}</span>
      </h3>
      {timeline.devices.length === 0 ? (
        <p className="muted small">No live connection.</p>
      ) : (
        <ul className="live-devices">
          {timeline.devices.map((d) => (
            <li key={d.sessionId} data-testid="timeline-device" data-session-id={d.sessionId}>
              <strong>{d.device}</strong> · {d.transport} · node {d.node} ·{' '}
              <span data-testid="rtt">
                {d.rttMs === null ? 'heartbeat not measured yet' : `heartbeat ${Math.round(d.rttMs)} ms`}
              </span>{' '}
              <span className="muted small">· since {formatTime(d.connectedAt)}</span>
            </li>
          ))}
        </ul>
      )}
      <p className="muted small" data-testid="reconnects">
        {timeline.reconnectsLastHour === 0
          ? 'No reconnects in the last hour.'
          : `${timeline.reconnectsLastHour} reconnect(s) in the last hour.`}
      </p>
      <h3>
        What happened <span className="muted small">newest first</span>
      </h3>
      {newestFirst.length === 0 ? (
        <p className="muted small">Nothing recorded (the record keeps a limited time).</p>
      ) : (
        <table className="records">
          <thead>
            <tr>
              <th>Time</th>
              <th>What happened</th>
              <th>Code</th>
              <th>Reason</th>
              <th>Device</th>
              <th>Transport</th>
              <th>Node</th>
            </tr>
          </thead>
          <tbody>
            {newestFirst.map((e) => (
              <tr key={e.id} className={`timeline-${e.kind}`} data-testid="timeline-entry" data-kind={e.kind}>
                <td data-label="Time">{formatTime(e.at)}</td>
                <td data-label="What happened" className="what">
                  {describeTimelineEntry(e)}
                  <Detail entry={e} />
                </td>
                <td data-label="Code">{e.code ?? '—'}</td>
                <td data-label="Reason">{e.reason ?? '—'}</td>
                <td data-label="Device">
                  {e.deviceName} <span className="muted small">{e.device.slice(0, 8)}</span>
                </td>
                <td data-label="Transport">{e.transport}</td>
                <td data-label="Node">{e.node}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The one detail worth a line: who revoked, or until when the renewed token is good. */
function Detail({ entry }: { entry: TimelineEntryDto }) {
  if (entry.revokedBy !== null) return <span className="muted small"> · by {entry.revokedBy}</span>;
  const expiresAt = entry.detail?.['expiresAt'];
  if ((entry.kind === 'reauth' || entry.kind === 'warning') && typeof expiresAt === 'number')
    return <span className="muted small"> · token good until {formatTime(expiresAt)}</span>;
  return null;
}
