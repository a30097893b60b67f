import { useState } from 'react';
import type { AdminStatsDto, AuthEventDto, MeDto, StaffDto } from '../../server/domain/dto.js';
import { SignIn } from '../components/SignIn.js';
import { useCatchUp, useHelpdeskEvent, useNow } from '../hooks.js';
import { formatTime } from '../router.js';
import type { Session } from '../session.js';
import { Header } from '../staff/StaffApp.js';
import { useStaffAuth } from '../staff/use-staff-auth.js';
import { DeliveriesPanel } from './DeliveriesPanel.js';
import { Sparkline } from './Sparkline.js';
import { TimelinePanel } from './TimelinePanel.js';

const HISTORY = 60;

/**
 * `/admin`: live connections, token expiry per connection, auth events, events per second, disconnect;
 * an event's deliveries (which device got it, and acknowledged it) and a person's connection timeline.
 */
export function AdminApp() {
  const { session, phase, signIn, signOut } = useStaffAuth();
  if (phase.kind === 'loading') return <p className="loading">Loading…</p>;
  if (phase.kind === 'signed_out')
    return <SignIn title="Helpdesk dashboard — admins" notice={phase.notice} onSignIn={signIn} />;
  if (!phase.me.isAdmin) {
    return (
      <main className="signin" data-testid="admins-only">
        <h1>Admins only</h1>
        <p>
          The dashboard is for helpdesk administrators. <a href="/">Back to the inbox</a>
        </p>
      </main>
    );
  }
  return <Dashboard key={phase.me.id} session={session} me={phase.me} onSignOut={signOut} />;
}

