import type { ConnectionView } from '../hooks.js';
import { useNow } from '../hooks.js';

const LABEL: Record<string, string> = {
  connected: 'Live',
  connecting: 'Connecting…',
  authenticating: 'Signing in…',
  reconnecting: 'Reconnecting…',
  suspended: 'Offline — retrying',
  disconnected: 'Disconnected',
  failed: 'Signed out',
};

/** The SDK's state, the access token's remaining lifetime, and how many refreshes happened. */
export function ConnectionIndicator({ view }: { view: ConnectionView }) {
  const now = useNow(1000);
  const left = view.expiresAt === undefined ? null : Math.max(0, Math.round((view.expiresAt - now) / 1000));
  const state = !view.online && view.state !== 'connected' ? 'offline' : view.state;
  return (
    <div
      className={`indicator indicator-${state}`}
      data-testid="connection"
      data-state={view.state}
      data-refreshes={view.refreshes}
      data-sessions={view.sessions}
    >
      <span className="dot" aria-hidden="true" />
      <span className="indicator-state">{state === 'offline' ? 'Offline' : (LABEL[view.state] ?? view.state)}</span>
      {left !== null && (
        <span className="indicator-token" title="Access token lifetime left; the SDK refreshes it before it ends">
          token {left}s
        </span>
      )}
      <span
        className="indicator-refresh"
        data-testid="refresh-count"
        title="Access tokens refreshed since this page opened (in place, no reconnect)"
      >
        ↻ {view.refreshes}
      </span>
    </div>
  );
}

/** Never a silent "socket not connected": say what is happening and that nothing will be lost. */
export function ConnectionBanner({ view }: { view: ConnectionView }) {
  if (view.state === 'connected') return null;
  if (view.state === 'failed' || view.state === 'disconnected') return null;
  const text = !view.online
    ? 'You are offline. New messages will appear as soon as the connection is back.'
    : view.state === 'connecting' || view.state === 'authenticating'
      ? 'Connecting to the live service…'
      : 'Connection lost — reconnecting. Missed messages will be fetched automatically.';
  return (
    <div className="banner banner-warn" role="status" data-testid="connection-banner">
      {text}
    </div>
  );
}
