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

/**
 * The connection in words (Live, Reconnecting…, Offline); the token details (remaining lifetime,
 * refreshes done in place) only in a developer view folded under it, since a countdown shown to an
 * officer or a farmer looks alarming and says nothing they can act on.
 */
export function ConnectionIndicator({ view }: { view: ConnectionView }) {
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
      <details className="indicator-dev">
        <summary aria-label="Connection details">details</summary>
        <TokenDetails view={view} />
      </details>
    </div>
  );
}

/** Developer view: the access token's remaining lifetime and the refreshes done without a reconnect. */
function TokenDetails({ view }: { view: ConnectionView }) {
  const now = useNow(1000);
  const left = view.expiresAt === undefined ? null : Math.max(0, Math.round((view.expiresAt - now) / 1000));
  return (
    <span className="indicator-details">
      {left !== null && <span title="The SDK renews the access token before it ends">access token: {left}s left</span>}
      <span data-testid="refresh-count" title="Access tokens renewed since this page opened, in place">
        renewed {view.refreshes}×
      </span>
    </span>
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