function Dashboard({ session, me, onSignOut }: { session: Session; me: MeDto; onSignOut: () => Promise<void> }) {
  const [stats, setStats] = useState<AdminStatsDto | null>(null);
  const [rates, setRates] = useState<{ deliveries: number[]; publishes: number[] }>({ deliveries: [], publishes: [] });
  const [events, setEvents] = useState<AuthEventDto[]>([]);
  const [staff, setStaff] = useState<StaffDto[]>([]);
  const [timelineUser, setTimelineUser] = useState<string | null>(null);
  const [timelineFocus, setTimelineFocus] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const now = useNow(1000);
  const { api, realtime } = session;

  useCatchUp(
    realtime,
    async () => {
      const [s, e, staff] = await Promise.all([
        api.get<AdminStatsDto>('/api/admin/stats'),
        api.get<AuthEventDto[]>('/api/admin/auth-events'),
        api.get<StaffDto[]>('/api/admin/staff'),
      ]);
      setStats(s);
      setEvents(e.reverse());
      setStaff(staff);
    },
    true,
  );
  useHelpdeskEvent(
    'admin_stats',
    (s) => {
      setStats(s);
      setRates((r) => ({
        deliveries: [...r.deliveries, s.deliveriesPerSecond].slice(-HISTORY),
        publishes: [...r.publishes, s.publishesPerSecond].slice(-HISTORY),
      }));
    },
    realtime,
  );
  useHelpdeskEvent('auth_event', (e) => setEvents((list) => [e, ...list].slice(0, 200)), realtime);

  // Disconnecting is two taps: the first asks, the second (on the same row) does it.
  const [confirming, setConfirming] = useState<string | null>(null);
  const disconnect = async (userId: string) => {
    setConfirming(null);
    try {
      const res = await api.post<{ disconnected: number }>(`/api/admin/users/${encodeURIComponent(userId)}/disconnect`);
      setNotice(
        `Disconnected ${names[userId] ?? userId}: ${res.disconnected} connection(s) closed, their sessions revoked.`,
      );
    } catch {
      setNotice('Could not disconnect (offline?). Try again.');
    }
  };

  const names: Record<string, string> = Object.fromEntries(staff.map((p) => [p.id, p.name]));
  const openTimeline = (userId: string) => {
    setTimelineUser(userId);
    setTimelineFocus((n) => n + 1);
  };
  const byUser = new Map<string, AdminStatsDto['connections']>();
  for (const c of stats?.connections ?? []) byUser.set(c.userId, [...(byUser.get(c.userId) ?? []), c]);
  const label = (id: string | null) =>
    id === null ? '—' : (names[id] ?? (id.startsWith('guest:') ? `guest ${id.slice(6, 14)}` : id));

  return (
    <div className="app admin" data-testid="dashboard">
      <Header session={session} me={me} onSignOut={onSignOut}>
        <a className="nav" href="/">
          Inbox
        </a>
        <span className="nav active">Dashboard</span>
      </Header>
      {notice !== null && (
        <p className="banner banner-info" data-testid="admin-notice">
          {notice}
        </p>
      )}
      <div className="dashboard">
        <section className="panel">
          <h2>
            Live connections{' '}
            <span className="count" data-testid="connection-count">
              {stats?.totalConnections ?? 0}
            </span>
          </h2>
          <table className="connections">
            <thead>
              <tr>
                <th>User</th>
                <th>Device</th>
                <th>Transport</th>
                <th>Connected</th>
                <th>Token expires in</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {[...byUser.entries()].map(([userId, conns]) =>
                conns.map((c, i) => (
                  <tr key={c.sessionId} data-testid="connection-row" data-user-id={userId}>
                    <td>
                      {i === 0 && (
                        <button
                          className="link person-link"
                          onClick={() => openTimeline(userId)}
                          title="Open their devices and timeline"
                          data-testid="open-timeline"
                          data-user-id={userId}
                        >
                          <strong>{label(userId)}</strong>
                        </button>
                      )}
                    </td>
                    <td>{c.device}</td>
                    <td>{c.transport}</td>
                    <td>{formatTime(c.connectedAt)}</td>
                    <td data-testid="expires-in">{Math.max(0, Math.round((c.expiresAt - now) / 1000))} s</td>
                    <td>
                      {i === 0 && userId !== me.id && confirming !== userId && (
                        <button
                          className="danger"
                          onClick={() => setConfirming(userId)}
                          data-testid="disconnect"
                          data-user-id={userId}
                        >
                          Disconnect user
                        </button>
                      )}
                      {i === 0 && confirming === userId && (
                        <span className="confirm" role="group" aria-label={`Disconnect ${label(userId)}?`}>
                          Sign {label(userId)} out of every device?{' '}
                          <button
                            className="danger"
                            onClick={() => void disconnect(userId)}
                            data-testid="disconnect-confirm"
                            data-user-id={userId}
                          >
                            Yes, disconnect
                          </button>{' '}
                          <button onClick={() => setConfirming(null)} data-testid="disconnect-cancel">
                            Cancel
                          </button>
                        </span>
                      )}
                    </td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </section>
        <section className="panel">
          <h2>Events delivered per second</h2>
          <Sparkline
            series={[
              { label: 'delivered', values: rates.deliveries, className: 'line-a' },
              { label: 'published', values: rates.publishes, className: 'line-b' },
            ]}
          />
        </section>
        <section className="panel">
          <h2>Auth events</h2>
          <ol className="auth-events" data-testid="auth-events">
            {events.slice(0, 50).map((e, i) => (
              <li key={`${e.at}-${i}`} className={`auth-${e.type}`} data-testid="auth-event" data-type={e.type}>
                <span className="time">{formatTime(e.at)}</span> <strong>{e.type}</strong> {label(e.userId)}
                {e.transport !== undefined && <span className="muted"> · {e.transport}</span>}
                {e.code !== undefined && <span className="muted"> · {e.code}</span>}
                {e.failure !== undefined && (
                  <span className="muted" data-testid="auth-event-failure">
                    {' '}
                    · {describeFailure(e.failure)}
                  </span>
                )}
              </li>
            ))}
          </ol>
        </section>
        <DeliveriesPanel api={api} recent={stats?.recentEvents ?? []} label={label} onOpenUser={openTimeline} />
        <TimelinePanel
          api={api}
          userId={timelineUser}
          people={staff}
          label={label}
          changedAt={timelineUser === null ? undefined : events.find((e) => e.userId === timelineUser)?.at}
          focus={timelineFocus}
          onOpen={setTimelineUser}
        />
      </div>
    </div>
  );
}

/** One line for a refused token's failed check: "iss: expected tether, got go-api". */
function describeFailure(failure: NonNullable<AuthEventDto['failure']>): string {
  const { check, expected, got, ...rest } = failure;
  const parts: string[] = [];
  if (expected !== undefined) parts.push(`expected ${JSON.stringify(expected)}`);
  if (got !== undefined) parts.push(`got ${JSON.stringify(got)}`);
  for (const [key, value] of Object.entries(rest)) parts.push(`${key} ${JSON.stringify(value)}`);
  return parts.length === 0 ? check : `${check}: ${parts.join(', ')}`;
}
